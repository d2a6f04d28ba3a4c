import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../../test/support/database.ts';
import { startTestApp, type Client, type Reply, type RequestOptions, type TestApp } from '../../../test/support/http.ts';
import { assertInvariants, outcomes } from '../../../test/support/invariants.ts';

/**
 * POST /orders/{orderId}/cancel (contract "Cancel an order and refund", ADR 0008) over real
 * sockets against the real database. What the service answers is checked through the API; what it
 * wrote (balance, ledger, stock, coupon copy, events, keys) with plain SQL, independent of the code
 * under test. A refused request must leave every one of those exactly as it was.
 */
let tdb: TestDatabase;
let app: TestApp;
let client: Client;
/** Every product made here, with its stock at creation: the stock invariant covers them all. */
const initialStock = new Map<number, number>();

beforeAll(async () => {
  tdb = await createTestDatabase();
  app = await startTestApp(tdb.url);
  client = app.client;
});
afterAll(async () => {
  await app?.close();
  await tdb?.drop();
});

type Buyer = { userId: number; token: string };

async function product(price: number, stock: number): Promise<number> {
  const id = await client.createProduct(price, stock);
  initialStock.set(id, stock);
  return id;
}

async function users(n: number, balance: number): Promise<Buyer[]> {
  const made: Buyer[] = [];
  for (let i = 0; i < n; i += 20) {
    made.push(...(await Promise.all(Array.from({ length: Math.min(20, n - i) }, () => client.createUser(balance)))));
  }
  return made;
}

/** Places an order that must succeed and returns its 201 body. */
async function order(buyer: Buyer, items: Array<[number, number]>, extra: { couponId?: number; key?: string } = {}) {
  const res = await client.post(
    '/orders',
    {
      userId: buyer.userId,
      items: items.map(([productId, quantity]) => ({ productId, quantity })),
      ...(extra.couponId === undefined ? {} : { couponId: extra.couponId }),
    },
    { token: buyer.token, headers: extra.key === undefined ? {} : { 'idempotency-key': extra.key } },
  );
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body;
}

/**
 * The cancel request as the contract describes it: no body at all (so no content-type either).
 * The token defaults to the admin's, as everywhere in Client.
 */
const cancel = (orderId: string, options: RequestOptions = {}) =>
  client.request('POST', `/orders/${encodeURIComponent(orderId)}/cancel`, undefined, options);

const replayed = (r: Reply) => r.headers.get('idempotent-replayed') === 'true';
/** The order body once cancelled: unchanged but for its status, its cancellation time, and everything refunded. */
const cancelledBody = (placed: { paidAmount: number; items: Array<{ quantity: number }> }) => ({
  ...placed,
  status: 'CANCELLED',
  cancelledAt: expect.any(String),
  refundedAmount: placed.paidAmount,
  items: placed.items.map((i) => ({ ...i, refundedQuantity: i.quantity })),
});

function expectProblem(res: Reply, status: number, code: string) {
  expect([res.status, res.body?.code], JSON.stringify(res.body)).toEqual([status, code]);
  expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
}

const no5xx = (replies: Reply[]) => expect(replies.filter((r) => r.status >= 500), JSON.stringify(outcomes(replies))).toEqual([]);

const balanceOf = async (userId: number) =>
  (await tdb.query<{ balance: number }>('SELECT balance FROM users WHERE id = $1', [userId]))[0]!.balance;
const stockOf = async (productId: number) =>
  (await tdb.query<{ stock: number }>('SELECT stock FROM products WHERE id = $1', [productId]))[0]!.stock;
const ledgerOf = (userId: number) =>
  tdb.query<{ type: string; amount: number; balance_after: number; order_id: string | null }>(
    'SELECT type, amount, balance_after, order_id FROM balance_ledger WHERE user_id = $1 ORDER BY id',
    [userId],
  );
const eventsOf = (orderId: string) =>
  tdb.query<{ event_type: string; payload: any }>('SELECT event_type, payload FROM outbox_events WHERE aggregate_id = $1 ORDER BY seq', [orderId]);
