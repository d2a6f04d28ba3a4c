import { sql, type Kysely } from 'kysely';
import type { Database } from './schema.ts';

export async function ping(db: Kysely<Database>): Promise<void> {
  await sql`SELECT 1`.execute(db);
}

/** Forgets idempotency keys older than `olderThanMs` (the contract promises at least 24 hours). */
export async function purgeIdempotencyKeys(db: Kysely<Database>, olderThanMs: number): Promise<number> {
  const result = await db
    .deleteFrom('idempotency_keys')
    .where('created_at', '<', new Date(Date.now() - olderThanMs))
    .executeTakeFirst();
  return Number(result.numDeletedRows);
}
