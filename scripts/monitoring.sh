#!/usr/bin/env bash
# `make monitoring` / `make monitoring-down`: the compose profile `monitoring` (Prometheus,
# Alertmanager and its log receiver, postgres_exporter and redis_exporter for each server,
# Flower) beside a running stack, in the same project (COMPOSE_PROJECT_NAME, default newsdesk).
#
#   scripts/monitoring.sh up     start (or update) the profile and wait until it is healthy
#   scripts/monitoring.sh down   stop and remove its containers (Prometheus's data is kept)
#
# Only the profile's services are started (--no-deps): the stack's own services are never
# recreated or rescaled by it. The one-shot `migrate` runs again first (a no-op for the schema
# of the running image): it creates or updates the exporters' `monitor` role.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"
cd "$ROOT"
load_env

SERVICES=(migrate postgres-exporter postgres-exporter-replica redis-exporter cache-exporter
  alert-log alertmanager prometheus flower)

case "${1:-up}" in
  up)
    running="$(docker compose ps --status running -q db redis 2>/dev/null | wc -l)"
    [ "$running" -ge 2 ] || die "the stack is not running in project ${COMPOSE_PROJECT_NAME:-newsdesk}: 'make up' first"
    docker compose --profile monitoring up -d --no-deps --wait --wait-timeout "${WAIT_TIMEOUT:-180}" "${SERVICES[@]}"
    say "Prometheus: http://127.0.0.1:${PROMETHEUS_PORT:-9090}/  (targets: /targets, alerts: /alerts)"
    say "Flower:     http://127.0.0.1:${FLOWER_PORT:-5555}/  (user ${FLOWER_USER:-admin}, password FLOWER_PASSWORD in .env)"
    say "Graphs:     http://127.0.0.1:${HTTP_PORT:-8080}/ops  (as an admin); alerts go to ${ALERT_WEBHOOK_URL:-http://alert-log:9095/}"
    ;;
  down)
    docker compose --profile monitoring rm --stop --force "${SERVICES[@]}"
    ;;
  *) die "usage: $0 up|down" ;;
esac
