# Sourced by the samplers: finds the newest bench's embedded PostgreSQL and its database.
# bench_db: sets $port, $pw and $db, or fails while there is none yet; q SQL: one query there, fields space-separated.
# COUNTERS: the sample's time and the key and order rows inserted so far (which tell keyed windows from uniform ones).
COUNTERS="extract(epoch from clock_timestamp())::numeric(14,1), (select coalesce(sum(n_tup_ins),0) from pg_stat_user_tables where relname like 'idempotency_keys%'), (select coalesce(sum(n_tup_ins),0) from pg_stat_user_tables where relname like 'orders%')"
bench_db() {
  local d
  d=$(ls -dt /tmp/order-service-bench-*/postgres 2>/dev/null | head -1)
  [ -n "$d" ] || return 1
  pw=$(cat "$d/../postgres.password" 2>/dev/null); port=$(sed -n 4p "$d/postmaster.pid")
  db=$(PGPASSWORD=$pw psql -h 127.0.0.1 -p "$port" -U postgres -d postgres -Atc "select datname from pg_database where datname not in ('postgres','template0','template1') order by oid desc limit 1" 2>/dev/null)
  [ -n "$db" ]
}
q() { PGPASSWORD=$pw psql -h 127.0.0.1 -p "$port" -U postgres -d "$db" -At -F' ' -c "$1" 2>/dev/null; }
