import { placeOrder, systemClock, uuidV7 } from '@shop/application';
import { openDatabase } from '../database.ts';
import { pgOrderBook } from '../order-book.ts';
import { pgOutboxStore } from '../outbox-store.ts';
import { pgReadStore } from '../read-store.ts';
import { refreshSalesRollup, ROLLUP_LOCK } from '../sales.ts';
import { PgUnitOfWork } from '../unit-of-work.ts';
import { DAY_MS, RETENTION_DAYS } from './history-seed.ts';

/** The tables the order path reads or writes: a Seq Scan on one of them in its plans is flagged. */
export const BIG_TABLES = ['users', 'products', 'orders', 'order_items', 'balance_ledger', 'outbox_events', 'user_coupons'];
export type OrderPathPlan = { what: string; plan: string; seqScans: string[]; orderPath: boolean };
class Rollback extends Error {}

/**
 * The order path's plans on the seeded tables, as the service's own code runs them, from
 * auto_explain (ANALYZE, BUFFERS, nested statements; this session only, sent back as notices):
 * one real order of `productIds` by `userId` (audited with the run's), a group write of the
 * `group`'s orders (one product each), the relay's claim and purge (rolled back) and the rollup
 * job's fold of those orders.
 */
export async function orderPathPlans(databaseUrl: string, userId: number, productIds: number[], group: Array<{ userId: number; productId: number }>) {
  const url = new URL(databaseUrl);
  const explain = ['min_duration=0', 'analyze=on', 'buffers=on', 'timing=on', 'nested_statements=on', 'level=notice'];
  url.searchParams.set('options', ['-c session_preload_libraries=auto_explain', ...explain.map((o) => `-c auto_explain.log_${o}`)].join(' '));
  const db = openDatabase({ connectionString: url.toString(), max: 1, applicationName: 'bench-scale-explain' });
  let notices: string[] = [];
  db.pool.on('connect', (c) => c.on('notice', (n) => notices.push(n.message ?? '')));
  const plans: OrderPathPlan[] = [];
  const queryOf = (text: string) => /Query Text: ([\s\S]*?)\n(?=\S)/.exec(text)?.[1]?.replace(/\s+/g, ' ').trim() ?? '?';
  const take = (label: string, texts = notices, orderPath = true) => {
    for (const text of texts.filter((t) => /plan:/.test(t))) {
      const query = queryOf(text);
      const seqScans = [...new Set([...text.matchAll(/Seq Scan on (\w+)/g)].map((m) => m[1]!).filter((t) => BIG_TABLES.includes(t)))];
      plans.push({ what: `${label}: ${query.length > 160 ? `${query.slice(0, 157)}…` : query}`, plan: text.trim(), seqScans, orderPath });
    }
    notices = [];
  };
  try {
    // The rollup job's lock, held by this session until its own fold below: the service's job
    // skips its turns meanwhile, so that fold has these orders to take.
    await db.pool.query('SELECT pg_advisory_lock($1::int, $2::int)', [...ROLLUP_LOCK]);
    notices = [];
    const deps = { uow: new PgUnitOfWork(db.kysely), book: pgOrderBook(db.kysely), reads: pgReadStore(db.kysely), clock: systemClock, ids: uuidV7 };
    await placeOrder(deps, { actor: { role: 'user', userId }, userId, items: productIds.map((productId) => ({ productId, quantity: 1 })) });
    take('POST /orders');
    // Under load the service writes orders in groups: the group's orders at once, one group write in
    // flight, then the plans of the largest write_order_group call (its statements are logged before it).
    const book = pgOrderBook(db.kysely, { writesInFlight: 1 });
    await Promise.all(group.map(({ userId: buyer, productId }) =>
      placeOrder({ ...deps, book }, { actor: { role: 'user', userId: buyer }, userId: buyer, items: [{ productId, quantity: 1 }] })));
    let [largest, current, largestSize] = [[] as string[], [] as string[], 0];
    for (const text of notices) {
      if (/write_order_group\(\$1::jsonb/.test(queryOf(text))) {
        const size = Math.max(0, ...[...current.join('\n').matchAll(/Index Scan using users_pkey on users[^\n]*rows=(\d+)/g)].map((m) => Number(m[1])));
        if (size > largestSize) [largest, largestSize] = [[...current, text], size];
        current = [];
      } else if (!/FROM users WHERE id = \$1\) AS balance/.test(text)) current.push(text);
    }
    take(`POST /orders ×${group.length}, a group write of ${largestSize} orders`, largest.filter((t) => !/^SELECT 1 FROM ONLY/m.test(queryOf(t))));
    await db.kysely.transaction().execute(async (tx) => {
      await pgOutboxStore(tx).claim(100, 30_000);
      await pgOutboxStore(tx).purgeDelivered(new Date(Date.now() - RETENTION_DAYS * DAY_MS), 5_000, null);
      throw new Rollback();
    }).catch((err) => {
      if (!(err instanceof Rollback)) throw err;
    });
    take('relay (rolled back)', notices, false);
    // The service folds new orders into the rollup every TOP_SELLERS_REFRESH_MS (2 s): the fold of the orders above.
    const { ran } = await refreshSalesRollup(db.kysely);
    take(`best-seller rollup job${ran ? ', folding the orders above' : ' (did not run)'}`, notices, false);
    await db.pool.query('SELECT pg_advisory_unlock($1::int, $2::int)', [...ROLLUP_LOCK]);
  } finally {
    await db.close();
  }
  return plans;
}

