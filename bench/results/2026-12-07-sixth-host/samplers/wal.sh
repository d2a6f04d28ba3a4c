#!/bin/bash
out=$1
while true; do
  d=$(ls -dt /tmp/order-service-bench-*/postgres 2>/dev/null | head -1)
  [ -z "$d" ] && { sleep 1; continue; }
  pw=$(cat $d/../postgres.password 2>/dev/null); port=$(sed -n 4p $d/postmaster.pid)
  db=$(PGPASSWORD=$pw psql -h 127.0.0.1 -p $port -U postgres -d postgres -Atc "select datname from pg_database where datname not in ('postgres','template0','template1') order by oid desc limit 1" 2>/dev/null)
  [ -z "$db" ] && { sleep 1; continue; }
  PGPASSWORD=$pw psql -h 127.0.0.1 -p $port -U postgres -d $db -At -F' ' -c "select extract(epoch from clock_timestamp())::numeric(14,1), (select coalesce(sum(n_tup_ins),0) from pg_stat_user_tables where relname like 'idempotency_keys%'), (select coalesce(sum(n_tup_ins),0) from pg_stat_user_tables where relname like 'orders%'), wal_records, wal_fpi, wal_bytes, (select checkpoints_timed+checkpoints_req from pg_stat_bgwriter) from pg_stat_wal" >> $out 2>/dev/null || PGPASSWORD=$pw psql -h 127.0.0.1 -p $port -U postgres -d $db -At -F' ' -c "select extract(epoch from clock_timestamp())::numeric(14,1), (select coalesce(sum(n_tup_ins),0) from pg_stat_user_tables where relname like 'idempotency_keys%'), (select coalesce(sum(n_tup_ins),0) from pg_stat_user_tables where relname like 'orders%'), wal_records, wal_fpi, wal_bytes, (select num_timed+num_requested from pg_stat_checkpointer) from pg_stat_wal" >> $out 2>/dev/null
  sleep 1
done
