-- Makes the partitions of the history tables (migration 0014) for every period from the one that
-- holds `since` to the one that holds `until`, in UTC: months for orders, order_items and
-- balance_ledger, days for idempotency_keys and outbox_events. Each is named for its period
-- (orders_p2026_12, outbox_events_p2026_12_07); one that exists is left alone, and so is a period
-- an earlier partition already covers (the first one a conversion made). `tables`: these
-- alone (a seed of a year's orders needs no daily partitions for the year). Returns how many it made.
-- The service calls it at start and hourly (partitions.ts), so the partitions ahead exist before
-- any row needs them; a row with no partition for it would fail its insert.
CREATE OR REPLACE FUNCTION ensure_partitions(since timestamptz, until timestamptz, tables text[] DEFAULT NULL) RETURNS int
LANGUAGE plpgsql AS $$
DECLARE
  t record;
  p timestamp;
  made int := 0;
  name text;
  lo timestamptz;
  hi timestamptz;
BEGIN
  FOR t IN SELECT * FROM (VALUES
      ('orders', 'month', true), ('order_items', 'month', true), ('balance_ledger', 'month', false),
      ('idempotency_keys', 'day', false), ('outbox_events', 'day', true)) v(tbl, unit, by_id)
    -- A table not partitioned (a database before migration 0014: the benchmark's unpartitioned
    -- reference) has nothing to make.
    WHERE (tables IS NULL OR tbl = ANY(tables)) AND EXISTS (SELECT 1 FROM pg_class c WHERE c.oid = to_regclass(tbl) AND c.relkind = 'p')
  LOOP
    FOR p IN SELECT generate_series(date_trunc(t.unit, since AT TIME ZONE 'UTC'), date_trunc(t.unit, until AT TIME ZONE 'UTC'),
                                    ('1 ' || t.unit)::interval)
    LOOP
      name := t.tbl || '_p' || to_char(p, CASE t.unit WHEN 'month' THEN 'YYYY_MM' ELSE 'YYYY_MM_DD' END);
      CONTINUE WHEN to_regclass(name) IS NOT NULL;
      lo := p AT TIME ZONE 'UTC';
      hi := (p + ('1 ' || t.unit)::interval) AT TIME ZONE 'UTC';
      BEGIN
        EXECUTE format('CREATE TABLE %I PARTITION OF %I FOR VALUES FROM (%L) TO (%L)', name, t.tbl,
                       CASE WHEN t.by_id THEN uuid_floor(lo)::text ELSE lo::text END,
                       CASE WHEN t.by_id THEN uuid_floor(hi)::text ELSE hi::text END);
        made := made + 1;
      EXCEPTION WHEN invalid_object_definition THEN
        NULL; -- the period lies in an earlier partition
      END;
    END LOOP;
  END LOOP;
  RETURN made;
END
$$;
