import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../../test/support/database.ts';
import { eventually } from '../../../test/support/eventually.ts';
import { fingerprint } from '../../../test/support/fingerprint.ts';
import { startTestApp, type Client, type Reply, type TestApp } from '../../../test/support/http.ts';
import { assertInvariants, outcomes } from '../../../test/support/invariants.ts';

/**
 * POST /orders/{orderId}/refunds (contract v1.2 "Refund part of an order") over real sockets
 * against the real database. What the service answers is checked through the API; what it wrote
 * (balance, ledger, stock, coupon copy, events, keys, best sellers) with plain SQL or other routes.
 * The amount rule is checked against its statement here, with BigInt, not against the domain's code.
 */
let tdb: TestDatabase;
let app: TestApp;
let client: Client;
const initialStock = new Map<number, number>();

beforeAll(async () => {
  tdb = await createTestDatabase();
  // The relay and the rollup off: a refused request must leave the whole database as it was (fingerprint).
  app = await startTestApp(tdb.url, { OUTBOX_RELAY: 'off', TOP_SELLERS_REFRESH_MS: '3600000' });
  client = app.client;
});
afterAll(async () => {
  await app?.close();
  await tdb?.drop();
});

type Buyer = { userId: number; token: string };

async function product(price: number, stock = 1_000): Promise<number> {
  const id = await client.createProduct(price, stock);
  initialStock.set(id, stock);
  return id;
}

async function order(buyer: Buyer, items: Array<[number, number]>, couponId?: number) {
  const res = await client.post(
    '/orders',
    { userId: buyer.userId, items: items.map(([productId, quantity]) => ({ productId, quantity })), ...(couponId ? { couponId } : {}) },
    { token: buyer.token },
  );
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body;
}

const refund = (orderId: string, items: Array<[number, number]>, token: string | null, key?: string): Promise<Reply> =>
  client.post(
    `/orders/${orderId}/refunds`,
    { items: items.map(([productId, quantity]) => ({ productId, quantity })) },
    { token, headers: key === undefined ? {} : { 'idempotency-key': key } },
  );

const balanceOf = async (userId: number) => (await tdb.query<{ b: number }>('SELECT balance::int AS b FROM users WHERE id = $1', [userId]))[0]!.b;
const stockOf = async (productId: number) => (await tdb.query<{ s: number }>('SELECT stock::int AS s FROM products WHERE id = $1', [productId]))[0]!.s;
const eventsOf = (orderId: string) =>
  tdb.query<{ event_type: string; payload: any }>('SELECT event_type, payload FROM outbox_events WHERE aggregate_id = $1 ORDER BY seq', [orderId]);

/** The contract's amount rule, stated independently: floor(paidAmount × G / totalAmount). */
const ruleAmount = (paid: number, gross: number, total: number) => (total === 0 ? 0 : Number((BigInt(paid) * BigInt(gross)) / BigInt(total)));

function expectProblem(res: Reply, status: number, code: string) {
  expect([res.status, res.body?.code], JSON.stringify(res.body)).toEqual([status, code]);
  expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
}

