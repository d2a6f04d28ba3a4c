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
import { assertActsFor, assertAdmin, assertBuysAs, type Actor } from '../authorization.ts';
import type { Clock, CouponIssuance, ReadStore, UnitOfWork } from '../ports/index.ts';

export interface HeldCouponView extends HeldCoupon {
  readonly status: UserCouponStatus;
}

export const viewHeldCoupon = (held: HeldCoupon, now: Date): HeldCouponView => ({
  ...held,
  status: heldCouponStatus(held, now),
});

export type CreateCouponInput = Omit<NewCouponTerms, 'validDays' | 'minOrderAmount' | 'issueStartsAt' | 'issueEndsAt'> &
  Partial<Pick<NewCouponTerms, 'validDays' | 'minOrderAmount' | 'issueStartsAt' | 'issueEndsAt'>>;

export async function createCoupon(uow: UnitOfWork, actor: Actor, input: CreateCouponInput): Promise<Coupon> {
  assertAdmin(actor);
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
  actor: Actor,
  couponId: number,
  userId: number,
): Promise<HeldCouponView> {
  assertAdmin(actor);
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
  actor: Actor,
  userId: number,
): Promise<HeldCouponView[]> {
  assertActsFor(actor, userId);
  if (!(await deps.reads.userExists(userId))) throw new DomainError('USER_NOT_FOUND', `no user with id ${userId}`);
  const now = deps.clock.now();
  return (await deps.reads.heldCoupons(userId)).map((h) => viewHeldCoupon(h, now));
}

/**
 * First come, first served. The rules are checked first on an unlocked read — in a burst, once
 * the coupon is gone every later request is answered from that read, without touching the row
 * lock — and then enforced atomically by the single counting step the winners take.
 */
export async function issueCoupon(
  deps: { issuance: CouponIssuance; clock: Clock },
  actor: Actor,
  couponId: number,
  userId: number,
): Promise<HeldCouponView> {
  assertBuysAs(actor, userId, 'claiming a coupon');
  const now = deps.clock.now();
  const check = async () => {
    const seen = await deps.issuance.peek(couponId, userId);
    if (!seen) throw new DomainError('COUPON_NOT_FOUND', `no coupon with id ${couponId}`);
    if (!seen.userExists) throw new DomainError('USER_NOT_FOUND', `no user with id ${userId}`);
    assertIssuable(seen.coupon, seen.held, now, { enforceWindow: true });
    return seen.coupon;
  };
  const coupon = await check();
  const attempt = await deps.issuance.tryIssue(couponId, userId, now, couponExpiry(now, coupon.validDays));
  if (attempt.kind === 'issued') return viewHeldCoupon(attempt.held, now);
  if (attempt.kind === 'already-issued') {
    throw new DomainError('COUPON_ALREADY_ISSUED', 'the user already holds this coupon');
  }
  await check(); // says why: window, already held or exhausted
  throw new DomainError('COUPON_EXHAUSTED', 'every copy of this coupon has been issued');
}
