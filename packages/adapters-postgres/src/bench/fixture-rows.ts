import type pg from 'pg';
import { insertSelect, insertValues } from '../bulk-rows.ts';

/**
 * The benchmark's fixtures (pnpm bench's users, products and coupons; bench:coupon's users and
 * coupon), written straight into the tables as the admin API would write them, a statement each.
 */

const ids = (rows: Array<{ id: string | number }>) => rows.map((r) => Number(r.id)).sort((a, b) => a - b);

/** `n` new users named `${prefix} 1…n`, each charged `charge` won with its CHARGE ledger entry (none at 0): their ids, ascending. */
export async function addUsers(pool: pg.Pool, n: number, prefix = 'u', charge = 0): Promise<number[]> {
  const users = insertSelect('users', { name: `$2 || ' ' || g`, balance: '$3' }, 'FROM generate_series(1, $1::int) g ORDER BY g RETURNING id, balance');
  const charges = insertSelect('balance_ledger', {
    user_id: 'id', type: "'CHARGE'", amount: 'balance', balance_after: 'balance', created_at: 'now()',
  }, 'FROM u WHERE balance > 0 ORDER BY id');
  return ids((await pool.query(`WITH u AS (${users}), charged AS (${charges}) SELECT id FROM u`, [n, prefix, charge])).rows);
}

/** Products of these names, prices and stock, created in this order: their ids, ascending. */
export async function addProducts(pool: pg.Pool, rows: ReadonlyArray<{ name: string; price: number; stock: number }>): Promise<number[]> {
  const from = 'FROM unnest($1::text[], $2::bigint[], $3::bigint[]) WITH ORDINALITY AS p (name, price, stock, i) ORDER BY i RETURNING id';
  const values = [rows.map((r) => r.name), rows.map((r) => r.price), rows.map((r) => r.stock)];
  return ids((await pool.query(insertSelect('products', { name: 'name', price: 'price', stock: 'stock' }, from), values)).rows);
}

/** A coupon of `quantity` copies, FIXED 1,000 won unless told otherwise, valid 30 days once issued: its id. */
export async function addCoupon(pool: pg.Pool, name: string, quantity: number, discount = { type: 'FIXED', value: 1000 }): Promise<number> {
  const coupon = { name: '$1', discount_type: '$3', discount_value: '$4', total_quantity: '$2', min_order_amount: '0', valid_days: '30' };
  return Number((await pool.query(insertValues('coupons', coupon, 'RETURNING id'), [name, quantity, discount.type, discount.value])).rows[0].id);
}

/** A copy of the coupon to each user, as an operator's grant: issued now, valid its valid_days, counted as issued. */
export async function grantCoupon(pool: pg.Pool, couponId: number, userIds: readonly number[]): Promise<void> {
  const copies = insertSelect('user_coupons', {
    user_id: 'u', coupon_id: 'c.id', issued_at: 'now()', expires_at: "now() + c.valid_days * interval '1 day'",
  }, 'FROM coupons c, unnest($2::bigint[]) u WHERE c.id = $1 RETURNING 1');
  await pool.query(`WITH g AS (${copies}) UPDATE coupons SET issued_quantity = issued_quantity + (SELECT count(*) FROM g) WHERE id = $1`, [couponId, userIds]);
}

export const issuedQuantity = async (pool: pg.Pool, couponId: number): Promise<number> =>
  (await pool.query('SELECT issued_quantity FROM coupons WHERE id = $1', [couponId])).rows[0].issued_quantity;
