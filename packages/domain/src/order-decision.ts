import { redeemCoupon, type HeldCoupon } from './coupon.ts';
import { DomainError } from './errors.ts';
import type { Won } from './money.ts';
import { paidOrder, totalOf, type Order } from './order.ts';
import { allocateStock, type RequestedLine, type StockedProduct } from './stock.ts';
import { payFromBalance } from './balance.ts';
import type { WriteGuard } from './write-guard.ts';

/** Everything an order is decided on: one consistent state of the rows it touches. */
export interface OrderSnapshot {
  /** Null when the user does not exist. */
  readonly balance: Won | null;
  /** The requested products that exist. */
  readonly products: readonly StockedProduct[];
  /** The user's copy of the requested coupon, or null. */
  readonly held: HeldCoupon | null;
}

export interface OrderDecision {
  readonly order: Order;
  /** The balance still covers the payment, each product still has the units at the price, the coupon copy is still unused. */
  readonly guard: WriteGuard;
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
      order: null,
      coupon: order.couponId === null ? null : { couponId: order.couponId, heldBy: null },
    },
  };
}
