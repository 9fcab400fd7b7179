#!/usr/bin/env bash
# Create .env from .env.example on first use, replacing every `change-me` with its own
# random value, so a new deployment never runs with a shared default secret. On an existing
# .env, add the settings .env.example gained since (a pulled upgrade), secrets generated the
# same way; nothing already in .env is changed.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"

secret() { od -An -tx1 -N32 /dev/urandom | tr -d ' \n'; }

if [ ! -f "$ROOT/.env" ]; then
  say "creating .env with generated secrets"
  tmp="$(mktemp)"
  while IFS= read -r line || [ -n "$line" ]; do
    case "$line" in
      *=change-me) printf '%s=%s\n' "${line%%=*}" "$(secret)" ;;
      *) printf '%s\n' "$line" ;;
    esac
  done <"$ROOT/.env.example" >"$tmp"
  install -m 0600 "$tmp" "$ROOT/.env"
  rm -f "$tmp"
  exit 0
fi

added=()
while IFS= read -r line || [ -n "$line" ]; do
  case "$line" in
    [A-Z]*=*) ;;
    *) continue ;;
  esac
  name="${line%%=*}"
  grep -Eq "^[[:space:]]*(export[[:space:]]+)?${name}=" "$ROOT/.env" && continue
  case "$line" in
    *=change-me) line="$name=$(secret)" ;;
  esac
  [ ${#added[@]} -gt 0 ] || printf '\n# added from .env.example\n' >>"$ROOT/.env"
  printf '%s\n' "$line" >>"$ROOT/.env"
  added+=("$name")
done <"$ROOT/.env.example"
[ ${#added[@]} -eq 0 ] || say "added to .env from .env.example: ${added[*]}"
