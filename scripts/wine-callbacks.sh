#!/usr/bin/env bash
# Runs the driver's real minifilter callbacks under Wine through the
# filter-manager double (driver/testing/fltmgr, issue 10). Never skips: a
# missing tool or file is a failure.
#
# usage: scripts/wine-callbacks.sh SYS FLTMGR FLTCTL PIPECTL_EXE PIPECTL_HOST SHIM_DLL
#   SYS           the driver image (.sys)
#   FLTMGR        the double (fltmgr.sys), placed beside the driver
#   FLTCTL        the double's client (fltctl.exe)
#   PIPECTL_EXE   pipectl built for x86_64-pc-windows-gnu
#   PIPECTL_HOST  pipectl built for the host (compiles the test content)
#   SHIM_DLL      bcryptprimitives.dll (tests/wine/processprng.c)
#
# Environment: WINE_TEST_KEEP=1 keeps the prefix; WINE_STRESS_SECONDS
# (default 20) is how long each stress phase runs while the test changes
# content and mode around it.
#
# Wine binds its own stub fltmgr.sys unless the DLL override `fltmgr.sys=n`
# is set (HKCU\Software\Wine\DllOverrides, before the driver's host process
# starts); phase 1 proves the double is the one bound (its control device
# answers, the filter handle the driver got is the double's and not the
# stub's 0xdeadbeaf) and every later phase depends on it. Phase 10 removes
# the override and checks the driver still starts and unloads under the stub.
set -uo pipefail

HERE=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=scripts/wine-lib.sh
. "$HERE/scripts/wine-lib.sh"
wine_args '2,17p' SYS FLTMGR FLTCTL PIPECTL_EXE PIPECTL SHIM -- "$@"
SIGMA_PSEXEC=$HERE/third_party/sigma/rules/windows/pipe_created/pipe_created_sysinternals_psexec_default_pipe_susp_location.yml
[ -f "$SIGMA_PSEXEC" ] || { echo "FAIL missing $SIGMA_PSEXEC (the vendored Sigma rules, third_party/sigma)"; exit 1; }
STRESS_SECONDS=${WINE_STRESS_SECONDS:-20}

wine_session callbacks
T0=$SECONDS

# --- files and content --------------------------------------------------------
CONTENT=$D/content
mkdir -p "$CONTENT" "$D/staging"
# The double (fltmgr.sys) beside the driver: searched first.
wine_stage "$SYS" pipesensor.sys "$FLTMGR" fltmgr.sys "$FLTCTL" fltctl.exe "$PIPECTL_EXE" pipectl.exe "$SHIM" bcryptprimitives.dll
# Content: the Wine test rules (1001 \postex_* block, 1002 \msagent_*,
# 1003 Image ends \evil.exe, 1004 Image under C:\Windows\) and SigmaHQ's
# "PsExec Tool Execution From Suspicious Locations" (PipeName \PSEXESVC and
# Image contains :\Users\Public\ ...). Every sequence has the block rule.
compile() { # SEQ RULES... -> file
  "$PIPECTL" compile "${@:3}" "$SIGMA_PSEXEC" -o "$2" --sequence "$1" >"$LOG/compile-$1" 2>&1 || fail "compile content $1"
}
compile 1 "$CONTENT/C-00000291-00000001.sys" "$HERE/tests/wine/rules-v1"
for seq in 2 3 4 5 6 7 8 9; do
  if [ $((seq % 2)) = 0 ]; then r=rules-v2; else r=rules-v1; fi
  compile "$seq" "$D/staging/C-00000291-0000000$seq.sys" "$HERE/tests/wine/$r"
done
# inspect prints `0xHEX (DECIMAL)`; driver events print the decimal id.
SIGMA_ID=$("$PIPECTL" inspect "$CONTENT/C-00000291-00000001.sys" | awk '/PsExec Tool Execution From Suspicious Locations/{gsub(/[()]/, "", $2); print $2; exit}')
# A decimal number or nothing: a changed inspect layout once yielded "medium"
# (the severity column) here, and the event check below then failed for a
# rule that did fire.
case $SIGMA_ID in
  '' | *[!0-9]*) fail "SigmaHQ psexec rule's decimal id not read from inspect (got '$SIGMA_ID')" ;;
  *) pass "SigmaHQ psexec rule compiled (id $SIGMA_ID)" ;;
