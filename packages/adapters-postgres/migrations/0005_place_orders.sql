-- Superseded by 0006_one_order_writer.sql, which drops what this migration created on databases
-- that applied it (the first place_orders(jsonb), whose guards were stated by hand). Kept, empty,
-- so the migration names stay in sequence.
SELECT 1;
