#!/usr/bin/env bash
# Issue 15 under Wine, through the filter-manager double (driver/testing/fltmgr):
# the driver's real pre-create callbacks decide with the protected set, the
# circuit breaker and the soak (monitor first). Never skips: a missing tool
# or file is a failure.
#
# usage: scripts/wine-blocksafe.sh SYS FLTMGR FLTCTL PIPECTL_EXE PIPECTL_HOST SHIM_DLL
#   (the arguments of scripts/wine-callbacks.sh)
#
# Phases: 1. a block rule on the protected pipe \lsass and one on any
# lsass.exe image, built with the low-level writer (the compiler refuses
# them), never deny: the decision is `protected`, counted; the same image
# name outside System32 is denied. 2. a runaway block rule is demoted by its
# breaker (service key BreakerRule 3/60) after 3 denies, alerts with the
# decision `demoted`, shows in status, other block rules still deny;
# `pipectl driver breaker reset RULE` lifts it. 3. new content with a soak
# for this machine's ring: its block rules alert (`soak`) until the soak
# ends, then deny; the breaker was cleared by the new content. 4. all
# working memory held (WorkWaitMilliseconds 300): the unchecked deny of
# issue 10 never hits \lsass. 5. the machine-wide breaker (BreakerMachine
# 2/60) trips at the 3rd deny on the machine, every block rule alerts, a
# reset of all lifts it.
set -uo pipefail

HERE=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=scripts/wine-lib.sh
. "$HERE/scripts/wine-lib.sh"
wine_args '2,8p' SYS FLTMGR FLTCTL PIPECTL_EXE PIPECTL SHIM -- "$@"
SOAK_SECONDS=8

wine_session blocksafe
T0=$SECONDS

# --- files and content --------------------------------------------------------
CONTENT=$D/content
mkdir -p "$CONTENT" "$D/staging"
# The double (fltmgr.sys) beside the driver: searched first.
wine_stage "$SYS" pipesensor.sys "$FLTMGR" fltmgr.sys "$FLTCTL" fltctl.exe "$PIPECTL_EXE" pipectl.exe "$SHIM" bcryptprimitives.dll
RULES=$HERE/tests/wine/rules-blocksafe
if "$PIPECTL" compile "$RULES" -o "$LOG/refused.sys" --sequence 1 >"$LOG/compile-refused" 2>&1; then
  fail "the compiler wrote block rules on a protected pipe and a critical image"
else
  grep -q "2001" "$LOG/compile-refused" && grep -qi "lsass" "$LOG/compile-refused" &&
    pass "the compiler refuses the content, naming rule 2001 and \\lsass" ||
    fail "the compiler's refusal does not name rule 2001 / lsass (see $LOG/compile-refused)"
fi
"$PIPECTL" compile "$RULES" -o "$CONTENT/C-00000291-00000001.sys" --sequence 1 --unchecked-protected >"$LOG/compile-1" 2>&1 ||
  fail "compile content 1 with the low-level writer"
# Content 2: the same rules, block rules alert for SOAK_SECONDS on the broad ring.
"$PIPECTL" compile "$RULES" -o "$D/staging/C-00000291-00000002.sys" --sequence 2 --unchecked-protected \
  --monitor-first "canary:1h,early:1h,broad:${SOAK_SECONDS}s" >"$LOG/compile-2" 2>&1 || fail "compile content 2 (soak)"
"$PIPECTL" inspect "$D/staging/C-00000291-00000002.sys" >"$LOG/inspect-2" 2>&1
grep -q "broad:${SOAK_SECONDS}s" "$LOG/inspect-2" && pass "inspect shows the soak of content 2" ||
  fail "inspect does not show broad:${SOAK_SECONDS}s (see $LOG/inspect-2)"

