-- The order snapshot no longer looks whether another request's write holds the key (issue 11,
-- ADR 0010). That look is a try-lock on the key, taken and released with the snapshot; under load
-- it cost about 0.08 ms of PostgreSQL CPU per keyed order, and only a refused keyed request needs
-- it: an accepted one is told by write_orders, which claims the key (busy). So a refused keyed
-- request asks key_state once, after its refusal.
--
-- order_snapshot (0009) stays for processes of the previous version during a rolling deploy; the
-- next migration drops it.

-- What a completed request stored under (user_id, key), as {fingerprint, result}; null if nothing
-- (or no key). plpgsql, not sql: a sql function with a FROM is not inlined, and PostgreSQL 15
-- plans it again at every call; plpgsql keeps its plan for the connection. Its callers' plan mode
-- (force_generic_plan) holds inside it; no SET of its own, which would cost a GUC swap per call.
CREATE FUNCTION completed_key(user_id bigint, key text) RETURNS json
LANGUAGE plpgsql STABLE AS $$
BEGIN
  IF key IS NULL THEN
    RETURN NULL;
  END IF;
  RETURN (SELECT json_build_object('fingerprint', k.fingerprint, 'result', k.result)
            FROM idempotency_keys k WHERE k.user_id = completed_key.user_id AND k.key = completed_key.key);
END
$$;

-- key_state (0009), unchanged but for its completed part, now stated once in completed_key.
CREATE OR REPLACE FUNCTION key_state(user_id bigint, key text, OUT completed json, OUT key_free boolean)
LANGUAGE plpgsql VOLATILE SET plan_cache_mode = force_generic_plan AS $$
BEGIN
  IF key IS NULL THEN
    key_free := true;
    RETURN;
  END IF;
  completed := completed_key(key_state.user_id, key_state.key);
  key_free := idempotency_claim(key_state.user_id, key_state.key);
END
$$;

-- What an order is decided on (pgOrderBook.snapshot): the user's balance (null: no such user),
-- the products asked for, in id order, the user's copy of the coupon, and what a completed
-- request stored under the key (null without a key). One statement, so the decision is made on
-- the rows as they were at one instant; unlocked, since the write re-checks what the decision
-- relied on (write_orders' guards). One row: ROWS 1 tells the planner so, for the statement that
-- joins the order a completed key names (pgOrderBook.snapshot).
CREATE FUNCTION place_snapshot(user_id bigint, product_ids bigint[], coupon_id bigint, key text)
RETURNS TABLE (balance bigint, products json, held json, completed json)
LANGUAGE plpgsql VOLATILE ROWS 1 SET plan_cache_mode = force_generic_plan AS $$
BEGIN
  RETURN QUERY SELECT
    (SELECT u.balance FROM users u WHERE u.id = place_snapshot.user_id),
    (SELECT coalesce(json_agg(json_build_object('productId', p.id, 'price', p.price, 'stock', p.stock) ORDER BY p.id), '[]'::json)
       FROM products p WHERE p.id = ANY(product_ids)),
    (SELECT json_build_object(
              'user_id', uc.user_id, 'coupon_id', uc.coupon_id, 'issued_at', uc.issued_at,
              'expires_at', uc.expires_at, 'used_at', uc.used_at, 'order_id', uc.order_id, 'name', c.name,
              'discount_type', c.discount_type, 'discount_value', c.discount_value, 'min_order_amount', c.min_order_amount)
       FROM user_coupons uc JOIN coupons c ON c.id = uc.coupon_id
      WHERE uc.user_id = place_snapshot.user_id AND uc.coupon_id = place_snapshot.coupon_id),
    completed_key(place_snapshot.user_id, key);
END
$$;
