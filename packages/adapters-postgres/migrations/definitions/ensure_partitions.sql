-- Makes the partitions of the history tables (migration 0014) for every period from the one that
-- holds `since` to the one that holds `until`, in UTC: months for orders, order_items and
-- balance_ledger, days for idempotency_keys and outbox_events. Each is named for its period
-- (orders_p2026_12, outbox_events_p2026_12_07); one that exists is left alone, and so is a period
-- an earlier partition already covers (the first one a conversion made). `tables`: these
-- alone (a seed of a year's orders needs no daily partitions for the year). Returns how many it made.
-- The service calls it at start and hourly (partitions.ts), so the partitions ahead exist before
-- any row needs them; a row with no partition for it would fail its insert.
--
-- Made as a table of its own, then attached: ATTACH PARTITION takes a lock on the parent that no
-- insert, update or read waits for (CREATE TABLE … PARTITION OF would take an exclusive one,
-- queueing every order behind the longest reader, and deadlocking with the order writer). A
-- period whose lock it cannot have within lock_timeout (below deadlock_timeout, so that it is
-- always the one that gives up), or that another instance made first, is left for the next call.
CREATE OR REPLACE FUNCTION ensure_partitions(since timestamptz, until timestamptz, tables text[] DEFAULT NULL) RETURNS int
LANGUAGE plpgsql SET lock_timeout = '500ms' AS $$
DECLARE
  t record;
  p timestamp;
  made int := 0;
  name text;
  lo timestamp;
  hi timestamp;
BEGIN
  FOR t IN SELECT * FROM (VALUES
      ('orders', 'month'), ('order_items', 'month'), ('balance_ledger', 'month'),
      ('idempotency_keys', 'day'), ('outbox_events', 'day')) v(tbl, unit)
    -- A table not partitioned (a database before migration 0014: the benchmark's unpartitioned
    -- reference) has nothing to make.
    WHERE (tables IS NULL OR tbl = ANY(tables)) AND EXISTS (SELECT 1 FROM pg_class c WHERE c.oid = to_regclass(tbl) AND c.relkind = 'p')
  LOOP
    FOR p IN SELECT generate_series(date_trunc(t.unit, since AT TIME ZONE 'UTC'), date_trunc(t.unit, until AT TIME ZONE 'UTC'),
                                    ('1 ' || t.unit)::interval)
    LOOP
      name := t.tbl || '_p' || to_char(p, CASE t.unit WHEN 'month' THEN 'YYYY_MM' ELSE 'YYYY_MM_DD' END);
      CONTINUE WHEN to_regclass(name) IS NOT NULL;
      lo := p;
      hi := p + ('1 ' || t.unit)::interval;
      BEGIN
        EXECUTE format('CREATE TABLE %I (LIKE %I INCLUDING DEFAULTS INCLUDING CONSTRAINTS)', name, t.tbl);
        EXECUTE format('ALTER TABLE %I ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)', t.tbl, name,
                       partition_bound(t.tbl, lo AT TIME ZONE 'UTC'), partition_bound(t.tbl, hi AT TIME ZONE 'UTC'));
        made := made + 1;
      EXCEPTION
        WHEN invalid_object_definition THEN NULL; -- the period lies in an earlier partition
        WHEN duplicate_table THEN NULL;           -- another instance made it meanwhile
        WHEN lock_not_available THEN NULL;        -- busy now; the next call makes it
      END;
    END LOOP;
  END LOOP;
  RETURN made;
END
$$;
