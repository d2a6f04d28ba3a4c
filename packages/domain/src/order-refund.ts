import { DomainError } from './errors.ts';
import type { Won } from './money.ts';
import { assertChangeable, changeGuard, fullyRefunded, type Restock } from './order-cancellation.ts';
import { asPlaced, type Order } from './order.ts';
import type { WriteGuard } from './write-guard.ts';

export const MAX_REFUND_LINES = 100;

/** A refund as it is kept and answered: immutable once written. */
export interface RefundRecord {
  readonly refundId: string;
  readonly orderId: string;
  /** As the client listed them. */
  readonly items: readonly Restock[];
  /** What this refund credited: the rise of the order's refundedAmount. */
  readonly amount: Won;
  readonly createdAt: Date;
}

/** A decided refund: the order as it becomes, the refund's record, and what it gives back. */
export interface Refund {
  readonly order: Order;
  readonly record: RefundRecord;
  /** The coupon whose copy becomes usable again: only when this refund gives back the order's last units. */
  readonly releasedCoupon: number | null;
  /** The order is still as decided on (no other refund or cancel came between); its coupon copy still held when released. */
  readonly guard: WriteGuard;
}

/** The shape rules of a refund's lines (the contract's 400 VALIDATION_ERROR), before anything is read. */
export function checkRefundLines(lines: readonly Restock[]): void {
  if (lines.length < 1 || lines.length > MAX_REFUND_LINES) {
    throw new DomainError('VALIDATION_ERROR', `a refund has 1 to ${MAX_REFUND_LINES} items`);
  }
  const seen = new Set<number>();
  for (const line of lines) {
    if (!Number.isSafeInteger(line.quantity) || line.quantity < 1) {
      throw new DomainError('VALIDATION_ERROR', 'quantity must be a whole number of at least 1');
    }
    if (seen.has(line.productId)) throw new DomainError('VALIDATION_ERROR', `product ${line.productId} is listed twice`);
    seen.add(line.productId);
  }
}

/**
 * The amount rule: with G the gross (unitPrice × units) of every unit refunded so far, the order's
 * refundedAmount is floor(paidAmount × G / totalAmount). It never falls as G rises, and at the
 * last unit G = totalAmount gives exactly paidAmount: the refunds of an order add up to what it
 * paid, in whatever steps they come, and the discount is shared in proportion to each unit's price.
 * BigInt: paidAmount × G reaches 10^30.
 */
export function refundedAmountFor(order: Pick<Order, 'paidAmount' | 'totalAmount'>, grossRefunded: Won): Won {
  if (order.totalAmount === 0) return 0;
  return Number((BigInt(order.paidAmount) * BigInt(grossRefunded)) / BigInt(order.totalAmount));
}

/** The order after `lines` more units are refunded at `at` (the lines already checked against it). */
function withRefunded(order: Order, lines: readonly Restock[], at: Date): Order {
  const more = new Map(lines.map((l) => [l.productId, l.quantity]));
  const items = order.items.map((l) => ({ ...l, refundedQuantity: l.refundedQuantity + (more.get(l.productId) ?? 0) }));
  if (items.every((l) => l.refundedQuantity === l.quantity)) return fullyRefunded(order, at);
  const gross = items.reduce((sum, l) => sum + l.unitPrice * l.refundedQuantity, 0);
  return { ...order, status: 'PARTIALLY_REFUNDED', items, refundedAmount: refundedAmountFor(order, gross) };
}

/**
 * The whole rule of a partial refund, in the contract's error order after the order is found and
 * the actor may act for it: the order changeable (409), every listed product in it with that many
 * units not refunded yet (400 REFUND_EXCEEDS_ORDER).
 */
export function decideRefund(order: Order, lines: readonly Restock[], refundId: string, now: Date, windowDays: number): Refund {
  checkRefundLines(lines);
  assertChangeable(order, now, windowDays);
  for (const line of lines) {
    const item = order.items.find((l) => l.productId === line.productId);
    if (!item) throw new DomainError('REFUND_EXCEEDS_ORDER', `order ${order.orderId} has no product ${line.productId}`);
    const left = item.quantity - item.refundedQuantity;
    if (line.quantity > left) {
      throw new DomainError('REFUND_EXCEEDS_ORDER', `product ${line.productId}: ${line.quantity} units asked, ${left} not refunded yet`);
    }
  }
  const after = withRefunded(order, lines, now);
  const completes = after.status === 'CANCELLED';
  return {
    order: after,
    record: {
      refundId,
      orderId: order.orderId,
      items: lines.map(({ productId, quantity }) => ({ productId, quantity })),
      amount: after.refundedAmount - order.refundedAmount,
      createdAt: now,
    },
    releasedCoupon: completes ? order.couponId : null,
    guard: changeGuard(order, completes),
  };
}

/**
 * The order as its refunds up to and including `upTo` left it, from its placed state: what that
 * refund answered, so that a replay of its request repeats the first answer whatever came after.
 */
export function orderAfterRefunds(order: Order, refunds: readonly RefundRecord[], upTo: string): Order {
  let state = asPlaced(order);
  for (const r of refunds) {
    state = withRefunded(state, r.items, r.createdAt);
    if (r.refundId === upTo) return state;
  }
  throw new Error(`order ${order.orderId} has no refund ${upTo}`);
}
