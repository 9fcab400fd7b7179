#!/usr/bin/env bash
# After `make up`: tell the user where the stack answers.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"
load_env
port="${HTTP_PORT:-8080}"
say "Newsdesk is up: http://127.0.0.1:${port}/  ($(docker compose ps -q web | wc -l) web replicas; 'make ps' shows every service)"
if [ -n "${TLS_CERT:-}" ]; then
  say "HTTPS: https://localhost:${HTTPS_PORT:-8443}/  (certificate: $TLS_CERT)"
else
  say "HTTPS: https://localhost:${HTTPS_PORT:-8443}/  (local CA: curl --cacert tls/ca.pem ...; README, \"HTTPS\", says how to trust it)"
fi
