import { sql, type RawBuilder } from 'kysely';
import type { Coupon, HeldCoupon, Order } from '@shop/domain';
import type { Product } from '@shop/application';

/** Row → domain mappers shared by the transactional and the read side. */

/** user_coupons as uc joined with coupons as c: what a held coupon is made of. */
export const HELD_COUPON_COLUMNS = [
  'uc.user_id',
  'uc.coupon_id',
  'uc.issued_at',
  'uc.expires_at',
  'uc.used_at',
  'uc.order_id',
  'c.name',
  'c.discount_type',
  'c.discount_value',
  'c.min_order_amount',
] as const;

export const toProduct = (r: { id: number; name: string; price: number; stock: number }): Product => ({
  productId: r.id,
  name: r.name,
  price: r.price,
  stock: r.stock,
});

export const toCoupon = (r: {
  id: number;
  name: string;
  discount_type: 'FIXED' | 'RATE';
  discount_value: number;
  total_quantity: number;
  issued_quantity: number;
  min_order_amount: number;
  issue_starts_at: Date | null;
  issue_ends_at: Date | null;
  valid_days: number;
}): Coupon => ({
  couponId: r.id,
  name: r.name,
  discountType: r.discount_type,
  discountValue: r.discount_value,
  totalQuantity: r.total_quantity,
  issuedQuantity: r.issued_quantity,
  minOrderAmount: r.min_order_amount,
  issueStartsAt: r.issue_starts_at,
  issueEndsAt: r.issue_ends_at,
  validDays: r.valid_days,
});

export const toHeldCoupon = (r: {
  user_id: number;
  coupon_id: number;
  issued_at: Date;
  expires_at: Date;
  used_at: Date | null;
  order_id: string | null;
  name: string;
  discount_type: 'FIXED' | 'RATE';
  discount_value: number;
  min_order_amount: number;
}): HeldCoupon => ({
  couponId: r.coupon_id,
  userId: r.user_id,
  name: r.name,
  discountType: r.discount_type,
  discountValue: r.discount_value,
  minOrderAmount: r.min_order_amount,
  issuedAt: r.issued_at,
  expiresAt: r.expires_at,
  usedAt: r.used_at,
  orderId: r.order_id,
});

export interface OrderRow {
  id: string;
  user_id: number;
  status: Order['status'];
  total_amount: number;
  discount_amount: number;
  paid_amount: number;
  coupon_id: number | null;
  created_at: Date;
  cancelled_at: Date | null;
  refunded_amount: number;
  items: Order['items'];
}

export const toOrder = (r: OrderRow): Order => ({
  orderId: r.id,
  userId: r.user_id,
  status: r.status,
  items: r.items,
  totalAmount: r.total_amount,
  discountAmount: r.discount_amount,
  paidAmount: r.paid_amount,
  couponId: r.coupon_id,
  createdAt: r.created_at,
  cancelledAt: r.cancelled_at,
  refundedAmount: r.refunded_amount,
});

/**
 * The items of one order, as the domain lists them; `orderId`: its id. Given as a value (a statement
 * parameter), order_items is pruned to that id's month as the statement is planned. As `o.id` of
 * each row (a page of orders) it is not: the plan covers every month and the executor prunes per
 * row, which for one order costs PostgreSQL 15 about 1.3 ms of planning at a year of history against
 * 0.16 ms (migration 0014; EXPLAIN in docs/scaling.md).
 */
export const itemsJson = (orderId: RawBuilder<unknown>, within?: IdRange) => sql<OrderRow['items']>`(
  SELECT coalesce(json_agg(json_build_object(
           'productId', i.product_id, 'quantity', i.quantity,
           'unitPrice', i.unit_price, 'lineAmount', i.line_amount, 'refundedQuantity', i.refunded_quantity) ORDER BY i.line_no), '[]'::json)
  FROM order_items i WHERE i.order_id = ${orderId}${within ? sql` AND i.order_id BETWEEN ${within[0]}::uuid AND ${within[1]}::uuid` : sql``})`;

/** [lowest, highest] order id of a set of orders: as values, the months a statement on them is planned over. */
export type IdRange = readonly [string, string];

/** The items of each order aliased `o`, for lists: planned over the months of `within`, or over every month without it. */
export const itemsOfEach = (within?: IdRange) => itemsJson(sql.ref('o.id'), within);

/** An OrderRow's columns of the order `orderId` aliased `o`, for raw statements (the read store builds its own with Kysely). */
export const orderColumns = (orderId: string) => sql`o.id, o.user_id, o.status, o.total_amount, o.discount_amount, o.paid_amount, o.coupon_id,
  o.created_at, o.cancelled_at, o.refunded_amount, ${itemsJson(sql`${orderId}::uuid`)} AS items`;
