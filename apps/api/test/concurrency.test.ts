import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../../test/support/database.ts';
import { startTestApp, type Client, type Reply, type TestApp } from '../../../test/support/http.ts';
import { assertInvariants, outcomes } from '../../../test/support/invariants.ts';

/**
 * Real parallelism: every scenario fires its requests at once over real sockets against the
 * real database, then checks the invariants with SQL. No timing is asserted.
 */
let tdb: TestDatabase;
let app: TestApp;
let client: Client;
const initialStock = new Map<number, number>();

async function product(price: number, stock: number): Promise<number> {
  const id = await client.createProduct(price, stock);
  initialStock.set(id, stock);
  return id;
}

async function users(n: number, balance: number) {
  const made: Array<{ userId: number; token: string }> = [];
  for (let i = 0; i < n; i += 20) {
    made.push(...(await Promise.all(Array.from({ length: Math.min(20, n - i) }, () => client.createUser(balance)))));
  }
  return made;
}

const stockOf = async (productId: number) =>
  (await tdb.query<{ stock: number }>('SELECT stock FROM products WHERE id = $1', [productId]))[0]!.stock;
const balanceOf = async (userId: number) =>
  (await tdb.query<{ balance: number }>('SELECT balance FROM users WHERE id = $1', [userId]))[0]!.balance;
/**
 * The database's deadlock count once the backends of the connections named `applicationName` have
 * flushed theirs. PostgreSQL (15+) keeps a backend's counts in its own memory until it flushes
 * them, at most once a second while it works and always when it exits; pg_stat_force_next_flush()
 * flushes only the backend that calls it. So: wait until those backends are gone from
 * pg_stat_activity, then until the count reads the same several times running (a backend leaves
 * pg_stat_activity just before its exit flush). Bounded: a count that never settles fails.
 */
const connectionsNamed = async (applicationName: string) =>
  (await tdb.query<{ n: number }>('SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1', [applicationName]))[0]!.n;

async function flushedDeadlocks(applicationName: string): Promise<number> {
  const deadline = Date.now() + 30_000;
  const pause = () => new Promise((r) => setTimeout(r, 20));
  for (let left = await connectionsNamed(applicationName); left > 0; left = await connectionsNamed(applicationName)) {
    if (Date.now() > deadline) throw new Error(`${left} connections of ${applicationName} are still open`);
    await pause();
  }
  const read = async () =>
    (await tdb.query<{ deadlocks: number }>(
      'SELECT pg_stat_clear_snapshot(), deadlocks::int AS deadlocks FROM pg_stat_database WHERE datname = current_database()',
    ))[0]!.deadlocks;
  let last = await read();
  for (let same = 1; same < 5; ) {
    if (Date.now() > deadline) throw new Error('the deadlock count did not settle');
    await pause();
    const now = await read();
    same = now === last ? same + 1 : 1;
    last = now;
  }
  return last;
}

const no5xx = (replies: Reply[]) => expect(replies.filter((r) => r.status >= 500), JSON.stringify(outcomes(replies))).toEqual([]);

beforeAll(async () => {
  tdb = await createTestDatabase();
  app = await startTestApp(tdb.url);
  client = app.client;
});

afterAll(async () => {
  await app?.close();
  await tdb?.drop();
});

