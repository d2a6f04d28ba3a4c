import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

interface ProfileNode {
  readonly id: number;
  readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number };
  readonly hitCount?: number;
}

/**
 * The service's hottest functions by self time, as a share of its busy (non-idle) samples, from
 * the V8 CPU profile(s) that `--cpu-prof` wrote into `dir`, as Markdown table rows. Grouped by function and file so one line of
 * a library's code is one row.
 */
export function summariseCpuProfiles(dir: string, top = 20): string[] {
  const files = readdirSync(dir).filter((f) => f.endsWith('.cpuprofile'));
  const self = new Map<string, number>();
  let busy = 0;
  for (const file of files) {
    const profile = JSON.parse(readFileSync(path.join(dir, file), 'utf8')) as { nodes: ProfileNode[] };
    for (const node of profile.nodes) {
      const hits = node.hitCount ?? 0;
      const { functionName, url, lineNumber } = node.callFrame;
      if (functionName === '(idle)') continue; // waiting for I/O: not the service's cost
      busy += hits;
      const where = url.replace(/^file:\/\//, '').replace(/^.*node_modules\/\.pnpm\/[^/]+\/node_modules\//, '').replace(/^.*\/work\/[^/]+\//, '');
      const key = `${functionName || '(anonymous)'} · ${where || '(native)'}${where ? `:${lineNumber + 1}` : ''}`;
      self.set(key, (self.get(key) ?? 0) + hits);
    }
  }
  return [...self.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([key, hits]) => `| ${((hits / Math.max(1, busy)) * 100).toFixed(1)}% | \`${key.replace(/\|/g, '\\|')}\` |`);
}
