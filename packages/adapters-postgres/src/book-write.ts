import { cancellationChanges, placementChanges, type BookChanges } from '@shop/domain';
import type { BookWrite } from '@shop/application';

/**
 * One write as `write_orders` (migration 0008) reads it: what the domain decided, as plain changes.
 * Nothing is decided here: the changes are the domain's (placementChanges, cancellationChanges).
 */
export function batchEntry(w: BookWrite): Record<string, unknown> {
  const common = { kind: w.kind, ledgerType: w.ledgerType, event: w.event, claim: w.claim };
  if (w.kind === 'place') {
    const { order } = w;
    return {
      ...common,
      ...order,
      at: order.createdAt,
      ...changes(placementChanges(order)),
      guard: w.guard,
    };
  }
  const { cancellation: c } = w;
  return {
    ...common,
    orderId: c.order.orderId,
    userId: c.order.userId,
    status: c.order.status,
    couponId: c.releasedCoupon,
    at: c.order.cancelledAt,
    ...changes(cancellationChanges(c)),
    guard: c.guard,
  };
}

const changes = (c: BookChanges) => ({ balanceChange: c.balanceChange, stockChange: c.stockChanges });
