#!/usr/bin/env node
// node packages/cpu-profile/src/perf-script.ts [--top N] [--from S --to S] FILE: where a process spent
// its CPU, from `perf script -F time,ip,sym` (--from/--to: perf's seconds, the measured window) of a
// `perf record -e cpu-clock -g` taken while it ran with `--perf-basic-prof` (perf-samples.ts says
// why perf, not V8's profiler). Steps in docs/performance.md, "How to profile".
//
// With --phases S --orders KEYED,UNKEYED [--hz 499] and --from/--to the bench's interleaved window (record with
// `perf record -k CLOCK_MONOTONIC`, the bench's clock; phases are taken as equal lengths from --from)
// (its `cost.cpu.fromUs`/`toUs` ÷ 1e6, and `interleaved` orders, in bench.json): each side's CPU per
// order, what differs most first. FILE may be any process's samples (`perf script --comm postgres`).
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { perfSamples, phaseComparisonMarkdown, splitByPhase, summarisePerf } from './perf-samples.ts';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    top: { type: 'string', default: '20' }, from: { type: 'string' }, to: { type: 'string' },
    phases: { type: 'string' }, orders: { type: 'string' }, hz: { type: 'string', default: '499' },
  },
});
const top = Number(values.top);
const from = values.from === undefined ? -Infinity : Number(values.from);
const to = values.to === undefined ? Infinity : Number(values.to);
const all = positionals.flatMap((file) => perfSamples(readFileSync(file, 'utf8'), from, to));
if (all.length === 0) {
  process.stderr.write('no samples (perf script -F time,ip,sym of a perf record -g, and --from/--to inside its times?)\n');
  process.exit(1);
}

if (values.phases !== undefined) {
  const [keyed, unkeyed] = (values.orders ?? '').split(',').map(Number);
  if (!Number.isFinite(from) || !Number.isFinite(to) || !(keyed! > 0 && unkeyed! > 0) || !(Number(values.phases) > 0)) {
    process.stderr.write('--phases S needs --from and --to (the interleaved window) and --orders KEYED,UNKEYED\n');
    process.exit(2);
  }
  const split = splitByPhase(all, from, to, Number(values.phases));
  process.stdout.write(`${phaseComparisonMarkdown(split, { keyed: keyed!, unkeyed: unkeyed! }, Number(values.hz), top).join('\n')}\n`);
  process.exit(0);
}

const s = summarisePerf(all);
const table = (title: string, counts: ReadonlyMap<string, number>, kernel?: ReadonlyMap<string, number>) => [
  '',
  `| share | ${title} |${kernel ? ' kernel, share of all samples |' : ''}`,
  `|---:|---|${kernel ? '---:|' : ''}`,
  ...[...counts]
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([k, v]) => `| ${((100 * v) / s.samples).toFixed(1)}% | \`${k}\` |${kernel ? ` ${((100 * (kernel.get(k) ?? 0)) / s.samples).toFixed(1)}% |` : ''}`),
];
const lines = [
  `${s.samples} samples on a CPU; the kernel's share ${((100 * (s.self.get('(kernel)') ?? 0)) / s.samples).toFixed(1)}%.`,
  ...table('self time', s.self),
  ...table('charged to the first package up the stack that is not Node', s.charged, s.chargedKernel),
];
process.stdout.write(`${lines.join('\n')}\n`);
