import fc from 'fast-check';
import { afterAll, beforeAll, expect, test } from 'vitest';
import {
  DomainError,
  cancellationEffects,
  decideCancellation,
  decideOrder,
  decideRefund,
  placementEffects,
  refundEffects,
  type Order,
  type OrderSnapshot,
} from '@shop/domain';
import { uuidV7, type BookWrite } from '@shop/application';
import { pgOrderBook, writeOrderGroup } from '../src/index.ts';
import { MemoryShop } from '../../application/test/fakes.ts';
import { createTestDatabase, type TestDatabase } from '../../../test/support/database.ts';

/**
 * The Postgres order writer (write_order_group) and the in-memory fake the application tests run on
 * must give the same answers: random states with orders already paid and partly refunded, random
 * groups of orders, refunds and cancellations decided on one snapshot, random changes between that snapshot and the write,
 * then the same group through both. Same outcomes, same final state, or the fake is testing a
 * different service.
 */

let tdb: TestDatabase;
beforeAll(async () => {
  tdb = await createTestDatabase();
});
afterAll(async () => tdb?.drop());

const DAY = 86_400_000;

interface World {
  balances: number[];
  products: { price: number; stock: number }[];
  coupons: { discountType: 'FIXED' | 'RATE'; discountValue: number; minOrderAmount: number }[];
  /** [user index, coupon index], deduplicated when arranged. */
  held: [number, number][];
  /** Placed through both writers before the group: what the group's cancellations undo. */
  earlier: OrderSpec[];
  /** Refunds of earlier orders written before the group, so that it meets partly refunded orders. */
  earlierRefunds: RefundSpec[];
  /** The group: new orders, and refunds and cancellations of earlier orders (an index into `earlier`). */
  orders: OrderSpec[];
  cancels: { target: number; key: string | null; at: number }[];
  refunds: RefundSpec[];
  /** Commits of others between the snapshot and the write. */
  changes: Change[];
}

interface OrderSpec {
  user: number;
  items: { product: number; quantity: number }[];
  coupon: number | null;
  key: string | null;
}

/** Units of some lines of an earlier order (line index, quantity): more than it has left is refused. */
interface RefundSpec {
  target: number;
  lines: { line: number; quantity: number }[];
  key: string | null;
  at: number;
}

type Change =
  | { kind: 'price'; product: number; value: number }
  | { kind: 'stock'; product: number; value: number }
  | { kind: 'balance'; user: number; value: number }
  | { kind: 'use-coupon'; user: number; coupon: number }
  | { kind: 'complete-key'; user: number; key: string }
  | { kind: 'cancel-elsewhere'; target: number }
  | { kind: 'refund-elsewhere'; target: number; line: number };

const KEYS = ['k1', 'k2'];

