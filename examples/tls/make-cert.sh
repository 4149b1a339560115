#!/usr/bin/env bash
# Regenerates cert.pem and key.pem: the self-signed certificate that examples/tls_echo.rs serves
# and tests/tls.rs trusts. FOR TESTS AND DEMOS ONLY: the private key is public, in this repo.
#
# ECDSA P-256 (fast handshakes; ring supports it), names localhost and 127.0.0.1, and a leaf's
# extensions (CA:FALSE, serverAuth) because webpki refuses a CA certificate as a server's.
# Valid from 2025-01-01 to 2125-01-01, backdated so a machine whose clock lags still accepts it;
# `openssl ca` is used only because `openssl req` (OpenSSL 3.0) cannot set the start date.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$work/key.pem" -out "$work/req.pem" -subj "/CN=localhost"
cat >"$work/ca.cnf" <<CNF
[ca]
default_ca = test
[test]
database = $work/index.txt
new_certs_dir = $work
serial = $work/serial
default_md = sha256
policy = any
x509_extensions = leaf
[any]
commonName = supplied
[leaf]
subjectAltName = DNS:localhost, IP:127.0.0.1
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
CNF
touch "$work/index.txt"
echo 01 >"$work/serial"
openssl ca -batch -config "$work/ca.cnf" -selfsign -keyfile "$work/key.pem" \
    -in "$work/req.pem" -out "$work/cert.pem" -notext \
    -startdate 20250101000000Z -enddate 21250101000000Z

{
    echo "Test certificate for coronet's TLS example and tests; made by make-cert.sh."
    cat "$work/cert.pem"
} >cert.pem
{
    echo "FOR TESTS ONLY: this private key is published in coronet's repository."
    cat "$work/key.pem"
} >key.pem