const keysOf = async (userId: number) =>
  (await tdb.query<{ key: string }>('SELECT key FROM idempotency_keys WHERE user_id = $1 ORDER BY key', [userId])).map((k) => k.key);

/** Moves an order back in time, as if it had been placed then. */
async function backdate(orderId: string, ms: number) {
  await tdb.query(`UPDATE orders SET created_at = created_at - $2 * interval '1 millisecond' WHERE id = $1`, [orderId, ms]);
}
const MINUTE = 60_000;
const DAY = 86_400_000;

/**
 * Everything a cancellation of `orderId` could change, read with SQL: the order row, its owner's
 * balance, ledger, coupon copies and idempotency keys, the stock of its products, its events. Equal
 * before and after a refused request means the request changed nothing. (Delivery columns of the
 * events are left out: the relay updates them on its own.)
 */
async function footprint(orderId: string) {
  const [owner] = await tdb.query<{ user_id: number }>('SELECT user_id FROM orders WHERE id = $1', [orderId]);
  const userId = owner!.user_id;
  return {
    order: await tdb.query('SELECT status, cancelled_at, cancel_xact_id FROM orders WHERE id = $1', [orderId]),
    balance: await balanceOf(userId),
    ledger: await ledgerOf(userId),
    stock: await tdb.query(
      'SELECT p.id, p.stock FROM products p JOIN order_items i ON i.product_id = p.id WHERE i.order_id = $1 ORDER BY p.id',
      [orderId],
    ),
    coupons: await tdb.query('SELECT coupon_id, used_at, order_id, expires_at FROM user_coupons WHERE user_id = $1 ORDER BY coupon_id', [userId]),
    events: (await eventsOf(orderId)).map((e) => e.event_type),
    keys: await keysOf(userId),
  };
}

