import { describe, expect, test } from 'vitest';
import {
  assertIssuable,
  couponExpiry,
  discountFor,
  heldCouponStatus,
  redeemCoupon,
  validateCouponTerms,
  type Coupon,
  type HeldCoupon,
} from '../src/index.ts';

const at = (iso: string) => new Date(`2026-11-${iso}Z`);
const code = (c: string) => expect.objectContaining({ code: c });

describe('discountFor', () => {
  test('FIXED takes its value off, never more than the order', () => {
    expect(discountFor({ discountType: 'FIXED', discountValue: 3_000, minOrderAmount: 0 }, 10_000)).toBe(3_000);
    expect(discountFor({ discountType: 'FIXED', discountValue: 3_000, minOrderAmount: 0 }, 2_500)).toBe(2_500);
  });

  test('RATE takes a percentage, floored to whole won', () => {
    const rate = (v: number) => ({ discountType: 'RATE' as const, discountValue: v, minOrderAmount: 0 });
    expect(discountFor(rate(15), 3_001)).toBe(450); // 450.15
    expect(discountFor(rate(33), 999)).toBe(329); // 329.67
    expect(discountFor(rate(10), 9)).toBe(0); // 0.9
    expect(discountFor(rate(100), 12_345)).toBe(12_345);
  });
});

describe('redeemCoupon', () => {
  const held: HeldCoupon = {
    couponId: 1,
    userId: 7,
    name: 'welcome',
    discountType: 'FIXED',
    discountValue: 1_000,
    minOrderAmount: 5_000,
    issuedAt: at('01T00:00:00'),
    expiresAt: at('08T00:00:00'),
    usedAt: null,
    orderId: null,
  };

  test('gives the discount inside the validity window at or above the minimum', () => {
    expect(redeemCoupon(held, at('01T00:00:00'), 5_000)).toBe(1_000);
    expect(redeemCoupon(held, new Date(held.expiresAt.getTime() - 1), 9_000)).toBe(1_000);
  });

  test.each([
    ['not held', null, at('02T00:00:00'), 9_000],
    ['already used', { ...held, usedAt: at('02T00:00:00'), orderId: 'o-1' }, at('03T00:00:00'), 9_000],
    ['expired, at the very instant', held, at('08T00:00:00'), 9_000],
    ['expired', held, at('20T00:00:00'), 9_000],
    ['not valid yet', held, new Date(held.issuedAt.getTime() - 1), 9_000],
    ['below the minimum order amount', held, at('02T00:00:00'), 4_999],
  ])('is INVALID_COUPON when %s', (_why, h, now, total) => {
    expect(() => redeemCoupon(h as HeldCoupon | null, now as Date, total as number)).toThrow(code('INVALID_COUPON'));
  });

  test('status reads AVAILABLE, USED or EXPIRED', () => {
    expect(heldCouponStatus(held, at('02T00:00:00'))).toBe('AVAILABLE');
    expect(heldCouponStatus(held, at('08T00:00:00'))).toBe('EXPIRED');
    expect(heldCouponStatus({ ...held, usedAt: at('02T00:00:00') }, at('30T00:00:00'))).toBe('USED');
  });

  test('a copy expires validDays after issue', () => {
    expect(couponExpiry(at('01T12:30:00'), 7)).toEqual(at('08T12:30:00'));
  });
});

describe('assertIssuable', () => {
  const coupon: Coupon = {
    couponId: 1,
    name: 'flash',
    discountType: 'RATE',
    discountValue: 10,
    minOrderAmount: 0,
    totalQuantity: 100,
    issuedQuantity: 99,
    issueStartsAt: at('10T00:00:00'),
    issueEndsAt: at('11T00:00:00'),
    validDays: 7,
  };
  const window = { enforceWindow: true };

  test('issues from the window start up to, not including, its end', () => {
    expect(() => assertIssuable(coupon, false, at('10T00:00:00'), window)).not.toThrow();
    expect(() => assertIssuable(coupon, false, new Date(at('11T00:00:00').getTime() - 1), window)).not.toThrow();
    expect(() => assertIssuable(coupon, false, new Date(at('10T00:00:00').getTime() - 1), window)).toThrow(
      code('COUPON_NOT_ISSUABLE'),
    );
    expect(() => assertIssuable(coupon, false, at('11T00:00:00'), window)).toThrow(code('COUPON_NOT_ISSUABLE'));
  });

  test('an open-ended window has no bound on that side', () => {
    const open = { ...coupon, issueStartsAt: null, issueEndsAt: null };
    expect(() => assertIssuable(open, false, at('01T00:00:00'), window)).not.toThrow();
  });

  test('one copy per user, never past the total', () => {
    const now = at('10T12:00:00');
    expect(() => assertIssuable(coupon, true, now, window)).toThrow(code('COUPON_ALREADY_ISSUED'));
    expect(() => assertIssuable({ ...coupon, issuedQuantity: 100 }, false, now, window)).toThrow(code('COUPON_EXHAUSTED'));
  });

  test('checks the window, then the holder, then the quantity', () => {
    const gone = { ...coupon, issuedQuantity: 100 };
    expect(() => assertIssuable(gone, true, at('12T00:00:00'), window)).toThrow(code('COUPON_NOT_ISSUABLE'));
    expect(() => assertIssuable(gone, true, at('10T12:00:00'), window)).toThrow(code('COUPON_ALREADY_ISSUED'));
  });

  test("an operator's grant ignores the window but not the rest", () => {
    const grant = { enforceWindow: false };
    expect(() => assertIssuable(coupon, false, at('20T00:00:00'), grant)).not.toThrow();
    expect(() => assertIssuable({ ...coupon, issuedQuantity: 100 }, false, at('20T00:00:00'), grant)).toThrow(
      code('COUPON_EXHAUSTED'),
    );
  });
});

describe('validateCouponTerms', () => {
  const terms = {
    name: 'x',
    discountType: 'RATE' as const,
    discountValue: 10,
    minOrderAmount: 0,
    totalQuantity: 10,
    issueStartsAt: null,
    issueEndsAt: null,
    validDays: 30,
  };

  test('a RATE is a percentage from 1 to 100', () => {
    expect(validateCouponTerms({ ...terms, discountValue: 1 })).toBeTruthy();
    expect(validateCouponTerms({ ...terms, discountValue: 100 })).toBeTruthy();
    expect(() => validateCouponTerms({ ...terms, discountValue: 0 })).toThrow(code('VALIDATION_ERROR'));
    expect(() => validateCouponTerms({ ...terms, discountValue: 101 })).toThrow(code('VALIDATION_ERROR'));
    expect(validateCouponTerms({ ...terms, discountType: 'FIXED', discountValue: 50_000 })).toBeTruthy();
  });

  test('the issue window ends after it starts', () => {
    const start = at('10T00:00:00');
    expect(() => validateCouponTerms({ ...terms, issueStartsAt: start, issueEndsAt: start })).toThrow(
      code('VALIDATION_ERROR'),
    );
    expect(validateCouponTerms({ ...terms, issueStartsAt: start, issueEndsAt: at('11T00:00:00') })).toBeTruthy();
  });
});