wine_boot
SYS32=$WINEPREFIX/drive_c/windows/system32
PUBLIC=$WINEPREFIX/drive_c/users/Public
mkdir -p "$PUBLIC"
# The double's client under the name of a critical process, in System32 and elsewhere.
cp "$FLTCTL" "$SYS32/lsass.exe"
cp "$FLTCTL" "$PUBLIC/lsass.exe"
bind_double
create_service
reg_set ContentDirectory REG_SZ '\??\C:\pipesensor\content'
reg_set RequireSignature REG_DWORD 0
reg_set ProvenAfterSeconds REG_DWORD 3600
reg_set RescanIntervalSeconds REG_DWORD 0
reg_set Mode REG_DWORD 1
reg_set BreakerRule REG_SZ 3/60
reg_set BreakerMachine REG_SZ off

# --- helpers --------------------------------------------------------------------
# opx NAME IMAGE EXPECT(denied|allowed) DESCRIPTION ARGS...: one operation by
# the double's client started from IMAGE (a Windows path).
opx() {
  local name=$1 image=$2 want=$3 what=$4; shift 4
  N=$((N + 1)); LAST="$(printf '%03d' $N)-$name"
  W "$LAST" "$image" op "$@"
  local o p s v got
  o=$(val "$LAST" outcome); p=$(val "$LAST" preop); s=$(val "$LAST" status); v=$(val "$LAST" violations)
  case "$o/$p/$s" in
    callback/complete/0xc0000022) got=denied ;;
    callback/success_no_callback/0x00000000) got=allowed ;;
    *) got="$o/$p/$s" ;;
  esac
  if [ "$got" = "$want" ] && [ "$v" = 0x0 ]; then pass "$what: $got"
  else fail "$what: $got (violations $v), expected $want (see $LOG/$LAST.out)"; fi
}
op() { local n=$1 w=$2 d=$3; shift 3; opx "$n" 'C:\pipesensor\fltctl.exe' "$w" "$d" "$@"; }
events() { ctl "events-$1" events --max 256 >/dev/null; }
check_event() { # PATTERN DESCRIPTION
  if grep -q -- "$1" "$LOG/$LAST.out"; then pass "$2"; else fail "$2: no event matching '$1' (see $LOG/$LAST.out)"; fi
}
count_events() { grep -c -- "$1" "$LOG/$LAST.out"; }

# --- 1. protected pipes and critical processes -------------------------------------
start_driver "start in enforce mode with content 1"
driver_log | grep -aq "PipeSensor: system root C:\\\\windows" && pass "the driver read the system root (C:\\windows)" ||
  fail "no 'system root' line in the driver log"
ctl status-1 status >/dev/null
expect mode enforce "enforce mode from the service key"
expect active.sequence 1 "content 1 active"
expect breaker.rule "3/60s (service-key)" "per-rule limit from the service key"
expect breaker.machine "off (service-key)" "machine-wide breaker off in the service key"
expect enforcement.block_rules enforce "no soak for content 1"
op p1 allowed "block rule on \\lsass: creating \\lsass is not denied" --name '\lsass'
op p2 allowed "block rule on \\lsass: connecting to \\LSASS (any case) is not denied" --create --name '\LSASS'
op p3 denied "block rules still deny elsewhere: \\postex_p3" --name '\postex_p3'
opx p4 'C:\windows\system32\lsass.exe' allowed "block rule on any lsass.exe: C:\\windows\\system32\\lsass.exe is not denied" --name '\harmless_p4'
opx p5 'C:\users\Public\lsass.exe' denied "the same rule denies C:\\users\\Public\\lsass.exe (a file name anyone can use)" --name '\harmless_p5'
ctl eval-p6 eval '\lsass'
expect decision protected "EVAL of \\lsass in enforce mode: protected"
events protected
check_event "kind=create decision=protected rule=2001 .* name=\\\\lsass " "event: \\lsass created, decision protected"
check_event "kind=connect decision=protected rule=2001 .* name=\\\\LSASS " "event: \\LSASS connected, decision protected"
check_event "decision=protected rule=2003 .* name=\\\\harmless_p4 image=C:\\\\windows\\\\system32\\\\lsass.exe\$" "event: the critical process's pipe, decision protected"
check_event "decision=deny rule=2003 .* name=\\\\harmless_p5 image=C:\\\\users\\\\Public\\\\lsass.exe\$" "event: lsass.exe outside System32 denied"
ctl status-p status >/dev/null
expect counters.protected 3 "3 protected decisions counted (EVAL does not count)"

