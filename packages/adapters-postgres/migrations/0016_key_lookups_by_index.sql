-- The key lookups and the group write are planned with sequential scans off (migrations/definitions:
-- completed_key, place_snapshot, write_order_group), so that a day of keys analyzed while empty is
-- still probed by its index once it fills. No table changes. This file exists to make that text a
-- new release's: a database upgraded by this release is left alone by the release before it
-- (ADR 0011), which would otherwise put back its own text when one of its instances restarts during
-- a rolling deploy. Release 15's code runs on this text unchanged (the same functions, arguments
-- and results), so oldest_release stays 12.
SELECT 1;
