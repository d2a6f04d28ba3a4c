import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../../test/support/database.ts';
import { startTestApp, type Client, type TestApp } from '../../../test/support/http.ts';
import { assertInvariants } from '../../../test/support/invariants.ts';

let tdb: TestDatabase;
let app: TestApp;
let client: Client;

beforeAll(async () => {
  tdb = await createTestDatabase();
  app = await startTestApp(tdb.url);
  client = app.client;
});
afterAll(async () => {
  await app?.close();
  await tdb?.drop();
});

describe('POST /orders', () => {
  test('charges the RATE-discounted amount with floor and records prices of that moment', async () => {
    const { userId, token } = await client.createUser(100_000);
    const p1 = await client.createProduct(999, 10);
    const p2 = await client.createProduct(1_001, 10);
    const couponId = await client.createCoupon({ discountType: 'RATE', discountValue: 15, minOrderAmount: 3_000 });
    await client.grant(couponId, userId);

    const res = await client.post(
      '/orders',
      { userId, items: [{ productId: p2, quantity: 2 }, { productId: p1, quantity: 1 }], couponId },
      { token },
    );
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({
      userId,
      status: 'PAID',
      items: [
        { productId: p2, quantity: 2, unitPrice: 1_001, lineAmount: 2_002 },
        { productId: p1, quantity: 1, unitPrice: 999, lineAmount: 999 },
      ],
      totalAmount: 3_001,
      discountAmount: 450, // floor(3001 * 15 / 100) = floor(450.15)
      paidAmount: 2_551,
      couponId,
    });
    expect(typeof res.body.orderId).toBe('string');
    expect(new Date(res.body.createdAt).toISOString()).toBe(res.body.createdAt);

    // A later price change does not rewrite the order.
    expect((await client.patch(`/admin/products/${p1}`, { price: 5_000 })).status).toBe(200);
    const again = await client.get(`/orders/${res.body.orderId}`, { token });
    expect(again.status).toBe(200);
    expect(again.body).toEqual({ ...res.body, refunds: [] });

    expect((await client.get(`/users/${userId}/balance`, { token })).body).toEqual({ userId, balance: 100_000 - 2_551 });
    const coupons = await client.get(`/users/${userId}/coupons`, { token });
    expect(coupons.body.items).toMatchObject([{ couponId, status: 'USED', orderId: res.body.orderId }]);
    const [event] = await tdb.query<{ payload: any }>('SELECT payload FROM outbox_events WHERE aggregate_id = $1', [res.body.orderId]);
    expect(event!.payload).toEqual({
      eventId: expect.any(String),
      type: 'order.paid',
      occurredAt: res.body.createdAt,
      data: {
        orderId: res.body.orderId,
        userId,
        items: res.body.items.map(({ refundedQuantity: _, ...l }: { refundedQuantity: number }) => l),
        totalAmount: 3_001,
        discountAmount: 450,
        paidAmount: 2_551,
        couponId,
        createdAt: res.body.createdAt,
      },
    });
    await assertInvariants(tdb);
  });

  test('a coupon below its minimum order amount is INVALID_COUPON and changes nothing', async () => {
    const { userId, token } = await client.createUser(100_000);
    const p = await client.createProduct(1_000, 10);
    const couponId = await client.createCoupon({ discountType: 'FIXED', discountValue: 500, minOrderAmount: 2_001 });
    await client.grant(couponId, userId);
    const res = await client.post('/orders', { userId, items: [{ productId: p, quantity: 2 }], couponId }, { token });
    expect(res.status).toBe(400);
    expect(res.body.code).toBe('INVALID_COUPON');
    expect((await client.get(`/products/${p}`)).body.stock).toBe(10);
    expect((await client.get(`/users/${userId}/balance`, { token })).body.balance).toBe(100_000);
    expect((await client.get(`/users/${userId}/coupons`, { token })).body.items[0].status).toBe('AVAILABLE');
    expect((await client.get(`/users/${userId}/orders`, { token })).body.items).toEqual([]);
  });

  test('error precedence: an unknown product wins over a shortage, a shortage over a bad coupon', async () => {
    const { userId, token } = await client.createUser(10);
    const p = await client.createProduct(1_000, 1);
    const unknownCoupon = 987_654;
    let res = await client.post(
      '/orders',
      { userId, items: [{ productId: p, quantity: 5 }, { productId: 987_654, quantity: 1 }], couponId: unknownCoupon },
      { token },
    );
    expect([res.status, res.body.code]).toEqual([404, 'PRODUCT_NOT_FOUND']);
    res = await client.post('/orders', { userId, items: [{ productId: p, quantity: 5 }], couponId: unknownCoupon }, { token });
    expect([res.status, res.body.code]).toEqual([400, 'OUT_OF_STOCK']);
    res = await client.post('/orders', { userId, items: [{ productId: p, quantity: 1 }], couponId: unknownCoupon }, { token });
    expect([res.status, res.body.code]).toEqual([400, 'INVALID_COUPON']);
    res = await client.post('/orders', { userId, items: [{ productId: p, quantity: 1 }] }, { token });
    expect([res.status, res.body.code]).toEqual([400, 'INSUFFICIENT_BALANCE']);
    const nobody = await client.post('/orders', { userId: 987_654, items: [{ productId: p, quantity: 1 }] }, { token: await client.userToken(987_654) });
    expect([nobody.status, nobody.body.code]).toEqual([404, 'USER_NOT_FOUND']);
    // An order is the user's own act: an admin token is refused before the user is looked up.
    const admin = await client.post('/orders', { userId: 987_654, items: [{ productId: p, quantity: 1 }] });
    expect([admin.status, admin.body.code]).toEqual([403, 'FORBIDDEN']);
  });

  test('an Idempotency-Key replays the first response; a failed attempt does not use the key up', async () => {
    const { userId, token } = await client.createUser(1_000);
    const p = await client.createProduct(1_500, 10);
    const headers = { 'idempotency-key': 'retry-me' };
    const body = { userId, items: [{ productId: p, quantity: 1 }] };
    const failed = await client.post('/orders', body, { token, headers });
    expect(failed.body.code).toBe('INSUFFICIENT_BALANCE');
    await client.post(`/users/${userId}/balance/charge`, { amount: 1_000 }, { token });
    const first = await client.post('/orders', body, { token, headers });
    expect(first.status).toBe(201);
    const replay = await client.post('/orders', body, { token, headers });
    expect(replay.status).toBe(201);
    expect(replay.body).toEqual(first.body);
    expect(replay.headers.get('idempotent-replayed')).toBe('true');
    // The first answer's bytes and type, from memory (its kept body) as from the store (another instance's memory).
    const fromStore = await startTestApp(tdb.url);
    try {
      for (const again of [replay, await fromStore.client.post('/orders', body, { token, headers }), await client.post('/orders', body, { token, headers })]) {
        expect([again.status, again.text, again.headers.get('content-type')]).toEqual([201, first.text, 'application/json; charset=utf-8']);
        expect(again.headers.get('idempotent-replayed')).toBe('true');
      }
    } finally {
      await fromStore.close();
    }
    expect(first.headers.get('content-type')).toBe('application/json; charset=utf-8');
    expect(first.headers.get('idempotent-replayed')).toBeNull();
    // The bytes a route's schema serializer makes of the same order: the read of it, which adds its refunds at the end.
    const read = await client.get(`/orders/${first.body.orderId}`, { token });
    expect(read.text).toBe(`${first.text.slice(0, -1)},"refunds":[]}`);
    const other = await client.post('/orders', { ...body, items: [{ productId: p, quantity: 2 }] }, { token, headers });
    expect([other.status, other.body.code]).toEqual([422, 'IDEMPOTENCY_KEY_REUSED']);
    expect((await client.get(`/users/${userId}/balance`, { token })).body.balance).toBe(500);
    // Cancelled since: an instance that never saw the key reads it from the store and answers the first bytes still.
    expect((await client.request('POST', `/orders/${first.body.orderId}/cancel`, undefined, { token })).status).toBe(200);
    const afterCancel = await startTestApp(tdb.url);
    try {
      const again = await afterCancel.client.post('/orders', body, { token, headers });
      expect([again.status, again.text, again.headers.get('idempotent-replayed')]).toEqual([201, first.text, 'true']);
    } finally {
      await afterCancel.close();
    }
  });
});