describe('cancelling an order', () => {
  test('by its owner: CANCELLED everywhere, balance, stock and coupon given back exactly, and the coupon pays again', async () => {
    const [buyer] = await users(1, 50_000);
    const p1 = await product(10_000, 10);
    const p2 = await product(3_000, 5);
    const couponId = await client.createCoupon({ discountType: 'FIXED', discountValue: 2_000 });
    await client.grant(couponId, buyer!.userId);
    const [copyBefore] = await tdb.query<{ expires_at: Date }>('SELECT expires_at FROM user_coupons WHERE user_id = $1 AND coupon_id = $2', [buyer!.userId, couponId]);

    const placed = await order(buyer!, [[p1, 2], [p2, 1]], { couponId });
    expect(placed).toMatchObject({ status: 'PAID', totalAmount: 23_000, discountAmount: 2_000, paidAmount: 21_000, cancelledAt: null });
    expect(await balanceOf(buyer!.userId)).toBe(29_000);

    const before = Date.now();
    const res = await cancel(placed.orderId, { token: buyer!.token });
    const after = Date.now();
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(replayed(res)).toBe(false);
    expect(res.body).toEqual(cancelledBody(placed));
    expect(new Date(res.body.cancelledAt).toISOString()).toBe(res.body.cancelledAt);
    expect(Date.parse(res.body.cancelledAt)).toBeGreaterThanOrEqual(before);
    expect(Date.parse(res.body.cancelledAt)).toBeLessThanOrEqual(after);

    // Reads show the cancelled state.
    expect((await client.get(`/orders/${placed.orderId}`, { token: buyer!.token })).body).toEqual({ ...res.body, refunds: [] });
    const list = await client.get(`/users/${buyer!.userId}/orders`, { token: buyer!.token });
    expect(list.body.items).toEqual([res.body]);

    // The payment comes back as one REFUND entry naming the order.
    expect((await client.get(`/users/${buyer!.userId}/balance`, { token: buyer!.token })).body).toEqual({ userId: buyer!.userId, balance: 50_000 });
    const history = await client.get(`/users/${buyer!.userId}/balance/history`, { token: buyer!.token });
    expect(history.body.items.map((e: any) => [e.type, e.amount, e.balanceAfter, e.orderId])).toEqual([
      ['REFUND', 21_000, 50_000, placed.orderId],
      ['PAYMENT', -21_000, 29_000, placed.orderId],
      ['CHARGE', 50_000, 50_000, null],
    ]);

    // Stock restored to the unit.
    expect(await stockOf(p1)).toBe(10);
    expect(await stockOf(p2)).toBe(5);

    // The coupon copy is usable again, with its own expiry untouched.
    const coupons = await client.get(`/users/${buyer!.userId}/coupons`, { token: buyer!.token });
    expect(coupons.body.items).toEqual([
      expect.objectContaining({ couponId, status: 'AVAILABLE', usedAt: null, orderId: null, expiresAt: copyBefore!.expires_at.toISOString() }),
    ]);

    // One order.cancelled event, after the order.paid, describing the cancellation.
    const events = await eventsOf(placed.orderId);
    expect(events.map((e) => e.event_type)).toEqual(['order.paid', 'order.cancelled']);
    expect(events[1]!.payload).toEqual({
      eventId: expect.any(String),
      type: 'order.cancelled',
      occurredAt: res.body.cancelledAt,
      data: {
        orderId: placed.orderId,
        userId: buyer!.userId,
        refundedAmount: 21_000,
        items: [
          { productId: p1, quantity: 2 },
          { productId: p2, quantity: 1 },
        ],
        couponId,
        cancelledAt: res.body.cancelledAt,
      },
    });

    // The given-back coupon pays for a new order.
    const again = await client.post('/orders', { userId: buyer!.userId, items: [{ productId: p1, quantity: 1 }], couponId }, { token: buyer!.token });
    expect(again.status, JSON.stringify(again.body)).toBe(201);
    expect(again.body).toMatchObject({ status: 'PAID', totalAmount: 10_000, discountAmount: 2_000, paidAmount: 8_000, couponId });
    expect(again.body.orderId).not.toBe(placed.orderId);
    expect((await client.get(`/users/${buyer!.userId}/coupons`, { token: buyer!.token })).body.items).toEqual([
      expect.objectContaining({ couponId, status: 'USED', orderId: again.body.orderId }),
    ]);
    expect(await balanceOf(buyer!.userId)).toBe(42_000);
    expect(await stockOf(p1)).toBe(9);
    await assertInvariants(tdb, initialStock);
  });

  test('a refund is not refused by the balance cap', async () => {
    const [buyer] = await users(1, 0);
    const p = await product(5_000, 10);
    // Arranged with SQL (as api.test.ts does for the cap): near the cap, ledger kept in step.
    await tdb.query('UPDATE users SET balance = 999999990000 WHERE id = $1', [buyer!.userId]);
    await tdb.query(
      `INSERT INTO balance_ledger (user_id, type, amount, balance_after, created_at) VALUES ($1, 'CHARGE', 999999990000, 999999990000, now())`,
      [buyer!.userId],
    );
    const placed = await order(buyer!, [[p, 1]]);
    // Back up to exactly the cap: a charge could go no further.
    const charged = await client.post(`/users/${buyer!.userId}/balance/charge`, { amount: 15_000 }, { token: buyer!.token });
    expect(charged.body).toEqual({ userId: buyer!.userId, balance: 1_000_000_000_000 });
    const res = await cancel(placed.orderId, { token: buyer!.token });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(await balanceOf(buyer!.userId)).toBe(1_000_000_005_000);
    await assertInvariants(tdb, initialStock);
  });

  test("a coupon that expired meanwhile comes back EXPIRED: a cancellation does not extend it", async () => {
    const [buyer] = await users(1, 10_000);
    const p = await product(1_000, 10);
    const couponId = await client.createCoupon({ discountType: 'FIXED', discountValue: 100 });
    await client.grant(couponId, buyer!.userId);
    const placed = await order(buyer!, [[p, 1]], { couponId });
    await tdb.query(`UPDATE user_coupons SET expires_at = now() - interval '1 minute' WHERE user_id = $1 AND coupon_id = $2`, [buyer!.userId, couponId]);
    expect((await cancel(placed.orderId, { token: buyer!.token })).status).toBe(200);
    expect((await client.get(`/users/${buyer!.userId}/coupons`, { token: buyer!.token })).body.items).toEqual([
      expect.objectContaining({ couponId, status: 'EXPIRED', usedAt: null, orderId: null }),
    ]);
    const reuse = await client.post('/orders', { userId: buyer!.userId, items: [{ productId: p, quantity: 1 }], couponId }, { token: buyer!.token });
    expectProblem(reuse, 400, 'INVALID_COUPON');
    await assertInvariants(tdb, initialStock);
  });
});

