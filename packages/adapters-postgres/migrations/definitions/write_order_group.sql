-- The one writer of orders (ADR 0007): applies a group of decided writes, orders, their refunds
-- and cancellations alike, in one transaction. `writes` is a JSON array, one object per write, as
-- book-write.ts sends the domain's OrderEffects:
--   { orderId, userId, at, balanceChange, ledgerType, stockChanges: [{ productId, change }],
--     coupon: { couponId, heldBy } | null,
--     guard: { balanceAtLeast, stock: [{ productId, atLeast, price }],
--              order: { status, refundedUnits } | null, coupon: { couponId, heldBy } | null },
--     order: { status, totalAmount, discountAmount, paidAmount, couponId, createdAt, cancelledAt,
--              refundedAmount, items: [{ productId, quantity, unitPrice, lineAmount, refundedQuantity }] },
--     refund: { refundId, amount, createdAt, items: [{ productId, quantity }] } | null,
--     event, claim: { key, fingerprint, result } | null, leaseMs?: a new order's event leased for it }
-- Nothing is decided here: each write's guard is compared with the rows, and if it holds exactly
-- its values are applied (a guard with no order creates the order, one with an order moves it to
-- the state `order` gives). Returns, per write and in the same order:
--   written        every effect, its event and its key are in this commit;
--   guard_failed   a guarded value no longer holds (nothing of it written);
--   key_completed  its key was completed since its snapshot (nothing of it written);
--   key_busy       another transaction holds its key (nothing of it written).
-- Any error fails the whole group; the caller then writes each alone (order-book.ts).
--
-- Set-based: the rows are locked and read once, each write is checked in turn against the rows as
-- the writes before it left them (in variables, no statement per write), and every table is then
-- written by one statement for the whole group.
--
-- Every statement here finds its rows by an index, and is planned with sequential scans off. Its
-- plans are generic and kept for the connection, and PostgreSQL plans a partition that statistics
-- call empty as a scan of it: a day of keys made ahead and analyzed while empty (a database-wide
-- ANALYZE or VACUUM, vacuumdb) was scanned whole for every key once it became today and filled,
-- 22 ms a group after one midnight against 0.15, until autovacuum analyzed the day
-- (docs/performance.md, "An eighth host"). The foreign keys' checks of a new order (its items',
-- its ledger row's) are planned the first time a statement here fires them, so too; PostgreSQL
-- keeps one such plan per constraint and connection, for every caller: another writer of an
-- order_id must plan under the same setting.
CREATE OR REPLACE FUNCTION write_order_group(writes jsonb, group_token bigint) RETURNS text[]
LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan SET enable_seqscan = off AS $$
DECLARE
  total int;
  outcome text[];
  -- Per write, by position: whose it is, and the guard's scalar parts.
  write_user bigint[];
  guard_balance bigint[];
  guard_status text[];
  guard_refunded bigint[];
  guard_coupon bigint[];
  guard_coupon_holder uuid[];
  balance_after bigint[];
  -- Stock changes and stock guards of every write, by write position; *_first/*_last: each write's range.
  change_write int[];
  change_product bigint[];
  change_amount bigint[];
  change_first int[];
  change_last int[];
  stock_guard_write int[];
  stock_guard_product bigint[];
  stock_guard_min bigint[];
  stock_guard_price bigint[];
  stock_guard_first int[];
  stock_guard_last int[];
  -- The locked rows, as the writes checked so far leave them.
  locked_user bigint[];
  locked_balance bigint[];
  balance_changed boolean[];
  locked_product bigint[];
  locked_stock bigint[];
  locked_price bigint[];
  stock_changed boolean[];
  copy_key text[];
  copy_user bigint[];
  copy_coupon bigint[];
  copy_holder uuid[];
  copy_used_at timestamptz[];
  copy_changed boolean[];
  moved_order uuid[];
  moved_status text[];
  moved_refunded bigint[];
  moved_id uuid;
  status_now text;
  -- Keys claimed by writes that then failed their guard: their rows are removed at the end.
  released_users bigint[] := '{}';
  released_keys text[] := '{}';
BEGIN
  <<fence>>
  BEGIN
    -- Held until this transaction ends: a service that lost the answer waits on it, then reads
    -- which writes committed, and so never reads before this group has committed or rolled back.
    PERFORM pg_advisory_xact_lock(group_token);
    IF EXISTS (SELECT 1 FROM order_write_fences WHERE token = group_token) THEN
      RAISE EXCEPTION 'order group % arrived after its sender gave up on it', group_token USING ERRCODE = 'OC003';
    END IF;
  END fence;

  <<unpack>>
  DECLARE
    j int;
  BEGIN
    SELECT array_agg((w->>'userId')::bigint ORDER BY k), array_agg((w->'guard'->>'balanceAtLeast')::bigint ORDER BY k),
           array_agg(w->'guard'->'order'->>'status' ORDER BY k), array_agg((w->'guard'->'order'->>'refundedUnits')::bigint ORDER BY k),
           array_agg((w->'guard'->'coupon'->>'couponId')::bigint ORDER BY k), array_agg((w->'guard'->'coupon'->>'heldBy')::uuid ORDER BY k)
      INTO write_user, guard_balance, guard_status, guard_refunded, guard_coupon, guard_coupon_holder
      FROM jsonb_array_elements(writes) WITH ORDINALITY t(w, k);
    total := cardinality(write_user);
    outcome := array_fill(NULL::text, ARRAY[total]);
    balance_after := array_fill(NULL::bigint, ARRAY[total]);
    SELECT array_agg(k::int ORDER BY k, m), array_agg((c->>'productId')::bigint ORDER BY k, m), array_agg((c->>'change')::bigint ORDER BY k, m)
      INTO change_write, change_product, change_amount
      FROM jsonb_array_elements(writes) WITH ORDINALITY t(w, k), jsonb_array_elements(w->'stockChanges') WITH ORDINALITY u(c, m);
    SELECT array_agg(k::int ORDER BY k, m), array_agg((g->>'productId')::bigint ORDER BY k, m),
           array_agg((g->>'atLeast')::bigint ORDER BY k, m), array_agg((g->>'price')::bigint ORDER BY k, m)
      INTO stock_guard_write, stock_guard_product, stock_guard_min, stock_guard_price
      FROM jsonb_array_elements(writes) WITH ORDINALITY t(w, k), jsonb_array_elements(w->'guard'->'stock') WITH ORDINALITY u(g, m);
    change_first := array_fill(NULL::int, ARRAY[total]);
    change_last := array_fill(NULL::int, ARRAY[total]);
    FOR j IN 1..coalesce(cardinality(change_write), 0) LOOP
      change_first[change_write[j]] := coalesce(change_first[change_write[j]], j);
      change_last[change_write[j]] := j;
    END LOOP;
    stock_guard_first := array_fill(NULL::int, ARRAY[total]);
    stock_guard_last := array_fill(NULL::int, ARRAY[total]);
    FOR j IN 1..coalesce(cardinality(stock_guard_write), 0) LOOP
      stock_guard_first[stock_guard_write[j]] := coalesce(stock_guard_first[stock_guard_write[j]], j);
      stock_guard_last[stock_guard_write[j]] := j;
    END LOOP;
  END unpack;

  -- Keys first, before any row lock, held to the end: a key in flight elsewhere (or twice in this
  -- group) is busy at once, never queued; a key completed since the snapshot stays completed,
  -- since completing it takes the claim we now hold. Statements for all the group's keys, not per
  -- write: with every order keyed, this runs while another group holds a hot row.
  <<claim_keys>>
  DECLARE
    j int;
    seen text[] := '{}';
    repeated boolean[] := '{}';
    key_write int[];
    key_text text[];
    key_user bigint[];
    key_print text[];
    key_result jsonb[];
    got boolean[];
    completed boolean[];
    new_users bigint[] := '{}';
    new_keys text[] := '{}';
    new_prints text[] := '{}';
    new_results jsonb[] := '{}';
  BEGIN
    SELECT array_agg(k::int ORDER BY k), array_agg(w->'claim'->>'key' ORDER BY k), array_agg(write_user[k] ORDER BY k),
           array_agg(w->'claim'->>'fingerprint' ORDER BY k), array_agg(w->'claim'->'result' ORDER BY k)
      INTO key_write, key_text, key_user, key_print, key_result
      FROM jsonb_array_elements(writes) WITH ORDINALITY t(w, k) WHERE jsonb_typeof(w->'claim') = 'object';
    FOR j IN 1..coalesce(cardinality(key_write), 0) LOOP
      repeated := repeated || ((write_user[key_write[j]] || ':' || key_text[j]) = ANY(seen));
      seen := seen || (write_user[key_write[j]] || ':' || key_text[j]);
    END LOOP;
    SELECT array_agg(CASE WHEN NOT repeated[c.j] THEN idempotency_claim(write_user[c.k], c.key) END ORDER BY c.j)
      INTO got FROM unnest(key_write, key_text) WITH ORDINALITY c(k, key, j);
    -- Its own statement, so that its snapshot is taken after the claims; one for the group's keys,
    -- and none without keys (it would lock every day of idempotency_keys for nothing).
    IF key_write IS NOT NULL THEN
      SELECT array_agg(ck.completed IS NOT NULL ORDER BY ck.i) INTO completed FROM completed_keys(key_user, key_text) ck;
    END IF;
    FOR j IN 1..coalesce(cardinality(key_write), 0) LOOP
      -- Completed wins over whoever holds the key now (the contract): the caller replays it.
      IF completed[j] THEN
        outcome[key_write[j]] := 'key_completed';
      ELSIF repeated[j] OR NOT got[j] THEN
        outcome[key_write[j]] := 'key_busy';
      ELSE
        new_users := new_users || write_user[key_write[j]];
        new_keys := new_keys || key_text[j];
        new_prints := new_prints || key_print[j];
        new_results := new_results || key_result[j];
      END IF;
    END LOOP;
    -- The keys' rows now, before the row locks, so that a flash sale's hot row is not held while
    -- they are written. No one else can write these keys meanwhile: we hold their claims.
    INSERT INTO idempotency_keys (user_id, key, fingerprint, result)
    SELECT * FROM unnest(new_users, new_keys, new_prints, new_results);
  END claim_keys;

  -- Every row the group may compare or change, locked and read in the lock order of locks.ts.
  -- `= ANY` keeps each to index lookups; the locks are taken in the sort's order.
  <<lock_rows>>
  BEGIN
    SELECT array_agg(id), array_agg(balance) INTO locked_user, locked_balance FROM (
      SELECT u.id, u.balance FROM users u WHERE u.id = ANY(write_user) ORDER BY u.id FOR NO KEY UPDATE) r;
    SELECT array_agg(uc.user_id || ':' || uc.coupon_id), array_agg(uc.user_id), array_agg(uc.coupon_id), array_agg(uc.order_id), array_agg(uc.used_at)
      INTO copy_key, copy_user, copy_coupon, copy_holder, copy_used_at FROM (
      SELECT uc.user_id, uc.coupon_id, uc.order_id, uc.used_at FROM user_coupons uc
        JOIN unnest(write_user, guard_coupon) c(user_id, coupon_id) ON uc.user_id = c.user_id AND uc.coupon_id = c.coupon_id
       WHERE uc.user_id = ANY(write_user)
       ORDER BY uc.user_id, uc.coupon_id FOR NO KEY UPDATE OF uc) uc;
    SELECT array_agg(id), array_agg(stock), array_agg(price) INTO locked_product, locked_stock, locked_price FROM (
      SELECT p.id, p.stock, p.price FROM products p WHERE p.id = ANY(change_product || stock_guard_product) ORDER BY p.id FOR NO KEY UPDATE) r;
    -- Only the orders a write moves; a new order's id is new (its primary key says so). One
    -- statement per order, in id order: orders are partitioned by id (migration 0014), and only an
    -- id given as a value prunes to its partition (`= ANY(array)` reads every partition). Only when
    -- a write moves one: a statement on the partitioned orders locks every partition its plan
    -- names (PostgreSQL 15, generic plans), and a group of new orders needs none of them.
    IF EXISTS (SELECT 1 FROM unnest(guard_status) s WHERE s IS NOT NULL) THEN
      moved_order := '{}';
      moved_status := '{}';
      FOR moved_id IN SELECT DISTINCT (w->>'orderId')::uuid FROM jsonb_array_elements(writes) w
                       WHERE jsonb_typeof(w->'guard'->'order') = 'object' ORDER BY 1 LOOP
        SELECT o.status INTO status_now FROM orders o WHERE o.id = moved_id FOR NO KEY UPDATE;
        CONTINUE WHEN NOT FOUND;
        moved_order := moved_order || moved_id;
        moved_status := moved_status || status_now;
      END LOOP;
      -- Their refunded units in a statement of their own, so that its snapshot is taken once the order
      -- rows are locked: every change of an order holds its row, so nothing can move them now.
      SELECT array_agg(coalesce((SELECT sum(i.refunded_quantity) FROM order_items i WHERE i.order_id = m.id), 0)::bigint ORDER BY m.k)
        INTO moved_refunded FROM unnest(moved_order) WITH ORDINALITY m(id, k);
    END IF;
    balance_changed := array_fill(false, ARRAY[coalesce(cardinality(locked_user), 0)]);
    stock_changed := array_fill(false, ARRAY[coalesce(cardinality(locked_product), 0)]);
    copy_changed := array_fill(false, ARRAY[coalesce(cardinality(copy_key), 0)]);
  END lock_rows;

  -- Each write in turn: its guard against the rows as the writes before it left them, then its
  -- changes applied to those rows.
  <<check_and_apply>>
  DECLARE
    n int;
    j int;
    x int;
    ok boolean;
    w jsonb;
  BEGIN
    FOR n IN 1..total LOOP
      CONTINUE WHEN outcome[n] IS NOT NULL;
      w := writes->(n - 1);
      x := array_position(locked_user, write_user[n]);
      ok := x IS NOT NULL AND locked_balance[x] >= guard_balance[n];
      IF ok AND stock_guard_first[n] IS NOT NULL THEN
        FOR j IN stock_guard_first[n]..stock_guard_last[n] LOOP
          x := array_position(locked_product, stock_guard_product[j]);
          ok := ok AND x IS NOT NULL AND locked_stock[x] >= stock_guard_min[j] AND locked_price[x] = stock_guard_price[j];
        END LOOP;
      END IF;
      IF ok AND guard_status[n] IS NOT NULL THEN
        x := array_position(moved_order, (w->>'orderId')::uuid);
        ok := x IS NOT NULL AND moved_status[x] = guard_status[n] AND moved_refunded[x] = guard_refunded[n];
      END IF;
      IF ok AND guard_coupon[n] IS NOT NULL THEN
        x := array_position(copy_key, write_user[n] || ':' || guard_coupon[n]);
        ok := x IS NOT NULL AND copy_holder[x] IS NOT DISTINCT FROM guard_coupon_holder[n];
      END IF;
      IF ok IS NOT TRUE THEN
        outcome[n] := 'guard_failed';
        IF jsonb_typeof(w->'claim') = 'object' THEN
          released_users := released_users || write_user[n];
          released_keys := released_keys || (w->'claim'->>'key');
        END IF;
        CONTINUE;
      END IF;

      x := array_position(locked_user, write_user[n]);
      locked_balance[x] := locked_balance[x] + (w->>'balanceChange')::bigint;
      balance_changed[x] := true;
      balance_after[n] := locked_balance[x];
      IF change_first[n] IS NOT NULL THEN
        FOR j IN change_first[n]..change_last[n] LOOP
          x := array_position(locked_product, change_product[j]);
          IF x IS NULL THEN
            RAISE EXCEPTION 'order % changes the stock of a product that was not locked', w->>'orderId' USING ERRCODE = 'OC002';
          END IF;
          locked_stock[x] := locked_stock[x] + change_amount[j];
          stock_changed[x] := true;
        END LOOP;
      END IF;
      IF jsonb_typeof(w->'coupon') = 'object' THEN
        x := array_position(copy_key, write_user[n] || ':' || (w->'coupon'->>'couponId'));
        IF x IS NULL OR (w->'coupon'->>'couponId')::bigint IS DISTINCT FROM guard_coupon[n] THEN
          RAISE EXCEPTION 'order % changes a coupon copy its guard did not name', w->>'orderId' USING ERRCODE = 'OC002';
        END IF;
        copy_holder[x] := (w->'coupon'->>'heldBy')::uuid;
        copy_used_at[x] := CASE WHEN copy_holder[x] IS NOT NULL THEN (w->>'at')::timestamptz END;
        copy_changed[x] := true;
      END IF;
      IF guard_status[n] IS NOT NULL THEN
        x := array_position(moved_order, (w->>'orderId')::uuid);
        moved_status[x] := w->'order'->>'status';
        moved_refunded[x] := (SELECT sum((i->>'refundedQuantity')::bigint) FROM jsonb_array_elements(w->'order'->'items') i);
      END IF;
      outcome[n] := 'written';
    END LOOP;
  END check_and_apply;

  -- Every table once for the whole group, set to what the locked rows became (nothing else can
  -- change them before this transaction ends); CHECK constraints still refuse a negative balance or
  -- stock.
  <<write_rows>>
  DECLARE
    mk int;
    moved jsonb;
  BEGIN
    UPDATE users u SET balance = r.balance
      FROM unnest(locked_user, locked_balance, balance_changed) r(id, balance, changed)
     WHERE r.changed AND u.id = r.id AND u.id = ANY(locked_user);
    UPDATE products p SET stock = r.stock, updated_at = now()
      FROM unnest(locked_product, locked_stock, stock_changed) r(id, stock, changed)
     WHERE r.changed AND p.id = r.id AND p.id = ANY(locked_product);
    -- New orders before the coupon copies that name them.
    INSERT INTO orders (id, user_id, status, total_amount, discount_amount, paid_amount, coupon_id, created_at)
    SELECT (w->>'orderId')::uuid, (w->>'userId')::bigint, w->'order'->>'status', (w->'order'->>'totalAmount')::bigint,
           (w->'order'->>'discountAmount')::bigint, (w->'order'->>'paidAmount')::bigint, (w->'order'->>'couponId')::bigint,
           (w->'order'->>'createdAt')::timestamptz
      FROM jsonb_array_elements(writes) WITH ORDINALITY t(w, k) WHERE outcome[k] = 'written' AND guard_status[k] IS NULL;
    INSERT INTO order_items (order_id, line_no, product_id, quantity, unit_price, line_amount)
    SELECT (w->>'orderId')::uuid, m, (i->>'productId')::bigint, (i->>'quantity')::int, (i->>'unitPrice')::bigint, (i->>'lineAmount')::bigint
      FROM jsonb_array_elements(writes) WITH ORDINALITY t(w, k), jsonb_array_elements(w->'order'->'items') WITH ORDINALITY u(i, m)
     WHERE outcome[k] = 'written' AND guard_status[k] IS NULL;
    -- cancel_xact_id lets the best-seller rollup take a cancellation exactly once (ADR 0005, 0008).
    -- Each order is moved by one written write at most: a move changes what the next one's guard compares.
    -- A statement per moved order, its id a value, so that each reads its own partition only.
    FOR mk IN 1..total LOOP
      CONTINUE WHEN outcome[mk] <> 'written' OR guard_status[mk] IS NULL;
      moved := writes->(mk - 1);
      UPDATE orders o SET status = moved->'order'->>'status', cancelled_at = (moved->'order'->>'cancelledAt')::timestamptz,
             cancel_xact_id = CASE WHEN moved->'order'->>'cancelledAt' IS NOT NULL THEN pg_current_xact_id() END,
             refunded_amount = (moved->'order'->>'refundedAmount')::bigint
       WHERE o.id = (moved->>'orderId')::uuid;
      UPDATE order_items oi SET refunded_quantity = (i->>'refundedQuantity')::int
        FROM jsonb_array_elements(moved->'order'->'items') i
       WHERE oi.order_id = (moved->>'orderId')::uuid
         AND oi.product_id = (i->>'productId')::bigint AND oi.refunded_quantity <> (i->>'refundedQuantity')::int;
    END LOOP;
    INSERT INTO refunds (id, order_id, amount, created_at)
    SELECT (w->'refund'->>'refundId')::uuid, (w->>'orderId')::uuid, (w->'refund'->>'amount')::bigint, (w->'refund'->>'createdAt')::timestamptz
      FROM jsonb_array_elements(writes) WITH ORDINALITY t(w, k) WHERE outcome[k] = 'written' AND jsonb_typeof(w->'refund') = 'object';
    INSERT INTO refund_items (refund_id, line_no, product_id, quantity)
    SELECT (w->'refund'->>'refundId')::uuid, m, (i->>'productId')::bigint, (i->>'quantity')::int
      FROM jsonb_array_elements(writes) WITH ORDINALITY t(w, k), jsonb_array_elements(w->'refund'->'items') WITH ORDINALITY u(i, m)
     WHERE outcome[k] = 'written' AND jsonb_typeof(w->'refund') = 'object';
    UPDATE user_coupons uc SET order_id = r.holder, used_at = r.used_at
      FROM unnest(copy_user, copy_coupon, copy_holder, copy_used_at, copy_changed) r(user_id, coupon_id, holder, used_at, changed)
     WHERE r.changed AND uc.user_id = r.user_id AND uc.coupon_id = r.coupon_id AND uc.user_id = ANY(copy_user);
    -- In write order, so that each user's ledger rows follow their balance_after.
    INSERT INTO balance_ledger (user_id, type, amount, balance_after, order_id, created_at)
    SELECT (w->>'userId')::bigint, w->>'ledgerType', (w->>'balanceChange')::bigint, balance_after[k], (w->>'orderId')::uuid, (w->>'at')::timestamptz
      FROM jsonb_array_elements(writes) WITH ORDINALITY t(w, k) WHERE outcome[k] = 'written' ORDER BY k;
    -- In write order too: seq is the recording order of one order's events. A new order's event is
    -- its first. With leaseMs it is leased at once to the writing process's relay, which delivers it
    -- from memory (ADR 0003): claimed as by that relay (attempts 1), due when the lease ends.
    INSERT INTO outbox_events (event_id, event_type, aggregate_id, payload, occurred_at, attempts, next_attempt_at)
    SELECT (w->'event'->>'eventId')::uuid, w->'event'->>'type', w->>'orderId', w->'event', (w->>'at')::timestamptz,
           CASE WHEN w->>'leaseMs' IS NOT NULL THEN 1 ELSE 0 END, now() + coalesce((w->>'leaseMs')::bigint, 0) * interval '1 millisecond'
      FROM jsonb_array_elements(writes) WITH ORDINALITY t(w, k) WHERE outcome[k] = 'written' AND guard_status[k] IS NULL ORDER BY k;
    -- A write that moves an order follows the order's latest event. The outbox is ranged by event
    -- id (UUIDv7, made from the clock of the instance that wrote it): an order's events lie between
    -- the order's creation and now, a day either side for instances' clocks that disagree, so those
    -- days are read first. Only if none is found there (clocks further apart, or the order's events
    -- all purged) are the others read: never a cancel sent before the event it follows.
    IF cardinality(moved_order) > 0 THEN
      INSERT INTO outbox_events (event_id, event_type, aggregate_id, payload, occurred_at, follows)
      SELECT (w->'event'->>'eventId')::uuid, w->'event'->>'type', w->>'orderId', w->'event', (w->>'at')::timestamptz,
             coalesce(
               (SELECT p.event_id FROM outbox_events p
                 WHERE p.aggregate_id = w->>'orderId'
                   AND p.event_id >= uuid_floor((w->'order'->>'createdAt')::timestamptz - interval '1 day')
                   AND p.event_id < uuid_floor(now() + interval '1 day')
                 ORDER BY p.seq DESC LIMIT 1),
               (SELECT p.event_id FROM outbox_events p WHERE p.aggregate_id = w->>'orderId' ORDER BY p.seq DESC LIMIT 1))
        FROM jsonb_array_elements(writes) WITH ORDINALITY t(w, k) WHERE outcome[k] = 'written' AND guard_status[k] IS NOT NULL ORDER BY k;
    END IF;
  END write_rows;

  <<release_keys>>
  BEGIN
    IF cardinality(released_users) > 0 THEN
      -- Written by this transaction (created_at is its start, now()): only today's partition is read.
      DELETE FROM idempotency_keys ik USING unnest(released_users, released_keys) r(user_id, key)
       WHERE ik.user_id = r.user_id AND ik.key = r.key AND ik.created_at = now();
    END IF;
  END release_keys;
  RETURN outcome;
END
$$;
