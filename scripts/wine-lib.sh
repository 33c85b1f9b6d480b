# Shared by every Wine script (scripts/wine-*.sh, events-wine-test.sh,
# service-wine-test.sh, bench-callbacks.sh, bench-events.sh): arguments, a
# Wine session in a fresh prefix, running Windows programs with their output
# in files, the PipeSensor service, the filter-manager double, the event
# service and its JSON lines, and pass/fail bookkeeping. Source it; it defines functions and variables only
# (wine_session starts the session).
#
# Facts these rely on (FACTS.md "Wine"): Wine prints CRLF; its background
# processes inherit stdout, so output always goes to files; the prefix must
# be fully booted (wineboot -i; wineserver -w) before services are created;
# one `wineserver -p` is kept alive so services survive between commands;
# Wine can report a kernel service RUNNING before DriverEntry returned.

FAILS=0
PASSES=0
pass() { echo "ok   $*"; PASSES=$((PASSES + 1)); }
fail() { echo "FAIL $*"; FAILS=$((FAILS + 1)); }

# wine_args USAGE VAR... -- ARG...: one ARG per VAR, each an existing file;
# sets VAR to its absolute path. Otherwise prints the script's usage (the
# sed range USAGE of its header) and exits 2, or names the missing file and
# exits 1: a Wine script never skips.
wine_args() {
  local usage=$1 names=() n
  shift
  while [ $# -gt 0 ] && [ "$1" != -- ]; do names+=("$1"); shift; done
  shift
  if [ $# -ne ${#names[@]} ]; then
    sed -n "$usage" "$0"
    exit 2
  fi
  for n in "${names[@]}"; do
    [ -f "$1" ] || { echo "FAIL missing $1"; exit 1; }
    printf -v "$n" '%s' "$(realpath "$1")"
    shift
  done
}
# wine_stage FILE NAME [FILE NAME]...: copies each FILE to C:\pipesensor\NAME.
wine_stage() {
  while [ $# -ge 2 ]; do cp "$1" "$D/$2"; shift 2; done
}

# wine_session TAG: a fresh prefix (WINEPREFIX, LOG, D = C:\pipesensor,
# EV = C:\pipesensor\events),
# removed at exit unless WINE_TEST_KEEP=1.
wine_session() {
  local t
  for t in wine wineserver wineboot timeout setsid pgrep; do
    command -v "$t" >/dev/null || { echo "FAIL missing tool $t"; exit 1; }
  done
  export WINEPREFIX
  WINEPREFIX=$(mktemp -d "/tmp/pipesensor-$1.XXXXXX")
  export WINEDEBUG=err-all,fixme-all,+debugstr
  export WINEDLLOVERRIDES="mscoree,mshtml="
  LOG=$WINEPREFIX/test-logs
  D=$WINEPREFIX/drive_c/pipesensor
  EV=$D/events
  mkdir -p "$LOG" "$D"
  echo "wine prefix: $WINEPREFIX (logs in $LOG)"
  trap wine_cleanup EXIT
}
wine_cleanup() {
  wineserver -k >/dev/null 2>&1 || true
  if [ "${WINE_TEST_KEEP:-0}" != 1 ]; then rm -rf "$WINEPREFIX"; fi
}
# Boots the prefix and keeps a server alive (call after wine_session).
wine_boot() {
  local t0=$SECONDS
  wineboot -i >"$LOG/wineboot.out" 2>&1
  wineserver -w
  start_server
  echo "prefix ready in $((SECONDS - t0))s"
}

# Runs a Windows program; stdout (CRLF stripped) in $LOG/NAME.out, stderr
# in $LOG/NAME.err. Output always goes to files: Wine's background
# processes inherit stdout and would hang a pipe.
W() {
  local name=$1; shift
  timeout "${W_TIMEOUT:-120}" wine "$@" >"$LOG/$name.raw" 2>"$LOG/$name.err" </dev/null
  local rc=$?
  tr -d '\r' <"$LOG/$name.raw" >"$LOG/$name.out"
  return $rc
}
N=0
ctl() { N=$((N + 1)); LAST="$(printf '%03d' $N)-$1"; shift; W "$LAST" 'C:\pipesensor\pipectl.exe' driver "$@"; }
val() { grep -m1 "^$2=" "$LOG/$1.out" | cut -d= -f2-; }
# expect KEY VALUE DESCRIPTION (against the last ctl output)
expect() {
  local v; v=$(val "$LAST" "$1")
  if [ "$v" = "$2" ]; then pass "$3 ($1=$v)"; else fail "$3: $1='$v', expected '$2' (see $LOG/$LAST.out)"; fi
}
# Every line the driver and the test double printed so far (DbgPrint goes
# to the stderr of whichever Wine process started the service host).
driver_log() {
  cat "$LOG"/*.err "$LOG/wineserver.out" "$LOG/wineboot.out" 2>/dev/null | tr -d '\r'
}
service_state() { # SERVICE -> its state as `sc query` prints it
  W "sc-query-$1" sc query "$1" >/dev/null
  awk '/STATE/{print $NF}' "$LOG/sc-query-$1.out"
}
service_wait() { # SERVICE STATE SECONDS
  local i
  for i in $(seq 1 $(( $3 * 4 ))); do
    [ "$(service_state "$1")" = "$2" ] && return 0
    sleep 0.25
  done
  return 1
}
# svc start|stop SERVICE STATE DESCRIPTION: one check, the state within 30 s.
svc() {
  W "sc-$1-$2" sc "$1" "$2"
  if service_wait "$2" "$3" 30; then pass "$4: $2 $3"; else fail "$4: $2 not $3 ($(service_state "$2"))"; fi
}
svc_state() { service_state PipeSensor; }
wait_state() { service_wait PipeSensor "$1" "$2"; } # STATE SECONDS
start_driver() { # DESCRIPTION
  W sc-start sc start PipeSensor
  if wait_state RUNNING 20; then pass "$1: service RUNNING"; else fail "$1: service not RUNNING ($(svc_state))"; return; fi
  # Wine can report RUNNING before DriverEntry has returned (it scans and
  # verifies the content directory before it creates the control device):
  # wait until the device answers STATUS.
  local i
  for i in $(seq 1 40); do
    W sc-ready 'C:\pipesensor\pipectl.exe' driver status && return 0
    sleep 0.5
  done
  fail "$1: the control device does not answer STATUS (see $LOG/sc-ready.err)"
}
stop_driver() { # DESCRIPTION
  W sc-stop sc stop PipeSensor
  if wait_state STOPPED "${STOP_WAIT_SECONDS:-20}"; then pass "$1: service STOPPED"; else fail "$1: service not STOPPED ($(svc_state))"; fi
}
# The winedevice.exe of *this* prefix that has the driver mapped.
host_pid() {
  local p
  for p in $(pgrep -f winedevice.exe); do
    if { tr '\0' '\n' <"/proc/$p/environ"; } 2>/dev/null | grep -qx "WINEPREFIX=$WINEPREFIX" &&
      grep -qi pipesensor.sys "/proc/$p/maps" 2>/dev/null; then
      echo "$p"
      return 0
    fi
  done
  return 1
}
start_server() {
  # Keep one server alive across steps (services stop when it exits).
  setsid wineserver -p </dev/null >>"$LOG/wineserver.out" 2>&1 &
  sleep 1
}
# Ends this prefix's Wine session and starts a new one (the registry
# survives; every service is stopped, every host process gone).
restart_session() {
  wineserver -k >/dev/null 2>&1
  wineserver -w
  start_server
}
# Simulates a crash of the machine: SIGKILL the winedevice.exe hosting the
# driver (no unload runs), then take the rest of this prefix's Wine session
# down too. (Wine 8's services.exe keeps a dead host's service marked
# RUNNING and refuses to start it again in the same session; a new session
# is what a rebooted machine is anyway.) The registry survives: the driver
# flushed its guard state with ZwFlushKey before activating content.
kill_host() { # DESCRIPTION
  local p; p=$(host_pid) || { fail "$1: no host process found"; return; }
  kill -9 "$p"
  local i
  for i in $(seq 1 40); do [ -d "/proc/$p" ] || break; sleep 0.25; done
  if [ -d "/proc/$p" ]; then fail "$1: host $p survived SIGKILL"; return; fi
  restart_session
  pass "$1: host $p killed"
}
SVC_KEY='HKLM\System\CurrentControlSet\Services\PipeSensor'
reg_set() { W "reg-$1" reg add "$SVC_KEY" /v "$1" /t "$2" /d "$3" /f || fail "reg add $1"; }
# Creates the PipeSensor service for C:\pipesensor\pipesensor.sys, with the
# test-only value BugCheckCallback=0: Wine 8's KeRegisterBugCheckReasonCallback
# is a stub that raises when called (docs/install.md, test-only values). The
# driver does not detect Wine; without this value it would call the stub.
create_service() {
  W sc-create sc create PipeSensor type= kernel start= demand binPath= 'C:\pipesensor\pipesensor.sys' || true
  reg_set BugCheckCallback REG_DWORD 0
}

# The filter-manager double (issue 10, driver/testing/fltmgr): bind_double
# sets the DLL override `fltmgr.sys=n` (before the driver's host process
# starts) so Wine loads C:\pipesensor\fltmgr.sys instead of its stub;
# fc NAME ARGS... runs the double's client, output in $LOG/$LAST.out.
bind_double() {
  W override reg add 'HKCU\Software\Wine\DllOverrides' /v fltmgr.sys /t REG_SZ /d native /f || fail "DLL override"
}
fc() { N=$((N + 1)); LAST="$(printf '%03d' $N)-$1"; shift; W "$LAST" 'C:\pipesensor\fltctl.exe' "$@"; }

# The event service (issue 11): PipeSensorEvents writing JSON lines to
# C:\pipesensor\events (EV). create_event_service ARGS...: its extra
# command-line arguments.
create_event_service() {
  local bin="C:\\pipesensor\\pipesensor-service.exe service --json C:\\pipesensor\\events\\pipe-events.jsonl $*"
  W sc-create-svc sc create PipeSensorEvents type= own start= demand binPath= "$bin" || fail "sc create PipeSensorEvents"
}
# arrivals_start FILE: a watcher polls EV every millisecond and writes each
# new line of its JSON files to FILE with the wall-clock time (ns, UTC) it
# was first seen; WATCHER is its pid. arrivals_stop ends it.
arrivals_start() {
  rm -f "$LOG/watch-stop"
  python3 - "$EV" "$1" "$LOG/watch-stop" <<'PY' &
import glob, os, sys, time
d, out, stop = sys.argv[1:4]
seen = {}
with open(out, "w") as o:
    while not os.path.exists(stop):
        for f in glob.glob(os.path.join(d, "*.jsonl")):
            try:
                size = os.path.getsize(f)
            except OSError:
                continue
            pos = seen.get(f, 0)
            if size > pos:
                now = time.time_ns()
                with open(f, "rb") as r:
                    r.seek(pos)
                    data = r.read()
                whole = data[: data.rfind(b"\n") + 1]
                for line in whole.splitlines():
                    o.write("%d %s\n" % (now, line.decode()))
                o.flush()
                seen[f] = pos + len(whole)
        time.sleep(0.001)
PY
  WATCHER=$!
}
arrivals_stop() { touch "$LOG/watch-stop"; wait "$WATCHER"; }
# events_q FILTER: how many JSON lines (every file of EV) satisfy the Python
# expression FILTER over `e` (a missing key reads as "": health events have
# no pipe fields).
events_q() {
  python3 - "$EV" "$1" <<'PY'
import glob, json, os, sys
class Line(dict):
    def __missing__(self, key):
        return ""
n = 0
for f in glob.glob(os.path.join(sys.argv[1], "*.jsonl")):
    for line in open(f, encoding="utf-8"):
        e = json.loads(line, object_hook=Line)
        if eval(sys.argv[2], {}, {"e": e}):
            n += 1
print(n)
PY
}
# events_wait FILTER COUNT SECONDS: until at least COUNT lines satisfy FILTER.
events_wait() {
  local i
  for i in $(seq 1 $(( $3 * 10 ))); do
    [ "$(events_q "$1")" -ge "$2" ] && return 0
    sleep 0.1
  done
  return 1
}
# events_check FILTER COUNT SECONDS DESCRIPTION: one check over the event lines.
events_check() {
  if events_wait "$1" "$2" "$3"; then pass "$4"; else fail "$4: $(events_q "$1") lines match $1, expected $2"; fi
}
