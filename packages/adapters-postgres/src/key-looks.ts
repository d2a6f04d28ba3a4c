import { sql, type Kysely } from 'kysely';
import { keyState, type CompletedKey, type KeyState } from '@shop/application';
import type { Database } from './schema.ts';
import { executePrepared } from './prepared.ts';
import { Batches } from './batches.ts';

/**
 * The looks at a key that refused keyed requests take before they answer (ADR 0010), shared the
 * way order writes are (Batches): in a flash sale every keyed buyer past the last unit is refused
 * and looks, and one round trip each cost more than the look itself (docs/performance-log.md, 2026-12-02).
 */
export function keyLooks(db: Kysely<Database>, inFlight = 2, maxBatch = 256): (userId: number, key: string) => Promise<KeyState> {
  const batches = new Batches<{ userId: number; key: string }, KeyState>(inFlight, maxBatch, async (batch) => {
    try {
      // Each key's state as key_state (migrations/definitions) gives it; its try-lock is released
      // with the statement, so a look never holds a key.
      const query = sql<{ completed: CompletedKey | null; key_free: boolean }>`
        SELECT s.completed, s.key_free
          FROM unnest(${batch.map((w) => w.item.userId)}::bigint[], ${batch.map((w) => w.item.key)}::text[]) WITH ORDINALITY u(user_id, key, n)
          CROSS JOIN LATERAL key_state(u.user_id, u.key) s
         ORDER BY u.n`;
      const rows = await executePrepared(db, 'key_states', query);
      batch.forEach((w, i) => w.resolve(keyState(rows[i]!.completed, !rows[i]!.key_free)));
    } catch (err) {
      batch.forEach((w) => w.reject(err));
    }
  });
  return (userId, key) => batches.submit({ userId, key });
}
