import { DomainError, cancellationEffects, decideCancellation, type Order } from '@shop/domain';
import { assertActsFor, type Actor } from '../authorization.ts';
import { fingerprint, keyInUse, replayable } from '../idempotency.ts';
import { MAX_DECISIONS, RetryLaterError } from '../retry-later.ts';
import type { Clock, IdGenerator, OrderBook, ReadStore } from '../ports/index.ts';

export interface CancelOrderCommand {
  readonly orderId: string;
  readonly idempotencyKey?: string | undefined;
  /** The order's owner or an admin; checked once the order is read, as only then is its owner known (404 before 403). */
  readonly actor: Actor;
}

export interface CancelOrderResult {
  readonly order: Order;
  /** True when an earlier request with the same Idempotency-Key cancelled it. */
  readonly replayed: boolean;
}

export interface CancelOrderDeps {
  readonly book: OrderBook;
  readonly reads: ReadStore;
  readonly clock: Clock;
  readonly ids: IdGenerator;
  /** How many days after it was placed an order may be cancelled (ORDER_CANCEL_DAYS). */
  readonly cancelDays: number;
  readonly events?: { recorded(): void };
}

/**
 * Cancels a paid order and gives back what it took (ADR 0008), the way orders are placed: decided
 * on an unlocked snapshot, written by the order book under the decision's guard (the order still
 * PAID), decided again when that no longer holds. So of any number of concurrent cancels of one
 * order exactly one is written; the others, decided again, find it CANCELLED (409).
 *
 * The key lives in the order owner's keys, whoever sends the request (the owner or an admin),
 * as a charge's key lives in the charged user's.
 */
export async function cancelOrder(deps: CancelOrderDeps, cmd: CancelOrderCommand): Promise<CancelOrderResult> {
  const key = cmd.idempotencyKey ?? null;
  const print = fingerprint('POST /orders/{orderId}/cancel', { orderId: cmd.orderId });

  for (let attempt = 1; attempt <= MAX_DECISIONS; attempt++) {
    const seen = await deps.book.changeSnapshot(cmd.orderId, key);
    if (!seen.order) throw new DomainError('ORDER_NOT_FOUND', `no order with id ${cmd.orderId}`);
    assertActsFor(cmd.actor, seen.order.userId);
    // A cancelled order stays as its cancellation left it: reading it repeats the first answer. Read
    // again: the key may have completed after the snapshot read the order.
    if (replayable(seen.key, print)) return { order: (await deps.reads.order(cmd.orderId)) ?? seen.order, replayed: true };

    const cancellation = decideCancellation(seen.order, deps.clock.now(), deps.cancelDays);
    const outcome = await deps.book.write({
      effects: cancellationEffects(cancellation, deps.ids.next()),
      claim: key === null ? null : { key, fingerprint: print, result: { orderId: cmd.orderId } },
    });
    if (outcome === 'written') {
      deps.events?.recorded();
      return { order: cancellation.order, replayed: false };
    }
    if (outcome === 'key_busy') throw keyInUse();
    // Otherwise nothing was written: the next snapshot decides again, or replays the key.
  }
  throw new RetryLaterError(`the order's rows changed under its cancellation ${MAX_DECISIONS} times in a row`);
}
