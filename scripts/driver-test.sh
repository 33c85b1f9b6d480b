#!/usr/bin/env bash
# The one entry point for the driver: builds the .sys and the Windows client,
# checks the image, runs the layout probe, the sensor-core tests and the
# Wine tests. Exits non-zero on any failure; never skips a step.
#
# usage: scripts/driver-test.sh        (run scripts/setup.sh once first)
# Env: WINE_TEST_FILE_BATCHES=N limits the malformed-by-file phase (default all).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
T0=$SECONDS
step() { echo; echo "== $* ($((SECONDS - T0))s)"; }

step "sensor-core tests"
cargo test -q -p sensor-core --locked

step "driver: build the .sys (x86_64-pc-windows-msvc, rust-lld)"
(cd driver && cargo build --release --locked)
SYS=driver/target/x86_64-pc-windows-msvc/release/pipesensor.dll
PDB=driver/target/x86_64-pc-windows-msvc/release/pipesensor.pdb

step "image checks"
python3 scripts/check-image.py "$SYS" "$PDB"

step "layout probe"
scripts/layout-probe.sh

step "pipectl: host and x86_64-pc-windows-gnu"
cargo build -q --release --locked -p pipectl
cargo build -q --release --locked -p pipectl --target x86_64-pc-windows-gnu
TGT=${CARGO_TARGET_DIR:-$ROOT/target}

step "test-only ProcessPrng shim and malformed corpus"
mkdir -p "$TGT/driver-test"
x86_64-w64-mingw32-gcc -shared -O2 -o "$TGT/driver-test/bcryptprimitives.dll" tests/wine/processprng.c -ladvapi32
rm -rf "$TGT/driver-test/malformed"
"$TGT/release/pipectl" gen-malformed "$TGT/driver-test/malformed" >/dev/null

step "Wine tests"
scripts/wine-test.sh "$SYS" "$TGT/x86_64-pc-windows-gnu/release/pipectl.exe" "$TGT/release/pipectl" \
  "$TGT/driver-test/malformed" "$TGT/driver-test/bcryptprimitives.dll"

step "driver tests passed"
