/**
 * Samples from `perf script -F time,ip,sym` (or with comm,pid first) of a `perf record -e cpu-clock -g`,
 * sorted into where the CPU went. perf samples only time on a CPU, and counts the kernel's part as
 * such; V8's profiler samples wall time (docs/performance.md, "How to profile").
 *
 * JIT code is named from /tmp/perf-PID.map, which V8 appends to as code moves: a function's name
 * can be stale for an address reused later, so the per-package shares are approximate; the kernel,
 * V8 runtime and native shares are exact.
 */
import { packageOf } from './index.ts';

export interface PerfFrame {
  readonly kernel: boolean;
  readonly sym: string;
}

export interface PerfSample {
  /** perf's seconds, null when the header gave no time. */
  readonly time: number | null;
  /** Innermost first. */
  readonly frames: readonly PerfFrame[];
}

/** Each sample with at least one frame; one whose time is outside [from, to) is left out. */
export function perfSamples(text: string, from = -Infinity, to = Infinity): PerfSample[] {
  const out: PerfSample[] = [];
  let current: { time: number | null; frames: PerfFrame[] } | null = null;
  const end = () => {
    if (current?.frames.length && (current.time === null || (current.time >= from && current.time < to))) out.push(current);
    current = null;
  };
  for (const line of text.split('\n')) {
    if (line.trim() === '') {
      end();
    } else if (!line.startsWith('\t')) {
      // A sample's header line (its fields as -F asked; with none, perf prints a blank line instead).
      end();
      const time = /(\d+\.\d+):/.exec(line);
      current = { time: time ? Number(time[1]) : null, frames: [] };
    } else {
      const m = /^\s*([0-9a-f]+)\s+(.*)$/.exec(line);
      // The symbol, without the object it is in when -F asked for dso too (`(/tmp/perf-1.map)`, `([kernel.kallsyms])`, `(/x (deleted))`).
      const sym = m?.[2]!.replace(/ \((?:\/[^()]*(?: \(deleted\))?|\[[^\]]*\])\)$/, '');
      if (m) (current ??= { time: null, frames: [] }).frames.push({ kernel: m[1]!.length >= 16 && m[1]!.startsWith('ffff'), sym: sym! });
    }
  }
  end();
  return out;
}

/**
 * The package of a JIT frame (`JS:*name file:///…/node_modules/.pnpm/x@1/node_modules/x/…:1:2`,
 * `JS:*'name node:events:489:44`), as the V8 profile's summary names it; null for native code.
 */
function packageOfFrame(sym: string): string | null {
  if (!sym.startsWith('JS:')) return null;
  const url = / ((?:file:\/\/|node:|\/)\S*?)(?::\d+){1,2}$/.exec(sym)?.[1];
  return url ? packageOf(url, sym) : 'JS, other';
}

/** What kind of code a sample's innermost frame is: the kernel, a package's JavaScript, V8, Node, or other native code. */
export function selfCategory(frame: PerfFrame): string {
  if (frame.kernel) return '(kernel)';
  const pkg = packageOfFrame(frame.sym);
  if (pkg) return pkg;
  if (/^(Builtins_|v8::)/.test(frame.sym)) return '(V8 runtime and builtins)';
  if (/^(node::|uv_|uv__)/.test(frame.sym)) return '(Node and libuv, native)';
  return '(other native)';
}

/** The first package up the stack that is not Node's own: who asked for the work. */
export function chargedTo(frames: readonly PerfFrame[]): string {
  let node: string | null = null;
  for (const f of frames) {
    const pkg = packageOfFrame(f.sym);
    if (pkg === 'node:') node ??= pkg;
    else if (pkg) return pkg;
  }
  return node ?? '(no JS frame: event loop, GC threads, native callbacks)';
}

export interface PerfSummary {
  readonly samples: number;
  /** By the innermost frame's kind. */
  readonly self: ReadonlyMap<string, number>;
  /** By the package that asked for the work; and of those, the samples in the kernel. */
  readonly charged: ReadonlyMap<string, number>;
  readonly chargedKernel: ReadonlyMap<string, number>;
}

