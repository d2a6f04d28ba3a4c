import { sql, type Kysely } from 'kysely';
import { keyState, type CompletedKey, type Transaction } from '@shop/application';
import type { Database } from './schema.ts';
import { lockBalance, lockCoupon, lockUserCoupon } from './locks.ts';
import { toCoupon, toHeldCoupon, toProduct } from './rows.ts';

/** The Transaction port over one Kysely transaction. */
export function pgTransaction(db: Kysely<Database>): Transaction {
  return {
    users: {
      async exists(userId) {
        return (await db.selectFrom('users').select('id').where('id', '=', userId).executeTakeFirst()) !== undefined;
      },
      async create(name) {
        const row = await db.insertInto('users').values({ name }).returning(['id', 'name', 'balance']).executeTakeFirstOrThrow();
        return { userId: row.id, name: row.name, balance: row.balance };
      },
    },
    products: {
      async create(input) {
        const row = await db.insertInto('products').values(input).returningAll().executeTakeFirstOrThrow();
        return toProduct(row);
      },
      async update(productId, change) {
        if (change.price === undefined && change.stock === undefined) {
          const row = await db.selectFrom('products').selectAll().where('id', '=', productId).executeTakeFirst();
          return row ? toProduct(row) : null;
        }
        const row = await db
          .updateTable('products')
          .set({ ...change, updated_at: sql`now()` })
          .where('id', '=', productId)
          .returningAll()
          .executeTakeFirst();
        return row ? toProduct(row) : null;
      },
    },
    coupons: {
      async create(c) {
        const row = await db
          .insertInto('coupons')
          .values({
            name: c.name,
            discount_type: c.discountType,
            discount_value: c.discountValue,
            total_quantity: c.totalQuantity,
            min_order_amount: c.minOrderAmount,
            issue_starts_at: c.issueStartsAt,
            issue_ends_at: c.issueEndsAt,
            valid_days: c.validDays,
          })
          .returningAll()
          .executeTakeFirstOrThrow();
        return toCoupon(row);
      },
      async lockCoupon(couponId) {
        const row = await lockCoupon(db, couponId);
        return row ? toCoupon(row) : null;
      },
      async lockHeld(userId, couponId) {
        const row = await lockUserCoupon(db, userId, couponId);
        return row ? toHeldCoupon(row) : null;
      },
      async issue(couponId, userId, issuedAt, expiresAt) {
        const { rows } = await sql<Parameters<typeof toHeldCoupon>[0]>`
          WITH counted AS (
            UPDATE coupons SET issued_quantity = issued_quantity + 1 WHERE id = ${couponId}
            RETURNING id, name, discount_type, discount_value, min_order_amount
          ), held AS (
            INSERT INTO user_coupons (user_id, coupon_id, issued_at, expires_at)
            VALUES (${userId}, ${couponId}, ${issuedAt}, ${expiresAt})
            RETURNING user_id, coupon_id, issued_at, expires_at, used_at, order_id
          )
          SELECT held.*, counted.name, counted.discount_type, counted.discount_value, counted.min_order_amount
          FROM held, counted`.execute(db);
        return toHeldCoupon(rows[0]!);
      },
    },
    balances: {
      lock: (userId) => lockBalance(db, userId),
      async record(userId, entry) {
        const { rows } = await sql<{ balance: number }>`
          WITH moved AS (
            UPDATE users SET balance = balance + ${entry.amount} WHERE id = ${userId} RETURNING id, balance
          ), entry AS (
            INSERT INTO balance_ledger (user_id, type, amount, balance_after, order_id, created_at)
            SELECT id, ${entry.type}, ${entry.amount}, balance, ${entry.orderId}::uuid, ${entry.createdAt} FROM moved
          )
          SELECT balance FROM moved`.execute(db);
        if (rows[0]?.balance !== entry.balanceAfter) {
          throw new Error(`balance of user ${userId} diverged from its locked read: ${rows[0]?.balance} vs ${entry.balanceAfter}`);
        }
      },
    },
    idempotency: {
      async claim(userId, key) {
        // key_state's claim is transaction-scoped: held from here to this transaction's end.
        const { rows } = await sql<{ completed: CompletedKey | null; key_free: boolean }>`
          SELECT completed, key_free FROM key_state(${userId}::bigint, ${key}::text)`.execute(db);
        return keyState(rows[0]!.completed, !rows[0]!.key_free);
      },
      async save(userId, key, fingerprint, result) {
        await db
          .insertInto('idempotency_keys')
          .values({ user_id: userId, key, fingerprint, result: JSON.stringify(result) })
          .execute();
      },
    },
  };
}
