import type pg from 'pg';
import { uuidV7 } from '@shop/application';
import { orderPaidEvent, paidOrder } from '@shop/domain';
import type { Attempt } from './closed-loop.ts';

/**
 * The textbook order transaction the hot-product target is measured against: lock the stock row
 * first, then do everything else one statement at a time, then commit. Its product lock is held
 * across about ten round trips. Benchmark-only: the service never runs this.
 */
export async function plainRowLockOrder(pool: pg.Pool, userId: number, productId: number): Promise<Attempt> {
  const c = await pool.connect();
  try {
    await c.query('BEGIN');
    const product = (await c.query<{ price: number; stock: number }>('SELECT price, stock FROM products WHERE id = $1 FOR UPDATE', [productId])).rows[0];
    if (!product) return rollback(c, 404, 'PRODUCT_NOT_FOUND');
    if (product.stock < 1) return rollback(c, 400, 'OUT_OF_STOCK');
    const balance = (await c.query<{ balance: number }>('SELECT balance FROM users WHERE id = $1 FOR UPDATE', [userId])).rows[0]!.balance;
    if (balance < product.price) return rollback(c, 400, 'INSUFFICIENT_BALANCE');
    const order = paidOrder({
      orderId: uuidV7.next(),
      userId,
      lines: [{ productId, quantity: 1, unitPrice: product.price, lineAmount: product.price }],
      couponId: null,
      discountAmount: 0,
      createdAt: new Date(),
    });
    const event = orderPaidEvent(uuidV7.next(), order);
    await c.query('UPDATE products SET stock = stock - 1, updated_at = $2 WHERE id = $1', [productId, order.createdAt]);
    await c.query('UPDATE users SET balance = balance - $2 WHERE id = $1', [userId, order.paidAmount]);
    await c.query(
      `INSERT INTO orders (id, user_id, status, total_amount, discount_amount, paid_amount, coupon_id, created_at)
       VALUES ($1, $2, 'PAID', $3, 0, $3, NULL, $4)`,
      [order.orderId, userId, order.paidAmount, order.createdAt],
    );
    await c.query(
      `INSERT INTO order_items (order_id, line_no, product_id, quantity, unit_price, line_amount) VALUES ($1, 1, $2, 1, $3, $3)`,
      [order.orderId, productId, product.price],
    );
    await c.query(
      `INSERT INTO balance_ledger (user_id, type, amount, balance_after, order_id, created_at) VALUES ($1, 'PAYMENT', $2, $3, $4, $5)`,
      [userId, -order.paidAmount, balance - order.paidAmount, order.orderId, order.createdAt],
    );
    await c.query(
      `INSERT INTO outbox_events (event_id, event_type, aggregate_id, payload, occurred_at) VALUES ($1, 'order.paid', $2, $3, $4)`,
      [event.eventId, order.orderId, JSON.stringify(event), order.createdAt],
    );
    await c.query('COMMIT');
    return { status: 201, code: '', isOrder: true };
  } catch (err) {
    await c.query('ROLLBACK').catch(() => undefined);
    throw err;
  } finally {
    c.release();
  }
}

async function rollback(c: pg.PoolClient, status: number, code: string): Promise<Attempt> {
  await c.query('ROLLBACK');
  return { status, code, isOrder: true };
}
