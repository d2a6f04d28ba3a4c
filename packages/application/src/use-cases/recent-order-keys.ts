import type { Order } from '@shop/domain';
import type { Clock, CompletedKey } from '../ports/index.ts';

export interface RecentOrderKeysOptions {
  /** Keys kept at most: the newer half and the half before it; when the newer is full, the older half goes at once. */
  readonly maxEntries: number;
  /** How long one is kept once remembered: a client's retries, far below how long the store keeps a key. */
  readonly keepMs: number;
}

/**
 * How long the store keeps a key at least (the contract: 24 hours; the database keeps 48). A key is
 * made in the write that makes its order, so the order's createdAt is the key's age: one learned
 * from the store near the end of its life is not kept past this, and a clock that steps back less
 * than the database's extra day cannot make the memory outlive the store.
 */
const STORE_KEEPS_MS = 24 * 3_600_000;

type Entry = { readonly completed: CompletedKey; readonly order: Order; readonly until: number };

/**
 * The orders this instance answered for an Idempotency-Key a moment ago, by user and key, so that a
 * client's retry of one is answered without a read (a retry storm in a flash sale is mostly
 * replays, and a replay read from the store cost a snapshot and an order read). What a completed
 * key stored never changes, so a remembered one answers exactly as the store would: the first
 * answer, or IDEMPOTENCY_KEY_REUSED for another body. Only completed keys are kept (a key in
 * flight or refused is the store's to answer), for `keepMs` and never past a day from their
 * order's creation, so a key is never answered here after the store has forgotten it. Another instance's keys are
 * not here; their replays read the store, and are remembered from then on.
 */
export class RecentOrderKeys {
  // Two generations rather than one Map evicting its oldest key at each insert: a Map's first key,
  // once many have been deleted before it, is found by skipping them all, and that was 1.8 % of
  // the service's busy samples under keyed load (V8 profile, 10,000 keys full).
  private current = new Map<string, Entry>();
  private previous = new Map<string, Entry>();
  private readonly clock: Clock;
  private readonly o: RecentOrderKeysOptions;

  constructor(clock: Clock, o: RecentOrderKeysOptions) {
    this.clock = clock;
    this.o = o;
  }

  /** What the request that completed `key` stored, and the order as `remember` was given it; null if not remembered (or no longer). */
  get(userId: number, key: string): { readonly completed: CompletedKey; readonly order: Order } | null {
    const id = `${userId}:${key}`;
    const hit = this.current.get(id) ?? this.previous.get(id);
    return hit && this.clock.now().getTime() < hit.until ? hit : null;
  }

  /** `order` is the first answer, as placed: replays answer this very object (PlaceOrderResult). */
  remember(userId: number, key: string, completed: CompletedKey, order: Order): void {
    const until = Math.min(this.clock.now().getTime() + this.o.keepMs, order.createdAt.getTime() + STORE_KEEPS_MS);
    if (this.o.maxEntries <= 0 || until <= this.clock.now().getTime()) return;
    if (this.current.size >= Math.max(1, Math.floor(this.o.maxEntries / 2))) {
      this.previous = this.current;
      this.current = new Map();
    }
    this.current.set(`${userId}:${key}`, { completed, order, until });
  }

  /** Keys held, expired ones included until their generation goes. */
  get size(): number {
    return this.current.size + this.previous.size;
  }
}
