import { ORDER, type LoadResult, type Sample } from './protocol.ts';

export const round = (n: number) => Math.round(n * 100) / 100;

export function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]!;
}

export type Latency = { p50: number; p95: number; p99: number; max: number };

/** Percentiles of the samples `which` picks (all by default). */
export function latency(samples: readonly Sample[], which: (s: Sample) => boolean = () => true): Latency {
  const sorted = samples.filter(which).map((s) => s[1]).sort((a, b) => a - b);
  const q = (p: number) => round(quantile(sorted, p));
  return { p50: q(0.5), p95: q(0.95), p99: q(0.99), max: round(sorted.at(-1) ?? 0) };
}

export interface Summary {
  readonly requests: number;
  readonly requestsPerSecond: number;
  readonly orders: number;
  readonly ordersPerSecond: number;
  readonly latencyMs: Latency;
  /** "201", "400 OUT_OF_STOCK", … */
  readonly outcomes: Record<string, number>;
  /** Requests completed in each second of the window, for the chart. */
  readonly perSecond: number[];
  readonly transportErrors: number;
}

export function summarise({ samples, windowMs, transportErrors }: LoadResult): Summary {
  const outcomes: Record<string, number> = {};
  const perSecond = new Array<number>(Math.max(1, Math.ceil(windowMs / 1000))).fill(0);
  let orders = 0;
  for (const [start, ms, status, code, kind] of samples) {
    const key = status >= 200 && status < 300 ? String(status) : `${status} ${code}`.trim();
    outcomes[key] = (outcomes[key] ?? 0) + 1;
    if (kind === ORDER && status === 201) orders++;
    perSecond[Math.min(perSecond.length - 1, Math.floor((start + ms) / 1000))]!++;
  }
  const seconds = windowMs / 1000;
  return {
    requests: samples.length,
    requestsPerSecond: round(samples.length / seconds),
    orders,
    ordersPerSecond: round(orders / seconds),
    latencyMs: latency(samples),
    outcomes,
    perSecond,
    transportErrors,
  };
}

/** A small seeded generator (mulberry32), so two runs draw the same requests. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

export const pick = <T>(rand: () => number, from: readonly T[]): T => from[Math.floor(rand() * from.length)]!;

/** 1 to 3 distinct products, 1 unit each: the uniform order. */
export function uniformItems(rand: () => number, productIds: readonly number[]) {
  const n = 1 + Math.floor(rand() * 3);
  const chosen = new Set<number>();
  while (chosen.size < n) chosen.add(pick(rand, productIds));
  return [...chosen].map((productId) => ({ productId, quantity: 1 }));
}
