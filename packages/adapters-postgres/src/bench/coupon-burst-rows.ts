import type pg from 'pg';
import { insertSelect, insertValues } from '../bulk-rows.ts';

/** bench:coupon's rows: users to issue to, and a FIXED coupon of `quantity` copies. */

/** `n` new users: their ids, ascending. */
export async function addUsers(pool: pg.Pool, n: number): Promise<number[]> {
  const { rows } = await pool.query<{ id: number }>(`${insertSelect('users', { name: `'u' || g` }, 'FROM generate_series(1, $1) g')} RETURNING id`, [n]);
  return rows.map((r) => r.id).sort((a, b) => a - b);
}

export async function addCoupon(pool: pg.Pool, name: string, quantity: number): Promise<number> {
  const coupon = { name: '$1', discount_type: "'FIXED'", discount_value: '1000', total_quantity: '$2', min_order_amount: '0', valid_days: '30' };
  return (await pool.query<{ id: number }>(insertValues('coupons', coupon, 'RETURNING id'), [name, quantity])).rows[0]!.id;
}

export const issuedQuantity = async (pool: pg.Pool, couponId: number): Promise<number> =>
  (await pool.query('SELECT issued_quantity FROM coupons WHERE id = $1', [couponId])).rows[0].issued_quantity;