esac

wine_boot
PUBLIC=$WINEPREFIX/drive_c/users/Public
mkdir -p "$PUBLIC"
cp "$FLTCTL" "$PUBLIC/fltctl.exe" # a second client image, where the Sigma rule looks
bind_double
create_service
reg_set ContentDirectory REG_SZ '\??\C:\pipesensor\content'
reg_set RequireSignature REG_DWORD 0
reg_set ProvenAfterSeconds REG_DWORD 3600
reg_set RescanIntervalSeconds REG_DWORD 0
# These phases measure the raw deny path (thousands of denies by one rule in
# the stress runs): the administrator's "off" for both circuit breakers
# (issue 15; scripts/wine-blocksafe.sh tests the breaker).
reg_set BreakerRule REG_SZ off
reg_set BreakerMachine REG_SZ off

# --- helpers --------------------------------------------------------------------
# fc NAME ARGS...: the double's client from C:\pipesensor; fcp: from C:\users\Public.
fcp() { N=$((N + 1)); LAST="$(printf '%03d' $N)-$1"; shift; W "$LAST" 'C:\users\Public\fltctl.exe' "$@"; }
# op NAME EXPECT(denied|allowed|not-attached|unfiltered) DESCRIPTION ARGS...:
# one operation; checks the outcome and the callback contract.
op() {
  local name=$1 want=$2 what=$3; shift 3
  fc "$name" op "$@"
  local o p s v
  o=$(val "$LAST" outcome); p=$(val "$LAST" preop); s=$(val "$LAST" status); v=$(val "$LAST" violations)
  local got
  case "$o/$p/$s" in
    callback/complete/0xc0000022) got=denied ;;
    callback/success_no_callback/0x00000000) got=allowed ;;
    not-attached/none/0x00000000) got=not-attached ;;
    unfiltered/none/0x00000000) got=unfiltered ;;
    *) got="$o/$p/$s" ;;
  esac
  if [ "$got" = "$want" ] && [ "$v" = 0x0 ]; then pass "$what: $got"
  else fail "$what: $got (violations $v), expected $want (see $LOG/$LAST.out)"; fi
}
status_val() { ctl "status-$1" status >/dev/null; val "$LAST" "counters.$1"; }
# The newest event line matching a grep pattern, after `ctl events`.
events() { ctl "events-$1" events --max 256 >/dev/null; }
event_with() { grep -m1 -- "$1" "$LOG/$LAST.out"; }
check_event() { # PATTERN DESCRIPTION
  if event_with "$1" >/dev/null; then pass "$2"; else fail "$2: no event matching '$1' (see $LOG/$LAST.out)"; fi
}
# wait_until SECONDS DESCRIPTION COMMAND...: polls COMMAND every 0.5 s.
wait_until() {
  local secs=$1 what=$2 i; shift 2
  for i in $(seq 1 $((secs * 2))); do
    "$@" && return 0
    sleep 0.5
  done
  fail "$what (not within ${secs}s)"
  return 1
}
double_val() { fc "info-$1" info >/dev/null; val "$LAST" "$1"; }
held_is() { [ "$(double_val held)" = "$1" ]; }
waiting_is() { [ "$(status_val work_waiting)" = "$1" ]; }
callbacks_above() { [ "$(double_val callbacks_total)" -gt "$1" ] 2>/dev/null; }
# Ops a stress client reports; "stress.X" from its output file.
sval() { grep -m1 "^stress.$2=" "$LOG/$1.out" | cut -d= -f2; }
check_stress() { # OUTPUT-NAME DESCRIPTION
  local f=$1 what=$2
  local started cb na uf fl
  started=$(sval "$f" started); cb=$(sval "$f" callbacks); na=$(sval "$f" not_attached)
  uf=$(sval "$f" unfiltered); fl=$(sval "$f" failed)
  if [ -n "$started" ] && [ "$started" -gt 0 ] && [ "$started" = $((cb + na + uf + fl)) ]; then
    pass "$what: every operation accounted for ($started = $cb callbacks + $na not attached + $uf unfiltered + $fl failed)"
  else fail "$what: operations not accounted for (started '$started', callbacks '$cb', not attached '$na', unfiltered '$uf', failed '$fl'; see $LOG/$f.out)"; fi
  [ "$(sval "$f" violations)" = 0 ] && pass "$what: no callback contract violation" || fail "$what: $(sval "$f" violations) operations broke the callback contract"
  [ "$(sval "$f" block_leaks)" = 0 ] && pass "$what: no block-rule name got through in enforce mode ($(sval "$f" block_in_window) checked in enforce windows)" ||
    fail "$what: $(sval "$f" block_leaks) block-rule names got through in enforce mode"
  [ "$(sval "$f" block_in_window)" -gt 0 ] 2>/dev/null && pass "$what: block-rule names were issued inside enforce windows" || fail "$what: no block-rule name ran inside an enforce window"
  [ "$(sval "$f" kernel_ops)" -gt 0 ] 2>/dev/null && pass "$what: kernel-mode operations included ($(sval "$f" kernel_ops))" || fail "$what: no kernel-mode operation"
}

