#!/bin/sh
# Regenerates the test keys of the JWT tests (src/jwt.rs, tests/jwt.rs):
#   rsa.der       RSA-2048 private key, PKCS#1 DER (signs RS256 tokens)
#   rsa_pub.pem   its public key, SPKI PEM (the alg-confusion test "signs"
#                 an HS256 token with these bytes)
#   ec.der        EC P-256 private key, PKCS#8 DER (signs ES256 tokens)
#   jwks.json     both public keys as a JWKS (kids "rsa-1" and "ec-1")
# Needs openssl and python3. Test keys only: never use them elsewhere.
set -eu
cd "$(dirname "$0")"
openssl genrsa -traditional -out rsa.pem 2048 2>/dev/null
openssl rsa -in rsa.pem -outform DER -traditional -out rsa.der 2>/dev/null
openssl rsa -in rsa.pem -pubout -out rsa_pub.pem 2>/dev/null
openssl ecparam -name prime256v1 -genkey -noout -out ec_sec1.pem
openssl pkcs8 -topk8 -nocrypt -in ec_sec1.pem -outform DER -out ec.der
N=$(openssl rsa -in rsa.pem -noout -modulus | cut -d= -f2)
XY=$(openssl ec -in ec_sec1.pem -pubout -outform DER 2>/dev/null | tail -c 64 | od -An -v -tx1 | tr -d ' \n')
rm rsa.pem ec_sec1.pem
python3 - "$N" "$XY" <<'PY' > jwks.json
import base64, json, sys
b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()
n = bytes.fromhex(sys.argv[1]); xy = bytes.fromhex(sys.argv[2])
print(json.dumps({"keys": [
    {"kty": "RSA", "kid": "rsa-1", "use": "sig", "alg": "RS256", "n": b64(n), "e": "AQAB"},
    {"kty": "EC", "kid": "ec-1", "use": "sig", "crv": "P-256", "x": b64(xy[:32]), "y": b64(xy[32:])},
]}, indent=2))
PY
