#!/usr/bin/env bash
# A project-local virtualenv (.venv) with the host-side test and lint tools.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"

venv="$ROOT/.venv"
stamp="$venv/.requirements-dev.txt"
if [ ! -x "$venv/bin/python" ]; then
  if ! python3 -m venv --help >/dev/null 2>&1 || ! python3 -c 'import ensurepip' 2>/dev/null; then
    apt_install python3-venv
  fi
  say "creating .venv"
  python3 -m venv "$venv"
fi
if ! cmp -s "$ROOT/requirements-dev.txt" "$stamp"; then
  say "installing test tools into .venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$ROOT/requirements-dev.txt"
  cp "$ROOT/requirements-dev.txt" "$stamp"
fi
