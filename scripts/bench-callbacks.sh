#!/usr/bin/env bash
# Benchmark (not a test): pre-operation callbacks per second through the
# filter-manager double under Wine, at 1, 8 and 32 of the double's threads,
# without content (the callback returns at its first check) and with
# content (the Wine test rules plus the SigmaHQ corpus: working memory,
# requestor image query, matching, events). Prints a Markdown table for
# docs/performance.md ("Callbacks through the filter-manager double").
#
# usage: scripts/bench-callbacks.sh [OPS]     (OPS: operations per run, default 24000)
# Builds what it needs (driver, double, clients) like scripts/driver-test.sh.
# Wall-clock figures on a shared machine move by +-30 %; the run prints
# the machine's core count with the table.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
OPS=${1:-24000}
TGT=${CARGO_TARGET_DIR:-$ROOT/target}
set -e
cargo build -q --release --locked -p pipectl
cargo build -q --release --locked -p pipectl --target x86_64-pc-windows-gnu
mkdir -p "$TGT/driver-test"
[ -f "$TGT/driver-test/ci-test.key" ] || "$TGT/release/pipectl" keygen "$TGT/driver-test/ci-test"
(cd driver && PIPESENSOR_TEST_KEY="$TGT/driver-test/ci-test.pub" cargo build -q --release --locked)
SYS=driver/target/x86_64-pc-windows-msvc/release/pipesensor.dll
driver/testing/fltmgr/build.sh "$TGT/driver-test" "$SYS" >/dev/null
x86_64-w64-mingw32-gcc -shared -O2 -o "$TGT/driver-test/bcryptprimitives.dll" tests/wine/processprng.c -ladvapi32
set +e

HERE=$ROOT
# shellcheck source=scripts/wine-lib.sh
. "$ROOT/scripts/wine-lib.sh"
wine_session bench
mkdir -p "$D/content" "$D/staging"
cp "$SYS" "$D/pipesensor.sys"
cp "$TGT/driver-test/fltmgr.sys" "$TGT/driver-test/fltctl.exe" "$TGT/driver-test/bcryptprimitives.dll" "$D/"
cp "$TGT/x86_64-pc-windows-gnu/release/pipectl.exe" "$D/pipectl.exe"
"$TGT/release/pipectl" compile tests/wine/rules-v1 third_party/sigma/rules/windows/pipe_created -o "$D/staging/content.sys" --sequence 1 \
  >"$LOG/compile" 2>&1 || { echo "compile failed: $(cat "$LOG/compile")"; exit 1; }
RULES=$(sed -n 's/.*: \([0-9]*\) rules,.*/\1/p' "$LOG/compile")
wine_boot
W override reg add 'HKCU\Software\Wine\DllOverrides' /v fltmgr.sys /t REG_SZ /d native /f
create_service
reg_set ContentDirectory REG_SZ '\??\C:\pipesensor\content'
reg_set RequireSignature REG_DWORD 0
reg_set RescanIntervalSeconds REG_DWORD 0
start_driver "bench" >/dev/null
W info 'C:\pipesensor\fltctl.exe' info
[ "$(val info filtering)" = 1 ] || { echo "the double is not bound (see $LOG/info.out)"; exit 1; }

ENTRIES=(--entry 'pipe:b:\postex_bench' --entry 'pipe:-:\harmless_bench_pipe' --entry 'create:-:\msagent_bench'
  --entry 'pipe:-:\Winsock2\CatalogChangeListener-1f0-0' --entry 'create:-:\PSEXESVC')
declare -A RATE WAITS
run() { # LABEL THREADS
  local per=$((OPS / $2)) b w
  ctl "before-$1-$2" status >/dev/null
  b=$(val "$LAST" counters.work_waits)
  W_TIMEOUT=1800 W "bench-$1-$2" 'C:\pipesensor\fltctl.exe' stress --threads "$2" --ops "$per" --kernel-every-4th "${ENTRIES[@]}"
  RATE[$1,$2]=$(val "bench-$1-$2" stress.callbacks_per_second)
  ctl "after-$1-$2" status >/dev/null
  w=$(val "$LAST" counters.work_waits)
  WAITS[$1,$2]=$((w - b))
  echo "  $1, $2 threads: $(val "bench-$1-$2" stress.callbacks) callbacks, ${RATE[$1,$2]}/s, max $(val "bench-$1-$2" stress.max_callback_us) us, work waits ${WAITS[$1,$2]}" >&2
}
for t in 1 8 32; do run none "$t"; done
ctl load load 'C:\pipesensor\staging\content.sys' >/dev/null
[ "$(val "$LAST" result)" = loaded ] || { echo "content load failed: $(cat "$LOG/$LAST.out")"; exit 1; }
for t in 1 8 32; do run content "$t"; done
stop_driver "bench" >/dev/null

echo
echo "$OPS operations per run, $(nproc) cores, $(date -u +%Y-%m-%d), Wine $(wine --version 2>/dev/null | tr -d '\r'); content: $RULES rules"
echo
echo "| threads | callbacks/s, no content | callbacks/s, content | evaluations that waited for working memory |"
echo "|---:|---:|---:|---:|"
for t in 1 8 32; do
  echo "| $t | ${RATE[none,$t]} | ${RATE[content,$t]} | ${WAITS[content,$t]} of $((OPS / t * t)) |"
done
