import type { BestSeller, Clock, SalesStats } from '../ports/index.ts';

const DAY_MS = 86_400_000;

export interface BestSellers {
  readonly from: Date;
  readonly to: Date;
  readonly items: ReadonlyArray<BestSeller & { readonly rank: number }>;
}

/**
 * Best sellers of the last `days` days. Answers are cached per (days, limit) for `cacheMs`, so a
 * burst of readers costs one query; together with the rollup's refresh interval this bounds how
 * stale an answer can be (see ADR 0005).
 */
export function bestSellersQuery(deps: { sales: SalesStats; clock: Clock }, cacheMs: number) {
  const cache = new Map<string, { at: number; value: Promise<BestSellers> }>();
  return (days: number, limit: number): Promise<BestSellers> => {
    const now = deps.clock.now();
    const key = `${days}:${limit}`;
    const hit = cache.get(key);
    if (hit && now.getTime() - hit.at < cacheMs) return hit.value;
    const from = new Date(now.getTime() - days * DAY_MS);
    const value = deps.sales.top(from, limit).then((rows) => ({
      from,
      to: now,
      items: rows.map((r, i) => ({ rank: i + 1, ...r })),
    }));
    cache.set(key, { at: now.getTime(), value });
    value.catch(() => cache.delete(key));
    return value;
  };
}
