import { DomainError } from './errors.ts';
import type { Won } from './money.ts';
import type { AllocatedLine, RequestedLine } from './stock.ts';

export const MAX_ORDER_LINES = 100;
export const MAX_LINE_QUANTITY = 10_000;

/**
 * An order is created already paid: placing and paying are one transaction, so no order is ever
 * seen unpaid. Refunds of some of its units move it to PARTIALLY_REFUNDED (order-refund.ts); a
 * cancellation, or a refund of its last units, to CANCELLED, which is final.
 *
 *   PAID ──refund──▶ PARTIALLY_REFUNDED ──refund──▶ PARTIALLY_REFUNDED
 *     │                      │
 *     └─cancel / last refund─┴──────────────▶ CANCELLED
 */
export type OrderStatus = 'PAID' | 'PARTIALLY_REFUNDED' | 'CANCELLED';

export interface OrderLine {
  readonly productId: number;
  readonly quantity: number;
  readonly unitPrice: Won;
  readonly lineAmount: Won;
  /** Units of this line given back so far (all of them once the order is CANCELLED). */
  readonly refundedQuantity: number;
}

export interface Order {
  readonly orderId: string;
  readonly userId: number;
  readonly status: OrderStatus;
  readonly items: readonly OrderLine[];
  readonly totalAmount: Won;
  readonly discountAmount: Won;
  readonly paidAmount: Won;
  readonly couponId: number | null;
  readonly createdAt: Date;
  /** When it was cancelled; null until it is CANCELLED. */
  readonly cancelledAt: Date | null;
  /** Credited back so far: paidAmount once it is CANCELLED (the amount rule: order-refund.ts). */
  readonly refundedAmount: Won;
}

/**
 * Checks the shape rules of an order's lines and returns the products they name, ascending: what
 * the order's snapshot reads.
 */
export function requestedProductIds(lines: readonly RequestedLine[]): number[] {
  if (lines.length < 1 || lines.length > MAX_ORDER_LINES) {
    throw new DomainError('VALIDATION_ERROR', `an order has 1 to ${MAX_ORDER_LINES} items`);
  }
  const seen = new Set<number>();
  for (const line of lines) {
    if (!Number.isSafeInteger(line.quantity) || line.quantity < 1 || line.quantity > MAX_LINE_QUANTITY) {
      throw new DomainError('VALIDATION_ERROR', `quantity must be an integer from 1 to ${MAX_LINE_QUANTITY}`);
    }
    if (seen.has(line.productId)) {
      throw new DomainError('VALIDATION_ERROR', `product ${line.productId} is listed twice`);
    }
    seen.add(line.productId);
  }
  return [...seen].sort((a, b) => a - b);
}

export function totalOf(lines: readonly Pick<AllocatedLine, 'lineAmount'>[]): Won {
  return lines.reduce((sum, l) => sum + l.lineAmount, 0);
}

export function paidOrder(args: {
  orderId: string;
  userId: number;
  lines: readonly AllocatedLine[];
  couponId: number | null;
  discountAmount: Won;
  createdAt: Date;
}): Order {
  const totalAmount = totalOf(args.lines);
  if (args.discountAmount < 0 || args.discountAmount > totalAmount) {
    throw new Error(`discount ${args.discountAmount} outside 0..${totalAmount}`);
  }
  return {
    orderId: args.orderId,
    userId: args.userId,
    status: 'PAID',
    items: args.lines.map(({ productId, quantity, unitPrice, lineAmount }) => ({
      productId,
      quantity,
      unitPrice,
      lineAmount,
      refundedQuantity: 0,
    })),
    totalAmount,
    discountAmount: args.discountAmount,
    paidAmount: totalAmount - args.discountAmount,
    couponId: args.couponId,
    createdAt: args.createdAt,
    cancelledAt: null,
    refundedAmount: 0,
  };
}

/** Units refunded so far: a refund always raises it, so a write guards on it (write-guard.ts). */
export function refundedUnits(order: Order): number {
  return order.items.reduce((sum, l) => sum + l.refundedQuantity, 0);
}

/**
 * The order as it was answered when it was placed: a replay of the placing request repeats that
 * answer even after the order was refunded or cancelled (the contract's "first response").
 */
export function asPlaced(order: Order): Order {
  return {
    ...order,
    status: 'PAID',
    cancelledAt: null,
    refundedAmount: 0,
    items: order.items.map((l) => ({ ...l, refundedQuantity: 0 })),
  };
}