const worldArb: fc.Arbitrary<World> = fc
  .record({
    users: fc.integer({ min: 1, max: 3 }),
    products: fc.integer({ min: 1, max: 3 }),
    coupons: fc.integer({ min: 0, max: 2 }),
  })
  .chain(({ users, products, coupons }) => {
    const user = fc.nat({ max: users - 1 });
    const product = fc.nat({ max: products - 1 });
    const coupon = coupons === 0 ? fc.constant(null) : fc.option(fc.nat({ max: coupons - 1 }), { freq: 2 });
    const key = fc.option(fc.constantFrom(...KEYS), { freq: 2 });
    const change: fc.Arbitrary<Change> = fc.oneof(
      fc.record({ kind: fc.constant('price' as const), product, value: fc.integer({ min: 0, max: 3_000 }) }),
      fc.record({ kind: fc.constant('stock' as const), product, value: fc.integer({ min: 0, max: 6 }) }),
      fc.record({ kind: fc.constant('balance' as const), user, value: fc.integer({ min: 0, max: 20_000 }) }),
      ...(coupons === 0 ? [] : [fc.record({ kind: fc.constant('use-coupon' as const), user, coupon: fc.nat({ max: coupons - 1 }) })]),
      // Weighted: it only matters when it hits the user and key of an order of the group.
      { arbitrary: fc.record({ kind: fc.constant('complete-key' as const), user, key: fc.constantFrom(...KEYS) }), weight: 4 },
      fc.record({ kind: fc.constant('cancel-elsewhere' as const), target: fc.nat({ max: 3 }) }),
      fc.record({ kind: fc.constant('refund-elsewhere' as const), target: fc.nat({ max: 1 }), line: fc.nat({ max: 2 }) }),
    );
    const refundSpec = fc.record({
      target: fc.nat({ max: 1 }),
      lines: fc.uniqueArray(fc.record({ line: fc.nat({ max: 2 }), quantity: fc.integer({ min: 1, max: 2 }) }), {
        minLength: 1,
        maxLength: 3,
        selector: (l) => l.line,
      }),
      key: fc.option(fc.constantFrom('r1', 'r2'), { freq: 2 }),
      at: fc.nat({ max: 8 }),
    });
    const orderSpec = fc.record({
      user,
      items: fc.uniqueArray(fc.record({ product, quantity: fc.integer({ min: 1, max: 3 }) }), {
        minLength: 1,
        maxLength: products,
        selector: (i) => i.product,
      }),
      coupon,
      key,
    });
    return fc.record({
      balances: fc.array(fc.integer({ min: 0, max: 20_000 }), { minLength: users, maxLength: users }),
      products: fc.array(fc.record({ price: fc.integer({ min: 0, max: 3_000 }), stock: fc.integer({ min: 0, max: 6 }) }), {
        minLength: products,
        maxLength: products,
      }),
      coupons: fc.array(
        fc.record({
          discountType: fc.constantFrom('FIXED' as const, 'RATE' as const),
          discountValue: fc.integer({ min: 1, max: 100 }),
          minOrderAmount: fc.integer({ min: 0, max: 3_000 }),
        }),
        { minLength: coupons, maxLength: coupons },
      ),
      held: coupons === 0 ? fc.constant([]) : fc.array(fc.tuple(user, fc.nat({ max: coupons - 1 })), { maxLength: 4 }),
      earlier: fc.array(orderSpec, { maxLength: 4 }),
      orders: fc.array(orderSpec, { maxLength: 8 }),
      // Several may undo the same order, as concurrent cancels do (two targets make that common
      // enough to be seen in every run, not in most); `at` is the place in the group.
      cancels: fc.array(fc.record({ target: fc.nat({ max: 1 }), key: fc.option(fc.constantFrom('c1', 'c2'), { freq: 2 }), at: fc.nat({ max: 8 }) }), {
        maxLength: 4,
      }),
      earlierRefunds: fc.array(refundSpec, { maxLength: 3 }),
      refunds: fc.array(refundSpec, { maxLength: 6 }),
      changes: fc.array(change, { maxLength: 3 }),
    });
  });

/** Ids: users 1.., products 101.., coupons 201.. on both sides. */
const userId = (i: number) => 1 + i;
const productId = (i: number) => 101 + i;
const couponId = (i: number) => 201 + i;