describe('who may cancel, and what', () => {
  test("an admin may cancel anyone's order; another user's token is 403 and changes nothing", async () => {
    const [owner, other] = await users(2, 10_000);
    const p = await product(1_500, 10);
    const placed = await order(owner!, [[p, 2]]);

    const before = await footprint(placed.orderId);
    const denied = await cancel(placed.orderId, { token: other!.token });
    expectProblem(denied, 403, 'FORBIDDEN');
    // With a key too: a refused request does not store it in anyone's keys.
    expectProblem(await cancel(placed.orderId, { token: other!.token, headers: { 'idempotency-key': 'not-yours' } }), 403, 'FORBIDDEN');
    expect(await footprint(placed.orderId)).toEqual(before);
    expect(await keysOf(other!.userId)).toEqual([]);

    const res = await cancel(placed.orderId); // the admin token
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body).toMatchObject({ orderId: placed.orderId, userId: owner!.userId, status: 'CANCELLED' });
    expect(await balanceOf(owner!.userId)).toBe(10_000);
    expect(await stockOf(p)).toBe(10);
    await assertInvariants(tdb, initialStock);
  });

  test('an id that names no order is 404 ORDER_NOT_FOUND, whatever its shape (never 400)', async () => {
    const [user] = await users(1, 0);
    for (const id of ['01234567-89ab-7def-8123-456789abcdef', 'not-a-uuid', '42', 'x'.repeat(300)]) {
      expectProblem(await cancel(id), 404, 'ORDER_NOT_FOUND');
      expectProblem(await cancel(id, { token: user!.token }), 404, 'ORDER_NOT_FOUND');
      // The same as GET /orders/{orderId} answers for it.
      expectProblem(await client.get(`/orders/${encodeURIComponent(id)}`), 404, 'ORDER_NOT_FOUND');
    }
    expect(await keysOf(user!.userId)).toEqual([]);
  });

  test('without a token: 401 and nothing changed', async () => {
    const [owner] = await users(1, 10_000);
    const placed = await order(owner!, [[await product(100, 10), 1]]);
    const before = await footprint(placed.orderId);
    expectProblem(await cancel(placed.orderId, { token: null }), 401, 'UNAUTHORIZED');
    expect(await footprint(placed.orderId)).toEqual(before);
  });

  test('cancelling twice: the second is 409 ORDER_NOT_CANCELLABLE and refunds nothing more', async () => {
    const [owner] = await users(1, 10_000);
    const p = await product(1_000, 10);
    const placed = await order(owner!, [[p, 3]]);
    const first = await cancel(placed.orderId, { token: owner!.token });
    expect(first.status).toBe(200);
    const before = await footprint(placed.orderId);
    expectProblem(await cancel(placed.orderId, { token: owner!.token }), 409, 'ORDER_NOT_CANCELLABLE');
    expectProblem(await cancel(placed.orderId), 409, 'ORDER_NOT_CANCELLABLE');
    // A new key is a new request, not a replay: refused the same way.
    expectProblem(await cancel(placed.orderId, { token: owner!.token, headers: { 'idempotency-key': 'late-retry' } }), 409, 'ORDER_NOT_CANCELLABLE');
    expect(await footprint(placed.orderId)).toEqual(before);
    expect(await balanceOf(owner!.userId)).toBe(10_000);
    expect(await stockOf(p)).toBe(10);
    await assertInvariants(tdb, initialStock);
  });

  test('the window: 8 days old is 409 and nothing changed; just inside 7 days is cancelled', async () => {
    const [owner] = await users(1, 10_000);
    const p = await product(1_000, 10);
    const old = await order(owner!, [[p, 1]]);
    const recent = await order(owner!, [[p, 2]]);
    await backdate(old.orderId, 8 * DAY);
    await backdate(recent.orderId, 7 * DAY - 5 * MINUTE);

    const before = await footprint(old.orderId);
    expectProblem(await cancel(old.orderId, { token: owner!.token }), 409, 'ORDER_NOT_CANCELLABLE');
    expectProblem(await cancel(old.orderId), 409, 'ORDER_NOT_CANCELLABLE'); // an admin neither
    expect(await footprint(old.orderId)).toEqual(before);

    const res = await cancel(recent.orderId, { token: owner!.token });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(await balanceOf(owner!.userId)).toBe(10_000 - 1_000);
    expect(await stockOf(p)).toBe(9);
    await assertInvariants(tdb, initialStock);
  });

  test('ORDER_CANCEL_DAYS=0 is honoured: an order placed a minute ago is no longer cancellable there', async () => {
    const [owner] = await users(1, 10_000);
    const p = await product(1_000, 10);
    const placed = await order(owner!, [[p, 1]]);
    // A minute back, so the outcome does not hang on the milliseconds between placing and cancelling.
    await backdate(placed.orderId, MINUTE);
    const strict = await startTestApp(tdb.url, { ORDER_CANCEL_DAYS: '0' });
    try {
      const before = await footprint(placed.orderId);
      const res = await strict.client.request('POST', `/orders/${placed.orderId}/cancel`, undefined, { token: owner!.token });
      expectProblem(res, 409, 'ORDER_NOT_CANCELLABLE');
      expect(await footprint(placed.orderId)).toEqual(before);
    } finally {
      await strict.close();
    }
    // The same order, through the service with the default window, is cancellable: the refusal above was the window's.
    expect((await cancel(placed.orderId, { token: owner!.token })).status).toBe(200);
    await assertInvariants(tdb, initialStock);
  });
});

