import type { Coupon, HeldCoupon, LedgerEntryType, Order, OrderPaidEvent, Won } from '@shop/domain';

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

/** Everything one paid order changes, written together by the adapter. */
export interface PaidOrderRecord {
  readonly order: Order;
  /** What the balance must be after the payment; the adapter refuses to commit anything else. */
  readonly balanceAfter: Won;
  readonly event: OrderPaidEvent;
}

export interface Page<T> {
  readonly items: T[];
  readonly nextCursor: string | null;
}

export type { Coupon, HeldCoupon };