async function arrange(world: World, now: Date): Promise<MemoryShop> {
  await tdb.query(
    `TRUNCATE users, products, coupons, user_coupons, orders, order_items, refunds, refund_items, balance_ledger, outbox_events, idempotency_keys
     RESTART IDENTITY CASCADE`,
  );
  const shop = new MemoryShop();
  for (const [i, balance] of world.balances.entries()) {
    await tdb.query(`INSERT INTO users (id, name, balance) OVERRIDING SYSTEM VALUE VALUES ($1, 'u', $2)`, [userId(i), balance]);
    shop.state.users.set(userId(i), { userId: userId(i), name: 'u', balance });
  }
  for (const [i, p] of world.products.entries()) {
    await tdb.query(`INSERT INTO products (id, name, price, stock) OVERRIDING SYSTEM VALUE VALUES ($1, 'p', $2, $3)`, [productId(i), p.price, p.stock]);
    shop.state.products.set(productId(i), { productId: productId(i), name: 'p', price: p.price, stock: p.stock });
  }
  for (const [i, c] of world.coupons.entries()) {
    await tdb.query(
      `INSERT INTO coupons (id, name, discount_type, discount_value, total_quantity, min_order_amount, valid_days)
       OVERRIDING SYSTEM VALUE VALUES ($1, 'c', $2, $3, 100, $4, 1)`,
      [couponId(i), c.discountType, c.discountValue, c.minOrderAmount],
    );
    shop.state.coupons.set(couponId(i), {
      couponId: couponId(i),
      name: 'c',
      ...c,
      totalQuantity: 100,
      issuedQuantity: 0,
      issueStartsAt: null,
      issueEndsAt: null,
      validDays: 1,
    });
  }
  const issuedAt = new Date(now.getTime() - DAY);
  const expiresAt = new Date(now.getTime() + DAY);
  for (const [u, c] of new Map(world.held.map(([u, c]) => [`${u}:${c}`, [u, c] as const])).values()) {
    await tdb.query(`INSERT INTO user_coupons (user_id, coupon_id, issued_at, expires_at) VALUES ($1, $2, $3, $4)`, [
      userId(u),
      couponId(c),
      issuedAt,
      expiresAt,
    ]);
    shop.give(couponId(c), userId(u), issuedAt, expiresAt);
  }
  return shop;
}

/** Another commit, on both sides alike. */
async function change(shop: MemoryShop, c: Change, now: Date): Promise<void> {
  const s = shop.state;
  if (c.kind === 'price' || c.kind === 'stock') {
    await tdb.query(`UPDATE products SET ${c.kind} = $2 WHERE id = $1`, [productId(c.product), c.value]);
    const p = s.products.get(productId(c.product))!;
    s.products.set(p.productId, { ...p, [c.kind]: c.value });
  } else if (c.kind === 'balance') {
    await tdb.query(`UPDATE users SET balance = $2 WHERE id = $1`, [userId(c.user), c.value]);
    s.users.get(userId(c.user))!.balance = c.value;
  } else if (c.kind === 'use-coupon') {
    const held = s.held.get(`${userId(c.user)}:${couponId(c.coupon)}`);
    if (!held || held.usedAt) return;
    const elsewhere = uuidV7.next();
    await tdb.query(
      `INSERT INTO orders (id, user_id, status, total_amount, discount_amount, paid_amount, created_at) VALUES ($1, $2, 'PAID', 0, 0, 0, $3)`,
      [elsewhere, userId(c.user), now],
    );
    await tdb.query(`UPDATE user_coupons SET used_at = $3, order_id = $4 WHERE user_id = $1 AND coupon_id = $2`, [
      userId(c.user),
      couponId(c.coupon),
      now,
      elsewhere,
    ]);
    s.held.set(`${userId(c.user)}:${couponId(c.coupon)}`, { ...held, usedAt: now, orderId: elsewhere });
  } else if (c.kind === 'cancel-elsewhere') {
    const target = earlierIds[c.target];
    const order = target === undefined ? undefined : s.orders.get(target);
    if (!order || order.status === 'CANCELLED') return;
    const w = cancelWrite(decideCancellation(order, now, 7), null);
    expect(await writeOrderGroup(tdb.db.kysely, [w], 1_000)).toEqual(await shop.writeGroup([w]));
  } else if (c.kind === 'refund-elsewhere') {
    const target = earlierIds[c.target];
    const order = target === undefined ? undefined : s.orders.get(target);
    const w = order && refundWrite(order, { target: c.target, lines: [{ line: c.line, quantity: 1 }], key: null, at: 0 }, now);
    if (w) expect(await writeOrderGroup(tdb.db.kysely, [w], 1_000)).toEqual(await shop.writeGroup([w]));
  } else {
    if (s.idempotency.has(`${userId(c.user)}:${c.key}`)) return;
    await tdb.query(`INSERT INTO idempotency_keys (user_id, key, fingerprint, result) VALUES ($1, $2, 'elsewhere', '{}')`, [
      userId(c.user),
      c.key,
    ]);
    s.idempotency.set(`${userId(c.user)}:${c.key}`, { fingerprint: 'elsewhere', result: {} });
  }
}

