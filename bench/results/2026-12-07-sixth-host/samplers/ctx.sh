#!/bin/bash
# ctx.sh OUT: system-wide context switches and interrupts so far (/proc/stat) every second, after COUNTERS
source "$(dirname "$0")/bench-db.sh"
out=$1
while true; do
  bench_db || { sleep 1; continue; }
  c=$(awk '/^ctxt/{print $2}' /proc/stat); it=$(awk '/^intr/{print $2}' /proc/stat)
  r=$(q "select $COUNTERS")
  [ -n "$r" ] && echo "$r $c $it" >> "$out"
  sleep 1
done
