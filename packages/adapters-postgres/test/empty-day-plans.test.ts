import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { cancelOrder, placeOrder } from '@shop/application';
import { analyzeOutgrownPartitions, pgReadStore, type Db } from '../src/index.ts';
import { createTestDatabase, type TestDatabase } from '../../../test/support/database.ts';
import { openExplained, orderPathDeps } from './support/explained.ts';

/**
 * A day's partition of the keys is made ahead, and an ANALYZE or VACUUM of the database while it
 * is still empty records it as empty. A generic plan made then scans it whole, and PostgreSQL keeps
 * that plan while the day fills: after one midnight the keyed group write looked every key up in a
 * scan of the new day, 22 ms a group against 0.15 (docs/performance.md, "An eighth host"), until an
 * ANALYZE of that day replaced the plans, which autovacuum does when it gets to it. The same at a
 * month's turn for the checks of a new order's foreign keys. These lookups must be index probes
 * whatever the statistics said when they were planned.
 */

let tdb: TestDatabase;
let explained: Db;
let plansDuring: ReturnType<typeof openExplained>['plansDuring'];
let userId: number;
let productId: number;
// Named from the database's clock, as ensure_partitions names them (UTC).
let today: string;
let thisMonth: string;

beforeAll(async () => {
  tdb = await createTestDatabase();
  await tdb.query(`SELECT ensure_partitions(now() - interval '1 day', now() + interval '1 day', '{idempotency_keys}')`);
  [{ today, thisMonth }] = await tdb.query<{ today: string; thisMonth: string }>(
    `SELECT 'idempotency_keys_p' || to_char(now() AT TIME ZONE 'UTC', 'YYYY_MM_DD') AS "today",
            'orders_p' || to_char(now() AT TIME ZONE 'UTC', 'YYYY_MM') AS "thisMonth"`,
  ) as [{ today: string; thisMonth: string }];
  userId = (await tdb.query<{ id: number }>(`INSERT INTO users (name, balance) VALUES ('early', 100000000) RETURNING id`))[0]!.id;
  productId = (await tdb.query<{ id: number }>(`INSERT INTO products (name, price, stock) VALUES ('p', 10, 1000000) RETURNING id`))[0]!.id;
  // Today's keys and this month's orders and items, analyzed while empty; autovacuum kept off them, so that nothing replaces the plans but this test.
  for (const part of [today, thisMonth, thisMonth.replace('orders_', 'order_items_')]) {
    await tdb.query(`ALTER TABLE ${part} SET (autovacuum_enabled = off)`);
    await tdb.query(`ANALYZE ${part}`);
  }
  ({ db: explained, plansDuring } = openExplained(tdb.url, 'empty-day-plans'));
  // The read side's prepared statements, run while the month holds one order: PostgreSQL plans them generically from the sixth call.
  readId = (await placeOrder(orderPathDeps(explained), { actor: { role: 'user', userId }, userId, items: [{ productId, quantity: 1 }] })).order.orderId;
  for (let i = 0; i < 10; i++) await readOrders();
});

afterAll(async () => {
  await explained?.close();
  await tdb?.drop();
});

/** An order of this month by id, and a user's first page: the read side's prepared statements on the month's orders. */
let readId: string;
async function readOrders() {
  const reads = pgReadStore(explained.kysely);
  expect((await reads.order(readId))?.orderId).toBe(readId);
  await reads.ordersOf(userId, 2, null);
}

/** This month's orders, 20,000 more (once), without an ANALYZE: what plans kept from the empty month then scan. */
let filled = false;
async function fillMonth() {
  if (!filled) {
    await tdb.query(`INSERT INTO orders (id, user_id, status, total_amount, discount_amount, paid_amount, coupon_id, created_at)
                     SELECT uuid_v7(), $1, 'PAID', 10, 0, 10, NULL, now() FROM generate_series(1, 20000)`, [userId]);
    filled = true;
  }
  expect(Number((await tdb.query<{ n: string }>(`SELECT count(*) AS n FROM ${thisMonth}`))[0]!.n)).toBeGreaterThan(20000);
}

/** Per statement logged while `what` ran, its text and its scans of `part` that ran (none: left out). */
async function scansOf(part: string, what: () => Promise<unknown>): Promise<Array<{ text: string; scans: string[] }>> {
  return (await plansDuring(what))
    .filter((n) => /plan:/.test(n))
    .map((n) => ({
      text: /Query Text: ([\s\S]*?)\n(?=\S)/.exec(n)?.[1]?.replace(/\s+/g, ' ').trim() ?? '?',
      scans: n.split('\n').filter((l) => new RegExp(`\\bon ${part}\\b`).test(l) && !/never executed/.test(l) && !/^\s*(Insert|Update|Delete) on /.test(l)),
    }))
    .filter((p) => p.scans.length > 0);
}