describe('concurrent orders', () => {
  test('200 buyers for a stock of 50: exactly 50 paid and the stock ends at 0', async () => {
    const productId = await product(1_000, 50);
    const buyers = await users(200, 10_000);
    const replies = await Promise.all(
      buyers.map((b) => client.post('/orders', { userId: b.userId, items: [{ productId, quantity: 1 }] }, { token: b.token })),
    );
    no5xx(replies);
    expect(outcomes(replies)).toEqual({ '201': 50, '400 OUT_OF_STOCK': 150 });
    expect(await stockOf(productId)).toBe(0);
    const [orders] = await tdb.query<{ n: number }>(
      'SELECT count(*)::int AS n FROM order_items WHERE product_id = $1',
      [productId],
    );
    expect(orders!.n).toBe(50);
    const paidBuyers = new Set(replies.filter((r) => r.status === 201).map((r) => r.body.userId));
    for (const b of buyers) expect(await balanceOf(b.userId)).toBe(paidBuyers.has(b.userId) ? 9_000 : 10_000);
    await assertInvariants(tdb, initialStock);
  });

  test('one user, 100 concurrent orders, balance for 30: exactly 30 paid, balance 0', async () => {
    const productId = await product(1_000, 1_000);
    const [buyer] = await users(1, 30_000);
    const replies = await Promise.all(
      Array.from({ length: 100 }, () =>
        client.post('/orders', { userId: buyer!.userId, items: [{ productId, quantity: 1 }] }, { token: buyer!.token }),
      ),
    );
    no5xx(replies);
    expect(outcomes(replies)).toEqual({ '201': 30, '400 INSUFFICIENT_BALANCE': 70 });
    expect(await balanceOf(buyer!.userId)).toBe(0);
    expect(await stockOf(productId)).toBe(970);
    await assertInvariants(tdb, initialStock);
  });

  test('one coupon in 20 concurrent orders: used exactly once', async () => {
    const productId = await product(10_000, 1_000);
    const [buyer] = await users(1, 1_000_000);
    const couponId = await client.createCoupon({ discountType: 'FIXED', discountValue: 2_000 });
    await client.grant(couponId, buyer!.userId);
    const replies = await Promise.all(
      Array.from({ length: 20 }, () =>
        client.post('/orders', { userId: buyer!.userId, items: [{ productId, quantity: 1 }], couponId }, { token: buyer!.token }),
      ),
    );
    no5xx(replies);
    expect(outcomes(replies)).toEqual({ '201': 1, '400 INVALID_COUPON': 19 });
    const winner = replies.find((r) => r.status === 201)!;
    expect(winner.body.discountAmount).toBe(2_000);
    expect(winner.body.paidAmount).toBe(8_000);
    const uses = await tdb.query('SELECT order_id FROM user_coupons WHERE coupon_id = $1 AND used_at IS NOT NULL', [couponId]);
    expect(uses).toEqual([{ order_id: winner.body.orderId }]);
    expect(await balanceOf(buyer!.userId)).toBe(1_000_000 - 8_000);
    await assertInvariants(tdb, initialStock);
  });

  test('concurrent charges and orders on one balance: final = start + charges - payments, ledger agrees', async () => {
    const productId = await product(700, 10_000);
    const [user] = await users(1, 10_000);
    const requests: Array<Promise<Reply>> = [];
    for (let i = 0; i < 60; i++) {
      requests.push(client.post(`/users/${user!.userId}/balance/charge`, { amount: 1_000 }, { token: user!.token }));
      requests.push(client.post('/orders', { userId: user!.userId, items: [{ productId, quantity: 1 }] }, { token: user!.token }));
    }
    const replies = await Promise.all(requests);
    no5xx(replies);
    const charges = replies.filter((r, i) => i % 2 === 0);
    const orders = replies.filter((r, i) => i % 2 === 1);
    expect(outcomes(charges)).toEqual({ '200': 60 });
    const paid = orders.filter((r) => r.status === 201).length;
    expect(paid + orders.filter((r) => r.body?.code === 'INSUFFICIENT_BALANCE').length).toBe(60);
    expect(paid).toBeGreaterThanOrEqual(14); // the starting 10,000 alone pays for 14
    expect(await balanceOf(user!.userId)).toBe(10_000 + 60 * 1_000 - paid * 700);
    const ledger = await tdb.query<{ type: string; n: number }>(
      'SELECT type, count(*)::int AS n FROM balance_ledger WHERE user_id = $1 GROUP BY type ORDER BY type',
      [user!.userId],
    );
    expect(ledger).toEqual([
      { type: 'CHARGE', n: 61 },
      { type: 'PAYMENT', n: paid },
    ]);
    await assertInvariants(tdb, initialStock);
  });

  test('100 orders over the same two products listed in opposite orders, keyed and not: no 5xx, no deadlock', async () => {
    const a = await product(100, 10_000);
    const b = await product(200, 10_000);
    const buyers = await users(10, 1_000_000);
    // A dedicated app whose connections close afterwards, so PostgreSQL flushes the deadlock count;
    // its own application_name tells its connections apart from the other app's and the test's.
    const probe = `deadlock-probe-${process.pid}`;
    const probeUrl = new URL(tdb.url);
    probeUrl.searchParams.set('application_name', probe);
    const own = await startTestApp(probeUrl.toString());
    const replies = await Promise.all(
      Array.from({ length: 100 }, (_, i) => {
        const buyer = buyers[i % buyers.length]!;
        const items = i % 2 === 0
          ? [{ productId: a, quantity: 1 }, { productId: b, quantity: 2 }]
          : [{ productId: b, quantity: 2 }, { productId: a, quantity: 1 }];
        // Every third carries a key, claimed inside the same group write: keys are try-locks taken
        // before any row lock, so they cannot join a lock cycle either.
        const headers: Record<string, string> = i % 3 === 0 ? { 'idempotency-key': `opposite-${i}` } : {};
        return own.client.post('/orders', { userId: buyer.userId, items }, { token: buyer.token, headers });
      }),
    );
    // The wait below is for these connections: they must be there to be waited for.
    expect(await connectionsNamed(probe)).toBeGreaterThan(0);
    await own.close();
    no5xx(replies);
    expect(outcomes(replies)).toEqual({ '201': 100 });
    expect(await stockOf(a)).toBe(10_000 - 100);
    expect(await stockOf(b)).toBe(10_000 - 200);
    // Items come back in the order they were asked for, whatever order the rows were locked in.
    expect(replies[1]!.body.items.map((i: { productId: number }) => i.productId)).toEqual([b, a]);
    expect(await flushedDeadlocks(probe)).toBe(0);
    await assertInvariants(tdb, initialStock);
  });
});

