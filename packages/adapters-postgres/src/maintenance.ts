import { sql, type Kysely, type RawBuilder } from 'kysely';
import type { Purgeable } from '@shop/application';
import type { Database } from './schema.ts';
import { dropExpiredPartition, expiredRows } from './partitions.ts';

export async function ping(db: Kysely<Database>): Promise<void> {
  await sql`SELECT 1`.execute(db);
}

/**
 * The planner's estimate of the rows `query` returns: read from the table's statistics, so it costs
 * a plan and no scan whatever the size, and it lags until autovacuum's ANALYZE catches up.
 */
export async function plannerEstimate(db: Kysely<Database>, query: RawBuilder<unknown>): Promise<number> {
  const { rows } = await sql<{ 'QUERY PLAN': Array<{ Plan: { 'Plan Rows': number } }> }>`EXPLAIN (FORMAT JSON) ${query}`.execute(db);
  const plan = rows[0]?.['QUERY PLAN'];
  return Math.round(plan?.[0]?.Plan['Plan Rows'] ?? 0);
}

/**
 * Idempotency keys older than the retention (the contract promises at least 24 hours) leave a
 * day at a time: the table is partitioned by day of created_at (migration 0014), and a batch drops
 * the oldest day that is wholly past the cutoff (partitions.ts), whatever its size, without reading
 * a row of it.
 */
export function pgIdempotencyKeyPurge(db: Kysely<Database>): Purgeable {
  return {
    purgeBatch: (before, limit) => dropExpiredPartition(db, 'idempotency_keys', before, limit),
    estimateExpired: (before) => expiredRows(db, 'idempotency_keys', before),
  };
}
