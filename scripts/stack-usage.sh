#!/usr/bin/env bash
# Static worst-case stack usage of the driver, from the linked image.
#
# An x64 kernel thread has a 24 KiB stack (KERNEL_STACK_SIZE 0x6000), part
# of it already used by the I/O manager / filter manager frames below the
# driver; overflowing it bug-checks the machine. Wine runs the driver on a
# user-mode stack of megabytes, so the Wine tests cannot see an overflow.
# This check bounds, for every entry point the kernel calls (DriverEntry,
# the IRP dispatch routines, the minifilter callbacks, the timer thread,
# the unload routines, the bug-check callback), the stack the driver's own
# frames can take on the deepest call chain, and fails above the budget.
#
# 1. Builds the driver exactly as scripts/driver-test.sh does (release,
#    driver/.cargo/config.toml: x86_64-pc-windows-msvc, rust-lld, fat LTO).
#    Nothing else is emitted: the analysis reads the final .sys (after LTO,
#    inlining and /OPT:REF,ICF), not an approximation of it.
# 2. scripts/stack-usage.py (the scripts/stackusage/ package): frame sizes
#    from the image's unwind data (cross-checked against the disassembled
#    prologues), names from the PDB, call edges from llvm-objdump; indirect
#    calls and recursion must be resolved by the driver's documented tables
#    (driver/stack-tables.py) or it fails. See scripts/stackusage/__init__.py.
# 3. A self-test first: the checker must reject a budget one byte below
#    the measured worst case, a synthetic image with a 64 KiB larger frame,
#    unwind data contradicting a prologue, unresolved indirect calls and
#    unbounded recursion.
#
# A static bound does not replace a Driver Verifier run on Windows: the
# kernel routines the driver calls (ZwCreateFile and the file-system stack
# below it, the registry, DbgPrintEx) use this stack too and are not in the
# image; the report shows how deep the driver already is at each such call.
#
# usage: scripts/stack-usage.sh [--budget BYTES] [-v|--verbose]
#                               [--locals FUNCTION-PATTERN] [--image SYS PDB]
#   --budget  bytes per entry point for the driver's frames (default 12288:
#             half the kernel stack, the rest for the frames below us and
#             the kernel routines we call)
#   --locals  list the stack locals of a function (from the PDB), largest
#             first, to see what makes a frame big; e.g. --locals
#             'pipesensor::content::*'
#   --image   check this image and PDB instead of building (e.g. the
#             package, which is built without the CI test key)
# Needs: llvm-objdump (scripts/setup.sh installs llvm-tools-preview for the
# nightly toolchain), python3.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"

budget=12288
extra=()
locals_of=
SYS= PDB=
while [ $# -gt 0 ]; do
  case "$1" in
    --budget) budget=$2; shift 2 ;;
    --budget=*) budget=${1#--budget=}; shift ;;
    -v|--verbose) extra+=(--verbose); shift ;;
    --locals) locals_of=$2; shift 2 ;;
    --image) SYS=$2; PDB=$3; shift 3 ;;
    *) echo "usage: $0 [--budget BYTES] [-v|--verbose] [--locals FUNCTION-PATTERN] [--image SYS PDB]" >&2
       exit 2 ;;
  esac
done
case "$budget" in ''|*[!0-9]*) echo "stack-usage: --budget wants a number of bytes" >&2; exit 2 ;; esac

# Same image as scripts/driver-test.sh builds: with the CI test key when
# there is one. The number of trusted keys is a constant the optimiser folds
# into the code, so the package (built without the test key) is a different
# image: scripts/package.sh checks that one.
if [ -z "$SYS" ]; then
  TGT=${CARGO_TARGET_DIR:-$ROOT/target}
  if [ -z "${PIPESENSOR_TEST_KEY:-}" ] && [ -f "$TGT/driver-test/ci-test.pub" ]; then
    export PIPESENSOR_TEST_KEY="$TGT/driver-test/ci-test.pub"
  fi
  (cd driver && cargo build -q --release --locked)
  SYS=driver/target/x86_64-pc-windows-msvc/release/pipesensor.dll
  PDB=driver/target/x86_64-pc-windows-msvc/release/pipesensor.pdb
fi

if [ -n "$locals_of" ]; then
  exec python3 scripts/stack-usage.py "$SYS" "$PDB" --locals "$locals_of"
fi
python3 scripts/stack-usage.py --self-test --budget "$budget" "$SYS" "$PDB"
python3 scripts/stack-usage.py --budget "$budget" ${extra[@]+"${extra[@]}"} "$SYS" "$PDB"
