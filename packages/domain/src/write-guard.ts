import type { Won } from './money.ts';
import type { OrderStatus } from './order.ts';
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
 * are fixed when it is issued; an order's lines never change but for their refunded units, which
 * the order's guard compares).
 */
export interface WriteGuard {
  readonly userId: number;
  /** The user must exist, and their balance may have moved but must still cover this. */
  readonly balanceAtLeast: Won;
  readonly stock: readonly StockGuard[];
  /**
   * The order as the decision saw it; null: the order must not exist yet (the write creates it).
   * Every refund raises its refunded units, so two changes decided on one state never both apply.
   */
  readonly order: OrderState | null;
  /** The user's copy of the coupon must still be held by this order (null: unused); null: no copy involved. */
  readonly coupon: { readonly couponId: number; readonly heldBy: string | null } | null;
}

/** What a change of an existing order was decided on. */
export interface OrderState {
  readonly status: OrderStatus;
  readonly refundedUnits: number;
}

/** The rows a guard is checked against, as they are now. */
export interface GuardedRows {
  /** Null when the user does not exist. */
  readonly balance: Won | null;
  readonly products: readonly StockedProduct[];
  /** Null when the order does not exist. */
  readonly order: OrderState | null;
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
    (guard.order === null
      ? now.order === null
      : now.order !== null && now.order.status === guard.order.status && now.order.refundedUnits === guard.order.refundedUnits) &&
    (guard.coupon === null || now.couponHeldBy === guard.coupon.heldBy)
  );
}
