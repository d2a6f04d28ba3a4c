#!/bin/bash
# A streaming replica of the `postgres` service: on first start, a base backup of the primary
# through its own replication slot (-C -S), written with standby.signal and primary_conninfo (-R);
# then the server, a hot standby that follows the primary.
set -euo pipefail
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  until pg_isready -h postgres -U "$POSTGRES_USER" -d "$POSTGRES_DB"; do sleep 1; done
  PGPASSWORD="$REPLICATION_PASSWORD" pg_basebackup -h postgres -U replicator -D "$PGDATA" -R -X stream -C -S replica1 -P
  chmod 700 "$PGDATA"
fi
exec postgres
