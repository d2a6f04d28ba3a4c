import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { signToken } from '@shop/adapters-http';
import { createTestDatabase, type TestDatabase } from '../../../test/support/database.ts';
import { Client, secretBytes } from '../../../test/support/http.ts';
import { assertInvariants, outcomes } from '../../../test/support/invariants.ts';
import { startApiProcess, type ApiProcess } from '../../../test/support/processes.ts';

/** Several API processes, each with its own pool, on one database: the locks must hold across them. */
describe.each([2, 3])('%i API processes', (count) => {
  let tdb: TestDatabase;
  let processes: ApiProcess[] = [];

  beforeAll(async () => {
    tdb = await createTestDatabase();
    processes = await Promise.all(Array.from({ length: count }, () => startApiProcess(tdb.url)));
  });

  afterAll(async () => {
    const codes = await Promise.all(processes.map((p) => p.stop('SIGTERM')));
    await tdb?.drop();
    expect(codes).toEqual(processes.map(() => 0));
  });

  test('under the same load they keep every invariant', async () => {
    const admin = await signToken(secretBytes, { admin: true });
    const clients = processes.map((p) => new Client(p.url, admin));
    const [a, b] = [clients[0]!, clients[1]!];
    const pick = (i: number) => clients[i % clients.length]!;

    const hot = await a.createProduct(1_000, 50);
    const plenty = await b.createProduct(500, 100_000);
    const buyers = [];
    for (let i = 0; i < 200; i += 25) {
      buyers.push(...(await Promise.all(Array.from({ length: 25 }, (_, j) => pick(j).createUser(20_000)))));
    }
    const [spender] = [await a.createUser(15_000)];
    const couponId = await a.createCoupon({ discountType: 'RATE', discountValue: 10 });
    await b.grant(couponId, spender.userId);

    const hotReplies = buyers.map((buyer, i) =>
      pick(i).post('/orders', { userId: buyer.userId, items: [{ productId: hot, quantity: 1 }] }, { token: buyer.token }),
    );
    // The spender's 15,000 pays for exactly 30 orders of 500 without the coupon (the coupon order pays 450).
    const spenderReplies = Array.from({ length: 60 }, (_, i) =>
      pick(i).post(
        '/orders',
        { userId: spender.userId, items: [{ productId: plenty, quantity: 1 }], ...(i < 10 ? { couponId } : {}) },
        { token: spender.token },
      ),
    );
    const chargeReplies = buyers.slice(0, 40).map((buyer, i) =>
      pick(i + 1).post(`/users/${buyer.userId}/balance/charge`, { amount: 1_000 }, { token: buyer.token }),
    );
    const [hotDone, spenderDone, chargesDone] = await Promise.all([
      Promise.all(hotReplies),
      Promise.all(spenderReplies),
      Promise.all(chargeReplies),
    ]);

    expect(outcomes(hotDone)).toEqual({ '201': 50, '400 OUT_OF_STOCK': 150 });
    expect(outcomes(chargesDone)).toEqual({ '200': 40 });
    const spent = outcomes(spenderDone);
    expect(Object.keys(spent).every((k) => ['201', '400 INSUFFICIENT_BALANCE', '400 INVALID_COUPON'].includes(k)), JSON.stringify(spent)).toBe(true);
    const withCoupon = spenderDone.filter((r) => r.status === 201 && r.body.couponId === couponId);
    expect(withCoupon).toHaveLength(1);
    const paidTotal = spenderDone.filter((r) => r.status === 201).reduce((s, r) => s + r.body.paidAmount, 0);
    const [spenderRow] = await tdb.query<{ balance: number }>('SELECT balance FROM users WHERE id = $1', [spender.userId]);
    expect(spenderRow!.balance).toBe(15_000 - paidTotal);
    expect(spenderRow!.balance).toBeLessThan(500);

    const [hotRow] = await tdb.query<{ stock: number }>('SELECT stock FROM products WHERE id = $1', [hot]);
    expect(hotRow!.stock).toBe(0);
    await assertInvariants(tdb, new Map([[hot, 50], [plenty, 100_000]]));
  });
});
