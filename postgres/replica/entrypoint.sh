#!/usr/bin/env bash
# Entrypoint of `db-replica`: a hot standby streaming from `db`.
#
# On first start (empty volume) it clones the primary with pg_basebackup through the
# replication slot, writes standby.signal with primary_conninfo and primary_slot_name,
# then hands over to the image's own entrypoint, which finds an initialised data
# directory and simply starts postgres. Later starts go straight to streaming.
set -euo pipefail

: "${PGDATA:=/var/lib/postgresql/data}"
: "${PRIMARY_HOST:=db}"
: "${PRIMARY_PORT:=5432}"
# REPLICATION_PASSWORD_FILE (a Docker secret) wins over REPLICATION_PASSWORD.
if [ -n "${REPLICATION_PASSWORD_FILE:-}" ]; then
  REPLICATION_PASSWORD="$(<"$REPLICATION_PASSWORD_FILE")"
  unset REPLICATION_PASSWORD_FILE
fi
: "${REPLICATION_USER:?REPLICATION_USER must be set}"
: "${REPLICATION_PASSWORD:?REPLICATION_PASSWORD must be set}"
slot="${REPLICATION_SLOT:-replica_1}"

as_postgres() {
  if [ "$(id -u)" = 0 ]; then gosu postgres "$@"; else "$@"; fi
}

if [ ! -s "$PGDATA/PG_VERSION" ]; then
  mkdir -p "$PGDATA"
  if [ "$(id -u)" = 0 ]; then chown postgres:postgres "$PGDATA"; fi
  chmod 0700 "$PGDATA"
  echo "db-replica: empty data directory; waiting for ${PRIMARY_HOST}:${PRIMARY_PORT}"
  until as_postgres pg_isready -q -h "$PRIMARY_HOST" -p "$PRIMARY_PORT"; do sleep 1; done
  echo "db-replica: base backup from ${PRIMARY_HOST} through slot ${slot}"
  tmp="$PGDATA/.basebackup"  # same filesystem as PGDATA, so the final move is a rename
  rm -rf "$tmp"
  export PGPASSWORD="$REPLICATION_PASSWORD"
  as_postgres pg_basebackup --pgdata="$tmp" --host="$PRIMARY_HOST" --port="$PRIMARY_PORT" \
    --username="$REPLICATION_USER" --wal-method=stream --slot="$slot" --checkpoint=fast --no-password
  unset PGPASSWORD
  conninfo="host=${PRIMARY_HOST} port=${PRIMARY_PORT} user=${REPLICATION_USER} password=${REPLICATION_PASSWORD} application_name=db-replica"
  as_postgres bash -c "
    printf '%s\n' \"primary_conninfo = '${conninfo}'\" \"primary_slot_name = '${slot}'\" >> '$tmp/postgresql.auto.conf'
    touch '$tmp/standby.signal'
    chmod 0700 '$tmp'
  "
  # Move the finished copy into place in one step, so a crash never leaves half a replica.
  as_postgres bash -c "shopt -s dotglob; mv '$tmp'/* '$PGDATA'/ && rmdir '$tmp'"
  echo "db-replica: base backup done"
fi

exec docker-entrypoint.sh "$@"
