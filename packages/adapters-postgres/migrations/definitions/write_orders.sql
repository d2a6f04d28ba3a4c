-- Writes a group of decided orders and cancellations in one transaction: the one writer of the
-- orders table. `batch` is a JSON array, one object per write as pgOrderBook sends it (book-write.ts):
--   common: { kind: 'place'|'cancel', orderId, userId, couponId|null, at, balanceChange,
--             stockChange: [{ productId, change }], ledgerType, event, claim: { key, fingerprint, result } | null }
--   place:  + { status, totalAmount, discountAmount, paidAmount, createdAt,
--               items: [{ productId, quantity, unitPrice, lineAmount }],
--               guard: { userId, balanceAtLeast, stock: [{ productId, atLeast, price }], unusedCoupon|null } }
--   cancel: + { status, guard: { orderId, status } }  (couponId: the copy it gives back)
-- The guards and every change are the domain's (decideOrder, decideCancellation): this function
-- only compares the guards with the rows and applies the changes.
-- Returns, per write and in the same order: 'placed' (written); 'stale' when the guard no longer
-- holds or the key was completed meanwhile (nothing of it written); 'busy' when another
-- transaction holds its key. Any error fails the whole group; pgOrderBook then writes each alone.
--
-- Set-based: the batch is unpacked once, the rows are locked and read once, each order is
-- decided in turn against the rows as the group's earlier orders leave them (in variables, no
-- statement per order), and then every table is written by one statement for the whole group.
CREATE OR REPLACE FUNCTION write_orders(batch jsonb, write_token bigint) RETURNS text[]
LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan AS $$
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
  -- The writes, by position in the batch.
  o_kind text[];
  o_user bigint[];
  o_coupon bigint[];
  o_delta bigint[];
  g_order uuid[];
  g_status text[];
  g_user bigint[];
  g_balance bigint[];
  g_coupon bigint[];
  balance_after bigint[];
  -- Their stock changes and stock guards, ordered by position; *_from/*_to: each write's range.
  i_order int[];
  i_product bigint[];
  i_change bigint[];
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
  c_order uuid[];
  r_id uuid[];
  r_status text[];
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

  SELECT array_agg(e->>'kind' ORDER BY k), array_agg((e->>'userId')::bigint ORDER BY k), array_agg((e->>'couponId')::bigint ORDER BY k),
         array_agg((e->>'balanceChange')::bigint ORDER BY k), array_agg((e->'guard'->>'orderId')::uuid ORDER BY k),
         array_agg(e->'guard'->>'status' ORDER BY k), array_agg((e->'guard'->>'userId')::bigint ORDER BY k),
         array_agg((e->'guard'->>'balanceAtLeast')::bigint ORDER BY k), array_agg((e->'guard'->>'unusedCoupon')::bigint ORDER BY k)
    INTO o_kind, o_user, o_coupon, o_delta, g_order, g_status, g_user, g_balance, g_coupon
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
         array_agg((i->>'change')::bigint ORDER BY k, m)
    INTO i_order, i_product, i_change
    FROM jsonb_array_elements(batch) WITH ORDINALITY t(e, k), jsonb_array_elements(e->'stockChange') WITH ORDINALITY u(i, m);
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
  -- (ADR 0001, locks.ts): balances, coupon copies, products, then the orders being cancelled. `= ANY` keeps each to an index
  -- lookup; the locks are taken in the sort's order.
  SELECT array_agg(id), array_agg(balance) INTO u_id, u_balance FROM (
    SELECT id, balance FROM users WHERE id = ANY(o_user || g_user) ORDER BY id FOR NO KEY UPDATE) r;
  SELECT array_agg(uc.user_id || ':' || uc.coupon_id), array_agg(uc.used_at IS NULL), array_agg(uc.order_id) INTO c_key, c_unused, c_order FROM (
    SELECT uc.user_id, uc.coupon_id, uc.used_at, uc.order_id FROM user_coupons uc
      JOIN unnest(o_user || g_user, o_coupon || g_coupon) k(user_id, coupon_id)
        ON uc.user_id = k.user_id AND uc.coupon_id = k.coupon_id
     WHERE uc.user_id = ANY(o_user || g_user)
     ORDER BY uc.user_id, uc.coupon_id FOR NO KEY UPDATE OF uc) uc;
  SELECT array_agg(id), array_agg(stock), array_agg(price) INTO p_id, p_stock, p_price FROM (
    SELECT id, stock, price FROM products WHERE id = ANY(i_product || s_product) ORDER BY id FOR NO KEY UPDATE) r;
  SELECT array_agg(id), array_agg(status) INTO r_id, r_status FROM (
    SELECT id, status FROM orders WHERE id = ANY(g_order) ORDER BY id FOR NO KEY UPDATE) r;
  u_changed := array_fill(false, ARRAY[coalesce(cardinality(u_id), 0)]);
  p_changed := array_fill(false, ARRAY[coalesce(cardinality(p_id), 0)]);

  -- Each write in turn: its guard against the rows as the writes before it left them.
  FOR n IN 1..total LOOP
    CONTINUE WHEN outcome[n] IS NOT NULL;
    IF o_kind[n] = 'cancel' THEN
      ok := coalesce(r_status[array_position(r_id, g_order[n])] = g_status[n], false);
    ELSE
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
    END IF;
    IF NOT ok THEN
      outcome[n] := 'stale';
      IF jsonb_typeof(batch->(n - 1)->'claim') = 'object' THEN
        unkey_users := unkey_users || o_user[n];
        unkey_texts := unkey_texts || (batch->(n - 1)->'claim'->>'key');
      END IF;
      CONTINUE;
    END IF;
    -- The write's own changes, which its guard should have described; a row it names that was not
    -- locked, a coupon copy already used (by an order) or not used by the order being cancelled, is
    -- a bug and fails the group (OC002). CHECK constraints still refuse a negative balance or stock.
    x := array_position(u_id, o_user[n]);
    IF x IS NULL THEN
      RAISE EXCEPTION 'order % changes a balance that was not locked', batch->(n - 1)->>'orderId' USING ERRCODE = 'OC002';
    END IF;
    u_balance[x] := u_balance[x] + o_delta[n];
    u_changed[x] := true;
    balance_after[n] := u_balance[x];
    FOR j IN i_from[n]..i_to[n] LOOP
      x := array_position(p_id, i_product[j]);
      IF x IS NULL THEN
        RAISE EXCEPTION 'order % changes the stock of a product that was not locked', batch->(n - 1)->>'orderId' USING ERRCODE = 'OC002';
      END IF;
      p_stock[x] := p_stock[x] + i_change[j];
      p_changed[x] := true;
    END LOOP;
    IF o_coupon[n] IS NOT NULL THEN
      x := array_position(c_key, o_user[n] || ':' || o_coupon[n]);
      IF x IS NULL OR (o_kind[n] = 'place' AND NOT c_unused[x])
         OR (o_kind[n] = 'cancel' AND c_order[x] IS DISTINCT FROM g_order[n]) THEN
        RAISE EXCEPTION 'order % names a coupon copy that is not its to change', batch->(n - 1)->>'orderId' USING ERRCODE = 'OC002';
      END IF;
      c_unused[x] := o_kind[n] = 'cancel';
      c_order[x] := CASE WHEN o_kind[n] = 'place' THEN (batch->(n - 1)->>'orderId')::uuid END;
    END IF;
    IF o_kind[n] = 'cancel' THEN
      r_status[array_position(r_id, g_order[n])] := batch->(n - 1)->>'status';
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
    FROM jsonb_array_elements(batch) WITH ORDINALITY t(e, k) WHERE outcome[k] = 'placed' AND o_kind[k] = 'place';
  UPDATE orders o SET status = e->>'status', cancelled_at = (e->>'at')::timestamptz, cancel_xact_id = pg_current_xact_id()
    FROM jsonb_array_elements(batch) WITH ORDINALITY t(e, k)
   WHERE outcome[k] = 'placed' AND o_kind[k] = 'cancel' AND o.id = (e->>'orderId')::uuid AND o.id = ANY(r_id);
  -- Copies given back before copies taken: a later order of the group may take one a
  -- cancellation before it gave back.
  UPDATE user_coupons uc SET used_at = NULL, order_id = NULL
    FROM jsonb_array_elements(batch) WITH ORDINALITY t(e, k)
   WHERE outcome[k] = 'placed' AND o_kind[k] = 'cancel' AND jsonb_typeof(e->'couponId') = 'number'
     AND uc.user_id = (e->>'userId')::bigint AND uc.coupon_id = (e->>'couponId')::bigint AND uc.order_id = (e->>'orderId')::uuid;
  UPDATE user_coupons uc SET used_at = (e->>'at')::timestamptz, order_id = (e->>'orderId')::uuid
    FROM jsonb_array_elements(batch) WITH ORDINALITY t(e, k)
   WHERE outcome[k] = 'placed' AND o_kind[k] = 'place' AND jsonb_typeof(e->'couponId') = 'number'
     AND uc.user_id = (e->>'userId')::bigint AND uc.coupon_id = (e->>'couponId')::bigint AND uc.used_at IS NULL;
  INSERT INTO order_items (order_id, line_no, product_id, quantity, unit_price, line_amount)
  SELECT (e->>'orderId')::uuid, m, (i->>'productId')::bigint, (i->>'quantity')::int, (i->>'unitPrice')::bigint, (i->>'lineAmount')::bigint
    FROM jsonb_array_elements(batch) WITH ORDINALITY t(e, k), jsonb_array_elements(e->'items') WITH ORDINALITY u(i, m)
   WHERE outcome[k] = 'placed' AND o_kind[k] = 'place';
  -- In batch order, so that each user's ledger rows follow their balance_after.
  INSERT INTO balance_ledger (user_id, type, amount, balance_after, order_id, created_at)
  SELECT (e->>'userId')::bigint, e->>'ledgerType', (e->>'balanceChange')::bigint, balance_after[k],
         (e->>'orderId')::uuid, (e->>'at')::timestamptz
    FROM jsonb_array_elements(batch) WITH ORDINALITY t(e, k) WHERE outcome[k] = 'placed' ORDER BY k;
  -- In batch order too: seq is the recording order of one order's events. A cancellation's event
  -- follows the order's latest (its order.paid); a new order's is its first.
  INSERT INTO outbox_events (event_id, event_type, aggregate_id, payload, occurred_at, follows)
  SELECT (e->'event'->>'eventId')::uuid, e->'event'->>'type', e->>'orderId', e->'event', (e->>'at')::timestamptz,
         CASE WHEN o_kind[k] = 'cancel' THEN
           (SELECT p.event_id FROM outbox_events p WHERE p.aggregate_id = e->>'orderId' ORDER BY p.seq DESC LIMIT 1)
         END
    FROM jsonb_array_elements(batch) WITH ORDINALITY t(e, k) WHERE outcome[k] = 'placed' ORDER BY k;
  IF cardinality(unkey_users) > 0 THEN
    DELETE FROM idempotency_keys k USING unnest(unkey_users, unkey_texts) s(user_id, key)
     WHERE k.user_id = s.user_id AND k.key = s.key;
  END IF;
  RETURN outcome;
END
$$;
