#!/bin/sh
# /entrypoint.sh of newsdesk-local/pgbouncer:1.18-bookworm (see its Dockerfile): add the
# DB_USER/DB_PASSWORD credentials to the auth file, write /etc/pgbouncer/pgbouncer.ini from
# the environment unless one is mounted, then exec the command (pgbouncer).
set -eu

CONFIG_DIR=/etc/pgbouncer
CONFIG="$CONFIG_DIR/pgbouncer.ini"

# DATABASE_URL=postgres[ql]://user[:password]@host[:port][/dbname] sets the DB_* variables.
if [ -n "${DATABASE_URL:-}" ]; then
    rest="${DATABASE_URL#*://}"
    case "$rest" in
        *@*) userinfo="${rest%@*}"; rest="${rest##*@}" ;;
        *) userinfo="" ;;
    esac
    if [ -n "$userinfo" ]; then
        DB_USER="${userinfo%%:*}"
        case "$userinfo" in *:*) DB_PASSWORD="${userinfo#*:}" ;; esac
    fi
    hostport="${rest%%/*}"
    case "$rest" in */*) DB_NAME="${rest#*/}" ;; esac
    DB_HOST="${hostport%%:*}"
    case "$hostport" in *:*) DB_PORT="${hostport#*:}" ;; esac
fi

AUTH_FILE="${AUTH_FILE:-$CONFIG_DIR/userlist.txt}"
AUTH_TYPE="${AUTH_TYPE:-md5}"
[ -e "$AUTH_FILE" ] || : > "$AUTH_FILE"

# Credentials for DB_USER, once (a mounted auth file may already name the user).
if [ -n "${DB_USER:-}" ] && [ -n "${DB_PASSWORD:-}" ] && ! grep -q "^\"$DB_USER\"" "$AUTH_FILE"; then
    case "$AUTH_TYPE" in
        plain | scram-sha-256) secret="$DB_PASSWORD" ;;
        *) secret="md5$(printf '%s%s' "$DB_PASSWORD" "$DB_USER" | md5sum | cut -d' ' -f1)" ;;
    esac
    printf '"%s" "%s"\n' "$DB_USER" "$secret" >> "$AUTH_FILE"
    echo "entrypoint: added $DB_USER to $AUTH_FILE"
fi

# One pgbouncer.ini setting per variable of the same name in upper case, when set.
SETTINGS="auth_hba_file auth_user auth_query pool_mode max_client_conn default_pool_size
min_pool_size reserve_pool_size reserve_pool_timeout max_db_connections max_user_connections
server_round_robin disable_pqexec application_name_add_host log_connections log_disconnections
log_pooler_errors log_stats stats_period verbose stats_users server_reset_query
server_reset_query_always server_check_delay server_check_query server_lifetime
server_idle_timeout server_connect_timeout server_login_retry client_login_timeout
autodb_idle_timeout dns_max_ttl dns_nxdomain_ttl query_timeout query_wait_timeout
client_idle_timeout idle_transaction_timeout listen_backlog tcp_keepalive tcp_keepcnt
tcp_keepidle tcp_keepintvl tcp_user_timeout client_tls_sslmode server_tls_sslmode"

if [ ! -f "$CONFIG" ]; then
    : "${DB_HOST:?set DB_HOST (or DATABASE_URL), or mount $CONFIG}"
    target="host=$DB_HOST port=${DB_PORT:-5432}"
    [ -z "${DB_NAME:-}" ] || target="$target dbname=$DB_NAME"
    {
        echo "; written by /entrypoint.sh from the environment"
        echo "[databases]"
        echo "${DB_NAME:-*} = $target"
        echo
        echo "[pgbouncer]"
        echo "listen_addr = ${LISTEN_ADDR:-0.0.0.0}"
        echo "listen_port = ${LISTEN_PORT:-5432}"
        echo "unix_socket_dir ="
        echo "auth_file = $AUTH_FILE"
        echo "auth_type = $AUTH_TYPE"
        echo "admin_users = ${ADMIN_USERS:-postgres}"
        echo "ignore_startup_parameters = ${IGNORE_STARTUP_PARAMETERS:-extra_float_digits}"
        for key in $SETTINGS; do
            name="$(echo "$key" | tr '[:lower:]' '[:upper:]')"
            eval "value=\${$name:-}"
            # shellcheck disable=SC2154 # set by the eval above
            [ -z "$value" ] || echo "$key = $value"
        done
    } > "$CONFIG"
    echo "entrypoint: wrote $CONFIG"
fi

exec "$@"
