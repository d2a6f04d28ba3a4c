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

/**
 * Past this size (8 MB of 8 kB pages) a partition's statistics are autovacuum's to keep: its
 * thresholds (a tenth of the rows changed) then trail the partition by seconds, not minutes.
 */
const YOUNG_PAGES = 1024;

/**
 * The partitions of this schema's partitioned tables that are young (last analyzed under
 * YOUNG_PAGES, and under four times that now: a large table never analyzed, after a restore, is
 * autovacuum's) and have grown past twice the size their statistics say, that size taken as 8 pages
 * at least (so 16 pages of growth at least).
 * Detaching ones are left out. A second of lock wait at most: the size is read under a lock.
 */
const outgrown = (db: Kysely<Database>, among: readonly string[] | null) => db.transaction().execute(async (trx) => {
  await sql`SET LOCAL lock_timeout = '1s'`.execute(trx);
  const { rows } = await sql<{ part: string }>`
    SELECT c.oid::regclass::text AS part
      FROM pg_inherits i
      JOIN pg_class p ON p.oid = i.inhparent AND p.relkind = 'p' AND p.relnamespace = to_regnamespace(quote_ident(current_schema()))
      JOIN pg_class c ON c.oid = i.inhrelid
     WHERE c.relkind = 'r' AND NOT i.inhdetachpending AND c.relpages < ${YOUNG_PAGES}
       AND (${among}::text[] IS NULL OR c.oid::regclass::text = ANY(${among}::text[]))
       AND pg_relation_size(c.oid) < 4 * ${YOUNG_PAGES} * current_setting('block_size')::bigint
       AND pg_relation_size(c.oid) / current_setting('block_size')::int > 2 * greatest(c.relpages, 8)
     ORDER BY 1`.execute(trx);
  return rows.map((r) => r.part);
});

/**
 * ANALYZEs each young partition that has outgrown its statistics (`outgrown`): `analyzed`, those
 * whose statistics now fit; `skipped`, those still outgrown after it (PostgreSQL skips with only a
 * warning a partition another session holds, SKIP_LOCKED, or one this role may not analyze) or
 * gone meanwhile (the purge dropped it). Plans kept for a connection (prepared statements,
 * functions) are made on a partition's size at the time, and PostgreSQL plans one whose
 * statistics say empty, as a partition made ahead is once a database-wide ANALYZE has passed, as
 * a scan of it; it keeps that plan as the period fills, until an ANALYZE of the partition replaces
 * every plan that names it, in every session (docs/performance.md, "An eighth host"). Autovacuum
 * does that when it gets to the partition, a minute or more into a new day or month; the service
 * runs this every few seconds.
 */
export async function analyzeOutgrownPartitions(db: Kysely<Database>): Promise<{ analyzed: string[]; skipped: string[] }> {
  const parts = await outgrown(db, null);
  const gone: string[] = [];
  for (const part of parts) {
    try {
      await db.transaction().execute(async (trx) => {
        await sql`SET LOCAL lock_timeout = '1s'`.execute(trx);
        await sql`ANALYZE (SKIP_LOCKED) ${sql.raw(part)}`.execute(trx);
      });
    } catch (err) {
      // Dropped since it was listed (undefined_table), or its lock not had within the second: the next round's.
      if (!['42P01', '55P03'].includes((err as { code?: string }).code ?? '')) throw err;
      gone.push(part);
    }
  }
  const still = parts.length === 0 ? [] : await outgrown(db, parts);
  const skipped = [...new Set([...gone, ...still])].sort();
  return { analyzed: parts.filter((p) => !skipped.includes(p)), skipped };
}

/** The tables whose rows leave by whole partitions: a day each (ensure_partitions). */
export type Retained = 'idempotency_keys' | 'outbox_events';

const DAY_MS = 86_400_000;

/**
 * A day's table of `table`, attached or not: `<table>_pYYYY_MM_DD` (ensure_partitions) holds that
 * UTC day, `<table>_before_YYYY_MM_DD` (the first one the conversion made) everything before it.
 * Its bounds are read from its name, not from the catalog's text of them, which depends on the
 * session's DateStyle and TimeZone; a detached table has no bounds left in the catalog at all.
 */
interface DayTable {
  readonly name: string;
  /** Null: from the lowest value (the conversion's first partition). */
  readonly from: Date | null;
  readonly to: Date;
  /** A partition of `table` now (false: detached and not dropped, by a purge that was cut off). */
  readonly attached: boolean;
  /** Detached CONCURRENTLY, not finished. */
  readonly pending: boolean;
  /** The planner's row count (ANALYZE's): counting would read the rows a drop spares. */
  readonly rows: number;
}

async function dayTables(db: Kysely<Database>, table: Retained): Promise<DayTable[]> {
  const { rows } = await sql<{ name: string; attached: boolean; pending: boolean; rows: number }>`
    SELECT c.relname AS name, i.inhrelid IS NOT NULL AS attached, coalesce(i.inhdetachpending, false) AS pending,
           greatest(c.reltuples, 0)::float8 AS rows
      FROM pg_class c LEFT JOIN pg_inherits i ON i.inhrelid = c.oid AND i.inhparent = ${table}::regclass
     WHERE c.relkind = 'r' AND c.relnamespace = to_regnamespace(quote_ident(current_schema()))
       AND starts_with(c.relname, ${table} || '_')`.execute(db);
  return rows
    .flatMap((r) => {
      const span = dayTableSpan(r.name, table);
      return span ? [{ ...r, ...span }] : [];
    })
    .sort((a, b) => a.to.getTime() - b.to.getTime());
}

