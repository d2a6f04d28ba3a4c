import pg from 'pg';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { signToken } from '@shop/adapters-http';
import { createTestDatabase, type TestDatabase } from '../../../test/support/database.ts';
import { Client, secretBytes, startTestApp, type Reply, type TestApp } from '../../../test/support/http.ts';
import { assertInvariants, outcomes } from '../../../test/support/invariants.ts';
import { startApiProcess, type ApiProcess } from '../../../test/support/processes.ts';

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

/** Many users at once, straight in SQL: arranging 2,000 buyers through HTTP would dominate the test. */
async function manyUsers(n: number): Promise<Array<{ userId: number; token: string }>> {
  const rows = await tdb.query<{ id: number }>(`INSERT INTO users (name) SELECT 'buyer ' || g FROM generate_series(1, $1) g RETURNING id`, [n]);
  return Promise.all(rows.map(async (r) => ({ userId: r.id, token: await signToken(secretBytes, { userId: r.id }) })));
}

function burst(clients: Client[], couponId: number, users: Array<{ userId: number; token: string }>): Promise<Reply[]> {
  return Promise.all(
    users.map((u, i) => clients[i % clients.length]!.post(`/coupons/${couponId}/issue`, { userId: u.userId }, { token: u.token })),
  );
}

async function assertExactlyIssued(couponId: number, replies: Reply[], quantity: number) {
  expect(replies.filter((r) => r.status >= 500)).toEqual([]);
  expect(outcomes(replies)).toEqual({ '201': quantity, '409 COUPON_EXHAUSTED': replies.length - quantity });
  const winners = replies.filter((r) => r.status === 201).map((r) => r.body.userId);
  expect(new Set(winners).size).toBe(quantity);
  const held = await tdb.query<{ user_id: number }>('SELECT user_id FROM user_coupons WHERE coupon_id = $1 ORDER BY user_id', [couponId]);
  expect(held.map((h) => h.user_id)).toEqual([...winners].sort((a, b) => a - b));
  const [coupon] = await tdb.query<{ issued_quantity: number }>('SELECT issued_quantity FROM coupons WHERE id = $1', [couponId]);
  expect(coupon!.issued_quantity).toBe(quantity);
  await assertInvariants(tdb);
}

