import { cancellationEffects, decideCancellation, type Order } from '@shop/domain';
import { fingerprint } from '../idempotency.ts';
import { changeOrder, type OrderChangeCommand, type OrderChangeDeps } from './order-change.ts';

export type CancelOrderCommand = OrderChangeCommand;

export interface CancelOrderResult {
  readonly order: Order;
  /** True when an earlier request with the same Idempotency-Key cancelled it. */
  readonly replayed: boolean;
}

export type CancelOrderDeps = OrderChangeDeps;

/**
 * Cancels an order and gives back what it took and no refund gave back yet (ADR 0008). Of any
 * number of concurrent cancels of one order exactly one is written; the others, decided again,
 * find it CANCELLED (409).
 */
export async function cancelOrder(deps: CancelOrderDeps, cmd: CancelOrderCommand): Promise<CancelOrderResult> {
  const { answer, replayed } = await changeOrder(deps, {
    orderId: cmd.orderId,
    actor: cmd.actor,
    key: cmd.idempotencyKey ?? null,
    signal: cmd.signal,
    print: fingerprint('POST /orders/{orderId}/cancel', { orderId: cmd.orderId }),
    what: 'cancellation',
    decide(order) {
      const cancellation = decideCancellation(order, deps.clock.now(), deps.cancelDays);
      return { effects: cancellationEffects(cancellation, deps.ids.next()), keyResult: { orderId: cmd.orderId }, answer: cancellation.order };
    },
    // A cancelled order stays as its cancellation left it: reading it repeats the first answer. Read
    // again: the key may have completed after the snapshot read the order.
    replay: async (order) => (await deps.reads.order(cmd.orderId)) ?? order,
  });
  return { order: answer, replayed };
}
