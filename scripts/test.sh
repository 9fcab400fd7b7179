#!/usr/bin/env bash
# `make test` and its parts, in a compose project of their own: project TEST_PROJECT
# (newsdesk-test), nginx on 127.0.0.1:TEST_HTTP_PORT (8180), its own containers, network and
# volumes. The user's stack (project newsdesk) and its data are never touched.
#
#   scripts/test.sh [unit] [rules] [integration] [e2e] [chaos] [backup] [monitoring]
#       the suites to run (default: all, in this order: chaos measures a deploy under load, so it
#       runs before the restores and the monitoring profile's nine extra containers). rules: promtool on monitoring/ (no stack);
#       backup: tests/e2e/backup (a point-in-time restore drill, make restore-drill, a dump and its load);
#       monitoring: the monitoring profile started on the test stack (Prometheus on
#       127.0.0.1:TEST_PROMETHEUS_PORT, 9190), then tests/e2e/monitoring; chaos: the short make chaos.
#   scripts/test.sh clean                        remove the test project (what KEEP=1 left running)
#   scripts/test.sh dev                          `make dev` and back (alone; not in the default list):
#       `make dev` in a throwaway copy of the tree, a changed template and view timed there
#       (tests/dev), then `make up` in the copy and production checked again.
#
# The test project is set up as `make up` sets up the user's (it runs `make up` in it) and is
# removed afterwards (containers, network, volumes), also when a suite fails or the run is
# interrupted, unless KEEP=1: then it stays up and the next run reuses it (faster). Every suite
# runs even if an earlier one failed; the end shows how long each stage took, and the total.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"
cd "$ROOT"

load_env
main_project="${COMPOSE_PROJECT_NAME:-newsdesk}"
export COMPOSE_PROJECT_NAME="${TEST_PROJECT:-newsdesk-test}"
export HTTP_PORT="${TEST_HTTP_PORT:-8180}"
export HTTPS_PORT="${TEST_HTTPS_PORT:-8543}"
export NEWSDESK_URL="http://127.0.0.1:$HTTP_PORT"
# The monitoring profile's published ports, apart from the user's (9090, 5555).
export PROMETHEUS_PORT="${TEST_PROMETHEUS_PORT:-9190}"
export FLOWER_PORT="${TEST_FLOWER_PORT:-5655}"
keep="${KEEP:-0}"
[ "$COMPOSE_PROJECT_NAME" != "$main_project" ] && [ "$COMPOSE_PROJECT_NAME" != newsdesk ] \
  || die "TEST_PROJECT=$COMPOSE_PROJECT_NAME is the user's project; the tests need one of their own"

remove_project() {
  docker compose --profile '*' down --volumes --remove-orphans --timeout 10
}

if [ "${1:-}" = clean ]; then
  say "removing compose project $COMPOSE_PROJECT_NAME (containers, network, volumes)"
  remove_project
  exit 0
