import os from 'node:os';
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import { insertSelect, insertValues, pgCouponIssuance } from '@shop/adapters-postgres';
import { issueCoupon, systemClock } from '@shop/application';
import { narrowBench, timings } from './narrow.ts';

/**
 * A coupon burst straight on the database, two ways, same run, same pool of connections:
 *  - "lock first": BEGIN; SELECT … FOR UPDATE the coupon; check; count; insert; COMMIT — every
 *    request, winner or loser, queues on the coupon row;
 *  - "served": the service's issueCoupon — unlocked read first, one short counting statement.
 * Usage: pnpm bench:coupon [requests=2000] [quantity=100] [connections=64]
 */
const REQUESTS = Number(process.argv[2] ?? 2_000);
const QUANTITY = Number(process.argv[3] ?? 100);
const CONNECTIONS = Number(process.argv[4] ?? 64);
const ISSUE = insertValues('user_coupons', { user_id: '$1', coupon_id: '$2', issued_at: 'now()', expires_at: "now() + interval '30 days'" });

async function lockFirst(pool: pg.Pool, couponId: number, userId: number): Promise<boolean> {
  const c = await pool.connect();
  try {
    await c.query('BEGIN');
    const coupon = (await c.query('SELECT issued_quantity, total_quantity FROM coupons WHERE id = $1 FOR UPDATE', [couponId])).rows[0];
    const held = await c.query('SELECT 1 FROM user_coupons WHERE user_id = $1 AND coupon_id = $2', [userId, couponId]);
    if (coupon.issued_quantity >= coupon.total_quantity || held.rowCount) {
      await c.query('ROLLBACK');
      return false;
    }
    await c.query('UPDATE coupons SET issued_quantity = issued_quantity + 1 WHERE id = $1', [couponId]);
    await c.query(ISSUE, [userId, couponId]);
    await c.query('COMMIT');
    return true;
  } finally {
    c.release();
  }
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

await narrowBench('coupon-burst-sql.json', async (bench) => {
  const pool = new pg.Pool({ connectionString: bench.url, max: CONNECTIONS });
  try {
    await pool.query(insertSelect('users', { name: `'u' || g` }, 'FROM generate_series(1, $1) g'), [2 * REQUESTS]);
    const all = (await pool.query<{ id: number }>('SELECT id FROM users ORDER BY id')).rows.map((r) => r.id);
    const [users, late] = [all.slice(0, REQUESTS), all.slice(REQUESTS)];
    const issuance = pgCouponIssuance(bench.db.kysely);
    const strategies: Array<[string, (couponId: number, userId: number) => Promise<boolean>]> = [
      ['lock first', (c, u) => lockFirst(pool, c, u)],
      ['served (unlocked read, then one counting statement)', (c, u) =>
        issueCoupon({ issuance, clock: systemClock }, { role: 'user', userId: u }, c, u).then(() => true, () => false)],
    ];
    const runs: Record<string, unknown> = {};
    const rows: string[] = [];
    const fmt = (x: number) => x.toFixed(1);
    for (const [label, issue] of strategies) {
      const coupon = { name: '$1', discount_type: "'FIXED'", discount_value: '1000', total_quantity: '$2', min_order_amount: '0', valid_days: '30' };
      const couponId = (await pool.query<{ id: number }>(insertValues('coupons', coupon, 'RETURNING id'), [label, QUANTITY])).rows[0]!.id;
      const start = performance.now();
      const first = await burst(users, (u) => issue(couponId, u));
      const wallMs = performance.now() - start;
      const issued = (await pool.query('SELECT issued_quantity FROM coupons WHERE id = $1', [couponId])).rows[0].issued_quantity;
      if (issued !== QUANTITY || first.winners.n !== QUANTITY) throw new Error(`${label}: issued ${issued}, expected exactly ${QUANTITY}`);
      // A second wave after the coupon is gone: what a flash sale's latecomers see.
      const latecomers = await burst(late, (u) => issue(couponId, u));
      if (latecomers.winners.n > 0) throw new Error(`${label}: issued past the quantity`);
      runs[label] = { ...first, wallMs, issued, late: latecomers.losers };
      const { winners: w, losers: l } = first;
      const pair = (t: { p50: number; p99: number }) => `${fmt(t.p50)} / ${fmt(t.p99)}`;
      rows.push(`| ${label} | ${fmt(wallMs)} | ${pair(w)} | ${pair(l)} | ${pair(latecomers.losers)} |`);
    }
    const lines = [
      `## Coupon burst: ${REQUESTS} users, ${QUANTITY} copies, ${CONNECTIONS} connections (${bench.where}, ${os.cpus().length} cores)`,
      '',
      '| strategy | burst wall ms | winners p50 / p99 ms | losers in the burst p50 / p99 ms | latecomers p50 / p99 ms |',
      '|---|---:|---:|---:|---:|',
      ...rows,
      '',
      `Both issued exactly ${QUANTITY}. Latecomers: ${REQUESTS} more users after the coupon ran out. Latency includes waiting for a pooled connection. ` +
        `Command: \`pnpm bench:coupon ${REQUESTS} ${QUANTITY} ${CONNECTIONS}\`.`,
    ];
    return { lines, json: { requests: REQUESTS, quantity: QUANTITY, connections: CONNECTIONS, where: bench.where, runs } };
  } finally {
    await pool.end();
  }
});
