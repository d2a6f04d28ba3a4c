import { ORDER, type LoadResult, type Sample } from './protocol.ts';

export interface Summary {
  readonly requests: number;
  readonly requestsPerSecond: number;
  readonly orders: number;
  readonly ordersPerSecond: number;
  readonly latencyMs: { p50: number; p95: number; p99: number; max: number };
  /** "201", "400 OUT_OF_STOCK", … */
  readonly outcomes: Record<string, number>;
  /** Requests completed per second of the window, for the chart. */
  readonly perSecond: number[];
  readonly transportErrors: number;
}

export function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]!;
}

const round = (n: number) => Math.round(n * 100) / 100;

export function summarise(result: LoadResult): Summary {
  const { samples, windowMs } = result;
  const latencies = samples.map((s) => s[1]).sort((a, b) => a - b);
  const outcomes: Record<string, number> = {};
  const perSecond = new Array<number>(Math.max(1, Math.ceil(windowMs / 1000))).fill(0);
  let orders = 0;
  for (const [start, latency, status, code, kind] of samples) {
    const key = status >= 200 && status < 300 ? String(status) : `${status} ${code}`.trim();
    outcomes[key] = (outcomes[key] ?? 0) + 1;
    if (kind === ORDER && status === 201) orders++;
    const bucket = Math.min(perSecond.length - 1, Math.floor((start + latency) / 1000));
    perSecond[bucket]!++;
  }
  const seconds = windowMs / 1000;
  return {
    requests: samples.length,
    requestsPerSecond: round(samples.length / seconds),
    orders,
    ordersPerSecond: round(orders / seconds),
    latencyMs: {
      p50: round(quantile(latencies, 0.5)),
      p95: round(quantile(latencies, 0.95)),
      p99: round(quantile(latencies, 0.99)),
      max: round(latencies.at(-1) ?? 0),
    },
    outcomes,
    perSecond,
    transportErrors: result.transportErrors,
  };
}

/** Latencies of the requests whose outcome is `key`, for per-outcome percentiles. */
export function latenciesOf(samples: readonly Sample[], key: (s: Sample) => boolean): number[] {
  return samples.filter(key).map((s) => s[1]).sort((a, b) => a - b);
}