/** The earlier orders of the world being tried, by index, once placed. */
let earlierIds: string[] = [];

const cancelWrite = (cancellation: ReturnType<typeof decideCancellation>, key: string | null): BookWrite => ({
  effects: cancellationEffects(cancellation, uuidV7.next()),
  claim: key === null ? null : { key, fingerprint: `f-${key}`, result: { orderId: cancellation.order.orderId } },
});
/** A refund of `spec`'s units of `order`, or null when the domain refuses it (a unit it does not have left, a cancelled order). */
function refundWrite(order: Order, spec: RefundSpec, now: Date): BookWrite | null {
  const lines = spec.lines.flatMap(({ line, quantity }) => {
    const item = order.items[line];
    return item ? [{ productId: item.productId, quantity }] : [];
  });
  try {
    const refund = decideRefund(order, lines, uuidV7.next(), now, 7);
    const claim = spec.key === null ? null : { key: spec.key, fingerprint: `f-${spec.key}`, result: { orderId: order.orderId, refundId: refund.record.refundId } };
    return { effects: refundEffects(refund, uuidV7.next()), claim };
  } catch (err) {
    if (!(err instanceof DomainError)) throw err;
    return null;
  }
}
const kindOf = (w: BookWrite) => (w.effects.refund !== null ? 'refund' : w.effects.guard.order !== null ? 'cancel' : 'order');

/** What both sides stored, in one comparable shape. */
async function pgState() {
  const q = <R extends Record<string, unknown>>(text: string) => tdb.query<R>(text);
  return {
    balances: await q<{ id: number; balance: number }>('SELECT id, balance FROM users ORDER BY id'),
    products: await q<{ id: number; price: number; stock: number }>('SELECT id, price, stock FROM products ORDER BY id'),
    held: await q(`SELECT user_id, coupon_id, used_at IS NOT NULL AS used, order_id::text FROM user_coupons ORDER BY 1, 2`),
    orders: await q(
      `SELECT id::text, user_id, status, total_amount, discount_amount, paid_amount, coupon_id, cancelled_at, refunded_amount
         FROM orders o WHERE EXISTS (SELECT 1 FROM order_items i WHERE i.order_id = o.id) ORDER BY id`,
    ),
    items: await q(
      `SELECT order_id::text, line_no, product_id, quantity, unit_price, line_amount, refunded_quantity FROM order_items ORDER BY 1, 2`,
    ),
    refunds: await q(
      `SELECT r.id::text, r.order_id::text, r.amount, r.created_at,
              (SELECT json_agg(json_build_object('productId', i.product_id, 'quantity', i.quantity) ORDER BY i.line_no)
                 FROM refund_items i WHERE i.refund_id = r.id) AS items
         FROM refunds r ORDER BY r.id`,
    ),
    ledger: await q(`SELECT user_id, type, amount, balance_after, order_id::text FROM balance_ledger ORDER BY order_id, type, user_id, id`),
    events: await q(`SELECT event_id::text, event_type, aggregate_id, payload FROM outbox_events ORDER BY event_id`),
    keys: await q(`SELECT user_id, key, fingerprint, result FROM idempotency_keys ORDER BY 1, 2`),
  };
}

