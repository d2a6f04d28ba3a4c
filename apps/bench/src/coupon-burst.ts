import { mkdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import { pgCouponIssuance } from '@shop/adapters-postgres';
import { issueCoupon, systemClock } from '@shop/application';
import { benchDatabase, percentile } from './database.ts';

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

type Outcome = { ok: boolean; ms: number };

async function lockFirst(pool: pg.Pool, couponId: number, userId: number): Promise<boolean> {
  const c = await pool.connect();
  try {
    await c.query('BEGIN');
    const { rows } = await c.query<{ issued_quantity: number; total_quantity: number }>(
      'SELECT issued_quantity, total_quantity FROM coupons WHERE id = $1 FOR UPDATE',
      [couponId],
    );
    const held = await c.query('SELECT 1 FROM user_coupons WHERE user_id = $1 AND coupon_id = $2', [userId, couponId]);
    if (rows[0]!.issued_quantity >= rows[0]!.total_quantity || held.rowCount) {
      await c.query('ROLLBACK');
      return false;
    }
    await c.query('UPDATE coupons SET issued_quantity = issued_quantity + 1 WHERE id = $1', [couponId]);
    await c.query(
      `INSERT INTO user_coupons (user_id, coupon_id, issued_at, expires_at) VALUES ($1, $2, now(), now() + interval '30 days')`,
      [userId, couponId],
    );
    await c.query('COMMIT');
    return true;
  } finally {
    c.release();
  }
}

function summary(outcomes: Outcome[]) {
  const pick = (ok: boolean) => outcomes.filter((o) => o.ok === ok).map((o) => o.ms).sort((a, b) => a - b);
  const stats = (xs: number[]) => (xs.length ? { n: xs.length, p50: percentile(xs, 50), p99: percentile(xs, 99), max: xs[xs.length - 1]! } : { n: 0, p50: 0, p99: 0, max: 0 });
  return { winners: stats(pick(true)), losers: stats(pick(false)) };
}

async function main() {
  const bench = await benchDatabase();
  const pool = new pg.Pool({ connectionString: bench.url, max: CONNECTIONS });
  try {
    await pool.query(`INSERT INTO users (name) SELECT 'u' || g FROM generate_series(1, $1) g`, [2 * REQUESTS]);
    const all = (await pool.query<{ id: number }>('SELECT id FROM users ORDER BY id')).rows.map((r) => r.id);
    const [users, late] = [all.slice(0, REQUESTS), all.slice(REQUESTS)];
    const runs: Record<string, ReturnType<typeof summary> & { wallMs: number; issued: number; late: ReturnType<typeof summary>['losers'] }> = {};
    const issuance = pgCouponIssuance(bench.db.kysely);
    const strategies: Array<[string, (couponId: number, userId: number) => Promise<boolean>]> = [
      ['lock first', (c, u) => lockFirst(pool, c, u)],
      ['served (unlocked read, then one counting statement)', (c, u) => issueCoupon({ issuance, clock: systemClock }, { role: 'user', userId: u }, c, u).then(() => true, () => false)],
    ];
    for (const [label, issue] of strategies) {
      const { rows } = await pool.query<{ id: number }>(
        `INSERT INTO coupons (name, discount_type, discount_value, total_quantity, valid_days) VALUES ($1, 'FIXED', 1000, $2, 30) RETURNING id`,
        [label, QUANTITY],
      );
      const couponId = rows[0]!.id;
      const start = performance.now();
      const outcomes = await Promise.all(
        users.map(async (u) => {
          const s = performance.now();
          const ok = await issue(couponId, u);
          return { ok, ms: performance.now() - s };
        }),
      );
      const wallMs = performance.now() - start;
      const [{ issued_quantity }] = (await pool.query('SELECT issued_quantity FROM coupons WHERE id = $1', [couponId])).rows;
      if (issued_quantity !== QUANTITY || outcomes.filter((o) => o.ok).length !== QUANTITY) {
        throw new Error(`${label}: issued ${issued_quantity}, expected exactly ${QUANTITY}`);
      }
      // A second wave after the coupon is gone: what a flash sale's latecomers see.
      const lateOutcomes = await Promise.all(
        late.map(async (u) => {
          const s = performance.now();
          const ok = await issue(couponId, u);
          return { ok, ms: performance.now() - s };
        }),
      );
      if (lateOutcomes.some((o) => o.ok)) throw new Error(`${label}: issued past the quantity`);
      runs[label] = { ...summary(outcomes), wallMs, issued: issued_quantity, late: summary(lateOutcomes).losers };
    }
    const fmt = (x: number) => x.toFixed(1);
    const lines = [
      `## Coupon burst: ${REQUESTS} users, ${QUANTITY} copies, ${CONNECTIONS} connections (${bench.where}, ${os.cpus().length} cores)`,
      '',
      '| strategy | burst wall ms | winners p50 / p99 ms | losers in the burst p50 / p99 ms | latecomers p50 / p99 ms |',
      '|---|---:|---:|---:|---:|',
      ...Object.entries(runs).map(
        ([k, r]) =>
          `| ${k} | ${fmt(r.wallMs)} | ${fmt(r.winners.p50)} / ${fmt(r.winners.p99)} | ${fmt(r.losers.p50)} / ${fmt(r.losers.p99)} | ${fmt(r.late.p50)} / ${fmt(r.late.p99)} |`,
      ),
      '',
      `Both issued exactly ${QUANTITY}. Latecomers: ${REQUESTS} more users after the coupon ran out. Latency includes waiting for a pooled connection. Command: \`pnpm bench:coupon ${REQUESTS} ${QUANTITY} ${CONNECTIONS}\`.`,
    ];
    process.stdout.write(lines.join('\n') + '\n');
    const dir = new URL(`../../../bench/results/${new Date().toISOString().slice(0, 10)}/`, import.meta.url);
    await mkdir(dir, { recursive: true });
    await writeFile(new URL('coupon-burst-sql.json', dir), JSON.stringify({ requests: REQUESTS, quantity: QUANTITY, connections: CONNECTIONS, where: bench.where, runs }, null, 2));
  } finally {
    await pool.end();
    await bench.close();
  }
}

main().catch((err) => {
  process.stderr.write(`${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
