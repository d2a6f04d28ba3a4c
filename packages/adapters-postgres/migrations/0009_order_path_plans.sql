-- The order path's statements keep one plan per connection (issue 11, docs/performance.md).
--
-- PostgreSQL re-plans a prepared statement at every call while its plans for the call's values
-- (custom plans) look cheaper than the plan for any value (the generic plan). The order snapshot
-- always looked cheaper custom: a null coupon or key folds a whole subquery away. So it was
-- planned at every call, 0.23 ms of planning to 0.06 ms of execution, and the same heuristic
-- re-planned most of write_orders' statements at every group. force_generic_plan, set on the
-- functions only, keeps the rest of the service's statements on the default heuristic.

ALTER FUNCTION write_orders(jsonb, bigint) SET plan_cache_mode = force_generic_plan;

-- A key's state for a request of `user_id`: `completed`, its stored answer (null if none), and
-- `key_free`, whether no other request's write holds it now (its claim is taken and released
-- with the caller's statement). Without a key: nothing completed, and free.
CREATE FUNCTION key_state(user_id bigint, key text, OUT completed json, OUT key_free boolean)
LANGUAGE plpgsql VOLATILE SET plan_cache_mode = force_generic_plan AS $$
BEGIN
  IF key IS NULL THEN
    key_free := true;
    RETURN;
  END IF;
  SELECT json_build_object('fingerprint', k.fingerprint, 'result', k.result) INTO completed
    FROM idempotency_keys k WHERE k.user_id = key_state.user_id AND k.key = key_state.key;
  key_free := idempotency_claim(key_state.user_id, key_state.key);
END
$$;

-- What an order is decided on (pgOrderBook.snapshot): the user's balance (null: no such user),
-- the products asked for, in id order, the user's copy of the coupon, and the key's state. One
-- statement, so the decision is made on the rows as they were at one instant; unlocked, since the
-- write re-checks what the decision relied on (write_orders' guards).
CREATE FUNCTION order_snapshot(user_id bigint, product_ids bigint[], coupon_id bigint, key text)
RETURNS TABLE (balance bigint, products json, held json, completed json, key_free boolean)
LANGUAGE plpgsql VOLATILE SET plan_cache_mode = force_generic_plan AS $$
BEGIN
  RETURN QUERY SELECT
    (SELECT u.balance FROM users u WHERE u.id = order_snapshot.user_id),
    (SELECT coalesce(json_agg(json_build_object('productId', p.id, 'price', p.price, 'stock', p.stock) ORDER BY p.id), '[]'::json)
       FROM products p WHERE p.id = ANY(product_ids)),
    (SELECT json_build_object(
              'user_id', uc.user_id, 'coupon_id', uc.coupon_id, 'issued_at', uc.issued_at,
              'expires_at', uc.expires_at, 'used_at', uc.used_at, 'order_id', uc.order_id, 'name', c.name,
              'discount_type', c.discount_type, 'discount_value', c.discount_value, 'min_order_amount', c.min_order_amount)
       FROM user_coupons uc JOIN coupons c ON c.id = uc.coupon_id
      WHERE uc.user_id = order_snapshot.user_id AND uc.coupon_id = order_snapshot.coupon_id),
    s.completed, s.key_free
  FROM key_state(order_snapshot.user_id, key) s;
END
$$;
