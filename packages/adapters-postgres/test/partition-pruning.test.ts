import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { cancelOrder, placeOrder, refundOrder } from '@shop/application';
import { pgReadStore, pgSalesStats, type Db } from '../src/index.ts';
import { insertSelect } from '../src/bulk-rows.ts';
import { createTestDatabase, type TestDatabase } from '../../../test/support/database.ts';
import { openExplained, orderPathDeps } from './support/explained.ts';

/**
 * The history tables are partitioned by time (migration 0014). What partitioning buys is lost as
 * soon as a query on the order path, or a page, reads partitions it does not need: these are the
 * plans of the service's own code (auto_explain with ANALYZE, nested statements included, sent back
 * as notices), and for each statement, the partitions its plan actually ran ("never executed" and
 * pruned ones do not count).
 */

const PARTITIONED = ['orders', 'order_items', 'balance_ledger', 'idempotency_keys', 'outbox_events'] as const;
type Partitioned = (typeof PARTITIONED)[number];
const PARTITION = new RegExp(`\\bon (${PARTITIONED.join('|')})_(p\\d{4}_\\d{2}(?:_\\d{2})?|before_\\w+)\\b`);

/** Per statement logged: its text, and per partitioned table the partitions its plan ran. */
function executed(notices: string[]) {
  return notices
    .filter((n) => /plan:/.test(n))
    .map((n) => {
      const ran = new Map<Partitioned, Set<string>>();
      for (const line of n.split('\n')) {
        const m = PARTITION.exec(line);
        // A ModifyTable names every partition it could write ("Update on …"); what it read is below.
        if (!m || /never executed/.test(line) || /^\s*(Update|Delete|Insert) on /.test(line)) continue;
        const table = m[1] as Partitioned;
        ran.set(table, (ran.get(table) ?? new Set()).add(`${m[1]}_${m[2]}`));
      }
      const text = /Query Text: ([\s\S]*?)\n(?=\S)/.exec(n)?.[1]?.replace(/\s+/g, ' ').trim() ?? '?';
      return { text, ran, plan: n };
    });
}

const month = (ms: number) => new Date(ms).toISOString().slice(0, 7).replace('-', '_');
const day = (ms: number) => new Date(ms).toISOString().slice(0, 10).replace(/-/g, '_');
const DAY = 86_400_000;

let tdb: TestDatabase;
let explained: Db;
let plansDuring: ReturnType<typeof openExplained>['plansDuring'];
let userId: number;
let productId: number;
const now = Date.now();
const OLD = now - 95 * DAY;

beforeAll(async () => {
  tdb = await createTestDatabase();
  // Months of history, and days of keys and events, so that there is something to prune.
  await tdb.query(`SELECT ensure_partitions(now() - interval '120 days', now(), '{orders,order_items,balance_ledger}'),
                          ensure_partitions(now() - interval '2 days', now(), '{idempotency_keys,outbox_events}')`);
  userId = (await tdb.query<{ id: number }>(`INSERT INTO users (name, balance) VALUES ('pruned', 1000000) RETURNING id`))[0]!.id;
  productId = (await tdb.query<{ id: number }>(`INSERT INTO products (name, price, stock) VALUES ('p', 1000, 1000) RETURNING id`))[0]!.id;
  await tdb.query(`INSERT INTO balance_ledger (user_id, type, amount, balance_after, created_at) VALUES ($1, 'CHARGE', 1000000, 1000000, now() - interval '100 days')`, [userId]);
  // Three orders of this user about 95 days ago, with their items and ledger rows, as the service writes them.
  const old = (k: number) => `uuid_v7(to_timestamp(${OLD / 1000}) + ${k} * interval '1 minute')`;
  for (const k of [1, 2, 3]) {
    const [{ id }] = (await tdb.query<{ id: string }>(insertSelect('orders', {
      id: old(k), user_id: `${userId}`, status: "'PAID'", total_amount: '1000', discount_amount: '0', paid_amount: '1000', coupon_id: 'NULL',
      created_at: `to_timestamp(${OLD / 1000}) + ${k} * interval '1 minute'`,
    }, '') + ' RETURNING id')) as [{ id: string }];
    await tdb.query(`INSERT INTO order_items (order_id, line_no, product_id, quantity, unit_price, line_amount) VALUES ($1, 1, $2, 1, 1000, 1000)`, [id, productId]);
    await tdb.query(`INSERT INTO balance_ledger (user_id, type, amount, balance_after, order_id, created_at)
      VALUES ($1, 'PAYMENT', -1000, 1000000 - 1000 * $3::int, $2, to_timestamp(${OLD / 1000}) + $3::int * interval '1 minute')`, [userId, id, k]);
  }
  await tdb.query(`UPDATE users SET balance = 997000 WHERE id = $1`, [userId]);
  ({ db: explained, plansDuring } = openExplained(tdb.url, 'partition-pruning'));
});