describe('refunding part of an order', () => {
  test('a unit at a time: amounts by the rule, stock and balance back, PARTIALLY_REFUNDED, then CANCELLED with the coupon free', async () => {
    const [p1, p2] = [await product(3_333), await product(1_001)];
    const buyer = await client.createUser(100_000);
    const couponId = await client.createCoupon({ discountType: 'RATE', discountValue: 15 });
    await client.grant(couponId, buyer.userId);
    const placed = await order(buyer, [[p1, 2], [p2, 3]], couponId);
    expect(placed).toMatchObject({ totalAmount: 9_669, discountAmount: 1_450, paidAmount: 8_219, refundedAmount: 0 });
    expect(placed.items.map((i: any) => i.refundedQuantity)).toEqual([0, 0]);

    const first = await refund(placed.orderId, [[p2, 1]], buyer.token);
    expect(first.status, JSON.stringify(first.body)).toBe(201);
    const amount1 = ruleAmount(8_219, 1_001, 9_669);
    expect(first.body).toEqual({
      refundId: expect.stringMatching(/^[0-9a-f-]{36}$/),
      orderId: placed.orderId,
      items: [{ productId: p2, quantity: 1 }],
      amount: amount1,
      createdAt: expect.any(String),
      order: {
        ...placed,
        status: 'PARTIALLY_REFUNDED',
        refundedAmount: amount1,
        items: [placed.items[0], { ...placed.items[1], refundedQuantity: 1 }],
      },
    });
    expect(await balanceOf(buyer.userId)).toBe(100_000 - 8_219 + amount1);
    expect(await stockOf(p2)).toBe(1_000 - 3 + 1);

    const second = await refund(placed.orderId, [[p1, 1], [p2, 1]], buyer.token);
    const amount2 = ruleAmount(8_219, 1_001 * 2 + 3_333, 9_669) - amount1;
    expect([second.status, second.body.amount, second.body.order.status]).toEqual([201, amount2, 'PARTIALLY_REFUNDED']);
    const coupons = async () => (await client.get(`/users/${buyer.userId}/coupons`, { token: buyer.token })).body.items;
    expect(await coupons()).toMatchObject([{ couponId, status: 'USED', orderId: placed.orderId }]);

    const last = await refund(placed.orderId, [[p2, 1], [p1, 1]], buyer.token);
    expect(last.status, JSON.stringify(last.body)).toBe(201);
    expect(last.body.amount).toBe(8_219 - amount1 - amount2);
    expect(last.body.order).toMatchObject({ status: 'CANCELLED', refundedAmount: 8_219, cancelledAt: last.body.createdAt });
    expect(await balanceOf(buyer.userId)).toBe(100_000);
    expect([await stockOf(p1), await stockOf(p2)]).toEqual([1_000, 1_000]);
    expect(await coupons()).toMatchObject([{ couponId, status: 'AVAILABLE', usedAt: null, orderId: null }]);

    // GET lists the refunds oldest first, each as its 201 without the order.
    const read = await client.get(`/orders/${placed.orderId}`, { token: buyer.token });
    expect(read.body).toEqual({ ...last.body.order, refunds: [first, second, last].map(({ body: { order: _, ...r } }) => r) });
    const ledger = await tdb.query<{ type: string; amount: number }>(
      `SELECT type, amount::int FROM balance_ledger WHERE order_id = $1 ORDER BY id`,
      [placed.orderId],
    );
    expect(ledger).toEqual([
      { type: 'PAYMENT', amount: -8_219 },
      { type: 'REFUND', amount: amount1 },
      { type: 'REFUND', amount: amount2 },
      { type: 'REFUND', amount: 8_219 - amount1 - amount2 },
    ]);
    const events = await eventsOf(placed.orderId);
    expect(events.map((e) => e.event_type)).toEqual(['order.paid', 'order.refunded', 'order.refunded', 'order.refunded']);
    expect(events[1]!.payload).toEqual({
      eventId: expect.any(String),
      type: 'order.refunded',
      occurredAt: first.body.createdAt,
      data: {
        orderId: placed.orderId,
        userId: buyer.userId,
        refundId: first.body.refundId,
        refundedAmount: amount1,
        items: [{ productId: p2, quantity: 1 }],
        refundedAt: first.body.createdAt,
      },
    });
    // The given-back coupon pays again.
    await order(buyer, [[p1, 1]], couponId);
    await assertInvariants(tdb, initialStock);
  });

  test('a cancel after partial refunds gives back the rest only, in one order.cancelled of the rest', async () => {
    const [p1, p2] = [await product(2_500), await product(700)];
    const buyer = await client.createUser(50_000);
    const couponId = await client.createCoupon({ discountType: 'FIXED', discountValue: 1_000 });
    await client.grant(couponId, buyer.userId);
    const placed = await order(buyer, [[p1, 1], [p2, 4]], couponId);
    const partial = await refund(placed.orderId, [[p2, 3]], buyer.token);
    expect(partial.status).toBe(201);
    const cancelled = await client.request('POST', `/orders/${placed.orderId}/cancel`, undefined, { token: buyer.token });
    expect(cancelled.status, JSON.stringify(cancelled.body)).toBe(200);
    expect(cancelled.body).toMatchObject({ status: 'CANCELLED', refundedAmount: placed.paidAmount });
    expect(cancelled.body.items.map((i: any) => i.refundedQuantity)).toEqual([1, 4]);
    expect(await balanceOf(buyer.userId)).toBe(50_000);
    expect([await stockOf(p1), await stockOf(p2)]).toEqual([1_000, 1_000]);
    const events = await eventsOf(placed.orderId);
    expect(events.map((e) => e.event_type)).toEqual(['order.paid', 'order.refunded', 'order.cancelled']);
    expect(events[2]!.payload.data).toMatchObject({
      refundedAmount: placed.paidAmount - partial.body.amount,
      items: [{ productId: p1, quantity: 1 }, { productId: p2, quantity: 1 }],
      couponId,
    });
    expectProblem(await refund(placed.orderId, [[p1, 1]], buyer.token), 409, 'ORDER_NOT_CANCELLABLE');
    await assertInvariants(tdb, initialStock);
  });

  test('every refusal in the contract order, each changing nothing', async () => {
    const [p1, p2, elsewhere] = [await product(1_000), await product(2_000), await product(3_000)];
    const [buyer, other] = [await client.createUser(20_000), await client.createUser(0)];
    const placed = await order(buyer, [[p1, 2], [p2, 1]]);
    const refused = async (status: number, code: string, send: () => Promise<Reply>) => {
      const before = await fingerprint(tdb);
      expectProblem(await send(), status, code);
      expect(await fingerprint(tdb)).toEqual(before);
    };
    const raw = (body: unknown, orderId = placed.orderId, token: string | null = buyer.token) =>
      client.post(`/orders/${orderId}/refunds`, body, { token });

    for (const body of [
      {},
      { items: [] },
      { items: [{ productId: p1, quantity: 0 }] },
      { items: [{ productId: p1, quantity: 1.5 }] },
      { items: [{ productId: p1, quantity: 1 }, { productId: p1, quantity: 1 }] },
      { items: [{ productId: p1, quantity: 1 }], extra: true },
      { items: Array.from({ length: 101 }, (_, i) => ({ productId: i + 1, quantity: 1 })) },
    ]) {
      // Malformed comes first, even for an order that does not exist or is not theirs.
      await refused(400, 'VALIDATION_ERROR', () => raw(body));
      await refused(400, 'VALIDATION_ERROR', () => raw(body, 'no-such-order', other.token));
    }
    await refused(401, 'UNAUTHORIZED', () => refund(placed.orderId, [[p1, 1]], null));
    await refused(404, 'ORDER_NOT_FOUND', () => refund('no-such-order', [[p1, 1]], buyer.token));
    await refused(404, 'ORDER_NOT_FOUND', () => refund(placed.orderId.toUpperCase(), [[p1, 1]], buyer.token));
    await refused(403, 'FORBIDDEN', () => refund(placed.orderId, [[p1, 1]], other.token));
    await refused(403, 'FORBIDDEN', () => refund(placed.orderId, [[elsewhere, 9]], other.token));
    await refused(400, 'REFUND_EXCEEDS_ORDER', () => refund(placed.orderId, [[elsewhere, 1]], buyer.token));
    await refused(400, 'REFUND_EXCEEDS_ORDER', () => refund(placed.orderId, [[p1, 3]], buyer.token));
    await refused(400, 'REFUND_EXCEEDS_ORDER', () => refund(placed.orderId, [[p1, 1], [p2, 2]], buyer.token));
    // An admin may refund anyone's order; a partly refunded order still refuses more than it has left.
    expect((await refund(placed.orderId, [[p1, 1]], client.adminToken)).status).toBe(201);
    await refused(400, 'REFUND_EXCEEDS_ORDER', () => refund(placed.orderId, [[p1, 2]], buyer.token));
    await assertInvariants(tdb, initialStock);
  });

  test('older than ORDER_CANCEL_DAYS: 409 ORDER_NOT_CANCELLABLE, nothing changed', async () => {
    const p = await product(1_000);
    const buyer = await client.createUser(10_000);
    const placed = await order(buyer, [[p, 1]]);
    await tdb.query(`UPDATE orders SET created_at = now() - interval '8 days' WHERE id = $1`, [placed.orderId]);
    const before = await fingerprint(tdb);
    expectProblem(await refund(placed.orderId, [[p, 1]], buyer.token), 409, 'ORDER_NOT_CANCELLABLE');
    expect(await fingerprint(tdb)).toEqual(before);
  });
});

