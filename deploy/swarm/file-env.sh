#!/bin/sh
# Exports each variable named in FILE_ENV from the file its NAME_FILE names (a Docker secret),
# then runs the command: for the scripts that read a password only from the environment
# (postgres/primary/10-replication.sh and postgres/replica/entrypoint.sh read
# REPLICATION_PASSWORD). The value then lives in those processes' environment (readable by their
# own user through /proc), never in `docker inspect`.
#
#   FILE_ENV="REPLICATION_PASSWORD" REPLICATION_PASSWORD_FILE=/run/secrets/x sh file-env.sh CMD...
set -eu
for name in ${FILE_ENV:-}; do
  eval "file=\${${name}_FILE:-}"
  [ -n "$file" ] || { echo "file-env: ${name}_FILE is not set" >&2; exit 1; }
  value="$(cat "$file")"
  [ -n "$value" ] || { echo "file-env: $file is empty" >&2; exit 1; }
  export "$name=$value"
  unset "${name}_FILE"
done
exec "$@"
