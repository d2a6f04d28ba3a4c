import { describe, expect, test } from 'vitest';
import { decideOrder, guardHolds, type GuardedRows, type HeldCoupon, type OrderSnapshot } from '../src/index.ts';

const NOW = new Date('2026-12-01T00:00:00.000Z');
const held: HeldCoupon = {
  couponId: 7,
  userId: 1,
  name: 'c',
  discountType: 'FIXED',
  discountValue: 500,
  minOrderAmount: 0,
  issuedAt: new Date(NOW.getTime() - 1_000),
  expiresAt: new Date(NOW.getTime() + 1_000),
  usedAt: null,
  orderId: null,
};
const seen: OrderSnapshot = {
  balance: 10_000,
  products: [
    { productId: 1, price: 1_000, stock: 5 },
    { productId: 2, price: 300, stock: 2 },
  ],
  held,
};
const request = {
  orderId: 'o',
  userId: 1,
  items: [
    { productId: 2, quantity: 2 },
    { productId: 1, quantity: 3 },
  ],
  couponId: 7,
  now: NOW,
};

describe('decideOrder', () => {
  test('returns the paid order in the client’s item order, and the guard it must be written under', () => {
    const { order, guard } = decideOrder(request, seen);
    expect(order).toMatchObject({
      items: [
        { productId: 2, quantity: 2, unitPrice: 300, lineAmount: 600 },
        { productId: 1, quantity: 3, unitPrice: 1_000, lineAmount: 3_000 },
      ],
      totalAmount: 3_600,
      discountAmount: 500,
      paidAmount: 3_100,
    });
    expect(guard).toEqual({
      userId: 1,
      balanceAtLeast: 3_100,
      stock: [
        { productId: 2, atLeast: 2, price: 300 },
        { productId: 1, atLeast: 3, price: 1_000 },
      ],
      order: null,
      coupon: { couponId: 7, heldBy: null },
    });
  });

  test('refuses in the contract order', () => {
    expect(() => decideOrder(request, { ...seen, balance: null })).toThrow(expect.objectContaining({ code: 'USER_NOT_FOUND' }));
    expect(() => decideOrder(request, { ...seen, products: [] })).toThrow(expect.objectContaining({ code: 'PRODUCT_NOT_FOUND' }));
    expect(() => decideOrder(request, { ...seen, held: { ...held, usedAt: NOW, orderId: 'x' } })).toThrow(
      expect.objectContaining({ code: 'INVALID_COUPON' }),
    );
    expect(() => decideOrder(request, { ...seen, balance: 3_099 })).toThrow(expect.objectContaining({ code: 'INSUFFICIENT_BALANCE' }));
  });
});

describe('guardHolds', () => {
  const { guard } = decideOrder(request, seen);
  const rows: GuardedRows = { balance: seen.balance, products: seen.products, order: null, couponHeldBy: null };

  test('holds on the state it was decided on, and on any state that still covers the order', () => {
    expect(guardHolds(guard, rows)).toBe(true);
    expect(
      guardHolds(guard, {
        ...rows,
        balance: 3_100,
        products: [
          { productId: 1, price: 1_000, stock: 3 },
          { productId: 2, price: 300, stock: 2 },
        ],
      }),
    ).toBe(true);
  });

  test.each<[string, Partial<GuardedRows>]>([
    ['the user is gone', { balance: null }],
    ['the balance no longer covers the payment', { balance: 3_099 }],
    ['a product has fewer units than the order takes', { products: [seen.products[0]!, { productId: 2, price: 300, stock: 1 }] }],
    ['a price changed', { products: [{ productId: 1, price: 999, stock: 5 }, seen.products[1]!] }],
    ['a product is gone', { products: [seen.products[0]!] }],
    ['the coupon was used', { couponHeldBy: 'x' }],
    ['the coupon is not held', { couponHeldBy: undefined }],
    ['the order exists already', { order: { status: 'PAID', refundedUnits: 0 } }],
  ])('fails when %s', (_why, change) => {
    expect(guardHolds(guard, { ...rows, ...change })).toBe(false);
  });
});
