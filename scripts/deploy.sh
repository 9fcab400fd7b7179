#!/usr/bin/env bash
# `make deploy`: put the image `make build` just built into service, without a failed request.
#
#   scripts/deploy.sh               migrate, then replace web, worker and beat
#   scripts/deploy.sh --if-changed  the same, only if web is running and an app container is out
#                                   of date (another image, or another compose configuration):
#                                   what `make up` runs first, so that on a running stack new code
#                                   rolls out this way instead of every container being recreated
#
# The pattern is wowu/docker-rollout's (scale to twice the replicas with --no-recreate, wait
# until the new ones are healthy, stop the old ones), plus what nginx needs:
#   1. `flask db upgrade` in a one-off container of the new image. Migrations must be backward
#      compatible with the code still running (expand now, contract in a later deploy: see the
#      README); if one fails the deploy stops here and nothing was replaced.
#   2. web: nginx's upstream is pinned to the running replicas (nginx re-resolves `web` every
#      5 s and would otherwise send requests to a replica still booting); as many new replicas
#      start beside them; when all are healthy the upstream becomes the new ones, and nginx
#      reloads (gracefully: its old workers finish their requests and close their keepalive
#      connections, so no request, POST included, meets a closing connection). Once those old
#      workers have exited, the old replicas are stopped one by one (SIGTERM: gunicorn finishes
#      what it has) and removed, and the upstream goes back to `server web:8000 resolve`.
#   3. worker: as many new workers start; when they are healthy the old ones get a warm
#      shutdown one by one (running tasks finish; unfinished ones go back to the queue).
#   4. beat: stopped, then started from the new image: never two beats (a skipped tick is harmless).
# New replicas that do not become healthy within DEPLOY_TIMEOUT (180 s) are removed, with their
# logs, and the old ones keep serving: the deploy fails loudly and changes nothing. The replica
# counts are the ones running before the deploy. Ctrl-C or a failure in between leaves nginx
# on `server web:8000 resolve` again.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"
cd "$ROOT"
load_env

timeout="${DEPLOY_TIMEOUT:-180}"
project="${COMPOSE_PROJECT_NAME:-newsdesk}"
if_changed=0
case "${1:-}" in
  "") ;;
  --if-changed) if_changed=1 ;;
  *) die "usage: scripts/deploy.sh [--if-changed]" ;;
esac

running() { docker compose ps -q --status running "$1"; }

if [ -z "$(running web)" ]; then
  [ "$if_changed" = 0 ] || exit 0 # make up: nothing runs yet, compose starts it all
  die "web is not running in project $project: 'make up' starts the stack"
fi

# An app container is out of date when it runs another image than the one just built, or when
# compose would recreate it for another reason (its configuration: asked of compose in a dry run,
# which does not compare images).
out_of_date() {
  local image id
  image="$(docker image inspect -f '{{.Id}}' "${APP_IMAGE:-newsdesk-app:latest}")"
  for id in $(running web) $(running worker) $(running beat); do
    [ "$(docker inspect -f '{{.Image}}' "$id")" = "$image" ] || return 0
  done
  docker compose --dry-run up -d --no-deps web worker beat 2>&1 | grep -q Recreate
}
if [ "$if_changed" = 1 ] && ! out_of_date; then
  say "web, worker and beat run the current image and configuration: nothing to deploy"
  exit 0
fi

exec 9>"/tmp/newsdesk-deploy-$project.lock"
flock -n 9 || die "another deploy of project $project is running"

# wait_until SECONDS COMMAND...: poll COMMAND once a second until it succeeds or time is up.
wait_until() {
  local deadline=$((SECONDS + $1))
  shift
  until "$@"; do
    [ "$SECONDS" -lt "$deadline" ] || return 1
    sleep 1
  done
}

# --- nginx's upstream --------------------------------------------------------------------------
nginx_id() { running nginx | head -n 1; }

# The workers of nginx's previous configuration have exited (their requests are done and their
# keepalive connections to the replicas closed). The pattern does not match its own command line.
nginx_settled() {
  ! docker exec "$1" sh -c 'grep -qs "shutting[ ]down" /proc/[0-9]*/cmdline'
}

# set_upstream TEXT: the servers of the `web` upstream, applied by a graceful reload.
set_upstream() {
  local id
  id="$(nginx_id)"
  [ -n "$id" ] || return 0 # no nginx running: nothing routes to the replicas
  printf '%s\n' "$1" | docker exec -i "$id" sh -c \
    'cat > /etc/nginx/runtime/web.conf && nginx -t -q && nginx -s reload'
  wait_until 45 nginx_settled "$id" || die "nginx's old workers did not exit within 45 s"
}

