-- The optimistic order write (ADR 0006) is one statement; when what it was decided on no longer
-- holds, it must fail as a whole, so that nothing it already did commits. SQL has no "raise"
-- expression, hence this one-line function; the service recognises its SQLSTATE.
CREATE FUNCTION order_guard(ok boolean) RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
  IF NOT ok THEN
    RAISE EXCEPTION 'the order''s snapshot no longer holds' USING ERRCODE = 'OC001';
  END IF;
  RETURN true;
END
$$;
