import type pg from 'pg';

/**
 * The service's global invariants as plain SQL, for tests, the benchmark and an operator's
 * after-incident check. Returns one line per violation; an empty list means all hold:
 * - every balance equals the sum of its ledger and the newest entry's balanceAfter;
 * - every order's amounts add up, it has exactly one PAYMENT entry of -paidAmount and exactly one
 *   order.paid event that describes it; one REFUND entry and one order.refunded event per partial
 *   refund, whose amounts add up to refunded_amount = floor(paidAmount × G / totalAmount) (G the
 *   gross of its refunded units), its refunded units those of its refunds; a CANCELLED order all
 *   of it refunded, and, unless refunds gave back every unit, one more REFUND entry and one
 *   order.cancelled event of the rest; its status the one its refunded units give; no event lacks
 *   its order;
 * - every coupon's issued count equals its copies and never exceeds its total, and each used copy
 *   names a not CANCELLED order that used it (a cancelled order gave its copy back);
 * - for products whose initial stock is given: stock + units sold and not given back = initial
 *   stock, stock ≥ 0.
 *
 * `eventsPurgedBefore`: the relay deletes delivered events after its retention period, so on a
 * database with a history (the benchmark's --scale seed), orders created before this time may have
 * no event left; they may still not have two. Every order since then must have exactly one.
 */
