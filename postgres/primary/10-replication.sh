#!/usr/bin/env bash
# Runs once, when the primary's data directory is first initialised (official image's
# /docker-entrypoint-initdb.d contract): a replication role, a physical slot for the
# replica, and a pg_hba rule that lets that role stream WAL.
set -euo pipefail

# REPLICATION_PASSWORD_FILE (a Docker secret) wins over REPLICATION_PASSWORD, as the image's
# own POSTGRES_PASSWORD_FILE does.
if [ -n "${REPLICATION_PASSWORD_FILE:-}" ]; then
  REPLICATION_PASSWORD="$(<"$REPLICATION_PASSWORD_FILE")"
fi
: "${REPLICATION_USER:?REPLICATION_USER must be set}"
: "${REPLICATION_PASSWORD:?REPLICATION_PASSWORD must be set}"
slot="${REPLICATION_SLOT:-replica_1}"

psql -v ON_ERROR_STOP=1 --no-psqlrc --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
  -v repl_user="$REPLICATION_USER" -v repl_password="$REPLICATION_PASSWORD" -v slot="$slot" <<'SQL'
CREATE ROLE :"repl_user" WITH REPLICATION LOGIN PASSWORD :'repl_password';
SELECT pg_create_physical_replication_slot(:'slot') WHERE NOT EXISTS (
  SELECT 1 FROM pg_replication_slots WHERE slot_name = :'slot');
SQL

echo "host replication ${REPLICATION_USER} all scram-sha-256" >> "$PGDATA/pg_hba.conf"
