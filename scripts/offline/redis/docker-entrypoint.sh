#!/bin/sh
# docker-entrypoint.sh of newsdesk-local/redis:7.0-bookworm: the official redis
# image's entrypoint, plus one addition (see the Dockerfile header):
#   * first arg starting with `-` or ending in `.conf` -> `redis-server "$@"`
#   * `redis-server ...` as root -> chown /data (cwd) to redis, re-exec as redis
#   * `redis-server` without a config file -> `--protected-mode no` is put
#     before the caller's options (the official image instead compiles redis
#     with protected mode off by default; Debian's redis-server keeps it on).
#     Options given later, e.g. `--protected-mode yes`, still win.
set -e

# first arg is `-f` or `--some-option`
# or first arg is `something.conf`
if [ "${1#-}" != "$1" ] || [ "${1%.conf}" != "$1" ]; then
	set -- redis-server "$@"
fi

# allow the container to be started with `--user`
if [ "$1" = 'redis-server' ] && [ "$(id -u)" = '0' ]; then
	find . \! -user redis -exec chown redis '{}' +
	exec gosu redis "$0" "$@"
fi

if [ "$1" = 'redis-server' ]; then
	case "${2:-}" in
		# a config file (or config on stdin), or a mode that takes no options
		*.conf|-|-v|--version|-h|--help|--test-memory|--check-system|--sentinel) ;;
		*)
			shift
			set -- redis-server --protected-mode no "$@"
			;;
	esac
fi

# set an appropriate umask (if one isn't set already)
um="$(umask)"
if [ "$um" = '0022' ]; then
	umask 0077
fi

exec "$@"
