#!/bin/sh
# Regenerates the TLS fixtures of the agent's integration tests: a CA, the
# agent's certificate for localhost / 127.0.0.1, a client certificate signed
# by the CA, and a rogue client certificate signed by another CA the agent
# does not trust. ECDSA P-256, valid for 100 years. Test material only.
set -eu
cd "$(dirname "$0")"
days=36500
for ca in ca rogue-ca; do
    openssl ecparam -name prime256v1 -genkey -noout -out "$ca.key"
    openssl req -x509 -new -key "$ca.key" -sha256 -days "$days" -subj "/CN=umbra agent test $ca" \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
        -out "$ca.pem"
done
issue() {
    who=$1 ca=$2 ext=$3
    openssl ecparam -name prime256v1 -genkey -noout -out "$who.ec.key"
    openssl pkcs8 -topk8 -nocrypt -in "$who.ec.key" -out "$who.key"
    rm "$who.ec.key"
    openssl req -new -key "$who.key" -subj "/CN=umbra agent test $who" -out "$who.csr"
    printf '%s\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n' "$ext" > "$who.ext"
    openssl x509 -req -in "$who.csr" -CA "$ca.pem" -CAkey "$ca.key" -CAcreateserial -sha256 \
        -days "$days" -extfile "$who.ext" -out "$who.pem"
    rm "$who.csr" "$who.ext"
}
issue agent ca "subjectAltName=DNS:localhost,IP:127.0.0.1
extendedKeyUsage=serverAuth"
issue client ca "subjectAltName=DNS:replicator.umbra.test
extendedKeyUsage=clientAuth"
issue rogue rogue-ca "subjectAltName=DNS:replicator.umbra.test
extendedKeyUsage=clientAuth"
rm -f ca.srl rogue-ca.srl ca.key rogue-ca.key rogue-ca.pem
