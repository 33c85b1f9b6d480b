#!/usr/bin/env bash
# Builds the driver and the Windows client and assembles target/package/, the
# folder an admin copies to a Windows test VM (docs/install.md):
#   PipeSensor.inf                 the minifilter INF
#   pipesensor.sys                 the driver, test-signed (the image the INF installs)
#   pipectl.exe                    the Windows client (x86_64-pc-windows-gnu)
#   install-without-inf.cmd        `sc create` + `reg add`, generated from the INF
#   uninstall-without-inf.cmd      (scripts/inf-install.py)
#   test-cert/PipeSensorTest.cer   the test code-signing certificate (DER) to trust
#   CONTENT-KEYS.txt               the content-signing key ids built into the driver
#   pipesensor.pdb                 symbols (they match both images), pipesensor.natvis
#   unsigned/pipesensor-unsigned.sys  the image before signing (not for installing)
#   reports/                       image checks, stack bound, signature check
#   SHA256SUMS
#
# The test code-signing key and certificate are made once and kept in
# $PIPESENSOR_CODESIGN_DIR (default keys/codesign/, ignored by git;
# scripts/codesign-cert.sh): every
# package signed with them carries the same certificate, so a VM that
# imported it once trusts later packages too. Delete the directory to start
# over (then import the new certificate). Never a release certificate.
#
# Warns (and says so in CONTENT-KEYS.txt) when no content-signing key is
# built in: such a driver refuses every content file while RequireSignature
# is 1, its default.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
TGT=${CARGO_TARGET_DIR:-$ROOT/target}
PKG=${PACKAGE_DIR:-$TGT/package}
CODESIGN=${PIPESENSOR_CODESIGN_DIR:-$ROOT/keys/codesign}

(cd driver && cargo build --release --locked)
cargo build -q --release --locked -p pipectl --target x86_64-pc-windows-gnu
REL=driver/target/x86_64-pc-windows-msvc/release

rm -rf "$PKG"
mkdir -p "$PKG/test-cert" "$PKG/unsigned" "$PKG/reports"
cp "$REL/pipesensor.dll" "$PKG/unsigned/pipesensor-unsigned.sys"
cp "$REL/pipesensor.pdb" "$PKG/pipesensor.pdb"
cp driver/pipesensor.natvis "$PKG/"
cp inf/PipeSensor.inf "$PKG/"
# Stripped: the debug info of the release profile is for the host build.
x86_64-w64-mingw32-strip -o "$PKG/pipectl.exe" "$TGT/x86_64-pc-windows-gnu/release/pipectl.exe"
python3 scripts/inf-install.py inf/PipeSensor.inf cmd >"$PKG/install-without-inf.cmd"
python3 scripts/inf-install.py inf/PipeSensor.inf uninstall >"$PKG/uninstall-without-inf.cmd"
python3 scripts/check-image.py "$PKG/unsigned/pipesensor-unsigned.sys" "$PKG/pipesensor.pdb" >"$PKG/reports/image-check.txt" || {
  cat "$PKG/reports/image-check.txt"; exit 1; }
# Static worst-case stack per entry point of the image that ships (see
# scripts/stack-usage.sh; the report goes into the package).
python3 scripts/stack-usage.py "$PKG/unsigned/pipesensor-unsigned.sys" "$PKG/pipesensor.pdb" >"$PKG/reports/stack-usage.txt" || {
  cat "$PKG/reports/stack-usage.txt"; exit 1; }

# Content-signing keys built in (driver/build.rs reads driver/keys/*.pub).
keys=$(grep -h '^id ' driver/keys/*.pub 2>/dev/null | cut -d' ' -f2 || true)
if [ -z "$keys" ]; then
  cat >"$PKG/CONTENT-KEYS.txt" <<'EOF'
NO CONTENT-SIGNING KEY IS BUILT INTO THIS DRIVER.
With RequireSignature 1 (the default) it refuses every content file.
Add one: pipectl keygen keys/vm-test && cp keys/vm-test.pub driver/keys/
then run scripts/package.sh again (docs/install.md, step 1).
EOF
  echo "WARNING: no content-signing key built in (driver/keys/*.pub is empty): this driver refuses every content file while RequireSignature is 1; see $PKG/CONTENT-KEYS.txt" >&2
else
  { echo "Content-signing keys built into this driver (key ids; pipectl compile --sign prints the id it signs with):"
    echo "$keys"; } >"$PKG/CONTENT-KEYS.txt"
fi

# The test code-signing certificate: made once, reused.
THUMB=$(scripts/codesign-cert.sh "$CODESIGN")
cp "$CODESIGN/cert.pem" "$PKG/test-cert/PipeSensorTest.pem"
openssl x509 -in "$CODESIGN/cert.pem" -outform DER -out "$PKG/test-cert/PipeSensorTest.cer"
echo "$THUMB" >"$PKG/test-cert/thumbprint.txt"
osslsigncode sign -certs "$CODESIGN/cert.pem" -key "$CODESIGN/key.pem" -h sha256 \
  -n "PipeSensor (test-signed)" -in "$PKG/unsigned/pipesensor-unsigned.sys" -out "$PKG/pipesensor.sys" >/dev/null
# The signature must verify against the test certificate, and the signed
# image must still pass every image check (same PDB).
osslsigncode verify -CAfile "$PKG/test-cert/PipeSensorTest.pem" -in "$PKG/pipesensor.sys" >"$PKG/reports/signature-verify.txt" 2>&1 || {
  cat "$PKG/reports/signature-verify.txt"; exit 1; }
python3 scripts/check-image.py "$PKG/pipesensor.sys" "$PKG/pipesensor.pdb" >"$PKG/reports/image-check-signed.txt" || {
  cat "$PKG/reports/image-check-signed.txt"; exit 1; }
(cd "$PKG" && sha256sum PipeSensor.inf pipesensor.sys pipectl.exe install-without-inf.cmd uninstall-without-inf.cmd \
  test-cert/PipeSensorTest.cer pipesensor.pdb unsigned/pipesensor-unsigned.sys >SHA256SUMS)
echo "package: $PKG (test certificate thumbprint $THUMB)"
ls -l "$PKG"
