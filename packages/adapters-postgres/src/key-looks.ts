import { sql, type Kysely } from 'kysely';
import type { CompletedKey, KeyState } from '@shop/application';
import type { Database } from './schema.ts';
import { executePrepared } from './prepared.ts';

interface Waiting {
  readonly userId: number;
  readonly key: string;
  resolve(state: KeyState): void;
  reject(err: unknown): void;
}

/**
 * The looks at a key that refused keyed requests take before they answer (ADR 0010), shared the
 * way order writes are: while `inFlight` statements are out, arriving looks wait and the next
 * statement takes them all. In a flash sale every keyed buyer past the last unit is refused and
 * looks; one round trip each cost more than the look itself (docs/performance.md).
 */
export class KeyLooks {
  private readonly waiting: Waiting[] = [];
  private running = 0;
  private readonly db: Kysely<Database>;
  private readonly inFlight: number;
  private readonly maxBatch: number;

  constructor(db: Kysely<Database>, inFlight = 2, maxBatch = 256) {
    this.db = db;
    this.inFlight = inFlight;
    this.maxBatch = maxBatch;
  }

  look(userId: number, key: string): Promise<KeyState> {
    return new Promise((resolve, reject) => {
      this.waiting.push({ userId, key, resolve, reject });
      this.pump();
    });
  }

  private pump(): void {
    while (this.running < this.inFlight && this.waiting.length > 0) {
      const batch = this.waiting.splice(0, this.maxBatch);
      this.running++;
      void this.run(batch).finally(() => {
        this.running--;
        this.pump();
      });
    }
  }

  private async run(batch: readonly Waiting[]): Promise<void> {
    try {
      // Each key's state as key_state (migration 0009) gives it; its try-lock is released with
      // the statement, so a look never holds a key.
      const query = sql<{ completed: CompletedKey | null; key_free: boolean }>`
        SELECT s.completed, s.key_free
          FROM unnest(${batch.map((w) => w.userId)}::bigint[], ${batch.map((w) => w.key)}::text[]) WITH ORDINALITY u(user_id, key, n)
          CROSS JOIN LATERAL key_state(u.user_id, u.key) s
         ORDER BY u.n`;
      const rows = await executePrepared(this.db, 'key_states', query);
      batch.forEach((w, i) => w.resolve({ completedKey: rows[i]!.completed, keyInFlight: !rows[i]!.key_free }));
    } catch (err) {
      batch.forEach((w) => w.reject(err));
    }
  }
}
