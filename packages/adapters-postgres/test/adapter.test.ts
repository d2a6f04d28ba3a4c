import { readdir } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { orderPaidEvent, paidOrder } from '@shop/domain';
import { uuidV7 } from '@shop/application';
import { auditInvariants, migrate, openDatabase, pgOutboxStore, pgReadStore, PgUnitOfWork } from '../src/index.ts';
import { createTestDatabase, type TestDatabase } from '../../../test/support/database.ts';

let tdb: TestDatabase;
let uow: PgUnitOfWork;

beforeAll(async () => {
  tdb = await createTestDatabase();
  uow = new PgUnitOfWork(tdb.db.kysely);
});
afterAll(async () => tdb?.drop());

async function seedUser(balance: number): Promise<number> {
  const [row] = await tdb.query<{ id: number }>('INSERT INTO users (name, balance) VALUES ($1, $2) RETURNING id', ['u', balance]);
  if (balance > 0) {
    await tdb.query(
      `INSERT INTO balance_ledger (user_id, type, amount, balance_after, created_at) VALUES ($1, 'CHARGE', $2, $2, now())`,
      [row!.id, balance],
    );
  }
  return row!.id;
}
async function seedProduct(price: number, stock: number): Promise<number> {
  const [row] = await tdb.query<{ id: number }>('INSERT INTO products (name, price, stock) VALUES ($1, $2, $3) RETURNING id', ['p', price, stock]);
  return row!.id;
}

describe('migrations', () => {
  test('are applied once even when several processes start together', async () => {
    const pools = [openDatabase({ connectionString: tdb.url }), openDatabase({ connectionString: tdb.url })];
    const applied = await Promise.all(pools.map((p) => migrate(p.pool)));
    await Promise.all(pools.map((p) => p.close()));
    expect(applied).toEqual([[], []]);
    const rows = await tdb.query<{ name: string }>('SELECT name FROM schema_migrations ORDER BY name');
    const files = (await readdir(new URL('../migrations/', import.meta.url))).filter((f) => f.endsWith('.sql')).sort();
    expect(rows.map((r) => r.name)).toEqual(files);
    expect(files[0]).toBe('0001_init.sql');
  });
});

describe('database constraints as the last line of defence', () => {
  test('refuse negative stock, negative or excessive balance and over-issued coupons', async () => {
    const productId = await seedProduct(100, 1);
    const userId = await seedUser(0);
    await expect(tdb.query('UPDATE products SET stock = -1 WHERE id = $1', [productId])).rejects.toThrow(/check/i);
    await expect(tdb.query('UPDATE users SET balance = -1 WHERE id = $1', [userId])).rejects.toThrow(/check/i);
    await expect(tdb.query('UPDATE users SET balance = 1000000000001 WHERE id = $1', [userId])).rejects.toThrow(/check/i);
    await expect(
      tdb.query(
        `INSERT INTO coupons (name, discount_type, discount_value, total_quantity, issued_quantity, valid_days)
         VALUES ('c', 'FIXED', 1, 1, 2, 1)`,
      ),
    ).rejects.toThrow(/check/i);
  });
});

const oneUnitOrder = (userId: number, productId: number) =>
  paidOrder({
    orderId: uuidV7.next(),
    userId,
    lines: [{ productId, quantity: 1, unitPrice: 1_000, lineAmount: 1_000 }],
    couponId: null,
    discountAmount: 0,
    createdAt: new Date(),
  });

