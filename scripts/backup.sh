#!/usr/bin/env bash
# Backups and point-in-time recovery of the stack's PostgreSQL with pgBackRest (the `backup`
# service and the pgbackrest-repo volume; postgres/pgbackrest.conf), in the compose project
# COMPOSE_PROJECT_NAME (default newsdesk). Called by the Makefile:
#
#   scripts/backup.sh backup [full|diff|incr]   a backup now (default incr; full when none exists)
#   scripts/backup.sh list                      backups, repository size, recoverable time range
#   scripts/backup.sh restore [TIME]            the primary back to the latest state, or to TIME
#                                               ('2026-11-22 10:15:00+00'); asks unless YES=1
#   scripts/backup.sh drill                     restore the latest state into a scratch container
#                                               and compare row counts with the live primary
#
# restore stops the writers (web, worker, beat) and backup, then db and db-replica; restores the
# data volume in place (pgbackrest --delta restore, in a one-shot container of the db image);
# starts db and waits until it has left recovery; recreates the replication slot (pgBackRest
# does not restore pg_replslot); re-seeds db-replica from the new primary (its volume emptied,
# its entrypoint clones the primary); empties both Redis servers (`cache`: pages of the old data;
# `redis`: sessions, queued tasks and marks that name rows of the lost history); and starts
# everything again (migrations first). The replica and the writers are down meanwhile; users
# are logged out.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"
cd "$ROOT"
load_env

STANZA=newsdesk
PG_USER="${POSTGRES_USER:-newsdesk}"
PG_DB="${POSTGRES_DB:-newsdesk}"
SLOT="${REPLICATION_SLOT:-replica_1}"
WAIT_TIMEOUT="${WAIT_TIMEOUT:-300}"
PROJECT="${COMPOSE_PROJECT_NAME:-newsdesk}"

running() { [ -n "$(docker compose ps --status running -q "$1" 2>/dev/null)" ]; }

# pgbackrest ARGS...: in the running backup service, else in a one-shot container of it.
pgbackrest() {
  if running backup; then
    docker compose exec -T backup pgbackrest --stanza="$STANZA" "$@"
  else
    docker compose run --rm --no-deps -T --entrypoint pgbackrest backup --stanza="$STANZA" "$@"
  fi
}

psql_db() {
  docker compose exec -T db psql -v ON_ERROR_STOP=1 -qtAX -U "$PG_USER" -d "$PG_DB" "$@"
}

# The name compose gives volume $1 of this project (PROJECT_name unless the file names it).
volume_name() {
  docker compose config --format json | python3 -c 'import json, sys; print(json.load(sys.stdin)["volumes"][sys.argv[1]]["name"])' "$1"
}

# Switch to a new WAL segment and wait until the one holding everything so far is archived.
archive_now() {
  local segment archived deadline=$((SECONDS + 120))
  segment="$(psql_db -c 'SELECT pg_walfile_name(pg_switch_wal())')"
  # Names sort in WAL order (timeline first); a .history file name sorts before its segments.
  until archived="$(psql_db -c "SELECT coalesce(last_archived_wal, '') FROM pg_stat_archiver")" \
    && [[ "$archived" > "$segment" || "$archived" == "$segment" ]]; do
    [ $SECONDS -lt $deadline ] || die "WAL segment $segment was not archived within 120 s (docker compose logs db)"
    sleep 1
  done
}

# Exact row counts of every table in schema public, one "table|count" line each (stdin: psql).
COUNT_SQL="SELECT format('SELECT %L, count(*) FROM public.%I', tablename, tablename)
  FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename \\gexec"

cmd_backup() {
  local type="${1:-incr}"
  case "$type" in full | diff | incr) ;; *) die "TYPE must be full, diff or incr (not '$type')" ;; esac
  running backup || die "the backup service is not running in project $PROJECT: 'make up' first"
  say "$type backup of project $PROJECT (pgBackRest makes it full when none exists)"
  local started=$SECONDS
  pgbackrest --type="$type" backup
  say "backup done in $((SECONDS - started)) s"
  cmd_list
}

