-- A key's state for a request of `user_id`: `completed`, its stored answer (null if none), and
-- `key_free`, whether no other request's write holds it now (its claim is taken and released
-- with the caller's statement). Without a key: nothing completed, and free.
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
