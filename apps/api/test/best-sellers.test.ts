import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { refreshSalesRollup } from '@shop/adapters-postgres';
import { createTestDatabase, type TestDatabase } from '../../../test/support/database.ts';
import { eventually } from '../../../test/support/eventually.ts';
import { startTestApp, type Client, type TestApp } from '../../../test/support/http.ts';

/** Known orders, real timestamps in the database, the rollup that serves the answer. */
const REFRESH_MS = 200;
const CACHE_MS = 100;
let tdb: TestDatabase;
let app: TestApp;
let client: Client;

beforeAll(async () => {
  tdb = await createTestDatabase();
  app = await startTestApp(tdb.url, { TOP_SELLERS_REFRESH_MS: String(REFRESH_MS), TOP_SELLERS_CACHE_MS: String(CACHE_MS) });
  client = app.client;
});
afterAll(async () => {
  await app?.close();
  await tdb?.drop();
});

async function order(user: { userId: number; token: string }, items: Array<[number, number]>, via: Client = client) {
  const res = await via.post('/orders', { userId: user.userId, items: items.map(([productId, quantity]) => ({ productId, quantity })) }, { token: user.token });
  expect(res.status).toBe(201);
  return res.body.orderId as string;
}

/**
 * Moves an order (and so its sales) back in time, as if it had been placed then: its created_at,
 * and its id too (a UUIDv7 of that time, as the service would have made it then; orders are
 * partitioned by id), its items, ledger row and events following it.
 */
async function backdate(orderId: string, hoursAgo: number, db: TestDatabase = tdb) {
  const at = `now() - ${hoursAgo} * interval '1 hour'`;
  await db.query(`
    WITH moved AS (SELECT uuid_v7(${at}) AS id),
    copy AS (
      INSERT INTO orders (id, user_id, status, total_amount, discount_amount, paid_amount, coupon_id, created_at, xact_id, refunded_amount)
      SELECT moved.id, user_id, status, total_amount, discount_amount, paid_amount, coupon_id, ${at}, xact_id, refunded_amount
        FROM orders, moved WHERE orders.id = $1 RETURNING id)
    SELECT id FROM copy`, [orderId]).then(async ([row]) => {
    const to = (row as { id: string }).id;
    await db.query('UPDATE order_items SET order_id = $2 WHERE order_id = $1', [orderId, to]);
    await db.query('UPDATE balance_ledger SET order_id = $2 WHERE order_id = $1', [orderId, to]);
    await db.query('UPDATE outbox_events SET aggregate_id = $2 WHERE aggregate_id = $1', [orderId, to]);
    await db.query('DELETE FROM orders WHERE id = $1', [orderId]);
  });
}

const top = async (query: string) => (await client.get(`/products/top${query}`, { token: null })).body;

