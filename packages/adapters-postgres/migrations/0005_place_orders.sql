-- The optimistic order write of ADR 0006, for a group of concurrent orders in one transaction.
-- `batch` is a JSON array of orders as pgOrderBook sends them:
--   { orderId, userId, couponId|null, paidAmount, totalAmount, discountAmount, createdAt,
--     items: [{ productId, quantity, unitPrice, lineAmount }], eventId, event }
-- Returns, per order and in the same order: 'placed'; 'stale' when what it was decided on no
-- longer holds; or 'SQLSTATE: message' when it failed otherwise. A failed order is rolled back
-- alone, in its own subtransaction; the others commit together, so a hot product row is locked
-- and committed once for the whole group.
CREATE FUNCTION place_orders(batch jsonb) RETURNS text[]
LANGUAGE plpgsql AS $$
DECLARE
  o jsonb;
  outcome text[] := '{}';
  ids bigint[];
  quantities int[];
  prices bigint[];
  amounts bigint[];
  at timestamptz;
  paid bigint;
  n_wallet int;
  n_coupon int;
  n_stock int;
BEGIN
  -- Every row the group may change, locked up front in the global lock order (ADR 0001):
  -- balances, then coupon copies, then products, each by key. Locks taken here belong to the
  -- whole transaction, so an order rolled back below does not release a row another order needs.
  PERFORM 1 FROM users
   WHERE id IN (SELECT (e->>'userId')::bigint FROM jsonb_array_elements(batch) e)
   ORDER BY id FOR NO KEY UPDATE;
  PERFORM 1 FROM user_coupons
   WHERE (user_id, coupon_id) IN (SELECT (e->>'userId')::bigint, (e->>'couponId')::bigint
                                    FROM jsonb_array_elements(batch) e WHERE jsonb_typeof(e->'couponId') = 'number')
   ORDER BY user_id, coupon_id FOR NO KEY UPDATE;
  PERFORM 1 FROM products
   WHERE id IN (SELECT (i->>'productId')::bigint FROM jsonb_array_elements(batch) e, jsonb_array_elements(e->'items') i)
   ORDER BY id FOR NO KEY UPDATE;

  FOR o IN SELECT e FROM jsonb_array_elements(batch) e LOOP
    BEGIN
      SELECT array_agg((i->>'productId')::bigint ORDER BY n), array_agg((i->>'quantity')::int ORDER BY n),
             array_agg((i->>'unitPrice')::bigint ORDER BY n), array_agg((i->>'lineAmount')::bigint ORDER BY n)
        INTO ids, quantities, prices, amounts
        FROM jsonb_array_elements(o->'items') WITH ORDINALITY AS t(i, n);
      at := (o->>'createdAt')::timestamptz;
      paid := (o->>'paidAmount')::bigint;
      -- Statement order is free here (every row is locked already); the order row comes before
      -- the coupon copy that references it.
      UPDATE users SET balance = balance - paid WHERE id = (o->>'userId')::bigint AND balance >= paid;
      GET DIAGNOSTICS n_wallet = ROW_COUNT;
      UPDATE products AS p SET stock = p.stock - l.quantity, updated_at = at
        FROM unnest(ids, quantities, prices) AS l(id, quantity, price)
       WHERE p.id = l.id AND p.stock >= l.quantity AND p.price = l.price;
      GET DIAGNOSTICS n_stock = ROW_COUNT;
      INSERT INTO orders (id, user_id, status, total_amount, discount_amount, paid_amount, coupon_id, created_at)
      VALUES ((o->>'orderId')::uuid, (o->>'userId')::bigint, 'PAID', (o->>'totalAmount')::bigint,
              (o->>'discountAmount')::bigint, paid, (o->>'couponId')::bigint, at);
      UPDATE user_coupons SET used_at = at, order_id = (o->>'orderId')::uuid
       WHERE user_id = (o->>'userId')::bigint AND coupon_id = (o->>'couponId')::bigint AND used_at IS NULL;
      GET DIAGNOSTICS n_coupon = ROW_COUNT;
      PERFORM order_guard(n_wallet = 1
                          AND n_coupon = (CASE WHEN jsonb_typeof(o->'couponId') = 'number' THEN 1 ELSE 0 END)
                          AND n_stock = cardinality(ids));
      INSERT INTO order_items (order_id, line_no, product_id, quantity, unit_price, line_amount)
      SELECT (o->>'orderId')::uuid, l.n, l.product_id, l.quantity, l.unit_price, l.line_amount
        FROM unnest(ids, quantities, prices, amounts) WITH ORDINALITY AS l(product_id, quantity, unit_price, line_amount, n);
      INSERT INTO balance_ledger (user_id, type, amount, balance_after, order_id, created_at)
      SELECT id, 'PAYMENT', -paid, balance, (o->>'orderId')::uuid, at FROM users WHERE id = (o->>'userId')::bigint;
      INSERT INTO outbox_events (event_id, event_type, aggregate_id, payload, occurred_at)
      VALUES ((o->>'eventId')::uuid, 'order.paid', o->>'orderId', o->'event', at);
      outcome := outcome || 'placed'::text;
    EXCEPTION
      -- order_guard: the snapshot changed. A deadlock or serialization failure cannot arise here
      -- (every row is locked up front), but if a later change let one, the order should still
      -- get the locking transaction, not an error.
      WHEN SQLSTATE 'OC001' OR SQLSTATE '40P01' OR SQLSTATE '40001' THEN
        outcome := outcome || 'stale'::text;
      WHEN OTHERS THEN
        -- This order's alone: reported to the service, the group-mates still commit.
        outcome := outcome || (SQLSTATE || ': ' || SQLERRM);
    END;
  END LOOP;
  RETURN outcome;
END
$$;
