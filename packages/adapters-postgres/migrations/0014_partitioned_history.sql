-- History partitioned by time (issue 23, ADR 0014). Orders, their items, ledger rows, idempotency
-- keys and outbox rows go into tables partitioned by range: orders and order_items by the order's
-- UUIDv7 id (its first 48 bits are Unix milliseconds, so a range of ids is a range of time and the
-- primary key stays the id), outbox rows by their UUIDv7 event id, ledger rows and keys by
-- created_at. Monthly for what is kept for years, daily for what leaves after days (keys, delivered
-- events), so those leave by dropping a whole day, not by deleting rows.
--
-- Every row is kept: each table's rows are copied into one first partition that reaches from the
-- lowest value to the end of the period holding the newest of them (or now, if later); an empty
-- table gets none. An id-ranged table whose ids are not all UUIDv7 (a random uuid's first bits are
-- no time) is refused, naming it, rather than given a first partition that ends millennia ahead and
-- leaves nothing for the partitions after it: the service has only ever made v7 ids. ensure_partitions (definitions/) makes the periods after it, at every start and
-- hourly. PostgreSQL 15 has no identity columns on partitioned tables: ledger ids and outbox seq
-- take their values from plain sequences, continued from the old ones.
--
-- What a partitioned table cannot have: a unique index without the partition key. The one it
-- costs is outbox_events_one_per_order (one order.paid and one order.cancelled per order): the
-- order's own row guards that instead, as it always did first (a paid event is written with the
-- order's insert, whose primary key refuses a second; a cancellation moves the locked order from
-- a status that is not CANCELLED, once). Idempotency keys: the primary key becomes (user_id, key,
-- created_at); a key is still one lock (idempotency_claim) and is looked up before it is written.

LOCK TABLE orders, order_items, balance_ledger, idempotency_keys, outbox_events, refunds, user_coupons IN ACCESS EXCLUSIVE MODE;

ALTER TABLE balance_ledger DROP CONSTRAINT balance_ledger_order_id_fkey;
ALTER TABLE user_coupons DROP CONSTRAINT user_coupons_order_id_fkey;
ALTER TABLE refunds DROP CONSTRAINT refunds_order_id_fkey;
ALTER TABLE order_items DROP CONSTRAINT order_items_order_id_fkey;

ALTER TABLE orders RENAME TO orders_0013;
ALTER TABLE order_items RENAME TO order_items_0013;
ALTER TABLE balance_ledger RENAME TO balance_ledger_0013;
ALTER TABLE idempotency_keys RENAME TO idempotency_keys_0013;
ALTER TABLE outbox_events RENAME TO outbox_events_0013;

-- Plain sequences where identities were, continued past every value handed out.
CREATE SEQUENCE balance_ledger_seq;
SELECT setval('balance_ledger_seq', greatest((SELECT max(id) FROM balance_ledger_0013), nextval('balance_ledger_id_seq')));
CREATE SEQUENCE outbox_events_seq;
SELECT setval('outbox_events_seq', greatest((SELECT max(seq) FROM outbox_events_0013), nextval('outbox_events_seq_seq')));
ALTER TABLE balance_ledger_0013 ALTER COLUMN id DROP IDENTITY;
ALTER TABLE outbox_events_0013 ALTER COLUMN seq DROP IDENTITY;

CREATE TABLE orders (LIKE orders_0013 INCLUDING DEFAULTS INCLUDING CONSTRAINTS) PARTITION BY RANGE (id);
CREATE TABLE order_items (LIKE order_items_0013 INCLUDING DEFAULTS INCLUDING CONSTRAINTS) PARTITION BY RANGE (order_id);
CREATE TABLE balance_ledger (LIKE balance_ledger_0013 INCLUDING DEFAULTS INCLUDING CONSTRAINTS) PARTITION BY RANGE (created_at);
ALTER TABLE balance_ledger ALTER COLUMN id SET DEFAULT nextval('balance_ledger_seq');
ALTER SEQUENCE balance_ledger_seq OWNED BY balance_ledger.id;
CREATE TABLE idempotency_keys (LIKE idempotency_keys_0013 INCLUDING DEFAULTS INCLUDING CONSTRAINTS) PARTITION BY RANGE (created_at);
CREATE TABLE outbox_events (LIKE outbox_events_0013 INCLUDING DEFAULTS INCLUDING CONSTRAINTS) PARTITION BY RANGE (event_id);
ALTER TABLE outbox_events ALTER COLUMN seq SET DEFAULT nextval('outbox_events_seq');
ALTER SEQUENCE outbox_events_seq OWNED BY outbox_events.seq;

-- The first partition of each table that has rows: from the lowest value to the end of the
-- (UTC) period that holds its newest row, or now if that is later. Named for where it ends.
DO $$
DECLARE
  t record;
  newest timestamptz;
  ends timestamp;
  strays bigint;
