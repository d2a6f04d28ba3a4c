import { mkdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import { performance } from 'node:perf_hooks';
import { pgSalesStats, refreshSalesRollup } from '@shop/adapters-postgres';
import { benchDatabase, percentile } from './database.ts';

/**
 * Loads a million order items spread over 30 days and measures GET /products/top's query
 * (the rollup-backed one the service runs) against the plain index-backed aggregate it replaces.
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

async function main() {
  const bench = await benchDatabase();
  const { pool, kysely } = bench.db;
  try {
    process.stderr.write(`loading ${ITEMS} order items on ${bench.where}…\n`);
    const t0 = performance.now();
    await pool.query(`INSERT INTO users (name, balance) VALUES ('bench', 0)`);
    await pool.query(`INSERT INTO products (name, price, stock) SELECT 'product ' || g, 1000 + g, 1000000 FROM generate_series(1, $1) g`, [PRODUCTS]);
    const orders = Math.ceil(ITEMS / ITEMS_PER_ORDER);
    // Skewed popularity (a few products sell far more), created uniformly over the last 30 days;
    // an order's lines are distinct products.
    await pool.query(
      `CREATE TEMP TABLE bench_orders AS
       SELECT (md5(g::text)::uuid) AS id, now() - random() * interval '30 days' AS created_at,
              floor(power(random(), 3) * $2)::int AS base
       FROM generate_series(1, $1) g`,
      [orders, PRODUCTS],
    );
    await pool.query(
      `INSERT INTO orders (id, user_id, status, total_amount, discount_amount, paid_amount, coupon_id, created_at)
       SELECT id, 1, 'PAID', 3000, 0, 3000, NULL, created_at FROM bench_orders`,
    );
    await pool.query(
      `INSERT INTO order_items (order_id, line_no, product_id, quantity, unit_price, line_amount)
       SELECT o.id, n, 1 + (o.base + (n - 1) * 337) % $2, 2, 1000, 2000
       FROM bench_orders o, generate_series(1, $1) n`,
      [ITEMS_PER_ORDER, PRODUCTS],
    );
    await pool.query('ANALYZE');
    const [{ n }] = (await pool.query<{ n: number }>('SELECT count(*)::int AS n FROM order_items')).rows as [{ n: number }];
    const loadSeconds = (performance.now() - t0) / 1000;

    const r0 = performance.now();
    await refreshSalesRollup(kysely);
    const firstFoldSeconds = (performance.now() - r0) / 1000;
    const [{ rows: rollupRows }] = [await pool.query<{ n: number }>('SELECT count(*)::int AS n FROM product_sales_hourly')];

    const stats = pgSalesStats(kysely);
    const results: Array<{ query: string; days: number; p50: number; p95: number; max: number }> = [];
    for (const days of [3, 7, 30]) {
      for (const [label, run] of [
        ['rollup (served)', () => stats.top(new Date(Date.now() - days * 86_400_000), 5)],
        ['plain aggregate', () => pool.query(NAIVE, [new Date(Date.now() - days * 86_400_000), 5])],
      ] as const) {
        await run(); // warm
        const times: number[] = [];
        for (let i = 0; i < RUNS; i++) {
          const s = performance.now();
          await run();
          times.push(performance.now() - s);
        }
        times.sort((a, b) => a - b);
        results.push({ query: label, days, p50: percentile(times, 50), p95: percentile(times, 95), max: times[times.length - 1]! });
      }
    }
    // Folding a fresh minute of orders: what every refresh costs during a sale.
    await pool.query(
      `INSERT INTO orders (id, user_id, status, total_amount, discount_amount, paid_amount, coupon_id, created_at)
       SELECT gen_random_uuid(), 1, 'PAID', 1000, 0, 1000, NULL, now() FROM generate_series(1, 5000)`,
    );
    const f0 = performance.now();
    await refreshSalesRollup(kysely);
    const incrementalMs = performance.now() - f0;

    const fmt = (x: number) => x.toFixed(1);
    const lines = [
      `## Best sellers with ${n.toLocaleString('en')} order items (${bench.where}, ${os.cpus().length} cores)`,
      '',
      `Load: ${loadSeconds.toFixed(1)} s. First fold of the rollup: ${firstFoldSeconds.toFixed(1)} s → ${rollupRows[0]!.n.toLocaleString('en')} hourly rows. Folding 5,000 new orders: ${fmt(incrementalMs)} ms.`,
      '',
      '| query | days | p50 ms | p95 ms | max ms |',
      '|---|---:|---:|---:|---:|',
      ...results.map((r) => `| ${r.query} | ${r.days} | ${fmt(r.p50)} | ${fmt(r.p95)} | ${fmt(r.max)} |`),
      '',
      `${RUNS} runs each after one warm-up, limit 5. Command: \`pnpm bench:top ${ITEMS}\`.`,
    ];
    process.stdout.write(lines.join('\n') + '\n');
    const dir = new URL(`../../../bench/results/${new Date().toISOString().slice(0, 10)}/`, import.meta.url);
    await mkdir(dir, { recursive: true });
    await writeFile(new URL('best-sellers.json', dir), JSON.stringify({ items: n, where: bench.where, loadSeconds, firstFoldSeconds, incrementalMs, results }, null, 2));
  } finally {
    await bench.close();
  }
}

main().catch((err) => {
  process.stderr.write(`${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
