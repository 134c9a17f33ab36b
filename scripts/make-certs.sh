#!/usr/bin/env bash
# Creates a test certificate authority and one PKCS#12 file per node for a DistSgd cluster with TLS.
#
#   scripts/make-certs.sh DIR [NAME[:IP[,IP…]] …]      (default names: node1 node2 node3)
#
# DIR/ca.key, DIR/ca.crt   the CA (EC P-256, 5 years); an existing pair in DIR is reused, so nodes can be
#                          added later with the same CA
# DIR/NAME.pfx             NAME's key and certificate (EC P-256, 2 years, serverAuth + clientAuth, SAN DNS:NAME
#                          and the IPs given) plus the CA certificate: what `distsgd node --tls-cert` reads
# DIR/password             the password of every .pfx (mode 600): DISTSGD_TLS_PASSWORD when set, else random
#
# Copy NAME.pfx (not ca.key) to the machine of node NAME, and give the password through DISTSGD_TLS_PASSWORD
# or --tls-password-file. Host names and IPs are written into the certificates for people reading them; DistSgd
# checks that a peer's certificate chains to the CA, not which host presents it. Keep ca.key off the nodes:
# whoever holds it can make certificates every node accepts.
set -euo pipefail

if [ $# -lt 1 ] || [ "$1" = "-h" ] || [ "$1" = "--help" ]; then
  sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'
  exit 2
fi
command -v openssl >/dev/null 2>&1 || { echo "error: openssl is not installed (apt-get install openssl)" >&2; exit 2; }

dir=$1
shift
nodes=("$@")
[ ${#nodes[@]} -gt 0 ] || nodes=(node1 node2 node3)
mkdir -p "$dir"
umask 077

if [ -n "${DISTSGD_TLS_PASSWORD:-}" ]; then
  password=$DISTSGD_TLS_PASSWORD
elif [ -s "$dir/password" ]; then
  password=$(cat "$dir/password")
else
  password=$(openssl rand -hex 16)
fi
printf '%s\n' "$password" > "$dir/password"
export DISTSGD_MAKE_CERTS_PASSWORD=$password

if [ ! -s "$dir/ca.key" ] || [ ! -s "$dir/ca.crt" ]; then
  openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -sha256 -days 1825 \
    -subj "/CN=DistSgd test CA $(date -u +%Y%m%d%H%M%S)-$$" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -keyout "$dir/ca.key" -out "$dir/ca.crt" 2>/dev/null
  echo "created CA $dir/ca.crt"
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for spec in "${nodes[@]}"; do
  name=${spec%%:*}
  case $name in
    ''|*[!A-Za-z0-9._-]*) echo "error: node name '$name' (in '$spec'): expected letters, digits, '.', '_' or '-'" >&2; exit 2 ;;
  esac
  san="DNS:$name"
  if [ "$spec" != "$name" ]; then
    IFS=',' read -r -a ips <<< "${spec#*:}"
    for ip in "${ips[@]}"; do san="$san,IP:$ip"; done
  fi
  printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth,clientAuth\nsubjectAltName=%s\n' "$san" > "$work/ext"
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$name" \
    -keyout "$work/$name.key" -out "$work/$name.csr" 2>/dev/null
  openssl x509 -req -in "$work/$name.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" -CAcreateserial -sha256 -days 730 \
    -extfile "$work/ext" -out "$work/$name.crt" 2>/dev/null
  openssl pkcs12 -export -inkey "$work/$name.key" -in "$work/$name.crt" -certfile "$dir/ca.crt" -name "$name" \
    -out "$dir/$name.pfx" -passout env:DISTSGD_MAKE_CERTS_PASSWORD
  echo "created $dir/$name.pfx ($san)"
done
rm -f "$dir/ca.srl"
echo "password in $dir/password; keep $dir/ca.key off the nodes"
