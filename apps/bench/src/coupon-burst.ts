import os from 'node:os';
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import { pgCouponIssuance } from '@shop/adapters-postgres';
import { addCoupon, addUsers, issuedQuantity, lockFirstIssue } from '@shop/adapters-postgres/bench';
import { issueCoupon, systemClock } from '@shop/application';
import { narrowBench, timings } from './narrow.ts';
import { table } from './run/report.ts';

/**
 * A coupon burst straight on the database, two ways, same pool: "lock first" (SELECT … FOR UPDATE the coupon, check, count, insert: every request,
 * winner or loser, queues on the coupon row) and "served" (the service's issueCoupon: unlocked read first, one short counting statement).
 * Usage: pnpm bench:coupon [requests=2000] [quantity=100] [connections=64]
 */
const [REQUESTS, QUANTITY, CONNECTIONS] = [Number(process.argv[2] ?? 2_000), Number(process.argv[3] ?? 100), Number(process.argv[4] ?? 64)];

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

await narrowBench('coupon-burst-sql.json', async (bench) => {
  const pool = new pg.Pool({ connectionString: bench.url, max: CONNECTIONS });
  try {
    const all = await addUsers(pool, 2 * REQUESTS);
    const [users, late] = [all.slice(0, REQUESTS), all.slice(REQUESTS)];
    const issuance = pgCouponIssuance(bench.db.kysely);
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
    const [fmt, pair] = [(x: number) => x.toFixed(1), (t: { p50: number; p99: number }) => `${t.p50.toFixed(1)} / ${t.p99.toFixed(1)}`];
    const lines = [
      `## Coupon burst: ${REQUESTS} users, ${QUANTITY} copies, ${CONNECTIONS} connections (${bench.where}, ${os.cpus().length} cores)`,
      '',
      ...table(Object.entries(runs), [
        ['strategy', ([label]) => label], ['burst wall ms', ([, r]) => fmt(r.wallMs)], ['winners p50 / p99 ms', ([, r]) => pair(r.winners)],
        ['losers in the burst p50 / p99 ms', ([, r]) => pair(r.losers)], ['latecomers p50 / p99 ms', ([, r]) => pair(r.late)],
      ]),
      `Both issued exactly ${QUANTITY}. Latecomers: ${REQUESTS} more users after the coupon ran out. Latency includes waiting for a pooled connection. ` +
        `Command: \`pnpm bench:coupon ${REQUESTS} ${QUANTITY} ${CONNECTIONS}\`.`,
    ];
    return { lines, json: { requests: REQUESTS, quantity: QUANTITY, connections: CONNECTIONS, where: bench.where, runs } };
  } finally {
    await pool.end();
  }
});