fi
suites=("$@")
[ ${#suites[@]} -gt 0 ] || suites=(unit rules integration e2e chaos backup monitoring)
for suite in "${suites[@]}"; do
  case "$suite" in
    unit | rules | integration | e2e | backup | monitoring | chaos) ;;
    dev) [ ${#suites[@]} -eq 1 ] || die "the dev suite runs alone: scripts/test.sh dev" ;;
    *) die "unknown suite '$suite' (unit, rules, integration, e2e, backup, monitoring, chaos; dev alone)" ;;
  esac
done

started=$SECONDS
times=()          # one line per stage: name, outcome, duration
current=""        # the stage running now (reported as interrupted if the run stops in it)
current_since=0
failed=0
stack_started=0
stack_up=0

duration() { printf '%dm%02ds' $(($1 / 60)) $(($1 % 60)); }

record() {
  times+=("$(printf '  %-12s %-12s %8s' "$1" "$2" "$(duration "$3")")")
}

# stage NAME COMMAND...: run a step of the run, timed; its failure is recorded, not fatal.
stage() {
  local name="$1" begun=$SECONDS status=0
  shift
  current="$name" current_since=$SECONDS
  say "$name (project $COMPOSE_PROJECT_NAME)"
  "$@" || status=$?
  current=""
  if [ "$status" -eq 0 ]; then
    record "$name" passed $((SECONDS - begun))
  else
    record "$name" "failed ($status)" $((SECONDS - begun))
    failed=1
  fi
  return "$status"
}

skip() {
  record "$1" "skipped ($2)" 0
  failed=1
}

finish() {
  local status=$?
  trap '' INT TERM  # a second Ctrl-C must not leave the project half removed
  [ -z "$current" ] || record "$current" interrupted $((SECONDS - current_since))
  if [ "$failed" -ne 0 ] && [ "$stack_started" -eq 1 ]; then
    echo "--- service state and recent logs of project $COMPOSE_PROJECT_NAME:"
    docker compose ps -a || true
    docker compose logs --no-color --tail 40 || true
  fi
  if [ "$keep" = 1 ]; then
    say "keeping project $COMPOSE_PROJECT_NAME at $NEWSDESK_URL (KEEP=1); 'make test-clean' removes it"
  else
    say "removing project $COMPOSE_PROJECT_NAME (containers, network, volumes)"
    remove_project >/dev/null 2>&1 || remove_project || status=1
  fi
  say "test times (project $COMPOSE_PROJECT_NAME):"
  printf '%s\n' ${times[@]+"${times[@]}"}
  printf '  %-25s %8s\n' total "$(duration $((SECONDS - started)))"
  [ "$status" -ne 0 ] || status=$failed
  exit "$status"
}
trap finish EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

wants() { [[ " ${suites[*]} " == *" $1 "* ]]; }

images() {
  make --no-print-directory build && docker compose --profile test build test
}

# The stack as `make up` starts it (WEB=3, WORKERS=2, seeded), and the host's test tools.
stack() {
  make --no-print-directory up WEB=3 WORKERS=2 && scripts/venv.sh
}

in_image() {
  docker compose --profile test run --rm --no-deps test pytest -q -p no:cacheprovider "$@"
}

say "tests in compose project $COMPOSE_PROJECT_NAME, nginx on $NEWSDESK_URL (project $main_project is not touched)"
# promtool from the Prometheus image: the configuration, and the alert rules' unit tests.
promtool() {
  local image="${PROMETHEUS_IMAGE:-$(env_file_value "$ROOT/.env" PROMETHEUS_IMAGE)}"  # .env may be new
  docker run --rm -v "$ROOT/monitoring:/etc/prometheus:ro" --entrypoint /bin/promtool "$image" "$@"
}
rules() {
  promtool check config /etc/prometheus/prometheus.yml && promtool test rules /etc/prometheus/tests/alerts_test.yml
}

# The monitoring profile on the test stack, then the tests that need it.
monitoring() {
  scripts/monitoring.sh up && .venv/bin/pytest -q tests/e2e/monitoring
}

# `make dev` in a copy of the tree (so the edits the tests make never touch it), in the test
# project, then `make up` in the same copy: development mode, and the way back to production.
dev_mode() {
  local copy status=0
  copy="$(mktemp -d /tmp/newsdesk-dev-check.XXXXXX)"
  git ls-files -z --cached --others --exclude-standard | tar -c --null --ignore-failed-read -T - | tar -x -C "$copy"
  cp -p .env "$copy/.env"
  if scripts/venv.sh && (cd "$copy" && make --no-print-directory dev WEB=1 WORKERS=1); then
    # A failed development check still lets the way back to production be checked.
    DEV_MODE=development DEV_SOURCE="$copy" .venv/bin/pytest -q -p no:cacheprovider tests/dev || status=$?
    { (cd "$copy" && make --no-print-directory up WEB=1 WORKERS=1) \
      && DEV_MODE=production .venv/bin/pytest -q -p no:cacheprovider tests/dev; } || status=$?
  else
    status=1
  fi
  rm -rf "$copy"
  return "$status"
}
if wants dev; then
  stack_started=1
  stage dev dev_mode || true
  exit
fi

if wants unit || wants integration || wants rules; then
  stage images images || exit 1
fi
if wants unit; then
  stage unit in_image tests/unit || true
fi
if wants rules; then
  stage rules rules || true
fi
# The short chaos suite: a rolling deploy, a Redis restart and a primary stop under load, with
# the data checked after each (the promises CI guards; make chaos runs every fault).
chaos() {
  .venv/bin/python -m tools.chaos --attach --project "$COMPOSE_PROJECT_NAME" --port "$HTTP_PORT" \
    --https-port "$HTTPS_PORT" \
    --faults short --report reports/chaos/make-test.md
}

if wants integration || wants e2e || wants backup || wants monitoring || wants chaos; then
  stack_started=1
  if stage stack stack; then stack_up=1; fi
fi
for suite in integration e2e chaos backup monitoring; do
  wants "$suite" || continue
  if [ "$stack_up" -ne 1 ]; then
    skip "$suite" "no stack"
  elif [ "$suite" = integration ]; then
    stage integration in_image tests/integration || true
  elif [ "$suite" = e2e ]; then
    stage e2e .venv/bin/pytest -q tests/e2e --ignore=tests/e2e/monitoring --ignore=tests/e2e/backup || true
  elif [ "$suite" = backup ]; then
    stage backup .venv/bin/pytest -q tests/e2e/backup || true
  elif [ "$suite" = monitoring ]; then
    stage monitoring monitoring || true
  else
    stage chaos chaos || true
  fi
done
