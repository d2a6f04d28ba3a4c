import type pg from 'pg';
import type { OutboxRecord } from '@shop/application';
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

/**
 * The pending events as a writer leases them at insert for its own relay (ADR 0003, decision 6):
 * attempts 1, due when the lease ends; returned as the records handed over at commit.
 */
export async function leasePendingEvents(pool: pg.Pool, leaseMs: number): Promise<OutboxRecord[]> {
  const { rows } = await pool.query<{ event_id: string; event_type: string; payload: unknown; created_at: Date }>(
    `UPDATE outbox_events SET attempts = 1, next_attempt_at = now() + $1 * interval '1 millisecond'
      WHERE delivered_at IS NULL RETURNING event_id, event_type, payload, created_at`,
    [leaseMs],
  );
  await pool.query('VACUUM ANALYZE outbox_events');
  return rows.map((r) => ({ eventId: r.event_id, type: r.event_type, payload: r.payload, attempts: 1, createdAt: r.created_at }));
}