/** What a day table of `table` holds, from its name (DayTable); null for a name of no day table of it. */
export function dayTableSpan(name: string, table: Retained): { from: Date | null; to: Date } | null {
  const match = new RegExp(`^${table}_(p|before_)(\\d{4})_(\\d{2})_(\\d{2})$`).exec(name);
  if (!match) return null;
  const [kind, y, m, d] = match.slice(1);
  const day = Date.UTC(Number(y), Number(m) - 1, Number(d));
  return kind === 'p' ? { from: new Date(day), to: new Date(day + DAY_MS) } : { from: null, to: new Date(day) };
}

/** Whether the outbox day `name` holds an event not delivered, or delivered since `before`. */
async function outboxBusy(db: Kysely<Database>, name: string, before: Date): Promise<boolean> {
  const { rows } = await sql<{ busy: boolean }>`
    SELECT EXISTS (SELECT 1 FROM ${sql.table(name)} WHERE delivered_at IS NULL OR delivered_at >= ${before}) AS busy`.execute(db);
  return rows[0]!.busy;
}

/**
 * Puts a detached day back. Its rows are checked against the bounds as it is attached, which can
 * take longer than a request may: no statement timeout, but it gives up on a lock it cannot have
 * at once (the next batch tries again).
 */
async function reattach(db: Kysely<Database>, table: Retained, day: DayTable): Promise<void> {
  // The bounds it was made with: partition_bound, as ensure_partitions made them.
  const bound = async (at: Date) => (await sql<{ b: string }>`SELECT partition_bound(${table}, ${at}) AS b`.execute(db)).rows[0]!.b;
  const from = day.from === null ? sql.raw('MINVALUE') : sql.lit(await bound(day.from));
  const to = sql.lit(await bound(day.to));
  await db.transaction().execute(async (tx) => {
    await sql`SET LOCAL statement_timeout = 0`.execute(tx);
    await sql`SET LOCAL lock_timeout = '2s'`.execute(tx);
    await sql`ALTER TABLE ${sql.table(table)} ATTACH PARTITION ${sql.table(day.name)} FOR VALUES FROM (${from}) TO (${to})`.execute(tx);
  });
}

/**
 * One batch of a purge that drops whole days: the oldest day of `table` that ends at or before
 * `before`. DETACH … CONCURRENTLY first, which blocks no insert or read of the table (a plain DROP
 * would lock the whole table, and every order with it); then the detached table is dropped.
 *
 * The outbox's days go only once every event in them was delivered before `before`, checked again
 * after the detach (an instance whose clock is a day behind could still have written there): a
 * day with an event to deliver is attached back. Such a day's delivered rows are deleted instead,
 * a batch of `limit` at a time, so that one event that cannot be delivered holds back no more than
 * itself. A detach a crash or a timeout cut off is finished (FINALIZE), and a day left detached
 * is dropped, or attached back if it holds an event to deliver: the relay reads only attached days.
 */
export async function dropExpiredPartition(db: Kysely<Database>, table: Retained, before: Date, limit: number): Promise<PurgeBatch> {
  const busy = (name: string) => table === 'outbox_events' && outboxBusy(db, name, before);
  const drop = async (day: DayTable): Promise<PurgeBatch> => {
    await sql`DROP TABLE ${sql.table(day.name)}`.execute(db);
    return { deleted: Math.round(day.rows), done: false, resume: null };
  };
  const days = await dayTables(db, table);
  // Left detached by a batch that was cut off, whatever its date.
  for (const day of days.filter((d) => !d.attached)) {
    if (await busy(day.name)) await reattach(db, table, day);
    else return drop(day);
  }
  for (const day of days.filter((d) => d.attached && d.to.getTime() <= before.getTime())) {
    if (day.pending) {
      await sql`ALTER TABLE ${sql.table(table)} DETACH PARTITION ${sql.table(day.name)} FINALIZE`.execute(db);
    } else if (await busy(day.name)) {
      const { rows } = await sql<{ deleted: number }>`
        WITH gone AS (
          DELETE FROM ${sql.table(day.name)}
           WHERE ctid = ANY(ARRAY(SELECT ctid FROM ${sql.table(day.name)} WHERE delivered_at < ${before} LIMIT ${limit}))
             AND delivered_at < ${before}
          RETURNING 1)
        SELECT count(*)::int AS deleted FROM gone`.execute(db);
      if (rows[0]!.deleted > 0) return { deleted: rows[0]!.deleted, done: false, resume: null };
      continue;
    } else {
      await sql`ALTER TABLE ${sql.table(table)} DETACH PARTITION ${sql.table(day.name)} CONCURRENTLY`.execute(db);
    }
    if (await busy(day.name)) {
      await reattach(db, table, day);
      continue;
    }
    return drop(day);
  }
  return { deleted: 0, done: true, resume: null };
}

/** About how many rows the days past `before` hold (the planner's counts: no scan). */
export async function expiredRows(db: Kysely<Database>, table: Retained, before: Date): Promise<number> {
  const days = await dayTables(db, table);
  return Math.round(days.filter((d) => d.to.getTime() <= before.getTime()).reduce((sum, d) => sum + d.rows, 0));
}