describe('concurrent duplicates of one Idempotency-Key', () => {
  test('20 concurrent orders with one key: one order, one charge', async () => {
    const productId = await product(1_000, 100);
    const [user] = await users(1, 100_000);
    const body = { userId: user!.userId, items: [{ productId, quantity: 1 }] };
    const headers = { 'idempotency-key': `order-${user!.userId}` };
    const replies = await Promise.all(
      Array.from({ length: 20 }, () => client.post('/orders', body, { token: user!.token, headers })),
    );
    no5xx(replies);
    const created = replies.filter((r) => r.status === 201);
    expect(created.length).toBeGreaterThanOrEqual(1);
    expect(created.length + replies.filter((r) => r.status === 409 && r.body.code === 'IDEMPOTENCY_KEY_IN_USE').length).toBe(20);
    expect(new Set(created.map((r) => r.body.orderId)).size).toBe(1);
    // After the first completes, a retry replays it.
    const retry = await client.post('/orders', body, { token: user!.token, headers });
    expect(retry.status).toBe(201);
    expect(retry.body).toEqual(created[0]!.body);
    const orders = await tdb.query('SELECT id FROM orders WHERE user_id = $1', [user!.userId]);
    expect(orders).toHaveLength(1);
    expect(await balanceOf(user!.userId)).toBe(99_000);
    expect(await stockOf(productId)).toBe(99);
    await assertInvariants(tdb, initialStock);
  });

  test('20 concurrent charges with one key: charged once', async () => {
    const [user] = await users(1, 5_000);
    const headers = { 'idempotency-key': `charge-${user!.userId}` };
    const replies = await Promise.all(
      Array.from({ length: 20 }, () =>
        client.post(`/users/${user!.userId}/balance/charge`, { amount: 7_000 }, { token: user!.token, headers }),
      ),
    );
    no5xx(replies);
    const ok = replies.filter((r) => r.status === 200);
    expect(ok.length + replies.filter((r) => r.status === 409).length).toBe(20);
    for (const r of ok) expect(r.body).toEqual({ userId: user!.userId, balance: 12_000 });
    expect(await balanceOf(user!.userId)).toBe(12_000);
    const reused = await client.post(`/users/${user!.userId}/balance/charge`, { amount: 1 }, { token: user!.token, headers });
    expect(reused.status).toBe(422);
    expect(reused.body.code).toBe('IDEMPOTENCY_KEY_REUSED');
    await assertInvariants(tdb, initialStock);
  });
});
