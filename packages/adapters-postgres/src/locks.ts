import type { Kysely } from 'kysely';
import type { Database } from './schema.ts';
import { HELD_COUPON_COLUMNS } from './rows.ts';

/**
 * Every row lock the service takes, in the one order all transactions follow:
 *   users (balance) → coupons → user_coupons → products → orders (each by ascending key).
 * A use case may skip a step but never go back to an earlier one, so no lock cycle can form.
 * This is the one statement of that order: the order writer (`write_order_group` in
 * migrations/definitions) takes its locks in it too. Only a write that moves an order's status
 * locks the order row, after everything else, because nothing else waits on one; products come
 * late because a flash sale puts every buyer on one product row (ADR 0001).
 *
 * FOR NO KEY UPDATE rather than FOR UPDATE: we never change keys, and the weaker lock lets the
 * foreign-key checks of other transactions (KEY SHARE) proceed without waiting on a hot row.
 */

export async function lockCoupon(db: Kysely<Database>, couponId: number) {
  return db.selectFrom('coupons').selectAll().where('id', '=', couponId).forNoKeyUpdate().executeTakeFirst();
}

export async function lockUserCoupon(db: Kysely<Database>, userId: number, couponId: number) {
  return db
    .selectFrom('user_coupons as uc')
    .innerJoin('coupons as c', 'c.id', 'uc.coupon_id')
    .select(HELD_COUPON_COLUMNS)
    .where('uc.user_id', '=', userId)
    .where('uc.coupon_id', '=', couponId)
    .forNoKeyUpdate('uc')
    .executeTakeFirst();
}

export async function lockBalance(db: Kysely<Database>, userId: number) {
  const row = await db
    .selectFrom('users')
    .select('balance')
    .where('id', '=', userId)
    .forNoKeyUpdate()
    .executeTakeFirst();
  return row?.balance ?? null;
}
