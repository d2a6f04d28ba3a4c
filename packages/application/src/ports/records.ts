import type { Coupon, HeldCoupon, LedgerEntryType, Won } from '@shop/domain';

export interface User {
  readonly userId: number;
  readonly name: string;
  readonly balance: Won;
}

export interface Product {
  readonly productId: number;
  readonly name: string;
  readonly price: Won;
  readonly stock: number;
}

export interface LedgerEntry {
  readonly type: LedgerEntryType;
  /** Signed: what the entry added to the balance (a payment is negative). */
  readonly amount: Won;
  readonly balanceAfter: Won;
  readonly orderId: string | null;
  readonly createdAt: Date;
}

export interface Page<T> {
  readonly items: T[];
  readonly nextCursor: string | null;
}

export type { Coupon, HeldCoupon };
