-- What a completed request stored under (user_id, key), as {fingerprint, result}; null if nothing
-- (or no key). Where it is looked for is completed_keys'. plpgsql, not sql: a sql function with a
-- FROM is not inlined, and PostgreSQL 15 plans it again at every call; plpgsql keeps its plan for
-- the connection. Its callers' plan mode (force_generic_plan) holds inside it; no SET of its own,
-- which would cost a GUC swap per call.
CREATE OR REPLACE FUNCTION completed_key(user_id bigint, key text) RETURNS json
LANGUAGE plpgsql STABLE AS $$
BEGIN
  IF key IS NULL THEN
    RETURN NULL;
  END IF;
  RETURN (SELECT k.completed FROM completed_keys(ARRAY[completed_key.user_id], ARRAY[completed_key.key]) k);
END
$$;
