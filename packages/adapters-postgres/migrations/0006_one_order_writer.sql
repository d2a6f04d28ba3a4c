-- One writer for every order (ADR 0007): keyed and unkeyed, first tries and retries. Replaces
-- migration 0005's place_orders and 0004's order_guard.
DROP FUNCTION IF EXISTS place_orders(jsonb);
DROP FUNCTION IF EXISTS order_guard(boolean);

-- Claims an Idempotency-Key for the rest of the transaction, without waiting: false while another
-- transaction holds it. The order writer and the charge transaction share it, so a key is one
-- lock whatever request holds it.
CREATE FUNCTION idempotency_claim(user_id bigint, key text) RETURNS boolean
LANGUAGE sql VOLATILE AS $$
  SELECT pg_try_advisory_xact_lock(hashtextextended(user_id::text || ':' || key, 0))
$$;

-- Writes a group of decided orders in one transaction. `batch` is a JSON array, one object per
-- order as pgOrderBook sends it:
--   { orderId, userId, status, couponId|null, totalAmount, discountAmount, paidAmount, createdAt,
--     items: [{ productId, quantity, unitPrice, lineAmount }], ledgerType, event,
--     guard: { userId, balanceAtLeast, stock: [{ productId, atLeast, price }], unusedCoupon|null },
--     claim: { key, fingerprint, result } | null }
-- The guard is the domain's (decideOrder): this function only compares it with the rows.
-- Returns, per order and in the same order: 'placed'; 'stale' when the guard no longer holds or
-- the key was completed meanwhile (nothing of it written); 'busy' when another transaction holds
-- its key. Orders are checked before they write, so a refused order leaves nothing to undo and
-- needs no subtransaction. Any error fails the whole group; pgOrderBook then writes each alone.
CREATE FUNCTION place_orders(batch jsonb, write_token bigint) RETURNS text[]
LANGUAGE plpgsql AS $$
DECLARE
  o jsonb;
  g jsonb;
  n bigint;
  outcome text[] := '{}';
  busy boolean[] := '{}';
  claimed text[] := '{}';
  claim_id text;
  uid bigint;
  oid uuid;
  cid bigint;
  at timestamptz;
  paid bigint;
  after bigint;
  ok boolean;
  ids bigint[];
  quantities int[];
  prices bigint[];
  amounts bigint[];
  gids bigint[];
  gmins int[];
  gprices bigint[];
