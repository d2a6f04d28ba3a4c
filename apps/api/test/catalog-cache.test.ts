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