describe('the paid-order write', () => {
  test('aborts, writing nothing, when the balance it finds differs from the locked decision', async () => {
    const userId = await seedUser(5_000);
    const productId = await seedProduct(1_000, 10);
    const order = oneUnitOrder(userId, productId);
    await expect(
      uow.run((tx) => tx.orders.recordPaid({ order, balanceAfter: 3_000, event: orderPaidEvent(uuidV7.next(), order) })),
    ).rejects.toThrow(/diverged/);
    expect(await tdb.query('SELECT stock FROM products WHERE id = $1', [productId])).toEqual([{ stock: 10 }]);
    expect(await tdb.query('SELECT balance FROM users WHERE id = $1', [userId])).toEqual([{ balance: 5_000 }]);
    expect(await tdb.query('SELECT id FROM orders WHERE user_id = $1', [userId])).toEqual([]);
    expect(await tdb.query('SELECT event_id FROM outbox_events WHERE aggregate_id = $1', [order.orderId])).toEqual([]);
  });

  test('a second event for the same order is refused', async () => {
    const userId = await seedUser(5_000);
    const productId = await seedProduct(1_000, 10);
    const order = oneUnitOrder(userId, productId);
    await uow.run((tx) => tx.orders.recordPaid({ order, balanceAfter: 4_000, event: orderPaidEvent(uuidV7.next(), order) }));
    await expect(
      tdb.query(
        `INSERT INTO outbox_events (event_id, event_type, aggregate_id, payload, occurred_at) VALUES ($1, 'order.paid', $2, '{}', now())`,
        [uuidV7.next(), order.orderId],
      ),
    ).rejects.toThrow(/unique|duplicate/i);
  });
});

describe('row locks', () => {
  test('products are returned in ascending id, unknown ids left out', async () => {
    const a = await seedProduct(1, 1);
    const b = await seedProduct(2, 2);
    const rows = await uow.run((tx) => tx.products.lockForUpdate([a, b, 999_999]));
    expect(rows).toEqual([
      { productId: a, price: 1, stock: 1 },
      { productId: b, price: 2, stock: 2 },
    ]);
  });

  test('an idempotency key cannot be claimed by a second transaction until the first ends', async () => {
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    let claimedFirst!: () => void;
    const firstClaimed = new Promise<void>((r) => (claimedFirst = r));
    const first = uow.run(async (tx) => {
      expect(await tx.idempotency.tryClaim(1, 'k')).toBe(true);
      claimedFirst();
      await held;
    });
    await firstClaimed;
    expect(await uow.run((tx) => tx.idempotency.tryClaim(1, 'k'))).toBe(false);
    expect(await uow.run((tx) => tx.idempotency.tryClaim(2, 'k'))).toBe(true);
    release();
    await first;
    expect(await uow.run((tx) => tx.idempotency.tryClaim(1, 'k'))).toBe(true);
  });
});

describe('read store pagination', () => {
  test('walks every product once, in id order, through opaque cursors', async () => {
    for (let i = 0; i < 7; i++) await seedProduct(10 * i, i);
    const reads = pgReadStore(tdb.db.kysely);
    const all = (await tdb.query<{ id: number }>('SELECT id FROM products ORDER BY id')).map((r) => r.id);
    const seen: number[] = [];
    let cursor: string | null = null;
    do {
      const page = await reads.products(3, cursor);
      seen.push(...page.items.map((p) => p.productId));
      cursor = page.nextCursor;
    } while (cursor !== null);
    expect(seen).toEqual(all);
  });

  test('refuses a cursor it did not make', async () => {
    const reads = pgReadStore(tdb.db.kysely);
    await expect(reads.products(3, 'not-a-cursor')).rejects.toMatchObject({ code: 'VALIDATION_ERROR' });
    await expect(reads.ordersOf(1, 3, Buffer.from('[1,2]').toString('base64url'))).rejects.toMatchObject({
      code: 'VALIDATION_ERROR',
    });
  });
});

describe('outbox retention', () => {
  test('delivered records older than the retention are purged; undelivered ones never are', async () => {
    const store = pgOutboxStore(tdb.db.kysely);
    const userId = await seedUser(5_000);
    const productId = await seedProduct(1_000, 10);
    const orders = [oneUnitOrder(userId, productId), oneUnitOrder(userId, productId)];
    let balance = 5_000;
    for (const order of orders) {
      balance -= 1_000;
      await uow.run((tx) => tx.orders.recordPaid({ order, balanceAfter: balance, event: orderPaidEvent(uuidV7.next(), order) }));
    }
    const [old, recent] = orders.map((o) => o.orderId);
    await tdb.query(`UPDATE outbox_events SET delivered_at = now() - interval '8 days' WHERE aggregate_id = $1`, [old]);
    await tdb.query(`UPDATE outbox_events SET created_at = now() - interval '9 days' WHERE aggregate_id = $1`, [recent]);
    expect(await store.purgeDelivered(new Date(Date.now() - 7 * 86_400_000))).toBe(1);
    const left = await tdb.query<{ aggregate_id: string }>('SELECT aggregate_id FROM outbox_events WHERE aggregate_id = ANY($1)', [[old, recent]]);
    expect(left).toEqual([{ aggregate_id: recent }]);
  });
});

