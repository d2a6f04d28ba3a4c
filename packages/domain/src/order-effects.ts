import type { LedgerEntryType } from './balance.ts';
import { orderCancelledEvent, orderPaidEvent, orderRefundedEvent, type OrderEvent } from './events.ts';
import type { Won } from './money.ts';
import type { Cancellation } from './order-cancellation.ts';
import type { OrderDecision } from './order-decision.ts';
import type { Refund, RefundRecord } from './order-refund.ts';
import type { Order } from './order.ts';
import type { WriteGuard } from './write-guard.ts';

/**
 * The whole effect of a decided order, refund or cancellation: every writer (the Postgres adapter's
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
  /** The order as the write leaves it: created (guard.order null) or moved to its new state (status, refunded units and amount). */
  readonly order: Order;
  /** A partial refund's record, kept with the order; null for anything else. */
  readonly refund: RefundRecord | null;
  readonly event: OrderEvent;
}

const byProduct = (a: { productId: number }, b: { productId: number }) => a.productId - b.productId;

/** An order takes its units, its payment and its coupon copy. */
export function placementEffects({ order, guard }: OrderDecision, eventId: string): OrderEffects {
  return {
    guard,
    at: order.createdAt,
    balanceChange: 0 - order.paidAmount, // never -0
    ledgerType: 'PAYMENT',
    stockChanges: order.items.map((l) => ({ productId: l.productId, change: -l.quantity })).sort(byProduct),
    coupon: order.couponId === null ? null : { couponId: order.couponId, heldBy: order.orderId },
    order,
    refund: null,
    event: orderPaidEvent(eventId, order),
  };
}

/** A cancellation gives back exactly what its order took and no refund gave back yet. */
export function cancellationEffects(c: Cancellation, eventId: string): OrderEffects {
  return {
    guard: c.guard,
    at: c.order.cancelledAt!,
    balanceChange: c.refund,
    ledgerType: 'REFUND',
    stockChanges: c.restock.map((r) => ({ productId: r.productId, change: r.quantity })).sort(byProduct),
    coupon: c.releasedCoupon === null ? null : { couponId: c.releasedCoupon, heldBy: null },
    order: c.order,
    refund: null,
    event: orderCancelledEvent(eventId, c),
  };
}

/** A refund gives back its units and its amount, and the coupon copy with the order's last units. */
export function refundEffects(r: Refund, eventId: string): OrderEffects {
  return {
    guard: r.guard,
    at: r.record.createdAt,
    balanceChange: r.record.amount,
    ledgerType: 'REFUND',
    stockChanges: r.record.items.map((l) => ({ productId: l.productId, change: l.quantity })).sort(byProduct),
    coupon: r.releasedCoupon === null ? null : { couponId: r.releasedCoupon, heldBy: null },
    order: r.order,
    refund: r.record,
    event: orderRefundedEvent(eventId, r),
  };
}