describe('Idempotency-Key on refunds', () => {
  test('a repeat replays the first answer even after a later refund; another body is 422; a refusal leaves the key free', async () => {
    const p = await product(1_000);
    const buyer = await client.createUser(10_000);
    const placed = await order(buyer, [[p, 5]]);
    const first = await refund(placed.orderId, [[p, 1]], buyer.token, 'r-1');
    expect(first.status).toBe(201);
    expect((await refund(placed.orderId, [[p, 2]], buyer.token, 'r-2')).status).toBe(201);
    const replay = await refund(placed.orderId, [[p, 1]], buyer.token, 'r-1');
    expect([replay.status, replay.headers.get('idempotent-replayed')]).toEqual([201, 'true']);
    expect(replay.body).toEqual(first.body);
    // An admin's repeat with the owner's key is the same request in the owner's keys.
    expect((await refund(placed.orderId, [[p, 1]], client.adminToken, 'r-1')).body).toEqual(first.body);
    expectProblem(await refund(placed.orderId, [[p, 2]], buyer.token, 'r-1'), 422, 'IDEMPOTENCY_KEY_REUSED');

    expectProblem(await refund(placed.orderId, [[p, 9]], buyer.token, 'r-3'), 400, 'REFUND_EXCEEDS_ORDER');
    const retried = await refund(placed.orderId, [[p, 2]], buyer.token, 'r-3');
    expect([retried.status, retried.body.order.status]).toEqual([201, 'CANCELLED']);
    expect((await tdb.query(`SELECT count(*)::int AS n FROM refunds WHERE order_id = $1`, [placed.orderId]))[0]).toEqual({ n: 3 });
    await assertInvariants(tdb, initialStock);
  });
});

