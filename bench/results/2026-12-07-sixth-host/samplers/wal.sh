#!/bin/bash
# wal.sh OUT: WAL records, full-page images and bytes so far (pg_stat_wal) and checkpoints, every second, with COUNTERS
source "$(dirname "$0")/bench-db.sh"
out=$1
while true; do
  bench_db || { sleep 1; continue; }
  # Checkpoints are in pg_stat_bgwriter before PostgreSQL 17, in pg_stat_checkpointer from it.
  q "select $COUNTERS, wal_records, wal_fpi, wal_bytes, (select checkpoints_timed+checkpoints_req from pg_stat_bgwriter) from pg_stat_wal" >> "$out" ||
    q "select $COUNTERS, wal_records, wal_fpi, wal_bytes, (select num_timed+num_requested from pg_stat_checkpointer) from pg_stat_wal" >> "$out"
  sleep 1
done
