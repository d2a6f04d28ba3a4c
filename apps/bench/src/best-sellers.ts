import os from 'node:os';
import { performance } from 'node:perf_hooks';
import { insertSelect, insertValues, pgSalesStats, refreshSalesRollup } from '@shop/adapters-postgres';
import { msOf, narrowBench, timings } from './narrow.ts';

/**
 * Loads a million order items spread over 30 days and measures GET /products/top's query (the
 * rollup-backed one the service runs) against the plain index-backed aggregate it replaces.
 * Usage: pnpm bench:top [items=1000000]
 */
const ITEMS = Number(process.argv[2] ?? 1_000_000);
const PRODUCTS = 1_000;
const ITEMS_PER_ORDER = 3;
const RUNS = 30;
const NAIVE = `
  SELECT i.product_id, sum(i.quantity)::bigint AS sold
  FROM orders o JOIN order_items i ON i.order_id = o.id
  WHERE o.status = 'PAID' AND o.created_at >= $1
  GROUP BY i.product_id ORDER BY sold DESC, i.product_id LIMIT $2`;
const paidOrder = (id: string, amount: number, createdAt: string) =>
  ({ id, user_id: '1', status: "'PAID'", total_amount: `${amount}`, discount_amount: '0', paid_amount: `${amount}`, coupon_id: 'NULL', created_at: createdAt });

await narrowBench('best-sellers.json', async (bench) => {
  const { pool, kysely } = bench.db;
  process.stderr.write(`loading ${ITEMS} order items on ${bench.where}…\n`);
  const t0 = performance.now();
  await pool.query(insertValues('users', { name: "'bench'", balance: '0' }));
  await pool.query(insertSelect('products', { name: `'product ' || g`, price: '1000 + g', stock: '1000000' }, 'FROM generate_series(1, $1) g'), [PRODUCTS]);
  // Skewed popularity (a few products sell far more), created uniformly over the last 30 days;
  // an order's lines are distinct products.
  await pool.query(
    `CREATE TEMP TABLE bench_orders AS
     SELECT (md5(g::text)::uuid) AS id, now() - random() * interval '30 days' AS created_at, floor(power(random(), 3) * $2)::int AS base
     FROM generate_series(1, $1) g`,
    [Math.ceil(ITEMS / ITEMS_PER_ORDER), PRODUCTS],
  );
  await pool.query(insertSelect('orders', paidOrder('id', 3000, 'created_at'), 'FROM bench_orders'));
  const item = { order_id: 'o.id', line_no: 'n', product_id: '1 + (o.base + (n - 1) * 337) % $2', quantity: '2', unit_price: '1000', line_amount: '2000' };
  await pool.query(insertSelect('order_items', item, 'FROM bench_orders o, generate_series(1, $1) n'), [ITEMS_PER_ORDER, PRODUCTS]);
  await pool.query('ANALYZE');
  const n = (await pool.query<{ n: number }>('SELECT count(*)::int AS n FROM order_items')).rows[0]!.n;
  const loadSeconds = (performance.now() - t0) / 1000;

  const firstFoldSeconds = (await msOf(() => refreshSalesRollup(kysely))) / 1000;
  const rollupRows = (await pool.query<{ n: number }>('SELECT count(*)::int AS n FROM product_sales_hourly')).rows[0]!.n;

  const stats = pgSalesStats(kysely);
  const results = [];
  for (const days of [3, 7, 30]) {
    const since = () => new Date(Date.now() - days * 86_400_000);
    const queries = [['rollup (served)', () => stats.top(since(), 5)], ['plain aggregate', () => pool.query(NAIVE, [since(), 5])]] as const;
    for (const [query, run] of queries) {
      await run(); // warm
      const times: number[] = [];
      for (let i = 0; i < RUNS; i++) times.push(await msOf(run));
      results.push({ query, days, ...timings(times) });
    }
  }
  // Folding a fresh minute of orders: what every refresh costs during a sale.
  await pool.query(insertSelect('orders', paidOrder('gen_random_uuid()', 1000, 'now()'), 'FROM generate_series(1, 5000)'));
  const incrementalMs = await msOf(() => refreshSalesRollup(kysely));

  const fmt = (x: number) => x.toFixed(1);
  const lines = [
    `## Best sellers with ${n.toLocaleString('en')} order items (${bench.where}, ${os.cpus().length} cores)`,
    '',
    `Load: ${loadSeconds.toFixed(1)} s. First fold of the rollup: ${firstFoldSeconds.toFixed(1)} s → ${rollupRows.toLocaleString('en')} hourly rows. ` +
      `Folding 5,000 new orders: ${fmt(incrementalMs)} ms.`,
    '',
    '| query | days | p50 ms | p95 ms | max ms |',
    '|---|---:|---:|---:|---:|',
    ...results.map((r) => `| ${r.query} | ${r.days} | ${fmt(r.p50)} | ${fmt(r.p95)} | ${fmt(r.max)} |`),
    '',
    `${RUNS} runs each after one warm-up, limit 5. Command: \`pnpm bench:top ${ITEMS}\`.`,
  ];
  return { lines, json: { items: n, where: bench.where, loadSeconds, firstFoldSeconds, incrementalMs, results } };
});
