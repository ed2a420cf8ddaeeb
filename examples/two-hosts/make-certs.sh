#!/bin/sh
# Makes the certificates for TLS between the rkms hosts and PostgreSQL (run once, with OpenSSL):
#
#   sh examples/two-hosts/make-certs.sh [NAME...]
#
# Writes into tls/ beside this script:
#   tls/ca.crt, tls/ca.key           a CA for this example (keep ca.key away from the hosts)
#   tls/server.crt, tls/server.key   PostgreSQL's certificate, for the names given (default:
#                                    postgres, the compose service, and localhost, 127.0.0.1)
#   tls/client.crt, tls/client.key   a client certificate for user rkms (CN=rkms), for
#                                    client-certificate login (`hostssl ... cert` in pg_hba.conf)
#
# The rkms hosts need only tls/ca.crt (sslrootcert) and, for client-certificate login,
# tls/client.crt and tls/client.key (sslcert, sslkey). An existing tls/ directory is left alone.
set -eu

DIR="$(cd "$(dirname "$0")" && pwd)/tls"
if [ -e "$DIR/ca.crt" ]; then
    echo "make-certs: $DIR/ca.crt exists; remove $DIR to make new certificates" >&2
    exit 1
fi
command -v openssl >/dev/null 2>&1 || { echo "make-certs: openssl not found" >&2; exit 1; }
if [ "$#" -eq 0 ]; then
    set -- postgres localhost 127.0.0.1
fi
SAN=""
for name in "$@"; do
    if printf '%s\n' "$name" | grep -Eq '^([0-9]+[.]){3}[0-9]+$|:'; then
        entry="IP:$name"
    else
        entry="DNS:$name"
    fi
    SAN="${SAN:+$SAN,}$entry"
done

mkdir -p "$DIR"
umask 077
cd "$DIR"

openssl req -x509 -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 -sha256 -days 3650 \
    -subj "/CN=rkms example database CA" -keyout ca.key -out ca.crt \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    2>/dev/null

leaf() { # NAME CN EXTENSIONS
    openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 -sha256 \
        -subj "/CN=$2" -keyout "$1.key" -out "$1.csr" 2>/dev/null
    printf '%s\n' "$3" >"$1.ext"
    openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days 825 -sha256 \
        -extfile "$1.ext" -out "$1.crt" 2>/dev/null
    rm -f "$1.csr" "$1.ext"
}
leaf server "$1" "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=$SAN"
leaf client rkms "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=clientAuth"
rm -f ca.srl
# Certificates are public; keys stay readable by their owner only (the compose file copies
# server.key for PostgreSQL's user).
chmod 644 ca.crt server.crt client.crt
chmod 600 ca.key server.key client.key
echo "make-certs: wrote $DIR (server certificate for $SAN)"