function fakeState(shop: MemoryShop) {
  const s = shop.state;
  const byId = <T>(a: [number | string, T][]) => a.sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0)).map(([, v]) => v);
  const orders = [...s.orders.values()];
  return {
    balances: [...s.users.values()].map((u) => ({ id: u.userId, balance: u.balance })).sort((a, b) => a.id - b.id),
    products: [...s.products.values()].map((p) => ({ id: p.productId, price: p.price, stock: p.stock })).sort((a, b) => a.id - b.id),
    held: byId(
      [...s.held.values()].map((h) => [
        h.userId * 1_000 + h.couponId,
        { user_id: h.userId, coupon_id: h.couponId, used: h.usedAt !== null, order_id: h.orderId },
      ]),
    ),
    orders: byId(
      orders.map((o) => [
        o.orderId,
        {
          id: o.orderId,
          user_id: o.userId,
          status: o.status,
          total_amount: o.totalAmount,
          discount_amount: o.discountAmount,
          paid_amount: o.paidAmount,
          coupon_id: o.couponId,
          cancelled_at: o.cancelledAt,
          refunded_amount: o.refundedAmount,
        },
      ]),
    ),
    items: byId(
      orders.flatMap((o) =>
        o.items.map(
          (l, n) =>
            [
              `${o.orderId}:${n}`,
              {
                order_id: o.orderId,
                line_no: n + 1,
                product_id: l.productId,
                quantity: l.quantity,
                unit_price: l.unitPrice,
                line_amount: l.lineAmount,
                refunded_quantity: l.refundedQuantity,
              },
            ] as [string, object],
        ),
      ),
    ),
    refunds: byId(
      [...s.refunds.values()].flat().map((r) => [
        r.refundId,
        { id: r.refundId, order_id: r.orderId, amount: r.amount, created_at: r.createdAt, items: r.items },
      ]),
    ),
    ledger: byId(
      s.ledger.map((e) => [
        `${e.orderId}:${e.type}:${e.userId}`,
        { user_id: e.userId, type: e.type, amount: e.amount, balance_after: e.balanceAfter, order_id: e.orderId },
      ]),
    ),
    events: byId(
      s.outbox.map((e) => [e.eventId, { event_id: e.eventId, event_type: e.type, aggregate_id: e.data.orderId, payload: JSON.parse(JSON.stringify(e)) }]),
    ),
    keys: byId(
      [...s.idempotency.entries()].map(([k, v]) => {
        const [u, key] = [Number(k.slice(0, k.indexOf(':'))), k.slice(k.indexOf(':') + 1)];
        return [`${String(u).padStart(4, '0')}:${key}`, { user_id: u, key, fingerprint: v.fingerprint, result: v.result }];
      }),
    ),
  };
}

