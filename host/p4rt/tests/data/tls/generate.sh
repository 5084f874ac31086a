#!/bin/sh
# Regenerates the TLS fixtures of the integration tests: a CA, a switch
# certificate for localhost / 127.0.0.1 and a controller (client)
# certificate, all ECDSA P-256, valid for 100 years. Test material only.
set -eu
cd "$(dirname "$0")"
days=36500
openssl ecparam -name prime256v1 -genkey -noout -out ca.key
openssl req -x509 -new -key ca.key -sha256 -days "$days" -subj "/CN=umbra test CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -out ca.pem
for who in switch controller; do
    openssl ecparam -name prime256v1 -genkey -noout -out "$who.ec.key"
    openssl pkcs8 -topk8 -nocrypt -in "$who.ec.key" -out "$who.key"
    rm "$who.ec.key"
    openssl req -new -key "$who.key" -subj "/CN=umbra test $who" -out "$who.csr"
    if [ "$who" = switch ]; then
        ext="subjectAltName=DNS:localhost,IP:127.0.0.1
extendedKeyUsage=serverAuth"
    else
        ext="subjectAltName=DNS:controller.umbra.test
extendedKeyUsage=clientAuth"
    fi
    printf '%s\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n' "$ext" > "$who.ext"
    openssl x509 -req -in "$who.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -sha256 \
        -days "$days" -extfile "$who.ext" -out "$who.pem"
    rm "$who.csr" "$who.ext"
done
rm -f ca.srl ca.key
