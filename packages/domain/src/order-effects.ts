import type { LedgerEntryType } from './balance.ts';
import { orderCancelledEvent, orderPaidEvent, type OrderEvent } from './events.ts';
import type { Won } from './money.ts';
import type { Cancellation } from './order-cancellation.ts';
import type { OrderDecision } from './order-decision.ts';
import type { Order, OrderStatus } from './order.ts';
import type { StockedProduct } from './stock.ts';

/** A product the write takes units of: it must still have `atLeast` units, still at `price`. */
export interface StockGuard {
  readonly productId: number;
  readonly atLeast: number;
  readonly price: Won;
}

/**
 * What must still hold when a decided write is applied, so that applying it gives the answer the
 * decision gave. Everything else the decision read cannot change under it (a held coupon's terms
 * are fixed when it is issued; an order's lines never change).
 */
export interface WriteGuard {
  readonly userId: number;
  /** The user must exist, and their balance may have moved but must still cover this. */
  readonly balanceAtLeast: Won;
  readonly stock: readonly StockGuard[];
  /** The order's status now; null: the order must not exist yet (the write creates it). */
  readonly orderStatus: OrderStatus | null;
  /** The user's copy of the coupon must still be held by this order (null: unused); null: no copy involved. */
  readonly coupon: { readonly couponId: number; readonly heldBy: string | null } | null;
}

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

/** The rows a guard is checked against, as they are now. */
export interface GuardedRows {
  /** Null when the user does not exist. */
  readonly balance: Won | null;
  readonly products: readonly StockedProduct[];
  /** Null when the order does not exist. */
  readonly orderStatus: OrderStatus | null;
  /** The order holding the user's copy of the guarded coupon (null: unused); undefined: no copy. */
  readonly couponHeldBy: string | null | undefined;
}

/** Whether `guard` holds on `now` (the in-memory writer's check; write_order_group states the same in SQL). */
export function guardHolds(guard: WriteGuard, now: GuardedRows): boolean {
  const byId = new Map(now.products.map((p) => [p.productId, p]));
  return (
    now.balance !== null &&
    now.balance >= guard.balanceAtLeast &&
    guard.stock.every((s) => {
      const p = byId.get(s.productId);
      return p !== undefined && p.stock >= s.atLeast && p.price === s.price;
    }) &&
    now.orderStatus === guard.orderStatus &&
    (guard.coupon === null || now.couponHeldBy === guard.coupon.heldBy)
  );
}