describe('reads', () => {
  test("a user's orders and ledger page newest first through cursors", async () => {
    const { userId, token } = await client.createUser(50_000);
    const p = await client.createProduct(100, 100);
    const placed: string[] = [];
    for (let i = 1; i <= 5; i++) {
      const res = await client.post('/orders', { userId, items: [{ productId: p, quantity: i }] }, { token });
      placed.push(res.body.orderId);
    }
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const page: any = await client.get(`/users/${userId}/orders?limit=2${cursor ? `&cursor=${cursor}` : ''}`, { token });
      expect(page.status).toBe(200);
      seen.push(...page.body.items.map((o: { orderId: string }) => o.orderId));
      cursor = page.body.nextCursor;
    } while (cursor);
    expect(seen).toEqual([...placed].reverse());

    const history = await client.get(`/users/${userId}/balance/history?limit=3`, { token });
    expect(history.body.items.map((e: any) => [e.type, e.amount, e.balanceAfter])).toEqual([
      ['PAYMENT', -500, 48_500],
      ['PAYMENT', -400, 49_000],
      ['PAYMENT', -300, 49_400],
    ]);
    const rest = await client.get(`/users/${userId}/balance/history?limit=3&cursor=${history.body.nextCursor}`, { token });
    expect(rest.body.items.map((e: any) => [e.type, e.amount, e.balanceAfter])).toEqual([
      ['PAYMENT', -200, 49_700],
      ['PAYMENT', -100, 49_900],
      ['CHARGE', 50_000, 50_000],
    ]);
    expect(rest.body.nextCursor).toBeNull();
  });

  test("another user's order is 403; an admin may read it", async () => {
    const owner = await client.createUser(10_000);
    const other = await client.createUser(0);
    const p = await client.createProduct(100, 10);
    const order = await client.post('/orders', { userId: owner.userId, items: [{ productId: p, quantity: 1 }] }, { token: owner.token });
    const denied = await client.get(`/orders/${order.body.orderId}`, { token: other.token });
    expect([denied.status, denied.body.code]).toEqual([403, 'FORBIDDEN']);
    expect((await client.get(`/orders/${order.body.orderId}`)).status).toBe(200);
    const missing = await client.get('/orders/01234567-89ab-7def-8123-456789abcdef');
    expect([missing.status, missing.body.code]).toEqual([404, 'ORDER_NOT_FOUND']);
  });

  test('balance charge stops at the limit with BALANCE_LIMIT_EXCEEDED', async () => {
    const { userId, token } = await client.createUser(0);
    await tdb.query('UPDATE users SET balance = 999999995000 WHERE id = $1', [userId]);
    await tdb.query(
      `INSERT INTO balance_ledger (user_id, type, amount, balance_after, created_at) VALUES ($1, 'CHARGE', 999999995000, 999999995000, now())`,
      [userId],
    );
    const over = await client.post(`/users/${userId}/balance/charge`, { amount: 5_001 }, { token });
    expect([over.status, over.body.code]).toEqual([400, 'BALANCE_LIMIT_EXCEEDED']);
    const exact = await client.post(`/users/${userId}/balance/charge`, { amount: 5_000 }, { token });
    expect(exact.body).toEqual({ userId, balance: 1_000_000_000_000 });
  });
});

