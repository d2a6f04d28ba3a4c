-- Where a completed request's key is looked for: for each (user_id, key) pair, by position i in
-- the arrays, what it stored, {fingerprint, result}, or null. The one statement of this rule:
-- completed_key asks it for one pair, write_order_group for a group's. A sql function of one
-- SELECT returning a set, so PostgreSQL inlines it into its caller's statement (a plpgsql caller
-- keeps that plan for the connection): a group's keys are one statement, its partitions locked
-- once, where a call per key cost twice as much (docs/performance.md, "A fifth host").
--
-- A subquery per pair, not a join: each day is probed per key, by its index, as completed_key's
-- own statement was. As a join, planned on a day's partition never analyzed (a new day, a new
-- database), it became a hash join over the whole day, and stayed so until the day was analyzed:
-- 8.6 ms a group, measured. Its callers plan it with sequential scans off (completed_key,
-- write_order_group): a day analyzed while empty was otherwise planned as a scan, kept as it filled.
--
-- Keys are partitioned by day of created_at (migration 0014), and days past their retention are
-- dropped, so every day left may hold a live key and is read. No lower bound on now(): a key
-- missed is a request done twice. The days made ahead are empty but for tomorrow's first rows: a
-- key's created_at is the now() of the transaction that wrote it, on this server, later than ours
-- by at most as long as ours has run, never a day; so the days after tomorrow are pruned (as the
-- plan starts, generic plans too), two of the five or six a lookup would read.
CREATE OR REPLACE FUNCTION completed_keys(user_ids bigint[], keys text[])
RETURNS TABLE (i bigint, completed json)
LANGUAGE sql STABLE AS $$
  SELECT c.i, (SELECT json_build_object('fingerprint', k.fingerprint, 'result', k.result)
                 FROM idempotency_keys k
                WHERE k.user_id = c.user_id AND k.key = c.key AND k.created_at < now() + interval '1 day')
    FROM unnest(user_ids, keys) WITH ORDINALITY c(user_id, key, i)
$$;
