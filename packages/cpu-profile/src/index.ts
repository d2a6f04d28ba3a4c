/**
 * Where a V8 CPU profile (`node --cpu-prof`, a .cpuprofile) spent its busy samples: self time by
 * package and by function, optionally only the samples inside a window of the monotonic clock
 * (V8 stamps samples in microseconds of CLOCK_MONOTONIC, as `process.hrtime` reads it).
 *
 * V8 samples wall time: a thread preempted in a syscall is sampled there, so shares of native
 * writes overstate their CPU. Read the shares for the JavaScript; judge CPU from /proc.
 */

export interface CpuProfile {
  readonly nodes: ReadonlyArray<{
    id: number; callFrame: { functionName: string; url: string; lineNumber: number }; hitCount?: number; children?: readonly number[];
  }>;
  readonly startTime: number;
  readonly endTime: number;
  readonly samples?: readonly number[];
  readonly timeDeltas?: readonly number[];
}

export interface Window {
  /** Monotonic microseconds: only samples stamped in [fromUs, toUs] count. */
  readonly fromUs: number;
  readonly toUs: number;
}

export interface ProfileSummary {
  /** Samples that were not (idle), and all samples in the window. */
  readonly busy: number;
  readonly total: number;
  /** Self samples by package (or V8's own entries: (garbage collector), (program)), most first. */
  readonly byPackage: ReadonlyArray<readonly [name: string, samples: number]>;
  /**
   * The same, but Node's internals (node:) and native frames charged to the nearest package that
   * called them: a socket write is the HTTP server's (fastify), pg's or undici's.
   */
  readonly byCaller: ReadonlyArray<readonly [name: string, samples: number]>;
  /** Self samples by function · file:line, most first. */
  readonly byFunction: ReadonlyArray<readonly [name: string, samples: number]>;
}

/** The monotonic clock in microseconds, comparable with a profile's sample stamps. */
export const monotonicUs = (): number => Number(process.hrtime.bigint() / 1000n);

const PNPM = /node_modules\/\.pnpm\/[^/]+\/node_modules\/((?:@[^/]+\/)?[^/]+)\//;
const NODE_MODULES = /node_modules\/((?:@[^/]+\/)?[^/]+)\//;
const WORKSPACE = /\/(packages|apps)\/([^/]+)\//;

