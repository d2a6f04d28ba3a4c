import { describe, expect, test } from 'vitest';
import {
  MAX_LINE_QUANTITY,
  MAX_ORDER_LINES,
  requestedProductIds,
  orderPaidEvent,
  paidOrder,
  totalOf,
} from '../src/index.ts';

const lines = (n: number) => Array.from({ length: n }, (_, i) => ({ productId: i + 1, quantity: 1 }));
const validation = expect.objectContaining({ code: 'VALIDATION_ERROR' });

describe('requestedProductIds', () => {
  test('returns the products named, ascending', () => {
    expect(
      requestedProductIds([
        { productId: 30, quantity: 1 },
        { productId: 4, quantity: 2 },
        { productId: 12, quantity: 3 },
      ]),
    ).toEqual([4, 12, 30]);
  });

  test('takes 1 to 100 lines', () => {
    expect(requestedProductIds(lines(1))).toHaveLength(1);
    expect(requestedProductIds(lines(MAX_ORDER_LINES))).toHaveLength(MAX_ORDER_LINES);
    expect(() => requestedProductIds([])).toThrow(validation);
    expect(() => requestedProductIds(lines(MAX_ORDER_LINES + 1))).toThrow(validation);
  });

  test.each([0, -1, 1.5, MAX_LINE_QUANTITY + 1, Number.NaN])('refuses quantity %s', (quantity) => {
    expect(() => requestedProductIds([{ productId: 1, quantity }])).toThrow(validation);
  });

  test('refuses a product listed twice', () => {
    expect(() =>
      requestedProductIds([
        { productId: 5, quantity: 1 },
        { productId: 5, quantity: 2 },
      ]),
    ).toThrow(validation);
  });
});

describe('paidOrder', () => {
  const allocated = [
    { productId: 2, quantity: 2, unitPrice: 1_001, lineAmount: 2_002 },
    { productId: 1, quantity: 1, unitPrice: 999, lineAmount: 999 },
  ];
  const createdAt = new Date('2026-11-24T10:00:00.000Z');

  test('totals the lines and pays the rest after the discount', () => {
    const order = paidOrder({ orderId: 'o-1', userId: 7, lines: allocated, couponId: 3, discountAmount: 450, createdAt });
    expect(totalOf(allocated)).toBe(3_001);
    expect(order).toEqual({
      orderId: 'o-1',
      userId: 7,
      status: 'PAID',
      items: allocated.map((l) => ({ ...l, refundedQuantity: 0 })),
      totalAmount: 3_001,
      discountAmount: 450,
      paidAmount: 2_551,
      couponId: 3,
      createdAt,
      cancelledAt: null,
      refundedAmount: 0,
    });
  });

  test('a discount can never be negative or exceed the order', () => {
    expect(paidOrder({ orderId: 'o', userId: 1, lines: allocated, couponId: 1, discountAmount: 3_001, createdAt }).paidAmount).toBe(0);
    expect(() => paidOrder({ orderId: 'o', userId: 1, lines: allocated, couponId: 1, discountAmount: 3_002, createdAt })).toThrow();
    expect(() => paidOrder({ orderId: 'o', userId: 1, lines: allocated, couponId: null, discountAmount: -1, createdAt })).toThrow();
  });

  test('the order.paid event carries the order as the contract describes it', () => {
    const order = paidOrder({ orderId: 'o-9', userId: 7, lines: allocated, couponId: null, discountAmount: 0, createdAt });
    expect(orderPaidEvent('e-1', order)).toEqual({
      eventId: 'e-1',
      type: 'order.paid',
      occurredAt: '2026-11-24T10:00:00.000Z',
      data: {
        orderId: 'o-9',
        userId: 7,
        items: allocated,
        totalAmount: 3_001,
        discountAmount: 0,
        paidAmount: 3_001,
        couponId: null,
        createdAt: '2026-11-24T10:00:00.000Z',
      },
    });
  });
});
