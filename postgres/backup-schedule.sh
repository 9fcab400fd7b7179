#!/usr/bin/env bash
# Command of the `backup` service: pgBackRest backups of the primary on a schedule.
#
# Waits for the primary (through the Unix socket shared with `db`), creates the stanza
# (idempotent) and checks that WAL archiving works; takes a full backup at once when the
# repository has none (so a fresh `make up` has one within a minute or two); then, every
# minute, a full backup when the newest full one stopped BACKUP_FULL_EVERY_HOURS (168) ago,
# else a differential when the newest backup of any type stopped BACKUP_DIFF_EVERY_HOURS (24)
# ago. The times come from the repository (`pgbackrest info --output=json`), so restarting the
# service does not reset the schedule. pgBackRest expires old backups after each one
# (repo1-retention-full). One JSON line per backup: type, outcome, duration, sizes.
#
# Why a service and not a beat task: beat runs app code in the app image, while a backup needs
# the data directory, the primary's socket and pgBackRest, all of which live with PostgreSQL.
# Healthcheck: /tmp/backup-heartbeat, touched every few seconds, also during a backup.
set -euo pipefail

STANZA=newsdesk
HEARTBEAT=/tmp/backup-heartbeat
SOCKET_DIR=/var/run/postgresql
full_every=$(( ${BACKUP_FULL_EVERY_HOURS:-168} * 3600 ))
diff_every=$(( ${BACKUP_DIFF_EVERY_HOURS:-24} * 3600 ))
retry_after=${BACKUP_RETRY_SECONDS:-300}
pg_user="${PGBACKREST_PG1_USER:-postgres}"

log() { printf '{"time":"%s","service":"backup",%s}\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$1"; }
say() { log "\"message\":$(jq -Rn --arg m "$*" '$m')"; }
beat() { touch "$HEARTBEAT"; }

child=""
stop() {
  [ -z "$child" ] || kill -TERM "$child" 2>/dev/null || true
  exit 143
}
trap stop TERM INT

# run_beating COMMAND...: run it in the background and touch the heartbeat while it runs.
run_beating() {
  "$@" &
  child=$!
  while kill -0 "$child" 2>/dev/null; do beat; sleep 1; done
  local status=0
  wait "$child" || status=$?
  child=""
  return "$status"
}

info_json() { pgbackrest --stanza="$STANZA" --output=json info; }

# Epoch of the newest backup's stop time (of type $1, or any type with "any"); 0 if none.
newest_stop() {
  info_json | jq --arg type "$1" \
    '[.[0].backup[]? | select($type == "any" or .type == $type) | .timestamp.stop] | max // 0'
}

backup() {
  local type="$1" begun=$SECONDS status=0 label row
  say "starting a $type backup"
  run_beating pgbackrest --stanza="$STANZA" --type="$type" backup || status=$?
  if [ "$status" -ne 0 ]; then
    log "\"event\":\"backup\",\"type\":\"$type\",\"status\":\"failed\",\"exit_code\":$status,\"duration_s\":$((SECONDS - begun))"
    return "$status"
  fi
  row="$(info_json | jq -c '.[0] | (.backup | max_by(.timestamp.stop)) as $b
    | {label: $b.label, backup_type: $b.type, database_bytes: $b.info.size,
       stored_bytes: $b.info.repository.delta,
       repo_bytes: ([.backup[].info.repository.delta] | add)}')"
  log "\"event\":\"backup\",\"type\":\"$type\",\"status\":\"ok\",\"duration_s\":$((SECONDS - begun)),${row:1:-1}"
}

beat
say "waiting for the primary on $SOCKET_DIR"
until pg_isready -q -h "$SOCKET_DIR" -U "$pg_user"; do beat; sleep 2; done

# The stanza (repository layout bound to this cluster's system id) and a check that the
# primary's archive_command reaches the repository. Retried: the primary may still be starting.
until run_beating pgbackrest --stanza="$STANZA" stanza-create; do beat; sleep 10; done
until run_beating pgbackrest --stanza="$STANZA" check; do
  say "pgbackrest check failed; retrying in 30 s"
  for _ in 1 2 3 4 5 6; do beat; sleep 5; done
done

while true; do
  beat
  now=$(date +%s)
  last_full=$(newest_stop full) || last_full=0
  last_any=$(newest_stop any) || last_any=0
  type=""
  if [ "$last_full" -eq 0 ] || [ $((now - last_full)) -ge "$full_every" ]; then
    type=full
  elif [ $((now - last_any)) -ge "$diff_every" ]; then
    type=diff
  fi
  if [ -n "$type" ] && ! backup "$type"; then
    say "the $type backup failed; next attempt in ${retry_after} s"
    for ((i = 0; i < retry_after; i += 5)); do beat; sleep 5; done
    continue
  fi
  for _ in $(seq 12); do beat; sleep 5; done
done