# --- 1. the double is the one bound ----------------------------------------------
start_driver "start with the double"
HANDLE_LINE=$(driver_log | grep -a "PipeSensor: filter registered (handle " | tail -1)
HANDLE=$(sed -n 's/.*filter registered (handle \(0x[0-9a-f]*\)).*/\1/p' <<<"$HANDLE_LINE")
if [ -n "$HANDLE" ] && [ "$HANDLE" != 0xdeadbeaf ]; then pass "driver got filter handle $HANDLE (not Wine's stub 0xdeadbeaf)"
else fail "filter handle '$HANDLE': Wine's stub fltmgr.sys is bound, not the double (line: '$HANDLE_LINE')"; fi
if fc info info; then pass "the double's control device answers"; else fail "the double's control device does not answer (see $LOG/$LAST.out)"; fi
expect filter_handle "$HANDLE" "the double handed out the handle the driver logged"
expect registered 1 "filter registered with the double"
expect filtering 1 "FltStartFiltering ran"
expect registration.size 112 "FLT_REGISTRATION size"
expect registration.version 0x203 "FLT_REGISTRATION version 2.3"
expect registration.flags 0x2 "FLTFL_REGISTRATION_SUPPORT_NPFS_MSFS"
expect registration.problems 0x0 "registration passes the double's checks"
expect operations 2 "two operations before the terminator"
expect operation.0 "major:1 pre:1 post:0" "IRP_MJ_CREATE_NAMED_PIPE: pre-operation only"
expect operation.1 "major:0 pre:1 post:0" "IRP_MJ_CREATE: pre-operation only"
expect registration.unload_installed 1 "the double installed DriverUnload (as the filter manager does)"
expect instance.npfs.setup 0x00000000 "InstanceSetup on the named-pipe volume: success"
expect instance.npfs.attached 1 "attached to NPFS"
expect instance.disk.setup 0xc01c000f "InstanceSetup on NTFS: STATUS_FLT_DO_NOT_ATTACH"
expect instance.disk.attached 0 "not attached to NTFS"
[ "$(val "$LAST" caller_pid)" = "$(val "$LAST" self_pid)" ] && pass "the double sees the client's real pid ($(val "$LAST" self_pid))" ||
  fail "caller pid $(val "$LAST" caller_pid) != client pid $(val "$LAST" self_pid)"
DOUBLE_POOL_BASE=$(val "$LAST" pool_live)