describe('Idempotency-Key', () => {
  test('the same key replays the cancellation; refunded once; owner and admin share the owner\'s keys', async () => {
    const [owner] = await users(1, 10_000);
    const p = await product(2_500, 10);
    const placed = await order(owner!, [[p, 2]], { key: 'place-1' });
    const headers = { 'idempotency-key': 'cancel-1' };

    // The admin cancels with the key; it lives in the owner's keys.
    const first = await cancel(placed.orderId, { headers });
    expect(first.status, JSON.stringify(first.body)).toBe(200);
    expect(replayed(first)).toBe(false);
    expect(await keysOf(owner!.userId)).toEqual(['cancel-1', 'place-1']);

    const again = await cancel(placed.orderId, { headers });
    expect(again.status).toBe(200);
    expect(again.body).toEqual(first.body);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    // The owner sending the same key gets the same replay, not a 409.
    const byOwner = await cancel(placed.orderId, { token: owner!.token, headers });
    expect(byOwner.status).toBe(200);
    expect(byOwner.body).toEqual(first.body);
    expect(replayed(byOwner)).toBe(true);

    expect(await balanceOf(owner!.userId)).toBe(10_000);
    expect((await ledgerOf(owner!.userId)).filter((e) => e.type === 'REFUND')).toEqual([
      { type: 'REFUND', amount: 5_000, balance_after: 10_000, order_id: placed.orderId },
    ]);
    expect(await stockOf(p)).toBe(10);
    expect((await eventsOf(placed.orderId)).map((e) => e.event_type)).toEqual(['order.paid', 'order.cancelled']);

    // Replaying the placing request still answers its first response: PAID, no cancelledAt.
    const placing = await client.post('/orders', { userId: owner!.userId, items: [{ productId: p, quantity: 2 }] }, {
      token: owner!.token,
      headers: { 'idempotency-key': 'place-1' },
    });
    expect(placing.status).toBe(201);
    expect(placing.body).toEqual(placed);
    expect(replayed(placing)).toBe(true);
    expect(await balanceOf(owner!.userId)).toBe(10_000);
    expect(await stockOf(p)).toBe(10);
    await assertInvariants(tdb, initialStock);
  });

  test('the key of one cancellation used on another order is 422 IDEMPOTENCY_KEY_REUSED and changes nothing', async () => {
    const [owner] = await users(1, 10_000);
    const p = await product(1_000, 10);
    const a = await order(owner!, [[p, 1]]);
    const b = await order(owner!, [[p, 2]]);
    const headers = { 'idempotency-key': 'cancel-once' };
    expect((await cancel(a.orderId, { token: owner!.token, headers })).status).toBe(200);
    const before = await footprint(b.orderId);
    expectProblem(await cancel(b.orderId, { token: owner!.token, headers }), 422, 'IDEMPOTENCY_KEY_REUSED');
    expectProblem(await cancel(b.orderId, { headers }), 422, 'IDEMPOTENCY_KEY_REUSED'); // the admin too: the owner's keys
    expect(await footprint(b.orderId)).toEqual(before);
    expect(before.order).toEqual([expect.objectContaining({ status: 'PAID' })]);
    await assertInvariants(tdb, initialStock);
  });

  test('a refused cancellation does not use its key up', async () => {
    const [owner] = await users(1, 10_000);
    const p = await product(1_000, 10);
    const placed = await order(owner!, [[p, 1]]);
    await backdate(placed.orderId, 8 * DAY);
    const headers = { 'idempotency-key': 'too-late' };
    expectProblem(await cancel(placed.orderId, { token: owner!.token, headers }), 409, 'ORDER_NOT_CANCELLABLE');
    expect(await keysOf(owner!.userId)).toEqual([]);
    // Back inside the window, the same key cancels for real (not a replay of the refusal).
    await backdate(placed.orderId, -8 * DAY);
    const res = await cancel(placed.orderId, { token: owner!.token, headers });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(replayed(res)).toBe(false);
    await assertInvariants(tdb, initialStock);
  });
});

