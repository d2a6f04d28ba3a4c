import type { Coupon, HeldCoupon } from '@shop/domain';

export type IssueAttempt =
  | { readonly kind: 'issued'; readonly held: HeldCoupon }
  | { readonly kind: 'already-issued' }
  /** Not counted: the coupon ran out since it was read. */
  | { readonly kind: 'not-issuable' };

/**
 * First-come issuance, built for a burst: thousands of requests for a hundred copies.
 * `peek` is a plain read that takes no lock, so losers are answered without queueing on the
 * coupon row; `tryIssue` is one short atomic step for the few that may still win.
 */
export interface CouponIssuance {
  peek(couponId: number, userId: number): Promise<{ coupon: Coupon; held: boolean; userExists: boolean } | null>;
  /**
   * Counts one copy only while issued < total; at most one per user. Whether `now` is inside the
   * issue window is the caller's decision (assertIssuable), on terms that never change.
   */
  tryIssue(couponId: number, userId: number, now: Date, expiresAt: Date): Promise<IssueAttempt>;
}
