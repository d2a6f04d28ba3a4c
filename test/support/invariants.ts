import { expect } from 'vitest';
import type { TestDatabase } from './database.ts';

/**
 * The service's global invariants, checked with plain SQL after a run:
 * - every balance equals the sum of its ledger and the newest entry's balanceAfter;
 * - every order's amounts add up, it has exactly one PAYMENT entry of -paidAmount and exactly one
 *   order.paid event whose data is the order;
 * - every coupon's issued count equals its copies, and each used copy names an order that used it;
 * - for products whose initial stock is given: stock + units sold = initial stock.
 */
export async function assertInvariants(tdb: TestDatabase, initialStock: Map<number, number> = new Map()): Promise<void> {
  const balances = await tdb.query<{ id: number; balance: number; ledger_sum: number | null; last_after: number | null }>(`
    SELECT u.id, u.balance,
           (SELECT sum(amount)::bigint FROM balance_ledger l WHERE l.user_id = u.id) AS ledger_sum,
           (SELECT balance_after FROM balance_ledger l WHERE l.user_id = u.id ORDER BY id DESC LIMIT 1) AS last_after
    FROM users u`);
  for (const b of balances) {
    expect(b.ledger_sum ?? 0, `user ${b.id} ledger sum`).toBe(b.balance);
    expect(b.last_after ?? 0, `user ${b.id} last balanceAfter`).toBe(b.balance);
  }

  const badOrders = await tdb.query(`
    SELECT o.id FROM orders o
    WHERE o.paid_amount <> o.total_amount - o.discount_amount
       OR o.total_amount <> (SELECT sum(line_amount) FROM order_items i WHERE i.order_id = o.id)
       OR (SELECT count(*) FROM balance_ledger l WHERE l.order_id = o.id AND l.type = 'PAYMENT' AND l.amount = -o.paid_amount) <> 1
       OR (SELECT count(*) FROM outbox_events e WHERE e.aggregate_id = o.id::text) <> 1`);
  expect(badOrders, 'orders whose amounts, payment or event do not agree').toEqual([]);

  const badEvents = await tdb.query(`
    SELECT e.event_id FROM outbox_events e JOIN orders o ON o.id::text = e.aggregate_id
    WHERE e.event_type <> 'order.paid'
       OR e.payload->>'eventId' <> e.event_id::text
       OR (e.payload->'data'->>'paidAmount')::bigint <> o.paid_amount
       OR (e.payload->'data'->>'userId')::bigint <> o.user_id
       OR jsonb_array_length(e.payload->'data'->'items') <> (SELECT count(*) FROM order_items i WHERE i.order_id = o.id)`);
  expect(badEvents, 'events that do not describe their order').toEqual([]);
  const [orphans] = await tdb.query<{ n: number }>(`
    SELECT count(*)::int AS n FROM outbox_events e WHERE NOT EXISTS (SELECT 1 FROM orders o WHERE o.id::text = e.aggregate_id)`);
  expect(orphans!.n, 'events without an order').toBe(0);

  const badCoupons = await tdb.query(`
    SELECT c.id FROM coupons c
    WHERE c.issued_quantity <> (SELECT count(*) FROM user_coupons uc WHERE uc.coupon_id = c.id)
       OR c.issued_quantity > c.total_quantity
       OR (SELECT count(*) FROM user_coupons uc WHERE uc.coupon_id = c.id AND uc.used_at IS NOT NULL)
          <> (SELECT count(*) FROM orders o WHERE o.coupon_id = c.id)`);
  expect(badCoupons, 'coupons whose counts disagree').toEqual([]);
  const badUses = await tdb.query(`
    SELECT uc.user_id, uc.coupon_id FROM user_coupons uc
    WHERE uc.order_id IS NOT NULL AND NOT EXISTS (
      SELECT 1 FROM orders o WHERE o.id = uc.order_id AND o.user_id = uc.user_id AND o.coupon_id = uc.coupon_id)`);
  expect(badUses, 'coupon uses that name no matching order').toEqual([]);

  for (const [productId, initial] of initialStock) {
    const [row] = await tdb.query<{ stock: number; sold: number }>(
      `SELECT p.stock, coalesce((SELECT sum(quantity) FROM order_items i WHERE i.product_id = p.id), 0)::bigint AS sold
       FROM products p WHERE p.id = $1`,
      [productId],
    );
    expect(row!.stock + row!.sold, `product ${productId}: stock + sold`).toBe(initial);
  }
}

/** Counts replies by "status code" so a failed expectation shows the whole outcome. */
export function outcomes(replies: ReadonlyArray<{ status: number; body: any }>): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const r of replies) {
    const key = r.status < 300 ? String(r.status) : `${r.status} ${r.body?.code ?? '?'}`;
    counts[key] = (counts[key] ?? 0) + 1;
  }
  return counts;
}
