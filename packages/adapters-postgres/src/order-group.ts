import { sql, type Kysely } from 'kysely';
import type { BookWrite, WriteOutcome } from '@shop/application';
import { batchEntry } from './book-write.ts';
import { executePrepared } from './prepared.ts';
import type { Database } from './schema.ts';

/**
 * Why a group write failed without a per-order answer.
 * - unsent: no connection could be had; nothing reached the database.
 * - cancelled: the statement was cancelled (statement_timeout); the group rolled back.
 * - order: an error inside the group rolled it back; written alone, each order gets its own answer.
 * - unknown: the answer was lost and the database did not say, in time, what became of the group.
 */
export class GroupWriteError extends Error {
  readonly rolledBack: 'unsent' | 'cancelled' | 'order' | 'unknown';
  constructor(rolledBack: GroupWriteError['rolledBack'], cause: unknown) {
    super(`order group write failed (${rolledBack})`, { cause });
    this.rolledBack = rolledBack;
  }
}

/** serialization_failure, deadlock_detected: rolled back whole, through no order's fault. */
const RETRYABLE = new Set(['40001', '40P01']);
const QUERY_CANCELED = '57014';

/**
 * The SQLSTATE of an error the server sent about the statement, so its transaction rolled back;
 * null otherwise. Connection exceptions (08) and operator intervention (57P: shutdown, crash) say
 * nothing of a commit that may already have happened; neither does a socket error (EPIPE, a
 * dropped connection), which pg reports without the server's `severity`.
 */
function rolledBackByServer(err: unknown): string | null {
  const e = err as { code?: unknown; severity?: unknown };
  if (typeof e.severity !== 'string' || typeof e.code !== 'string') return null;
  return e.code.startsWith('08') || e.code.startsWith('57P') ? null : e.code;
}

function randomToken(): string {
  return crypto.getRandomValues(new BigInt64Array(1))[0]!.toString();
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Writes `writes` (orders and cancellations) through `write_order_group` in one transaction and
 * returns each one's outcome. When the answer is lost, finds out which committed before
 * returning: a write that committed is reported written, one that did not rolled_back (its
 * caller decides it again), so no caller is ever told "failed" about an order that was paid or a
 * cancellation that was refunded.
 */
export async function writeOrderGroup(
  db: Kysely<Database>,
  writes: readonly BookWrite[],
  outcomeWaitMs: number,
): Promise<WriteOutcome[]> {
  const token = randomToken();
  const batch = JSON.stringify(writes.map(batchEntry));
  let sent = false;
  try {
    return await db.connection().execute(async (conn) => {
      sent = true;
      const write = sql<{ outcome: WriteOutcome[] }>`SELECT write_order_group(${batch}::jsonb, ${token}::bigint) AS outcome`;
      const rows = await executePrepared(conn, 'write_order_group', write);
      return rows[0]!.outcome;
    });
  } catch (err) {
    if (!sent) throw new GroupWriteError('unsent', err);
    const code = rolledBackByServer(err);
    if (code !== null) {
      if (RETRYABLE.has(code)) return writes.map(() => 'rolled_back');
      throw new GroupWriteError(code === QUERY_CANCELED ? 'cancelled' : 'order', err);
    }
    const committed = await committedEvents(db, token, writes.map((w) => w.effects.event.eventId), Date.now() + outcomeWaitMs).catch(
      () => {
        throw new GroupWriteError('unknown', err);
      },
    );
    return writes.map((w) => (committed.has(w.effects.event.eventId) ? 'written' : 'rolled_back'));
  }
}

/**
 * Which of `eventIds` exist, asked only once the group's transaction is over: every write records
 * its one event in its own commit, and delivered events are kept for days (OUTBOX_RETENTION_DAYS,
 * at least 1), far longer than this question is asked. `write_order_group` holds the group's token lock
 * until it commits or rolls back, so taking that lock first means the answer cannot change
 * afterwards. The token is also fenced in the same commit, so a group
 * that reaches the database only now (a delayed packet) refuses to write. Retries, with capped
 * backoff, until `deadline`; no statement may wait past it.
 */
async function committedEvents(db: Kysely<Database>, token: string, eventIds: string[], deadline: number): Promise<Set<string>> {
  for (let delay = 50; ; delay = Math.min(delay * 2, 1_000)) {
    try {
      return await db.transaction().execute(async (tx) => {
        const left = Math.max(1, deadline - Date.now());
        await sql`SELECT set_config('statement_timeout', ${String(left)}, true), set_config('lock_timeout', ${String(left)}, true)`.execute(tx);
        await sql`SELECT pg_advisory_xact_lock(${token}::bigint)`.execute(tx);
        await sql`
          WITH old AS (DELETE FROM order_write_fences WHERE fenced_at < now() - interval '1 hour')
          INSERT INTO order_write_fences (token) VALUES (${token}::bigint) ON CONFLICT DO NOTHING`.execute(tx);
        const { rows } = await sql<{ id: string }>`
          SELECT event_id::text AS id FROM outbox_events WHERE event_id = ANY(${eventIds}::uuid[])`.execute(tx);
        return new Set(rows.map((r) => r.id));
      });
    } catch (err) {
      if (Date.now() + delay > deadline) throw err;
      await sleep(delay);
    }
  }
}
