import { sql, type Kysely } from 'kysely';
import type { PurgeBatch } from '@shop/application';
import type { Database } from './schema.ts';

/**
 * The history tables are partitioned by time (migration 0014, ADR 0014): months for orders,
 * order_items and balance_ledger, days for idempotency_keys and outbox_events. A row with no
 * partition for its time cannot be written, so partitions are made ahead: through this long after
 * now, at every start (migrate) and hourly (the service), so a day or two of failing jobs still
 * leaves room. Ahead in days, not months: every partition a query cannot prune is one more it
 * opens, and the daily tables' lookups see them all.
 */
export const PARTITIONS_AHEAD_MS = 3 * 86_400_000;
/**
 * And from a day before now: on a new database, the instance whose clock is a little behind the
 * database's just after midnight (UTC) writes ids of the day before. No purge drops a day that
 * recent (keys are kept 48 hours, delivered events at least a day past the end of their day).
 */
export const PARTITIONS_BEHIND_MS = 86_400_000;

/** The statement that makes them, for migrate's connection and the service's pool alike. */
export const ENSURE_PARTITIONS_SQL = `SELECT ensure_partitions(now() - ${PARTITIONS_BEHIND_MS} * interval '1 millisecond',
                                                  now() + ${PARTITIONS_AHEAD_MS} * interval '1 millisecond') AS made`;

/** Makes the partitions from a day before now through PARTITIONS_AHEAD_MS (ensure_partitions); returns how many it made. */
export async function ensurePartitions(db: Kysely<Database>): Promise<number> {
  const { rows } = await sql<{ made: number }>`${sql.raw(ENSURE_PARTITIONS_SQL)}`.execute(db);
  return rows[0]!.made;
}

/** The tables whose rows leave by whole partitions, and when one of theirs may go. */
type Retained = 'idempotency_keys' | 'outbox_events';

/**
 * Of `table`'s partitions, those that end at or before `before` (every row in them is older),
 * oldest first, with the planner's row count. outbox_events is ranged by UUIDv7 event id, so its
 * bound is compared as the lowest id of `before`'s millisecond.
 */
async function expired(db: Kysely<Database>, table: Retained, before: Date) {
  const limit = table === 'outbox_events' ? sql`uuid_floor(${before})::text` : sql`${before}::timestamptz::text`;
  const { rows } = await sql<{ name: string; bound: string; rows: number; pending: boolean }>`
    SELECT c.relname AS name, pg_get_expr(c.relpartbound, c.oid) AS bound, greatest(c.reltuples, 0)::float8 AS rows,
           i.inhdetachpending AS pending
      FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid,
           substring(pg_get_expr(c.relpartbound, c.oid) FROM 'TO \\(''([^'']*)''\\)') AS upper
     WHERE i.inhparent = ${table}::regclass
       AND CASE WHEN ${table} = 'outbox_events' THEN upper::uuid <= (${limit})::uuid
                ELSE upper::timestamptz <= (${limit})::timestamptz END
     ORDER BY upper`.execute(db);
  return rows;
}

/** Whether `partition` of the outbox holds an event not delivered, or delivered since `before`. */
async function outboxBusy(db: Kysely<Database>, partition: string, before: Date): Promise<boolean> {
  const { rows } = await sql<{ busy: boolean }>`
    SELECT EXISTS (SELECT 1 FROM ${sql.table(partition)} WHERE delivered_at IS NULL OR delivered_at >= ${before}) AS busy`.execute(db);
  return rows[0]!.busy;
}

/**
 * One batch of a purge that drops whole partitions: the oldest partition of `table` past `before`
 * (for the outbox, only once every event in it was delivered before `before`: an undelivered
 * event is never dropped, and holds back only its own day). DETACH … CONCURRENTLY first, which
 * blocks no insert or read of the table (a plain DROP would lock the whole table, and every order
 * with it); then the detached table is dropped. A detach left pending by a crash is finished first.
 * `deleted` is the planner's row count of what was dropped: counting would read the rows the drop
 * spares us from reading.
 */
export async function dropExpiredPartition(db: Kysely<Database>, table: Retained, before: Date): Promise<PurgeBatch> {
  const candidates = await expired(db, table, before);
  for (const p of candidates) {
    if (!p.pending) {
      if (table === 'outbox_events' && (await outboxBusy(db, p.name, before))) continue;
      await sql`ALTER TABLE ${sql.table(table)} DETACH PARTITION ${sql.table(p.name)} CONCURRENTLY`.execute(db);
    } else {
      await sql`ALTER TABLE ${sql.table(table)} DETACH PARTITION ${sql.table(p.name)} FINALIZE`.execute(db);
    }
    // An event written into this day after the check (an instance whose clock is a day behind):
    // the day goes back, whole, and waits for its delivery.
    if (table === 'outbox_events' && (await outboxBusy(db, p.name, before))) {
      await sql`ALTER TABLE ${sql.table(table)} ATTACH PARTITION ${sql.table(p.name)} ${sql.raw(p.bound)}`.execute(db);
      continue;
    }
    await sql`DROP TABLE ${sql.table(p.name)}`.execute(db);
    const left = candidates.length - candidates.indexOf(p) - 1;
    return { deleted: Math.round(p.rows), done: left === 0, resume: null };
  }
  return { deleted: 0, done: true, resume: null };
}

/** About how many rows the partitions past `before` hold (the planner's counts: no scan). */
export async function expiredRows(db: Kysely<Database>, table: Retained, before: Date): Promise<number> {
  return Math.round((await expired(db, table, before)).reduce((sum, p) => sum + p.rows, 0));
}
