import { openDatabase, pgOrderBook, pgOutboxStore, pgReadStore, PgUnitOfWork, refreshSalesRollup } from '@shop/adapters-postgres';
import { placeOrder, systemClock, uuidV7 } from '@shop/application';
import { DAY_MS, RETENTION_DAYS, ROLLUP_LOCK, type ScaleInfo } from './scale-seed.ts';
import { seededRandom } from './stats.ts';

/** The tables the order path reads or writes: a Seq Scan on one of them in its plans is flagged. */
const BIG = ['users', 'products', 'orders', 'order_items', 'balance_ledger', 'outbox_events', 'user_coupons'];

export interface ScalePlan {
  /** The statement as the service sends it, or one inside write_order_group. */
  readonly what: string;
  readonly plan: string;
  /** Tables of BIG this plan reads with a Seq Scan. */
  readonly seqScans: string[];
  /** False for the background jobs beside the orders (relay, best-seller rollup). */
  readonly orderPath: boolean;
}

class Rollback extends Error {}

/**
 * The order path's plans on the seeded tables, as the service's own code runs them, from
 * auto_explain (ANALYZE, BUFFERS, nested statements; this session only, sent back as notices):
 * one real order of `productIds` by `userId` (audited with the run's), a group write of 32 orders,
 * the relay's claim and purge (rolled back) and the rollup job's fold of those orders.
 */
export async function orderPathPlans(databaseUrl: string, userId: number, productIds: number[], groupUsers: number[], productCount: number): Promise<ScalePlan[]> {
  const url = new URL(databaseUrl);
  const explain = ['session_preload_libraries=auto_explain', 'min_duration=0', 'analyze=on', 'buffers=on', 'timing=on', 'nested_statements=on', 'level=notice'];
  url.searchParams.set('options', explain.map((o) => `-c ${o.includes('preload') ? o : `auto_explain.log_${o}`}`).join(' '));
  const db = openDatabase({ connectionString: url.toString(), max: 1, applicationName: 'bench-scale-explain' });
  let notices: string[] = [];
  db.pool.on('connect', (c) => c.on('notice', (n) => notices.push(n.message ?? '')));
  const plans: ScalePlan[] = [];
  const queryOf = (text: string) => /Query Text: ([\s\S]*?)\n(?=\S)/.exec(text)?.[1]?.replace(/\s+/g, ' ').trim() ?? '?';
  const take = (label: string, texts = notices, orderPath = true) => {
    for (const text of texts.filter((t) => /plan:/.test(t))) {
      const query = queryOf(text);
      const seqScans = [...new Set([...text.matchAll(/Seq Scan on (\w+)/g)].map((m) => m[1]!).filter((t) => BIG.includes(t)))];
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
    // Under load the service writes orders in groups: 32 orders at once, one group write in
    // flight, then the plans of the largest write_order_group call (its statements are logged before it).
    const group = pgOrderBook(db.kysely, { writesInFlight: 1 });
    const rand = seededRandom(5);
    await Promise.all(Array.from({ length: 32 }, (_, i) => {
      const buyer = groupUsers[i % groupUsers.length]!;
      const items = [{ productId: 1 + Math.floor(rand() * productCount), quantity: 1 }];
      return placeOrder({ ...deps, book: group }, { actor: { role: 'user', userId: buyer }, userId: buyer, items });
    }));
    let [largest, current, largestSize] = [[] as string[], [] as string[], 0];
    for (const text of notices) {
      if (/write_order_group\(\$1::jsonb/.test(queryOf(text))) {
        const size = Math.max(0, ...[...current.join('\n').matchAll(/Index Scan using users_pkey on users[^\n]*rows=(\d+)/g)].map((m) => Number(m[1])));
        if (size > largestSize) [largest, largestSize] = [[...current, text], size];
        current = [];
      } else if (!/FROM users WHERE id = \$1\) AS balance/.test(text)) current.push(text);
    }
    take(`POST /orders ×32, a group write of ${largestSize} orders`, largest.filter((t) => !/^SELECT 1 FROM ONLY/m.test(queryOf(t))));
    await db.kysely.transaction().execute(async (tx) => {
      await pgOutboxStore(tx).claim(100, 30_000);
      await pgOutboxStore(tx).purgeDelivered(new Date(Date.now() - RETENTION_DAYS * DAY_MS));
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

/** The scale section of bench.md. */
export function scaleMarkdown(s: ScaleInfo): string {
  const n = (x: number) => x.toLocaleString('en-US');
  const mib = (b: number) => `${n(Math.round(b / 2 ** 20))} MiB`;
  const h = s.history;
  const details = (p: ScalePlan) => [
    `<details><summary>${p.what.replace(/</g, '&lt;')}${p.seqScans.length ? ` — **Seq Scan on ${p.seqScans.join(', ')}**` : ''}</summary>`,
    '', '```', p.plan, '```', '</details>', '',
  ];
  return `${[
    '',
    `## Data at scale (--scale, factor ${s.factor})`,
    '',
    `Seeded straight into the database in **${n(s.seedingSeconds)} s**: ${n(s.seeded.users)} users, ${n(s.seeded.products)} products, ` +
      `${n(s.seeded.orders)} orders between ${h.from.slice(0, 10)} and ${h.to.slice(0, 16)}Z, ${n(s.seeded.coupons)} coupon campaigns. ` +
      `Database size after seeding: **${mib(s.databaseBytes)}** (pg_database_size). Delivered events are kept for the orders since ` +
      `${h.eventsRetainedSince.slice(0, 16)}Z only (the relay's ${h.retentionDays}-day retention would have purged older ones); ` +
      'the audit requires exactly one event of every order placed since then, at most one of older ones. ' +
      `The load: ${n(s.load.users)} users drawn at random from all ${n(s.seeded.users)}, ${n(s.load.products)} products from all ${n(s.seeded.products)} (as many as the default run's). ` +
      `Schema after seeding identical to the migrations': ${s.schemaUnchanged ? 'yes' : '**no**'}.`,
    '',
    '| table | rows | size |',
    '|---|---:|---:|',
    ...Object.keys(s.rows).map((t) => `| ${t} | ${n(s.rows[t]!)} | ${mib(s.tableBytes[t]!)} |`),
    '',
    '| seeding step | s | rows |',
    '|---|---:|---:|',
    ...s.steps.map((st) => `| ${st.step} | ${n(st.seconds)} | ${st.rows === undefined ? '' : n(st.rows)} |`),
    '',
    '### Order path plans on the seeded tables (auto_explain, ANALYZE, BUFFERS)',
    '',
    s.seqScansOnBigTables.length === 0
      ? `Order path: no Seq Scan on ${BIG.join(', ')} in any of its ${s.plans.filter((p) => p.orderPath).length} plans below.`
      : `**Order path, Seq Scan on a big table:** ${s.seqScansOnBigTables.join('; ')}.`,
    '',
    s.seqScansOffOrderPath.length === 0
      ? 'Background jobs beside it (relay, best-seller rollup): no Seq Scan on those tables either.'
      : `**Background jobs beside it, Seq Scan on a big table:** ${s.seqScansOffOrderPath.join('; ')}.`,
    '',
    ...s.plans.flatMap(details),
  ].join('\n')}\n`;
}
