-- Claims an Idempotency-Key for the rest of the transaction, without waiting: false while another
-- transaction holds it. Orders, cancellations and charges share it, so a key is one lock whatever
-- request holds it; a crash or a rollback releases it by itself (ADR 0002).
CREATE OR REPLACE FUNCTION idempotency_claim(user_id bigint, key text) RETURNS boolean
LANGUAGE sql VOLATILE AS $$
  SELECT pg_try_advisory_xact_lock(hashtextextended(user_id::text || ':' || key, 0))
$$;
