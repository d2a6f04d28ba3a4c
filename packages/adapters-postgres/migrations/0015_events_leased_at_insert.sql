-- A new order's event may be written leased to the writing process's relay (ADR 0003, decision 6):
-- write_order_group reads an optional leaseMs per write (migrations/definitions). No table changes.
-- This file exists to make that text a new release's: a database upgraded by this release is left
-- alone by the release before it (ADR 0011), which would otherwise put back its own text of
-- write_order_group when one of its instances restarts during a rolling deploy, and write due at
-- once the events this release's instances hold leased in memory, for other relays to claim too.
-- Release 14's code runs on this text unchanged (it sends no leaseMs), so oldest_release stays 12.
SELECT 1;