cmd_list() {
  local archived=""
  if running db; then
    archived="$(psql_db -c "SELECT coalesce(to_char(last_archived_time AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS+00'), '') FROM pg_stat_archiver")" || archived=""
  fi
  python3 - "$(pgbackrest --output=json info)" "$archived" <<'PY'
import json, sys
from datetime import datetime, timezone

def when(epoch):
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%d %H:%M:%S+00")

def size(n):
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024

stanza = json.loads(sys.argv[1])[0]
backups = stanza.get("backup", [])
print(f"stanza {stanza['name']}: {stanza['status']['message']}")
if not backups:
    print("no backups yet")
    sys.exit(0)
row = "{:<34} {:<5} {:<22} {:<22} {:>10} {:>10}"
print(row.format("label", "type", "start", "stop", "database", "stored"))
for b in backups:
    print(row.format(b["label"], b["type"], when(b["timestamp"]["start"]), when(b["timestamp"]["stop"]),
                     size(b["info"]["size"]), size(b["info"]["repository"]["delta"])))
stored = sum(b["info"]["repository"]["delta"] for b in backups)
archive = [a for a in stanza.get("archive", []) if a.get("max")]
print(f"backups stored: {size(stored)} in {len(backups)} backup(s)")
if archive:
    print(f"archived WAL: {archive[-1]['min']} .. {archive[-1]['max']}")
newest = sys.argv[2] or "now (the primary is not running: its last archived WAL)"
print(f"recoverable: {when(backups[0]['timestamp']['stop'])} .. {newest}"
      " (and up to archive_timeout later: the WAL not yet archived)")
PY
  if running backup; then
    say "repository size on disk: $(docker compose exec -T backup du -sh /var/lib/pgbackrest | cut -f1)"
  fi
}

confirm() {
  [ "${YES:-0}" = 1 ] && return 0
  [ -t 0 ] || die "$1; not confirmed (run with YES=1 to skip the question)"
  local answer
  read -r -p "$1. Type 'yes' to go on: " answer
  [ "$answer" = yes ] || die "not confirmed"
}

# Refuse a target before the oldest backup's end or in the future (checked before anything stops).
check_target() {
  local target_epoch oldest
  target_epoch="$(date -d "$1" +%s)" || die "TARGET_TIME '$1' is not a time (e.g. '2026-11-22 10:15:00+00')"
  [ "$target_epoch" -le "$(date +%s)" ] || die "TARGET_TIME '$1' is in the future"
  oldest="$(pgbackrest --output=json info | python3 -c '
import json, sys
print(min((b["timestamp"]["stop"] for b in json.load(sys.stdin)[0].get("backup", [])), default=0))')"
  [ "$oldest" -gt 0 ] || die "the repository has no backup to restore"
  [ "$target_epoch" -ge "$oldest" ] \
    || die "TARGET_TIME '$1' is before the oldest backup ended ($(date -u -d "@$oldest" '+%F %T+00')): 'make backups'"
}

cmd_restore() {
  local target="${1:-}" started=$SECONDS webs workers replica_volume options=(--type=default)
  if [ -n "$target" ]; then
    check_target "$target"
    options=(--type=time "--target=$target" --target-action=promote)
  else
    pgbackrest --output=json info | grep -q '"label"' || die "the repository has no backup to restore"
  fi
  confirm "restore project $PROJECT's database to ${target:-the latest archived state}: writes after that are lost, the site is down meanwhile"
  webs="$(docker compose ps --status running -q web | wc -l)"
  workers="$(docker compose ps --status running -q worker | wc -l)"

  say "stopping the writers (web, worker, beat) and backup"
  docker compose stop web worker beat backup
  if running db && [ "$(psql_db -c 'SELECT pg_is_in_recovery()')" = f ]; then
    say "archiving the last WAL segment (nothing written before this point is lost)"
    archive_now || say "could not archive the last WAL segment; going on with what the repository has"
  fi
  say "stopping db-replica and db"
  docker compose stop db-replica db

  say "restoring the data volume: pgbackrest --delta restore ${options[*]}"
  docker compose run --rm --no-deps -T --user postgres --entrypoint pgbackrest db \
    --stanza="$STANZA" --delta "${options[@]}" restore

  say "starting db; waiting until it has replayed the WAL and left recovery"
  docker compose up -d --no-deps --wait --wait-timeout "$WAIT_TIMEOUT" db
  local deadline=$((SECONDS + WAIT_TIMEOUT))
  until [ "$(psql_db -c 'SELECT pg_is_in_recovery()' 2>/dev/null)" = f ]; do
    [ $SECONDS -lt $deadline ] || die "db is still in recovery after ${WAIT_TIMEOUT} s (docker compose logs db)"
    sleep 1
  done
  psql_db -v slot="$SLOT" >/dev/null <<'SQL'
SELECT pg_create_physical_replication_slot(:'slot') WHERE NOT EXISTS (
  SELECT 1 FROM pg_replication_slots WHERE slot_name = :'slot');
SQL
  # pgBackRest wrote the recovery settings into postgresql.auto.conf, which pg_basebackup copies:
  # a replica cloned with recovery_target_time would promote itself at the first newer commit.
  psql_db >/dev/null <<'SQL'
ALTER SYSTEM RESET restore_command;
ALTER SYSTEM RESET recovery_target_time;
ALTER SYSTEM RESET recovery_target;
ALTER SYSTEM RESET recovery_target_action;
ALTER SYSTEM RESET recovery_target_timeline;
SELECT pg_reload_conf();
SQL

  say "re-seeding db-replica from the restored primary"
  replica_volume="$(volume_name db-replica-data)"
  docker compose rm --stop --force db-replica
  docker volume rm "$replica_volume" >/dev/null
  docker compose up -d --no-deps --wait --wait-timeout "$WAIT_TIMEOUT" db-replica

  forget_redis_state

  say "starting the writers and backup again (migrations first)"
  local scale=()
  [ "$webs" -eq 0 ] || scale+=(--scale "web=$webs")
  [ "$workers" -eq 0 ] || scale+=(--scale "worker=$workers")
  docker compose up -d --no-recreate --wait --wait-timeout "$WAIT_TIMEOUT" ${scale[@]+"${scale[@]}"} \
    web worker beat backup nginx
  say "restored to ${target:-the latest state} in $((SECONDS - started)) s; the primary is on a new timeline:"
  say "take a backup now ('make backup'), so the next restore need not replay everything since the last one"
}

cmd_drill() {
  local image="${DB_IMAGE:-newsdesk-db:latest}" repo point started=$SECONDS
  # Globals: the EXIT trap removes them after this function has returned.
  name="${PROJECT}-restore-drill-$$" volume="${PROJECT}_restore-drill-$$"
  running db || die "db is not running in project $PROJECT: 'make up' first"
  repo="$(volume_name pgbackrest-repo)"
  pgbackrest --output=json info | grep -q '"label"' || die "the repository has no backup to restore"

  cleanup() {
    local status=$?
    trap '' INT TERM
    docker rm -f "$name" >/dev/null 2>&1 || true
    docker volume rm "$volume" >/dev/null 2>&1 || true
    exit "$status"
  }
  trap cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM

  point="drill-$(date -u +%Y%m%dT%H%M%SZ)-$$"
  say "counting rows on the primary, then a restore point ($point), archived"
  local before after restored
  before="$(psql_db <<<"$COUNT_SQL")"
  psql_db -c "SELECT pg_create_restore_point('$point')" >/dev/null
  archive_now
  after="$(psql_db <<<"$COUNT_SQL")"

  say "restoring into the scratch volume $volume (repository read-only, no network)"
  local mounts=(-v "$volume:/var/lib/postgresql/data" -v "$repo:/var/lib/pgbackrest:ro"
    -v "$ROOT/postgres/pgbackrest.conf:/etc/pgbackrest/pgbackrest.conf:ro")
  docker volume create "$volume" >/dev/null
  # --archive-mode=off: the copy must never push WAL into the live repository.
  docker run --rm --network none --user postgres "${mounts[@]}" "$image" \
    pgbackrest --stanza="$STANZA" --type=name "--target=$point" --target-action=promote \
    --archive-mode=off restore >&2
  # The primary's settings that a server in recovery must match or exceed.
  docker run -d --name "$name" --network none --shm-size 256m "${mounts[@]}" "$image" \
    postgres -c max_connections=300 -c max_wal_senders=10 -c max_replication_slots=10 \
    -c shared_buffers=128MB >/dev/null
  local deadline=$((SECONDS + WAIT_TIMEOUT))
  until [ "$(docker exec "$name" psql -qtAX -U "$PG_USER" -d "$PG_DB" -c 'SELECT pg_is_in_recovery()' 2>/dev/null)" = f ]; do
    [ $SECONDS -lt $deadline ] || { docker logs --tail 30 "$name" >&2; die "the restored copy did not start within ${WAIT_TIMEOUT} s"; }
    sleep 1
  done
  restored="$(docker exec -i "$name" psql -v ON_ERROR_STOP=1 -qtAX -U "$PG_USER" -d "$PG_DB" <<<"$COUNT_SQL")"

  # The comparison on stdout (everything else goes to stderr).
  python3 - "$before" "$after" "$restored" <<'PY'
import sys

def counts(text):
    return {t: int(n) for t, n in (line.split("|") for line in text.splitlines() if line)}

before, after, restored = (counts(text) for text in sys.argv[1:4])
bad = 0
print(f"{'table':<32} {'restored':>12} {'primary':>12}  result")
for table in sorted(set(after) | set(restored)):
    got, live = restored.get(table), after.get(table)
    if before.get(table) != live:
        result = "changed on the primary during the drill"
    elif got == live:
        result = "ok"
    else:
        result = "DIFFERS"
        bad += 1
    print(f"{table:<32} {got if got is not None else '-':>12} {live if live is not None else '-':>12}  {result}")
sys.exit(1 if bad else 0)
PY
  say "restore drill passed in $((SECONDS - started)) s: the latest backup and the archived WAL restore to a working copy"
}

case "${1:-}" in
  backup) cmd_backup "${2:-${TYPE:-incr}}" ;;
  list) cmd_list ;;
  restore) cmd_restore "${2:-${TARGET_TIME:-}}" ;;
  drill) cmd_drill ;;
  *) die "usage: $0 backup [full|diff|incr] | list | restore [TIME] | drill" ;;
esac
