import {
  checkRefundLines,
  decideRefund,
  DomainError,
  orderAfterRefunds,
  refundEffects,
  type Order,
  type RefundRecord,
  type Restock,
} from '@shop/domain';
import { assertActsFor, type Actor } from '../authorization.ts';
import { fingerprint, keyInUse, replayable } from '../idempotency.ts';
import { MAX_DECISIONS, RetryLaterError } from '../retry-later.ts';
import type { Clock, IdGenerator, OrderBook, ReadStore } from '../ports/index.ts';

export interface RefundOrderCommand {
  readonly orderId: string;
  /** As the client listed them. */
  readonly items: readonly Restock[];
  readonly idempotencyKey?: string | undefined;
  /** The order's owner or an admin; checked once the order is read (404 before 403). */
  readonly actor: Actor;
}

export interface RefundOrderResult {
  readonly refund: RefundRecord;
  /** The order as this refund left it. */
  readonly order: Order;
  /** True when an earlier request with the same Idempotency-Key made this refund. */
  readonly replayed: boolean;
}

/** What a refund stores under its key: the refund, from which its first answer is rebuilt. */
interface RefundKeyResult {
  readonly orderId: string;
  readonly refundId: string;
}

export interface RefundOrderDeps {
  readonly book: OrderBook;
  readonly reads: ReadStore;
  readonly clock: Clock;
  readonly ids: IdGenerator;
  /** How many days after it was placed an order may be refunded (ORDER_CANCEL_DAYS). */
  readonly cancelDays: number;
  readonly events?: { recorded(): void };
}

/**
 * Refunds some units of an order, the way it is cancelled: decided on an unlocked snapshot,
 * written by the order book under the decision's guard (the order's status and refunded units as
 * seen), decided again when that no longer holds. So two concurrent refunds never give back one
 * unit twice: the second, decided again, sees the first's units gone (or the order cancelled).
 * The key lives in the order owner's keys, as a cancel's does.
 */
export async function refundOrder(deps: RefundOrderDeps, cmd: RefundOrderCommand): Promise<RefundOrderResult> {
  checkRefundLines(cmd.items);
  const key = cmd.idempotencyKey ?? null;
  const print = fingerprint('POST /orders/{orderId}/refunds', { orderId: cmd.orderId, items: cmd.items });

  for (let attempt = 1; attempt <= MAX_DECISIONS; attempt++) {
    const seen = await deps.book.changeSnapshot(cmd.orderId, key);
    if (!seen.order) throw new DomainError('ORDER_NOT_FOUND', `no order with id ${cmd.orderId}`);
    assertActsFor(cmd.actor, seen.order.userId);
    const prior = replayable(seen.key, print);
    if (prior) return { ...(await firstAnswer(deps.reads, seen.order, prior.result as RefundKeyResult)), replayed: true };

    const refund = decideRefund(seen.order, cmd.items, deps.ids.next(), deps.clock.now(), deps.cancelDays);
    const result: RefundKeyResult = { orderId: cmd.orderId, refundId: refund.record.refundId };
    const outcome = await deps.book.write({
      effects: refundEffects(refund, deps.ids.next()),
      claim: key === null ? null : { key, fingerprint: print, result },
    });
    if (outcome === 'written') {
      deps.events?.recorded();
      return { refund: refund.record, order: refund.order, replayed: false };
    }
    if (outcome === 'key_busy') throw keyInUse();
  }
  throw new RetryLaterError(`the order's rows changed under its refund ${MAX_DECISIONS} times in a row`);
}

/** A replay's answer: the stored refund, and the order as it and the refunds before it left it. */
async function firstAnswer(reads: ReadStore, order: Order, stored: RefundKeyResult) {
  const refunds = await reads.refunds(order.orderId);
  const refund = refunds.find((r) => r.refundId === stored.refundId);
  if (!refund) throw new Error(`the key's refund ${stored.refundId} of order ${order.orderId} is missing`);
  return { refund, order: orderAfterRefunds(order, refunds, refund.refundId) };
}
