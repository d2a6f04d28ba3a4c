import type { LedgerEntryType } from './balance.ts';
import { orderCancelledEvent, orderPaidEvent, type OrderEvent } from './events.ts';
import type { Won } from './money.ts';
import type { Cancellation } from './order-cancellation.ts';
import type { OrderDecision } from './order-decision.ts';
import type { Order } from './order.ts';
import type { WriteGuard } from './write-guard.ts';

/**
 * The whole effect of a decided order or cancellation: every writer (the Postgres adapter's
 * write_order_group, the in-memory fake) checks `guard` against the rows, and if it holds applies
 * exactly these values and nothing it works out for itself.
 */
export interface OrderEffects {
  readonly guard: WriteGuard;
  readonly at: Date;
  /** Added to the user's balance (signed), recorded by one ledger row of this type. */
  readonly balanceChange: Won;
  readonly ledgerType: LedgerEntryType;
  /** Added to each product's stock (signed), one per product in product-id order. */
  readonly stockChanges: ReadonlyArray<{ readonly productId: number; readonly change: number }>;
  /** The coupon copy as the write leaves it: held by this order, or by none (usable again). */
  readonly coupon: { readonly couponId: number; readonly heldBy: string | null } | null;
  /** The order as the write leaves it: created (guard.orderStatus null) or moved to its new status. */
  readonly order: Order;
  readonly event: OrderEvent;
}

/** An order takes its units, its payment and its coupon copy. */
export function placementEffects({ order, guard }: OrderDecision, eventId: string): OrderEffects {
  return {
    guard,
    at: order.createdAt,
    balanceChange: 0 - order.paidAmount, // never -0
    ledgerType: 'PAYMENT',
    stockChanges: order.items
      .map((l) => ({ productId: l.productId, change: -l.quantity }))
      .sort((a, b) => a.productId - b.productId),
    coupon: order.couponId === null ? null : { couponId: order.couponId, heldBy: order.orderId },
    order,
    event: orderPaidEvent(eventId, order),
  };
}

/** A cancellation gives back exactly what its order took. */
export function cancellationEffects(c: Cancellation, eventId: string): OrderEffects {
  return {
    guard: c.guard,
    at: c.order.cancelledAt!,
    balanceChange: c.refund,
    ledgerType: 'REFUND',
    stockChanges: c.restock.map((r) => ({ productId: r.productId, change: r.quantity })),
    coupon: c.releasedCoupon === null ? null : { couponId: c.releasedCoupon, heldBy: null },
    order: c.order,
    event: orderCancelledEvent(eventId, c),
  };
}