# --- 2. monitor mode: alert ------------------------------------------------------
ctl mode-monitor mode monitor >/dev/null
op m1 allowed "monitor: block-rule name passes" --name '\postex_m1'
M1_PID=$(val "$LAST" self_pid)
[ "$(val "$LAST" requestor_pid)" = "$M1_PID" ] && pass "FltGetRequestorProcessId is the client's pid ($M1_PID)" || fail "requestor pid $(val "$LAST" requestor_pid) != client pid $M1_PID"
op m2 allowed "monitor: harmless name passes" --name '\harmless_m2'
events monitor
check_event "pid=$M1_PID kind=create decision=alert rule=1001 .* name=\\\\postex_m1 image=C:\\\\pipesensor\\\\fltctl.exe\$" \
  "monitor: alert event with the client's pid and its real image in DOS form (C:\\pipesensor\\fltctl.exe)"
[ "$(grep -c '^event ' "$LOG/$LAST.out")" = 1 ] && pass "monitor: one event (the harmless name records none)" || fail "monitor: $(grep -c '^event ' "$LOG/$LAST.out") events, expected 1"
ctl status-monitor status >/dev/null
[ "$(val "$LAST" counters.image_queried)" -ge 1 ] 2>/dev/null && pass "image path from ZwQueryInformationProcess (SeLocateProcessImageName: $(val "$LAST" counters.image_located) under Wine)" ||
  fail "no image path queried (counters: $(grep 'counters.image' "$LOG/$LAST.out" | tr '\n' ' '))"
expect counters.image_missing 0 "no callback without an image path"

# --- 3. enforce mode: deny --------------------------------------------------------
ctl mode-enforce mode enforce >/dev/null
expect mode enforce "enforce mode"
op e1 denied "enforce: block-rule pipe creation denied with STATUS_ACCESS_DENIED" --name '\postex_e1'
op e2 allowed "enforce: harmless pipe creation passes" --name '\harmless_e2'
op e3 denied "enforce: connect (IRP_MJ_CREATE) to a block-rule name denied" --create --name '\postex_e3'
op e4 allowed "enforce: connect to a harmless name passes" --create --name '\harmless_e4'
op e5 allowed "enforce: an alert rule's name passes" --name '\msagent_e5'
op e6 not-attached "an operation on the NTFS volume reaches no callback" --disk --name '\postex_e6'
events enforce
check_event "kind=create decision=deny rule=1001 .* name=\\\\postex_e1 " "enforce: deny event for the pipe creation"
check_event "kind=connect decision=deny rule=1001 .* name=\\\\postex_e3 " "enforce: connect event (IRP_MJ_CREATE) denied"
check_event "decision=alert rule=1002 .* name=\\\\msagent_e5 " "enforce: alert event for the alert rule"
if event_with 'postex_e6' >/dev/null; then fail "an event for the NTFS volume"; else pass "no event for the NTFS volume"; fi

