import type { Won } from './money.ts';
import type { Order } from './order.ts';
import type { Cancellation } from './order-cancellation.ts';

/**
 * What writing a decision does to the balance and to stock, signed. Every writer (write_orders
 * through the Postgres adapter, the in-memory fake) applies exactly these, so "an order debits
 * what it paid and takes its units; a cancellation gives both back" is stated here once.
 */
export interface BookChanges {
  readonly balanceChange: Won;
  /** One per line (an order) or per product (a cancellation's restock, in lock order). */
  readonly stockChanges: ReadonlyArray<{ readonly productId: number; readonly change: number }>;
}

export function placementChanges(order: Order): BookChanges {
  return {
    balanceChange: 0 - order.paidAmount, // never -0
    stockChanges: order.items.map((l) => ({ productId: l.productId, change: -l.quantity })),
  };
}

export function cancellationChanges(c: Cancellation): BookChanges {
  return {
    balanceChange: c.refund,
    stockChanges: c.restock.map((r) => ({ productId: r.productId, change: r.quantity })),
  };
}
