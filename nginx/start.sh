#!/bin/sh
# nginx's start (the container's command): the files nginx.conf includes from the tmpfs
# /etc/nginx/runtime, written afresh at every start, then nginx in the foreground.
#   web.conf        the `web` upstream's servers (web-upstream.conf; `make deploy` swaps them)
#   https-only.conf empty, or with HTTPS_ONLY=true a redirect of every plain-HTTP request to
#                   HTTPS on HTTPS_PUBLIC_PORT (the port browsers reach, 443 for none in the URL)
set -eu
runtime=/etc/nginx/runtime
cp /etc/nginx/newsdesk/web-upstream.conf "$runtime/web.conf"
case "${HTTPS_ONLY:-false}" in
  true | 1 | yes | on)
    port="${HTTPS_PUBLIC_PORT:-443}"
    suffix=":$port"
    [ "$port" != 443 ] || suffix=""
    printf 'return 301 https://$host%s$request_uri;\n' "$suffix" > "$runtime/https-only.conf"
    ;;
  *) : > "$runtime/https-only.conf" ;;
esac
exec nginx -g 'daemon off;'
