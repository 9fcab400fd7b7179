#!/bin/sh
# Start redis-server with ACL users whose passwords come from the environment or from files
# (Docker secrets), so that no password appears on a command line (`ps`, `docker inspect`).
#
#   REDIS_ACL_USERS="default=REDIS_PASSWORD app=REDIS_APP_PASSWORD broker=REDIS_BROKER_PASSWORD"
#   sh /usr/local/etc/redis/start.sh redis-server --appendonly yes ...
#
# Each `user=VARIABLE` pair creates that user with the password in $VARIABLE, or in the file
# named by ${VARIABLE}_FILE. `default` may run every command (healthchecks, exporters, the
# operator's redis-cli, which authenticates through REDISCLI_AUTH); every other user may use
# every key and channel but no administrative or dangerous command (CONFIG, FLUSHALL, KEYS,
# SHUTDOWN, DEBUG, MONITOR, ...), except INFO. The ACL file lives on a tmpfs (/run/redis), readable
# by the redis user alone. A user whose password is empty is refused: no open server by mistake.
set -eu

acl_dir=/run/redis
acl_file="$acl_dir/users.acl"
umask 077
: > "$acl_file"
has_default=0
for pair in ${REDIS_ACL_USERS:?REDIS_ACL_USERS must list user=PASSWORD_VARIABLE pairs}; do
  user="${pair%%=*}"
  variable="${pair#*=}"
  file_variable="${variable}_FILE"
  eval "file=\${$file_variable:-}"
  if [ -n "$file" ]; then
    password="$(cat "$file")"
  else
    eval "password=\${$variable:-}"
  fi
  [ -n "$password" ] || { echo "redis: $variable (or $file_variable) is empty; refusing to start without a password for user $user" >&2; exit 1; }
  case "$password" in
    *[[:space:]]*) echo "redis: the password of user $user contains white space" >&2; exit 1 ;;
  esac
  if [ "$user" = default ]; then
    has_default=1
    rules='~* &* +@all'
  else
    rules='~* &* +@all -@dangerous +info'
  fi
  printf 'user %s on >%s %s\n' "$user" "$password" "$rules" >> "$acl_file"
done
# Without a line for it, the default user would stay open (nopass): switch it off instead.
[ "$has_default" = 1 ] || echo 'user default off' >> "$acl_file"
exec "$@" --aclfile "$acl_file"
