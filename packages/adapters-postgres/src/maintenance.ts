import { sql, type Kysely, type RawBuilder } from 'kysely';
import type { PurgeBatch, Purgeable } from '@shop/application';
import type { Database } from './schema.ts';

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
 * Idempotency keys older than the retention (the contract promises at least 24 hours), a batch at
 * a time. The age index is a BRIN (migration 0007): a range of blocks whose rows are all past the
 * cutoff is found from its summary, and rows arrive in created_at order, so `resume` (the newest
 * created_at the batch deleted) lets the next batch skip the block ranges already emptied instead
 * of reading them again; each batch reads about the blocks it deletes from. Physical order is only
 * roughly created_at order, so a resumed batch that finds fewer than `limit` rows is followed by
 * one from the beginning, for the rows it stepped over; the pass is done when such a batch finds
 * fewer than `limit`.
 */
export function pgIdempotencyKeyPurge(db: Kysely<Database>): Purgeable {
  return {
    async purgeBatch(before, limit, resume): Promise<PurgeBatch> {
      const { rows } = await sql<{ deleted: number; reached: string | null }>`
        WITH gone AS (
          DELETE FROM idempotency_keys
          WHERE ctid = ANY(ARRAY(
                  SELECT ctid FROM idempotency_keys
                  WHERE created_at < ${before} AND created_at >= coalesce(${resume}::timestamptz, '-infinity')
                  LIMIT ${limit}))
            AND created_at < ${before}
          RETURNING created_at)
        SELECT count(*)::int AS deleted, max(created_at)::text AS reached FROM gone`.execute(db);
      const { deleted, reached } = rows[0]!;
      if (deleted >= limit) return { deleted, done: false, resume: reached };
      return { deleted, done: resume === null, resume: null };
    },
    estimateExpired: (before) => plannerEstimate(db, sql`SELECT 1 FROM idempotency_keys WHERE created_at < ${before}`),
  };
}
