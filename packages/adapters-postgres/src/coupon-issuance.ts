import { sql, type Kysely } from 'kysely';
import type { CouponIssuance } from '@shop/application';
import type { Database } from './schema.ts';
import { toCoupon, toHeldCoupon } from './rows.ts';

const UNIQUE_VIOLATION = '23505';
const FOREIGN_KEY_VIOLATION = '23503';

export function pgCouponIssuance(db: Kysely<Database>): CouponIssuance {
  return {
    async peek(couponId, userId) {
      const row = await db
        .selectFrom('coupons as c')
        .selectAll('c')
        .select((eb) => [
          eb.exists(eb.selectFrom('user_coupons').select('user_id').where('user_id', '=', userId).where('coupon_id', '=', couponId)).as('held'),
          eb.exists(eb.selectFrom('users').select('id').where('id', '=', userId)).as('user_exists'),
        ])
        .where('c.id', '=', couponId)
        .executeTakeFirst();
      return row ? { coupon: toCoupon(row), held: row.held === true, userExists: row.user_exists === true } : null;
    },

    async tryIssue(couponId, userId, now, expiresAt) {
      // One autocommitted statement: the coupon row is locked only while it runs and commits.
      // If the user's copy already exists, the INSERT fails and takes the count back with it.
      // Only the count can have moved since the caller decided: a coupon's window is fixed.
      try {
        const { rows } = await sql<Parameters<typeof toHeldCoupon>[0]>`
          WITH counted AS (
            UPDATE coupons SET issued_quantity = issued_quantity + 1
            WHERE id = ${couponId} AND issued_quantity < total_quantity
            RETURNING id, name, discount_type, discount_value, min_order_amount
          ), held AS (
            INSERT INTO user_coupons (user_id, coupon_id, issued_at, expires_at)
            SELECT ${userId}, id, ${now}, ${expiresAt} FROM counted
            RETURNING user_id, coupon_id, issued_at, expires_at, used_at, order_id
          )
          SELECT held.*, counted.name, counted.discount_type, counted.discount_value, counted.min_order_amount
          FROM held, counted`.execute(db);
        return rows[0] ? { kind: 'issued', held: toHeldCoupon(rows[0]) } : { kind: 'not-issuable' };
      } catch (err) {
        const code = (err as { code?: string }).code;
        if (code === UNIQUE_VIOLATION) return { kind: 'already-issued' };
        if (code === FOREIGN_KEY_VIOLATION) return { kind: 'not-issuable' };
        throw err;
      }
    },
  };
}
