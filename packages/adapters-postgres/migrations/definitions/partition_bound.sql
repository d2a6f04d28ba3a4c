-- The bound, as ATTACH PARTITION takes it, of a history table's period starting at `at`: the
-- lowest UUIDv7 of that instant for the tables ranged by id (orders, order_items, outbox_events),
-- the instant in UTC for those ranged by time, whatever the session's DateStyle and TimeZone.
-- ensure_partitions makes partitions with it and the purge attaches a day back with it
-- (partitions.ts), so a day detached and attached again has the bounds it was made with.
-- PL/pgSQL, whose body is bound at its first call: definitions are applied in name order, and
-- uuid_floor comes after this one.
CREATE OR REPLACE FUNCTION partition_bound(tbl text, at timestamptz) RETURNS text
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
BEGIN
  RETURN CASE WHEN tbl IN ('orders', 'order_items', 'outbox_events') THEN uuid_floor(at)::text
              ELSE to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') || '+00' END;
END
$$;
