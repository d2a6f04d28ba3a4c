import type { BookWrite } from '@shop/application';

/**
 * One write as `write_orders` (migration 0008) reads it: what the domain decided, as plain changes.
 * Nothing is decided here: a payment takes the order's paidAmount and its units, a cancellation
 * gives back the refund and the units its Cancellation names.
 */
export function batchEntry(w: BookWrite): Record<string, unknown> {
  const common = { kind: w.kind, ledgerType: w.ledgerType, event: w.event, claim: w.claim };
  if (w.kind === 'place') {
    const { order } = w;
    return {
      ...common,
      ...order,
      at: order.createdAt,
      balanceChange: -order.paidAmount,
      stockChange: order.items.map((l) => ({ productId: l.productId, change: -l.quantity })),
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
    balanceChange: c.refund,
    stockChange: c.restock.map((r) => ({ productId: r.productId, change: r.quantity })),
    guard: c.guard,
  };
}
