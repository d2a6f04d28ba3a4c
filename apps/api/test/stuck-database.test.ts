import pg from 'pg';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { loadConfig } from '../src/config.ts';
import { createTestDatabase, type TestDatabase } from '../../../test/support/database.ts';
import { startTestApp, type TestApp } from '../../../test/support/http.ts';
import { assertInvariants } from '../../../test/support/invariants.ts';

let tdb: TestDatabase;
let app: TestApp;

beforeAll(async () => {
  tdb = await createTestDatabase();
  // One connection, short limits: the smallest service a stuck database can exhaust.
  app = await startTestApp(tdb.url, {
    DATABASE_POOL_SIZE: '1',
    DATABASE_ACQUIRE_TIMEOUT_MS: '300',
    DATABASE_STATEMENT_TIMEOUT_MS: '1000',
    OUTBOX_RELAY: 'off',
    TOP_SELLERS_REFRESH_MS: '3600000',
  });
});
afterAll(async () => {
  await app?.close();
  await tdb?.drop();
});

test('a stuck database and an exhausted pool answer 503 with Retry-After quickly, change nothing, and the service recovers', async () => {
  const { client } = app;
  const buyer = await client.createUser(10_000);
  const productId = await client.createProduct(1_000, 10);

  // Another session holds the buyer's row: the charge takes the pool's only connection and waits.
  const holder = new pg.Client({ connectionString: tdb.url });
  await holder.connect();
  await holder.query('BEGIN');
  await holder.query('SELECT 1 FROM users WHERE id = $1 FOR UPDATE', [buyer.userId]);
  try {
    const charge = client.post(`/users/${buyer.userId}/balance/charge`, { amount: 500 }, { token: buyer.token });
    await new Promise((r) => setTimeout(r, 100));
    // Meanwhile the pool is empty: this read waits for a connection, then gives up.
    const read = await client.get(`/products/${productId}`, { token: null });
    expect(read.status).toBe(503);
    expect(read.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(read.headers.get('retry-after')).toBe('1');
    expect(read.body).toMatchObject({ status: 503, code: 'SERVICE_UNAVAILABLE' });
    // The stuck statement is cancelled by statement_timeout; without it the charge would wait for
    // the holder and then succeed.
    const charged = await charge;
    expect(charged.status).toBe(503);
    expect(charged.body.code).toBe('SERVICE_UNAVAILABLE');
  } finally {
    await holder.query('ROLLBACK');
    await holder.end();
  }

  // Nothing half-done, and the next requests succeed.
  expect((await client.get(`/users/${buyer.userId}/balance`, { token: buyer.token })).body.balance).toBe(10_000);
  const order = await client.post('/orders', { userId: buyer.userId, items: [{ productId, quantity: 1 }] }, { token: buyer.token });
  expect(order.status).toBe(201);
  await assertInvariants(tdb, new Map([[productId, 10]]));
});

test('the production start refuses to run without AUTH_SECRET', () => {
  expect(() => loadConfig({ NODE_ENV: 'production' })).toThrow(/AUTH_SECRET/);
  expect(loadConfig({ NODE_ENV: 'production', AUTH_SECRET: 'x'.repeat(32) }).authSecret).toBe('x'.repeat(32));
  expect(loadConfig({}).authSecret).toBeNull();
});
