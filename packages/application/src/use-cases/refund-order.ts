import { checkRefundLines, decideRefund, orderAfterRefunds, refundEffects, type Order, type RefundRecord, type Restock } from '@shop/domain';
import { fingerprint } from '../idempotency.ts';
import type { ReadStore } from '../ports/index.ts';
import { changeOrder, type OrderChangeCommand, type OrderChangeDeps } from './order-change.ts';

export interface RefundOrderCommand extends OrderChangeCommand {
  /** As the client listed them. */
  readonly items: readonly Restock[];
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

export type RefundOrderDeps = OrderChangeDeps;

/**
 * Refunds some units of an order (ADR 0012). Two concurrent refunds never give back one unit twice:
 * the second, decided again, sees the first's units gone (or the order cancelled).
 */
export async function refundOrder(deps: RefundOrderDeps, cmd: RefundOrderCommand): Promise<RefundOrderResult> {
  checkRefundLines(cmd.items); // a malformed request is 400 before the order is looked for
  const { answer, replayed } = await changeOrder(deps, {
    orderId: cmd.orderId,
    actor: cmd.actor,
    key: cmd.idempotencyKey ?? null,
    signal: cmd.signal,
    print: fingerprint('POST /orders/{orderId}/refunds', { orderId: cmd.orderId, items: cmd.items }),
    what: 'refund',
    decide(order) {
      const refund = decideRefund(order, cmd.items, deps.ids.next(), deps.clock.now(), deps.cancelDays);
      const keyResult: RefundKeyResult = { orderId: cmd.orderId, refundId: refund.record.refundId };
      return { effects: refundEffects(refund, deps.ids.next()), keyResult, answer: { refund: refund.record, order: refund.order } };
    },
    replay: (order, stored) => firstAnswer(deps.reads, order, stored as RefundKeyResult),
  });
  return { ...answer, replayed };
}

/** A replay's answer: the stored refund, and the order as it and the refunds before it left it. */
async function firstAnswer(reads: ReadStore, order: Order, stored: RefundKeyResult) {
  const refunds = await reads.refunds(order.orderId);
  const refund = refunds.find((r) => r.refundId === stored.refundId);
  if (!refund) throw new Error(`the key's refund ${stored.refundId} of order ${order.orderId} is missing`);
  return { refund, order: orderAfterRefunds(order, refunds, refund.refundId) };
}
