#!/usr/bin/env bash
# After `make up`: tell the user where the stack answers.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"
load_env
port="${HTTP_PORT:-8080}"
say "Newsdesk is up: http://127.0.0.1:${port}/  ($(docker compose ps -q web | wc -l) web replicas; 'make ps' shows every service)"
