import type pg from 'pg';
import { insertSelect, insertValues } from '../bulk-rows.ts';
import { countRows } from './probes.ts';

/** bench:top's rows: a month of paid orders to set the rollup-backed best-seller query against the plain aggregate it replaces. */

const paidOrder = (id: string, amount: number, createdAt: string) =>
  ({ id, user_id: '1', status: "'PAID'", total_amount: `${amount}`, discount_amount: '0', paid_amount: `${amount}`, coupon_id: 'NULL', created_at: createdAt });

/** One buyer, `products` products and orders of `itemsPerOrder` items, `items` in all: the order items written. */
export async function loadSalesMonth(pool: pg.Pool, o: { items: number; products: number; itemsPerOrder: number }): Promise<number> {
  await pool.query(insertValues('users', { name: "'bench'", balance: '0' }));
  await pool.query(insertSelect('products', { name: `'product ' || g`, price: '1000 + g', stock: '1000000' }, 'FROM generate_series(1, $1) g'), [o.products]);
  // Skewed popularity (a few products sell far more), created uniformly over the last 30 days;
  // an order's lines are distinct products.
  await pool.query(
    `CREATE TEMP TABLE bench_orders AS
     SELECT (md5(g::text)::uuid) AS id, now() - random() * interval '30 days' AS created_at, floor(power(random(), 3) * $2)::int AS base
     FROM generate_series(1, $1) g`,
    [Math.ceil(o.items / o.itemsPerOrder), o.products],
  );
  await pool.query(insertSelect('orders', paidOrder('id', 3000, 'created_at'), 'FROM bench_orders'));
  const item = { order_id: 'o.id', line_no: 'n', product_id: '1 + (o.base + (n - 1) * 337) % $2', quantity: '2', unit_price: '1000', line_amount: '2000' };
  await pool.query(insertSelect('order_items', item, 'FROM bench_orders o, generate_series(1, $1) n'), [o.itemsPerOrder, o.products]);
  await pool.query('ANALYZE');
  return countRows(pool, 'order_items');
}

/** `n` paid orders placed now, without items: what a refresh of the rollup finds during a sale. */
export const addFreshOrders = (pool: pg.Pool, n: number) =>
  pool.query(insertSelect('orders', paidOrder('uuid_v7()', 1000, 'now()'), 'FROM generate_series(1, $1)'), [n]);

/** The plain index-backed aggregate the rollup replaced. */
export const plainTopSellers = (pool: pg.Pool, since: Date, limit: number) =>
  pool.query(
    `SELECT i.product_id, sum(i.quantity)::bigint AS sold
     FROM orders o JOIN order_items i ON i.order_id = o.id
     WHERE o.status = 'PAID' AND o.created_at >= $1
     GROUP BY i.product_id ORDER BY sold DESC, i.product_id LIMIT $2`,
    [since, limit],
  );
