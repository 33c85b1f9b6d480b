#!/usr/bin/env bash
# Benchmark (not a test): events from the driver's callbacks (through the
# filter-manager double) to the service's JSON lines under Wine, at the
# default ring size (sensor_core::ring::RING_CAP, 128). Prints Markdown
# tables for docs/performance.md ("Event service").
#
#   search: `fltctl stress --rate` offers a known rate: 8 of the double's
#           threads share a token bucket, every operation a user-mode
#           request of the client process and a recorded match, for
#           STEP_SECONDS. A step is OK (the threads delivered >= 90 % of the
#           rate and nothing was lost), LOSS, or SHORT (nothing lost, but
#           the threads were saturated below the rate). Rates double from
#           RATE_START while steps are OK, then bisect between the highest OK
#           and the lowest LOSS or SHORT rate (to within 10 %); the highest
#           OK rate is run once more for CONFIRM_SECONDS. Loss-free means the
#           service's JSON lines for the step = the events the driver
#           recorded (STATUS events_total) and nothing was overwritten
#           (events_overwritten, the service's EventsLost).
#   client: one step from the client's own threads (`fltctl rate`, a token
#           bucket over QueryPerformanceCounter, THREADS threads, CLIENT_RATE
#           offered): how fast user-mode requests get through winedevice's
#           one request thread;
#   CPU:    the share of one core each of wineserver, the driver's host
#           (winedevice.exe: driver, double, its threads) and the service
#           used during the step (/proc, user + system);
#   latency: callback (the line's UtcTime, written by the driver, cut to
#           the millisecond) to the moment a watcher polling the file every
#           millisecond saw the line: p50 / p99 / max per step;
#   burst:  BURST operations from 8 of the double's threads (as fast as
#           they go) while the service runs: lines written, events lost.
#
# Correctness, not timing: every step and the burst must account for every
# recorded event (JSON lines + EventsLost = recorded, and the service's
# EventsLost = the driver's overwritten count). The script fails loudly
# (exit 1) when lines are missing beyond what EventsLost reports; a rate it
# cannot offer or a lossy step is a result, never a failure.
#
# usage: scripts/bench-events.sh [STEP_SECONDS [BURST_OPS]]   (defaults 4, 100000)
# environment: RATE_START (100), RATE_MAX (50000), CONFIRM_SECONDS (10),
#              THREADS (4) and CLIENT_RATE (5000) for the client step,
#              WINE_TEST_KEEP=1 keeps the prefix.
# Builds what it needs like scripts/bench-callbacks.sh. Wall-clock figures
# on a shared machine move by +-30 %.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
STEP=${1:-4}
BURST=${2:-100000}
RATE_START=${RATE_START:-100}
RATE_MAX=${RATE_MAX:-50000}
THREADS=${THREADS:-4}
CLIENT_RATE=${CLIENT_RATE:-5000}
CONFIRM=${CONFIRM_SECONDS:-10}
TGT=${CARGO_TARGET_DIR:-$ROOT/target}
set -e
cargo build -q --release --locked -p pipectl
cargo build -q --release --locked -p pipectl -p pipesensor-service --target x86_64-pc-windows-gnu
mkdir -p "$TGT/driver-test"
(cd driver && env -u PIPESENSOR_TEST_KEY cargo build -q --release --locked)
SYS=driver/target/x86_64-pc-windows-msvc/release/pipesensor.dll
driver/testing/fltmgr/build.sh "$TGT/driver-test" "$SYS" >/dev/null
x86_64-w64-mingw32-gcc -shared -O2 -o "$TGT/driver-test/bcryptprimitives.dll" tests/wine/processprng.c -ladvapi32
RING=$(sed -n 's/^pub const RING_CAP: usize = \([0-9_]*\);.*/\1/p' sensor-core/src/ring.rs | tr -d _)
[ -n "$RING" ] || { echo "FAIL cannot read RING_CAP from sensor-core/src/ring.rs"; exit 1; }
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
grep -qs '"EventID":102' "$EV"/*.jsonl || { echo "FAIL the service never connected (see $LOG)"; exit 1; }

# The arrival watcher (wine-lib.sh arrivals_start), as in
# scripts/events-wine-test.sh.
ARRIVALS=$LOG/arrivals.txt
arrivals_start "$ARRIVALS"
# The watcher ends with the script, however it ends.
trap 'kill "$WATCHER" 2>/dev/null; wine_cleanup' EXIT

# The helper every step uses (python3 "$PY" ...).
PY=$LOG/events.py
cat >"$PY" <<'PY'
import datetime, glob, json, os, sys, time

def scan(d, marker):
    """Lines whose PipeName contains marker, and the highest TotalLost."""
    n, total_lost = 0, 0
    for f in glob.glob(os.path.join(d, "*.jsonl")):
        for l in open(f, encoding="utf-8"):
            if marker in l:
                n += 1
            elif '"EventID":114' in l:
                total_lost = max(total_lost, json.loads(l)["TotalLost"])
    return n, total_lost

cmd = sys.argv[1]
if cmd == "lost":  # DIR -> the service's TotalLost so far
    print(scan(sys.argv[2], "\0")[1])
elif cmd == "wait":  # DIR MARKER RECORDED LOST_BEFORE SECONDS -> "lines lost"
    d, marker, recorded, before, secs = sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), float(sys.argv[6])
    end, last, last_change = time.time() + secs, None, time.time()
    while True:
        n, total = scan(d, marker)
        if (n, total) != last:
            last, last_change = (n, total), time.time()
        # Done when every recorded event is accounted for, or nothing moved for 5 s.
        if n + total - before >= recorded or time.time() > end or time.time() - last_change > 5:
            print(n, total - before)
            break
        time.sleep(0.1)
elif cmd == "cpu":  # WINEPREFIX -> CPU seconds so far: wineserver, the driver's host, the service
    pre = ("WINEPREFIX=" + sys.argv[2]).encode()
    tck = os.sysconf("SC_CLK_TCK")
    cpu = {"wineserver": 0.0, "host": 0.0, "service": 0.0}
    for p in filter(str.isdigit, os.listdir("/proc")):
        try:
            if pre not in open("/proc/%s/environ" % p, "rb").read().split(b"\0"):
                continue
            # (Wine renames a process's comm after its main thread: match the command line.)
            cmd = open("/proc/%s/cmdline" % p, "rb").read().split(b"\0")[0].decode(errors="replace").lower()
            st = open("/proc/%s/stat" % p).read().rsplit(")", 1)[1].split()
            t = (int(st[11]) + int(st[12])) / tck  # utime + stime, every thread
            if os.path.basename(cmd).startswith("wineserver"):
                cpu["wineserver"] += t
            elif cmd.endswith("winedevice.exe") and "pipesensor.sys" in open("/proc/%s/maps" % p).read().lower():
                cpu["host"] += t  # the driver, the double and its threads
            elif cmd.endswith("pipesensor-service.exe"):
                cpu["service"] += t
        except OSError:
            continue
    print("%.2f %.2f %.2f" % (cpu["wineserver"], cpu["host"], cpu["service"]))
elif cmd == "latency":  # ARRIVALS MARKER -> "n p50 p99 max" (ms)
    ms = []
    for l in open(sys.argv[2], encoding="utf-8"):
        t, j = l.split(" ", 1)
        if sys.argv[3] not in j:
            continue
        e = json.loads(j)
        cb = datetime.datetime.strptime(e["UtcTime"], "%Y-%m-%d %H:%M:%S.%f").replace(tzinfo=datetime.timezone.utc)
        ms.append(int(t) / 1e6 - cb.timestamp() * 1e3)
    ms.sort()
    if not ms:
        print("0 - - -")
    else:
        q = lambda p: ms[min(len(ms) - 1, int(p * len(ms)))]
        print("%d %.1f %.1f %.1f" % (len(ms), q(0.50), q(0.99), ms[-1]))
PY

BAD=0
# counters NAME: events_total and events_overwritten from the driver's STATUS.
counters() {
  W "$1" 'C:\pipesensor\pipectl.exe' driver status || { echo "FAIL pipectl driver status (see $LOG/$1.err)"; exit 1; }
  echo "$(val "$1" counters.events_total) $(val "$1" counters.events_overwritten)"
}
# account NAME MARKER TOTAL0 OVER0 LOST0 WAIT_SECONDS: waits for the lines of
# MARKER; sets RECORDED LINES LOST (service) OVERWRITTEN (driver); fails
# loudly when events are missing beyond what EventsLost reports.
account() {
  local name=$1 marker=$2 t0=$3 o0=$4 l0=$5 secs=$6 t1 o1
  read -r t1 o1 <<<"$(counters "$name-status")"
  RECORDED=$((t1 - t0))
  OVERWRITTEN=$((o1 - o0))
  read -r LINES LOST <<<"$(python3 "$PY" wait "$EV" "$marker" "$RECORDED" "$l0" "$secs")"
  if [ $((LINES + LOST)) -ne "$RECORDED" ] || [ "$LOST" -ne "$OVERWRITTEN" ]; then
    echo "FAIL $name: $LINES JSON lines + $LOST reported lost (EventsLost) != $RECORDED recorded by the driver" \
      "(driver overwrote $OVERWRITTEN): events missing without a report (see $LOG)" >&2
    BAD=$((BAD + 1))
  fi
}

STEPS=$LOG/steps.txt
: >"$STEPS"
K=0
# step PRODUCER RATE SECONDS: one run at RATE, from the double's threads
# (PRODUCER double: `fltctl stress --rate`) or from the client's own threads
# (client: `fltctl rate`, each operation an IOCTL served on winedevice's one
# request thread); appends a row to $STEPS; sets OFFERED_OK (the producer
# reached 90 % of RATE) and LOSSFREE.
step() {
  local producer=$1 rate=$2 secs=$3 t0 o0 l0 marker ops achieved cb
  K=$((K + 1))
  marker="postex_rate_${K}_"
  read -r t0 o0 <<<"$(counters "s$K-status0")"
  l0=$(python3 "$PY" lost "$EV")
  local c0 c1; c0=$(python3 "$PY" cpu "$WINEPREFIX")
  if [ "$producer" = double ]; then
    W_TIMEOUT=$((secs * 4 + 120)) W "s$K-stress" 'C:\pipesensor\fltctl.exe' stress --threads 8 --rate "$rate/s" \
      --duration "$secs" --entry "pipe:-:\\${marker}create" --entry "create:-:\\${marker}connect" ||
      { echo "FAIL fltctl stress --rate (see $LOG/s$K-stress.out)"; exit 1; }
    ops=$(val "s$K-stress" stress.started); cb=$(val "s$K-stress" stress.callbacks)
    achieved=$(val "s$K-stress" stress.callbacks_per_second)
  else
    W_TIMEOUT=$((secs * 4 + 120)) W "s$K-rate" 'C:\pipesensor\fltctl.exe' rate --rate "$rate/s" --duration "$secs" \
      --threads "$THREADS" --entry "pipe:-:\\${marker}create" --entry "create:-:\\${marker}connect" ||
      { echo "FAIL fltctl rate (see $LOG/s$K-rate.out)"; exit 1; }
    ops=$(val "s$K-rate" rate.ops); cb=$(val "s$K-rate" rate.callbacks)
    achieved=$(val "s$K-rate" rate.achieved_per_second)
  fi
  c1=$(python3 "$PY" cpu "$WINEPREFIX")
  # CPU share of the run (100 % = one core) of wineserver / the driver's host / the service.
  local share; share=$(python3 -c "import sys; a, b = sys.argv[1].split(), sys.argv[2].split(); print(' / '.join('%.0f' % ((float(y) - float(x)) * 100 / $secs) for x, y in zip(a, b)))" "$c0" "$c1")
  account "s$K" "$marker" "$t0" "$o0" "$l0" 120
  [ "$RECORDED" = "$cb" ] || { echo "FAIL step $K: $cb callbacks but $RECORDED events recorded" >&2; BAD=$((BAD + 1)); }
  OFFERED_OK=0; [ $((achieved * 10)) -ge $((rate * 9)) ] && OFFERED_OK=1
  LOSSFREE=0; [ "$LOST" = 0 ] && [ "$LINES" = "$RECORDED" ] && LOSSFREE=1
  local n p50 p99 mx verdict=lossless
  read -r n p50 p99 mx <<<"$(python3 "$PY" latency "$ARRIVALS" "$marker")"
  [ "$LOSSFREE" = 1 ] || verdict="LOST $LOST"
  [ "$OFFERED_OK" = 1 ] || verdict="$verdict, producer short of the rate"
  echo "| $K | $producer | $rate | ${secs} s | $ops | $achieved | $RECORDED | $LINES | $LOST | $p50 | $p99 | $mx | $share | $verdict |" | tee -a "$STEPS" >&2
  LAST_LOST=$LOST; LAST_RECORDED=$RECORDED; LAST_ACHIEVED=$achieved; LAST_P50=$p50; LAST_P99=$p99; LAST_MAX=$mx
}

echo "search: $STEP s steps from $RATE_START/s, 8 of the double's threads, ring $RING" >&2
# A step is OK (the producer delivered >= 90 % of the offered rate and
# nothing was lost), LOSS, or SHORT (nothing lost, but the producer could
# not deliver the rate: its threads were saturated, and what they offered
# is not the rate asked for). Offered rates double while steps are OK, then
# bisect between the highest OK and the lowest LOSS or SHORT to within 10 %.
BEST=0 BEST_ACH=0 HI=0 FIRST_LOSS=0 FIRST_LOSS_TXT="" SHORT_TXT=""
classify() { # RATE
  if [ "$LOSSFREE" = 0 ]; then
    if [ "$FIRST_LOSS" = 0 ] || [ "$1" -lt "$FIRST_LOSS" ]; then
      FIRST_LOSS=$1; FIRST_LOSS_TXT="offered $1/s (reached $LAST_ACHIEVED/s): $LAST_LOST of $LAST_RECORDED lost"
    fi
  elif [ "$OFFERED_OK" = 0 ]; then
    SHORT_TXT="offered $1/s, the double's threads reached $LAST_ACHIEVED/s, nothing lost"
  else
    BEST=$1 BEST_ACH=$LAST_ACHIEVED; return 0
  fi
  if [ "$HI" = 0 ] || [ "$1" -lt "$HI" ]; then HI=$1; fi
  return 1
}
r=$RATE_START
while [ "$r" -le "$RATE_MAX" ]; do
  step double "$r" "$STEP"
  classify "$r" || break
  r=$((r * 2))
done
if [ "$HI" -gt 0 ]; then
  while [ $((HI - BEST)) -gt $((BEST / 10)) ] && [ $((HI - BEST)) -gt 10 ]; do
    mid=$(((BEST + HI) / 2))
    step double "$mid" "$STEP"
    classify "$mid"
  done
fi
# The client's own threads: how fast a user-mode requester gets operations
# through winedevice's one request thread (one step, offered well above it).
step client "$CLIENT_RATE" "$STEP"
CLIENT_TXT="offered $CLIENT_RATE/s, reached $LAST_ACHIEVED/s: $LAST_RECORDED events, $LAST_LOST lost"
CONFIRM_TXT="no loss-free rate"
if [ "$BEST" -gt 0 ]; then
  step double "$BEST" "$CONFIRM"
  CONFIRM_TXT="$BEST/s (reached $BEST_ACH/s in the search); again for $CONFIRM s: reached $LAST_ACHIEVED/s, $LAST_RECORDED events, $LAST_LOST lost; callback to line p50 $LAST_P50 ms, p99 $LAST_P99 ms, max $LAST_MAX ms"
fi
arrivals_stop

# The burst, as fast as 8 of the double's threads go.
read -r BT0 BO0 <<<"$(counters burst-status0)"
BL0=$(python3 "$PY" lost "$EV")
BC0=$(python3 "$PY" cpu "$WINEPREFIX")
W_TIMEOUT=3600 W burst 'C:\pipesensor\fltctl.exe' stress --threads 8 --ops $((BURST / 8)) --entry 'pipe:-:\postex_burst' --entry 'create:-:\msagent_burst'
account burst '_burst' "$BT0" "$BO0" "$BL0" 1200
BC1=$(python3 "$PY" cpu "$WINEPREFIX")
# CPU seconds of the burst (wineserver / host / service), and the service's per line written.
BCPU=$(python3 -c "import sys; a, b = sys.argv[1].split(), sys.argv[2].split(); d = [float(y) - float(x) for x, y in zip(a, b)]; print('%.1f / %.1f / %.1f s; service %.0f us per line' % (d[0], d[1], d[2], d[2] * 1e6 / max(1, $LINES)))" "$BC0" "$BC1")
CB2=$(val burst stress.callbacks_per_second)
W sc-stop-svc sc stop PipeSensorEvents
stop_driver "bench" >/dev/null

echo
echo "$(nproc) cores (shared, load $(cut -d' ' -f1-3 /proc/loadavg)), $(date -u +%Y-%m-%d), Wine $(wine --version 2>/dev/null | tr -d '\r'); ring $RING; rules tests/wine/rules-v1"
echo
echo "| step | producer | offered /s | for | operations | achieved /s | recorded | JSON lines | lost | p50 ms | p99 ms | max ms | CPU % wineserver / host / service | |"
echo "|---:|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---|"
cat "$STEPS"
echo
echo "- highest loss-free rate the producer delivered: $CONFIRM_TXT"
echo "- first losing rate: ${FIRST_LOSS_TXT:-none in the search}"
[ -z "$SHORT_TXT" ] || echo "- producer saturated: $SHORT_TXT"
echo "- the client's own threads ($THREADS, synchronous IOCTLs): $CLIENT_TXT"
echo "- burst, 8 of the double's threads: $((BURST / 8 * 8)) operations at $CB2 callbacks/s: $RECORDED recorded, $LINES JSON lines, $LOST lost (EventsLost; driver overwrote $OVERWRITTEN); CPU wineserver / host / service $BCPU"
if [ "$BAD" -gt 0 ]; then
  echo "FAIL $BAD run(s) lost events without reporting them (see above)"
  exit 1
fi
