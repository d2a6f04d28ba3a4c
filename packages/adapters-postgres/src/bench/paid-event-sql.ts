/**
 * The order.paid event as the service writes it (packages/domain/src/events.ts), in SQL, for the
 * rows the benchmark writes without the service: each argument an SQL expression. The history
 * seed's events are held to the domain's by test/bench-seed.test.ts.
 */
export function paidEventSql(e: { id: string; at: string; orderId: string; userId: string; items: string; total: string; discount: string; couponId: string }) {
  return `jsonb_build_object('eventId', ${e.id}, 'type', 'order.paid', 'occurredAt', ${e.at}, 'data', jsonb_build_object(
      'orderId', ${e.orderId}, 'userId', ${e.userId}, 'items', ${e.items}, 'totalAmount', ${e.total}, 'discountAmount', ${e.discount},
      'paidAmount', ${e.total} - ${e.discount}, 'couponId', ${e.couponId}, 'createdAt', ${e.at}))`;
}
