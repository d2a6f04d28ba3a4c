import type { Coupon, HeldCoupon, Won } from '@shop/domain';
import type { KeyState } from './key-state.ts';
import type { LedgerEntry, Product, User } from './records.ts';

/**
 * What a use case may read and change in one transaction. The rows it locks are locked in the one
 * global lock order the adapter states (adapters-postgres/src/locks.ts), so no two transactions
 * can wait on each other in a cycle.
 */
export interface Transaction {
  readonly users: {
    exists(userId: number): Promise<boolean>;
    create(name: string): Promise<User>;
  };
  readonly products: {
    create(input: { name: string; price: Won; stock: number }): Promise<Product>;
    update(productId: number, change: { price?: Won; stock?: number }): Promise<Product | null>;
  };
  readonly coupons: {
    create(input: Omit<Coupon, 'couponId' | 'issuedQuantity'>): Promise<Coupon>;
    lockCoupon(couponId: number): Promise<Coupon | null>;
    /** Locks the user's copy of a coupon, or returns null when the user holds none. */
    lockHeld(userId: number, couponId: number): Promise<HeldCoupon | null>;
    /** Stores a new copy for the user and counts it against the coupon's quantity. */
    issue(couponId: number, userId: number, issuedAt: Date, expiresAt: Date): Promise<HeldCoupon>;
  };
  readonly balances: {
    lock(userId: number): Promise<Won | null>;
    /** Moves the balance to `entry.balanceAfter` and appends the entry to the ledger. */
    record(userId: number, entry: LedgerEntry): Promise<void>;
  };
  readonly idempotency: {
    /** The key's state, and when it is free, the key taken for the rest of this transaction. */
    claim(userId: number, key: string): Promise<KeyState>;
    save(userId: number, key: string, fingerprint: string, result: unknown): Promise<void>;
  };
}

export interface UnitOfWork {
  /** Runs `work` in one database transaction: all of its writes commit, or none do. */
  run<T>(work: (tx: Transaction) => Promise<T>): Promise<T>;
}
