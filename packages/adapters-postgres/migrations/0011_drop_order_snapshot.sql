-- order_snapshot (0009) was kept by 0010 only for processes of the release before it during a
-- rolling deploy; no process of the last two releases calls it. Every function that is still
-- called now has its current text in definitions/ (ADR 0011), applied after the numbered
-- migrations.
DROP FUNCTION order_snapshot(bigint, bigint[], bigint, text);