# --- 2. the circuit breaker ------------------------------------------------------------
for i in 1 2 3; do op "b$i" denied "runaway rule, deny $i of 3" --name "\\runaway_$i"; done
op b4 allowed "runaway rule: the 4th deny within the window trips its breaker (alert instead)" --name '\runaway_4'
op b5 allowed "runaway rule stays demoted" --create --name '\runaway_5'
op b6 denied "another block rule still denies" --name '\postex_b6'
driver_log | grep -aq "PipeSensor: rule 2004 demoted to alert by its breaker (limit 3/60s)" &&
  pass "the driver logged the demotion of rule 2004" || fail "no demotion line for rule 2004 in the driver log"
events breaker
[ "$(count_events 'decision=deny rule=2004 ')" = 3 ] && pass "3 deny events for rule 2004" || fail "$(count_events 'decision=deny rule=2004 ') deny events for rule 2004, expected 3"
check_event "decision=demoted rule=2004 .* name=\\\\runaway_4 " "event: the tripping operation, decision demoted"
check_event "kind=connect decision=demoted rule=2004 .* name=\\\\runaway_5 " "event: the next operation, decision demoted"
ctl status-b status >/dev/null
expect breaker.demoted 1 "status: one rule demoted"
grep -q "^breaker.demoted.2004=denies 3 then demoted" "$LOG/$LAST.out" && pass "status names rule 2004 and its 3 denies" ||
  fail "status does not show rule 2004's demotion (see $LOG/$LAST.out)"
expect counters.rule_trips 1 "status: one rule trip"
expect counters.demoted 2 "status: two demoted decisions"
ctl reset-b breaker reset 2004 >/dev/null
expect lifted 1 "pipectl driver breaker reset 2004 lifts one demotion"
op b7 denied "after the reset rule 2004 denies again" --name '\runaway_7'
ctl reset-b2 breaker reset 2004 >/dev/null
expect lifted 0 "a second reset lifts nothing"
ctl status-b2 status >/dev/null
expect breaker.demoted 0 "status: nothing demoted after the reset"
expect counters.resets 1 "status: one reset"

# --- 3. monitor first: soak, then enforce -------------------------------------------
op s0 denied "rule 2004 counts again: one deny before new content" --name '\runaway_s0'
op s00 denied "rule 2004: a second deny" --name '\runaway_s00'
ctl load-2 load 'C:\pipesensor\staging\C-00000291-00000002.sys' >/dev/null
expect active.sequence 2 "content 2 (soak ${SOAK_SECONDS}s on the broad ring) loaded"
ctl status-s status >/dev/null
expect enforcement.soak_seconds "$SOAK_SECONDS" "status: the broad ring's soak"
expect enforcement.block_rules "soak (alert)" "status: block rules alert during the soak"
op s1 allowed "during the soak a block rule alerts" --name '\postex_s1'
op s2 allowed "during the soak the protected pipe is still protected" --name '\lsass'
events soak
check_event "decision=soak rule=2005 .* name=\\\\postex_s1 " "event: decision soak"
check_event "decision=protected rule=2001 .* name=\\\\lsass " "event: protected comes before soak"
soak_over() { ctl "soak-left" status >/dev/null; [ "$(val "$LAST" enforcement.block_rules)" = enforce ]; }
i=0; until soak_over || [ $i -ge $((SOAK_SECONDS * 4)) ]; do sleep 0.5; i=$((i + 1)); done
expect enforcement.block_rules enforce "the soak ends by itself"
op s3 denied "after the soak the block rule denies" --name '\postex_s3'
# New content cleared the breaker: rule 2004's two earlier denies no longer count.
for i in 1 2 3; do op "s4-$i" denied "after new content rule 2004 has its full 3 denies again ($i)" --name "\\runaway_n$i"; done
op s5 allowed "and is demoted at the 4th" --name '\runaway_n4'
op s6 allowed "the protected pipe after the soak: still not denied" --name '\lsass'
ctl status-end status >/dev/null
expect counters.soak 1 "status: one soak decision"