describe('first-come coupon issuance', () => {
  test('2,000 distinct users for 100 coupons: exactly 100 issued to 100 users, the rest COUPON_EXHAUSTED', async () => {
    const couponId = await client.createCoupon({ discountType: 'FIXED', discountValue: 1_000, totalQuantity: 100 });
    const users = await manyUsers(2_000);
    await assertExactlyIssued(couponId, await burst([client], couponId, users), 100);
  });

  test('the same burst through two API processes on one database', async () => {
    // 2,000 requests at once queue for 2 x 16 connections; on a loaded CI machine that wait passes
    // the default 2 s acquire timeout (a 503 by design). This test is about exactness, not shedding.
    const patient = { DATABASE_ACQUIRE_TIMEOUT_MS: '60000' };
    const procs: ApiProcess[] = await Promise.all([startApiProcess(tdb.url, patient), startApiProcess(tdb.url, patient)]);
    try {
      const admin = await signToken(secretBytes, { admin: true });
      const clients = procs.map((p) => new Client(p.url, admin));
      const couponId = await client.createCoupon({ discountType: 'RATE', discountValue: 10, totalQuantity: 100 });
      const users = await manyUsers(2_000);
      await assertExactlyIssued(couponId, await burst(clients, couponId, users), 100);
    } finally {
      for (const p of procs) await p.stop();
    }
  });

  test('one user claiming the same coupon 20 times at once gets one copy', async () => {
    const couponId = await client.createCoupon({ discountType: 'FIXED', discountValue: 1_000, totalQuantity: 10 });
    const [user] = await manyUsers(1);
    const replies = await Promise.all(
      Array.from({ length: 20 }, () => client.post(`/coupons/${couponId}/issue`, { userId: user!.userId }, { token: user!.token })),
    );
    expect(outcomes(replies)).toEqual({ '201': 1, '409 COUPON_ALREADY_ISSUED': 19 });
    const [coupon] = await tdb.query<{ issued_quantity: number }>('SELECT issued_quantity FROM coupons WHERE id = $1', [couponId]);
    expect(coupon!.issued_quantity).toBe(1);
  });

  test('once the coupon is gone, losers are answered without waiting on the coupon row lock', async () => {
    const couponId = await client.createCoupon({ discountType: 'FIXED', discountValue: 1_000, totalQuantity: 1 });
    const [winner, ...losers] = await manyUsers(11);
    expect((await client.post(`/coupons/${couponId}/issue`, { userId: winner!.userId }, { token: winner!.token })).status).toBe(201);
    // Another transaction holds the coupon row; a loser that queued on it would never answer.
    const locker = new pg.Client({ connectionString: tdb.url });
    await locker.connect();
    try {
      await locker.query('BEGIN');
      await locker.query('SELECT 1 FROM coupons WHERE id = $1 FOR UPDATE', [couponId]);
      const replies = await Promise.all(
        losers.map((u) =>
          client.post(`/coupons/${couponId}/issue`, { userId: u.userId }, { token: u.token, headers: {} }),
        ),
      );
      expect(outcomes(replies)).toEqual({ '409 COUPON_EXHAUSTED': 10 });
    } finally {
      await locker.query('ROLLBACK');
      await locker.end();
    }
  });

  test('issue window, validity and expiry with real timestamps', async () => {
    const [user] = await manyUsers(1);
    const token = user!.token;
    const hour = 3_600_000;
    const early = await client.createCoupon({ discountType: 'FIXED', discountValue: 500, issueStartsAt: new Date(Date.now() + hour).toISOString() });
    const late = await client.createCoupon({ discountType: 'FIXED', discountValue: 500, issueEndsAt: new Date(Date.now() - hour).toISOString() });
    for (const couponId of [early, late]) {
      const r = await client.post(`/coupons/${couponId}/issue`, { userId: user!.userId }, { token });
      expect([r.status, r.body.code]).toEqual([400, 'COUPON_NOT_ISSUABLE']);
    }
    const open = await client.createCoupon({
      discountType: 'FIXED',
      discountValue: 500,
      validDays: 2,
      issueStartsAt: new Date(Date.now() - hour).toISOString(),
      issueEndsAt: new Date(Date.now() + hour).toISOString(),
    });
    const issued = await client.post(`/coupons/${open}/issue`, { userId: user!.userId }, { token });
    expect(issued.status).toBe(201);
    expect(issued.body).toMatchObject({ couponId: open, userId: user!.userId, status: 'AVAILABLE', usedAt: null, orderId: null });
    expect(Date.parse(issued.body.expiresAt) - Date.parse(issued.body.issuedAt)).toBe(2 * 86_400_000);

    // Age the copy past its expiry: it lists as EXPIRED and an order with it is INVALID_COUPON.
    await tdb.query(`UPDATE user_coupons SET issued_at = now() - interval '3 days', expires_at = now() - interval '1 day' WHERE coupon_id = $1`, [open]);
    const listed = await client.get(`/users/${user!.userId}/coupons`, { token });
    expect(listed.body.items.find((c: any) => c.couponId === open).status).toBe('EXPIRED');
    await client.post(`/users/${user!.userId}/balance/charge`, { amount: 10_000 }, { token });
    const productId = await client.createProduct(1_000, 10);
    const order = await client.post('/orders', { userId: user!.userId, items: [{ productId, quantity: 1 }], couponId: open }, { token });
    expect([order.status, order.body.code]).toEqual([400, 'INVALID_COUPON']);
  });

  test('unknown coupon is 404, another user is 403, and nothing is issued', async () => {
    const [a, b] = await manyUsers(2);
    const couponId = await client.createCoupon({ discountType: 'FIXED', discountValue: 500 });
    const missing = await client.post('/coupons/987654/issue', { userId: a!.userId }, { token: a!.token });
    expect([missing.status, missing.body.code]).toEqual([404, 'COUPON_NOT_FOUND']);
    const other = await client.post(`/coupons/${couponId}/issue`, { userId: b!.userId }, { token: a!.token });
    expect([other.status, other.body.code]).toEqual([403, 'FORBIDDEN']);
    expect(await tdb.query('SELECT 1 FROM user_coupons WHERE coupon_id = $1', [couponId])).toEqual([]);
  });
});
