import { redeemCoupon, type HeldCoupon } from './coupon.ts';
import { DomainError } from './errors.ts';
import type { Won } from './money.ts';
import { paidOrder, totalOf, type Order } from './order.ts';
import { allocateStock, type RequestedLine, type StockedProduct } from './stock.ts';
import { payFromBalance } from './balance.ts';

/** Everything an order is decided on: one consistent state of the rows it touches. */
export interface OrderSnapshot {
  /** Null when the user does not exist. */
  readonly balance: Won | null;
  /** The requested products that exist. */
  readonly products: readonly StockedProduct[];
  /** The user's copy of the requested coupon, or null. */
  readonly held: HeldCoupon | null;
}

/** A product the order takes: it must still have `atLeast` units, still at `price`. */
export interface StockGuard {
  readonly productId: number;
  readonly atLeast: number;
  readonly price: Won;
}

/**
 * What must still hold when a decided order is written, so that writing it gives the answer the
 * decision gave. Everything else the decision read cannot change under it: a held coupon's
 * terms, issue date and expiry are fixed when it is issued.
 */
export interface OrderGuard {
  readonly userId: number;
  /** The balance may have moved, but must still cover the payment. */
  readonly balanceAtLeast: Won;
  readonly stock: readonly StockGuard[];
  /** The coupon whose copy must still be unused; null for an order without one. */
  readonly unusedCoupon: number | null;
}

export interface OrderDecision {
  readonly order: Order;
  readonly guard: OrderGuard;
}

export interface OrderRequest {
  readonly orderId: string;
  readonly userId: number;
  /** As the client listed them: the order keeps this order. */
  readonly items: readonly RequestedLine[];
  readonly couponId: number | null;
  readonly now: Date;
}

/**
 * The whole rule of an order, in the contract's error order (user, products, stock, coupon,
 * balance). Returns the paid order and the guard under which it may be written.
 */
export function decideOrder(request: OrderRequest, seen: OrderSnapshot): OrderDecision {
  if (seen.balance === null) throw new DomainError('USER_NOT_FOUND', `no user with id ${request.userId}`);
  const allocated = allocateStock(request.items, seen.products);
  const discountAmount =
    request.couponId === null ? 0 : redeemCoupon(seen.held, request.now, totalOf(allocated));
  const order = paidOrder({
    orderId: request.orderId,
    userId: request.userId,
    lines: allocated,
    couponId: request.couponId,
    discountAmount,
    createdAt: request.now,
  });
  payFromBalance(seen.balance, order.paidAmount);
  return {
    order,
    guard: {
      userId: order.userId,
      balanceAtLeast: order.paidAmount,
      stock: order.items.map((l) => ({ productId: l.productId, atLeast: l.quantity, price: l.unitPrice })),
      unusedCoupon: order.couponId,
    },
  };
}

/** Whether `guard` holds in `now`, a state read of the guarded rows (the in-memory writer's check). */
export function guardHolds(guard: OrderGuard, now: OrderSnapshot): boolean {
  const byId = new Map(now.products.map((p) => [p.productId, p]));
  return (
    now.balance !== null &&
    now.balance >= guard.balanceAtLeast &&
    guard.stock.every((s) => {
      const p = byId.get(s.productId);
      return p !== undefined && p.stock >= s.atLeast && p.price === s.price;
    }) &&
    (guard.unusedCoupon === null || (now.held !== null && now.held.couponId === guard.unusedCoupon && now.held.usedAt === null))
  );
}
