import { systemClock, uuidV7 } from '@shop/application';
import { openDatabase, pgOrderBook, pgReadStore, PgUnitOfWork, type Db } from '../../src/index.ts';

/**
 * One connection to `url` on which every statement, nested ones included (a function's, a
 * foreign-key check's), sends back the plan it ran as a notice (auto_explain with ANALYZE): what
 * the plan-shape tests read. `plansDuring` runs `what` and returns the notices it caused.
 */
export function openExplained(url: string, applicationName: string): { db: Db; plansDuring(what: () => Promise<unknown>): Promise<string[]> } {
  const u = new URL(url);
  const explain = ['min_duration=0', 'analyze=on', 'timing=off', 'nested_statements=on', 'level=notice'];
  u.searchParams.set('options', ['-c session_preload_libraries=auto_explain', ...explain.map((o) => `-c auto_explain.log_${o}`)].join(' '));
  const db = openDatabase({ connectionString: u.toString(), max: 1, applicationName });
  let notices: string[] = [];
  db.pool.on('connect', (c) => c.on('notice', (n) => notices.push(n.message ?? '')));
  return {
    db,
    async plansDuring(what) {
      notices = [];
      await what();
      return notices;
    },
  };
}

/** The order path's use cases over `db` alone: one write at a time, no memory of recent keys (a replay reads the store). */
export const orderPathDeps = (db: Db) => ({
  uow: new PgUnitOfWork(db.kysely),
  book: pgOrderBook(db.kysely, { writesInFlight: 1 }),
  reads: pgReadStore(db.kysely),
  clock: systemClock,
  ids: uuidV7,
  cancelDays: 7,
});