describe('auditInvariants', () => {
  test('names each broken invariant, and passes again once repaired', async () => {
    // Its own database: the tests above leave rows that are deliberately incomplete.
    const outer = tdb;
    tdb = await createTestDatabase();
    try {
      const userId = await seedUser(5_000);
      const productId = await seedProduct(100, 10);
      expect(await auditInvariants(tdb.db.pool, new Map([[productId, 10]]))).toEqual([]);

      await tdb.query('UPDATE users SET balance = balance + 1 WHERE id = $1', [userId]);
      await tdb.query('UPDATE products SET stock = 9 WHERE id = $1', [productId]);
      const violations = await auditInvariants(tdb.db.pool, new Map([[productId, 10]]));
      expect(violations).toEqual([
        `user ${userId}: balance 5001, ledger sum 5000, last balanceAfter 5000`,
        `product ${productId}: stock 9 + sold 0 ≠ initial 10`,
      ]);

      await tdb.query('UPDATE users SET balance = balance - 1 WHERE id = $1', [userId]);
      await tdb.query('UPDATE products SET stock = 10 WHERE id = $1', [productId]);
      expect(await auditInvariants(tdb.db.pool, new Map([[productId, 10]]))).toEqual([]);
    } finally {
      await tdb.drop();
      tdb = outer;
    }
  });
});