# --- 4. name shapes (enforce) --------------------------------------------------------
ROOT0=$(status_val root_opens)
op s1 denied "relative to the NPFS root handle: 'postex_r1' denied" --relative --name 'postex_r1'
op s2 allowed "relative to the NPFS root handle: harmless passes" --relative --name 'harmless_r2'
op s3 allowed "the NPFS root itself (empty name) is not a pipe: passes" --name ''
op s4 allowed "the root by relative open with an empty name passes" --relative --name ''
op s5 allowed "the root as '\\' passes" --name '\'
[ "$(status_val root_opens)" = $((ROOT0 + 3)) ] && pass "3 root opens counted" || fail "root opens: $(val "$LAST" counters.root_opens), expected $((ROOT0 + 3))"
op s6 denied "longest UNICODE_STRING (32767 units) with a block-rule name denied" --name '\postex_' --pad-to-bytes 65534
expect name_bytes 65534 "FileName.Length 65534"
op s7 allowed "longest UNICODE_STRING, harmless, passes (matched in full, not cut)" --name '\harmless_' --pad-to-bytes 65534
op s8 denied "odd byte length (19) of a block-rule name denied" --name '\postex_o' --pad-to-bytes 19
op s9 allowed "odd byte length, harmless, passes" --name '\harmless_o' --pad-to-bytes 21
op s10 allowed "a 1-byte name (no whole unit) is the root: passes" --pad-to-bytes 1
op s11 denied "embedded NUL after a block-rule prefix denied" --name '\postex_\u{0000}hidden'
op s12 allowed "embedded NUL before a block-rule name: not that name, passes" --name '\x\u{0000}\postex_'
op s13 denied "unpaired high surrogate after a block-rule prefix denied" --name '\postex_\u{D800}'
op s14 allowed "unpaired low surrogate: a different name, passes" --name '\\u{DC00}postex_'
UD0=$(status_val unchecked_denied); NE0=$(val "$LAST" counters.name_errors)
op s15 denied "relative name longer than the name buffer (2000 units): decided unchecked, denied in enforce" --relative --name 'harmless_' --pad-to-bytes 4000
ctl status-s15 status >/dev/null
expect counters.unchecked_denied $((UD0 + 1)) "the unchecked denial is counted"
expect counters.name_errors $((NE0 + 1)) "the name error is counted"
op k1 denied "kernel-mode requestor: block-rule name denied" --kernel --name '\postex_k1'
K1_PID=$(val "$LAST" requestor_pid)
[ "$K1_PID" != "$(val "$LAST" self_pid)" ] && pass "kernel-mode requestor is the host process ($K1_PID), not the client" || fail "kernel-mode requestor pid $K1_PID is the client's"
op k2 allowed "kernel-mode requestor: harmless name passes" --kernel --name '\kharmless_k2'
events shapes
check_event "decision=deny rule=1001 .* name=\\\\postex_r1 " "relative open reported as \\postex_r1"
check_event "decision=deny rule=1001 .* name=\\\\postex_xxxx" "the 32767-unit name's event (its first units)"
check_event "pid=$K1_PID kind=create decision=deny rule=1001 .* name=\\\\postex_k1 image=C:\\\\windows\\\\system32\\\\winedevice.exe\$" \
  "kernel-mode event: the host's pid and image"
check_event "pid=$K1_PID kind=create decision=alert rule=1004 .* name=\\\\kharmless_k2 image=C:\\\\windows\\\\system32\\\\winedevice.exe\$" \
  "kernel-mode harmless name matches the C:\\Windows\\ image rule through the real image"

# --- 5. SigmaHQ rule with an Image condition, against the real client image ---------
ctl mode-monitor5 mode monitor >/dev/null
events before-sigma
fcp sigma-public op --name '\PSEXESVC'
PUB_PID=$(val "$LAST" self_pid)
fc sigma-pipesensor op --name '\PSEXESVC'
PS_PID=$(val "$LAST" self_pid)
events sigma
check_event "pid=$PUB_PID kind=create decision=alert rule=$SIGMA_ID .* name=\\\\PSEXESVC image=C:\\\\users\\\\Public\\\\fltctl.exe\$" \
  "SigmaHQ psexec rule matches \\PSEXESVC from C:\\users\\Public\\fltctl.exe (its real image)"
if grep -q "pid=$PS_PID " "$LOG/$LAST.out"; then fail "SigmaHQ psexec rule matched the client in C:\\pipesensor (not a suspicious location)"
else pass "SigmaHQ psexec rule does not match the same pipe from C:\\pipesensor\\fltctl.exe"; fi

