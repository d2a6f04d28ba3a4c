#!/usr/bin/env node
// node packages/cpu-profile/src/perf-script.ts [--top N] [--from S --to S] FILE: where a process spent
// its CPU, from `perf script -F time,ip,sym` (--from/--to: perf's seconds, the measured window) of a
// `perf record -e cpu-clock -g` taken while it ran with
// `--perf-basic-prof`. Unlike V8's profiler, which samples wall time (a socket write that the
// scheduler preempts on two shared cores is counted for as long as it waits), perf samples only
// time on a CPU, and counts the kernel's part as such. Steps in docs/performance.md, "How to profile".
// JIT code is named from /tmp/perf-PID.map, which V8 appends to as code moves: a function's name
// can be stale for an address reused later, so the per-package shares are approximate; the kernel,
// V8 runtime and native shares are exact.
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { packageOf } from './index.ts';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { top: { type: 'string', default: '20' }, from: { type: 'string' }, to: { type: 'string' } },
});
const top = Number(values.top);
const from = values.from === undefined ? -Infinity : Number(values.from);
const to = values.to === undefined ? Infinity : Number(values.to);

interface Frame {
  readonly kernel: boolean;
  readonly sym: string;
}

/** Each sample's frames, innermost first; a sample whose header gives a time outside [from, to) is left out. */
function samples(text: string): Frame[][] {
  const out: Frame[][] = [];
  let frames: Frame[] | null = null;
  let inWindow = true;
  const end = () => {
    if (frames?.length && inWindow) out.push(frames);
    frames = null;
    inWindow = true;
  };
  for (const line of text.split('\n')) {
    if (line.trim() === '') {
      end();
    } else if (!line.startsWith('\t')) {
      // A sample's header line (its fields as -F asked; with none, perf prints a blank line instead).
      end();
      const time = /(\d+\.\d+):/.exec(line);
      if (time) inWindow = Number(time[1]) >= from && Number(time[1]) < to;
      frames = [];
    } else {
      const m = /^\s*([0-9a-f]+)\s+(.*)$/.exec(line);
      if (m) (frames ??= []).push({ kernel: m[1]!.length >= 16 && m[1]!.startsWith('ffff'), sym: m[2]! });
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

function selfCategory(frame: Frame): string {
  if (frame.kernel) return '(kernel)';
  const pkg = packageOfFrame(frame.sym);
  if (pkg) return pkg;
  if (/^(Builtins_|v8::)/.test(frame.sym)) return '(V8 runtime and builtins)';
  if (/^(node::|uv_|uv__)/.test(frame.sym)) return '(Node and libuv, native)';
  return '(other native)';
}

/** The first package up the stack that is not Node's own: who asked for the work. */
function chargedTo(frames: Frame[]): string {
  let node: string | null = null;
  for (const f of frames) {
    const pkg = packageOfFrame(f.sym);
    if (pkg === 'node:') node ??= pkg;
    else if (pkg) return pkg;
  }
  return node ?? '(no JS frame: event loop, GC threads, native callbacks)';
}

const table = (title: string, counts: Map<string, number>, n: number, kernel?: Map<string, number>) => [
  '',
  `| share | ${title} |${kernel ? ' kernel, share of all samples |' : ''}`,
  `|---:|---|${kernel ? '---:|' : ''}`,
  ...[...counts]
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([k, v]) => `| ${((100 * v) / n).toFixed(1)}% | \`${k}\` |${kernel ? ` ${((100 * (kernel.get(k) ?? 0)) / n).toFixed(1)}% |` : ''}`),
];

const all = positionals.flatMap((file) => samples(readFileSync(file, 'utf8')));
const self = new Map<string, number>();
const charged = new Map<string, number>();
const chargedKernel = new Map<string, number>();
const add = (m: Map<string, number>, k: string) => m.set(k, (m.get(k) ?? 0) + 1);
for (const frames of all) {
  add(self, selfCategory(frames[0]!));
  const who = chargedTo(frames);
  add(charged, who);
  if (frames[0]!.kernel) add(chargedKernel, who);
}
const n = all.length;
if (n === 0) {
  process.stderr.write('no samples (perf script -F time,ip,sym of a perf record -g, and --from/--to inside its times?)\n');
  process.exit(1);
}
const lines = [
  `${n} samples on a CPU; the kernel's share ${((100 * (self.get('(kernel)') ?? 0)) / n).toFixed(1)}%.`,
  ...table('self time', self, n),
  ...table('charged to the first package up the stack that is not Node', charged, n, chargedKernel),
];
process.stdout.write(`${lines.join('\n')}\n`);