/** The statements of `plans` whose text matches `text`: there must be one, and each of its scans an index's. */
function probedByIndex(plans: Array<{ text: string; scans: string[] }>, text: RegExp, what: string) {
  const matching = plans.filter((p) => text.test(p.text));
  expect(matching.length, `${what}: ${plans.map((p) => p.text).join(' | ')}`).toBeGreaterThan(0);
  for (const scan of matching.flatMap((p) => p.scans)) expect(scan, what).toMatch(/Index (Only )?Scan using \w+ on /);
}

// The group write's lookup of its keys, and completed_key's of one (a replay's snapshot, a key's state).
const GROUP_LOOKUP = /FROM completed_keys\(key_user, key_text\)/;
const ONE_KEY_LOOKUP = /FROM completed_keys\(ARRAY\[completed_key\.user_id\]/;

describe('partitions analyzed while empty', () => {
  const deps = () => orderPathDeps(explained);
  const actor = () => ({ role: 'user' as const, userId });
  const order = (idempotencyKey: string) => placeOrder(deps(), { actor: actor(), userId, items: [{ productId, quantity: 1 }], idempotencyKey });
  const cancel = (orderId: string, idempotencyKey: string) => cancelOrder(deps(), { actor: actor(), orderId, idempotencyKey });

  test('a day of keys: once it has filled, still probed by its index in the group write, a replay\'s snapshot and a keyed cancel', async () => {
    // Planned while the day is empty: the group write's lookup, the snapshot's (a replay the write
    // told of: no memory of recent keys here), and the key state's (a keyed cancel).
    expect((await order('early-1')).replayed).toBe(false);
    expect((await order('early-1')).replayed).toBe(true);
    await cancel((await order('early-2')).order.orderId, 'early-3');
    await tdb.query(`INSERT INTO idempotency_keys (user_id, key, fingerprint, result)
                     SELECT $1, 'filler-' || g, 'f', '{}'::jsonb FROM generate_series(1, 20000) g`, [userId + 1]);
    expect(Number((await tdb.query<{ n: string }>(`SELECT count(*) AS n FROM ${today}`))[0]!.n)).toBeGreaterThan(20000);

    probedByIndex(await scansOf(today, () => order('late-1')), GROUP_LOOKUP, 'a new keyed order');
    let replay!: Awaited<ReturnType<typeof order>>;
    const replayed = await scansOf(today, async () => (replay = await order('early-1')));
    expect(replay.replayed).toBe(true);
    probedByIndex(replayed, GROUP_LOOKUP, "a replay's write attempt");
    probedByIndex(replayed, ONE_KEY_LOOKUP, "a replay's snapshot with its key");
    const toCancel = await order('late-2');
    probedByIndex(await scansOf(today, () => cancel(toCancel.order.orderId, 'late-3')), ONE_KEY_LOOKUP, "a keyed cancel's key state");
  });

  test("a month of orders: once it has filled, the group write's checks of a new order's foreign keys are still index probes", async () => {
    await order('month-1');
    await fillMonth();
    // The items' and the ledger row's foreign keys look the new order up in this month.
    probedByIndex(await scansOf(thisMonth, () => order('month-2')), /FROM "public"\."orders" x WHERE "id" OPERATOR/, 'a foreign-key check');
  });

  test("a month of orders: the read side's plans, made while it was empty, are replaced once the maintenance step analyzes it", async () => {
    await fillMonth();
    // Still the plans of the nearly empty month: each statement scans the whole month, for one order or one user's page.
    const kept = await scansOf(thisMonth, readOrders);
    for (const name of ['order_by_id', 'orders_of_user_first']) {
      const scans = kept.filter((p) => p.text.includes(`/* prepared ${name} */`)).flatMap((p) => p.scans);
      expect(scans.some((l) => /Seq Scan on /.test(l)), `${name}: ${scans.join(' | ')}`).toBe(true);
    }
    const { analyzed, skipped } = await analyzeOutgrownPartitions(tdb.db.kysely);
    expect(analyzed).toContain(thisMonth);
    expect(skipped).toEqual([]);
    const replanned = await scansOf(thisMonth, readOrders);
    for (const name of ['order_by_id', 'orders_of_user_first']) {
      const scans = replanned.filter((p) => p.text.includes(`/* prepared ${name} */`)).flatMap((p) => p.scans);
      expect(scans.length, name).toBeGreaterThan(0);
      for (const scan of scans) expect(scan, name).toMatch(/(Index (Only )?Scan (Backward )?using \w+|Bitmap Heap Scan) on /);
    }
    // Analyzed, nothing has outgrown its statistics.
    expect(await analyzeOutgrownPartitions(tdb.db.kysely)).toEqual({ analyzed: [], skipped: [] });
  });
});