# --- 6. working memory exhausted: the enforce-mode bypass is closed --------------------
# The double's HOLD operations block inside FltGetRequestorProcess, which the
# driver calls while it holds a working-memory slot: 16 held operations pin
# all 16 slots.
hold16() {
  local i
  for i in $(seq 1 16); do fc "hold-$i" op --hold --name "\\harmless_hold_$i" >/dev/null || fail "hold $i"; done
  wait_until 60 "16 operations held in the driver" held_is 16 && pass "16 operations hold all 16 working-memory slots"
}
release_all() { # DESCRIPTION EXPECTED-COUNT
  fc "release-$2" async-wait --release
  expect count "$2" "$1: every queued operation finished"
  local bad; bad=$(grep -E '^result\.[0-9]+\.violations=' "$LOG/$LAST.out" | grep -vc '=0x0$')
  [ "$bad" = 0 ] && pass "$1: no contract violation" || fail "$1: $bad operations broke the callback contract"
}
# 6a. The 17th waits and is checked once a slot frees (generous bound).
stop_driver "before the wait test"
reg_set WorkWaitMilliseconds REG_DWORD 60000
start_driver "start with a 60 s work wait"
ctl mode-enforce6 mode enforce >/dev/null
hold16
fc wait17 op --async --block --name '\postex_w17'
expect outcome queued "17th operation queued"
wait_until 60 "the 17th operation waits for working memory" waiting_is 1 && pass "the 17th operation waits (work_waiting=1)"
release_all "slots freed" 17
if grep -q '^result.16.status=0xc0000022$' "$LOG/$LAST.out"; then pass "the 17th operation was checked once a slot freed: denied"
else fail "the 17th operation: $(grep '^result.16' "$LOG/$LAST.out" | tr '\n' ' ')"; fi
ctl status-6a status >/dev/null
expect counters.work_exhausted 0 "no wait ran out"
expect counters.unchecked_denied 0 "nothing decided unchecked"
[ "$(val "$LAST" counters.work_waits)" -ge 1 ] 2>/dev/null && pass "the wait is counted (work_waits=$(val "$LAST" counters.work_waits))" || fail "work_waits not counted"
events 6a
check_event "decision=deny rule=1001 .* name=\\\\postex_w17 " "the 17th operation's deny names rule 1001 (evaluated, not unchecked)"
# 6b. The wait runs out: enforce denies, monitor allows, both counted.
stop_driver "before the exhaustion test"
reg_set WorkWaitMilliseconds REG_DWORD 300
start_driver "start with a 300 ms work wait"
ctl mode-enforce6b mode enforce >/dev/null
expect previous enforce "mode persisted across the restart"
hold16
op x1 denied "all slots busy, enforce: a block-rule name is denied (fail closed)" --name '\postex_x1'
op x2 denied "all slots busy, enforce: a harmless name is denied too (unchecked)" --name '\harmless_x2'
ctl mode-monitor6b mode monitor >/dev/null
op x3 allowed "all slots busy, monitor: allowed (unchecked)" --name '\postex_x3'
ctl status-6b status >/dev/null
expect counters.work_exhausted 3 "three waits ran out"
expect counters.unchecked_denied 2 "two unchecked denials (enforce)"
expect counters.unchecked_allowed 1 "one unchecked pass (monitor)"
expect counters.work_wait_ms 300 "WorkWaitMilliseconds in force"
release_all "slots freed after exhaustion" 16
stop_driver "after the exhaustion test"
reg_set WorkWaitMilliseconds REG_DWORD 1000

# --- 7. stress: 32 threads while content, rescans and mode change ---------------------
start_driver "start for the stress run"
ctl mode-enforce7 mode enforce >/dev/null
fc window-open7 window open >/dev/null || fail "window open"
ctl status-before-stress status >/dev/null
CB0=$(val "$LAST" counters.callbacks); DN0=$(val "$LAST" counters.denied)
STRESS_ENTRIES=(--entry 'pipe:b:\postex_s1' --entry 'pipe:-:\harmless_s2' --entry 'create:b:\postex_s3'
  --entry 'pipe:rb:postex_s4' --entry 'pipe:-:\msagent_s5' --entry 'create:-:\PSEXESVC' --entry 'pipe:-:\v2only')
rm -f "$D/stop-stress"
W_TIMEOUT=900 W stress7 'C:\pipesensor\fltctl.exe' stress --threads 32 --kernel-every-4th "${STRESS_ENTRIES[@]}" \
  --until-file 'C:\pipesensor\stop-stress' &
