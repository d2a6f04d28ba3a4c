import { afterAll, beforeAll, expect, test } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../../test/support/database.ts';
import { startTestApp, type TestApp } from '../../../test/support/http.ts';

let tdb: TestDatabase;
let app: TestApp;

beforeAll(async () => {
  tdb = await createTestDatabase();
  // METRICS_PORT=0: the metrics listener on a free port, as a scraper inside the network sees it.
  app = await startTestApp(tdb.url, { METRICS_PORT: '0' });
});
afterAll(async () => {
  await app?.close();
  await tdb?.drop();
});

/** The value of one sample line of the Prometheus text, or 0 when absent. */
function sample(text: string, line: string): number {
  const found = text.split('\n').find((l) => l.startsWith(`${line} `));
  return found ? Number(found.slice(line.length + 1)) : 0;
}

test('requests by route template, order and coupon outcomes by code, and the database pool', async () => {
  const { client } = app;
  const buyer = await client.createUser(5_000);
  const productId = await client.createProduct(1_000, 1);
  const couponId = await client.createCoupon({ discountType: 'FIXED', discountValue: 100, totalQuantity: 1 });
  const order = (quantity: number) =>
    client.post('/orders', { userId: buyer.userId, items: [{ productId, quantity }] }, { token: buyer.token });
  expect((await order(1)).status).toBe(201);
  expect((await order(1)).body.code).toBe('OUT_OF_STOCK');
  expect((await order(0)).body.code).toBe('VALIDATION_ERROR');
  expect((await client.post(`/coupons/${couponId}/issue`, { userId: buyer.userId }, { token: buyer.token })).status).toBe(201);
  expect((await client.post(`/coupons/${couponId}/issue`, { userId: buyer.userId }, { token: buyer.token })).body.code).toBe('COUPON_ALREADY_ISSUED');
  expect((await client.get(`/orders/${'0'.repeat(8)}-0000-7000-8000-${'0'.repeat(12)}`, { token: buyer.token })).status).toBe(404);
  expect((await client.get('/no/such/thing?id=1')).status).toBe(404);

  const text = await fetch(`${app.service.metricsUrl}/metrics`).then((r) => r.text());
  expect(sample(text, 'orders_total{outcome="created"}')).toBe(1);
  expect(sample(text, 'orders_total{outcome="OUT_OF_STOCK"}')).toBe(1);
  expect(sample(text, 'orders_total{outcome="VALIDATION_ERROR"}')).toBe(1);
  expect(sample(text, 'coupon_issues_total{outcome="created"}')).toBe(1);
  expect(sample(text, 'coupon_issues_total{outcome="COUPON_ALREADY_ISSUED"}')).toBe(1);
  // Route templates, never raw paths: an order id or a made-up URL adds no new series.
  expect(sample(text, 'http_request_duration_seconds_count{method="GET",route="/orders/:orderId",status_code="404"}')).toBe(1);
  expect(sample(text, 'http_request_duration_seconds_count{method="GET",route="unmatched",status_code="404"}')).toBe(1);
  expect(sample(text, 'http_request_duration_seconds_count{method="POST",route="/orders",status_code="400"}')).toBe(2);
  expect(text).not.toContain('/no/such/thing');
  expect(text).toMatch(/^db_pool_connections_in_use \d+$/m);
  expect(text).toMatch(/^db_pool_connections_idle \d+$/m);
  expect(text).toMatch(/^db_pool_waiting_requests 0$/m);
});

test('/metrics on the public port takes an admin token: 401 without, 403 with a user token', async () => {
  const { client } = app;
  const user = await client.createUser(0);
  const anonymous = await client.get('/metrics', { token: null });
  expect(anonymous.status).toBe(401);
  expect(anonymous.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  expect(anonymous.body.code).toBe('UNAUTHORIZED');
  const asUser = await client.get('/metrics', { token: user.token });
  expect(asUser.status).toBe(403);
  expect(asUser.body.code).toBe('FORBIDDEN');
  const asAdmin = await client.get('/metrics');
  expect(asAdmin.status).toBe(200);
  expect(asAdmin.headers.get('content-type')).toMatch(/^text\/plain/);
  expect(asAdmin.body).toMatch(/^outbox_backlog_events \d+$/m);
});

test('METRICS_PORT serves /metrics without a token, and nothing else', async () => {
  const base = app.service.metricsUrl!;
  expect(base).not.toBe(app.client.baseUrl);
  const res = await fetch(`${base}/metrics`);
  expect(res.status).toBe(200);
  expect(await res.text()).toMatch(/^db_pool_connections_idle \d+$/m);
  for (const path of ['/health/live', '/products', '/admin/users', '/docs', '/openapi.json']) {
    const other = await fetch(`${base}${path}`);
    expect(other.status, path).toBe(404);
    expect(other.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  }
});
