import { DomainError } from './errors.ts';
import type { Won } from './money.ts';
import { refundedUnits, type Order } from './order.ts';
import type { WriteGuard } from './write-guard.ts';

/** How long a paid order may be cancelled or refunded when configuration says nothing (ORDER_CANCEL_DAYS). */
export const DEFAULT_CANCEL_DAYS = 7;
const DAY_MS = 86_400_000;

/** What a cancellation or a refund gives back to one product. */
export interface Restock {
  readonly productId: number;
  readonly quantity: number;
}

/** A decided cancellation: the order as it becomes, and everything it gives back. */
export interface Cancellation {
  readonly order: Order;
  /** Credited to the order's user: what the order took from the balance and no refund gave back yet. */
  readonly refund: Won;
  /** The units not refunded yet, in the order's line order. */
  readonly restock: readonly Restock[];
  /** The coupon whose copy becomes usable again; null for an order without one. */
  readonly releasedCoupon: number | null;
  /**
   * The order is still as decided on and still holds its coupon copy. Nothing else can refuse it:
   * a refund is never refused by the balance cap, and restored stock has no upper bound to break.
   */
  readonly guard: WriteGuard;
}

/**
 * Who may still change an order, by cancelling or refunding it: one not CANCELLED, placed at most
 * `windowDays` days before `now`.
 */
export function assertChangeable(order: Order, now: Date, windowDays: number): void {
  if (order.status === 'CANCELLED') {
    throw new DomainError('ORDER_NOT_CANCELLABLE', `order ${order.orderId} is already cancelled`);
  }
  if (now.getTime() - order.createdAt.getTime() > windowDays * DAY_MS) {
    throw new DomainError(
      'ORDER_NOT_CANCELLABLE',
      `order ${order.orderId} was placed more than ${windowDays} days ago; only newer orders can be cancelled or refunded`,
    );
  }
}

/** The guard of a change to an existing order: it is still as `order` shows it, its coupon copy still held by it. */
export function changeGuard(order: Order, guardCoupon: boolean): WriteGuard {
  return {
    userId: order.userId,
    balanceAtLeast: 0,
    stock: [],
    order: { status: order.status, refundedUnits: refundedUnits(order) },
    coupon: guardCoupon && order.couponId !== null ? { couponId: order.couponId, heldBy: order.orderId } : null,
  };
}

/** The order once every unit is back: CANCELLED, its whole payment refunded. */
export function fullyRefunded(order: Order, at: Date): Order {
  return {
    ...order,
    status: 'CANCELLED',
    cancelledAt: at,
    refundedAmount: order.paidAmount,
    items: order.items.map((l) => ({ ...l, refundedQuantity: l.quantity })),
  };
}

/**
 * The whole rule of a cancellation: a changeable order becomes CANCELLED and gives back what
 * placing it took and no refund gave back yet (stock, payment, and the coupon copy).
 */
export function decideCancellation(order: Order, now: Date, windowDays: number): Cancellation {
  assertChangeable(order, now, windowDays);
  return {
    order: fullyRefunded(order, now),
    refund: order.paidAmount - order.refundedAmount,
    restock: order.items
      .filter((l) => l.quantity > l.refundedQuantity)
      .map((l) => ({ productId: l.productId, quantity: l.quantity - l.refundedQuantity })),
    releasedCoupon: order.couponId,
    guard: changeGuard(order, true),
  };
}
