#!/usr/bin/env bash
# The one entry point for the driver: builds the .sys and the Windows client,
# checks the image, runs the layout probe, the sensor-core tests and the
# Wine tests (scripts/wine-test.sh under Wine's stub filter manager, then
# scripts/wine-callbacks.sh: the driver's real minifilter callbacks through
# the filter-manager double). Exits non-zero on any failure; never skips a
# step.
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

TGT=${CARGO_TARGET_DIR:-$ROOT/target}
step "CI test signing key (built into this test driver via PIPESENSOR_TEST_KEY)"
cargo build -q --release --locked -p pipectl
mkdir -p "$TGT/driver-test"
# Generated once and kept, so the driver is not rebuilt on every run (a key
# of the format before key files had headers is made anew).
if ! head -1 "$TGT/driver-test/ci-test.pub" 2>/dev/null | grep -qx 'PIPE-SENSOR PUBLIC KEY'; then
  rm -f "$TGT/driver-test/ci-test.key" "$TGT/driver-test/ci-test.pub"
  "$TGT/release/pipectl" keygen "$TGT/driver-test/ci-test"
fi
export PIPESENSOR_TEST_KEY="$TGT/driver-test/ci-test.pub"
export WINE_TEST_SIGN_KEY="$TGT/driver-test/ci-test.key"

step "driver: build the .sys (x86_64-pc-windows-msvc, rust-lld)"
(cd driver && cargo build --release --locked)
# Unsafe hygiene is enforced by lints (driver/Cargo.toml: every unsafe block
# has a SAFETY comment and holds one unsafe operation).
(cd driver && cargo clippy -q --release --locked -- -D warnings)
# Layering: #![deny(unsafe_code)] outside driver/src/sys is the compiler's
# check; this one keeps sys below the driver: it reaches the rest of the
# crate only through crate::globals (its state and the HOOKS table).
if grep -rnE 'crate::[a-z_]+' driver/src/sys | grep -vE '^[^:]+:[0-9]+:[[:space:]]*//' \
    | grep -vE 'crate::(sys|globals)\b'; then
  echo "driver/src/sys names a module above it: call through sys::Hooks (crate::globals::HOOKS)"
  exit 1
fi
echo "layering: driver/src/sys reaches the driver only through crate::globals"
SYS=driver/target/x86_64-pc-windows-msvc/release/pipesensor.dll
PDB=driver/target/x86_64-pc-windows-msvc/release/pipesensor.pdb

step "image checks"
python3 scripts/check-image.py "$SYS" "$PDB"
# The checker must be able to fail: a copy with a GUI subsystem, no
# FORCE_INTEGRITY, a W+X section and a foreign import name must be rejected.
python3 - "$SYS" "$PDB" <<'PY'
import struct, subprocess, sys, tempfile
d = bytearray(open(sys.argv[1], "rb").read())
pe = struct.unpack_from("<I", d, 0x3C)[0]; opt = pe + 24
struct.pack_into("<H", d, opt + 68, 2)                     # subsystem GUI
struct.pack_into("<H", d, opt + 70, struct.unpack_from("<H", d, opt + 70)[0] & ~0x80)
nsect = struct.unpack_from("<H", d, pe + 6)[0]; sect = opt + struct.unpack_from("<H", d, pe + 20)[0]
struct.pack_into("<I", d, sect + 36, struct.unpack_from("<I", d, sect + 36)[0] | 0x80000000)  # .text writable
i = d.find(b"ZwClose\0"); d[i:i + 8] = b"wine_xy\0"                # an import Windows lacks
f = tempfile.NamedTemporaryFile(suffix=".sys", delete=False); f.write(d); f.close()
r = subprocess.run([sys.executable, "scripts/check-image.py", f.name, sys.argv[2]], capture_output=True, text=True)
fails = [l for l in r.stdout.splitlines() if l.startswith("FAIL")]
want = ["subsystem NATIVE", "FORCE_INTEGRITY", "not writable+executable", "no import that Windows does not export"]
missing = [w for w in want if not any(w in l for l in fails)]
if r.returncode == 0 or missing:
    print("image check self-test FAILED: not detected:", missing); sys.exit(1)
print("image check self-test: a corrupted image is rejected (%d failures detected)" % len(fails))
PY

# The natvis visualizers must be embedded in the PDB (#![debugger_visualizer]).
grep -q AutoVisualizer "$PDB" || { echo "natvis not embedded in $PDB"; exit 1; }
echo "natvis embedded in the PDB"

step "stack usage (static worst case per entry point; kernel stack 24 KiB, budget 12 KiB)"
# Wine runs the driver on a big user-mode stack: only this check sees a
# kernel stack overflow. Self-test first (it must be able to fail). The
# package step checks the shipped image (built without the test key) again.
scripts/stack-usage.sh

step "layout probe"
scripts/layout-probe.sh

step "pipectl: host and x86_64-pc-windows-gnu"
cargo build -q --release --locked -p pipectl
cargo build -q --release --locked -p pipectl --target x86_64-pc-windows-gnu

step "test-only ProcessPrng shim and malformed corpus"
mkdir -p "$TGT/driver-test"
x86_64-w64-mingw32-gcc -shared -O2 -o "$TGT/driver-test/bcryptprimitives.dll" tests/wine/processprng.c -ladvapi32
rm -rf "$TGT/driver-test/malformed"
"$TGT/release/pipectl" gen-malformed "$TGT/driver-test/malformed" >/dev/null

step "filter-manager double (test only: driver/testing/fltmgr)"
driver/testing/fltmgr/build.sh "$TGT/driver-test" "$SYS"

step "Wine tests"
scripts/wine-test.sh "$SYS" "$TGT/x86_64-pc-windows-gnu/release/pipectl.exe" "$TGT/release/pipectl" \
  "$TGT/driver-test/malformed" "$TGT/driver-test/bcryptprimitives.dll"

step "Wine tests: the minifilter callbacks through the filter-manager double"
scripts/wine-callbacks.sh "$SYS" "$TGT/driver-test/fltmgr.sys" "$TGT/driver-test/fltctl.exe" \
  "$TGT/x86_64-pc-windows-gnu/release/pipectl.exe" "$TGT/release/pipectl" "$TGT/driver-test/bcryptprimitives.dll"

step "Wine tests: protected set, circuit breaker, soak (issue 15) through the double"
scripts/wine-blocksafe.sh "$SYS" "$TGT/driver-test/fltmgr.sys" "$TGT/driver-test/fltctl.exe" \
  "$TGT/x86_64-pc-windows-gnu/release/pipectl.exe" "$TGT/release/pipectl" "$TGT/driver-test/bcryptprimitives.dll"

step "package (target/package: INF, test-signed .sys, pipectl.exe, install-without-inf.cmd, ...)"
# The package is built without the CI test key: it trusts driver/keys/*.pub only.
env -u PIPESENSOR_TEST_KEY scripts/package.sh
# The double and its client are test-only: never in the package.
if find target/package -iname 'fltmgr*' -o -iname 'fltctl*' -o -iname 'fltdouble*' | grep -q .; then
  echo "the package contains the test-only filter-manager double:"; find target/package -iname 'flt*'; exit 1
fi
echo "package: no test-only filter-manager double in it"

step "Wine: install the package through its INF and install-without-inf.cmd"
scripts/wine-inf-test.sh "${PACKAGE_DIR:-$TGT/package}" "$TGT/release/pipectl" "$TGT/driver-test/bcryptprimitives.dll"

step "driver tests passed"
