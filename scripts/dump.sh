#!/usr/bin/env bash
# `make dump` / `make load-dump`: logical dumps of the database (POSTGRES_DB), to move the data
# between installations or keep a copy, in the project COMPOSE_PROJECT_NAME (default newsdesk).
#
#   scripts/dump.sh dump         pg_dump -Fc on the primary, streamed to backups/newsdesk-<UTC>.dump
#                                (written as a hidden .partial file, renamed once pg_dump succeeded:
#                                a failed dump never leaves a file that looks complete)
#   scripts/dump.sh load FILE    replace the database with the dump FILE:
#     1. refuse when the database has articles, unless FORCE=1 (`make up` seeds demo articles on an
#        empty database: on a fresh stack, FORCE=1 replaces them); ask, unless YES=1
#     2. stop the writers (web, worker, beat; nginx stays and answers 502 meanwhile)
#     3. in one transaction: drop the schema `public`, recreate it, and restore the dump into it
#        (pg_restore --no-owner, its SQL through psql). Dropping the whole schema, not only the
#        dump's objects (pg_restore --clean), also removes the tables of migrations newer than the
#        dump, so step 4 can bring an older dump up to date. If anything fails, including a
#        truncated or unreadable file, the transaction rolls back and the data is unchanged.
#     4. the app's migrations (the `migrate` service: flask db upgrade)
#     5. FLUSHALL on `cache` (its pages describe the old data) and on `redis`: its sessions name
#        users by id (they would log browsers in as whoever has that id in the loaded data), its
#        unsent view counts and queued tasks name articles by id, the rest is rebuilt on its own
#     6. start the writers again (as many as ran), wait until healthy, and check that the
#        streaming replica has replayed the load (it follows by replication: nothing to do there)
# A dump holds password and API key hashes: the files are written readable by their owner only.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"
CALLER_DIR="$PWD"
cd "$ROOT"
load_env

project="${COMPOSE_PROJECT_NAME:-newsdesk}"
timeout="${WAIT_TIMEOUT:-300}"
BACKUPS="$ROOT/backups"

usage() { die "usage: scripts/dump.sh dump | scripts/dump.sh load FILE  (FORCE=1: replace existing articles, YES=1: do not ask)"; }

require_running() {
  local service
  for service in "$@"; do
    [ -n "$(docker compose ps -q --status running "$service")" ] \
      || die "$service is not running in project $project: 'make up' first"
  done
}

# psql_on SERVICE SQL: the result of SQL on the db or db-replica (as POSTGRES_USER, in POSTGRES_DB).
psql_on() {
  local service="$1" sql="$2"
  docker compose exec -T "$service" sh -c 'psql -X -v ON_ERROR_STOP=1 -qtA -U "$POSTGRES_USER" -d "$POSTGRES_DB" -c "$1"' sh "$sql" </dev/null
}

human_size() { numfmt --to=iec --suffix=B "$(stat -c %s "$1")"; }

dump() {
  require_running db
  mkdir -p "$BACKUPS"
  local stamp final partial
  stamp="$(date -u +%Y%m%dT%H%M%SZ)"
  final="$BACKUPS/newsdesk-$stamp.dump"
  partial="$BACKUPS/.newsdesk-$stamp.dump.partial"
  [ ! -e "$final" ] || die "$final exists already"
  trap 'rm -f "$partial"' EXIT
  say "pg_dump of ${POSTGRES_DB:-newsdesk} on the primary (project $project)"
  (umask 077 && docker compose exec -T db sh -c 'exec pg_dump -Fc -U "$POSTGRES_USER" -d "$POSTGRES_DB"' >"$partial") \
    || die "pg_dump failed: no dump written"
  [ "$(head -c 5 "$partial")" = PGDMP ] || die "pg_dump's output is not a custom-format archive: no dump written"
  mv "$partial" "$final"
  trap - EXIT
  say "dump written in ${SECONDS}s: ${final#"$ROOT"/} ($(human_size "$final"))"
  printf '%s\n' "${final#"$ROOT"/}"
}

# Runs in the db container, the dump on its stdin. pg_restore writes the dump as SQL; psql runs it
# inside the transaction opened here, which COMMITs only when pg_restore read the whole file (else
# an error rolls it back), and then prints "restore committed": the caller's proof of success.
# The schema is recreated as PostgreSQL 15 creates it (owner pg_database_owner, USAGE for PUBLIC).
read -r -d '' RESTORE <<'SH' || true
{
  printf '%s\n' \
    "SET client_min_messages = warning;" \
    "SET lock_timeout = '10s';" \
    "BEGIN;" \
    "DROP SCHEMA public CASCADE;" \
    "CREATE SCHEMA public AUTHORIZATION pg_database_owner;" \
    "GRANT USAGE ON SCHEMA public TO PUBLIC;" \
    "COMMENT ON SCHEMA public IS 'standard public schema';"
  if pg_restore --no-owner -f -; then
    printf '%s\n' "COMMIT;" '\echo restore committed'
  else
    # First end a COPY that the cut input may have left open (its last line becomes a bad row).
    printf '\n\\.\n%s\n' "DO \$\$ BEGIN RAISE EXCEPTION 'the dump ended early or could not be read: nothing was loaded'; END \$\$;"
  fi
} | psql -X -q -o /dev/null -v ON_ERROR_STOP=1 -U "$POSTGRES_USER" -d "$POSTGRES_DB"
SH

