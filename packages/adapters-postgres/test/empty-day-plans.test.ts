import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { cancelOrder, placeOrder, systemClock, uuidV7 } from '@shop/application';
import { openDatabase, pgOrderBook, pgReadStore, PgUnitOfWork, type Db } from '../src/index.ts';
import { createTestDatabase, type TestDatabase } from '../../../test/support/database.ts';

/**
 * A day's partition of the keys is made ahead, and an ANALYZE of the database while it is still
 * empty (an operator's, the bench's, an anti-wraparound VACUUM's) records it as empty. A generic
 * plan made then scans it whole, and PostgreSQL keeps that plan while the day fills: after one
 * midnight the keyed group write looked every key up in a scan of the new day, 22 ms a group
 * against 0.15 (docs/performance.md, "An eighth host"). Until an ANALYZE of that day replaced the
 * plans, which autovacuum does when it gets to it. The key lookups must be index probes whatever
 * the day's statistics said when they were planned.
 */

const day = (ms: number) => new Date(ms).toISOString().slice(0, 10).replace(/-/g, '_');
const month = (ms: number) => new Date(ms).toISOString().slice(0, 7).replace('-', '_');

let tdb: TestDatabase;
let explained: Db;
let notices: string[] = [];
let userId: number;
let productId: number;
const today = `idempotency_keys_p${day(Date.now())}`;
const thisMonth = `orders_p${month(Date.now())}`;

beforeAll(async () => {
  tdb = await createTestDatabase();
  await tdb.query(`SELECT ensure_partitions(now() - interval '1 day', now() + interval '1 day', '{idempotency_keys}')`);
  userId = (await tdb.query<{ id: number }>(`INSERT INTO users (name, balance) VALUES ('early', 100000000) RETURNING id`))[0]!.id;
  productId = (await tdb.query<{ id: number }>(`INSERT INTO products (name, price, stock) VALUES ('p', 10, 1000000) RETURNING id`))[0]!.id;
  // Today's keys and this month's orders, analyzed while empty; autovacuum kept off them, so that nothing replaces the plans but this test.
  for (const part of [today, thisMonth]) {
    await tdb.query(`ALTER TABLE ${part} SET (autovacuum_enabled = off)`);
    await tdb.query(`ANALYZE ${part}`);
  }
  const url = new URL(tdb.url);
  const explain = ['min_duration=0', 'analyze=on', 'timing=off', 'nested_statements=on', 'level=notice'];
  url.searchParams.set('options', ['-c session_preload_libraries=auto_explain', ...explain.map((o) => `-c auto_explain.log_${o}`)].join(' '));
  explained = openDatabase({ connectionString: url.toString(), max: 1, applicationName: 'empty-day-plans' });
  explained.pool.on('connect', (c) => c.on('notice', (n) => notices.push(n.message ?? '')));
});

afterAll(async () => {
  await explained?.close();
  await tdb?.drop();
});

/** The scans of `part` in the plans logged while `what` ran (those never executed left out). */
async function scansOf(part: string, what: () => Promise<unknown>): Promise<string[]> {
  notices = [];
  await what();
  return notices.flatMap((n) => n.split('\n')).filter((l) => new RegExp(`\\bon ${part}\\b`).test(l) && !/never executed/.test(l) && !/^\s*(Insert|Update|Delete) on /.test(l));
}
const keyScans = (what: () => Promise<unknown>) => scansOf(today, what);

describe('a day of keys analyzed while empty', () => {
  const deps = () => ({
    uow: new PgUnitOfWork(explained.kysely),
    book: pgOrderBook(explained.kysely, { writesInFlight: 1 }),
    reads: pgReadStore(explained.kysely),
    clock: systemClock,
    ids: uuidV7,
    cancelDays: 7,
  });
  const actor = () => ({ role: 'user' as const, userId });
  const order = (idempotencyKey: string) => placeOrder(deps(), { actor: actor(), userId, items: [{ productId, quantity: 1 }], idempotencyKey });

  test('is still probed by its index once it has filled, by the group write, the snapshot and the key state', async () => {
    // Planned while the day is empty: the group write's lookup, the snapshot's (a replay the
    // write told of), and the key state's (a cancel, keyed).
    const first = await order('early-1');
    await order('early-1');
    await cancelOrder(deps(), { actor: actor(), orderId: (await order('early-2')).order.orderId, idempotencyKey: 'early-3' });
    await tdb.query(`INSERT INTO idempotency_keys (user_id, key, fingerprint, result)
                     SELECT $1, 'filler-' || g, 'f', '{}'::jsonb FROM generate_series(1, 20000) g`, [userId + 1]);
    expect(Number((await tdb.query<{ n: string }>(`SELECT count(*) AS n FROM ${today}`))[0]!.n)).toBeGreaterThan(20000);

    const scans = [
      ...(await keyScans(() => order('late-1'))),
      ...(await keyScans(() => placeOrder(deps(), { actor: actor(), userId, items: [{ productId, quantity: 1 }], idempotencyKey: 'early-1' }))),
      ...(await keyScans(async () => cancelOrder(deps(), { actor: actor(), orderId: (await order('late-2')).order.orderId, idempotencyKey: 'late-3' }))),
    ];
    expect(first.replayed).toBe(false);
    expect(scans.length).toBeGreaterThan(2);
    for (const scan of scans) expect(scan).toMatch(/Index (Only )?Scan using \w+ on /);
  });

  test("a month of orders analyzed while empty: the group write's checks of the new order are still index probes once it has filled", async () => {
    await order('month-1');
    await tdb.query(`INSERT INTO orders (id, user_id, status, total_amount, discount_amount, paid_amount, coupon_id, created_at)
                     SELECT uuid_v7(), $1, 'PAID', 10, 0, 10, NULL, now() FROM generate_series(1, 20000)`, [userId]);
    expect(Number((await tdb.query<{ n: string }>(`SELECT count(*) AS n FROM ${thisMonth}`))[0]!.n)).toBeGreaterThan(20000);
    // The items' and the ledger row's foreign keys look the new order up in this month.
    const scans = await scansOf(thisMonth, () => order('month-2'));
    expect(scans.length).toBeGreaterThan(0);
    for (const scan of scans) expect(scan).toMatch(/Index (Only )?Scan using \w+ on /);
  });
});
