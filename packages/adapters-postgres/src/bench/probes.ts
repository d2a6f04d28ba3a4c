import type pg from 'pg';

/** What the benchmark reads of the database to check and explain its runs. */

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const count = async (pool: pg.Pool, sql: string, values: unknown[] = []) => (await pool.query<{ n: number }>(sql, values)).rows[0]!.n;

/** Whether pg_stat_statements can be read in the database `pool` talks to; `create` creates the extension first if it can. */
export async function readsStatements(pool: pg.Pool, create: boolean): Promise<boolean> {
  if (create) await pool.query('CREATE EXTENSION IF NOT EXISTS pg_stat_statements').catch(() => undefined);
  return pool.query('SELECT 1 FROM pg_stat_statements LIMIT 1').then(() => true, () => false);
}

export const resetStatements = (pool: pg.Pool) => pool.query('SELECT pg_stat_statements_reset()');

export type StatementStats = Awaited<ReturnType<typeof topStatements>>;
/** The `limit` most expensive statements by total_exec_time, nested ones (track = all) included; top level counted once. */
export async function topStatements(pool: pg.Pool, limit = 8) {
  const db = 'dbid = (SELECT oid FROM pg_database WHERE datname = current_database())';
  const { rows } = await pool.query<{ query: string; toplevel: boolean; calls: string; total: number; rows: string }>(
    `SELECT query, toplevel, calls, total_exec_time AS total, rows FROM pg_stat_statements
     WHERE ${db} AND query NOT LIKE '%pg_stat_statements%' ORDER BY total_exec_time DESC LIMIT $1`,
    [limit],
  );
  const sum = (await pool.query(`SELECT sum(total_exec_time) AS ms, sum(calls) AS calls FROM pg_stat_statements WHERE ${db} AND toplevel`)).rows[0];
  const top = rows.map((r) => ({
    query: r.query.replace(/\s+/g, ' ').trim(), toplevel: r.toplevel, calls: Number(r.calls), totalMs: r.total, rows: Number(r.rows),
  }));
  return { top, toplevelMs: Number(sum.ms ?? 0), toplevelCalls: Number(sum.calls ?? 0) };
}

/** The process id of the backend serving one of the pool's connections. */
export const backendPid = (pool: pg.Pool) => count(pool, 'SELECT pg_backend_pid() AS n');

/** Waits until the outbox holds no undelivered record (the relay has caught up). */
export async function waitForDelivery(pool: pg.Pool, timeoutMs = 180_000): Promise<void> {
  for (const deadline = Date.now() + timeoutMs; ; await sleep(200)) {
    const n = await count(pool, 'SELECT count(*)::int AS n FROM outbox_events WHERE delivered_at IS NULL');
    if (n === 0) return;
    if (Date.now() > deadline) throw new Error(`${n} events still undelivered after ${timeoutMs} ms`);
  }
}

/**
 * The same quiet server before each measured run: the previous run's events delivered, the tables
 * it grew vacuumed and analysed, its dirty pages written. Otherwise a run pays for the autovacuum
 * and checkpoint of the runs before it, and a same-run ratio between twins measures their order.
 */
export async function quiesce(pool: pg.Pool): Promise<void> {
  await waitForDelivery(pool);
  // Not an empty table: its statistics would then say "empty" for the whole next run, and plans
  // cached on that scan it as it grows (seen costing 0.2-0.35 ms per order in uniform).
  const tables = ['users', 'products', 'orders', 'order_items', 'balance_ledger', 'user_coupons', 'outbox_events', 'idempotency_keys'];
  const filled = [];
  for (const t of tables) if ((await pool.query(`SELECT 1 FROM ${t} LIMIT 1`)).rowCount) filled.push(t);
  if (filled.length > 0) await pool.query(`VACUUM (ANALYZE) ${filled.join(', ')}`);
  await pool.query('CHECKPOINT').catch(() => undefined); // needs superuser or pg_checkpoint: not on every --url database
}

/** Sessions of this database (of one application, if named) waiting on a lock, or connected at all when `onLock` is false. */
export const sessions = (pool: pg.Pool, o: { applicationName?: string; onLock: boolean }) =>
  count(
    pool,
    'SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND ($1::text IS NULL OR application_name = $1)' +
      (o.onLock ? " AND wait_event_type = 'Lock'" : ''),
    [o.applicationName ?? null],
  );

export type LockWaits = Awaited<ReturnType<ReturnType<typeof observeLockWaits>['stop']>>;
/** How many sessions of the database wait on a lock, sampled every 20 ms until stopped. */
export function observeLockWaits(pool: pg.Pool) {
  const [seen, state] = [[] as number[], { running: true }];
  const loop = (async () => {
    for (; state.running; await sleep(20)) seen.push(await sessions(pool, { onLock: true }));
  })();
  return {
    async stop() {
      state.running = false;
      await loop;
      const mean = seen.length ? Math.round((seen.reduce((a, b) => a + b, 0) / seen.length) * 100) / 100 : 0;
      return { samples: seen.length, max: Math.max(0, ...seen), mean };
    },
  };
}

