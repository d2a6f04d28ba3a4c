import type { Order, OrderEffects, OrderSnapshot } from '@shop/domain';
import type { CompletedKey, KeyState } from './key-state.ts';

export type { OrderSnapshot };

/** The result an order's placement stores under its key: the order it placed. */
export interface PlacedKeyResult {
  readonly orderId: string;
}

/**
 * An order's snapshot, and what a completed request stored under its key (null: none, or no key).
 * Whether the key is in flight is not looked at: the write tells an accepted order (key_busy), and
 * a refused one asks `keyState` (ADR 0010).
 */
export interface OrderSnapshotWithKey extends OrderSnapshot {
  readonly completed: CompletedKey | null;
  /**
   * The order that the completed key's result names (a PlacedKeyResult), read with the snapshot so
   * that a replay needs no second read; null when there is none.
   */
  readonly keyedOrder: Order | null;
}

/** The key a write claims: stored with its effects, in the same commit, or not at all. */
export interface KeyClaim {
  readonly key: string;
  readonly fingerprint: string;
  readonly result: unknown;
}

/**
 * What says a request's client has gone: an AbortSignal, or anything read the same way (the HTTP
 * adapter's reads the answer's state, and listens only while a write waits in a queue).
 */
export interface ClientGoneSignal {
  readonly aborted: boolean;
  addEventListener(type: 'abort', listener: () => void, options?: { once?: boolean }): void;
  removeEventListener(type: 'abort', listener: () => void): void;
}

/**
 * One decided write, an order or its cancellation: the domain's effects, applied if and only if
 * their guard holds, and the key the request claims, stored in the same commit or not at all.
 */
export interface BookWrite {
  readonly effects: OrderEffects;
  readonly claim: KeyClaim | null;
  /** Aborted when the request's client has gone: a write still queued then is not written. */
  readonly signal?: ClientGoneSignal | undefined;
  /**
   * A new order's event is written leased to this process for this long (attempts 1, due when
   * the lease ends), to be delivered from memory (HandoverSlot); without it, due at once.
   */
  readonly eventLeaseMs?: number | undefined;
}

/** The snapshot a change of an order (a cancel, a refund) is decided on: the order (null when there is none) and the state of the key in its owner's keys (free without a key). */
export interface ChangeSnapshot {
  readonly order: Order | null;
  readonly key: KeyState;
}

/**
 * What became of one write; only `written` changed anything.
 * - written: every effect, its event and its key committed.
 * - guard_failed: the rows no longer are as the decision needs them; decide again on a new snapshot.
 * - key_completed: another request with the key completed since the snapshot; the next snapshot replays it.
 * - key_busy: another request's write holds the key right now (409).
 * - rolled_back: the group rolled back through no fault of this write (a deadlock, or a lost answer
 *   that did not commit); decide again.
 * - abandoned: it was never sent: its client went away, or it waited in the queue past the
 *   writer's deadline (a client would have given up and retried by then). Answered 503.
 */
export type WriteOutcome = 'written' | 'guard_failed' | 'key_completed' | 'key_busy' | 'rolled_back' | 'abandoned';

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
   * Applies the effects if, and only if, their guard holds and the key (if any) is neither
   * completed nor claimed. When the database's answer is lost, the adapter finds out what happened
   * before it answers: it never reports anything but `written` for a write that committed.
   */
  write(write: BookWrite): Promise<WriteOutcome>;
  /** The key's state now; asked when a keyed order is refused, since idempotency is answered first. */
  keyState(userId: number, key: string): Promise<KeyState>;
  /** The order to cancel or refund and, when `key` is given, that key in the order's owner's keys. */
  changeSnapshot(orderId: string, key: string | null): Promise<ChangeSnapshot>;
}
