import { sql, type Kysely } from 'kysely';
import type { OrderBook } from '@shop/application';
import type { HeldCoupon, StockedProduct } from '@shop/domain';
import type { Database } from './schema.ts';
import { toHeldCoupon } from './rows.ts';

/** Raised by order_guard (migration 0004): the snapshot changed, nothing was written. */
const SNAPSHOT_CHANGED = 'OC001';

type HeldRow = Parameters<typeof toHeldCoupon>[0];
type JsonHeldRow = Omit<HeldRow, 'issued_at' | 'expires_at' | 'used_at'> & { issued_at: string; expires_at: string; used_at: string | null };

/** The OrderBook port: one unlocked read, and one guarded autocommit statement. */
export function pgOrderBook(db: Kysely<Database>): OrderBook {
  return {
    async snapshot(userId, productIds, couponId) {
      const { rows } = await sql<{ balance: number | null; products: StockedProduct[]; held: JsonHeldRow | null }>`
        SELECT
          (SELECT balance FROM users WHERE id = ${userId}) AS balance,
          (SELECT coalesce(json_agg(json_build_object('productId', id, 'price', price, 'stock', stock) ORDER BY id), '[]'::json)
             FROM products WHERE id = ANY(${productIds as number[]}::bigint[])) AS products,
          (SELECT json_build_object(
                    'user_id', uc.user_id, 'coupon_id', uc.coupon_id, 'issued_at', uc.issued_at,
                    'expires_at', uc.expires_at, 'used_at', uc.used_at, 'order_id', uc.order_id, 'name', c.name,
                    'discount_type', c.discount_type, 'discount_value', c.discount_value, 'min_order_amount', c.min_order_amount)
             FROM user_coupons uc JOIN coupons c ON c.id = uc.coupon_id
            WHERE uc.user_id = ${userId} AND uc.coupon_id = ${couponId}::bigint) AS held`.execute(db);
      const row = rows[0]!;
      const held: HeldCoupon | null = row.held
        ? toHeldCoupon({
            ...row.held,
            issued_at: new Date(row.held.issued_at),
            expires_at: new Date(row.held.expires_at),
            used_at: row.held.used_at === null ? null : new Date(row.held.used_at),
          })
        : null;
      return { balance: row.balance, products: row.products, held };
    },

    /**
     * One statement, so the rows are locked only while PostgreSQL runs it and commits — no
     * round trip to the service in between. Locks follow the global order (balance, coupon copy,
     * products by id): each step waits for the one before through its count, and the product rows
     * are taken ascending by a locking read before they change. In READ COMMITTED a row changed
     * by a concurrent order is re-read before its guard is judged, so the guards see the truth.
     */
    async placeIfUnchanged(order, event) {
      const items = order.items;
      const ids = items.map((i) => i.productId);
      const expectCoupon = order.couponId === null ? 0 : 1;
      try {
        await sql`
          WITH wallet AS (
            UPDATE users SET balance = balance - ${order.paidAmount}
            WHERE id = ${order.userId} AND balance >= ${order.paidAmount}
            RETURNING balance
          ), coupon AS (
            UPDATE user_coupons SET used_at = ${order.createdAt}, order_id = ${order.orderId}::uuid
            WHERE user_id = ${order.userId} AND coupon_id = ${order.couponId}::bigint AND used_at IS NULL
              AND (SELECT count(*) FROM wallet) = 1
            RETURNING coupon_id
          ), locked AS (
            SELECT id FROM products
            WHERE id = ANY(${ids}::bigint[])
              AND (SELECT count(*) FROM wallet) = 1 AND (SELECT count(*) FROM coupon) = ${expectCoupon}
            ORDER BY id
            FOR NO KEY UPDATE
          ), stock AS (
            UPDATE products AS p SET stock = p.stock - l.quantity, updated_at = ${order.createdAt}
            FROM locked k,
                 unnest(${ids}::bigint[], ${items.map((i) => i.quantity)}::int[], ${items.map((i) => i.unitPrice)}::bigint[])
                   AS l(id, quantity, price)
            WHERE p.id = k.id AND p.id = l.id AND p.stock >= l.quantity AND p.price = l.price
            RETURNING p.id
          ), placed AS (
            INSERT INTO orders (id, user_id, status, total_amount, discount_amount, paid_amount, coupon_id, created_at)
            VALUES (${order.orderId}::uuid, ${order.userId}, ${order.status}, ${order.totalAmount}, ${order.discountAmount},
                    ${order.paidAmount}, ${order.couponId}::bigint, ${order.createdAt})
          ), lines AS (
            INSERT INTO order_items (order_id, line_no, product_id, quantity, unit_price, line_amount)
            SELECT ${order.orderId}::uuid, l.n, l.product_id, l.quantity, l.unit_price, l.line_amount
            FROM unnest(${ids}::bigint[], ${items.map((i) => i.quantity)}::int[],
                        ${items.map((i) => i.unitPrice)}::bigint[], ${items.map((i) => i.lineAmount)}::bigint[])
                 WITH ORDINALITY AS l(product_id, quantity, unit_price, line_amount, n)
          ), ledger AS (
            INSERT INTO balance_ledger (user_id, type, amount, balance_after, order_id, created_at)
            SELECT ${order.userId}, 'PAYMENT', ${-order.paidAmount}, balance, ${order.orderId}::uuid, ${order.createdAt} FROM wallet
          ), outbox AS (
            INSERT INTO outbox_events (event_id, event_type, aggregate_id, payload, occurred_at)
            VALUES (${event.eventId}::uuid, ${event.type}, ${order.orderId}, ${JSON.stringify(event)}::jsonb, ${order.createdAt})
          )
          SELECT order_guard(
            (SELECT count(*) FROM wallet) = 1
            AND (SELECT count(*) FROM coupon) = ${expectCoupon}
            AND (SELECT count(*) FROM stock) = ${items.length}
          )`.execute(db);
        return true;
      } catch (err) {
        if ((err as { code?: string }).code === SNAPSHOT_CHANGED) return false;
        throw err;
      }
    },
  };
}
