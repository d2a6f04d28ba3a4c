import type { Cancellation } from './order-cancellation.ts';
import type { Refund } from './order-refund.ts';
import type { Order } from './order.ts';

/** The `order.paid` event exactly as the data platform receives it (see the API contract). */
export interface OrderPaidEvent {
  readonly eventId: string;
  readonly type: 'order.paid';
  readonly occurredAt: string;
  readonly data: {
    readonly orderId: string;
    readonly userId: number;
    readonly items: ReadonlyArray<Omit<Order['items'][number], 'refundedQuantity'>>;
    readonly totalAmount: number;
    readonly discountAmount: number;
    readonly paidAmount: number;
    readonly couponId: number | null;
    readonly createdAt: string;
  };
}

export function orderPaidEvent(eventId: string, order: Order): OrderPaidEvent {
  const at = order.createdAt.toISOString();
  return {
    eventId,
    type: 'order.paid',
    occurredAt: at,
    data: {
      orderId: order.orderId,
      userId: order.userId,
      items: order.items.map(({ productId, quantity, unitPrice, lineAmount }) => ({ productId, quantity, unitPrice, lineAmount })),
      totalAmount: order.totalAmount,
      discountAmount: order.discountAmount,
      paidAmount: order.paidAmount,
      couponId: order.couponId,
      createdAt: at,
    },
  };
}

/** The `order.cancelled` event exactly as the data platform receives it (see the API contract). */
export interface OrderCancelledEvent {
  readonly eventId: string;
  readonly type: 'order.cancelled';
  readonly occurredAt: string;
  readonly data: {
    readonly orderId: string;
    readonly userId: number;
    readonly refundedAmount: number;
    readonly items: ReadonlyArray<{ readonly productId: number; readonly quantity: number }>;
    readonly couponId: number | null;
    readonly cancelledAt: string;
  };
}

/** The `order.refunded` event of a partial refund, exactly as the data platform receives it (see the API contract). */
export interface OrderRefundedEvent {
  readonly eventId: string;
  readonly type: 'order.refunded';
  readonly occurredAt: string;
  readonly data: {
    readonly orderId: string;
    readonly userId: number;
    readonly refundId: string;
    /** This refund's amount. */
    readonly refundedAmount: number;
    readonly items: ReadonlyArray<{ readonly productId: number; readonly quantity: number }>;
    readonly refundedAt: string;
  };
}

export type OrderEvent = OrderPaidEvent | OrderCancelledEvent | OrderRefundedEvent;

export function orderRefundedEvent(eventId: string, refund: Refund): OrderRefundedEvent {
  const { record } = refund;
  const at = record.createdAt.toISOString();
  return {
    eventId,
    type: 'order.refunded',
    occurredAt: at,
    data: {
      orderId: record.orderId,
      userId: refund.order.userId,
      refundId: record.refundId,
      refundedAmount: record.amount,
      items: record.items,
      refundedAt: at,
    },
  };
}

export function orderCancelledEvent(eventId: string, cancellation: Cancellation): OrderCancelledEvent {
  const { order } = cancellation;
  const at = order.cancelledAt!.toISOString();
  return {
    eventId,
    type: 'order.cancelled',
    occurredAt: at,
    data: {
      orderId: order.orderId,
      userId: order.userId,
      // What this cancellation gave back: an earlier refund's units and amount were in its own event.
      refundedAmount: cancellation.refund,
      items: cancellation.restock,
      couponId: cancellation.releasedCoupon,
      cancelledAt: at,
    },
  };
}
