-- Functions nothing calls any more (ADR 0011); every function still called has its current text in
-- definitions/, applied after the numbered migrations.
-- order_snapshot (0009) was kept by 0010 only for processes of the release before it.
DROP FUNCTION order_snapshot(bigint, bigint[], bigint, text);
-- write_orders (0008) is replaced by write_order_group, which applies the domain's effects and
-- answers precise outcomes. A process of the previous release still calling write_orders gets
-- "function does not exist" and writes nothing: stop those processes first (docs/operations.md).
DROP FUNCTION write_orders(jsonb, bigint);
