#!/usr/bin/env node
// node packages/cpu-profile/src/perf-script.ts [--top N] FILE: where a process spent its CPU, from
// `perf script -F ip,sym` of a `perf record -e cpu-clock -g` taken while it ran with
// `--perf-basic-prof`. Unlike V8's profiler, which samples wall time (a socket write that the
// scheduler preempts on two shared cores is counted for as long as it waits), perf samples only
// time on a CPU, and counts the kernel's part as such. Steps in docs/performance.md, "How to profile".
// JIT code is named from /tmp/perf-PID.map, which V8 appends to as code moves: a function's name
// can be stale for an address reused later, so the per-package shares are approximate; the kernel,
// V8 runtime and native shares are exact.
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

const { values, positionals } = parseArgs({ allowPositionals: true, options: { top: { type: 'string', default: '20' } } });
const top = Number(values.top);

interface Frame {
  readonly kernel: boolean;
  readonly sym: string;
}

function samples(text: string): Frame[][] {
  const out: Frame[][] = [];
  let frames: Frame[] | null = null;
  for (const line of text.split('\n')) {
    if (line.trim() === '') {
      if (frames?.length) out.push(frames);
      frames = null;
    } else if (!line.startsWith('\t')) {
      frames = []; // a sample's header line
    } else {
      const m = /^\s*([0-9a-f]+)\s+(.*)$/.exec(line);
      if (m && frames) frames.push({ kernel: m[1]!.length >= 16 && m[1]!.startsWith('ffff'), sym: m[2]! });
    }
  }
  if (frames?.length) out.push(frames);
  return out;
}

/** The package of a JIT frame (`JS:*name file:///…/node_modules/.pnpm/x@1/node_modules/x/…:1:2`), or null. */
function packageOf(sym: string): string | null {
  if (!sym.startsWith('JS:')) return null;
  const dep = /node_modules\/\.pnpm\/[^/]+\/node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(sym);
  if (dep) return dep[1]!;
  const own = /\/((?:packages|apps)\/[^/]+)\//.exec(sym);
  if (own) return own[1]!;
  if (/ node:/.test(sym)) return 'node:';
  return 'JS, other';
}

function selfCategory(frame: Frame): string {
  if (frame.kernel) return '(kernel)';
  const pkg = packageOf(frame.sym);
  if (pkg) return pkg;
  if (/^(Builtins_|v8::)/.test(frame.sym)) return '(V8 runtime and builtins)';
  if (/^(node::|uv_|uv__)/.test(frame.sym)) return '(Node and libuv, native)';
  return '(other native)';
}

/** The first package up the stack that is not Node's own: who asked for the work. */
function chargedTo(frames: Frame[]): string {
  let node: string | null = null;
  for (const f of frames) {
    const pkg = packageOf(f.sym);
    if (pkg === 'node:') node ??= pkg;
    else if (pkg) return pkg;
  }
  return node ?? '(no JS frame: event loop, GC threads, native callbacks)';
}

const table = (title: string, counts: Map<string, number>, n: number, kernel?: Map<string, number>) => [
  '',
  `| share | ${title} |${kernel ? ' of which kernel |' : ''}`,
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
const lines = [
  `${n} samples on a CPU; the kernel's share ${((100 * (self.get('(kernel)') ?? 0)) / n).toFixed(1)}%.`,
  ...table('self time', self, n),
  ...table('charged to the first package up the stack that is not Node', charged, n, chargedKernel),
];
process.stdout.write(`${lines.join('\n')}\n`);
