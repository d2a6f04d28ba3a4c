import { DomainError } from './errors.ts';
import type { Won } from './money.ts';

export type DiscountType = 'FIXED' | 'RATE';
export type UserCouponStatus = 'AVAILABLE' | 'USED' | 'EXPIRED';

export const DEFAULT_VALID_DAYS = 30;
const DAY_MS = 86_400_000;

export interface CouponTerms {
  readonly discountType: DiscountType;
  /** Won off for FIXED, percent off for RATE. */
  readonly discountValue: number;
  readonly minOrderAmount: Won;
}

export interface Coupon extends CouponTerms {
  readonly couponId: number;
  readonly name: string;
  readonly totalQuantity: number;
  readonly issuedQuantity: number;
  readonly issueStartsAt: Date | null;
  readonly issueEndsAt: Date | null;
  readonly validDays: number;
}

/** A coupon as one user holds it. */
export interface HeldCoupon extends CouponTerms {
  readonly couponId: number;
  readonly userId: number;
  readonly name: string;
  readonly issuedAt: Date;
  readonly expiresAt: Date;
  readonly usedAt: Date | null;
  readonly orderId: string | null;
}

export interface NewCouponTerms extends CouponTerms {
  readonly name: string;
  readonly totalQuantity: number;
  readonly issueStartsAt: Date | null;
  readonly issueEndsAt: Date | null;
  readonly validDays: number;
}

export function validateCouponTerms(terms: NewCouponTerms): NewCouponTerms {
  if (terms.discountType === 'RATE' && (terms.discountValue < 1 || terms.discountValue > 100)) {
    throw new DomainError('VALIDATION_ERROR', 'a RATE discount is a percentage from 1 to 100');
  }
  if (terms.issueStartsAt && terms.issueEndsAt && terms.issueEndsAt <= terms.issueStartsAt) {
    throw new DomainError('VALIDATION_ERROR', 'issueEndsAt must be after issueStartsAt');
  }
  return terms;
}

/** floor for RATE, and never more than the order is worth. */
export function discountFor(terms: CouponTerms, totalAmount: Won): Won {
  const raw =
    terms.discountType === 'FIXED' ? terms.discountValue : Math.floor((totalAmount * terms.discountValue) / 100);
  return Math.min(raw, totalAmount);
}

export function heldCouponStatus(held: HeldCoupon, now: Date): UserCouponStatus {
  if (held.usedAt !== null) return 'USED';
  return now >= held.expiresAt ? 'EXPIRED' : 'AVAILABLE';
}

/**
 * The discount a held coupon gives an order of `totalAmount` now, or INVALID_COUPON.
 * `held` is null when the user does not hold the coupon at all.
 */
export function redeemCoupon(held: HeldCoupon | null, now: Date, totalAmount: Won): Won {
  if (held === null) throw new DomainError('INVALID_COUPON', 'the user does not hold this coupon');
  if (held.usedAt !== null) throw new DomainError('INVALID_COUPON', 'the coupon has already been used');
  if (now < held.issuedAt) throw new DomainError('INVALID_COUPON', 'the coupon is not valid yet');
  if (now >= held.expiresAt) throw new DomainError('INVALID_COUPON', 'the coupon has expired');
  if (totalAmount < held.minOrderAmount) {
    throw new DomainError(
      'INVALID_COUPON',
      `the coupon needs an order of at least ${held.minOrderAmount} won; this order is ${totalAmount}`,
    );
  }
  return discountFor(held, totalAmount);
}

export function couponExpiry(issuedAt: Date, validDays: number): Date {
  return new Date(issuedAt.getTime() + validDays * DAY_MS);
}

export interface IssueRules {
  /** First-come issuance honours the issue window; an admin grant does not. */
  readonly enforceWindow: boolean;
}

/** Checks that one more copy of `coupon` may go to a user who does (not) hold it yet. */
export function assertIssuable(coupon: Coupon, alreadyHeld: boolean, now: Date, rules: IssueRules): void {
  if (rules.enforceWindow) {
    const early = coupon.issueStartsAt !== null && now < coupon.issueStartsAt;
    const late = coupon.issueEndsAt !== null && now >= coupon.issueEndsAt;
    if (early || late) throw new DomainError('COUPON_NOT_ISSUABLE', 'the coupon is outside its issue window');
  }
  if (alreadyHeld) throw new DomainError('COUPON_ALREADY_ISSUED', 'the user already holds this coupon');
  if (coupon.issuedQuantity >= coupon.totalQuantity) {
    throw new DomainError('COUPON_EXHAUSTED', 'every copy of this coupon has been issued');
  }
}
