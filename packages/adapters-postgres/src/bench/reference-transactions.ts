import type pg from 'pg';
import { uuidV7 } from '@shop/application';
import { orderPaidEvent, paidOrder } from '@shop/domain';
import { insertValues } from '../bulk-rows.ts';

/** The transactions the service is measured against. The service never runs these. */

const PLAIN_ORDER = [
  insertValues('orders', {
    id: '$1', user_id: '$2', status: "'PAID'", total_amount: '$3', discount_amount: '0', paid_amount: '$3', coupon_id: 'NULL', created_at: '$4',
  }),
  insertValues('order_items', { order_id: '$1', line_no: '1', product_id: '$2', quantity: '1', unit_price: '$3', line_amount: '$3' }),
  insertValues('balance_ledger', { user_id: '$1', type: "'PAYMENT'", amount: '$2', balance_after: '$3', order_id: '$4', created_at: '$5' }),
  insertValues('outbox_events', { event_id: '$1', event_type: "'order.paid'", aggregate_id: '$2', payload: '$3', occurred_at: '$4' }),
] as const;

export type PlainOrderOutcome = 'PLACED' | 'PRODUCT_NOT_FOUND' | 'OUT_OF_STOCK' | 'INSUFFICIENT_BALANCE';

/**
 * The textbook order transaction the hot product is measured against (pgbench's hot script,
 * statement for statement): the stock row locked first, then everything else one statement at a
 * time, so the product's lock is held across about ten round trips.
 */
export async function plainRowLockOrder(pool: pg.Pool, userId: number, productId: number): Promise<PlainOrderOutcome> {
  const c = await pool.connect();
  const refuse = async (code: PlainOrderOutcome) => {
    await c.query('ROLLBACK');
    return code;
  };
  try {
    await c.query('BEGIN');
    const product = (await c.query<{ price: number; stock: number }>('SELECT price, stock FROM products WHERE id = $1 FOR UPDATE', [productId])).rows[0];
    if (!product) return await refuse('PRODUCT_NOT_FOUND');
    if (product.stock < 1) return await refuse('OUT_OF_STOCK');
    const balance = (await c.query<{ balance: number }>('SELECT balance FROM users WHERE id = $1 FOR UPDATE', [userId])).rows[0]!.balance;
    if (balance < product.price) return await refuse('INSUFFICIENT_BALANCE');
    const line = { productId, quantity: 1, unitPrice: product.price, lineAmount: product.price };
    const o = paidOrder({ orderId: uuidV7.next(), userId, lines: [line], couponId: null, discountAmount: 0, createdAt: new Date() });
    const event = orderPaidEvent(uuidV7.next(), o);
    await c.query('UPDATE products SET stock = stock - 1, updated_at = $2 WHERE id = $1', [productId, o.createdAt]);
    await c.query('UPDATE users SET balance = balance - $2 WHERE id = $1', [userId, o.paidAmount]);
    await c.query(PLAIN_ORDER[0], [o.orderId, userId, o.paidAmount, o.createdAt]);
    await c.query(PLAIN_ORDER[1], [o.orderId, productId, product.price]);
    await c.query(PLAIN_ORDER[2], [userId, -o.paidAmount, balance - o.paidAmount, o.orderId, o.createdAt]);
    await c.query(PLAIN_ORDER[3], [event.eventId, o.orderId, JSON.stringify(event), o.createdAt]);
    await c.query('COMMIT');
    return 'PLACED';
  } catch (err) {
    await c.query('ROLLBACK').catch(() => undefined);
    throw err;
  } finally {
    c.release();
  }
}

const ISSUE = insertValues('user_coupons', { user_id: '$1', coupon_id: '$2', issued_at: 'now()', expires_at: "now() + interval '30 days'" });

/**
 * "Lock first" coupon issuance: BEGIN; SELECT … FOR UPDATE the coupon; check; count; insert;
 * COMMIT — every request, winner or loser, queues on the coupon row. Whether it issued a copy.
 */
export async function lockFirstIssue(pool: pg.Pool, couponId: number, userId: number): Promise<boolean> {
  const c = await pool.connect();
  try {
    await c.query('BEGIN');
    const coupon = (await c.query('SELECT issued_quantity, total_quantity FROM coupons WHERE id = $1 FOR UPDATE', [couponId])).rows[0];
    const held = await c.query('SELECT 1 FROM user_coupons WHERE user_id = $1 AND coupon_id = $2', [userId, couponId]);
    if (coupon.issued_quantity >= coupon.total_quantity || held.rowCount) {
      await c.query('ROLLBACK');
      return false;
    }
    await c.query('UPDATE coupons SET issued_quantity = issued_quantity + 1 WHERE id = $1', [couponId]);
    await c.query(ISSUE, [userId, couponId]);
    await c.query('COMMIT');
    return true;
  } finally {
    c.release();
  }
}

/**
 * A transaction holding a product's row lock until released: pgbench's hot clients all queue on
 * it, so that their race starts together. release(true) commits, release(false) rolls back.
 */
export async function holdProductRow(pool: pg.Pool, productId: number) {
  const c = await pool.connect();
  await c.query('BEGIN');
  await c.query('SELECT 1 FROM products WHERE id = $1 FOR UPDATE', [productId]);
  return {
    async release(commit: boolean) {
      await c.query(commit ? 'COMMIT' : 'ROLLBACK').catch((err) => {
        if (commit) throw err;
      });
      c.release();
    },
  };
}