export function summarisePerf(samples: readonly PerfSample[]): PerfSummary {
  const [self, charged, chargedKernel] = [new Map<string, number>(), new Map<string, number>(), new Map<string, number>()];
  const add = (m: Map<string, number>, k: string) => m.set(k, (m.get(k) ?? 0) + 1);
  for (const { frames } of samples) {
    add(self, selfCategory(frames[0]!));
    const who = chargedTo(frames);
    add(charged, who);
    if (frames[0]!.kernel) add(chargedKernel, who);
  }
  return { samples: samples.length, self, charged, chargedKernel };
}

/**
 * The side of the bench's interleaved window a time falls on: phases of `phaseS` seconds from
 * `from`, the first unkeyed, then alternating (as `--keyed-phases` sends them); null outside [from, to).
 */
export function phaseSide(time: number, from: number, to: number, phaseS: number): 'keyed' | 'unkeyed' | null {
  if (!(time >= from && time < to)) return null;
  return Math.floor((time - from) / phaseS) % 2 === 1 ? 'keyed' : 'unkeyed';
}

export interface PhaseSplit {
  readonly keyed: PerfSummary;
  readonly unkeyed: PerfSummary;
}

/** The samples of an interleaved window, each side's summarised (samples without a time are left out). */
export function splitByPhase(samples: readonly PerfSample[], from: number, to: number, phaseS: number): PhaseSplit {
  const sides = { keyed: [] as PerfSample[], unkeyed: [] as PerfSample[] };
  for (const s of samples) {
    const side = s.time === null ? null : phaseSide(s.time, from, to, phaseS);
    if (side) sides[side].push(s);
  }
  return { keyed: summarisePerf(sides.keyed), unkeyed: summarisePerf(sides.unkeyed) };
}

/**
 * Both sides in CPU µs per order (a sample is 1/hz s), the largest difference first, by the
 * innermost frame's kind and by the package that asked: where a keyed order's extra CPU went, at
 * the same moments as the unkeyed orders it is compared with.
 */
export function phaseComparisonMarkdown(split: PhaseSplit, orders: { keyed: number; unkeyed: number }, hz: number, top: number): string[] {
  const us = (samples: number, n: number) => (samples * 1e6) / hz / n;
  const table = (title: string, pick: (s: PerfSummary) => ReadonlyMap<string, number>) => {
    const [k, u] = [pick(split.keyed), pick(split.unkeyed)];
    const rows = [...new Set([...k.keys(), ...u.keys()])].map((name) => {
      const [a, b] = [us(k.get(name) ?? 0, orders.keyed), us(u.get(name) ?? 0, orders.unkeyed)];
      return { name, a, b, d: a - b };
    });
    rows.sort((x, y) => Math.abs(y.d) - Math.abs(x.d));
    return ['', `| ${title} | keyed µs/order | unkeyed µs/order | difference |`, '|---|---:|---:|---:|',
      ...rows.slice(0, top).map((r) => `| \`${r.name}\` | ${r.a.toFixed(1)} | ${r.b.toFixed(1)} | ${r.d >= 0 ? '+' : ''}${r.d.toFixed(1)} |`)];
  };
  const [a, b] = [us(split.keyed.samples, orders.keyed), us(split.unkeyed.samples, orders.unkeyed)];
  return [
    `Keyed phases: ${split.keyed.samples} samples, ${orders.keyed} orders, ${a.toFixed(1)} µs per order; unkeyed: ${split.unkeyed.samples} samples, ` +
      `${orders.unkeyed} orders, ${b.toFixed(1)} µs per order; keyed ÷ unkeyed ${(a / b).toFixed(2)}×.`,
    ...table('self time', (s) => s.self),
    ...table('charged to the first package up the stack that is not Node', (s) => s.charged),
  ];
}