describe('concurrent refunds and cancels of one order', () => {
  // Eight changes of one order at once: each decision that loses its race is decided again, up to
  // MAX_DECISIONS (8) times, so eight contenders always finish without a 503.
  test('8 one-unit refunds racing for 6 units, owner and admin, keyed and not: exactly 6 written, no unit twice', async () => {
    const [p1, p2] = [await product(1_100), await product(2_900)];
    const buyer = await client.createUser(200_000);
    const couponId = await client.createCoupon({ discountType: 'RATE', discountValue: 7 });
    await client.grant(couponId, buyer.userId);
    const placed = await order(buyer, [[p1, 4], [p2, 3]], couponId);
    const replies = await Promise.all(
      Array.from({ length: 8 }, (_, i) =>
        refund(placed.orderId, [[i % 4 === 3 ? p2 : p1, 1]], i % 3 ? buyer.token : client.adminToken, i % 2 ? undefined : `cr-${i}`),
      ),
    );
    const written = replies.filter((r) => r.status === 201);
    // Six ask for one of p1's 4 units, two for one of p2's 3: 4 + 2 written, 2 refused; one unit of
    // p2 is never asked for, so the order stays open and the refusals are about units, not the order.
    expect(outcomes(replies)).toEqual({ '201': 6, '400 REFUND_EXCEEDS_ORDER': 2 });
    expect(new Set(written.map((r) => r.body.refundId)).size).toBe(6);
    const last = await client.get(`/orders/${placed.orderId}`, { token: buyer.token });
    const refunded = written.reduce((sum, r) => sum + r.body.amount, 0);
    expect(last.body).toMatchObject({ status: 'PARTIALLY_REFUNDED', refundedAmount: refunded });
    expect(refunded).toBe(ruleAmount(placed.paidAmount, 4 * 1_100 + 2 * 2_900, placed.totalAmount));
    expect(last.body.items.map((i: any) => i.refundedQuantity)).toEqual([4, 2]);
    expect(last.body.refunds).toHaveLength(6);
    expect(await balanceOf(buyer.userId)).toBe(200_000 - placed.paidAmount + refunded);
    await assertInvariants(tdb, initialStock);
  });

  test('6 orders, each with 5 refunds and 3 cancels at once: each order refunded exactly, balance and stock exact', async () => {
    const [p1, p2] = [await product(1_300), await product(700)];
    const stockBefore = [await stockOf(p1), await stockOf(p2)];
    const buyers = await Promise.all(Array.from({ length: 6 }, () => client.createUser(100_000)));
    const placed = await Promise.all(buyers.map((b) => order(b, [[p1, 5], [p2, 5]])));
    // Each order's cancels are sent as its first refund is answered, into its other refunds in flight.
    const perOrder = await Promise.all(
      placed.map(async (o, n) => {
        const refunds = Array.from({ length: 5 }, (_, i) => refund(o.orderId, [[i % 2 ? p1 : p2, 1 + (i % 2)]], buyers[n]!.token, i ? undefined : `cc-${n}`));
        await Promise.race(refunds);
        const cancels = Array.from({ length: 3 }, (_, i) =>
          client.request('POST', `/orders/${o.orderId}/cancel`, undefined, { token: i ? buyers[n]!.token : client.adminToken }),
        );
        return Promise.all([...refunds, ...cancels]);
      }),
    );
    const replies = perOrder.flat();
    expect(replies.filter((r) => r.status >= 500), JSON.stringify(outcomes(replies))).toEqual([]);
    const codes = new Set(replies.filter((r) => r.status >= 400).map((r) => r.body.code));
    expect([...codes].filter((c) => c !== 'ORDER_NOT_CANCELLABLE'), JSON.stringify(outcomes(replies))).toEqual([]);
    for (const [n, o] of placed.entries()) {
      const mine = replies.slice(n * 8, n * 8 + 8);
      expect(mine.filter((r) => r.status === 200), `order ${n}: cancels written`).toHaveLength(1);
      expect(mine.filter((r) => r.status === 201).length, `order ${n}: refunds written`).toBeGreaterThan(0);
      const read = (await client.get(`/orders/${o.orderId}`, { token: buyers[n]!.token })).body;
      expect(read.refunds.map((r: any) => r.refundId).sort()).toEqual(mine.filter((r) => r.status === 201).map((r) => r.body.refundId).sort());
      expect(read).toMatchObject({ status: 'CANCELLED', refundedAmount: o.paidAmount });
      expect(await balanceOf(buyers[n]!.userId)).toBe(100_000);
    }
    expect([await stockOf(p1), await stockOf(p2)]).toEqual(stockBefore);
    await assertInvariants(tdb, initialStock);
  });
});

