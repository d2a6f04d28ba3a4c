-- A key's state for a request of `user_id`: `completed`, what a completed request stored under it
-- (null if none), and `key_free`, whether no other transaction holds it. Without a key: nothing
-- completed, and free. The claim comes first, so the completed read, a later statement, cannot
-- miss a request that completed while we waited for nothing. The claim lasts as long as the
-- caller's transaction: a charge keeps it until it commits; a bare statement (a refused order's
-- look, a cancellation's snapshot) lets it go at once.
CREATE OR REPLACE FUNCTION key_state(user_id bigint, key text, OUT completed json, OUT key_free boolean)
LANGUAGE plpgsql VOLATILE SET plan_cache_mode = force_generic_plan AS $$
BEGIN
  IF key IS NULL THEN
    key_free := true;
    RETURN;
  END IF;
  key_free := idempotency_claim(key_state.user_id, key_state.key);
  completed := completed_key(key_state.user_id, key_state.key);
END
$$;
