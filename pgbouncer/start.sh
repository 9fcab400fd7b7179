#!/bin/sh
# PgBouncer's start (the container's entrypoint): what pgbouncer.ini includes, written to the
# tmpfs /run/pgbouncer, then PgBouncer in the foreground.
#   databases.ini  POSTGRES_DB on PGBOUNCER_SERVER (db or db-replica), port 5432
#   pool.ini       default_pool_size = PGBOUNCER_POOL_SIZE, max_db_connections = PGBOUNCER_MAX_DB_CONNECTIONS
#   userlist.txt   the app role (APP_DB_USER) with its password (APP_DB_PASSWORD, or the file
#                  APP_DB_PASSWORD_FILE names: a Docker secret), readable by PgBouncer alone
set -eu
run=/run/pgbouncer
umask 077
password_file="${APP_DB_PASSWORD_FILE:-}"
if [ -n "$password_file" ]; then
  password="$(cat "$password_file")"
else
  password="${APP_DB_PASSWORD:-}"
fi
[ -n "$password" ] || { echo "pgbouncer: APP_DB_PASSWORD (or APP_DB_PASSWORD_FILE) is empty" >&2; exit 1; }
user="${APP_DB_USER:?APP_DB_USER must be set}"
# The user list quotes with double quotes, a double quote inside doubled.
quote() { printf '"%s"' "$(printf '%s' "$1" | sed 's/"/""/g')"; }
printf '%s %s\n' "$(quote "$user")" "$(quote "$password")" > "$run/userlist.txt"
printf '[databases]\n%s = host=%s port=5432 dbname=%s\n' \
  "${POSTGRES_DB:?POSTGRES_DB must be set}" "${PGBOUNCER_SERVER:?PGBOUNCER_SERVER must be set}" "$POSTGRES_DB" \
  > "$run/databases.ini"
# The app role may also read PgBouncer's statistics (SHOW POOLS, SHOW STATS on the `pgbouncer` database).
printf 'default_pool_size = %s\nmax_db_connections = %s\nstats_users = %s\n' \
  "${PGBOUNCER_POOL_SIZE:-50}" "${PGBOUNCER_MAX_DB_CONNECTIONS:-55}" "$user" > "$run/pool.ini"
exec pgbouncer /etc/pgbouncer/newsdesk/pgbouncer.ini
