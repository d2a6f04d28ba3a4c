import type pg from 'pg';
import { insertSelect } from '../bulk-rows.ts';
import { paidEventSql } from './paid-event-sql.ts';

/**
 * `n` order.paid events recorded now and not yet delivered, each its own order, with the payload
 * the domain records for a one-line order: a backlog for a relay to drain (apps/api/scripts/relay-cpu.ts).
 */
export async function addPendingEvents(pool: pg.Pool, n: number): Promise<void> {
  const at = `to_char(e.at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`;
  await pool.query(
    insertSelect('outbox_events', {
      event_id: 'e.id', event_type: `'order.paid'`, aggregate_id: `'pending-' || e.i`, occurred_at: 'e.at',
      payload: paidEventSql({
        id: 'e.id', at, orderId: `'pending-' || e.i`, userId: '1 + e.i % 10000',
        items: `jsonb_build_array(jsonb_build_object('productId', 1 + e.i % 1000, 'quantity', 1, 'unitPrice', 5000, 'lineAmount', 5000))`,
        total: '5000', discount: '0', couponId: 'NULL',
      }),
    }, 'FROM (SELECT i, uuid_v7() AS id, now() AS at FROM generate_series(1, $1::int) i) e'),
    [n],
  );
  await pool.query('VACUUM ANALYZE outbox_events');
}
