import type { HeldCoupon, Order, OrderPaidEvent, StockedProduct, Won } from '@shop/domain';

/** Everything an order is decided on, read in one consistent snapshot without taking a lock. */
export interface OrderSnapshot {
  /** Null when the user does not exist. */
  readonly balance: Won | null;
  /** The requested products that exist. */
  readonly products: StockedProduct[];
  /** The user's copy of the requested coupon, or null. */
  readonly held: HeldCoupon | null;
}

/**
 * The optimistic order path: decide on a snapshot, then write in one atomic step that holds the
 * rows only for that step. A flash sale's hot product row is locked inside the database alone —
 * no round trip to the service while it is held.
 */
export interface OrderBook {
  snapshot(userId: number, ascendingProductIds: readonly number[], couponId: number | null): Promise<OrderSnapshot>;
  /**
   * Writes the paid order, its stock, coupon use, payment, ledger entry and event if, and only
   * if, what it was decided on still holds: every price unchanged, stock and balance enough, the
   * coupon still unused. Returns false, having written nothing, otherwise.
   */
  placeIfUnchanged(order: Order, event: OrderPaidEvent): Promise<boolean>;
}