# --- 4. no working memory: unchecked, still never a protected pipe ---------------------
# The double's HOLD operations block inside the driver while it holds a
# working-memory slot (scripts/wine-callbacks.sh phase 6): 16 pin all 16.
STOP_WAIT_SECONDS=60 stop_driver "before the exhaustion test"
reg_set WorkWaitMilliseconds REG_DWORD 300
# For phase 5: the per-rule breaker off, the machine-wide one at 2 denies a minute.
reg_set BreakerRule REG_SZ off
reg_set BreakerMachine REG_SZ 2/60
start_driver "start with a 300 ms work wait"
for i in $(seq 1 16); do fc "hold-$i" op --hold --name "\\harmless_hold_$i" >/dev/null || fail "hold $i"; done
held=0
for i in $(seq 1 120); do fc held info >/dev/null; held=$(val "$LAST" held); [ "$held" = 16 ] && break; sleep 0.5; done
[ "$held" = 16 ] && pass "16 operations hold all 16 working-memory slots" || fail "held $held operations, expected 16"
op x1 allowed "all slots busy, enforce: \\lsass is not denied (unchecked, protected by name)" --name '\lsass'
op x2 denied "all slots busy, enforce: any other name is denied (unchecked, issue 10)" --name '\harmless_x2'
fc release async-wait --release
expect count 16 "every held operation finished"
ctl status-x status >/dev/null
expect counters.unchecked_denied 1 "one unchecked denial"
expect counters.unchecked_allowed 1 "one unchecked pass (the protected pipe)"
expect counters.protected 1 "the unchecked protected decision is counted (counters restart with the driver)"

# --- 5. the machine-wide breaker -------------------------------------------------------
expect breaker.machine "2/60s (service-key)" "machine-wide limit from the service key"
expect breaker.rule "off (service-key)" "per-rule breaker off in the service key"
op m1 denied "machine-wide: deny 1 of 2 (rule 2005)" --name '\postex_m1'
op m2 denied "machine-wide: deny 2 of 2 (rule 2004)" --name '\runaway_m2'
op m3 allowed "machine-wide: the 3rd deny on the machine trips the machine-wide breaker" --name '\postex_m3'
op m4 allowed "machine-wide: every block rule alerts now" --name '\runaway_m4'
driver_log | grep -aq "PipeSensor: machine-wide breaker tripped (limit 2/60s)" &&
  pass "the driver logged the machine-wide trip" || fail "no machine-wide trip line in the driver log"
ctl status-m status >/dev/null
expect breaker.machine_demoted true "status: machine-wide breaker tripped"
expect counters.machine_trips 1 "status: one machine-wide trip"
ctl reset-m breaker reset >/dev/null
expect lifted 1 "pipectl driver breaker reset (all) lifts the machine-wide demotion"
op m5 denied "after the reset block rules deny again" --name '\postex_m5'
STOP_WAIT_SECONDS=60 stop_driver "stop"
driver_log | grep -a "PipeSensor: unloaded" | tail -1 | grep -q "pool allocations outstanding: 0" &&
  pass "unload: 0 pool allocations outstanding" || fail "unload: $(driver_log | grep -a 'PipeSensor: unloaded' | tail -1)"

echo "wine blocksafe tests: $PASSES passed, $FAILS failed ($((SECONDS - T0))s)"
[ "$FAILS" -eq 0 ]
