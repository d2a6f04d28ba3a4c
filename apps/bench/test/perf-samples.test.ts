import { describe, expect, it } from 'vitest';
import { perfSamples, phaseComparisonMarkdown, phaseSide, splitByPhase, summarisePerf } from '@shop/cpu-profile/perf-samples';

/** `perf script -F comm,pid,time,ip,sym` of samples at the given seconds, each one stack innermost first. */
const script = (samples: ReadonlyArray<readonly [number, readonly string[]]>) =>
  samples.map(([t, frames]) => [`node  4242   ${t.toFixed(6)}: `, ...frames.map((f, i) => `\t    ${(0x7f00 + i).toString(16)} ${f}`)].join('\n')).join('\n\n');

const KERNEL = '\t    ffffffff81308e95 tcp_sendmsg ([kernel.kallsyms])';
const APP = "JS:*'placeOrder file:///srv/packages/application/src/use-cases/place-order.ts:66:33";
const ZOD = 'JS:*inst._zod.run file:///srv/node_modules/.pnpm/zod@4.6.7/node_modules/zod/v4/core/schemas.js:97:25';
const V8 = 'Builtins_LoadIC_Megamorphic';

describe('perf samples', () => {
  it('reads each sample with its time and frames, the kernel told by its addresses, and keeps only those inside the window', () => {
    // The second sample as `-F comm,pid,time,ip,sym,dso` prints it: each frame's object after it.
    const text = `${script([[10.5, [APP]]])}\n\nnode  4242   11.000000: \n${KERNEL}\n\t    7f01 ${APP} (/tmp/perf-4242.map)\n\n${script([[12, [V8]]])}`;
    const all = perfSamples(text);
    expect(all.map((s) => [s.time, s.frames.map((f) => f.kernel)])).toEqual([[10.5, [false]], [11, [true, false]], [12, [false]]]);
    expect(perfSamples(text, 10.6, 12).map((s) => s.time)).toEqual([11]);
    expect(all[1]!.frames.map((f) => f.sym)).toEqual(['tcp_sendmsg', APP]);
    const s = summarisePerf(all);
    expect(Object.fromEntries(s.self)).toEqual({ 'packages/application': 1, '(kernel)': 1, '(V8 runtime and builtins)': 1 });
    // The kernel's write is charged to the package that asked for it.
    expect(Object.fromEntries(s.chargedKernel)).toEqual({ 'packages/application': 1 });
  });

  it('puts a time on the side of the interleaved window the bench sent then: the first phase unkeyed, then alternating', () => {
    expect([100, 101.99, 102, 103.99, 104, 105.5].map((t) => phaseSide(t, 100, 106, 2))).toEqual(['unkeyed', 'unkeyed', 'keyed', 'keyed', 'unkeyed', 'unkeyed']);
    expect([99.99, 106].map((t) => phaseSide(t, 100, 106, 2))).toEqual([null, null]);
  });

  it('compares the sides per order, the largest difference first, in µs at the sampling rate', () => {
    // 100 Hz: a sample is 10,000 µs. Unkeyed phase [0, 1): 2 samples; keyed [1, 2): 3, of them one in zod; then unkeyed again.
    const split = splitByPhase(perfSamples(script([[0.1, [APP]], [0.5, [APP]], [1.1, [APP]], [1.2, [ZOD]], [1.3, [APP]], [2.5, [V8]]])), 0, 3, 1);
    expect([split.keyed.samples, split.unkeyed.samples]).toEqual([3, 3]);
    const md = phaseComparisonMarkdown(split, { keyed: 10, unkeyed: 10 }, 100, 10);
    expect(md[0]).toBe('Keyed phases: 3 samples, 10 orders, 3000.0 µs per order; unkeyed: 3 samples, 10 orders, 3000.0 µs per order; keyed ÷ unkeyed 1.00×.');
    const rows = md.slice(md.indexOf('| self time | keyed µs/order | unkeyed µs/order | difference |') + 2, md.indexOf('', 2));
    expect(rows).toEqual([
      '| `zod` | 1000.0 | 0.0 | +1000.0 |',
      '| `(V8 runtime and builtins)` | 0.0 | 1000.0 | -1000.0 |',
      '| `packages/application` | 2000.0 | 2000.0 | +0.0 |',
    ]);
  });
});
