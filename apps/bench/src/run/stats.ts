/** One measured request: start (ms since the window opened), latency (ms), status, error code, and what it was: ORDER, CANCEL, REFUND or 0 (other). */
export type Sample = [start: number, latencyMs: number, status: number, code: string, kind: 0 | 1 | 2 | 3];
export const [ORDER, CANCEL, REFUND] = [1, 2, 3] as const;
/** Either a timed window after a warm-up, or a fixed number of attempts, all measured. */
export type Shape = { readonly kind: 'timed'; readonly warmupMs: number; readonly durationMs: number } | { readonly kind: 'count'; readonly attempts: number };

export const round = (n: number) => Math.round(n * 100) / 100;
export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
export const fmt = (n: number) => n.toLocaleString('en-US', { maximumFractionDigits: 2 });
/** Nearest rank: the smallest value with at least q of them at or below it. */
export const quantile = (sorted: readonly number[], q: number) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]! : 0);
const sortedMs = (xs: number[]) => xs.sort((a, b) => a - b);

/** Nearest-rank percentiles of some timings (ms), rounded. */
export function percentiles(ms: number[]) {
  const sorted = sortedMs(ms);
  const q = (p: number) => round(quantile(sorted, p));
  return { p50: q(0.5), p95: q(0.95), p99: q(0.99), max: round(sorted.at(-1) ?? 0) };
}
/** Percentiles of the samples `which` picks (all by default). */
export const latency = (samples: readonly Sample[], which: (s: Sample) => boolean = () => true) => percentiles(samples.filter(which).map((s) => s[1]));

/** How many samples had each outcome: "201", "409 COUPON_EXHAUSTED", "0 ECONNRESET" (dropped), … */
export function outcomes(samples: readonly Sample[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const [, , status, code] of samples) {
    const key = status >= 200 && status < 300 ? String(status) : `${status} ${code}`.trim();
    counts[key] = (counts[key] ?? 0) + 1;
  }
  return counts;
}

export type Summary = ReturnType<typeof summarise>;
export function summarise({ samples, windowMs, transportErrors }: { samples: Sample[]; windowMs: number; transportErrors: number }) {
  const perSecond = new Array<number>(Math.max(1, Math.ceil(windowMs / 1000))).fill(0);
  for (const [start, ms] of samples) perSecond[Math.min(perSecond.length - 1, Math.floor((start + ms) / 1000))]!++;
  const [seconds, orders] = [windowMs / 1000, samples.filter((s) => s[4] === ORDER && s[2] === 201).length];
  const sorted = sortedMs(samples.map((s) => s[1]));
  return {
    requests: samples.length, requestsPerSecond: round(samples.length / seconds), orders, ordersPerSecond: round(orders / seconds),
    // perSecond: requests completed in each second of the window; latencyCdfMs: within how many ms 5 %, 10 %, … 100 % of them were answered.
    latencyMs: latency(samples), outcomes: outcomes(samples), transportErrors, perSecond,
    latencyCdfMs: Array.from({ length: 20 }, (_, i) => round(quantile(sorted, (i + 1) / 20))),
  };
}

/** A small seeded generator (mulberry32), so two runs draw the same requests. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

/** What `f` returns, or undefined if it throws. */
export function tryOr<T>(f: () => T): T | undefined {
  try {
    return f();
  } catch {
    return undefined;
  }
}

export const pick = <T>(rand: () => number, from: readonly T[]): T => from[Math.floor(rand() * from.length)]!;

/** 1 to 3 distinct products, 1 unit each: the uniform order. */
export function uniformItems(rand: () => number, productIds: readonly number[]) {
  const [n, chosen] = [1 + Math.floor(rand() * 3), new Set<number>()];
  while (chosen.size < n) chosen.add(pick(rand, productIds));
  return [...chosen].map((productId) => ({ productId, quantity: 1 }));
}
