import type pg from 'pg';
import { insertValues, openDatabase, pgOrderBook, pgReadStore, PgUnitOfWork } from '@shop/adapters-postgres';
import { placeOrder, systemClock, uuidV7 } from '@shop/application';
import { isDomainError, orderPaidEvent, paidOrder } from '@shop/domain';
import { serveOnePlan } from './children.ts';
import { closedLoop, type Attempt } from './closed-loop.ts';
import type { CeilingPlan } from './protocol.ts';
import { pick, seededRandom, uniformItems } from './stats.ts';

/**
 * The ceilings from one Node process, with as many concurrent callers as the HTTP load has
 * connections sharing a pool as large as the service's, and no HTTP, JSON or auth in between:
 * - service-sql: the service's order use case over the Postgres adapter, the same SQL;
 * - plain-row-lock: the textbook transaction below (pgbench's hot script, statement for statement).
 */
async function run(plan: CeilingPlan) {
  const db = openDatabase({ connectionString: plan.databaseUrl, max: plan.poolSize, applicationName: 'bench-ceiling' });
  const book = pgOrderBook(db.kysely, { writesInFlight: plan.orderWrites });
  const deps = { uow: new PgUnitOfWork(db.kysely), book, reads: pgReadStore(db.kysely), clock: systemClock, ids: uuidV7 };
  const rand = seededRandom(plan.seed);
  const serviceSql = async (userId: number, items: Array<{ productId: number; quantity: number }>): Promise<Attempt> => {
    try {
      await placeOrder(deps, { actor: { role: 'user', userId }, userId, items });
      return { status: 201, code: '', kind: 1 };
    } catch (err) {
      if (!isDomainError(err)) throw err;
      return { status: ['USER_NOT_FOUND', 'PRODUCT_NOT_FOUND'].includes(err.code) ? 404 : 400, code: err.code, kind: 1 };
    }
  };
  const attempt = (): Promise<Attempt> => {
    const userId = pick(rand, plan.userIds);
    if (plan.productIds.length > 1) return serviceSql(userId, uniformItems(rand, plan.productIds));
    const productId = plan.productIds[0]!;
    return plan.variant === 'plain-row-lock' ? plainRowLockOrder(db.pool, userId, productId) : serviceSql(userId, [{ productId, quantity: 1 }]);
  };
  // Every connection open before measuring, as the service's pool and the load's sockets are.
  await Promise.all(Array.from({ length: plan.poolSize }, () => db.pool.query('SELECT 1')));
  const result = await closedLoop(plan.shape, plan.connections, attempt);
  await db.close();
  return result;
}

const PAID_ORDER = insertValues('orders', {
  id: '$1', user_id: '$2', status: "'PAID'", total_amount: '$3', discount_amount: '0', paid_amount: '$3', coupon_id: 'NULL', created_at: '$4',
});
const ONE_ITEM = insertValues('order_items', { order_id: '$1', line_no: '1', product_id: '$2', quantity: '1', unit_price: '$3', line_amount: '$3' });
const PAYMENT = insertValues('balance_ledger', {
  user_id: '$1', type: "'PAYMENT'", amount: '$2', balance_after: '$3', order_id: '$4', created_at: '$5',
});
const EVENT = insertValues('outbox_events', { event_id: '$1', event_type: "'order.paid'", aggregate_id: '$2', payload: '$3', occurred_at: '$4' });

/**
 * The textbook order transaction the hot-product target is measured against: the stock row locked
 * first, then everything else one statement at a time, then COMMIT, so the product's lock is held
 * across about ten round trips. Benchmark-only: the service never runs this.
 */
async function plainRowLockOrder(pool: pg.Pool, userId: number, productId: number): Promise<Attempt> {
  const c = await pool.connect();
  const refuse = async (status: number, code: string): Promise<Attempt> => {
    await c.query('ROLLBACK');
    return { status, code, kind: 1 };
  };
  try {
    await c.query('BEGIN');
    const product = (await c.query<{ price: number; stock: number }>('SELECT price, stock FROM products WHERE id = $1 FOR UPDATE', [productId])).rows[0];
    if (!product) return await refuse(404, 'PRODUCT_NOT_FOUND');
    if (product.stock < 1) return await refuse(400, 'OUT_OF_STOCK');
    const balance = (await c.query<{ balance: number }>('SELECT balance FROM users WHERE id = $1 FOR UPDATE', [userId])).rows[0]!.balance;
    if (balance < product.price) return await refuse(400, 'INSUFFICIENT_BALANCE');
    const line = { productId, quantity: 1, unitPrice: product.price, lineAmount: product.price };
    const order = paidOrder({ orderId: uuidV7.next(), userId, lines: [line], couponId: null, discountAmount: 0, createdAt: new Date() });
    const event = orderPaidEvent(uuidV7.next(), order);
    await c.query('UPDATE products SET stock = stock - 1, updated_at = $2 WHERE id = $1', [productId, order.createdAt]);
    await c.query('UPDATE users SET balance = balance - $2 WHERE id = $1', [userId, order.paidAmount]);
    await c.query(PAID_ORDER, [order.orderId, userId, order.paidAmount, order.createdAt]);
    await c.query(ONE_ITEM, [order.orderId, productId, product.price]);
    await c.query(PAYMENT, [userId, -order.paidAmount, balance - order.paidAmount, order.orderId, order.createdAt]);
    await c.query(EVENT, [event.eventId, order.orderId, JSON.stringify(event), order.createdAt]);
    await c.query('COMMIT');
    return { status: 201, code: '', kind: 1 };
  } catch (err) {
    await c.query('ROLLBACK').catch(() => undefined);
    throw err;
  } finally {
    c.release();
  }
}

serveOnePlan('ceiling process', run);
