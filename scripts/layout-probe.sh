#!/usr/bin/env bash
# Layout probe: checks every kernel structure offset/size the driver uses
# (driver/src/layout.rs) against the DDK headers.
#  1. `layout-probe table`: each Rust value (offset_of!/size_of on the
#     driver's own types) equals the documented x64 value pinned in layout.rs;
#  2. `layout-probe wdm|flt|double` emit C _Static_asserts of the Rust values,
#     which x86_64-w64-mingw32-gcc compiles against mingw-w64's ddk/ntifs.h,
#     Wine's ddk/fltkernel.h, and the filter-manager double's fltdouble.h
#     (what the test double declares by hand, over Wine's headers): any
#     disagreement fails with the member named.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT/driver/layout-probe"
OUT=${1:-target/probe}
mkdir -p "$OUT"
HOST=$(rustc -vV | awk '/^host:/{print $2}')
cargo build -q --release --locked --target "$HOST"
BIN=target/$HOST/release/layout-probe
"$BIN" table >"$OUT/table.txt" || { grep -v '^ok' "$OUT/table.txt"; echo "layout probe: Rust values differ from the documented ones"; exit 1; }
"$BIN" wdm >"$OUT/probe_wdm.c"
"$BIN" flt >"$OUT/probe_flt.c"
"$BIN" double >"$OUT/probe_double.c"
WDM_INC=/usr/share/mingw-w64/include/ddk
WINE_INC=/usr/include/wine/wine
[ -f "$WDM_INC/ntifs.h" ] || { echo "missing $WDM_INC/ntifs.h (mingw-w64)"; exit 1; }
[ -f "$WINE_INC/windows/ddk/fltkernel.h" ] || { echo "missing $WINE_INC/windows/ddk/fltkernel.h (libwine-dev)"; exit 1; }
x86_64-w64-mingw32-gcc -c -o "$OUT/probe_wdm.o" -I"$WDM_INC" "$OUT/probe_wdm.c"
x86_64-w64-mingw32-gcc -c -o "$OUT/probe_flt.o" -I"$WINE_INC/windows" -I"$WINE_INC/msvcrt" "$OUT/probe_flt.c"
x86_64-w64-mingw32-gcc -c -o "$OUT/probe_double.o" -I"$ROOT/driver/testing/fltmgr" -I"$WINE_INC/windows" -I"$WINE_INC/msvcrt" "$OUT/probe_double.c"
"$BIN" negative >"$OUT/probe_negative.c"
if x86_64-w64-mingw32-gcc -c -o "$OUT/probe_negative.o" -I"$WDM_INC" "$OUT/probe_negative.c" 2>"$OUT/negative.err"; then
  echo "layout probe: the negative control (windows-sys IO_STACK_LOCATION) compiled: the probe cannot detect a wrong layout"
  exit 1
fi
echo "layout probe: negative control rejected as expected: $(grep -o 'windows-sys InputBufferLength offset [0-9]*' "$OUT/negative.err" | head -1)"
nw=$(grep -c _Static_assert "$OUT/probe_wdm.c"); nf=$(grep -c _Static_assert "$OUT/probe_flt.c"); nd=$(grep -c _Static_assert "$OUT/probe_double.c")
echo "layout probe: $(wc -l <"$OUT/table.txt") Rust values match the documented x64 layout; $nw checks against mingw-w64 ddk, $nf against Wine fltkernel.h, $nd against the filter-manager double's fltdouble.h: all match"
