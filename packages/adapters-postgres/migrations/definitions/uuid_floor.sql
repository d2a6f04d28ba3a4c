-- The lowest UUIDv7 of the millisecond `at`: its first 48 bits are Unix milliseconds, so ids of
-- rows made from `at` on are >= this. Partition bounds of id-ranged tables (partition_bound),
-- and the id range a time range can hold (an order's id is made within moments of its created_at).
CREATE OR REPLACE FUNCTION uuid_floor(at timestamptz) RETURNS uuid
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT (substr(h, 1, 8) || '-' || substr(h, 9, 4) || '-0000-0000-000000000000')::uuid
    FROM lpad(to_hex(floor(extract(epoch FROM at) * 1000)::bigint), 12, '0') h
$$;
