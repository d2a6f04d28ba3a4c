import { mkdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import { pgCouponIssuance, pgSalesStats, refreshSalesRollup } from '@shop/adapters-postgres';
import { addCoupon, addFreshOrders, addUsers, countRows, issuedQuantity, loadSalesMonth, lockFirstIssue, plainTopSellers } from '@shop/adapters-postgres/bench';
import { issueCoupon, systemClock } from '@shop/application';
import { table } from './run/report.ts';
import { percentiles } from './run/stats.ts';
import { benchDatabase, type BenchDatabase } from './run/target.ts';

// The narrow benches, bench:top and bench:coupon, each on a fresh database, its Markdown on stdout and its JSON in bench/results/<date>/.
const [which, ...args] = process.argv.slice(2);
const arg = (i: number, value: number) => Number(args[i] ?? value);
const [fmt, pair] = [(x: number) => x.toFixed(1), (t: { p50: number; p99: number }) => `${t.p50.toFixed(1)} / ${t.p99.toFixed(1)}`];
const timings = (times: number[]) => ({ n: times.length, ...percentiles(times) });
async function msOf(f: () => Promise<unknown>): Promise<number> {
  const s = performance.now();
  await f();
  return performance.now() - s;
}

/** pnpm bench:top [items=1000000]: order items over 30 days; GET /products/top's query (the rollup's) against the plain aggregate it replaced. */
async function bestSellers(bench: BenchDatabase) {
  const [ITEMS, PRODUCTS, ITEMS_PER_ORDER, RUNS] = [arg(0, 1_000_000), 1_000, 3, 30];
  const { pool, kysely } = bench.db;
  process.stderr.write(`loading ${ITEMS} order items on ${bench.where}…\n`);
  const t0 = performance.now();
  const n = await loadSalesMonth(pool, { items: ITEMS, products: PRODUCTS, itemsPerOrder: ITEMS_PER_ORDER });
  const loadSeconds = (performance.now() - t0) / 1000;
  const firstFoldSeconds = (await msOf(() => refreshSalesRollup(kysely))) / 1000;
  const rollupRows = await countRows(pool, 'product_sales_hourly');
  const [stats, results] = [pgSalesStats(kysely), [] as Array<{ query: string; days: number } & ReturnType<typeof timings>>];
  for (const days of [3, 7, 30]) {
    const since = () => new Date(Date.now() - days * 86_400_000);
    for (const [query, run] of [['rollup (served)', () => stats.top(since(), 5)], ['plain aggregate', () => plainTopSellers(pool, since(), 5)]] as const) {
      await run(); // warm
      const times: number[] = [];
      for (let i = 0; i < RUNS; i++) times.push(await msOf(run));
      results.push({ query, days, ...timings(times) });
    }
  }
  // Folding a fresh minute of orders: what every refresh costs during a sale.
  await addFreshOrders(pool, 5000);
  const incrementalMs = await msOf(() => refreshSalesRollup(kysely));
  const lines = [
    `## Best sellers with ${n.toLocaleString('en')} order items (${bench.where}, ${os.cpus().length} cores)`, '',
    `Load: ${fmt(loadSeconds)} s. First fold of the rollup: ${fmt(firstFoldSeconds)} s → ${rollupRows.toLocaleString('en')} hourly rows. ` +
      `Folding 5,000 new orders: ${fmt(incrementalMs)} ms.`,
    '',
    ...table(results, [
      ['query', (r) => r.query], ['days', (r) => r.days], ['p50 ms', (r) => fmt(r.p50)], ['p95 ms', (r) => fmt(r.p95)], ['max ms', (r) => fmt(r.max)],
    ]),
    `${RUNS} runs each after one warm-up, limit 5. Command: \`pnpm bench:top ${ITEMS}\`.`,
  ];
  return { file: 'best-sellers.json', lines, json: { items: n, where: bench.where, loadSeconds, firstFoldSeconds, incrementalMs, results } };
}

/** Every user at once, each timed: how long the winners and the losers waited. */
async function burst(users: number[], issue: (userId: number) => Promise<boolean>) {
  const outcomes = await Promise.all(users.map(async (u) => {
    const s = performance.now();
    const ok = await issue(u);
    return { ok, ms: performance.now() - s };
  }));
  const stats = (ok: boolean) => timings(outcomes.filter((o) => o.ok === ok).map((o) => o.ms));
  return { winners: stats(true), losers: stats(false) };
}

/**
 * pnpm bench:coupon [requests=2000] [quantity=100] [connections=64]: a coupon burst straight on the database, same pool, "lock first" (SELECT … FOR
 * UPDATE the coupon: every request, winner or loser, queues on its row) against "served" (the service's issueCoupon); then as many latecomers.
 */
async function couponBurst(bench: BenchDatabase) {
  const [REQUESTS, QUANTITY, CONNECTIONS] = [arg(0, 2_000), arg(1, 100), arg(2, 64)];
  const pool = new pg.Pool({ connectionString: bench.url, max: CONNECTIONS });
  try {
    const all = await addUsers(pool, 2 * REQUESTS);
    const [users, late, issuance] = [all.slice(0, REQUESTS), all.slice(REQUESTS), pgCouponIssuance(bench.db.kysely)];
    const strategies: Array<[string, (couponId: number, userId: number) => Promise<boolean>]> = [
      ['lock first', (c, u) => lockFirstIssue(pool, c, u)],
      ['served (unlocked read, then one counting statement)', (c, u) =>
        issueCoupon({ issuance, clock: systemClock }, { role: 'user', userId: u }, c, u).then(() => true, () => false)],
    ];
    const runs: Record<string, Awaited<ReturnType<typeof burst>> & { wallMs: number; issued: number; late: ReturnType<typeof timings> }> = {};
    for (const [label, issue] of strategies) {
      const couponId = await addCoupon(pool, label, QUANTITY);
      const start = performance.now();
      const first = await burst(users, (u) => issue(couponId, u));
      const wallMs = performance.now() - start;
      const issued = await issuedQuantity(pool, couponId);
      if (issued !== QUANTITY || first.winners.n !== QUANTITY) throw new Error(`${label}: issued ${issued}, expected exactly ${QUANTITY}`);
      // A second wave after the coupon is gone: what a flash sale's latecomers see.
      const latecomers = await burst(late, (u) => issue(couponId, u));
      if (latecomers.winners.n > 0) throw new Error(`${label}: issued past the quantity`);
      runs[label] = { ...first, wallMs, issued, late: latecomers.losers };
    }
    const lines = [
      `## Coupon burst: ${REQUESTS} users, ${QUANTITY} copies, ${CONNECTIONS} connections (${bench.where}, ${os.cpus().length} cores)`, '',
      ...table(Object.entries(runs), [
        ['strategy', ([label]) => label], ['burst wall ms', ([, r]) => fmt(r.wallMs)], ['winners p50 / p99 ms', ([, r]) => pair(r.winners)],
        ['losers in the burst p50 / p99 ms', ([, r]) => pair(r.losers)], ['latecomers p50 / p99 ms', ([, r]) => pair(r.late)],
      ]),
      `Both issued exactly ${QUANTITY}. Latecomers: ${REQUESTS} more users after the coupon ran out. Latency includes waiting for a pooled connection. ` +
        `Command: \`pnpm bench:coupon ${REQUESTS} ${QUANTITY} ${CONNECTIONS}\`.`,
    ];
    return { file: 'coupon-burst-sql.json', lines, json: { requests: REQUESTS, quantity: QUANTITY, connections: CONNECTIONS, where: bench.where, runs } };
  } finally {
    await pool.end();
  }
}

const bench = await benchDatabase();
try {
  const { file, lines, json } = await (which === 'top' ? bestSellers : couponBurst)(bench);
  process.stdout.write(`${lines.join('\n')}\n`);
  const dir = new URL(`../../../bench/results/${new Date().toISOString().slice(0, 10)}/`, import.meta.url);
  await mkdir(dir, { recursive: true });
  await writeFile(new URL(file, dir), JSON.stringify(json, null, 2));
} catch (err) {
  process.stderr.write(`${err instanceof Error ? err.stack : String(err)}\n`);
  process.exitCode = 1;
} finally {
  await bench.close();
}