describe('concurrent cancels', () => {
  test('30 concurrent cancels of one order, owner and admin, keyed and not: written once, refunded once', async () => {
    const [owner] = await users(1, 100_000);
    const p = await product(3_000, 100);
    const q = await product(700, 100);
    const couponId = await client.createCoupon({ discountType: 'RATE', discountValue: 10 });
    await client.grant(couponId, owner!.userId);
    const placed = await order(owner!, [[p, 4], [q, 10]], { couponId }); // 19,000 - 1,900
    expect(placed.paidAmount).toBe(17_100);

    // 10 sharing one key, 10 without a key, 10 with a key each, interleaved (the shared key first,
    // so it often wins and its duplicates replay or find it in flight); every other one by the admin.
    const keyOf = (i: number) => (i % 3 === 0 ? 'shared' : i % 3 === 1 ? null : `own-${i}`);
    const replies = await Promise.all(
      Array.from({ length: 30 }, (_, i) => {
        const key = keyOf(i);
        return cancel(placed.orderId, {
          token: i % 2 === 0 ? owner!.token : undefined,
          headers: key === null ? {} : { 'idempotency-key': key },
        });
      }),
    );
    no5xx(replies);
    const ok = replies.map((r, i) => ({ r, i })).filter(({ r }) => r.status === 200);
    const winners = ok.filter(({ r }) => !replayed(r));
    expect(winners, JSON.stringify(outcomes(replies))).toHaveLength(1);
    const winner = winners[0]!;
    const winnerKey = keyOf(winner.i);
    expect(winner.r.body).toEqual(cancelledBody(placed));
    // A replay only for a request carrying the winner's key, with the winner's body.
    for (const { r, i } of ok) {
      expect(r.body).toEqual(winner.r.body);
      if (i !== winner.i) expect(keyOf(i)).toBe(winnerKey);
    }
    if (winnerKey === null || winnerKey.startsWith('own-')) expect(ok).toHaveLength(1);
    // Every other reply: not cancellable, or (only for a shared key) still in flight.
    replies.forEach((r, i) => {
      if (r.status === 200) return;
      expect(r.status).toBe(409);
      const allowed = keyOf(i) === 'shared' ? ['ORDER_NOT_CANCELLABLE', 'IDEMPOTENCY_KEY_IN_USE'] : ['ORDER_NOT_CANCELLABLE'];
      expect(allowed).toContain(r.body.code);
    });

    expect(await balanceOf(owner!.userId)).toBe(100_000);
    expect((await ledgerOf(owner!.userId)).map((e) => [e.type, e.amount, e.balance_after])).toEqual([
      ['CHARGE', 100_000, 100_000],
      ['PAYMENT', -17_100, 82_900],
      ['REFUND', 17_100, 100_000],
    ]);
    expect(await stockOf(p)).toBe(100);
    expect(await stockOf(q)).toBe(100);
    const [copy] = await tdb.query('SELECT used_at, order_id FROM user_coupons WHERE user_id = $1', [owner!.userId]);
    expect(copy).toEqual({ used_at: null, order_id: null });
    expect(
      await tdb.query(`SELECT count(*)::int AS n FROM outbox_events WHERE aggregate_id = $1 AND event_type = 'order.cancelled'`, [placed.orderId]),
    ).toEqual([{ n: 1 }]);
    // Only the written request's key is remembered; the refused ones left none behind.
    expect(await keysOf(owner!.userId)).toEqual(winnerKey === null ? [] : [winnerKey]);

    // Afterwards the shared key replays if it won, else it is a plain late cancel.
    const late = await cancel(placed.orderId, { token: owner!.token, headers: { 'idempotency-key': 'shared' } });
    if (winnerKey === 'shared') {
      expect(late.status).toBe(200);
      expect(late.body).toEqual(winner.r.body);
      expect(replayed(late)).toBe(true);
    } else {
      expectProblem(late, 409, 'ORDER_NOT_CANCELLABLE');
    }
    await assertInvariants(tdb, initialStock);
  });

  test('cancels racing new orders for a scarce product: stock ends exactly at initial minus units in PAID orders', async () => {
    const INITIAL = 50;
    const p = await product(1_000, INITIAL);
    // 8 earlier buyers with 5 orders of 1 unit each: 40 sold, 10 left.
    const earlier = await users(8, 5_000);
    const placed = await Promise.all(
      Array.from({ length: 40 }, (_, i) => order(earlier[i % 8]!, [[p, 1]])),
    );
    expect(await stockOf(p)).toBe(10);
    const cancelled = placed.filter((_, i) => i % 2 === 0); // 20 orders, over all 8 buyers
    const ownerOf = new Map(earlier.map((b) => [b.userId, b]));

    // 40 new buyers, each able to pay for exactly one unit, while the 20 cancels give units back.
    const newcomers = await users(40, 1_000);
    // All at once, awaited by kind; the cancels start with the second half of the orders, while the
    // 10 units left run out. Which order meets which shelf is timing: the assertions below hold
    // for every interleaving.
    const placing: Array<Promise<Reply>> = [];
    const cancelling: Array<Promise<Reply>> = [];
    for (let i = 0; i < 40; i++) {
      placing.push(client.post('/orders', { userId: newcomers[i]!.userId, items: [{ productId: p, quantity: 1 }] }, { token: newcomers[i]!.token }));
      if (i >= 20) {
        const o = cancelled[i - 20]!;
        cancelling.push(cancel(o.orderId, { token: ownerOf.get(o.userId)!.token }));
      }
    }
    const [orders, cancels] = await Promise.all([Promise.all(placing), Promise.all(cancelling)]);
    no5xx([...orders, ...cancels]);
    expect(outcomes(cancels)).toEqual({ '200': 20 });
    expect(cancels.filter(replayed)).toEqual([]);
    const counts = outcomes(orders);
    const paidNow = counts['201'] ?? 0;
    expect(paidNow + (counts['400 OUT_OF_STOCK'] ?? 0), JSON.stringify(counts)).toBe(40);
    // The 10 units left before the race were never given to anyone else; at most 10 + 20 exist.
    expect(paidNow).toBeGreaterThanOrEqual(10);
    expect(paidNow).toBeLessThanOrEqual(30);

    const [sold] = await tdb.query<{ units: number }>(
      `SELECT coalesce(sum(i.quantity), 0)::int AS units FROM order_items i JOIN orders o ON o.id = i.order_id
        WHERE i.product_id = $1 AND o.status = 'PAID'`,
      [p],
    );
    expect(sold!.units).toBe(20 + paidNow);
    expect(await stockOf(p)).toBe(INITIAL - sold!.units);

    // What is left is really there to sell, and no more: the buyers turned away try again, one by
    // one, and exactly the remaining stock of them succeed. In all, 30 of the 40 newcomers bought.
    const refused = newcomers.filter((_, i) => orders[i]!.status !== 201);
    const retries: Reply[] = [];
    for (const b of refused) {
      retries.push(await client.post('/orders', { userId: b.userId, items: [{ productId: p, quantity: 1 }] }, { token: b.token }));
    }
    expect(outcomes(retries)).toEqual({
      ...(30 - paidNow > 0 ? { '201': 30 - paidNow } : {}),
      '400 OUT_OF_STOCK': 10,
    });
    expect(await stockOf(p)).toBe(0);
    for (const b of newcomers) expect([0, 1_000]).toContain(await balanceOf(b.userId));
    const [spent] = await tdb.query<{ n: number }>('SELECT count(*)::int AS n FROM users WHERE id = ANY($1::bigint[]) AND balance = 0', [
      newcomers.map((b) => b.userId),
    ]);
    expect(spent!.n).toBe(30);
    // Each earlier buyer: 5 paid, the cancelled ones refunded.
    for (const b of earlier) {
      const mine = cancelled.filter((o) => o.userId === b.userId).length;
      expect(await balanceOf(b.userId)).toBe(5_000 - (5 - mine) * 1_000);
    }
    await assertInvariants(tdb, new Map([[p, INITIAL]]));
  });
});

