import os from 'node:os';
import { performance } from 'node:perf_hooks';
import { pgSalesStats, refreshSalesRollup } from '@shop/adapters-postgres';
import { addFreshOrders, countRows, loadSalesMonth, plainTopSellers } from '@shop/adapters-postgres/bench';
import { msOf, narrowBench, timings } from './narrow.ts';
import { table } from './run/report.ts';

/**
 * Loads a million order items over 30 days and times GET /products/top's query (the rollup-backed one served) against the plain aggregate it replaced.
 * Usage: pnpm bench:top [items=1000000]
 */
const [ITEMS, PRODUCTS, ITEMS_PER_ORDER, RUNS] = [Number(process.argv[2] ?? 1_000_000), 1_000, 3, 30];

await narrowBench('best-sellers.json', async (bench) => {
  const { pool, kysely } = bench.db;
  process.stderr.write(`loading ${ITEMS} order items on ${bench.where}…\n`);
  const t0 = performance.now();
  const n = await loadSalesMonth(pool, { items: ITEMS, products: PRODUCTS, itemsPerOrder: ITEMS_PER_ORDER });
  const loadSeconds = (performance.now() - t0) / 1000;
  const firstFoldSeconds = (await msOf(() => refreshSalesRollup(kysely))) / 1000;
  const rollupRows = await countRows(pool, 'product_sales_hourly');

  const stats = pgSalesStats(kysely);
  const results = [];
  for (const days of [3, 7, 30]) {
    const since = () => new Date(Date.now() - days * 86_400_000);
    const queries = [['rollup (served)', () => stats.top(since(), 5)], ['plain aggregate', () => plainTopSellers(pool, since(), 5)]] as const;
    for (const [query, run] of queries) {
      await run(); // warm
      const times: number[] = [];
      for (let i = 0; i < RUNS; i++) times.push(await msOf(run));
      results.push({ query, days, ...timings(times) });
    }
  }
  // Folding a fresh minute of orders: what every refresh costs during a sale.
  await addFreshOrders(pool, 5000);
  const incrementalMs = await msOf(() => refreshSalesRollup(kysely));

  const fmt = (x: number) => x.toFixed(1);
  const lines = [
    `## Best sellers with ${n.toLocaleString('en')} order items (${bench.where}, ${os.cpus().length} cores)`,
    '',
    `Load: ${fmt(loadSeconds)} s. First fold of the rollup: ${fmt(firstFoldSeconds)} s → ${rollupRows.toLocaleString('en')} hourly rows. ` +
      `Folding 5,000 new orders: ${fmt(incrementalMs)} ms.`,
    '',
    ...table(results, [
      ['query', (r) => r.query], ['days', (r) => r.days], ['p50 ms', (r) => fmt(r.p50)], ['p95 ms', (r) => fmt(r.p95)], ['max ms', (r) => fmt(r.max)],
    ]),
    `${RUNS} runs each after one warm-up, limit 5. Command: \`pnpm bench:top ${ITEMS}\`.`,
  ];
  return { lines, json: { items: n, where: bench.where, loadSeconds, firstFoldSeconds, incrementalMs, results } };
});
