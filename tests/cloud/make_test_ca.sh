#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# make_test_ca.sh DIR [extra IPs or DNS names...]: a throw-away CA and a server certificate for
# the fake AWS endpoints. Writes DIR/ca.pem, DIR/ca.key, DIR/server.pem, DIR/server.key (EC P-256,
# 2 days). The server's SAN holds localhost, 127.0.0.1, ::1 and every extra name given, so the
# same certificate serves loopback and the lab namespaces' addresses. Idempotent: files that are
# still valid for another hour and already cover every requested name are kept as they are.
set -euo pipefail

if [[ $# -lt 1 ]]; then
  echo "usage: $0 DIR [extra IP or DNS name...]" >&2
  exit 2
fi
dir=$1
shift
openssl=/usr/bin/openssl

san="DNS:localhost,IP:127.0.0.1,IP:::1"
for name in "$@"; do
  if [[ $name =~ ^[0-9.]+$ || $name == *:* ]]; then
    san+=",IP:$name"
  else
    san+=",DNS:$name"
  fi
done

mkdir -p "$dir"

# Reuse what is there when it is complete, fresh and covers every requested name.
up_to_date() {
  local f
  for f in ca.pem ca.key server.pem server.key; do
    [[ -s $dir/$f ]] || return 1
  done
  "$openssl" x509 -in "$dir/server.pem" -noout -checkend 3600 >/dev/null 2>&1 || return 1
  "$openssl" x509 -in "$dir/ca.pem" -noout -checkend 3600 >/dev/null 2>&1 || return 1
  "$openssl" verify -CAfile "$dir/ca.pem" "$dir/server.pem" >/dev/null 2>&1 || return 1
  local have
  have=$("$openssl" x509 -in "$dir/server.pem" -noout -ext subjectAltName 2>/dev/null |
         tail -n +2 | tr -d ' ')
  # openssl prints IPv6 addresses expanded and upper-case; normalise both sides the same way.
  have=$(normalise_san "${have//IPAddress:/IP:}")
  local want entry entries
  want=$(normalise_san "$san")
  IFS=, read -ra entries <<<"$want"
  for entry in "${entries[@]}"; do
    [[ ",$have," == *",$entry,"* ]] || return 1
  done
}

normalise_san() {
  local out=() entry entries
  IFS=, read -ra entries <<<"$1"
  for entry in "${entries[@]}"; do
    if [[ $entry == IP:*:* ]]; then
      entry="IP:$(/usr/bin/python3 -c 'import ipaddress,sys; print(ipaddress.ip_address(sys.argv[1]).compressed)' "${entry#IP:}")"
    fi
    out+=("$entry")
  done
  (IFS=,; echo "${out[*]}")
}

if up_to_date; then
  exit 0
fi

work=$(mktemp -d "$dir/.make_test_ca.XXXXXX")
trap 'rm -rf "$work"' EXIT
umask 077

# A CA that is still good for longer than the new server certificate is kept, so clients that
# already trust it keep working; otherwise both are made anew.
if [[ -s $dir/ca.pem && -s $dir/ca.key ]] &&
   "$openssl" x509 -in "$dir/ca.pem" -noout -checkend 86400 >/dev/null 2>&1; then
  cp "$dir/ca.pem" "$dir/ca.key" "$work/"
else
  "$openssl" req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$work/ca.key" -out "$work/ca.pem" -days 2 -subj "/CN=tandem test CA" \
    -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -addext "subjectKeyIdentifier=hash" 2>/dev/null
fi

"$openssl" req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
  -keyout "$work/server.key" -out "$work/server.csr" -subj "/CN=localhost" 2>/dev/null

cat >"$work/server.ext" <<EOF
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectKeyIdentifier=hash
authorityKeyIdentifier=keyid,issuer
subjectAltName=$san
EOF

"$openssl" x509 -req -in "$work/server.csr" -CA "$work/ca.pem" -CAkey "$work/ca.key" \
  -set_serial "0x$("$openssl" rand -hex 16)" -days 2 -extfile "$work/server.ext" \
  -out "$work/server.pem" 2>/dev/null

chmod 644 "$work/ca.pem" "$work/server.pem"
for f in ca.key ca.pem server.key server.pem; do
  mv -f "$work/$f" "$dir/$f"
done
