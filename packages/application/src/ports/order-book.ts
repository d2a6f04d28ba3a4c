import type { Cancellation, LedgerEntryType, Order, OrderCancelledEvent, OrderGuard, OrderPaidEvent, OrderSnapshot } from '@shop/domain';

export type { OrderSnapshot };

/** What a completed request stored under its Idempotency-Key. */
export interface CompletedKey {
  readonly fingerprint: string;
  readonly result: unknown;
}

/** The result an order's placement stores under its key: the order it placed. */
export interface PlacedKeyResult {
  readonly orderId: string;
}

/** An Idempotency-Key's state at one instant (no key: null and false). */
export interface KeyState {
  /** What a completed request stored under the key; null while it is not completed. */
  readonly completedKey: CompletedKey | null;
  /** Another request's write holds the key right now. */
  readonly keyInFlight: boolean;
}

/**
 * An order's snapshot, and what a completed request stored under its key. Whether the key is in
 * flight is not looked at: the write tells an accepted order (busy), and a refused one asks
 * `keyState` (ADR 0010).
 */
export interface OrderSnapshotWithKey extends OrderSnapshot {
  readonly completedKey: CompletedKey | null;
  /**
   * The order that the completed key's result names (a PlacedKeyResult), read with the snapshot so
   * that a replay needs no second read; null when there is none.
   */
  readonly keyedOrder: Order | null;
}

/** The key an order claims: stored with the order, in the same commit, or not at all. */
export interface KeyClaim {
  readonly key: string;
  readonly fingerprint: string;
  readonly result: unknown;
}

/** One decided order, with everything its write changes and the guard it is written under. */
export interface OrderWrite {
  readonly kind: 'place';
  readonly order: Order;
  readonly guard: OrderGuard;
  readonly ledgerType: LedgerEntryType;
  readonly event: OrderPaidEvent;
  readonly claim: KeyClaim | null;
}

/** One decided cancellation: the order's undo, written under its guard (the order still PAID). */
export interface CancelWrite {
  readonly kind: 'cancel';
  readonly cancellation: Cancellation;
  readonly ledgerType: LedgerEntryType;
  readonly event: OrderCancelledEvent;
  readonly claim: KeyClaim | null;
}

/** Everything the book writes: orders and their cancellations, through one writer and lock order. */
export type BookWrite = OrderWrite | CancelWrite;

/** A cancellation's snapshot: the order (null when there is none) and the state of the key in its owner's keys. */
export interface CancelSnapshot extends KeyState {
  readonly order: Order | null;
}

/**
 * - placed: the order (or its cancellation), its stock, coupon use, payment, ledger entry, event (and key) committed.
 * - stale: the guard no longer held, or the key completed meanwhile; nothing was written.
 * - busy: another write in flight holds the key; nothing was written.
 */
export type WriteOutcome = 'placed' | 'stale' | 'busy';

/**
 * The one way orders are written: decide on a snapshot read without locks, then write in one
 * atomic step that holds the rows only inside the database, for that step.
 */
export interface OrderBook {
  snapshot(
    userId: number,
    ascendingProductIds: readonly number[],
    couponId: number | null,
    key: string | null,
  ): Promise<OrderSnapshotWithKey>;
  /**
   * Writes the order if, and only if, its guard holds and its key (if any) is neither completed
   * nor claimed. When the database's answer is lost, the adapter finds out what happened before
   * it answers: it never reports `stale` or `busy` for an order that committed.
   */
  write(write: BookWrite): Promise<WriteOutcome>;
  /** The key's state now; asked when a keyed request is refused, since idempotency is answered first. */
  keyState(userId: number, key: string): Promise<KeyState>;
  /** The order to cancel and, when `key` is given, that key in the order's owner's keys. */
  cancelSnapshot(orderId: string, key: string | null): Promise<CancelSnapshot>;
}
