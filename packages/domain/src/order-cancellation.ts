import { DomainError } from './errors.ts';
import type { Won } from './money.ts';
import type { Order } from './order.ts';
import type { WriteGuard } from './write-guard.ts';

/** How long a paid order may be cancelled when configuration says nothing (ORDER_CANCEL_DAYS). */
export const DEFAULT_CANCEL_DAYS = 7;
const DAY_MS = 86_400_000;

/** What a cancellation gives back to one product: the units its order took. */
export interface Restock {
  readonly productId: number;
  readonly quantity: number;
}

/** A decided cancellation: the order as it becomes, and everything it gives back. */
export interface Cancellation {
  readonly order: Order;
  /** Credited to the order's user: what the order took from the balance. */
  readonly refund: Won;
  /** In product-id order. */
  readonly restock: readonly Restock[];
  /** The coupon whose copy becomes usable again; null for an order without one. */
  readonly releasedCoupon: number | null;
  /**
   * The order is still PAID and still holds its coupon copy. Nothing else can refuse it: a refund
   * is never refused by the balance cap, and restored stock has no upper bound to break.
   */
  readonly guard: WriteGuard;
}

/**
 * The whole rule of a cancellation: a PAID order placed at most `windowDays` days before `now`
 * becomes CANCELLED, and gives back exactly what placing it took (stock, payment, coupon copy).
 */
export function decideCancellation(order: Order, now: Date, windowDays: number): Cancellation {
  if (order.status !== 'PAID') {
    throw new DomainError('ORDER_NOT_CANCELLABLE', `order ${order.orderId} is already ${order.status.toLowerCase()}`);
  }
  if (now.getTime() - order.createdAt.getTime() > windowDays * DAY_MS) {
    throw new DomainError(
      'ORDER_NOT_CANCELLABLE',
      `order ${order.orderId} was placed more than ${windowDays} days ago; only newer orders can be cancelled`,
    );
  }
  return {
    order: { ...order, status: 'CANCELLED', cancelledAt: now },
    refund: order.paidAmount,
    restock: order.items
      .map(({ productId, quantity }) => ({ productId, quantity }))
      .sort((a, b) => a.productId - b.productId),
    releasedCoupon: order.couponId,
    guard: {
      userId: order.userId,
      balanceAtLeast: 0,
      stock: [],
      orderStatus: 'PAID',
      coupon: order.couponId === null ? null : { couponId: order.couponId, heldBy: order.orderId },
    },
  };
}