count_rows() {
  local table="$1"
  if [ -n "$(psql_on db "SELECT to_regclass('public.$table')")" ]; then
    psql_on db "SELECT count(*) FROM public.$table"
  else
    echo 0
  fi
}

# wait_for_replica SECONDS: the replica has replayed the primary's WAL up to now.
wait_for_replica() {
  local lsn deadline=$((SECONDS + $1))
  lsn="$(psql_on db "SELECT pg_current_wal_lsn()")"
  until [ "$(psql_on db-replica "SELECT coalesce(pg_last_wal_replay_lsn() >= '$lsn', false)" 2>/dev/null)" = t ]; do
    [ "$SECONDS" -lt "$deadline" ] || return 1
    sleep 1
  done
}

start_writers() {
  [ "${#writers[@]}" -gt 0 ] || return 0
  say "starting ${writers[*]} ($web web, $workers workers) and waiting until healthy"
  docker compose up -d --no-deps --no-recreate --wait --wait-timeout "$timeout" ${scale[@]+"${scale[@]}"} "${writers[@]}"
}

load() {
  local file="${1:-}"
  [ -n "$file" ] || die "which dump? make load-dump FILE=backups/newsdesk-<time>.dump (or scripts/dump.sh load FILE)"
  [[ "$file" = /* ]] || file="$CALLER_DIR/$file"
  [ -f "$file" ] && [ -r "$file" ] || die "$file: no such readable file"
  [ "$(head -c 5 "$file")" = PGDMP ] || die "$file is not a pg_dump custom-format archive (make dump writes those)"
  require_running db redis cache
  local articles users db="${POSTGRES_DB:-newsdesk}"
  articles="$(count_rows articles)"
  users="$(count_rows users)"
  if [ "$articles" != 0 ] && [ "${FORCE:-0}" != 1 ]; then
    die "database $db in project $project has $articles articles and $users users: load-dump replaces everything and expects an empty stack (a fresh 'make up' seeds demo articles); FORCE=1 replaces them"
  fi
  if [ "${YES:-0}" != 1 ]; then
    [ -t 0 ] || die "no terminal to ask on: YES=1 confirms"
    local answer
    read -r -p "Replace the $articles articles and $users users of database $db (project $project) with $file? [y/N] " answer
    case "$answer" in y | Y | yes) ;; *) die "nothing changed" ;; esac
  fi

  # The writers that run now, started again as they were (also when the load fails and rolls back).
  # Globals: start_writers also runs from the EXIT trap.
  writers=() scale=()
  web="$(docker compose ps -q --status running web | wc -l)"
  workers="$(docker compose ps -q --status running worker | wc -l)"
  beat="$(docker compose ps -q --status running beat | wc -l)"
  [ "$web" = 0 ] || { writers+=(web) && scale+=(--scale "web=$web"); }
  [ "$workers" = 0 ] || { writers+=(worker) && scale+=(--scale "worker=$workers"); }
  [ "$beat" = 0 ] || writers+=(beat)
  say "stopping the writers (web, worker, beat)"
  local mark=$SECONDS phases=()
  docker compose stop web worker beat
  phases+=("writers stopped $((SECONDS - mark))s") && mark=$SECONDS
  trap 'say "the load failed: the data is as it was; starting the writers again"; start_writers' EXIT

  say "restoring $file ($(human_size "$file")) in one transaction"
  local committed
  committed="$(docker compose exec -T db sh -c "$RESTORE" <"$file")" || die "the restore failed (see above)"
  [ "$committed" = "restore committed" ] || die "the restore did not commit (psql said: $committed)"
  trap - EXIT
  phases+=("restore $((SECONDS - mark))s") && mark=$SECONDS

  say "migrations (flask db upgrade)"
  docker compose run --rm --no-deps -T migrate \
    || die "the dump is loaded but its migration failed: web, worker and beat stay stopped (fix, then 'make up')"
  phases+=("migrations $((SECONDS - mark))s") && mark=$SECONDS

  forget_redis_state

  start_writers
  phases+=("writers healthy $((SECONDS - mark))s") && mark=$SECONDS

  articles="$(count_rows articles)"
  users="$(count_rows users)"
  if [ -z "$(docker compose ps -q --status running db-replica)" ]; then
    say "db-replica is not running: it will catch up by streaming replication when it starts"
  elif wait_for_replica 60; then
    say "db-replica has replayed the load ($(psql_on db-replica "SELECT count(*) FROM articles") articles there)"
  else
    say "warning: db-replica has not replayed the load within 60 s (web reads from the primary meanwhile)"
  fi
  phases+=("replica $((SECONDS - mark))s")
  local summary
  summary="$(printf '%s, ' "${phases[@]}")"
  say "loaded in ${SECONDS}s (${summary%, }): $articles articles, $users users"
}

case "${1:-}" in
  dump) dump ;;
  load) load "${2:-}" ;;
  *) usage ;;
esac
