#!/usr/bin/env bash
# Benchmark (not a test): events from the driver's callbacks (through the
# filter-manager double) to the service's JSON lines under Wine, at the
# default ring size (128). Prints a Markdown table for docs/performance.md
# ("Event service").
#
#   sustained: one requester thread, every operation a recorded match, the
#              service running: events per second from the first callback
#              to the last JSON line, and events lost (EventsLost lines);
#   burst:     BURST operations from 8 threads while the service runs,
#              then what the service wrote and reported lost.
#
# usage: scripts/bench-events.sh [SUSTAINED_OPS [BURST_OPS]]   (defaults 4000, 100000)
# Builds what it needs like scripts/bench-callbacks.sh. Wall-clock figures
# on a shared machine move by +-30 %.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
OPS=${1:-4000}
BURST=${2:-100000}
TGT=${CARGO_TARGET_DIR:-$ROOT/target}
set -e
cargo build -q --release --locked -p pipectl
cargo build -q --release --locked -p pipectl -p pipesensor-service --target x86_64-pc-windows-gnu
mkdir -p "$TGT/driver-test"
(cd driver && env -u PIPESENSOR_TEST_KEY cargo build -q --release --locked)
SYS=driver/target/x86_64-pc-windows-msvc/release/pipesensor.dll
driver/testing/fltmgr/build.sh "$TGT/driver-test" "$SYS" >/dev/null
x86_64-w64-mingw32-gcc -shared -O2 -o "$TGT/driver-test/bcryptprimitives.dll" tests/wine/processprng.c -ladvapi32
set +e

HERE=$ROOT
# shellcheck source=scripts/wine-lib.sh
. "$ROOT/scripts/wine-lib.sh"
wine_session bench-events
EV=$D/events
mkdir -p "$D/content"
cp "$SYS" "$D/pipesensor.sys"
cp "$TGT/driver-test/fltmgr.sys" "$TGT/driver-test/fltctl.exe" "$TGT/driver-test/bcryptprimitives.dll" "$D/"
cp "$TGT/x86_64-pc-windows-gnu/release/pipectl.exe" "$TGT/x86_64-pc-windows-gnu/release/pipesensor-service.exe" "$D/"
"$TGT/release/pipectl" compile tests/wine/rules-v1 -o "$D/content/C-00000291-00000001.sys" --sequence 1 \
  >"$LOG/compile" 2>&1 || { echo "compile failed: $(cat "$LOG/compile")"; exit 1; }
wine_boot
W override reg add 'HKCU\Software\Wine\DllOverrides' /v fltmgr.sys /t REG_SZ /d native /f
create_service
reg_set ContentDirectory REG_SZ '\??\C:\pipesensor\content'
reg_set RequireSignature REG_DWORD 0
reg_set RescanIntervalSeconds REG_DWORD 0
BIN='C:\pipesensor\pipesensor-service.exe service --json C:\pipesensor\events\pipe-events.jsonl --max-bytes 1073741824 --status-secs 1'
W sc-create-svc sc create PipeSensorEvents type= own start= demand binPath= "$BIN"
start_driver "bench" >/dev/null
W info 'C:\pipesensor\fltctl.exe' info
[ "$(val info filtering)" = 1 ] || { echo "the double is not bound (see $LOG/info.out)"; exit 1; }
W sc-start-svc sc start PipeSensorEvents
for _ in $(seq 1 60); do grep -qs '"EventID":102' "$EV"/*.jsonl && break; sleep 0.5; done

# lines NAME -> "count first_utc last_arrival_ns lost"
count() { # PIPE-NAME EXPECTED SECONDS: waits until EXPECTED lines (or the time is up)
  python3 - "$EV" "$1" "$2" "$3" <<'PY'
import glob, json, os, sys, time
d, name, want, secs = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
end = time.time() + secs
last_n, last_change = -1, time.time()
while True:
    n, lost = 0, 0
    for f in glob.glob(os.path.join(d, "*.jsonl")):
        for l in open(f, encoding="utf-8"):
            if name in l:
                n += 1
            elif '"EventID":114' in l:
                lost = max(lost, json.loads(l)["TotalLost"])
    if n != last_n:
        last_n, last_change = n, time.time()
    if n >= want or time.time() > end or time.time() - last_change > 5:
        print(n, lost, "%.3f" % (last_change))
        break
    time.sleep(0.05)
PY
}

T0=$(date +%s.%N)
W_TIMEOUT=1800 W sustained 'C:\pipesensor\fltctl.exe' stress --threads 1 --ops "$OPS" --entry 'pipe:-:\postex_sustained'
read -r N1 LOST1 TLAST1 <<<"$(count 'postex_sustained' "$OPS" 600)"
RATE1=$(python3 -c "print(round($N1 / ($TLAST1 - $T0)))")
CB1=$(val sustained stress.callbacks_per_second)

T0=$(date +%s.%N)
W_TIMEOUT=3600 W burst 'C:\pipesensor\fltctl.exe' stress --threads 8 --ops $((BURST / 8)) --entry 'pipe:-:\postex_burst' --entry 'create:-:\msagent_burst'
read -r N2 LOST2 TLAST2 <<<"$(count '_burst' $((BURST / 8 * 8)) 1200)"
RATE2=$(python3 -c "print(round($N2 / ($TLAST2 - $T0)))")
CB2=$(val burst stress.callbacks_per_second)
W sc-stop-svc sc stop PipeSensorEvents
stop_driver "bench" >/dev/null

echo
echo "$(nproc) cores (shared), $(date -u +%Y-%m-%d), Wine $(wine --version 2>/dev/null | tr -d '\r'); ring 128; rules tests/wine/rules-v1"
echo
echo "| run | operations | callbacks/s (double) | JSON lines written | events/s callback → JSON line | events lost (TotalLost) |"
echo "|---|---:|---:|---:|---:|---:|"
echo "| sustained, 1 thread | $OPS | $CB1 | $N1 | $RATE1 | $LOST1 |"
echo "| burst, 8 threads | $((BURST / 8 * 8)) | $CB2 | $N2 | $RATE2 | $((LOST2 - LOST1)) |"
