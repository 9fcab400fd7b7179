#!/usr/bin/env bash
# `make loadtest`: Locust (loadtest/locustfile.py) headless against the running stack, through
# nginx on the stack's network, with an HTML report and CSV stats.
#
#   make loadtest [USERS=50] [SPAWN_RATE=10] [DURATION=60s] [LOCUST_WORKERS=0]
#                 [MAX_P95_MS=500] [MAX_FAILURE_RATIO=0.01]
#
# LOCUST_WORKERS=0 runs every simulated user in one Locust process (plenty for a few hundred
# users on two cores); N > 0 runs a master and N `locust-worker` containers.
# Writes reports/loadtest/<UTC time>/ (report.html, stats.json, stats_*.csv, summary.txt), prints the
# summary, and exits non-zero when more than MAX_FAILURE_RATIO of the requests failed or the
# aggregated 95th percentile is over MAX_P95_MS. The stack must be up (`make up`).
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"
load_env  # the environment wins over .env, as it does for compose
port="${HTTP_PORT:-8080}"
cd "$ROOT"

users="${USERS:-50}"
spawn_rate="${SPAWN_RATE:-10}"
duration="${DURATION:-60s}"
workers="${LOCUST_WORKERS:-0}"
max_p95="${MAX_P95_MS:-500}"
max_failure_ratio="${MAX_FAILURE_RATIO:-0.01}"
compose=(docker compose --profile loadtest)

[[ "$users" =~ ^[0-9]+$ && "$users" -ge 1 ]] || die "USERS must be a positive number, got '$users'"
[[ "$workers" =~ ^[0-9]+$ ]] || die "LOCUST_WORKERS must be a number, got '$workers'"

python="$ROOT/.venv/bin/python"
"$python" - "$port" <<'EOF' || die "the stack does not answer on 127.0.0.1:$port; run 'make up' first"
import sys, urllib.request
urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/healthz", timeout=5)
EOF

say "building the Locust image (cached when up to date)"
"${compose[@]}" build --quiet locust-master

out="reports/loadtest/$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$out"
locust_args=(
  locust -f loadtest/locustfile.py --headless --host http://nginx:8080
  --users "$users" --spawn-rate "$spawn_rate" --run-time "$duration" --stop-timeout 10
  --csv /out/stats --json-file /out/stats --html /out/report.html --only-summary --exit-code-on-error 0
)
run_master=("${compose[@]}" run --rm --no-deps --user "$(id -u):$(id -g)" -v "$ROOT/$out:/out")

# shellcheck disable=SC2317  # called by the EXIT trap
stop_workers() { "${compose[@]}" rm --stop --force locust-worker >/dev/null 2>&1 || true; }
say "Locust: $users users (spawn rate $spawn_rate/s) for $duration$([ "$workers" -gt 0 ] && echo ", $workers workers")"
if [ "$workers" -gt 0 ]; then
  trap stop_workers EXIT
  # The master gets the service's name on the network (--use-aliases) so the workers find it.
  "${run_master[@]}" --use-aliases locust-master "${locust_args[@]}" --master --expect-workers "$workers" &
  master=$!
  sleep 3
  "${compose[@]}" up -d --no-deps --no-recreate --scale "locust-worker=$workers" locust-worker >/dev/null
  wait "$master"
else
  "${run_master[@]}" locust-master "${locust_args[@]}"
fi

echo
"$python" loadtest/summary.py "$out" --max-failure-ratio "$max_failure_ratio" --max-p95-ms "$max_p95" && status=0 || status=$?
say "report: $out/report.html (stats: $out/stats.json, $out/stats_*.csv)"
exit "$status"
