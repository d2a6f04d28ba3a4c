import { describe, expect, it } from 'vitest';
import { comparisonMarkdown, summariseProfiles, type CpuProfile } from '@shop/cpu-profile';

/** A profile whose samples, one every 1,000 µs from t = 0, are the named frames in turn (`(idle)` is not busy). */
function profile(frames: readonly string[]): CpuProfile {
  const names = [...new Set(frames)];
  const nodes = [
    { id: 1, callFrame: { functionName: '(root)', url: '', lineNumber: -1 }, children: names.map((_, i) => i + 2) },
    ...names.map((n, i) => ({ id: i + 2, callFrame: { functionName: n, url: n === '(idle)' ? '' : `file:///srv/packages/application/src/${n}.ts`, lineNumber: 0 } })),
  ];
  return { nodes, startTime: 0, endTime: frames.length * 1000, samples: frames.map((f) => names.indexOf(f) + 2), timeDeltas: frames.map((_, i) => (i === 0 ? 0 : 1000)) };
}

describe('CPU profile summaries', () => {
  // Samples at 0, 1000, …, 9000 µs.
  const p = profile(['a', 'a', 'b', '(idle)', 'a', 'b', 'b', 'b', '(idle)', 'a']);

  it('counts only the samples inside any of the windows given, and those of both when two are', () => {
    const first = summariseProfiles([p], { fromUs: 0, toUs: 2000 });
    expect([first.busy, first.total]).toEqual([3, 3]);
    const two = summariseProfiles([p], [{ fromUs: 0, toUs: 2000 }, { fromUs: 5000, toUs: 8000 }]);
    expect([two.busy, two.total]).toEqual([6, 7]);
    expect(Object.fromEntries(two.byFunction.map(([k, n]) => [k.split(' · ')[0], n]))).toEqual({ a: 2, b: 4 });
    expect(summariseProfiles([p]).busy).toBe(8);
  });

  it('sets two summaries side by side per unit of work, the largest difference first', () => {
    const unkeyed = summariseProfiles([profile(['a', 'a', 'b', 'b'])]); // 4 samples for 2 orders
    const keyed = summariseProfiles([profile(['a', 'a', 'b', 'b', 'b', 'b', 'c'])]); // 7 for 2
    const md = comparisonMarkdown({ label: 'uniform', summary: unkeyed, units: 2 }, { label: 'uniform-keyed', summary: keyed, units: 2 }, 'orders');
    expect(md[0]).toBe('Busy samples per 1,000 orders: uniform 2000.0 (2 orders), uniform-keyed 3500.0 (2); the largest differences, self time:');
    const functions = md.slice(md.findIndex((l) => l.startsWith('| function')) + 2).filter((l) => l.startsWith('|'));
    expect(functions.map((l) => l.split(' | ').slice(1).join(' | '))).toEqual(['1000.0 | 2000.0 | +1000.0 |', '0.0 | 500.0 | +500.0 |', '1000.0 | 1000.0 | +0.0 |']);
    expect(functions[0]).toContain('`b · ');
  });
});
