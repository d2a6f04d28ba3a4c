-- What a completed request stored under (user_id, key), as {fingerprint, result}; null if nothing
-- (or no key). Where it is looked for is completed_keys'. plpgsql, not sql: a sql function with a
-- FROM is not inlined, and PostgreSQL 15 plans it again at every call; plpgsql keeps its plan for
-- the connection. Its callers' plan mode (force_generic_plan) holds inside it.
-- enable_seqscan off while it plans: a day of keys analyzed while still empty (made ahead, then a
-- database-wide ANALYZE) was planned as a scan of the whole day, and that plan was kept while the
-- day filled, every lookup then reading every key of the day (write_order_group says more). A GUC
-- swap per call, so place_snapshot calls it only for a key.
CREATE OR REPLACE FUNCTION completed_key(user_id bigint, key text) RETURNS json
LANGUAGE plpgsql STABLE SET enable_seqscan = off AS $$
BEGIN
  IF key IS NULL THEN
    RETURN NULL;
  END IF;
  RETURN (SELECT k.completed FROM completed_keys(ARRAY[completed_key.user_id], ARRAY[completed_key.key]) k);
END
$$;
