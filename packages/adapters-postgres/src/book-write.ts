import type { BookWrite } from '@shop/application';

/**
 * One write as `write_order_group` reads it (migrations/definitions/write_order_group.sql): the
 * domain's effects and the key claim, as JSON. Nothing is decided or derived here.
 */
export function batchEntry({ effects: e, claim, eventLeaseMs }: BookWrite): Record<string, unknown> {
  return {
    orderId: e.order.orderId,
    userId: e.guard.userId,
    at: e.at,
    balanceChange: e.balanceChange,
    ledgerType: e.ledgerType,
    stockChanges: e.stockChanges,
    coupon: e.coupon,
    guard: e.guard,
    order: e.order,
    refund: e.refund,
    event: e.event,
    claim,
    // Absent (undefined is not sent) for an event due at once.
    leaseMs: eventLeaseMs,
  };
}
