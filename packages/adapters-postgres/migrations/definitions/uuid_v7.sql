-- A new UUIDv7 of the time `at` (RFC 9562: 48 bits of Unix milliseconds, version 7, random bits),
-- as the service's generator makes them (@shop/application's uuidV7), for rows SQL makes itself:
-- the benchmark's reference transactions and seeds, tests. Orders and outbox rows are partitioned
-- by such ids (migration 0014); a random (version 4) uuid would fall in no partition.
CREATE OR REPLACE FUNCTION uuid_v7(at timestamptz DEFAULT clock_timestamp()) RETURNS uuid
LANGUAGE sql VOLATILE PARALLEL SAFE AS $$
  -- The millisecond's lowest id (uuid_floor) up to its version, then a random uuid's bits.
  SELECT (left(uuid_floor(at)::text, 14) || '7' || substr(g, 16, 3) || substr(g, 19))::uuid
    FROM CAST(gen_random_uuid() AS text) g
$$;