test('write_order_group and the in-memory writer place, refund, cancel, refuse and store exactly the same', async () => {
  const book = pgOrderBook(tdb.db.kysely);
  let groupsWithSeveralWritten = 0;
  let guardFailedSeen = 0;
  let keyCompletedSeen = 0;
  const written = { order: 0, cancel: 0, refund: 0 };
  const refused = { order: 0, cancel: 0, refund: 0 };
  let partlyRefundedCancelled = 0;
  const property =
    fc.asyncProperty(worldArb, async (world) => {
      const now = new Date();
      const shop = await arrange(world, now);

      /** Each order decided on both sides' snapshot, which must be the same. */
      const decide = async (specs: OrderSpec[]): Promise<BookWrite[]> => {
        const decided: BookWrite[] = [];
        for (const o of specs) {
          const items = o.items.map((i) => ({ productId: productId(i.product), quantity: i.quantity }));
          const ids = items.map((i) => i.productId).sort((a, b) => a - b);
          const coupon = o.coupon === null ? null : couponId(o.coupon);
          const seen = await book.snapshot(userId(o.user), ids, coupon, o.key);
          const { completed, ...snapshot } = seen;
          const fakeSeen: OrderSnapshot = await shop.book.snapshot(userId(o.user), ids, coupon, o.key);
          expect({ ...fakeSeen, completed: undefined }).toEqual({ ...snapshot, completed: undefined });
          if (completed) continue;
          try {
            const decision = decideOrder({ orderId: uuidV7.next(), userId: userId(o.user), items, couponId: coupon, now }, snapshot);
            const claim = o.key === null ? null : { key: o.key, fingerprint: `f-${o.key}`, result: { orderId: decision.order.orderId } };
            decided.push({ effects: placementEffects(decision, uuidV7.next()), claim });
          } catch (err) {
            if (!(err instanceof DomainError)) throw err;
          }
        }
        return decided;
      };

      // The earlier orders, one group through each writer: the orders the cancellations undo.
      const earlier = await decide(world.earlier);
      if (earlier.length > 0) expect(await writeOrderGroup(tdb.db.kysely, earlier, 1_000)).toEqual(await shop.writeGroup(earlier));
      earlierIds = earlier.flatMap((w) => (shop.state.orders.has(w.effects.order.orderId) ? [w.effects.order.orderId] : []));
      for (const r of world.earlierRefunds) {
        const order = earlierIds[r.target] === undefined ? undefined : shop.state.orders.get(earlierIds[r.target]!);
        const w = order && refundWrite(order, { ...r, key: null }, now);
        if (w) expect(await writeOrderGroup(tdb.db.kysely, [w], 1_000)).toEqual(await shop.writeGroup([w]));
      }

      const writes = await decide(world.orders);
      for (const c of world.cancels) {
        const target = earlierIds[c.target];
        if (target === undefined) continue;
        const seen = await book.changeSnapshot(target, c.key);
        const fakeSeen = await shop.book.changeSnapshot(target, c.key);
        expect({ ...fakeSeen, key: fakeSeen.key.state }).toEqual({ ...seen, key: seen.key.state });
        if (seen.key.state !== 'free' || !seen.order || seen.order.status === 'CANCELLED') continue;
        writes.splice(Math.min(c.at, writes.length), 0, cancelWrite(decideCancellation(seen.order, now, 7), c.key));
      }
      for (const r of world.refunds) {
        const target = earlierIds[r.target];
        if (target === undefined) continue;
        const seen = await book.changeSnapshot(target, r.key);
        const fakeSeen = await shop.book.changeSnapshot(target, r.key);
        expect({ ...fakeSeen, key: fakeSeen.key.state }).toEqual({ ...seen, key: seen.key.state });
        const w = seen.key.state === 'free' && seen.order ? refundWrite(seen.order, r, now) : null;
        if (w) writes.splice(Math.min(r.at, writes.length), 0, w);
      }
      for (const c of world.changes) await change(shop, c, now);
      if (writes.length === 0) return;

      const pgOutcomes = await writeOrderGroup(tdb.db.kysely, writes, 1_000);
      const fakeOutcomes = await shop.writeGroup(writes);
      expect(pgOutcomes).toEqual(fakeOutcomes);
      expect(await pgState()).toEqual(fakeState(shop));
      if (pgOutcomes.filter((o) => o === 'written').length > 1) groupsWithSeveralWritten++;
      if (pgOutcomes.includes('guard_failed')) guardFailedSeen++;
      if (pgOutcomes.includes('key_completed')) keyCompletedSeen++;
      writes.forEach((w, i) => {
        if (pgOutcomes[i] === 'written') written[kindOf(w)]++;
        if (pgOutcomes[i] === 'guard_failed') refused[kindOf(w)]++;
        if (pgOutcomes[i] === 'written' && kindOf(w) === 'cancel' && w.effects.guard.order!.refundedUnits > 0) partlyRefundedCancelled++;
      });
    });
  // The generator must reach the cases that matter, or the test proves little. How many runs that
  // takes is itself random (a CI run once saw 5 written refunds in 200), so after 200 runs it goes
  // on in rounds of 100 until every case has been met often enough, up to 800: only a generator
  // that has stopped reaching a case fails.
  const reached = () =>
    groupsWithSeveralWritten > 10 &&
    guardFailedSeen > 10 &&
    keyCompletedSeen > 1 &&
    written.cancel > 10 &&
    refused.cancel > 5 &&
    written.refund > 10 &&
    refused.refund > 5 &&
    partlyRefundedCancelled > 0;
  for (let round = 0; round < 8 && (round < 2 || !reached()); round++) await fc.assert(property, { numRuns: 100 });
  expect(groupsWithSeveralWritten).toBeGreaterThan(10);
  expect(guardFailedSeen).toBeGreaterThan(10);
  expect(keyCompletedSeen).toBeGreaterThan(1);
  expect(written.cancel).toBeGreaterThan(10);
  expect(refused.cancel).toBeGreaterThan(5);
  expect(written.refund).toBeGreaterThan(10);
  expect(refused.refund).toBeGreaterThan(5);
  expect(partlyRefundedCancelled).toBeGreaterThan(0);
}, 300_000);