describe('pgOrderBook', () => {
  test('the guarded write commits everything when its snapshot holds, and nothing when any part changed', async () => {
    const { pgOrderBook } = await import('../src/index.ts');
    const book = pgOrderBook(tdb.db.kysely);
    const userId = await seedUser(10_000);
    const productId = await seedProduct(1_000, 3);
    const seen = await book.snapshot(userId, [productId], null);
    expect(seen).toEqual({ balance: 10_000, products: [{ productId, price: 1_000, stock: 3 }], held: null });

    const orderFor = (quantity: number, unitPrice = 1_000) =>
      paidOrder({
        orderId: uuidV7.next(),
        userId,
        lines: [{ productId, quantity, unitPrice, lineAmount: unitPrice * quantity }],
        couponId: null,
        discountAmount: 0,
        createdAt: new Date(),
      });
    const place = (order: ReturnType<typeof orderFor>) => book.placeIfUnchanged(order, orderPaidEvent(uuidV7.next(), order));
    const count = async (table: string) => (await tdb.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${table}`))[0]!.n;
    const before = { orders: await count('orders'), ledger: await count('balance_ledger'), outbox: await count('outbox_events') };

    expect(await place(orderFor(4))).toBe(false); // stock 3
    expect(await place(orderFor(1, 900))).toBe(false); // the price is 1,000 now
    await tdb.query('UPDATE users SET balance = 500 WHERE id = $1', [userId]);
    expect(await place(orderFor(1))).toBe(false); // balance 500
    await tdb.query('UPDATE users SET balance = 10000 WHERE id = $1', [userId]);
    expect({ orders: await count('orders'), ledger: await count('balance_ledger'), outbox: await count('outbox_events') }).toEqual(before);
    expect((await book.snapshot(userId, [productId], null)).products[0]!.stock).toBe(3);

    const order = orderFor(3);
    expect(await place(order)).toBe(true);
    const [ledger] = await tdb.query<{ amount: number; balance_after: number }>(
      'SELECT amount, balance_after FROM balance_ledger WHERE order_id = $1',
      [order.orderId],
    );
    expect(ledger).toEqual({ amount: -3_000, balance_after: 7_000 });
    expect(await book.snapshot(userId, [productId], null)).toMatchObject({ balance: 7_000, products: [{ stock: 0 }] });
    expect(await count('outbox_events')).toBe(before.outbox + 1);
  });

  test('concurrent orders are written as one group: each keeps its own outcome, coupon uses included', async () => {
    const { pgOrderBook } = await import('../src/index.ts');
    const book = pgOrderBook(tdb.db.kysely, { writesInFlight: 1 });
    const [buyer, other] = [await seedUser(50_000), await seedUser(50_000)];
    const productId = await seedProduct(1_000, 10);
    const [coupon] = await tdb.query<{ id: number }>(
      `INSERT INTO coupons (name, discount_type, discount_value, total_quantity, valid_days) VALUES ('c', 'FIXED', 300, 5, 7) RETURNING id`,
    );
    await tdb.query(`UPDATE coupons SET issued_quantity = 1 WHERE id = $1`, [coupon!.id]);
    await tdb.query(`INSERT INTO user_coupons (user_id, coupon_id, issued_at, expires_at) VALUES ($1, $2, now(), now() + interval '7 days')`, [
      buyer,
      coupon!.id,
    ]);
    const make = (userId: number, unitPrice: number, couponId: number | null) =>
      paidOrder({
        orderId: uuidV7.next(),
        userId,
        lines: [{ productId, quantity: 1, unitPrice, lineAmount: unitPrice }],
        couponId,
        discountAmount: couponId === null ? 0 : 300,
        createdAt: new Date(),
      });
    const orders = [make(other, 1_000, null), make(buyer, 1_000, coupon!.id), make(other, 999, null), make(buyer, 1_000, coupon!.id)];
    // The first is written alone; the other three queue behind it and go as one group, in which
    // the stale price and the second use of the coupon fail alone.
    const placed = await Promise.all(orders.map((o) => book.placeIfUnchanged(o, orderPaidEvent(uuidV7.next(), o))));
    expect(placed).toEqual([true, true, false, false]);
    const [used] = await tdb.query<{ order_id: string }>('SELECT order_id FROM user_coupons WHERE user_id = $1', [buyer]);
    expect(used!.order_id).toBe(orders[1]!.orderId);
    expect((await book.snapshot(buyer, [productId], null)).balance).toBe(50_000 - 700);
    expect((await book.snapshot(other, [productId], null)).products[0]!.stock).toBe(8);
    const written = await tdb.query<{ id: string }>('SELECT id FROM orders WHERE id = ANY($1::uuid[])', [orders.map((o) => o.orderId)]);
    expect(written.map((r) => r.id).sort()).toEqual([orders[0]!.orderId, orders[1]!.orderId].sort());
  });

  test('when a group write fails, it asks which orders exist instead of failing them all', async () => {
    const { pgOrderBook } = await import('../src/index.ts');
    // A pool whose statements give up after 300 ms, and a product row held by another session.
    const impatient = openDatabase({ connectionString: tdb.url, max: 2, statementTimeoutMs: 300 });
    const book = pgOrderBook(impatient.kysely);
    const userId = await seedUser(10_000);
    const productId = await seedProduct(1_000, 5);
    const holder = await tdb.db.pool.connect();
    await holder.query('BEGIN');
    await holder.query('SELECT 1 FROM products WHERE id = $1 FOR UPDATE', [productId]);
    try {
      const order = paidOrder({
        orderId: uuidV7.next(),
        userId,
        lines: [{ productId, quantity: 1, unitPrice: 1_000, lineAmount: 1_000 }],
        couponId: null,
        discountAmount: 0,
        createdAt: new Date(),
      });
      // Cancelled by statement_timeout while waiting for the row: not written, so "not placed"
      // (the service then runs the locking transaction), rather than an error.
      expect(await book.placeIfUnchanged(order, orderPaidEvent(uuidV7.next(), order))).toBe(false);
      expect(await tdb.query('SELECT 1 FROM orders WHERE id = $1', [order.orderId])).toEqual([]);
    } finally {
      await holder.query('ROLLBACK');
      holder.release();
      await impatient.close();
    }
  });
});
