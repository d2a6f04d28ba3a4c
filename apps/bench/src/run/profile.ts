import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

type ProfileNode = { callFrame: { functionName: string; url: string; lineNumber: number }; hitCount?: number };

/**
 * The service's hottest functions by self time, as a share of its busy (non-idle) samples, from the
 * V8 profiles `--cpu-prof` wrote into `dir`: Markdown table rows, one per function and file.
 */
export function summariseCpuProfiles(dir: string, top = 20): string[] {
  const self = new Map<string, number>();
  let busy = 0;
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.cpuprofile'))) {
    for (const node of (JSON.parse(readFileSync(path.join(dir, file), 'utf8')) as { nodes: ProfileNode[] }).nodes) {
      const { functionName, url, lineNumber } = node.callFrame;
      if (functionName === '(idle)') continue; // waiting for I/O: not the service's cost
      busy += node.hitCount ?? 0;
      const where = url.replace(/^file:\/\//, '').replace(/^.*node_modules\/\.pnpm\/[^/]+\/node_modules\//, '').replace(/^.*\/work\/[^/]+\//, '');
      const key = `${functionName || '(anonymous)'} · ${where || '(native)'}${where ? `:${lineNumber + 1}` : ''}`;
      self.set(key, (self.get(key) ?? 0) + (node.hitCount ?? 0));
    }
  }
  return [...self.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([key, hits]) => `| ${((hits / Math.max(1, busy)) * 100).toFixed(1)}% | \`${key.replace(/\|/g, '\\|')}\` |`);
}