/** The outbox's events, but for those delivered before `seededBefore` (a seeded history's): id and whether delivered. */
export const recordedEvents = async (pool: pg.Pool, seededBefore: Date | null) =>
  (await pool.query<{ event_id: string; delivered: boolean }>(
    `SELECT event_id::text, delivered_at IS NOT NULL AS delivered FROM outbox_events
     WHERE delivered_at IS NULL OR $1::timestamptz IS NULL OR created_at >= $1::timestamptz`,
    [seededBefore],
  )).rows;

/** Each order of `ids` as the database holds it (status null: not there): its paid and refunded amounts, its refunds' ids in order. */
export const refundedOrders = async (pool: pg.Pool, ids: readonly string[]) =>
  (await pool.query<{ id: string; status: string | null; paid: string; refunded: string; refund_ids: string[] }>(
    `SELECT p.id::text, o.status, o.paid_amount::text AS paid, o.refunded_amount::text AS refunded,
            array(SELECT r.id::text FROM refunds r WHERE r.order_id = p.id ORDER BY r.id) AS refund_ids
     FROM unnest($1::uuid[]) AS p (id) LEFT JOIN orders o ON o.id = p.id`,
    [ids],
  )).rows;

/** The events recorded for the orders `ids`, each order's in recording order. */
export const orderEvents = async (pool: pg.Pool, ids: readonly string[]) =>
  (await pool.query<{ order_id: string; event_id: string; type: string }>(
    `SELECT aggregate_id AS order_id, event_id::text, event_type AS type FROM outbox_events WHERE aggregate_id = ANY($1::text[]) ORDER BY aggregate_id, seq`,
    [ids],
  )).rows;

/**
 * What a workload must leave as it found: each user's balance, each product's stock, and each copy
 * of a coupon (its user's id → the order using it, or AVAILABLE), keyed by id.
 */
export async function balancesStockCopies(pool: pg.Pool, o: { userIds: readonly number[]; productIds: readonly number[]; couponId: number }) {
  const map = async (sql: string, value: unknown) => new Map((await pool.query(sql, [value])).rows.map((r) => [String(r.k), String(r.v)]));
  return {
    balances: await map('SELECT id AS k, balance AS v FROM users WHERE id = ANY($1::bigint[])', o.userIds),
    stock: await map('SELECT id AS k, stock AS v FROM products WHERE id = ANY($1::bigint[])', o.productIds),
    copies: await map(`SELECT user_id AS k, coalesce(order_id::text, 'AVAILABLE') AS v FROM user_coupons WHERE coupon_id = $1`, o.couponId),
  };
}

export const countCancelled = (pool: pg.Pool) => count(pool, `SELECT count(*)::int AS n FROM orders WHERE status = 'CANCELLED'`);
export const productStock = async (pool: pg.Pool, productId: number) =>
  Number((await pool.query('SELECT stock FROM products WHERE id = $1', [productId])).rows[0].stock);
export const ordersOfUsers = (pool: pg.Pool, first: number, last: number) =>
  count(pool, 'SELECT count(*)::int AS n FROM orders WHERE user_id BETWEEN $1 AND $2', [first, last]);
export const countRows = (pool: pg.Pool, table: 'order_items' | 'product_sales_hourly') =>
  count(pool, `SELECT count(*)::int AS n FROM ${table}`);

/** A coupon's issued count and how many users hold a copy. */
export const couponIssued = async (pool: pg.Pool, couponId: number) =>
  (await pool.query<{ issued: number; holders: number }>(
    `SELECT issued_quantity AS issued, (SELECT count(DISTINCT user_id)::int FROM user_coupons WHERE coupon_id = $1) AS holders FROM coupons WHERE id = $1`,
    [couponId],
  )).rows[0]!;

/** A product's units sold (one order item each), its last sale's order time and its stock left. */
export const productSales = async (pool: pg.Pool, productId: number) =>
  (await pool.query<{ n: number; last: Date | null; stock: string }>(
    `SELECT count(*)::int AS n, max(o.created_at) AS last, (SELECT stock FROM products WHERE id = $1) AS stock
     FROM order_items i JOIN orders o ON o.id = i.order_id WHERE i.product_id = $1`,
    [productId],
  )).rows[0]!;

/** `k` distinct ids of the table, drawn at random (ordered by a hash of each id seeded by `seed`), in that order. */
export const drawIds = async (pool: pg.Pool, table: 'users' | 'products', k: number, seed: number) =>
  (await pool.query<{ id: string }>(`SELECT id FROM ${table} ORDER BY hashint8extended(id, $2), id LIMIT $1`, [k, seed])).rows.map((r) => Number(r.id));

/** The outbox's newest record number: the events recorded after this moment are those with a higher seq. */
export const lastEventSeq = async (pool: pg.Pool) =>
  Number((await pool.query<{ seq: string }>('SELECT coalesce(max(seq), 0)::text AS seq FROM outbox_events')).rows[0]!.seq);

/** The events recorded after `seq`, in recording order: id, type, order, and when its transaction wrote it (epoch ms). */
export const eventsAfter = async (pool: pg.Pool, seq: number) =>
  (await pool.query<{ event_id: string; type: string; order_id: string; created_ms: number }>(
    `SELECT event_id::text, event_type AS type, aggregate_id AS order_id, (extract(epoch FROM created_at) * 1000)::float8 AS created_ms
     FROM outbox_events WHERE seq > $1 ORDER BY seq`,
    [seq],
  )).rows;
