#!/usr/bin/env bash
# The test code-signing key and certificate of scripts/package.sh: made once
# in DIR (key.pem, cert.pem; default keys/codesign/, ignored by git) and
# reused by every later package, so that a test VM imports the certificate
# once (docs/install.md). Prints the certificate's SHA-1 thumbprint.
# Never a release certificate.
#
# usage: scripts/codesign-cert.sh [DIR]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DIR=${1:-${PIPESENSOR_CODESIGN_DIR:-$ROOT/keys/codesign}}
mkdir -p "$DIR"
chmod 700 "$DIR"
if [ ! -f "$DIR/key.pem" ] || [ ! -f "$DIR/cert.pem" ]; then
  openssl req -x509 -newkey rsa:3072 -sha256 -days 1825 -nodes \
    -subj "/CN=PipeSensor Test Signing/O=PipeSensor project (test only)" \
    -addext "keyUsage=critical,digitalSignature" -addext "extendedKeyUsage=codeSigning" \
    -addext "basicConstraints=critical,CA:FALSE" \
    -keyout "$DIR/key.pem" -out "$DIR/cert.pem" >/dev/null 2>&1
  chmod 600 "$DIR/key.pem"
  echo "made a new test code-signing certificate in $DIR (import it on the VM: docs/install.md step 4)" >&2
fi
openssl x509 -in "$DIR/cert.pem" -noout -fingerprint -sha1 | cut -d= -f2 | tr -d :
