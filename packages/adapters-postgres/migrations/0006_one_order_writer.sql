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
-- its key. Any error fails the whole group; pgOrderBook then writes each order alone.
--
-- Set-based: the batch is unpacked once, the rows are locked and read once, each order is
-- decided in turn against the rows as the group's earlier orders leave them (in variables, no
-- statement per order), and then every table is written by one statement for the whole group.
CREATE FUNCTION place_orders(batch jsonb, write_token bigint) RETURNS text[]
LANGUAGE plpgsql AS $$
DECLARE
  n int;
  j int;
  x int;
  total int;
  outcome text[];
  claimed text[] := '{}';
  claim_id text;
  q_pos int[];
  q_key text[];
  q_print text[];
  q_result jsonb[];
  q_got boolean[];
  q_done boolean[];
  ok boolean;
  -- The orders, by position in the batch.
  o_user bigint[];
  o_coupon bigint[];
  o_paid bigint[];
  g_user bigint[];
  g_balance bigint[];
  g_coupon bigint[];
  balance_after bigint[];
  -- Their items and stock guards, ordered by order position; *_from/*_to: each order's range.
  i_order int[];
  i_product bigint[];
  i_quantity int[];
  i_from int[];
  i_to int[];
  s_order int[];
  s_product bigint[];
  s_min int[];
  s_price bigint[];
  s_from int[];
  s_to int[];
  -- The locked rows, as the orders decided so far leave them.
  u_id bigint[];
  u_balance bigint[];
  u_changed boolean[];
  p_id bigint[];
  p_stock bigint[];
  p_price bigint[];
  p_changed boolean[];
  c_key text[];
  c_unused boolean[];
  -- Keys: claimed before any row lock; those of stale orders removed at the end.
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

  SELECT array_agg((e->>'userId')::bigint ORDER BY k), array_agg((e->>'couponId')::bigint ORDER BY k),
         array_agg((e->>'paidAmount')::bigint ORDER BY k), array_agg((e->'guard'->>'userId')::bigint ORDER BY k),
         array_agg((e->'guard'->>'balanceAtLeast')::bigint ORDER BY k), array_agg((e->'guard'->>'unusedCoupon')::bigint ORDER BY k)
    INTO o_user, o_coupon, o_paid, g_user, g_balance, g_coupon
    FROM jsonb_array_elements(batch) WITH ORDINALITY t(e, k);
  total := cardinality(o_user);
  outcome := array_fill(NULL::text, ARRAY[total]);
  balance_after := array_fill(NULL::bigint, ARRAY[total]);

  -- Keys first, before any row lock, held to the end: a key in flight elsewhere (or twice in this
  -- group) is busy at once, never queued; a key completed since the snapshot is stale, and stays
  -- so, since completing it takes the claim we now hold. Statements for all the group's keys, not
  -- per order: with every order keyed, this runs while another group holds a hot row.
  SELECT array_agg(k::int ORDER BY k), array_agg(e->'claim'->>'key' ORDER BY k),
         array_agg(e->'claim'->>'fingerprint' ORDER BY k), array_agg(e->'claim'->'result' ORDER BY k)
    INTO q_pos, q_key, q_print, q_result
    FROM jsonb_array_elements(batch) WITH ORDINALITY t(e, k) WHERE jsonb_typeof(e->'claim') = 'object';
  FOR j IN 1..coalesce(cardinality(q_pos), 0) LOOP
    claim_id := o_user[q_pos[j]] || ':' || q_key[j];
    IF claim_id = ANY(claimed) THEN
      outcome[q_pos[j]] := 'busy';
    ELSE
      claimed := claimed || claim_id;
    END IF;
  END LOOP;
  SELECT array_agg(CASE WHEN outcome[c.k] IS NULL THEN idempotency_claim(o_user[c.k], c.key) END ORDER BY c.j)
    INTO q_got FROM unnest(q_pos, q_key) WITH ORDINALITY c(k, key, j);
  -- Its own statement, so that its snapshot is taken after the claims.
  SELECT array_agg(EXISTS (SELECT 1 FROM idempotency_keys ik WHERE ik.user_id = o_user[c.k] AND ik.key = c.key) ORDER BY c.j)
    INTO q_done FROM unnest(q_pos, q_key) WITH ORDINALITY c(k, key, j);
  FOR j IN 1..coalesce(cardinality(q_pos), 0) LOOP
    CONTINUE WHEN outcome[q_pos[j]] IS NOT NULL;
    IF NOT q_got[j] THEN
      outcome[q_pos[j]] := 'busy';
    ELSIF q_done[j] THEN
      outcome[q_pos[j]] := 'stale';
    ELSE
      key_users := key_users || o_user[q_pos[j]];
      key_texts := key_texts || q_key[j];
      key_prints := key_prints || q_print[j];
      key_results := key_results || q_result[j];
    END IF;
  END LOOP;
  -- The keys' rows now, before the row locks, so that a flash sale's hot row is not held while
  -- they are written. No one else can write these keys meanwhile: we hold their claims.
  INSERT INTO idempotency_keys (user_id, key, fingerprint, result)
  SELECT * FROM unnest(key_users, key_texts, key_prints, key_results);

  SELECT array_agg(k::int ORDER BY k, m), array_agg((i->>'productId')::bigint ORDER BY k, m),
         array_agg((i->>'quantity')::int ORDER BY k, m)
    INTO i_order, i_product, i_quantity
    FROM jsonb_array_elements(batch) WITH ORDINALITY t(e, k), jsonb_array_elements(e->'items') WITH ORDINALITY u(i, m);
  SELECT array_agg(k::int ORDER BY k, m), array_agg((s->>'productId')::bigint ORDER BY k, m),
         array_agg((s->>'atLeast')::int ORDER BY k, m), array_agg((s->>'price')::bigint ORDER BY k, m)
    INTO s_order, s_product, s_min, s_price
    FROM jsonb_array_elements(batch) WITH ORDINALITY t(e, k), jsonb_array_elements(e->'guard'->'stock') WITH ORDINALITY u(s, m);
  i_from := array_fill(NULL::int, ARRAY[total]);
  i_to := array_fill(NULL::int, ARRAY[total]);
  FOR j IN 1..coalesce(cardinality(i_order), 0) LOOP
    i_from[i_order[j]] := coalesce(i_from[i_order[j]], j);
    i_to[i_order[j]] := j;
  END LOOP;
  s_from := array_fill(NULL::int, ARRAY[total]);
  s_to := array_fill(NULL::int, ARRAY[total]);
  FOR j IN 1..coalesce(cardinality(s_order), 0) LOOP
    s_from[s_order[j]] := coalesce(s_from[s_order[j]], j);
    s_to[s_order[j]] := j;
  END LOOP;

  -- Every row the group may change or compare, locked and read in the global lock order
  -- (ADR 0001): balances, coupon copies, products, each by key. `= ANY` keeps each to an index
  -- lookup; the locks are taken in the sort's order.
  SELECT array_agg(id), array_agg(balance) INTO u_id, u_balance FROM (
    SELECT id, balance FROM users WHERE id = ANY(o_user || g_user) ORDER BY id FOR NO KEY UPDATE) r;
  SELECT array_agg(uc.user_id || ':' || uc.coupon_id), array_agg(uc.used_at IS NULL) INTO c_key, c_unused FROM (
    SELECT uc.user_id, uc.coupon_id, uc.used_at FROM user_coupons uc
      JOIN unnest(o_user || g_user, o_coupon || g_coupon) k(user_id, coupon_id)
        ON uc.user_id = k.user_id AND uc.coupon_id = k.coupon_id
     WHERE uc.user_id = ANY(o_user || g_user)
     ORDER BY uc.user_id, uc.coupon_id FOR NO KEY UPDATE OF uc) uc;
  SELECT array_agg(id), array_agg(stock), array_agg(price) INTO p_id, p_stock, p_price FROM (
    SELECT id, stock, price FROM products WHERE id = ANY(i_product || s_product) ORDER BY id FOR NO KEY UPDATE) r;
  u_changed := array_fill(false, ARRAY[coalesce(cardinality(u_id), 0)]);
  p_changed := array_fill(false, ARRAY[coalesce(cardinality(p_id), 0)]);

  -- Each order in turn: its guard against the rows as the orders before it left them.
  FOR n IN 1..total LOOP
    CONTINUE WHEN outcome[n] IS NOT NULL;
    x := array_position(u_id, g_user[n]);
    ok := x IS NOT NULL AND u_balance[x] >= g_balance[n];
    IF ok AND s_from[n] IS NOT NULL THEN
      FOR j IN s_from[n]..s_to[n] LOOP
        x := array_position(p_id, s_product[j]);
        ok := ok AND x IS NOT NULL AND p_stock[x] >= s_min[j] AND p_price[x] = s_price[j];
      END LOOP;
    END IF;
    IF ok AND g_coupon[n] IS NOT NULL THEN
      ok := coalesce(c_unused[array_position(c_key, g_user[n] || ':' || g_coupon[n])], false);
    END IF;
    IF NOT ok THEN
      outcome[n] := 'stale';
      IF jsonb_typeof(batch->(n - 1)->'claim') = 'object' THEN
        unkey_users := unkey_users || o_user[n];
        unkey_texts := unkey_texts || (batch->(n - 1)->'claim'->>'key');
      END IF;
      CONTINUE;
    END IF;
    -- The order's own effects, which its guard should have described; a row it names that was
    -- not locked, or a coupon already used, is a bug and fails the group (OC002).
    x := array_position(u_id, o_user[n]);
    IF x IS NULL THEN
      RAISE EXCEPTION 'order % pays from a balance its guard did not name', batch->(n - 1)->>'orderId' USING ERRCODE = 'OC002';
    END IF;
    u_balance[x] := u_balance[x] - o_paid[n];
    u_changed[x] := true;
    balance_after[n] := u_balance[x];
    FOR j IN i_from[n]..i_to[n] LOOP
      x := array_position(p_id, i_product[j]);
      IF x IS NULL THEN
        RAISE EXCEPTION 'order % takes a product its guard did not name', batch->(n - 1)->>'orderId' USING ERRCODE = 'OC002';
      END IF;
      p_stock[x] := p_stock[x] - i_quantity[j];
      p_changed[x] := true;
    END LOOP;
    IF o_coupon[n] IS NOT NULL THEN
      x := array_position(c_key, o_user[n] || ':' || o_coupon[n]);
      IF x IS NULL OR NOT c_unused[x] THEN
        RAISE EXCEPTION 'order % uses a coupon copy its guard did not name', batch->(n - 1)->>'orderId' USING ERRCODE = 'OC002';
      END IF;
      c_unused[x] := false;
    END IF;
    outcome[n] := 'placed';
  END LOOP;

  -- Every table once for the whole group. Balances and stock are set to what the locked rows
  -- became (nothing else can change them before this transaction ends); CHECK constraints still
  -- refuse a negative one.
  UPDATE users u SET balance = r.balance
    FROM unnest(u_id, u_balance, u_changed) r(id, balance, changed)
   WHERE r.changed AND u.id = r.id AND u.id = ANY(u_id);
  UPDATE products p SET stock = r.stock, updated_at = now()
    FROM unnest(p_id, p_stock, p_changed) r(id, stock, changed)
   WHERE r.changed AND p.id = r.id AND p.id = ANY(p_id);
  -- The orders before the coupon copies that reference them.
  INSERT INTO orders (id, user_id, status, total_amount, discount_amount, paid_amount, coupon_id, created_at)
  SELECT (e->>'orderId')::uuid, (e->>'userId')::bigint, e->>'status', (e->>'totalAmount')::bigint,
         (e->>'discountAmount')::bigint, (e->>'paidAmount')::bigint, (e->>'couponId')::bigint, (e->>'createdAt')::timestamptz
    FROM jsonb_array_elements(batch) WITH ORDINALITY t(e, k) WHERE outcome[k] = 'placed';
  UPDATE user_coupons uc SET used_at = (e->>'createdAt')::timestamptz, order_id = (e->>'orderId')::uuid
    FROM jsonb_array_elements(batch) WITH ORDINALITY t(e, k)
   WHERE outcome[k] = 'placed' AND jsonb_typeof(e->'couponId') = 'number'
     AND uc.user_id = (e->>'userId')::bigint AND uc.coupon_id = (e->>'couponId')::bigint AND uc.used_at IS NULL;
  INSERT INTO order_items (order_id, line_no, product_id, quantity, unit_price, line_amount)
  SELECT (e->>'orderId')::uuid, m, (i->>'productId')::bigint, (i->>'quantity')::int, (i->>'unitPrice')::bigint, (i->>'lineAmount')::bigint
    FROM jsonb_array_elements(batch) WITH ORDINALITY t(e, k), jsonb_array_elements(e->'items') WITH ORDINALITY u(i, m)
   WHERE outcome[k] = 'placed';
  -- In batch order, so that each user's ledger rows follow their balance_after.
  INSERT INTO balance_ledger (user_id, type, amount, balance_after, order_id, created_at)
  SELECT (e->>'userId')::bigint, e->>'ledgerType', -(e->>'paidAmount')::bigint, balance_after[k],
         (e->>'orderId')::uuid, (e->>'createdAt')::timestamptz
    FROM jsonb_array_elements(batch) WITH ORDINALITY t(e, k) WHERE outcome[k] = 'placed' ORDER BY k;
  INSERT INTO outbox_events (event_id, event_type, aggregate_id, payload, occurred_at)
  SELECT (e->'event'->>'eventId')::uuid, e->'event'->>'type', e->>'orderId', e->'event', (e->>'createdAt')::timestamptz
    FROM jsonb_array_elements(batch) WITH ORDINALITY t(e, k) WHERE outcome[k] = 'placed';
  IF cardinality(unkey_users) > 0 THEN
    DELETE FROM idempotency_keys k USING unnest(unkey_users, unkey_texts) s(user_id, key)
     WHERE k.user_id = s.user_id AND k.key = s.key;
  END IF;
  RETURN outcome;
END
$$;
