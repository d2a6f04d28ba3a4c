import type { Cancellation } from './order-cancellation.ts';
import type { Order } from './order.ts';

/** The `order.paid` event exactly as the data platform receives it (see the API contract). */
export interface OrderPaidEvent {
  readonly eventId: string;
  readonly type: 'order.paid';
  readonly occurredAt: string;
  readonly data: {
    readonly orderId: string;
    readonly userId: number;
    readonly items: Order['items'];
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
      items: order.items,
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

export type OrderEvent = OrderPaidEvent | OrderCancelledEvent;

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
      refundedAmount: cancellation.refund,
      items: order.items.map(({ productId, quantity }) => ({ productId, quantity })),
      couponId: cancellation.releasedCoupon,
      cancelledAt: at,
    },
  };
}