STRESS_PID=$!
wait_until 60 "stress operations flowing" callbacks_above 1000 && pass "stress: 32 threads issuing operations"
# Each cycle: hot-load the next sequence by IOCTL, drop the one after into
# the content directory and rescan, leave enforce mode for a second and come
# back (the enforce window is closed while the mode is monitor).
cycle_end=$((SECONDS + STRESS_SECONDS))
for SEQ in 2 4 6 8; do
  ctl "load-$SEQ" load "C:\\pipesensor\\staging\\C-00000291-0000000$SEQ.sys" >/dev/null
  [ "$(val "$LAST" result)" = loaded ] || fail "stress: hot load of content $SEQ ($(tr '\n' ' ' <"$LOG/$LAST.out"))"
  cp "$D/staging/C-00000291-0000000$((SEQ + 1)).sys" "$CONTENT/"
  ctl "rescan-$SEQ" rescan >/dev/null || fail "stress: rescan"
  [ "$(val "$LAST" file.$((SEQ + 1)))" = adopted ] || fail "stress: rescan did not adopt content $((SEQ + 1)) ($(val "$LAST" file.$((SEQ + 1))))"
  fc "window-close-$SEQ" window close >/dev/null
  ctl "monitor-$SEQ" mode monitor >/dev/null
  sleep 1
  ctl "enforce-$SEQ" mode enforce >/dev/null
  fc "window-open-$SEQ" window open >/dev/null
  [ $SECONDS -ge $cycle_end ] && break
done
pass "stress: content hot-loaded and rescanned, mode switched during the run (up to sequence $((SEQ + 1)))"
ctl status-during-stress status >/dev/null
[ "$(val "$LAST" active.sequence)" -ge 3 ] 2>/dev/null && pass "stress: new content active ($(val "$LAST" active.sequence))" || fail "stress: content did not change (active $(val "$LAST" active.sequence))"
touch "$D/stop-stress"
wait "$STRESS_PID"
fc window-close7 window close >/dev/null
check_stress stress7 "stress"
ctl status-after-stress status >/dev/null
CB1=$(val "$LAST" counters.callbacks); DN1=$(val "$LAST" counters.denied)
[ $((CB1 - CB0)) = "$(sval stress7 callbacks)" ] && pass "stress: the driver counted every callback the double made ($((CB1 - CB0)))" ||
  fail "stress: driver counted $((CB1 - CB0)) callbacks, the double made $(sval stress7 callbacks)"
[ $((DN1 - DN0)) = "$(sval stress7 denied)" ] && pass "stress: driver denials equal the denials the double saw ($((DN1 - DN0)))" ||
  fail "stress: driver denied $((DN1 - DN0)), the double saw $(sval stress7 denied) denied"
echo "     stress: $(sval stress7 callbacks) callbacks in $(sval stress7 elapsed_us) us, longest $(sval stress7 max_callback_us) us; work waits $(val "$LAST" counters.work_waits), exhausted $(val "$LAST" counters.work_exhausted)"
[ "$(double_val pool_live)" = "$DOUBLE_POOL_BASE" ] && pass "stress: the double's pool back to $DOUBLE_POOL_BASE" || fail "stress: the double's pool at $(val "$LAST" pool_live), was $DOUBLE_POOL_BASE"

# --- 8. stop the service with callbacks in flight --------------------------------------
ctl mode-enforce8 mode enforce >/dev/null
fc window-open8 window open >/dev/null
rm -f "$D/stop-stress"
CBT8=$(double_val callbacks_total)
W_TIMEOUT=900 W stress8 'C:\pipesensor\fltctl.exe' stress --threads 32 --kernel-every-4th "${STRESS_ENTRIES[@]}" \
  --until-file 'C:\pipesensor\stop-stress' &
