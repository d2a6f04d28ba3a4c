import type { Kysely } from 'kysely';
import type { Transaction, UnitOfWork } from '@shop/application';
import type { Database } from './schema.ts';
import { pgTransaction } from './transaction.ts';

/** serialization_failure, deadlock_detected: the transaction was rolled back whole and may run again. */
const RETRYABLE = new Set(['40001', '40P01']);
const MAX_ATTEMPTS = 3;

export class PgUnitOfWork implements UnitOfWork {
  private readonly db: Kysely<Database>;

  constructor(db: Kysely<Database>) {
    this.db = db;
  }

  async run<T>(work: (tx: Transaction) => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.db.transaction().execute((trx) => work(pgTransaction(trx)));
      } catch (err) {
        const code = (err as { code?: string }).code;
        if (attempt >= MAX_ATTEMPTS || !code || !RETRYABLE.has(code)) throw err;
      }
    }
  }
}
