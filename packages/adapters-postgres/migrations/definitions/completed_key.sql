-- What a completed request stored under (user_id, key), as {fingerprint, result}; null if nothing
-- (or no key). plpgsql, not sql: a sql function with a FROM is not inlined, and PostgreSQL 15
-- plans it again at every call; plpgsql keeps its plan for the connection. Its callers' plan mode
-- (force_generic_plan) holds inside it; no SET of its own, which would cost a GUC swap per call.
CREATE OR REPLACE FUNCTION completed_key(user_id bigint, key text) RETURNS json
LANGUAGE plpgsql STABLE AS $$
BEGIN
  IF key IS NULL THEN
    RETURN NULL;
  END IF;
  -- Keys are partitioned by day of created_at (migration 0014), and days past their retention are
  -- dropped, so every day left may hold a live key and is read. No lower bound on now(): a key
  -- missed is a request done twice. The days made ahead are empty but for tomorrow's first rows:
  -- a key's created_at is the now() of the transaction that wrote it, on this server, later than
  -- ours by at most as long as ours has run, never a day; so the days after tomorrow are pruned
  -- (as the plan starts, generic plans too), two of the five or six a lookup would read.
  RETURN (SELECT json_build_object('fingerprint', k.fingerprint, 'result', k.result)
            FROM idempotency_keys k
           WHERE k.user_id = completed_key.user_id AND k.key = completed_key.key AND k.created_at < now() + interval '1 day');
END
$$;
