import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../../test/support/database.ts';
import { startTestApp, type Client, type TestApp } from '../../../test/support/http.ts';

/**
 * Catalog reads a cache may hold (contract v1.2, Products): Cache-Control with a short max-age and
 * stale-while-revalidate, an ETag, and 304 for a matching If-None-Match; an order is still decided
 * on the current stock, and a user's own data is never marked for a shared cache.
 */
let tdb: TestDatabase;
let app: TestApp;
let client: Client;
let productId: number;

beforeAll(async () => {
  tdb = await createTestDatabase();
  app = await startTestApp(tdb.url, { TOP_SELLERS_REFRESH_MS: '50' });
  client = app.client;
  productId = await client.createProduct(1_000, 10);
});
afterAll(async () => {
  await app?.close();
  await tdb?.drop();
});

describe('catalog reads', () => {
  test.each(['/products', '/products/:id', '/products/top'])('%s carries Cache-Control and an ETag, and answers a matching If-None-Match with 304 and no body', async (route) => {
    const path = route.replace(':id', String(productId));
    const first = await client.get(path, { token: null });
    expect(first.status).toBe(200);
    expect(first.headers.get('cache-control')).toMatch(/^public, max-age=\d+, stale-while-revalidate=\d+$/);
    const etag = first.headers.get('etag')!;
    expect(etag).toMatch(/^"[A-Za-z0-9_-]+"$/);

    for (const inm of [etag, `W/${etag}`, `"other", ${etag}`, '*']) {
      const again = await fetch(app.service.url + path, { headers: { 'if-none-match': inm } });
      expect(again.status, inm).toBe(304);
      expect(await again.text()).toBe('');
      expect(again.headers.get('etag')).toBe(etag);
      expect(again.headers.get('cache-control')).toBe(first.headers.get('cache-control'));
    }
    const other = await fetch(app.service.url + path, { headers: { 'if-none-match': '"not-it"' } });
    expect(other.status).toBe(200);
    expect(await other.json()).toEqual(first.body);
  });

  test('a new ETag once the answer changes: an order taking stock is seen by the next revalidation', async () => {
    const before = await client.get(`/products/${productId}`, { token: null });
    const buyer = await client.createUser(10_000);
    const order = await client.post('/orders', { userId: buyer.userId, items: [{ productId, quantity: 2 }] }, { token: buyer.token });
    expect(order.status).toBe(201);
    const after = await fetch(`${app.service.url}/products/${productId}`, { headers: { 'if-none-match': before.headers.get('etag')! } });
    expect(after.status).toBe(200);
    expect(after.headers.get('etag')).not.toBe(before.headers.get('etag'));
    expect(((await after.json()) as { stock: number }).stock).toBe(8);
  });

  test('refusals and a user’s own data carry no shared-cache headers', async () => {
    const missing = await client.get('/products/999999', { token: null });
    expect(missing.status).toBe(404);
    expect(missing.headers.get('etag')).toBeNull();
    expect(missing.headers.get('cache-control')).toBeNull();
    const buyer = await client.createUser(5_000);
    const balance = await client.get(`/users/${buyer.userId}/balance`, { token: buyer.token });
    expect(balance.status).toBe(200);
    expect(balance.headers.get('etag')).toBeNull();
    expect(balance.headers.get('cache-control') ?? '').not.toContain('public');
  });
});

/**
 * Product reads from memory (PRODUCT_CACHE_MS): never a product whose read began longer ago than
 * that, so another instance's write shows within it; this instance's own writes show at once.
 */
describe('the product cache', () => {
  const MAX_AGE_MS = 1_500;
  let cached: TestApp;
  beforeAll(async () => {
    cached = await startTestApp(tdb.url, { PRODUCT_CACHE_MS: String(MAX_AGE_MS) });
  });
  afterAll(async () => {
    await cached?.close();
  });
  const stockOf = async (on: TestApp, id: number) => ((await on.client.get(`/products/${id}`, { token: null })).body as { stock: number }).stock;
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

  test("another instance's write: not seen while the product read before it is young, always seen once it is older than PRODUCT_CACHE_MS", async () => {
    const id = await cached.client.createProduct(1_000, 50);
    expect(await stockOf(cached, id)).toBe(50);
    // Another instance sells 5 (its own cache is not this one's).
    await tdb.query('UPDATE products SET stock = stock - 5 WHERE id = $1', [id]);
    const changedAt = Date.now();
    const soon = await stockOf(cached, id);
    if (Date.now() - changedAt < MAX_AGE_MS / 2) expect(soon).toBe(50); // served from memory, not read again
    await sleep(MAX_AGE_MS + 50 - (Date.now() - changedAt));
    // Whatever was refreshed meanwhile, a product served now was read after the write.
    expect(await stockOf(cached, id)).toBe(45);
  });

  test("this instance's own writes are seen at once: an order, a refund, an admin's change", async () => {
    const id = await cached.client.createProduct(1_000, 20);
    expect(await stockOf(cached, id)).toBe(20);
    const buyer = await cached.client.createUser(100_000);
    const order = await cached.client.post('/orders', { userId: buyer.userId, items: [{ productId: id, quantity: 3 }] }, { token: buyer.token });
    expect(order.status).toBe(201);
    expect(await stockOf(cached, id)).toBe(17);
    const orderId = (order.body as { orderId: string }).orderId;
    const refund = await cached.client.post(`/orders/${orderId}/refunds`, { items: [{ productId: id, quantity: 1 }] }, { token: buyer.token });
    expect(refund.status).toBe(201);
    expect(await stockOf(cached, id)).toBe(18);
    expect((await cached.client.patch(`/admin/products/${id}`, { stock: 99, price: 2_000 })).status).toBe(200);
    expect((await cached.client.get(`/products/${id}`, { token: null })).body).toMatchObject({ stock: 99, price: 2_000 });
  });

  test('PRODUCT_CACHE_MS=0: every read reads the database', async () => {
    const direct = await startTestApp(tdb.url, { PRODUCT_CACHE_MS: '0' });
    try {
      const id = await direct.client.createProduct(1_000, 30);
      expect(await stockOf(direct, id)).toBe(30);
      await tdb.query('UPDATE products SET stock = 29 WHERE id = $1', [id]);
      expect(await stockOf(direct, id)).toBe(29);
    } finally {
      await direct.close();
    }
  });
});
