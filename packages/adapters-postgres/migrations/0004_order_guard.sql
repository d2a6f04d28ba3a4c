-- Superseded by 0006_one_order_writer.sql, which drops what this migration created on databases
-- that applied it (the order_guard function of ADR 0006's first writer). Kept, empty, so the
-- migration names stay in sequence.
SELECT 1;
