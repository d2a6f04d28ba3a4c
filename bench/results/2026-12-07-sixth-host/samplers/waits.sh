#!/bin/bash
# waits.sh OUT: the wait event of every active backend of the bench's embedded PostgreSQL every 0.1 s, with COUNTERS
source "$(dirname "$0")/bench-db.sh"
out=$1
while true; do
  bench_db || { sleep 1; continue; }
  q "select $COUNTERS, coalesce(wait_event_type,'cpu')||':'||coalesce(wait_event,'-') from pg_stat_activity where backend_type='client backend' and state='active' and pid<>pg_backend_pid()" >> "$out"
  sleep 0.1
done
