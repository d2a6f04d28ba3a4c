import { DomainError, type Order, type OrderEffects } from '@shop/domain';
import { assertActsFor, type Actor } from '../authorization.ts';
import { keyInUse, replayable } from '../idempotency.ts';
import { abandonedWrite, MAX_DECISIONS, RetryLaterError } from '../retry-later.ts';
import type { ClientGoneSignal, Clock, IdGenerator, OrderBook, ReadStore } from '../ports/index.ts';

/** What a change of an existing order (a cancel, a refund) needs. */
export interface OrderChangeDeps {
  readonly book: OrderBook;
  readonly reads: ReadStore;
  readonly clock: Clock;
  readonly ids: IdGenerator;
  /** How many days after it was placed an order may be cancelled or refunded (ORDER_CANCEL_DAYS). */
  readonly cancelDays: number;
  readonly events?: { recorded(): void };
}

/** What a request to change an order (POST /orders/{orderId}/cancel, …/refunds) carries. */
export interface OrderChangeCommand {
  readonly orderId: string;
  readonly idempotencyKey?: string | undefined;
  /** Aborted when the client goes away: a write still queued then is dropped (nothing committed). */
  readonly signal?: ClientGoneSignal | undefined;
  /** The order's owner or an admin. */
  readonly actor: Actor;
}

/** One change, as its use case states it. */
export interface OrderChange<R> {
  readonly orderId: string;
  /** The order's owner or an admin; checked once the order is read, as only then is its owner known (404 before 403). */
  readonly actor: Actor;
  readonly key: string | null;
  /** Aborted when the client goes away: a write still queued then is dropped. */
  readonly signal?: ClientGoneSignal | undefined;
  /** The request's fingerprint (idempotency.ts). */
  readonly print: string;
  /** e.g. "cancellation", for the 503 after MAX_DECISIONS lost races. */
  readonly what: string;
  /** The domain's decision on the order as read: its effects, what its key stores, and the answer. */
  decide(order: Order): { effects: OrderEffects; keyResult: unknown; answer: R };
  /** The first answer of a completed key, from what it stored. */
  replay(order: Order, stored: unknown): Promise<R>;
}

/**
 * How an existing order is changed (ADR 0008, 0012), the way orders are placed: decided on an
 * unlocked snapshot, written by the order book under the decision's guard (the order's status and
 * refunded units as seen), decided again when that no longer holds. So of concurrent changes of one
 * order each is written on the state the ones before it left, or refused by the domain on that
 * state. The key lives in the order owner's keys, whoever sends the request (the owner or an admin),
 * as a charge's key lives in the charged user's.
 */
export async function changeOrder<R>(deps: OrderChangeDeps, change: OrderChange<R>): Promise<{ answer: R; replayed: boolean }> {
  for (let attempt = 1; attempt <= MAX_DECISIONS; attempt++) {
    const seen = await deps.book.changeSnapshot(change.orderId, change.key);
    if (!seen.order) throw new DomainError('ORDER_NOT_FOUND', `no order with id ${change.orderId}`);
    assertActsFor(change.actor, seen.order.userId);
    const prior = replayable(seen.key, change.print);
    if (prior) return { answer: await change.replay(seen.order, prior.result), replayed: true };

    const { effects, keyResult, answer } = change.decide(seen.order);
    const outcome = await deps.book.write({
      effects,
      claim: change.key === null ? null : { key: change.key, fingerprint: change.print, result: keyResult },
      signal: change.signal,
    });
    if (outcome === 'written') {
      deps.events?.recorded();
      return { answer, replayed: false };
    }
    if (outcome === 'key_busy') throw keyInUse();
    if (outcome === 'abandoned') throw abandonedWrite();
    // Otherwise nothing was written: the next snapshot decides again, or replays the key.
  }
  throw new RetryLaterError(`the order's rows changed under its ${change.what} ${MAX_DECISIONS} times in a row`);
}
