import {
  DomainError,
  asPlaced,
  decideOrder,
  placementEffects,
  requestedProductIds,
  type Order,
  type RequestedLine,
} from '@shop/domain';
import { assertBuysAs, type Actor } from '../authorization.ts';
import { fingerprint, keyInUse, replayable } from '../idempotency.ts';
import { abandonedWrite, MAX_DECISIONS, RetryLaterError } from '../retry-later.ts';
import {
  keyState,
  type ClientGoneSignal,
  type Clock,
  type HandoverSlot,
  type IdGenerator,
  type OrderBook,
  type PlacedKeyResult,
  type ReadStore,
  type WriteOutcome,
} from '../ports/index.ts';
import type { RecentOrderKeys } from './recent-order-keys.ts';

export interface PlaceOrderCommand {
  /** The buyer themself: an admin may not place an order for a user. */
  readonly actor: Actor;
  readonly userId: number;
  readonly items: readonly RequestedLine[];
  readonly couponId?: number | undefined;
  readonly idempotencyKey?: string | undefined;
  /** Aborted when the client goes away: a write still queued then is dropped (nothing committed). */
  readonly signal?: ClientGoneSignal | undefined;
}

export interface PlaceOrderResult {
  /**
   * As placed (a replay's too, whatever the order became since). With recentKeys, a key's first
   * answer and every replay this instance answers from memory are the same object, so an adapter
   * may keep what it made of that answer beside it (the HTTP edge keeps its bytes).
   */
  readonly order: Order;
  /** True when the order was placed by an earlier request with the same Idempotency-Key. */
  readonly replayed: boolean;
}

export interface PlaceOrderDeps {
  readonly book: OrderBook;
  readonly reads: ReadStore;
  readonly clock: Clock;
  readonly ids: IdGenerator;
  /**
   * Told after a commit that recorded events, so the relay delivers them now, not at its next poll;
   * or asked before the write for a slot, so that the relay takes the order's event from the commit.
   */
  readonly events?: { recorded(): void; reserve?(): HandoverSlot | null };
  /** Keys this instance completed a moment ago: their replays answered without a read. */
  readonly recentKeys?: RecentOrderKeys;
}

/**
 * Places and pays an order (ADR 0006, 0007, 0010). Idempotency comes first: a completed key
 * replays its order whatever the state is now, and a key in flight answers 409 (told by the write,
 * or looked at before a refusal). Otherwise the order is decided on an unlocked snapshot:
 * a refusal is a correct answer as of that instant and needs no lock, so a sold-out product
 * answers its thousandth buyer without queueing them on its row. An accepted order is written
 * with its guard and its key claim in one atomic write; when the guard no longer holds, the
 * order is decided again on a fresh snapshot.
 */
export async function placeOrder(deps: PlaceOrderDeps, cmd: PlaceOrderCommand): Promise<PlaceOrderResult> {
  assertBuysAs(cmd.actor, cmd.userId, 'placing an order');
  const productIds = requestedProductIds(cmd.items);
  const couponId = cmd.couponId ?? null;
  const key = cmd.idempotencyKey ?? null;
  // Only a keyed request is ever compared with another (without a key its snapshot finds no completed key).
  const print = key === null ? '' : fingerprint('POST /orders', { userId: cmd.userId, items: cmd.items, couponId });
  const recent = key === null ? null : (deps.recentKeys?.get(cmd.userId, key) ?? null);
  // A completed key answers the same whoever reads it: the first order, or REUSED for another body.
  if (recent && replayable(keyState(recent.completed, false), print)) return { order: recent.order, replayed: true };
  const remember = (completed: { fingerprint: string; result: unknown }, order: Order) => {
    if (key !== null) deps.recentKeys?.remember(cmd.userId, key, completed, order);
  };

  // What a completed key stored is read only once the write has said the key is completed: the
  // write must look at it anyway, under its claim, and nearly every keyed request is a first one.
  // A replay that no memory answered costs a write attempt more (ADR 0010).
  let lookAtKey = false;
  for (let attempt = 1; attempt <= MAX_DECISIONS; attempt++) {
    const seen = await deps.book.snapshot(cmd.userId, productIds, couponId, lookAtKey ? key : null);
    // The snapshot does not look whether the key is in flight (ADR 0010): completed, or not yet.
    const prior = replayable(keyState(seen.completed, false), print);
    if (prior) return replayed(deps.reads, prior.result, seen.keyedOrder, (order) => remember(seen.completed!, order));

    let decided: ReturnType<typeof decideOrder>;
    try {
      decided = decideOrder(
        { orderId: deps.ids.next(), userId: cmd.userId, items: cmd.items, couponId, now: deps.clock.now() },
        seen,
      );
    } catch (refusal) {
      if (key === null || !(refusal instanceof DomainError)) throw refusal;
      // Idempotency is answered before any business check (the contract): a duplicate whose first
      // request is being written gets 409 even when its own snapshot refuses it. The snapshot does
      // not look for that, since only a refusal needs it (ADR 0010); the refusal looks now.
      const state = await deps.book.keyState(cmd.userId, key);
      const now = replayable(state, print);
      if (now && state.state === 'completed') return replayed(deps.reads, now.result, null, (order) => remember(state.stored, order));
      throw refusal;
    }
    const { order } = decided;
    const claim = key === null ? null : { key, fingerprint: print, result: { orderId: order.orderId } satisfies PlacedKeyResult };
    const effects = placementEffects(decided, deps.ids.next());
    // Its event leased to this process's relay when it has room: delivered from the commit, not claimed.
    const slot = deps.events?.reserve?.() ?? null;
    let outcome: WriteOutcome;
    try {
      outcome = await deps.book.write({ effects, claim, signal: cmd.signal, eventLeaseMs: slot?.leaseMs });
    } catch (err) {
      // Whether it committed is unknown: if it did, its lease runs out and it is claimed then.
      slot?.release();
      throw err;
    }
    if (outcome === 'written') {
      if (slot) slot.deliver({ eventId: effects.event.eventId, type: effects.event.type, payload: effects.event, attempts: 1, createdAt: effects.at });
      else deps.events?.recorded();
      if (claim) remember(claim, order);
      return { order, replayed: false };
    }
    slot?.release();
    if (outcome === 'key_busy') throw keyInUse();
    if (outcome === 'abandoned') throw abandonedWrite();
    if (outcome === 'key_completed') lookAtKey = true;
    // Otherwise nothing was written: the next snapshot decides again, or replays the key.
  }
  throw new RetryLaterError(`the order's rows changed under it ${MAX_DECISIONS} times in a row`);
}

/** The first answer of the request that completed the key, from what it stored; `found` hears it, as placed. */
async function replayed(reads: ReadStore, stored: unknown, keyedOrder: Order | null, found: (placed: Order) => void): Promise<PlaceOrderResult> {
  const { orderId } = stored as PlacedKeyResult;
  const order = keyedOrder?.orderId === orderId ? keyedOrder : await reads.order(orderId);
  if (!order) throw new Error(`idempotent replay names order ${orderId}, which does not exist`);
  // The first answer, even if the order has been cancelled since.
  const placed = asPlaced(order);
  found(placed);
  return { order: placed, replayed: true };
}
