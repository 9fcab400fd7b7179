#!/usr/bin/env bash
# Create .env from .env.example on first use, replacing every `change-me` with its own
# random value, so a new deployment never runs with a shared default secret.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"

if [ ! -f "$ROOT/.env" ]; then
  say "creating .env with generated secrets"
  tmp="$(mktemp)"
  while IFS= read -r line || [ -n "$line" ]; do
    case "$line" in
      *=change-me) printf '%s=%s\n' "${line%%=*}" "$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')" ;;
      *) printf '%s\n' "$line" ;;
    esac
  done <"$ROOT/.env.example" >"$tmp"
  install -m 0600 "$tmp" "$ROOT/.env"
  rm -f "$tmp"
fi
