import {
  DEFAULT_VALID_DAYS,
  DomainError,
  assertIssuable,
  couponExpiry,
  heldCouponStatus,
  validateCouponTerms,
  type Coupon,
  type HeldCoupon,
  type NewCouponTerms,
  type UserCouponStatus,
} from '@shop/domain';
import type { Clock, ReadStore, UnitOfWork } from '../ports/index.ts';

export interface HeldCouponView extends HeldCoupon {
  readonly status: UserCouponStatus;
}

export const viewHeldCoupon = (held: HeldCoupon, now: Date): HeldCouponView => ({
  ...held,
  status: heldCouponStatus(held, now),
});

export type CreateCouponInput = Omit<NewCouponTerms, 'validDays' | 'minOrderAmount' | 'issueStartsAt' | 'issueEndsAt'> &
  Partial<Pick<NewCouponTerms, 'validDays' | 'minOrderAmount' | 'issueStartsAt' | 'issueEndsAt'>>;

export async function createCoupon(uow: UnitOfWork, input: CreateCouponInput): Promise<Coupon> {
  const terms = validateCouponTerms({
    ...input,
    minOrderAmount: input.minOrderAmount ?? 0,
    issueStartsAt: input.issueStartsAt ?? null,
    issueEndsAt: input.issueEndsAt ?? null,
    validDays: input.validDays ?? DEFAULT_VALID_DAYS,
  });
  return uow.run((tx) => tx.coupons.create(terms));
}

/**
 * An operator's grant: skips the issue window but still one copy per user and never past
 * totalQuantity. The coupon row is locked (after the user check, before the copy is written),
 * so concurrent grants count correctly.
 */
export async function grantCoupon(
  deps: { uow: UnitOfWork; clock: Clock },
  couponId: number,
  userId: number,
): Promise<HeldCouponView> {
  return deps.uow.run(async (tx) => {
    const coupon = await tx.coupons.lockCoupon(couponId);
    if (!coupon) throw new DomainError('COUPON_NOT_FOUND', `no coupon with id ${couponId}`);
    if (!(await tx.users.exists(userId))) throw new DomainError('USER_NOT_FOUND', `no user with id ${userId}`);
    const held = await tx.coupons.lockHeld(userId, couponId);
    const now = deps.clock.now();
    assertIssuable(coupon, held !== null, now, { enforceWindow: false });
    const issued = await tx.coupons.issue(couponId, userId, now, couponExpiry(now, coupon.validDays));
    return viewHeldCoupon(issued, now);
  });
}

export async function listHeldCoupons(
  deps: { reads: ReadStore; clock: Clock },
  userId: number,
): Promise<HeldCouponView[]> {
  if (!(await deps.reads.userExists(userId))) throw new DomainError('USER_NOT_FOUND', `no user with id ${userId}`);
  const now = deps.clock.now();
  return (await deps.reads.heldCoupons(userId)).map((h) => viewHeldCoupon(h, now));
}
