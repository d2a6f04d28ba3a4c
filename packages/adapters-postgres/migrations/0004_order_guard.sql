-- The optimistic order write (ADR 0006, place_orders in 0005) must undo an order as a whole when
-- what it was decided on no longer holds. SQL has no "raise" expression, hence this function;
-- place_orders recognises its SQLSTATE.
CREATE FUNCTION order_guard(ok boolean) RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
  IF ok IS NOT TRUE THEN -- NULL (an unknown) refuses too
    RAISE EXCEPTION 'the order''s snapshot no longer holds' USING ERRCODE = 'OC001';
  END IF;
  RETURN true;
END
$$;
