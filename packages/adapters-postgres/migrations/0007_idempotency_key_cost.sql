-- What a keyed order costs the database beyond an unkeyed one (issue 11): its key row and the
-- indexes that row feeds.
--
-- A key is an opaque client string compared only for equality: byte order ("C") spares every
-- lookup and index insert the locale's comparison, and cannot make two different keys equal.
ALTER TABLE idempotency_keys ALTER COLUMN key TYPE text COLLATE "C";

-- The age index serves only the hourly purge (created_at < now() - retention). Rows arrive in
-- created_at order, so a BRIN index answers that range from a few summary tuples, and an insert
-- touches its range summary instead of descending and splitting a B-tree on every key.
DROP INDEX idempotency_keys_by_age;
CREATE INDEX idempotency_keys_by_age ON idempotency_keys USING brin (created_at);