BEGIN
  FOR t IN SELECT * FROM (VALUES
      ('orders', 'month', 'id'), ('order_items', 'month', 'order_id'), ('balance_ledger', 'month', 'created_at'),
      ('idempotency_keys', 'day', 'created_at'), ('outbox_events', 'day', 'event_id')) v(tbl, unit, col)
  LOOP
    IF t.col = 'created_at' THEN
      EXECUTE format('SELECT max(created_at) FROM %I', t.tbl || '_0013') INTO newest;
    ELSE
      EXECUTE format($q$SELECT count(*) FROM %I WHERE substr(%I::text, 15, 1) <> '7'$q$, t.tbl || '_0013', t.col) INTO strays;
      IF strays > 0 THEN
        RAISE EXCEPTION '%: % row(s) whose % is not a UUIDv7 (this service makes only those) cannot be placed by time',
          t.tbl, strays, t.col USING ERRCODE = 'OC004';
      END IF;
      -- A UUIDv7's first 12 hex digits are its Unix milliseconds.
      EXECUTE format($q$SELECT to_timestamp(('x' || substr(replace(v::text, '-', ''), 1, 12))::bit(48)::bigint / 1000.0)
                        FROM (SELECT %I AS v FROM %I ORDER BY 1 DESC LIMIT 1) newest$q$, t.col, t.tbl || '_0013') INTO newest;
    END IF;
    CONTINUE WHEN newest IS NULL;
    ends := date_trunc(t.unit, greatest(newest, now()) AT TIME ZONE 'UTC') + ('1 ' || t.unit)::interval;
    EXECUTE format('CREATE TABLE %I PARTITION OF %I FOR VALUES FROM (MINVALUE) TO (%L)',
                   t.tbl || '_before_' || to_char(ends, CASE t.unit WHEN 'month' THEN 'YYYY_MM' ELSE 'YYYY_MM_DD' END), t.tbl,
                   CASE WHEN t.col = 'created_at' THEN to_char(ends, 'YYYY-MM-DD HH24:MI:SS') || '+00'
                        ELSE (substr(lpad(to_hex((extract(epoch FROM ends AT TIME ZONE 'UTC') * 1000)::bigint), 12, '0'), 1, 8) || '-' ||
                              substr(lpad(to_hex((extract(epoch FROM ends AT TIME ZONE 'UTC') * 1000)::bigint), 12, '0'), 9, 4) ||
                              '-0000-0000-000000000000') END);
    EXECUTE format('INSERT INTO %I SELECT * FROM %I', t.tbl, t.tbl || '_0013');
  END LOOP;
END
$$;

DROP TABLE orders_0013, order_items_0013, balance_ledger_0013, idempotency_keys_0013, outbox_events_0013;

ALTER TABLE orders ADD PRIMARY KEY (id);
ALTER TABLE orders ADD FOREIGN KEY (user_id) REFERENCES users (id);
ALTER TABLE orders ADD FOREIGN KEY (coupon_id) REFERENCES coupons (id);
-- A user's orders newest first, by id: the partition key, so a page reads the newest partitions first and stops.
CREATE INDEX orders_by_user ON orders (user_id, id DESC);
CREATE INDEX orders_by_created ON orders (created_at);
CREATE INDEX orders_by_xact ON orders (xact_id);
CREATE INDEX orders_by_cancel_xact ON orders (cancel_xact_id) WHERE cancel_xact_id IS NOT NULL;

ALTER TABLE order_items ADD PRIMARY KEY (order_id, line_no);
ALTER TABLE order_items ADD UNIQUE (order_id, product_id);
ALTER TABLE order_items ADD FOREIGN KEY (order_id) REFERENCES orders (id);
ALTER TABLE order_items ADD FOREIGN KEY (product_id) REFERENCES products (id);
CREATE INDEX order_items_by_product ON order_items (product_id);

ALTER TABLE balance_ledger ADD PRIMARY KEY (id, created_at);
ALTER TABLE balance_ledger ADD FOREIGN KEY (user_id) REFERENCES users (id);
ALTER TABLE balance_ledger ADD FOREIGN KEY (order_id) REFERENCES orders (id);
-- A user's history newest first, by created_at: the partition key, so a page reads the newest partitions first and stops.
CREATE INDEX balance_ledger_by_user ON balance_ledger (user_id, created_at DESC, id DESC);

ALTER TABLE idempotency_keys ADD PRIMARY KEY (user_id, key, created_at);

ALTER TABLE outbox_events ADD PRIMARY KEY (event_id);
CREATE INDEX outbox_events_by_aggregate ON outbox_events (aggregate_id, seq);
CREATE INDEX outbox_events_delivered ON outbox_events (delivered_at) WHERE delivered_at IS NOT NULL;
CREATE INDEX outbox_events_failing ON outbox_events (created_at, event_id) WHERE delivered_at IS NULL AND last_error IS NOT NULL;
CREATE INDEX outbox_events_undelivered ON outbox_events (next_attempt_at) WHERE delivered_at IS NULL;

ALTER TABLE user_coupons ADD FOREIGN KEY (order_id) REFERENCES orders (id);
ALTER TABLE refunds ADD FOREIGN KEY (order_id) REFERENCES orders (id);

-- Planner statistics for the new tables now, not when autovacuum gets to them (it never analyzes a
-- partitioned parent); the purges read their row counts from them.
ANALYZE orders, order_items, balance_ledger, idempotency_keys, outbox_events;
