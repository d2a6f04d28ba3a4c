import type pg from 'pg';
import type { Receiver } from '../../../../test/support/receiver.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const count = async (pool: pg.Pool, sql: string, values: unknown[] = []) => (await pool.query<{ n: number }>(sql, values)).rows[0]!.n;

/** Waits until the outbox holds no undelivered record (the relay has caught up). */
export async function waitForDelivery(pool: pg.Pool, timeoutMs = 180_000): Promise<void> {
  for (const deadline = Date.now() + timeoutMs; ; await sleep(200)) {
    const n = await count(pool, 'SELECT count(*)::int AS n FROM outbox_events WHERE delivered_at IS NULL');
    if (n === 0) return;
    if (Date.now() > deadline) throw new Error(`${n} events still undelivered after ${timeoutMs} ms`);
  }
}

const QUIESCED_TABLES = ['users', 'products', 'orders', 'order_items', 'balance_ledger', 'user_coupons', 'outbox_events', 'idempotency_keys'];

/**
 * The same quiet server before each measured run: the previous run's events delivered, the tables
 * it grew vacuumed and analysed, its dirty pages written. Otherwise a run pays for the autovacuum
 * and checkpoint of the runs before it, and a same-run ratio between twins measures their order.
 */
export async function quiesce(pool: pg.Pool): Promise<void> {
  await waitForDelivery(pool);
  // Not an empty table: its statistics would then say "empty" for the whole next run, and plans
  // cached on that (a foreign-key check, a key lookup) scan it as it grows; seen costing 0.2-0.35
  // ms per order in uniform and uniform-keyed. Autovacuum ends that in a live service, not in 20 s.
  const tables: string[] = [];
  for (const t of QUIESCED_TABLES) if ((await pool.query(`SELECT 1 FROM ${t} LIMIT 1`)).rowCount) tables.push(t);
  if (tables.length > 0) await pool.query(`VACUUM (ANALYZE) ${tables.join(', ')}`);
  // CHECKPOINT needs superuser (or pg_checkpoint): against a --url database without it, skip.
  await pool.query('CHECKPOINT').catch(() => undefined);
}

export interface LockWaits {
  readonly samples: number;
  /** Most sessions seen waiting on a lock at one instant. */
  readonly max: number;
  readonly mean: number;
}

/** Samples how many sessions of the database wait on a lock, every 20 ms, until stopped. */
export function observeLockWaits(pool: pg.Pool): { stop(): Promise<LockWaits> } {
  const seen: number[] = [];
  let running = true;
  const loop = (async () => {
    for (; running; await sleep(20)) {
      seen.push(await count(pool, `SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`));
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      const mean = seen.length ? Math.round((seen.reduce((a, b) => a + b, 0) / seen.length) * 100) / 100 : 0;
      return { samples: seen.length, max: Math.max(0, ...seen), mean };
    },
  };
}

export interface EventCheck {
  readonly recorded: number;
  readonly undelivered: number;
  /** Null when the benchmark did not start the receiver (--url). */
  readonly received: number | null;
  readonly duplicates: number | null;
  readonly violations: string[];
}

/**
 * Every recorded event reached the platform once; nothing arrived that was not recorded. Events
 * delivered before `seededBefore` are a seeded history's (--scale), delivered before this run's
 * receiver existed: left out. Undelivered ones never are.
 */
export async function checkEvents(pool: pg.Pool, receiver: Receiver | null, seededBefore: Date | null): Promise<EventCheck> {
  const { rows } = await pool.query<{ event_id: string; delivered: boolean }>(
    `SELECT event_id::text, delivered_at IS NOT NULL AS delivered FROM outbox_events
     WHERE delivered_at IS NULL OR $1::timestamptz IS NULL OR created_at >= $1::timestamptz`,
    [seededBefore],
  );
  const violations: string[] = [];
  const undelivered = rows.filter((r) => !r.delivered).length;
  if (undelivered > 0) violations.push(`events: ${undelivered} recorded events were never delivered`);
  if (!receiver) return { recorded: rows.length, undelivered, received: null, duplicates: null, violations };
  const received = new Set(receiver.accepted.map((e) => e.body.eventId as string));
  const recorded = new Set(rows.map((r) => r.event_id));
  const missing = [...recorded].filter((id) => !received.has(id)).length;
  const invented = [...received].filter((id) => !recorded.has(id)).length;
  const duplicates = receiver.duplicates();
  if (missing > 0) violations.push(`events: ${missing} recorded events never reached the receiver`);
  if (invented > 0) violations.push(`events: ${invented} events reached the receiver that were never recorded`);
  if (duplicates > 0) violations.push(`events: ${duplicates} deliveries repeated an eventId (no process crashed, so none is expected)`);
  return { recorded: rows.length, undelivered, received: received.size, duplicates, violations };
}