# pin ID...: upstream lines for exactly these containers.
pin() {
  local id address
  for id; do
    address="$(docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}' "$id" | awk '{print $1}')"
    [ -n "$address" ] || die "container ${id:0:12} has no address"
    printf 'server %s:8000 max_fails=1 fail_timeout=5s;\n' "$address"
  done
}

pinned=0
unpin() {
  [ "$pinned" = 1 ] || return 0
  say "nginx: upstream back to every replica of web (server web:8000 resolve)"
  set_upstream "$(cat nginx/web-upstream.conf)"
  pinned=0
}

new_ids=()
replaced=0
cleanup() {
  local status=$?
  trap '' INT TERM
  if [ "$status" -ne 0 ] && [ "$replaced" = 0 ] && [ ${#new_ids[@]} -gt 0 ]; then
    say "removing the new containers; the old ones keep serving"
    docker rm -f "${new_ids[@]}" >/dev/null 2>&1 || true
  fi
  unpin || status=1
  [ "$status" -eq 0 ] || printf 'error: the deploy of project %s failed (exit %s); see above\n' "$project" "$status" >&2
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- replacing a service's containers --------------------------------------------------------
# healthy ID...: every one of them is healthy; a container that exited or turned unhealthy fails the deploy.
healthy() {
  local id state
  for id; do
    state="$(docker inspect -f '{{.State.Status}}/{{if .State.Health}}{{.State.Health.Status}}{{end}}' "$id")"
    case "$state" in
      running/healthy) ;;
      running/starting) return 1 ;;
      *)
        docker logs --tail 60 "$id" >&2 || true
        die "new container ${id:0:12} is $state"
        ;;
    esac
  done
}

roll() {
  local service="$1" old=() id count
  docker compose rm -f "$service" >/dev/null 2>&1 # stopped containers would be counted (and started) by --scale
  mapfile -t old < <(running "$service")
  count=${#old[@]}
  [ "$count" -gt 0 ] || die "$service is not running"
  if [ "$service" = web ]; then
    set_upstream "$(pin "${old[@]}")" # new replicas get no request until they are healthy and switched in
    pinned=1
  fi
  say "$service: starting $count new container(s) beside the $count running"
  replaced=0
  docker compose up -d --no-deps --no-recreate --scale "$service=$((count * 2))" "$service"
  new_ids=()
  for id in $(running "$service"); do
    [[ " ${old[*]} " == *" $id "* ]] || new_ids+=("$id")
  done
  [ ${#new_ids[@]} -eq "$count" ] || die "$service: expected $count new containers, found ${#new_ids[@]}"
  say "$service: waiting for the new containers to be healthy (at most ${timeout}s)"
  if ! wait_until "$timeout" healthy "${new_ids[@]}"; then
    for id in "${new_ids[@]}"; do docker logs --tail 60 "$id" >&2 || true; done
    die "$service: the new containers were not healthy within ${timeout}s"
  fi
  if [ "$service" = web ]; then
    say "nginx: routing to the new replicas only (graceful reload)"
    set_upstream "$(pin "${new_ids[@]}")"
  fi
  replaced=1
  for id in "${old[@]}"; do
    say "$service: stopping ${id:0:12} (graceful)"
    docker stop "$id" >/dev/null # its stop_grace_period: gunicorn drains, Celery shuts down warm
    docker rm "$id" >/dev/null
  done
  new_ids=()
  [ "$service" != web ] || unpin
}

started=$SECONDS
say "deploying ${APP_IMAGE:-newsdesk-app:latest} to project $project"
# What the app services need that is not running yet (a service an upgrade added, such as
# PgBouncer): started first, and waited for. Running ones are left as they are (--no-recreate);
# the `up` of `make up` that follows applies their new configuration.
needed="$(docker compose config --format json | python3 -c '
import json, sys
services = json.load(sys.stdin)["services"]
print(" ".join(sorted({dep for name in ("web", "worker", "beat") for dep in services[name].get("depends_on", {}) if dep != "migrate"})))
')"
if [ -n "$needed" ]; then
  # shellcheck disable=SC2086 # a list of service names
  docker compose up -d --wait --no-recreate $needed || die "the services the app needs ($needed) did not start"
fi
say "migrate: flask db upgrade (the running code must work with the new schema)"
docker compose run --rm --no-deps -T migrate || die "the migration failed: nothing was replaced"
roll web
roll worker
say "beat: stop, then start from the new image (never two)"
docker compose stop beat
docker compose up -d --no-deps --force-recreate beat
say "deployed in $((SECONDS - started))s: $(running web | wc -l) web, $(running worker | wc -l) worker(s), $(running beat | wc -l) beat"
