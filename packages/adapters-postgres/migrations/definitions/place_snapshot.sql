-- What an order is decided on (pgOrderBook.snapshot): the user's balance (null: no such user),
-- the products asked for, in id order, the user's copy of the coupon, and what a completed
-- request stored under the key (null without a key). One statement, so the decision is made on
-- the rows as they were at one instant; unlocked, since the write re-checks what the decision
-- relied on (write_order_group's guards). One row: ROWS 1 tells the planner so, for the statement that
-- joins the order a completed key names (pgOrderBook.snapshot). Whether the key is in flight is
-- not looked at: only a refused keyed request needs that, and asks key_state (ADR 0010).
-- force_generic_plan: a null coupon or key makes every custom plan look cheaper, so PostgreSQL
-- would plan it at every call (ADR 0009). completed_key only for a key: it swaps a setting per call.
CREATE OR REPLACE FUNCTION place_snapshot(user_id bigint, product_ids bigint[], coupon_id bigint, key text)
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
    CASE WHEN key IS NULL THEN NULL ELSE completed_key(place_snapshot.user_id, key) END;
END
$$;
