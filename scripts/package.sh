#!/usr/bin/env bash
# Builds the driver and assembles target/package/:
#   pipesensor.sys, pipesensor.pdb   the driver and its matching symbols
#   PipeSensor.inf                   the minifilter INF
#   pipesensor.natvis                the debugger visualizers (also embedded in the PDB)
#   signed/pipesensor.sys            the driver test-signed with osslsigncode
#   test-cert/PipeSensorTest.cer     the test certificate (DER) to trust on a test machine
#   SHA256SUMS
#   image-check.txt, stack-usage.txt  the image checks and the static stack bound
# The test certificate and key are generated here with openssl (a fresh,
# self-signed code-signing certificate per package; never a release key).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
(cd driver && cargo build --release --locked)
REL=driver/target/x86_64-pc-windows-msvc/release
PKG=${PACKAGE_DIR:-$ROOT/target/package}
rm -rf "$PKG"
mkdir -p "$PKG/signed" "$PKG/test-cert"
cp "$REL/pipesensor.dll" "$PKG/pipesensor.sys"
cp "$REL/pipesensor.pdb" "$PKG/pipesensor.pdb"
cp inf/PipeSensor.inf "$PKG/"
cp driver/pipesensor.natvis "$PKG/"
python3 scripts/check-image.py "$PKG/pipesensor.sys" "$PKG/pipesensor.pdb" >"$PKG/image-check.txt" || {
  cat "$PKG/image-check.txt"; exit 1; }
# Static worst-case stack per entry point of the image that ships (see
# scripts/stack-usage.sh; the report goes into the package).
python3 scripts/stack-usage.py "$PKG/pipesensor.sys" "$PKG/pipesensor.pdb" >"$PKG/stack-usage.txt" || {
  cat "$PKG/stack-usage.txt"; exit 1; }

KEYDIR=$(mktemp -d)
trap 'rm -rf "$KEYDIR"' EXIT
openssl req -x509 -newkey rsa:3072 -sha256 -days 365 -nodes \
  -subj "/CN=PipeSensor Test Signing/O=PipeSensor project (test only)" \
  -addext "keyUsage=critical,digitalSignature" -addext "extendedKeyUsage=codeSigning" \
  -addext "basicConstraints=critical,CA:FALSE" \
  -keyout "$KEYDIR/key.pem" -out "$PKG/test-cert/PipeSensorTest.pem" >/dev/null 2>&1
openssl x509 -in "$PKG/test-cert/PipeSensorTest.pem" -outform DER -out "$PKG/test-cert/PipeSensorTest.cer"
osslsigncode sign -certs "$PKG/test-cert/PipeSensorTest.pem" -key "$KEYDIR/key.pem" -h sha256 \
  -n "PipeSensor (test-signed)" -in "$PKG/pipesensor.sys" -out "$PKG/signed/pipesensor.sys" >/dev/null
# The signature must verify against the test certificate, and the signed
# image must still pass every image check (same PDB).
osslsigncode verify -CAfile "$PKG/test-cert/PipeSensorTest.pem" -in "$PKG/signed/pipesensor.sys" >"$PKG/signature-verify.txt" 2>&1 || {
  cat "$PKG/signature-verify.txt"; exit 1; }
python3 scripts/check-image.py "$PKG/signed/pipesensor.sys" "$PKG/pipesensor.pdb" >"$PKG/image-check-signed.txt" || {
  cat "$PKG/image-check-signed.txt"; exit 1; }
(cd "$PKG" && sha256sum pipesensor.sys pipesensor.pdb PipeSensor.inf signed/pipesensor.sys test-cert/PipeSensorTest.cer >SHA256SUMS)
echo "package: $PKG"
ls -l "$PKG" "$PKG/signed"