describe('administration', () => {
  test('creates users, products and coupons; grants once per user and never past totalQuantity', async () => {
    const user = await client.post('/admin/users', { name: '홍길동' });
    expect(user.status).toBe(201);
    expect(user.body).toEqual({ userId: expect.any(Number), name: '홍길동', balance: 0 });
    const product = await client.post('/admin/products', { name: '상품', price: 1_000, stock: 3 });
    expect(product.body).toEqual({ productId: expect.any(Number), name: '상품', price: 1_000, stock: 3 });
    const patched = await client.patch(`/admin/products/${product.body.productId}`, { stock: 7 });
    expect(patched.body).toEqual({ ...product.body, stock: 7 });
    const coupon = await client.post('/admin/coupons', {
      name: '쿠폰',
      discountType: 'FIXED',
      discountValue: 1_000,
      totalQuantity: 1,
      issueStartsAt: '2026-01-01T00:00:00Z',
      issueEndsAt: '2026-01-02T00:00:00Z',
    });
    expect(coupon.status).toBe(201);
    expect(coupon.body).toEqual({
      couponId: expect.any(Number),
      name: '쿠폰',
      discountType: 'FIXED',
      discountValue: 1_000,
      totalQuantity: 1,
      issuedQuantity: 0,
      minOrderAmount: 0,
      issueStartsAt: '2026-01-01T00:00:00.000Z',
      issueEndsAt: '2026-01-02T00:00:00.000Z',
      validDays: 30,
    });
    const couponId = coupon.body.couponId;
    const granted = await client.post(`/admin/coupons/${couponId}/grant`, { userId: user.body.userId });
    expect(granted.status).toBe(201);
    expect(granted.body).toMatchObject({ couponId, userId: user.body.userId, status: 'AVAILABLE', usedAt: null, orderId: null });
    expect(Date.parse(granted.body.expiresAt) - Date.parse(granted.body.issuedAt)).toBe(30 * 86_400_000);
    const twice = await client.post(`/admin/coupons/${couponId}/grant`, { userId: user.body.userId });
    expect([twice.status, twice.body.code]).toEqual([409, 'COUPON_ALREADY_ISSUED']);
    const other = await client.createUser(0);
    const exhausted = await client.post(`/admin/coupons/${couponId}/grant`, { userId: other.userId });
    expect([exhausted.status, exhausted.body.code]).toEqual([409, 'COUPON_EXHAUSTED']);
    await assertInvariants(tdb);
  });
});

