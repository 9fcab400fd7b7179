# Shared helpers for the host-side scripts. Source it; do not run it.
# shellcheck shell=bash

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export ROOT

say() { printf '\033[1m==>\033[0m %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

is_root() { [ "$(id -u)" = 0 ]; }

apt_install() {
  is_root || die "need root to install $* (or install it yourself)"
  command -v apt-get >/dev/null || die "no apt-get: install $* yourself"
  if [ -z "${_APT_UPDATED:-}" ]; then
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    _APT_UPDATED=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# Load .env into the environment (compose reads it too; the scripts need the image names).
# A variable already in the environment wins over .env, as it does for compose.
load_env() {
  [ -f "$ROOT/.env" ] || return 0
  local name pair given=()
  for name in $(compgen -e); do
    [ -z "${!name+set}" ] || given+=("$name=${!name}")
  done
  set -a
  # shellcheck disable=SC1091
  . "$ROOT/.env"
  set +a
  for pair in ${given[@]+"${given[@]}"}; do
    name="${pair%%=*}"
    [ "${!name}" = "${pair#*=}" ] || export "$pair"
  done
}

# The value of variable $2 in the .env-style file $1 (read as load_env reads .env).
env_file_value() {
  # shellcheck disable=SC1090
  (. "$1" && printf '%s' "${!2:-}")
}

# After the database was replaced (a restore, a loaded dump): empty both Redis servers of the
# project. `cache` holds pages of the old data; `redis` holds sessions that name users by id
# (ids may be handed out again), queued tasks and unsent view counts that name rows, and
# read-your-writes positions in the old WAL. Everything in them rebuilds itself; users log in again.
forget_redis_state() {
  say "emptying the page cache and the sessions, queues and marks in redis (they describe the old data)"
  docker compose exec -T cache redis-cli FLUSHALL >/dev/null
  docker compose exec -T redis redis-cli FLUSHALL >/dev/null
}