describe('GET /products/top', () => {
  test('ranks by units in PAID orders of the window, ties by productId; failed and old orders do not count', async () => {
    // Its own database and API with no background rollup: orders are backdated before the
    // rollup sees them, as if they had been placed then.
    const db = await createTestDatabase();
    const own = await startTestApp(db.url, { TOP_SELLERS_REFRESH_MS: '3600000', TOP_SELLERS_CACHE_MS: '0' });
    const c = own.client;
    const ownTop = async (query: string) => (await c.get(`/products/top${query}`, { token: null })).body;
    const buyer = await c.createUser(10_000_000);
    const [a, b, cc, d, e] = [
      await c.createProduct(100, 1_000, 'A'),
      await c.createProduct(200, 1_000, 'B'),
      await c.createProduct(300, 1_000, 'C'),
      await c.createProduct(400, 1_000, 'D'),
      await c.createProduct(500, 5, 'E'),
    ];
    await order(buyer, [[a, 5], [b, 7]], c);
    await order(buyer, [[cc, 7]], c);
    await order(buyer, [[a, 2], [d, 1]], c);
    const old = await order(buyer, [[d, 100]], c); // outside a 3-day window
    // A failed order (E has 5 in stock) changes nothing.
    const failed = await c.post('/orders', { userId: buyer.userId, items: [{ productId: e, quantity: 6 }] }, { token: buyer.token });
    expect(failed.body.code).toBe('OUT_OF_STOCK');
    await backdate(old, 4 * 24, db);
    // One inside the partial first hour of a 3-day window, and one just outside it.
    const edgeIn = await order(buyer, [[e, 1]], c);
    await backdate(edgeIn, 3 * 24 - 0.25, db);
    const edgeOut = await order(buyer, [[e, 2]], c);
    await backdate(edgeOut, 3 * 24 + 0.25, db);
    // The rollup folds only transactions older than every running one, cluster-wide: while other
    // test files keep transactions open, one refresh may stop short. Refresh until it has all.
    for (let tries = 0; ; tries++) {
      await refreshSalesRollup(db.db.kysely);
      const [r] = await db.query<{ done: boolean }>(
        `SELECT (SELECT processed_until FROM rollup_state) > (SELECT max(xact_id) FROM orders) AS done`,
      );
      if (r!.done) break;
      if (tries > 200) throw new Error('the sales rollup never caught up');
      await new Promise((resolve) => setTimeout(resolve, 50));
    }

    const body = await ownTop('?days=3&limit=10');
    expect(body.items).toEqual([
      { rank: 1, productId: a, name: 'A', price: 100, soldQuantity: 7 },
      { rank: 2, productId: b, name: 'B', price: 200, soldQuantity: 7 },
      { rank: 3, productId: cc, name: 'C', price: 300, soldQuantity: 7 },
      { rank: 4, productId: d, name: 'D', price: 400, soldQuantity: 1 },
      { rank: 5, productId: e, name: 'E', price: 500, soldQuantity: 1 },
    ]);
    expect(Date.parse(body.to) - Date.parse(body.from)).toBe(3 * 86_400_000);
    expect((await ownTop('?days=5&limit=2')).items.map((i: any) => [i.productId, i.soldQuantity])).toEqual([
      [d, 101],
      [a, 7],
    ]);
    const defaults = await ownTop('');
    expect(defaults.items).toHaveLength(5);
    expect(Date.parse(defaults.to) - Date.parse(defaults.from)).toBe(3 * 86_400_000);
    await own.close();
    await db.drop();
  });

  test('a sale shows up within the freshness bound (rollup interval + cache), with no manual refresh', async () => {
    const buyer = await client.createUser(10_000_000);
    const fresh = await client.createProduct(1, 10_000, 'fresh');
    await order(buyer, [[fresh, 5_000]]);
    const bound = REFRESH_MS + CACHE_MS;
    const start = Date.now();
    let seen = false;
    while (!seen && Date.now() - start < bound * 10) {
      const body = await top('?days=1&limit=1');
      seen = body.items[0]?.productId === fresh && body.items[0]?.soldQuantity === 5_000;
      if (!seen) await new Promise((r) => setTimeout(r, 20));
    }
    expect(seen, `the sale was not visible within ${bound * 10} ms`).toBe(true);
  });

  test('the rollup folds every order exactly once, even when orders commit while it runs', async () => {
    const buyer = await client.createUser(100_000_000);
    const p = await client.createProduct(1, 1_000_000, 'counted');
    const placing = Promise.all(Array.from({ length: 200 }, () => order(buyer, [[p, 3]])));
    const rolling = (async () => {
      for (let i = 0; i < 20; i++) await refreshSalesRollup(tdb.db.kysely);
    })();
    await Promise.all([placing, rolling]);
    // The service's own timer may hold the rollup lock, or an older transaction may hold the
    // snapshot's xmin back, so a single refresh is not guaranteed to see the last orders yet.
    const folded = async () =>
      (await tdb.query<{ q: number }>('SELECT coalesce(sum(quantity), 0)::bigint AS q FROM product_sales_hourly WHERE product_id = $1', [p]))[0]!.q;
    const deadline = Date.now() + 10_000;
    while ((await folded()) < 600 && Date.now() < deadline) {
      await refreshSalesRollup(tdb.db.kysely);
      await new Promise((r) => setTimeout(r, 20));
    }
    for (let i = 0; i < 5; i++) await refreshSalesRollup(tdb.db.kysely);
    expect(await folded()).toBe(600);
  });

  test('a cancellation takes its units back out once, whether or not the rollup counted the order yet', async () => {
    const buyer = await client.createUser(100_000_000);
    const p = await client.createProduct(1, 1_000_000, 'returned');
    const gone = await client.createProduct(1, 1_000, 'all returned');
    const cancel = async (orderId: string) => {
      const res = await client.post(`/orders/${orderId}/cancel`, {}, { token: buyer.token });
      expect(res.status).toBe(200);
    };
    // 200 orders of 3 units; half cancelled while orders still commit and the rollup runs (the
    // service's own timer too), so some cancellations land before their order was folded, some after.
    const rolling = (async () => {
      for (let i = 0; i < 20; i++) await refreshSalesRollup(tdb.db.kysely);
    })();
    const ids = await Promise.all(
      Array.from({ length: 200 }, async (_, i) => {
        const id = await order(buyer, [[p, 3]]);
        if (i % 2 === 0) await cancel(id);
        return id;
      }),
    );
    await cancel(await order(buyer, [[gone, 4]]));
    await rolling;
    expect(ids).toHaveLength(200);
    const folded = async (productId: number) =>
      (await tdb.query<{ q: number }>('SELECT coalesce(sum(quantity), 0)::bigint AS q FROM product_sales_hourly WHERE product_id = $1', [productId]))[0]!.q;
    const caughtUp = async () =>
      (await tdb.query<{ done: boolean }>(
        `SELECT (SELECT processed_until FROM rollup_state) > (SELECT max(greatest(xact_id, cancel_xact_id)) FROM orders) AS done`,
      ))[0]!.done;
    await eventually(async () => {
      await refreshSalesRollup(tdb.db.kysely);
      return caughtUp();
    }, 'the sales rollup to fold every order and cancellation');
    expect(await folded(p)).toBe(300);
    expect(await folded(gone)).toBe(0);
    // What GET /products/top answers: the returned product counts its 100 kept orders, and a
    // product whose every sale was cancelled is not a best seller at all.
    await eventually(async () => {
      const items = (await top('?days=1&limit=100')).items as Array<{ productId: number; soldQuantity: number }>;
      return items.find((i) => i.productId === p)?.soldQuantity === 300 && !items.some((i) => i.productId === gone);
    }, 'GET /products/top to show the cancellations');
  });
});