describe('operations', () => {
  test('health, OpenAPI 3.1 from the same schemas, and the docs page', async () => {
    expect((await client.get('/health/live', { token: null })).status).toBe(200);
    expect((await client.get('/health/ready', { token: null })).body).toEqual({ status: 'ok', delivery: 'ok' });
    const spec = await client.get('/openapi.json', { token: null });
    expect(spec.body.openapi).toBe('3.1.0');
    for (const path of ['/orders', '/orders/{orderId}', '/users/{userId}/balance/charge', '/admin/coupons/{couponId}/grant']) {
      expect(Object.keys(spec.body.paths)).toContain(path);
    }
    // Listed the way a client developer reads the API: the order endpoints first.
    expect(spec.body.tags.map((t: { name: string }) => t.name)).toEqual(['orders', 'balance', 'products', 'coupons', 'admin', 'operations']);
    expect(Object.keys(spec.body.paths).slice(0, 5)).toEqual([
      '/orders',
      '/orders/{orderId}',
      '/orders/{orderId}/cancel',
      '/orders/{orderId}/refunds',
      '/users/{userId}/orders',
    ]);
    expect(Object.keys(spec.body.paths['/orders/{orderId}/cancel'])).toEqual(['post']);
    // An orderId is opaque: documented as a string, not a uuid.
    expect(spec.body.paths['/orders/{orderId}'].get.parameters).toEqual([
      expect.objectContaining({ in: 'path', name: 'orderId', required: true, schema: { type: 'string' } }),
    ]);
    const orderBody = spec.body.paths['/orders'].post.requestBody.content['application/json'].schema;
    expect(orderBody.properties.items.maxItems).toBe(100);
    expect(orderBody.additionalProperties).toBe(false);
    const docs = await fetch(`${client.baseUrl}/docs/`);
    expect(docs.status).toBe(200);
    expect(await docs.text()).toContain('swagger');
  });

  test('every response carries a request id', async () => {
    const res = await client.get('/products', { token: null, headers: { 'x-request-id': 'trace-me' } });
    expect(res.headers.get('x-request-id')).toBe('trace-me');
  });
});
