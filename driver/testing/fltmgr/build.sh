#!/usr/bin/env bash
# Builds the filter-manager double (fltmgr.sys) and its client (fltctl.exe)
# into OUTDIR with x86_64-w64-mingw32-gcc (the double against Wine's DDK
# headers from libwine-dev, the client against mingw-w64's). TEST ONLY: the
# package never contains them (scripts/driver-test.sh checks).
#
# With a driver image, also checks that the double exports exactly the
# fltmgr.sys routines the driver imports (a routine the driver starts to
# import must be added to the double, with its real semantics).
#
# usage: driver/testing/fltmgr/build.sh OUTDIR [DRIVER.sys]
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
OUT=$1
SYS=${2:-}
WINE_INC=/usr/include/wine/wine
[ -f "$WINE_INC/windows/ddk/fltkernel.h" ] || { echo "missing $WINE_INC/windows/ddk/fltkernel.h (libwine-dev; scripts/setup.sh)"; exit 1; }
mkdir -p "$OUT"
CFLAGS=(-O2 -Wall -Wextra -Werror -fno-stack-protector)
x86_64-w64-mingw32-gcc "${CFLAGS[@]}" -fno-builtin -I"$WINE_INC/windows" -I"$WINE_INC/msvcrt" \
  -shared -nostdlib -Wl,--subsystem,native -Wl,--entry,FltDoubleEntry \
  -o "$OUT/fltmgr.sys" "$HERE/fltmgr.c" "$HERE/fltmgr.def" -lntoskrnl -lgcc
x86_64-w64-mingw32-gcc "${CFLAGS[@]}" -municode -o "$OUT/fltctl.exe" "$HERE/fltctl.c"
echo "built $OUT/fltmgr.sys and $OUT/fltctl.exe"
if [ -n "$SYS" ]; then
  imports=$(x86_64-w64-mingw32-objdump -p "$SYS" | sed -n '/DLL Name: fltmgr.sys/,/^$/p' | awk 'NR>2 && NF>=3 {print $3}' | sort)
  exports=$(x86_64-w64-mingw32-objdump -p "$OUT/fltmgr.sys" | sed -n '/^\[Ordinal\/Name Pointer\] Table/,/^$/p' | awk 'NR>1 && NF>=3 {print $3}' | sort)
  [ -n "$imports" ] || { echo "no fltmgr.sys imports found in $SYS"; exit 1; }
  if [ "$imports" != "$exports" ]; then
    echo "the double's exports differ from the driver's fltmgr.sys imports:"
    diff <(echo "$imports") <(echo "$exports") || true
    exit 1
  fi
  echo "the double exports every fltmgr.sys routine the driver imports: $(echo $imports)"
fi