BEGIN
  -- Held until this transaction ends: a service that lost the answer waits on it, then reads
  -- which orders exist, and so never reads before this group has committed or rolled back.
  PERFORM pg_advisory_xact_lock(write_token);

  -- Keys first, held to the end; a duplicate in flight elsewhere is told at once, never queued.
  FOR o IN SELECT e FROM jsonb_array_elements(batch) e LOOP
    IF jsonb_typeof(o->'claim') = 'object' THEN
      claim_id := (o->>'userId') || ':' || (o->'claim'->>'key');
      busy := busy || (claim_id = ANY(claimed) OR NOT idempotency_claim((o->>'userId')::bigint, o->'claim'->>'key'));
      claimed := claimed || claim_id;
    ELSE
      busy := busy || false;
    END IF;
  END LOOP;

  -- Every row the group may change, in the global lock order (ADR 0001): balances, coupon
  -- copies, products, each by key. `= ANY` keeps each to an index lookup.
  SELECT array_agg(DISTINCT (e->>'userId')::bigint) INTO ids FROM jsonb_array_elements(batch) e;
  PERFORM 1 FROM users WHERE id = ANY(ids) ORDER BY id FOR NO KEY UPDATE;
  SELECT array_agg((e->>'userId')::bigint), array_agg((e->>'couponId')::bigint) INTO ids, gids
    FROM jsonb_array_elements(batch) e WHERE jsonb_typeof(e->'couponId') = 'number';
  PERFORM 1 FROM user_coupons uc JOIN unnest(ids, gids) k(user_id, coupon_id)
      ON uc.user_id = k.user_id AND uc.coupon_id = k.coupon_id
   WHERE uc.user_id = ANY(ids)
   ORDER BY uc.user_id, uc.coupon_id FOR NO KEY UPDATE OF uc;
  SELECT array_agg(DISTINCT (i->>'productId')::bigint) INTO ids
    FROM jsonb_array_elements(batch) e, jsonb_array_elements(e->'items') i;
  PERFORM 1 FROM products WHERE id = ANY(ids) ORDER BY id FOR NO KEY UPDATE;

  FOR o, n IN SELECT e, i FROM jsonb_array_elements(batch) WITH ORDINALITY t(e, i) LOOP
    IF busy[n] THEN
      outcome := outcome || 'busy'::text;
      CONTINUE;
    END IF;
    uid := (o->>'userId')::bigint;
    g := o->'guard';
    SELECT array_agg((s->>'productId')::bigint ORDER BY k), array_agg((s->>'atLeast')::int ORDER BY k),
           array_agg((s->>'price')::bigint ORDER BY k)
      INTO gids, gmins, gprices
      FROM jsonb_array_elements(g->'stock') WITH ORDINALITY AS t(s, k);
    SELECT (SELECT balance >= (g->>'balanceAtLeast')::bigint FROM users WHERE id = (g->>'userId')::bigint)
       AND (SELECT count(*) FROM products p JOIN unnest(gids, gmins, gprices) s(id, at_least, price) ON p.id = s.id
             WHERE p.id = ANY(gids) AND p.stock >= s.at_least AND p.price = s.price) = cardinality(gids)
       AND (jsonb_typeof(g->'unusedCoupon') IS DISTINCT FROM 'number'
            OR EXISTS (SELECT 1 FROM user_coupons WHERE user_id = (g->>'userId')::bigint
                         AND coupon_id = (g->>'unusedCoupon')::bigint AND used_at IS NULL))
       AND (jsonb_typeof(o->'claim') IS DISTINCT FROM 'object'
            OR NOT EXISTS (SELECT 1 FROM idempotency_keys WHERE user_id = uid AND key = o->'claim'->>'key'))
      INTO ok;
    IF ok IS NOT TRUE THEN -- NULL (no such user) refuses too
      outcome := outcome || 'stale'::text;
      CONTINUE;
    END IF;

    oid := (o->>'orderId')::uuid;
    cid := (o->>'couponId')::bigint;
    at := (o->>'createdAt')::timestamptz;
    paid := (o->>'paidAmount')::bigint;
    SELECT array_agg((i->>'productId')::bigint ORDER BY k), array_agg((i->>'quantity')::int ORDER BY k),
           array_agg((i->>'unitPrice')::bigint ORDER BY k), array_agg((i->>'lineAmount')::bigint ORDER BY k)
      INTO ids, quantities, prices, amounts
      FROM jsonb_array_elements(o->'items') WITH ORDINALITY AS t(i, k);
    UPDATE users SET balance = balance - paid WHERE id = uid RETURNING balance INTO after;
    UPDATE products AS p SET stock = p.stock - l.quantity, updated_at = at
      FROM unnest(ids, quantities) AS l(id, quantity)
     WHERE p.id = ANY(ids) AND p.id = l.id;
    -- The order row before the coupon copy that references it.
    INSERT INTO orders (id, user_id, status, total_amount, discount_amount, paid_amount, coupon_id, created_at)
    VALUES (oid, uid, o->>'status', (o->>'totalAmount')::bigint, (o->>'discountAmount')::bigint, paid, cid, at);
    IF cid IS NOT NULL THEN
      UPDATE user_coupons SET used_at = at, order_id = oid WHERE user_id = uid AND coupon_id = cid;
    END IF;
    INSERT INTO order_items (order_id, line_no, product_id, quantity, unit_price, line_amount)
    SELECT oid, l.k, l.product_id, l.quantity, l.unit_price, l.line_amount
      FROM unnest(ids, quantities, prices, amounts) WITH ORDINALITY AS l(product_id, quantity, unit_price, line_amount, k);
    INSERT INTO balance_ledger (user_id, type, amount, balance_after, order_id, created_at)
    VALUES (uid, o->>'ledgerType', -paid, after, oid, at);
    INSERT INTO outbox_events (event_id, event_type, aggregate_id, payload, occurred_at)
    VALUES ((o->'event'->>'eventId')::uuid, o->'event'->>'type', o->>'orderId', o->'event', at);
    IF jsonb_typeof(o->'claim') = 'object' THEN
      INSERT INTO idempotency_keys (user_id, key, fingerprint, result)
      VALUES (uid, o->'claim'->>'key', o->'claim'->>'fingerprint', o->'claim'->'result');
    END IF;
    outcome := outcome || 'placed'::text;
  END LOOP;
  RETURN outcome;
END
$$;