describe('the amount rule, by property, on the real database', () => {
  test('random orders and coupons refunded in random steps: each amount ≥ 0 and ≤ its units\' gross, all adding up to paidAmount', async () => {
    const products = await Promise.all([997, 1_003, 4_999, 0, 12_345].map((price) => product(price, 1_000_000)));
    const lineArb = fc.uniqueArray(fc.record({ product: fc.nat({ max: products.length - 1 }), quantity: fc.integer({ min: 1, max: 4 }) }), {
      minLength: 1,
      maxLength: 4,
      selector: (l) => l.product,
    });
    const couponArb = fc.option(fc.oneof(
      fc.record({ discountType: fc.constant('RATE'), discountValue: fc.integer({ min: 1, max: 100 }) }),
      fc.record({ discountType: fc.constant('FIXED'), discountValue: fc.integer({ min: 1, max: 30_000 }) }),
    ));
    await fc.assert(
      fc.asyncProperty(lineArb, couponArb, fc.infiniteStream(fc.nat()), async (lines, coupon, draws) => {
        const buyer = await client.createUser(1_000_000);
        let couponId: number | undefined;
        if (coupon) {
          couponId = await client.createCoupon(coupon);
          await client.grant(couponId, buyer.userId);
        }
        const placed = await order(buyer, lines.map((l) => [products[l.product]!, l.quantity]), couponId);
        const left = new Map<number, number>(placed.items.map((i: any) => [i.productId, i.quantity]));
        const price = new Map<number, number>(placed.items.map((i: any) => [i.productId, i.unitPrice]));
        const draw = draws[Symbol.iterator]();
        let [sum, gross] = [0, 0];
        while ([...left.values()].some((q) => q > 0)) {
          const open = [...left.entries()].filter(([, q]) => q > 0);
          const picked = open.filter(() => draw.next().value % 2 === 0);
          const step = (picked.length > 0 ? picked : [open[0]!]).map(([id, q]) => [id, 1 + (draw.next().value % q)] as [number, number]);
          const r = await refund(placed.orderId, step, buyer.token);
          expect(r.status, JSON.stringify(r.body)).toBe(201);
          const stepGross = step.reduce((s, [id, q]) => s + price.get(id)! * q, 0);
          gross += stepGross;
          expect(r.body.amount).toBeGreaterThanOrEqual(0);
          expect(r.body.amount).toBeLessThanOrEqual(stepGross);
          expect(r.body.order.refundedAmount).toBe(ruleAmount(placed.paidAmount, gross, placed.totalAmount));
          sum += r.body.amount;
          for (const [id, q] of step) left.set(id, left.get(id)! - q);
        }
        expect(sum).toBe(placed.paidAmount);
        expect(await balanceOf(buyer.userId)).toBe(1_000_000);
        if (couponId) {
          const held = (await client.get(`/users/${buyer.userId}/coupons`, { token: buyer.token })).body.items;
          expect(held).toMatchObject([{ couponId, status: 'AVAILABLE' }]);
        }
      }),
      { numRuns: 25 },
    );
    await assertInvariants(tdb, initialStock);
  });
});

