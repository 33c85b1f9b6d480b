# Shared by the Wine scripts (scripts/wine-test.sh, scripts/wine-callbacks.sh,
# scripts/bench-callbacks.sh): a Wine session in a fresh prefix, running
# Windows programs with their output in files, the PipeSensor service, and
# pass/fail bookkeeping. Source it; it defines functions and variables only
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

# wine_session TAG: a fresh prefix (WINEPREFIX, LOG, D = C:\pipesensor),
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
svc_state() {
  W "sc-query" sc query PipeSensor >/dev/null
  awk '/STATE/{print $NF}' "$LOG/sc-query.out"
}
wait_state() { # STATE SECONDS
  local i
  for i in $(seq 1 $(( $2 * 4 ))); do
    [ "$(svc_state)" = "$1" ] && return 0
    sleep 0.25
  done
  return 1
}
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