describe('bad input on cancel', () => {
  /** A PAID order of 2 units at 1,000 by a user who had 10,000, and what it looks like in the database. */
  async function arranged() {
    const [owner] = await users(1, 10_000);
    const p = await product(1_000, 10);
    const placed = await order(owner!, [[p, 2]]);
    const before = await footprint(placed.orderId);
    expect(before.order).toEqual([expect.objectContaining({ status: 'PAID', cancelled_at: null })]);
    expect(before.balance).toBe(8_000);
    return { owner: owner!, p, placed, before, path: `/orders/${placed.orderId}/cancel`, opts: { token: owner!.token } };
  }

  test('a body with a field the endpoint does not take is 400 VALIDATION_ERROR and cancels nothing', async () => {
    const { p, placed, before, path, opts } = await arranged();
    // The contract says "No body", and every body of the API is strict: a field the endpoint does
    // not know is refused rather than ignored. Here it matters most: a client that believes in
    // partial cancellation ("cancel 1 of the 2 units") must not get the whole order cancelled.
    expectProblem(await client.post(path, { items: [{ productId: p, quantity: 1 }] }, opts), 400, 'VALIDATION_ERROR');
    expectProblem(await client.post(path, { reason: 'changed my mind' }, opts), 400, 'VALIDATION_ERROR');
    expect(await footprint(placed.orderId)).toEqual(before);
  });

  test('malformed JSON, a non-JSON body, a malformed Idempotency-Key: 4xx problem+json, nothing changed', async () => {
    const { placed, before, path, opts } = await arranged();
    expectProblem(await client.request('POST', path, undefined, { ...opts, rawBody: '{"reason":' }), 400, 'VALIDATION_ERROR');
    expectProblem(
      await client.request('POST', path, undefined, { ...opts, rawBody: 'cancel please', headers: { 'content-type': 'text/plain' } }),
      415,
      'UNSUPPORTED_MEDIA_TYPE',
    );
    // Longer than 255, a space, a tab, a non-ASCII character (sent as its Latin-1 byte).
    for (const key of ['x'.repeat(256), 'has space', 'tab\there', 'caf\u00e9']) {
      expectProblem(await cancel(placed.orderId, { ...opts, headers: { 'idempotency-key': key } }), 400, 'VALIDATION_ERROR');
    }
    expect(await footprint(placed.orderId)).toEqual(before);

    // And the order is still cancellable afterwards; a 255-character key is within the rules.
    const res = await cancel(placed.orderId, { ...opts, headers: { 'idempotency-key': 'k'.repeat(255) } });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    await assertInvariants(tdb, initialStock);
  });
});
