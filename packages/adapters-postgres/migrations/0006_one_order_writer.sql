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

-- A group write whose answer was lost, as the service that sent it settled it: once a token is
-- here, a group carrying it that reaches the database late refuses to write (place_orders).
CREATE TABLE order_write_fences (
  token      bigint      PRIMARY KEY,
  fenced_at  timestamptz NOT NULL DEFAULT now()
);

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
  early text[] := '{}';
  claimed text[] := '{}';
  claim_id text;
  uid bigint;
  oid uuid;
  cid bigint;
  at timestamptz;
  paid bigint;
  after bigint;
  ok boolean;
  changed int;
  ids bigint[];
  quantities int[];
  prices bigint[];
  amounts bigint[];
  gids bigint[];
  gmins int[];
  gprices bigint[];
  key_users bigint[] := '{}';
  key_texts text[] := '{}';
  key_prints text[] := '{}';
  key_results jsonb[] := '{}';
  unkey_users bigint[] := '{}';
  unkey_texts text[] := '{}';
BEGIN
  -- Held until this transaction ends: a service that lost the answer waits on it, then reads
  -- which orders exist, and so never reads before this group has committed or rolled back.
  PERFORM pg_advisory_xact_lock(write_token);
  IF EXISTS (SELECT 1 FROM order_write_fences WHERE token = write_token) THEN
    RAISE EXCEPTION 'order group % arrived after its sender gave up on it', write_token USING ERRCODE = 'OC003';
  END IF;

  -- Keys first, before any row lock, held to the end: a key in flight elsewhere (or twice in this
  -- group) is busy at once, never queued; a key completed since the snapshot is stale, and stays
  -- so, since completing it takes the claim we now hold.
  FOR o IN SELECT e FROM jsonb_array_elements(batch) e LOOP
    IF jsonb_typeof(o->'claim') = 'object' THEN
      claim_id := (o->>'userId') || ':' || (o->'claim'->>'key');
      IF claim_id = ANY(claimed) OR NOT idempotency_claim((o->>'userId')::bigint, o->'claim'->>'key') THEN
        early := early || 'busy'::text;
      ELSIF EXISTS (SELECT 1 FROM idempotency_keys WHERE user_id = (o->>'userId')::bigint AND key = o->'claim'->>'key') THEN
        early := early || 'stale'::text;
      ELSE
        early := early || NULL::text;
        key_users := key_users || (o->>'userId')::bigint;
        key_texts := key_texts || (o->'claim'->>'key');
        key_prints := key_prints || (o->'claim'->>'fingerprint');
        key_results := key_results || (o->'claim'->'result');
      END IF;
      claimed := claimed || claim_id;
    ELSE
      early := early || NULL::text;
    END IF;
  END LOOP;

  -- The keys' rows now, before the row locks, so that a flash sale's hot row is not held while
  -- they are written; those of orders that turn out stale are deleted below. No one else can
  -- write these keys meanwhile: we hold their claims.
  INSERT INTO idempotency_keys (user_id, key, fingerprint, result)
  SELECT * FROM unnest(key_users, key_texts, key_prints, key_results);

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
    IF early[n] IS NOT NULL THEN
      outcome := outcome || early[n];
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
             WHERE p.id = ANY(gids) AND p.stock >= s.at_least AND p.price = s.price) = coalesce(cardinality(gids), 0)
       AND (jsonb_typeof(g->'unusedCoupon') IS DISTINCT FROM 'number'
            OR EXISTS (SELECT 1 FROM user_coupons WHERE user_id = (g->>'userId')::bigint
                         AND coupon_id = (g->>'unusedCoupon')::bigint AND used_at IS NULL))
      INTO ok;
    IF ok IS NOT TRUE THEN -- NULL (no such user) refuses too
      outcome := outcome || 'stale'::text;
      IF jsonb_typeof(o->'claim') = 'object' THEN
        unkey_users := unkey_users || uid;
        unkey_texts := unkey_texts || (o->'claim'->>'key');
      END IF;
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
    -- The writes below trust the guard; their row counts are checked anyway, so that a guard that
    -- did not describe this order (a bug) fails loudly instead of writing half of it.
    UPDATE users SET balance = balance - paid WHERE id = uid RETURNING balance INTO after;
    GET DIAGNOSTICS changed = ROW_COUNT;
    ok := changed = 1;
    UPDATE products AS p SET stock = p.stock - l.quantity, updated_at = at
      FROM unnest(ids, quantities) AS l(id, quantity)
     WHERE p.id = ANY(ids) AND p.id = l.id;
    GET DIAGNOSTICS changed = ROW_COUNT;
    ok := ok AND changed = cardinality(ids);
    -- The order row before the coupon copy that references it.
    INSERT INTO orders (id, user_id, status, total_amount, discount_amount, paid_amount, coupon_id, created_at)
    VALUES (oid, uid, o->>'status', (o->>'totalAmount')::bigint, (o->>'discountAmount')::bigint, paid, cid, at);
    IF cid IS NOT NULL THEN
      UPDATE user_coupons SET used_at = at, order_id = oid WHERE user_id = uid AND coupon_id = cid AND used_at IS NULL;
      GET DIAGNOSTICS changed = ROW_COUNT;
      ok := ok AND changed = 1;
    END IF;
    IF NOT ok THEN
      RAISE EXCEPTION 'order % does not match its guard', oid USING ERRCODE = 'OC002';
    END IF;
    INSERT INTO order_items (order_id, line_no, product_id, quantity, unit_price, line_amount)
    SELECT oid, l.k, l.product_id, l.quantity, l.unit_price, l.line_amount
      FROM unnest(ids, quantities, prices, amounts) WITH ORDINALITY AS l(product_id, quantity, unit_price, line_amount, k);
    INSERT INTO balance_ledger (user_id, type, amount, balance_after, order_id, created_at)
    VALUES (uid, o->>'ledgerType', -paid, after, oid, at);
    INSERT INTO outbox_events (event_id, event_type, aggregate_id, payload, occurred_at)
    VALUES ((o->'event'->>'eventId')::uuid, o->'event'->>'type', o->>'orderId', o->'event', at);
    outcome := outcome || 'placed'::text;
  END LOOP;
  IF cardinality(unkey_users) > 0 THEN
    DELETE FROM idempotency_keys k USING unnest(unkey_users, unkey_texts) s(user_id, key)
     WHERE k.user_id = s.user_id AND k.key = s.key;
  END IF;
  RETURN outcome;
END
$$;