afterAll(async () => {
  await explained?.close();
  await tdb?.drop();
});

/** Runs `what` on the explained connection; the statements it logged, with the partitions each ran. */
async function plansOf(what: () => Promise<unknown>) {
  return executed(await plansDuring(what));
}

/**
 * Every partition of `table` the plans name at all, run or not: a subquery on an outer row's id is
 * planned over every month and pruned per row as it runs ("never executed"), and that planning is
 * what costs (1.3 ms a call at a year of history).
 */
const namedOf = (plans: ReturnType<typeof executed>, table: Partitioned) =>
  new Set(plans.flatMap((p) => [...p.plan.matchAll(new RegExp(PARTITION.source, 'g'))].filter((m) => m[1] === table).map((m) => `${m[1]}_${m[2]}`)));

/** Every partition any statement of `plans` ran, of `table`. */
const ranOf = (plans: ReturnType<typeof executed>, table: Partitioned) => new Set(plans.flatMap((p) => [...(p.ran.get(table) ?? [])]));

describe('the order path and every page read only the partitions they need', () => {
  const deps = () => orderPathDeps(explained);
  const actor = () => ({ role: 'user' as const, userId });
  let placed: string[] = [];

  test('an order, keyed or not: no partition of orders, items, ledger or outbox is read; keys only in the days kept', async () => {
    for (const idempotencyKey of [undefined, 'k-1', 'k-2']) {
      const plans = await plansOf(async () => {
        const r = await placeOrder(deps(), { actor: actor(), userId, items: [{ productId, quantity: 1 }], idempotencyKey });
        placed.push(r.order.orderId);
      });
      expect(plans.length).toBeGreaterThan(0);
      for (const table of ['order_items', 'balance_ledger', 'outbox_events'] as const) expect([...ranOf(plans, table)], table).toEqual([]);
      // The foreign keys of its items and ledger row check the new order, in its own month.
      const checks = plans.filter((p) => p.ran.has('orders'));
      expect(checks.every((p) => /^SELECT 1 FROM "public"."orders" x WHERE "id" OPERATOR\(pg_catalog.=\) \$1 FOR KEY SHARE OF x$/.test(p.text))).toBe(true);
      expect([...ranOf(plans, 'orders')]).toEqual([`orders_p${month(now)}`]);
      // Every day left may hold a live key (expired days are dropped): all are read, of those made ahead only tomorrow.
      const keyDays = [...ranOf(plans, 'idempotency_keys')];
      if (idempotencyKey) expect(keyDays).toContain(`idempotency_keys_p${day(now)}`);
      expect(keyDays.every((p) => p <= `idempotency_keys_p${day(now + DAY)}`), keyDays.join()).toBe(true);
      // An index probe per key on days never analyzed (these, as a new day's are): a lookup written
      // as a join hashed such a day whole instead, and kept that plan while the day filled.
      const keyScans = plans.flatMap((p) => p.plan.split('\n'))
        .filter((l) => /\bon idempotency_keys_p\d/.test(l) && !/never executed/.test(l) && !/^\s*(Update|Delete|Insert) on /.test(l));
      if (idempotencyKey) expect(keyScans.length).toBeGreaterThan(0);
      for (const scan of keyScans) expect(scan).toMatch(/Index (Only )?Scan using idempotency_keys_p\w+ on /);
    }
    // A replay reads the order its key names: one partition.
    const replay = await plansOf(() => placeOrder(deps(), { actor: actor(), userId, items: [{ productId, quantity: 1 }], idempotencyKey: 'k-1' }));
    expect([...ranOf(replay, 'orders')]).toEqual([`orders_p${month(now)}`]);
  });

  test('an order by id: its own month only, pruned as it is planned', async () => {
    const plans = await plansOf(() => pgReadStore(explained.kysely).order(placed[0]!));
    expect([...ranOf(plans, 'orders')]).toEqual([`orders_p${month(now)}`]);
    expect([...ranOf(plans, 'order_items')]).toEqual([`order_items_p${month(now)}`]);
    expect([...namedOf(plans, 'order_items')]).toEqual([`order_items_p${month(now)}`]);
  });

  test("a user's orders: the first page stops in the months it needs; a page after a cursor starts at the cursor's month", async () => {
    const reads = pgReadStore(explained.kysely);
    let page!: Awaited<ReturnType<typeof reads.ordersOf>>;
    const first = await plansOf(async () => (page = await reads.ordersOf(userId, 2, null)));
    expect(page.items.map((o) => o.orderId)).toEqual([placed[2], placed[1]]);
    const firstRan = [...ranOf(first, 'orders')];
    expect(firstRan).toContain(`orders_p${month(now)}`);
    expect(firstRan.every((p) => p >= `orders_p${month(now)}`), firstRan.join()).toBe(true);
    // The page's items are planned over the page's months only, not every month of order_items;
    // still so from the sixth call, when PostgreSQL may plan the prepared statements generically.
    expect([...namedOf(first, 'order_items')]).toEqual([`order_items_p${month(now)}`]);
    for (let i = 0; i < 6; i++) await reads.ordersOf(userId, 2, null);
    const generic = await plansOf(() => reads.ordersOf(userId, 2, null));
    expect([...namedOf(generic, 'order_items')]).toEqual([`order_items_p${month(now)}`]);
    const genericRan = [...ranOf(generic, 'orders')];
    expect(genericRan.every((p) => p >= `orders_p${month(now)}`), genericRan.join()).toBe(true);
    // Two pages on, the cursor is in the old month: nothing newer than it is read.
    page = await reads.ordersOf(userId, 4, null);
    const later = await plansOf(async () => (page = await reads.ordersOf(userId, 1, page.nextCursor)));
    expect(page.items).toHaveLength(1);
    expect([...ranOf(later, 'orders')]).toEqual([`orders_p${month(OLD)}`]);
    expect([...namedOf(later, 'order_items')]).toEqual([`order_items_p${month(OLD)}`]);
  });

  test("a user's balance history: the first page stops in this month; a page after a cursor starts at the cursor's month", async () => {
    const reads = pgReadStore(explained.kysely);
    let page!: Awaited<ReturnType<typeof reads.ledger>>;
    const first = await plansOf(async () => (page = await reads.ledger(userId, 2, null)));
    expect(page.items.every((e) => e.type === 'PAYMENT' && e.createdAt.getTime() > now - DAY)).toBe(true);
    const firstRan = [...ranOf(first, 'balance_ledger')];
    expect(firstRan.every((p) => p >= `balance_ledger_p${month(now)}`), firstRan.join()).toBe(true);
    page = await reads.ledger(userId, 4, null);
    const later = await plansOf(async () => (page = await reads.ledger(userId, 1, page.nextCursor)));
    expect(page.items).toHaveLength(1);
    expect([...ranOf(later, 'balance_ledger')].every((p) => p <= `balance_ledger_p${month(OLD)}`)).toBe(true);
  });

  test('a refund and a cancellation: the order\'s month, and the outbox days from its creation to now', async () => {
    for (const change of [
      () => refundOrder(deps(), { actor: actor(), orderId: placed[0]!, items: [{ productId, quantity: 1 }] }),
      () => cancelOrder(deps(), { actor: actor(), orderId: placed[1]! }),
    ]) {
      const plans = await plansOf(change);
      expect([...ranOf(plans, 'orders')]).toEqual([`orders_p${month(now)}`]);
      expect([...ranOf(plans, 'order_items')]).toEqual([`order_items_p${month(now)}`]);
      // The order and its items are read by its id before the write: planned for its month alone.
      const snapshot = plans.filter((p) => /key_state/.test(p.text));
      expect(snapshot).toHaveLength(1);
      expect([...namedOf(snapshot, 'order_items')]).toEqual([`order_items_p${month(now)}`]);
      const outbox = [...ranOf(plans, 'outbox_events')];
      expect(outbox.length).toBeGreaterThan(0);
      expect(outbox.every((p) => p >= `outbox_events_p${day(now - DAY)}` && p <= `outbox_events_p${day(now + DAY)}`), outbox.join()).toBe(true);
    }
  });

  test("best sellers: the orders of the window's first partial hour, from this month only", async () => {
    const plans = await plansOf(() => pgSalesStats(explained.kysely).top(new Date(now - 30 * 60_000), 10));
    expect([...ranOf(plans, 'orders')].every((p) => p === `orders_p${month(now)}`)).toBe(true);
  });
});
