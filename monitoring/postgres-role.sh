#!/bin/sh
# The `monitor` role postgres_exporter logs in as: pg_monitor (read every statistics view,
# nothing else). Run by the monitoring profile's one-shot `postgres-role` service before the
# exporters start: it creates the role if it is missing and (re)sets its password from .env,
# so it works on an existing database as on a new one. The replica gets it by replication.
set -eu
: "${MONITOR_USER:?}" "${MONITOR_PASSWORD:?}"
export PGPASSWORD="$POSTGRES_PASSWORD"
psql -v ON_ERROR_STOP=1 -qtAX -h db -U "$POSTGRES_USER" -d "$POSTGRES_DB" \
  -v role="$MONITOR_USER" -v password="$MONITOR_PASSWORD" <<'SQL'
SELECT format('CREATE ROLE %I LOGIN', :'role')
WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'role') \gexec
SELECT format('ALTER ROLE %I WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE CONNECTION LIMIT 5 PASSWORD %L', :'role', :'password') \gexec
SELECT format('GRANT pg_monitor TO %I', :'role') \gexec
SQL
echo "role $MONITOR_USER ready (pg_monitor)"
