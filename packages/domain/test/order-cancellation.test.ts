import { describe, expect, test } from 'vitest';
import {
  asPlaced,
  cancellationEffects,
  guardHolds,
  decideCancellation,
  DomainError,
  orderCancelledEvent,
  paidOrder,
  placementEffects,
} from '../src/index.ts';

const PLACED = new Date('2026-12-01T00:00:00.000Z');
const DAY = 86_400_000;
const order = paidOrder({
  orderId: 'o-1',
  userId: 3,
  lines: [
    { productId: 9, quantity: 2, unitPrice: 1_000, lineAmount: 2_000 },
    { productId: 4, quantity: 1, unitPrice: 500, lineAmount: 500 },
  ],
  couponId: 7,
  discountAmount: 300,
  createdAt: PLACED,
});

const codeOf = (f: () => unknown) => {
  try {
    f();
  } catch (e) {
    return (e as DomainError).code;
  }
  return null;
};

describe('decideCancellation', () => {
  test('gives back exactly what the order took: its payment, its units, its coupon copy', () => {
    const at = new Date(PLACED.getTime() + DAY);
    const c = decideCancellation(order, at, 7);
    expect(c.order).toEqual({
      ...order,
      status: 'CANCELLED',
      cancelledAt: at,
      refundedAmount: 2_200,
      items: order.items.map((l) => ({ ...l, refundedQuantity: l.quantity })),
    });
    expect(c.refund).toBe(2_200);
    expect(c.restock).toEqual([
      { productId: 9, quantity: 2 },
      { productId: 4, quantity: 1 },
    ]);
    expect(c.releasedCoupon).toBe(7);
    expect(c.guard).toEqual({
      userId: 3,
      balanceAtLeast: 0,
      stock: [],
      order: { status: 'PAID', refundedUnits: 0 },
      coupon: { couponId: 7, heldBy: 'o-1' },
    });
  });

  test('an order without a coupon releases none', () => {
    const plain = { ...order, couponId: null, discountAmount: 0, paidAmount: order.totalAmount };
    expect(decideCancellation(plain, PLACED, 7).releasedCoupon).toBeNull();
  });

  test('the window is inclusive to the millisecond, and configurable', () => {
    expect(decideCancellation(order, new Date(PLACED.getTime() + 7 * DAY), 7).order.status).toBe('CANCELLED');
    expect(codeOf(() => decideCancellation(order, new Date(PLACED.getTime() + 7 * DAY + 1), 7))).toBe('ORDER_NOT_CANCELLABLE');
    expect(codeOf(() => decideCancellation(order, new Date(PLACED.getTime() + 2 * DAY), 1))).toBe('ORDER_NOT_CANCELLABLE');
  });

  test('a cancelled order cannot be cancelled again', () => {
    const cancelled = decideCancellation(order, PLACED, 7).order;
    expect(codeOf(() => decideCancellation(cancelled, PLACED, 7))).toBe('ORDER_NOT_CANCELLABLE');
  });
});

test('the guard holds only while the order is as decided on (status and refunded units) and still holds its coupon copy', () => {
  const { guard } = decideCancellation(order, PLACED, 7);
  const now = { balance: 0, products: [], order: { status: 'PAID', refundedUnits: 0 }, couponHeldBy: 'o-1' } as const;
  expect(guardHolds(guard, now)).toBe(true);
  expect(guardHolds(guard, { ...now, order: { status: 'CANCELLED', refundedUnits: 3 } })).toBe(false);
  expect(guardHolds(guard, { ...now, order: { status: 'PAID', refundedUnits: 1 } })).toBe(false);
  expect(guardHolds(guard, { ...now, order: null })).toBe(false);
  expect(guardHolds(guard, { ...now, couponHeldBy: null })).toBe(false);
  expect(guardHolds(guard, { ...now, balance: null })).toBe(false);
});

test('asPlaced answers a cancelled order as its placing request was answered', () => {
  const { order: cancelled } = decideCancellation(order, PLACED, 7);
  expect(asPlaced(cancelled)).toEqual(order);
});

test('order.cancelled carries the refund, the units given back and the released coupon', () => {
  const at = new Date(PLACED.getTime() + 1_000);
  const event = orderCancelledEvent('e-1', decideCancellation(order, at, 7));
  expect(event).toEqual({
    eventId: 'e-1',
    type: 'order.cancelled',
    occurredAt: at.toISOString(),
    data: {
      orderId: 'o-1',
      userId: 3,
      refundedAmount: 2_200,
      items: [
        { productId: 9, quantity: 2 },
        { productId: 4, quantity: 1 },
      ],
      couponId: 7,
      cancelledAt: at.toISOString(),
    },
  });
});

describe('what a write does', () => {
  test('an order debits what it paid, takes its units and its coupon copy; its cancellation gives exactly all of it back', () => {
    const order = paidOrder({
      orderId: 'o-1',
      userId: 1,
      lines: [
        { productId: 7, quantity: 2, unitPrice: 1_000, lineAmount: 2_000 },
        { productId: 3, quantity: 1, unitPrice: 500, lineAmount: 500 },
      ],
      couponId: 5,
      discountAmount: 500,
      createdAt: new Date('2026-11-24T09:00:00Z'),
    });
    const guard = { userId: 1, balanceAtLeast: 2_000, stock: [], order: null, coupon: { couponId: 5, heldBy: null } };
    const placed = placementEffects({ order, guard }, 'e-1');
    expect(placed).toMatchObject({
      guard,
      at: order.createdAt,
      balanceChange: -2_000,
      ledgerType: 'PAYMENT',
      stockChanges: [{ productId: 3, change: -1 }, { productId: 7, change: -2 }],
      coupon: { couponId: 5, heldBy: 'o-1' },
      order,
      event: { eventId: 'e-1', type: 'order.paid' },
    });
    const cancellation = decideCancellation(order, new Date('2026-11-25T09:00:00Z'), 7);
    const undone = cancellationEffects(cancellation, 'e-2');
    expect(undone).toMatchObject({
      guard: cancellation.guard,
      at: cancellation.order.cancelledAt,
      ledgerType: 'REFUND',
      stockChanges: [{ productId: 3, change: 1 }, { productId: 7, change: 2 }],
      coupon: { couponId: 5, heldBy: null },
      order: { status: 'CANCELLED' },
      event: { eventId: 'e-2', type: 'order.cancelled' },
    });
    expect(undone.balanceChange + placed.balanceChange).toBe(0);
    const free = { ...order, couponId: null, discountAmount: 0, paidAmount: 0 };
    expect(Object.is(placementEffects({ order: free, guard }, 'e-3').balanceChange, -0)).toBe(false);
  });
});
