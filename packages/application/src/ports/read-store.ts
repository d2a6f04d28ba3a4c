import type { HeldCoupon, Order, RefundRecord, Won } from '@shop/domain';
import type { LedgerEntry, Page, Product } from './records.ts';

/**
 * Reads that need no lock; each sees one committed state. Cursors are opaque to callers. The
 * catalog (`product`, `products`) may be a moment old (a read replica, ADR 0013); everything else
 * is a user's own data and sees that user's every completed write.
 */
export interface ReadStore {
  userExists(userId: number): Promise<boolean>;
  balance(userId: number): Promise<Won | null>;
  ledger(userId: number, limit: number, cursor: string | null): Promise<Page<LedgerEntry>>;
  product(productId: number): Promise<Product | null>;
  products(limit: number, cursor: string | null): Promise<Page<Product>>;
  order(orderId: string): Promise<Order | null>;
  /** The order's partial refunds, oldest first (none for an id that names no order). */
  refunds(orderId: string): Promise<RefundRecord[]>;
  ordersOf(userId: number, limit: number, cursor: string | null): Promise<Page<Order>>;
  heldCoupons(userId: number): Promise<HeldCoupon[]>;
}

/** Several products' catalog rows in one read (the product cache's batches); a moment old, like `ReadStore.product`. Unknown ids are left out. */
export interface ProductBatchReads {
  productsByIds(productIds: readonly number[]): Promise<Product[]>;
}