/** The package a frame's script belongs to: a dependency's name, a workspace package as packages/x, node: for Node's own. */
export function packageOf(url: string, functionName: string): string {
  if (!url) return functionName.startsWith('(') ? functionName : '(native)';
  if (url.startsWith('node:')) return 'node:';
  const dep = PNPM.exec(url) ?? NODE_MODULES.exec(url);
  if (dep) return dep[1]!;
  const own = WORKSPACE.exec(url);
  return own ? `${own[1]}/${own[2]}` : url.replace(/^file:\/\//, '');
}

/** A frame as `function · file:line`, the file relative to its package. */
export function frameName({ functionName, url, lineNumber }: CpuProfile['nodes'][number]['callFrame']): string {
  const where = url.replace(/^file:\/\//, '').replace(/^.*node_modules\/\.pnpm\/[^/]+\/node_modules\//, '').replace(/^.*\/(packages|apps)\//, '$1/');
  return `${functionName || '(anonymous)'} · ${where || '(native)'}${where ? `:${lineNumber + 1}` : ''}`;
}

/** Adds each profile's samples (in the window, or any of the windows, when given) to one summary. */
export function summariseProfiles(profiles: readonly CpuProfile[], window?: Window | readonly Window[]): ProfileSummary {
  const windows = window === undefined ? null : 'fromUs' in window ? [window] : window;
  const inside = (t: number) => windows!.some((w) => t >= w.fromUs && t <= w.toUs);
  const [byPackage, byCaller, byFunction] = [new Map<string, number>(), new Map<string, number>(), new Map<string, number>()];
  const add = (m: Map<string, number>, k: string, n: number) => m.set(k, (m.get(k) ?? 0) + n);
  let [busy, total] = [0, 0];
  for (const p of profiles) {
    const nodes = new Map(p.nodes.map((n) => [n.id, n]));
    const parent = new Map<number, number>();
    for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
    const own = (id: number) => packageOf(nodes.get(id)!.callFrame.url, nodes.get(id)!.callFrame.functionName);
    const callerMemo = new Map<number, string>();
    const callerOf = (id: number): string => {
      const cached = callerMemo.get(id);
      if (cached !== undefined) return cached;
      const pkg = own(id);
      const up = parent.get(id);
      const found = (pkg !== 'node:' && pkg !== '(native)') || up === undefined || own(up) === '(root)' ? pkg : callerOf(up);
      callerMemo.set(id, found);
      return found;
    };
    const counts = new Map<number, number>();
    if (p.samples && p.timeDeltas) {
      let t = p.startTime;
      for (let i = 0; i < p.samples.length; i++) {
        t += p.timeDeltas[i] ?? 0;
        if (windows && !inside(t)) continue;
        counts.set(p.samples[i]!, (counts.get(p.samples[i]!) ?? 0) + 1);
      }
    } else if (!windows) {
      for (const n of p.nodes) counts.set(n.id, n.hitCount ?? 0);
    }
    for (const [id, hits] of counts) {
      const frame = nodes.get(id)!.callFrame;
      total += hits;
      if (frame.functionName === '(idle)') continue; // waiting for I/O: not the process's cost
      busy += hits;
      add(byPackage, packageOf(frame.url, frame.functionName), hits);
      add(byCaller, callerOf(id), hits);
      add(byFunction, frameName(frame), hits);
    }
  }
  const sorted = (m: Map<string, number>) => [...m.entries()].sort((a, b) => b[1] - a[1]);
  return { busy, total, byPackage: sorted(byPackage), byCaller: sorted(byCaller), byFunction: sorted(byFunction) };
}

/** The summary as Markdown: two tables of shares of busy samples, `top` rows each. */
export function summaryMarkdown(s: ProfileSummary, top = 15): string[] {
  const share = (n: number) => `${((n / Math.max(1, s.busy)) * 100).toFixed(1)}%`;
  const cell = (t: string) => `\`${t.replace(/\|/g, '\\|')}\``;
  const rows = (list: ProfileSummary['byPackage'], head: string) =>
    [`| share | ${head} |`, '|---:|---|', ...list.slice(0, top).map(([k, n]) => `| ${share(n)} | ${cell(k)} |`), ''];
  return [
    `${s.busy} busy samples of ${s.total} (the rest idle). Self time, share of busy samples:`, '',
    ...rows(s.byPackage, 'package'), ...rows(s.byCaller, "package, with Node's internals and native code charged to the package calling them"),
    ...rows(s.byFunction, 'function · file:line'),
  ];
}

/** One summary beside the work it did: `units` orders (or requests) in its windows. */
export interface PerUnit {
  readonly label: string;
  readonly summary: ProfileSummary;
  readonly units: number;
}

/**
 * Two summaries set side by side per unit of work (samples per 1,000 orders, say), the functions
 * whose cost differs most first: what one workload's unit costs the process more than another's.
 * Shares cannot say it, since both sides' totals differ.
 */
export function comparisonMarkdown(a: PerUnit, b: PerUnit, unit: string, top = 15): string[] {
  const per = (s: PerUnit, n: number) => (1000 * n) / Math.max(1, s.units);
  const rows = (pick: (s: ProfileSummary) => ProfileSummary['byPackage'], head: string) => {
    const [x, y] = [new Map(pick(a.summary)), new Map(pick(b.summary))];
    const diff = [...new Set([...x.keys(), ...y.keys()])]
      .map((k) => [k, per(a, x.get(k) ?? 0), per(b, y.get(k) ?? 0)] as const)
      .sort((p, q) => Math.abs(q[2] - q[1]) - Math.abs(p[2] - p[1]) || p[0].localeCompare(q[0]));
    return [
      `| ${head} | ${a.label} | ${b.label} | difference |`, '|---|---:|---:|---:|',
      ...diff.slice(0, top).map(([k, p, q]) => `| \`${k.replace(/\|/g, '\\|')}\` | ${p.toFixed(1)} | ${q.toFixed(1)} | ${(q - p >= 0 ? '+' : '')}${(q - p).toFixed(1)} |`),
      '',
    ];
  };
  return [
    `Busy samples per 1,000 ${unit}: ${a.label} ${per(a, a.summary.busy).toFixed(1)} (${a.units} ${unit}), ` +
      `${b.label} ${per(b, b.summary.busy).toFixed(1)} (${b.units}); the largest differences, self time:`, '',
    ...rows((s) => s.byCaller, "package, Node's internals and native code charged to their caller"),
    ...rows((s) => s.byFunction, 'function · file:line'),
  ];
}
