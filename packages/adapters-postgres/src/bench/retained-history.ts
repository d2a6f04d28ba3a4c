import type pg from 'pg';
import { insertSelect } from '../bulk-rows.ts';
import { dayTableSpan } from '../partitions.ts';
import { paidEventSql } from './paid-event-sql.ts';

/**
 * `pnpm soak`: the idempotency keys and delivered outbox events a service running for days at the
 * soak's own rate would hold when the soak starts, written straight into their day partitions, so
 * that a 30-minute run can show both tables losing a whole day at a UTC midnight while orders go
 * on. Only these two tables: they are the ones that must stay flat; orders and the ledger are
 * history and grow by design. The events belong to no order (their aggregate ids say `history-`),
 * so `removeRetainedHistory` takes them out again before the soak's checks, which are about the
 * run's own rows.
 */

export const HISTORY_AGGREGATE_PREFIX = 'history-';
const DAY_MS = 86_400_000;

export interface RetainedHistoryPlan {
  /** The users the keys belong to (the soak's own). */
  readonly userIds: readonly number[];
  readonly keysPerSecond: number;
  readonly eventsPerSecond: number;
  /** How long keys are kept (the service's constant) and delivered events (OUTBOX_RETENTION_DAYS). */
  readonly keyRetentionMs: number;
  readonly eventRetentionDays: number;
  /** The history ends here (the soak's clock, shifted as the database's is). */
  readonly until: Date;
}

export interface SeededDay {
  readonly table: 'idempotency_keys' | 'outbox_events';
  readonly day: string;
  readonly rows: number;
}

/**
 * What a service running without pause since long before would hold at `until`: every UTC day a
 * purge could not yet drop, from the day of `until − retention` (keys) or of `until − retention
 * days` (events) to `until`, at an even rate. Partitions are made first (ensure_partitions).
 */
export async function seedRetainedHistory(pool: pg.Pool, plan: RetainedHistoryPlan, log: (line: string) => void = () => undefined): Promise<SeededDay[]> {
  const dayOf = (ms: number) => Math.floor(ms / DAY_MS) * DAY_MS;
  const until = plan.until.getTime();
  const spans = [
    { table: 'idempotency_keys' as const, from: dayOf(until - plan.keyRetentionMs), perSecond: plan.keysPerSecond },
    { table: 'outbox_events' as const, from: dayOf(until - plan.eventRetentionDays * DAY_MS), perSecond: plan.eventsPerSecond },
  ];
  const client = await pool.connect();
  const seeded: SeededDay[] = [];
  try {
    await client.query(`SET synchronous_commit = off`);
    for (const span of spans) {
      await client.query(`SELECT ensure_partitions($1, $2, $3)`, [new Date(span.from), plan.until, `{${span.table}}`]);
      for (let day = span.from; day < until; day += DAY_MS) {
        const end = Math.min(day + DAY_MS, until);
        const rows = Math.floor(((end - day) / 1000) * span.perSecond);
        if (rows === 0) continue;
        // Row i's time: evenly over the day's span; ids and keys unique to it.
        const at = `(timestamptz 'epoch' + (${day} + (i - 1) * ${(end - day) / rows}) * interval '1 millisecond')`;
        const statement = span.table === 'idempotency_keys'
          ? insertSelect('idempotency_keys', {
              user_id: `($1::bigint[])[1 + (i - 1) % cardinality($1::bigint[])]`, key: `'${HISTORY_AGGREGATE_PREFIX}${day}-' || i`,
              fingerprint: `md5(i::text)`, result: `jsonb_build_object('orderId', uuid_v7(${at}))`, created_at: at,
            }, `FROM generate_series(1, ${rows}) i`)
          : insertSelect('outbox_events', {
              event_id: 'e.id', event_type: `'order.paid'`, aggregate_id: `'${HISTORY_AGGREGATE_PREFIX}' || e.id`, occurred_at: 'e.at', created_at: 'e.at',
              payload: paidEventSql({
                id: 'e.id', at: `to_char(e.at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`, orderId: `'${HISTORY_AGGREGATE_PREFIX}' || e.id`,
                userId: `($1::bigint[])[1 + (i - 1) % cardinality($1::bigint[])]`,
                items: `jsonb_build_array(jsonb_build_object('productId', 1 + i % 40, 'quantity', 1, 'unitPrice', 10000, 'lineAmount', 10000))`,
                total: '10000', discount: '0', couponId: 'NULL',
              }),
              attempts: '1', next_attempt_at: `e.at + interval '30 seconds'`, last_error: 'NULL', delivered_at: `e.at + interval '200 milliseconds'`,
            }, `FROM generate_series(1, ${rows}) i CROSS JOIN LATERAL (SELECT uuid_v7(${at}) AS id, ${at} AS at OFFSET 0) e`);
        const t = Date.now();
        await client.query(statement, [plan.userIds]);
        const name = new Date(day).toISOString().slice(0, 10);
        log(`  ${span.table} ${name}: ${rows} rows, ${((Date.now() - t) / 1000).toFixed(1)} s`);
        seeded.push({ table: span.table, day: name, rows });
      }
    }
    await client.query('ANALYZE idempotency_keys, outbox_events');
    // So that the soak's database crash does not replay the seed's WAL.
    await client.query('CHECKPOINT').catch(() => undefined);
  } finally {
    await client.query('RESET synchronous_commit').catch(() => undefined);
    client.release();
  }
  return seeded;
}

