#!/usr/bin/env bash
# The certificate nginx serves HTTPS with (`make up` runs this; README, "HTTPS").
#
# With TLS_CERT and TLS_KEY set (in .env or the environment) nginx uses those files (a real
# certificate, e.g. from an ACME client) and this only checks that nginx, which runs as uid 101,
# can read them. Otherwise it keeps, under tls/ (not committed):
#   ca.pem, ca-key.pem       a local certificate authority of this checkout (10 years), made once;
#                            trust ca.pem to have browsers and curl accept the certificate
#   localhost.pem, .key      a certificate for localhost, 127.0.0.1 and ::1 signed by that CA
#                            (397 days, the most browsers accept), made again 30 days before it
#                            expires or when the CA changed
# openssl does it (in every Debian); mkcert would do the same and also install the CA into the
# host's trust stores, which a server should not have done behind its operator's back.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"
load_env

NGINX_UID=101

if [ -n "${TLS_CERT:-}" ] || [ -n "${TLS_KEY:-}" ]; then
  [ -n "${TLS_CERT:-}" ] && [ -n "${TLS_KEY:-}" ] || die "set both TLS_CERT and TLS_KEY (or neither, for a local certificate)"
  for file in "$TLS_CERT" "$TLS_KEY"; do
    [ -f "$file" ] || die "TLS certificate file $file does not exist"
  done
  openssl x509 -in "$TLS_CERT" -noout -checkend 0 >/dev/null \
    || say "warning: the certificate $TLS_CERT has expired"
  # The key must be readable by nginx's user inside the container (uid/gid 101).
  if ! setpriv --reuid "$NGINX_UID" --regid "$NGINX_UID" --clear-groups test -r "$TLS_KEY" 2>/dev/null; then
    say "warning: nginx (uid $NGINX_UID) may not be able to read $TLS_KEY: chgrp $NGINX_UID '$TLS_KEY' && chmod 640 '$TLS_KEY'"
  fi
  exit 0
fi

command -v openssl >/dev/null || apt_install openssl
dir="$ROOT/tls"
mkdir -p "$dir"
ca="$dir/ca.pem" ca_key="$dir/ca-key.pem" cert="$dir/localhost.pem" key="$dir/localhost.key"

if [ ! -s "$ca" ] || [ ! -s "$ca_key" ]; then
  say "TLS: creating a local certificate authority (tls/ca.pem)"
  (umask 077 && openssl ecparam -name prime256v1 -genkey -noout -out "$ca_key")
  openssl req -x509 -new -key "$ca_key" -sha256 -days 3650 -out "$ca" \
    -subj "/O=Newsdesk local CA/CN=Newsdesk local CA $(hostname) $(date -u +%Y%m%d)" \
    -addext "basicConstraints=critical,CA:TRUE,pathlen:0" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
  rm -f "$cert"
fi

if [ -s "$cert" ] && openssl x509 -in "$cert" -noout -checkend $((30 * 86400)) >/dev/null \
  && openssl verify -CAfile "$ca" "$cert" >/dev/null 2>&1; then
  exit 0
fi
say "TLS: creating a certificate for localhost signed by the local CA (tls/localhost.pem)"
(umask 077 && openssl ecparam -name prime256v1 -genkey -noout -out "$key")
csr="$(mktemp)" ext="$(mktemp)"
trap 'rm -f "$csr" "$ext"' EXIT
openssl req -new -key "$key" -subj "/CN=localhost" -out "$csr"
cat >"$ext" <<'EXT'
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth
subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1
EXT
openssl x509 -req -in "$csr" -CA "$ca" -CAkey "$ca_key" -CAcreateserial -days 397 -sha256 \
  -extfile "$ext" -out "$cert" 2>/dev/null
# nginx reads the key as uid/gid 101 inside its container; nobody else on the host may.
chgrp "$NGINX_UID" "$key" 2>/dev/null || true
chmod 0640 "$key"