STRESS_PID=$!
wait_until 60 "stress operations flowing before the stop" callbacks_above $((CBT8 + 1000))
STOP_WAIT_SECONDS=60 stop_driver "stop during stress"
touch "$D/stop-stress"
wait "$STRESS_PID" # its STRESS_END fails: the double is gone with the driver
LOGNOW=$(driver_log)
UNREG=$(grep -a "FltDouble: FltUnregisterFilter (FltUnregisterFilter): " <<<"$LOGNOW" | tail -1)
[ -n "$UNREG" ] && pass "stop: the driver unregistered its filter (${UNREG##*FltDouble: })" || fail "stop: no FltUnregisterFilter by the driver"
TALLY=$(grep -a "FltDouble: stress at unregistration: " <<<"$LOGNOW" | tail -1)
num() { sed -n "s/.* $1 \([0-9]*\).*/\1/p" <<<"$TALLY"; }
if [ -n "$TALLY" ] && [ "$(num started)" = $(( $(num callbacks) + $(num not_attached) + $(num unfiltered) + $(num failed) )) ]; then
  pass "stop: every operation accounted for ($(num started) started: $(num callbacks) callbacks, $(num unfiltered) unfiltered after unregistration)"
else fail "stop: stress tally missing or not accounted for: '$TALLY'"; fi
[ "$(num violations)" = 0 ] && [ "$(num block_leaks)" = 0 ] && pass "stop: no contract violation, no block-rule name through in enforce mode" ||
  fail "stop: violations $(num violations), block leaks $(num block_leaks)"
grep -a "FltDouble: unregistered;" <<<"$LOGNOW" | tail -1 | grep -q "pool allocations outstanding: 0" &&
  pass "stop: the double freed everything and joined its threads" || fail "stop: the double leaked: $(grep -a 'FltDouble: unregistered;' <<<"$LOGNOW" | tail -1)"
grep -a "PipeSensor: unloaded" <<<"$LOGNOW" | tail -1 | grep -q "pool allocations outstanding: 0" &&
  pass "stop: the driver unloaded with 0 pool allocations outstanding" || fail "stop: driver unload: $(grep -a 'PipeSensor: unloaded' <<<"$LOGNOW" | tail -1)"
if grep -a "FltDouble: VIOLATION" <<<"$LOGNOW" >/dev/null; then fail "the double logged violations: $(grep -a 'FltDouble: VIOLATION' <<<"$LOGNOW" | head -3)"
else pass "the double logged no violation in the whole run"; fi

# --- 9. restart ---------------------------------------------------------------------------
start_driver "restart after the stop"
fc info9 info >/dev/null && pass "restart: the double answers again" || fail "restart: the double does not answer"
expect registered 1 "restart: filter registered again"
op r1 denied "restart: enforce mode kept, callbacks deny again" --name '\postex_r9'
ctl mode-monitor9 mode monitor >/dev/null
STOP_WAIT_SECONDS=60 stop_driver "stop after restart"

# --- 10. without the double: Wine's stub ------------------------------------------------
W override-off reg delete 'HKCU\Software\Wine\DllOverrides' /v fltmgr.sys /f || fail "remove the DLL override"
restart_session
start_driver "start under Wine's stub fltmgr.sys"
HANDLE_LINE=$(driver_log | grep -a "PipeSensor: filter registered (handle " | tail -1)
[[ "$HANDLE_LINE" == *"(handle 0xdeadbeaf)"* ]] && pass "without the override Wine's stub is bound (handle 0xdeadbeaf)" || fail "stub phase: '$HANDLE_LINE'"
if fc info10 info; then fail "the double answers although it is not bound"; else pass "the double's device is absent under the stub (the phase-1 check would fail)"; fi
ctl eval10 eval '\postex_1'
expect rule 1001 "under the stub EVAL still decides"
stop_driver "unload under the stub"
driver_log | grep -a "PipeSensor: unloaded" | tail -1 | grep -q "pool allocations outstanding: 0" &&
  pass "unload under the stub: 0 pool allocations outstanding" || fail "unload under the stub: $(driver_log | grep -a 'PipeSensor: unloaded' | tail -1)"

echo "wine callback tests: $PASSES passed, $FAILS failed ($((SECONDS - T0))s)"
[ "$FAILS" -eq 0 ]