export interface RetainedDay {
  readonly table: 'idempotency_keys' | 'outbox_events';
  /** The UTC day it holds, YYYY-MM-DD (the conversion's first table, which holds all before: its last day). */
  readonly day: string;
  /** Still a partition (false: detached by a purge that did not get to drop it). */
  readonly attached: boolean;
  readonly rows: number;
  readonly bytes: number;
}

/** Every day table of the two retained tables, attached or not, with its exact rows and bytes (oldest first). */
export async function retainedDays(pool: pg.Pool): Promise<RetainedDay[]> {
  // Candidates by prefix; which of them are day tables is the naming rule's to say (dayTableSpan).
  const { rows: tables } = await pool.query<{ parent: RetainedDay['table']; name: string; attached: boolean }>(`
    SELECT t.parent, c.relname AS name, i.inhrelid IS NOT NULL AS attached
      FROM unnest(ARRAY['idempotency_keys', 'outbox_events']) t(parent)
      JOIN pg_class c ON c.relkind = 'r' AND c.relnamespace = to_regnamespace(quote_ident(current_schema())) AND starts_with(c.relname, t.parent || '_')
      LEFT JOIN pg_inherits i ON i.inhrelid = c.oid AND i.inhparent = t.parent::regclass`);
  const out: RetainedDay[] = [];
  for (const t of tables) {
    const span = dayTableSpan(t.name, t.parent);
    if (!span) continue;
    const { rows: [r] } = await pool.query<{ n: string; bytes: string }>(
      `SELECT (SELECT count(*) FROM ${t.name}) AS n, pg_total_relation_size('${t.name}') AS bytes`);
    const day = (span.from ?? new Date(span.to.getTime() - DAY_MS)).toISOString().slice(0, 10);
    out.push({ table: t.parent, day, attached: t.attached, rows: Number(r!.n), bytes: Number(r!.bytes) });
  }
  return out.sort((a, b) => a.table.localeCompare(b.table) || a.day.localeCompare(b.day));
}

/** Takes the seeded events out (they belong to no order), so that checks of the run's events see only those. */
export async function removeRetainedHistory(pool: pg.Pool): Promise<number> {
  const { rowCount } = await pool.query(`DELETE FROM outbox_events WHERE aggregate_id LIKE '${HISTORY_AGGREGATE_PREFIX}%'`);
  return rowCount ?? 0;
}