export async function auditInvariants(
  pool: pg.Pool,
  initialStock: ReadonlyMap<number, number> = new Map(),
  options: { readonly eventsPurgedBefore?: Date } = {},
): Promise<string[]> {
  const violations: string[] = [];
  const rows = async <R extends pg.QueryResultRow>(text: string, values?: unknown[]) =>
    (await pool.query<R>(text, values)).rows;

  // Set-based (one pass per table), so the audit of a benchmark's hundreds of thousands of rows
  // takes seconds rather than a correlated subquery per row.
  const balances = await rows<{ id: number; balance: number; ledger_sum: number | null; last_after: number | null }>(`
    WITH l AS (
      SELECT user_id, sum(amount)::bigint AS ledger_sum, (array_agg(balance_after ORDER BY id DESC))[1] AS last_after
      FROM balance_ledger GROUP BY user_id
    )
    SELECT u.id, u.balance, l.ledger_sum, l.last_after
    FROM users u LEFT JOIN l ON l.user_id = u.id
    WHERE u.balance <> coalesce(l.ledger_sum, 0) OR u.balance <> coalesce(l.last_after, 0) OR u.balance < 0`);
  for (const b of balances) {
    violations.push(`user ${b.id}: balance ${b.balance}, ledger sum ${b.ledger_sum ?? 0}, last balanceAfter ${b.last_after ?? 0}`);
  }

  const badOrders = await rows<{ id: string }>(`
    WITH pay AS (
      SELECT order_id, count(*) FILTER (WHERE type = 'PAYMENT') AS n, sum(amount) FILTER (WHERE type = 'PAYMENT') AS amount,
             count(*) FILTER (WHERE type = 'REFUND') AS refunds, coalesce(sum(amount) FILTER (WHERE type = 'REFUND'), 0) AS refunded
      FROM balance_ledger WHERE order_id IS NOT NULL GROUP BY order_id
    ), lines AS (
      SELECT order_id, sum(line_amount) AS total, sum(quantity) AS units, sum(refunded_quantity) AS refunded_units,
             sum(unit_price * refunded_quantity) AS refunded_gross
      FROM order_items GROUP BY order_id
    ), back AS (
      SELECT r.order_id, count(DISTINCT r.id) AS n, sum(ri.quantity) AS units FROM refunds r JOIN refund_items ri ON ri.refund_id = r.id
      GROUP BY r.order_id
    ), ev AS (
      SELECT aggregate_id, count(*) FILTER (WHERE event_type = 'order.paid') AS paid,
             count(*) FILTER (WHERE event_type = 'order.cancelled') AS cancelled,
             count(*) FILTER (WHERE event_type = 'order.refunded') AS refunded
      FROM outbox_events GROUP BY aggregate_id
    ), o AS (
      SELECT o.*, coalesce(back.n, 0) AS partial_refunds,
             -- a cancellation gave back what refunds had not: one entry and one event of its own
             (o.status = 'CANCELLED' AND coalesce(back.units, 0) < lines.units)::int AS cancels,
             lines.total, lines.units, lines.refunded_units, lines.refunded_gross, back.units AS back_units
      FROM orders o LEFT JOIN lines ON lines.order_id = o.id LEFT JOIN back ON back.order_id = o.id
    )
    SELECT o.id FROM o
    LEFT JOIN pay ON pay.order_id = o.id
    LEFT JOIN ev ON ev.aggregate_id = o.id::text
    WHERE o.paid_amount <> o.total_amount - o.discount_amount
       OR o.total IS DISTINCT FROM o.total_amount
       OR coalesce(pay.n, 0) <> 1 OR pay.amount IS DISTINCT FROM -o.paid_amount
       OR coalesce(pay.refunds, 0) <> o.partial_refunds + o.cancels
       OR coalesce(pay.refunded, 0) <> o.refunded_amount
       OR o.status <> CASE WHEN o.refunded_units = 0 THEN 'PAID' WHEN o.refunded_units < o.units THEN 'PARTIALLY_REFUNDED' ELSE 'CANCELLED' END
       OR (o.status = 'CANCELLED' AND o.refunded_amount <> o.paid_amount)
       OR (o.status <> 'CANCELLED' AND (coalesce(o.back_units, 0) <> o.refunded_units
           OR o.refunded_amount <> CASE WHEN o.total_amount = 0 THEN 0 ELSE div(o.paid_amount::numeric * o.refunded_gross, o.total_amount) END))
       OR coalesce(ev.paid, 0) > 1 OR coalesce(ev.cancelled, 0) > o.cancels OR coalesce(ev.refunded, 0) > o.partial_refunds
       OR (($1::timestamptz IS NULL OR o.created_at >= $1::timestamptz)
           AND (coalesce(ev.paid, 0) <> 1 OR coalesce(ev.cancelled, 0) <> o.cancels OR coalesce(ev.refunded, 0) <> o.partial_refunds))`,
    [options.eventsPurgedBefore ?? null],
  );
  for (const o of badOrders) violations.push(`order ${o.id}: amounts, payment or event do not agree`);

  const badEvents = await rows<{ event_id: string }>(`
    WITH lines AS (SELECT order_id, count(*) AS n FROM order_items GROUP BY order_id)
    SELECT e.event_id FROM outbox_events e
    JOIN orders o ON o.id::text = e.aggregate_id
    LEFT JOIN lines ON lines.order_id = o.id
    LEFT JOIN refunds r ON e.event_type = 'order.refunded' AND r.id = (e.payload->'data'->>'refundId')::uuid
    LEFT JOIN LATERAL (SELECT coalesce(sum(x.amount), 0) AS amount FROM refunds x WHERE x.order_id = o.id) partial ON true
    WHERE e.event_type NOT IN ('order.paid', 'order.cancelled', 'order.refunded')
       OR e.payload->>'type' <> e.event_type
       OR e.payload->>'eventId' <> e.event_id::text
       OR (e.event_type = 'order.paid' AND ((e.payload->'data'->>'paidAmount')::bigint <> o.paid_amount
           OR jsonb_array_length(e.payload->'data'->'items') <> coalesce(lines.n, 0)))
       OR (e.event_type = 'order.cancelled' AND (o.status <> 'CANCELLED'
           OR (e.payload->'data'->>'refundedAmount')::bigint <> o.paid_amount - partial.amount))
       OR (e.event_type = 'order.refunded' AND (r.order_id IS DISTINCT FROM o.id OR (e.payload->'data'->>'refundedAmount')::bigint <> r.amount))
       OR (e.payload->'data'->>'userId')::bigint <> o.user_id`);
  for (const e of badEvents) violations.push(`event ${e.event_id}: does not describe its order`);
  const orphans = await rows<{ event_id: string }>(`
    SELECT e.event_id FROM outbox_events e LEFT JOIN orders o ON o.id::text = e.aggregate_id WHERE o.id IS NULL`);
  for (const e of orphans) violations.push(`event ${e.event_id}: no such order`);

  const badCoupons = await rows<{ id: number }>(`
    SELECT c.id FROM coupons c
    WHERE c.issued_quantity <> (SELECT count(*) FROM user_coupons uc WHERE uc.coupon_id = c.id)
       OR c.issued_quantity > c.total_quantity
       OR (SELECT count(*) FROM user_coupons uc WHERE uc.coupon_id = c.id AND uc.used_at IS NOT NULL)
          <> (SELECT count(*) FROM orders o WHERE o.coupon_id = c.id AND o.status <> 'CANCELLED')`); // few coupons: per-row is fine
  for (const c of badCoupons) violations.push(`coupon ${c.id}: issued, held and used counts disagree`);
  const badUses = await rows<{ user_id: number; coupon_id: number }>(`
    SELECT uc.user_id, uc.coupon_id FROM user_coupons uc
    WHERE uc.order_id IS NOT NULL AND NOT EXISTS (
      SELECT 1 FROM orders o WHERE o.id = uc.order_id AND o.user_id = uc.user_id AND o.coupon_id = uc.coupon_id AND o.status <> 'CANCELLED')`);
  for (const u of badUses) violations.push(`user ${u.user_id} coupon ${u.coupon_id}: use names no matching order`);

  if (initialStock.size > 0) {
    const stock = await rows<{ id: number; stock: number; sold: number }>(
      // Summed in one pass, not a subquery per product: on partitioned order_items (migration 0014)
      // each product's subquery opened every month's partition (a --scale audit: 100,000 products × 25).
      `SELECT p.id, p.stock, coalesce(s.sold, 0)::bigint AS sold
       FROM products p
       LEFT JOIN (SELECT i.product_id, sum(i.quantity - i.refunded_quantity) AS sold FROM order_items i
                  WHERE i.product_id = ANY($1::bigint[]) GROUP BY i.product_id) s ON s.product_id = p.id
       WHERE p.id = ANY($1::bigint[])`,
      [[...initialStock.keys()]],
    );
    for (const s of stock) {
      const initial = initialStock.get(s.id)!;
      if (s.stock + s.sold !== initial || s.stock < 0) {
        violations.push(`product ${s.id}: stock ${s.stock} + sold ${s.sold} ≠ initial ${initial}`);
      }
    }
  }
  return violations;
}
