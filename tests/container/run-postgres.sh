#!/bin/sh
# PostgreSQL for the container test: the official image's POSTGRES_USER/PASSWORD/DB meaning,
# on PGPORT, listening on 127.0.0.1 (the test runs every service with host networking).
set -eu
BIN=/usr/lib/postgresql/15/bin
DATA=/var/lib/postgresql/data
mkdir -p "$DATA" && chown postgres:postgres "$DATA" && chmod 700 "$DATA"
if [ ! -s "$DATA/PG_VERSION" ]; then
  printf '%s\n' "$POSTGRES_PASSWORD" > /tmp/pwfile && chown postgres /tmp/pwfile
  su postgres -s /bin/sh -c "$BIN/initdb -D $DATA -U $POSTGRES_USER --pwfile=/tmp/pwfile -A scram-sha-256" >/dev/null
  rm -f /tmp/pwfile
  echo "CREATE DATABASE $POSTGRES_DB OWNER $POSTGRES_USER;" \
    | su postgres -s /bin/sh -c "$BIN/postgres --single -D $DATA postgres" >/dev/null
fi
exec su postgres -s /bin/sh -c "exec $BIN/postgres -D $DATA -p $PGPORT -k /tmp -c listen_addresses=127.0.0.1"
