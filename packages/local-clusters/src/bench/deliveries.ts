/**
 * The benchmark's "each received once": the event ids the outbox recorded against those a platform
 * received, in arrival order, repeats included. Missing: recorded, never received; invented:
 * received, never recorded; duplicates: arrivals beyond the first of their id.
 */
export function receivedOnce(recorded: readonly string[], received: readonly string[]) {
  const [want, got] = [new Set(recorded), new Set(received)];
  const missing = [...want].filter((id) => !got.has(id));
  return {
    distinct: got.size, missing: missing.length, invented: [...got].filter((id) => !want.has(id)).length,
    duplicates: received.length - got.size, missingExamples: missing.slice(0, 3),
  };
}

/** Nearest-rank percentiles of some timings (ms), rounded to 0.1 ms. */
export function spread(ms: readonly number[]) {
  const sorted = [...ms].sort((a, b) => a - b);
  const q = (p: number) => (sorted.length ? Math.round(sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)]! * 10) / 10 : 0);
  return { n: sorted.length, p50: q(0.5), p99: q(0.99), max: q(1) };
}

export const fmt = (n: number) => n.toLocaleString('en-US', { maximumFractionDigits: 2 });
export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