describe('best sellers', () => {
  test('count units sold minus units refunded', async () => {
    // Its own service folding sales often, on the same database.
    const folding = await startTestApp(tdb.url, { OUTBOX_RELAY: 'off', TOP_SELLERS_REFRESH_MS: '50', TOP_SELLERS_CACHE_MS: '0' });
    const [a, b] = [await product(10), await product(10)];
    const buyer = await client.createUser(1_000);
    const placed = await order(buyer, [[a, 5], [b, 3]]);
    const top = async () => {
      const res = await folding.client.get('/products/top?days=1&limit=100');
      return new Map<number, number>(res.body.items.map((i: any) => [i.productId, i.soldQuantity]));
    };
    await eventually(async () => (await top()).get(a) === 5 && (await top()).get(b) === 3, 'both products counted as sold');
    expect((await refund(placed.orderId, [[a, 4]], buyer.token)).status).toBe(201);
    await eventually(async () => (await top()).get(a) === 1 && (await top()).get(b) === 3, 'the refunded units taken off', 10_000);
    expect((await client.request('POST', `/orders/${placed.orderId}/cancel`, undefined, { token: buyer.token })).status).toBe(200);
    await eventually(async () => !(await top()).has(a) && !(await top()).has(b), 'a cancelled order sells nothing', 10_000);
    await folding.close();
  });
});
