#!/usr/bin/env bash
# Runs the PipeSensor driver under Wine and exercises it through the Windows
# client (issue 3, item 10b). Never skips: a missing tool or file is a failure.
#
# usage: scripts/wine-test.sh SYS PIPECTL_EXE PIPECTL_HOST MALFORMED_DIR SHIM_DLL
#   SYS            the driver image (.sys)
#   PIPECTL_EXE    pipectl built for x86_64-pc-windows-gnu (runs under Wine)
#   PIPECTL_HOST   pipectl built for the host (compiles the test content)
#   MALFORMED_DIR  files the parser must reject (`pipectl gen-malformed DIR`)
#   SHIM_DLL       bcryptprimitives.dll (tests/wine/processprng.c)
#
# Environment: WINE_TEST_KEEP=1 keeps the prefix; WINE_TEST_FILE_BATCHES=N
# limits the malformed-by-file phase to N batches of 16 (default: all).
# WINE_TEST_SIGN_KEY (required): the secret key (`pipectl keygen`) whose
# public key the driver under test has built in (PIPESENSOR_TEST_KEY at build
# time, see scripts/driver-test.sh); phase 10 signs content with it.
#
# This script runs under Wine's own fltmgr.sys, a stub (FltRegisterFilter
# returns 0xdeadbeaf; no callback ever fires): phase 1 checks that, and the
# unload path under the stub is covered here. The minifilter callbacks run
# through the filter-manager double in scripts/wine-callbacks.sh. What Wine
# cannot show at all (KeRegisterBugCheckReasonCallback is a stub; no ACL
# enforcement on devices; no Driver Verifier; the real NPFS): see
# docs/install.md "What only Windows shows".
set -uo pipefail

if [ $# -ne 5 ]; then
  sed -n '2,16p' "$0"
  exit 2
fi
SYS=$(realpath "$1"); PIPECTL_EXE=$(realpath "$2"); PIPECTL=$(realpath "$3")
MALFORMED=$(realpath "$4"); SHIM=$(realpath "$5")
HERE=$(cd "$(dirname "$0")/.." && pwd)

# shellcheck source=scripts/wine-lib.sh
. "$HERE/scripts/wine-lib.sh"

for f in "$SYS" "$PIPECTL_EXE" "$PIPECTL" "$SHIM"; do
  [ -f "$f" ] || { echo "FAIL missing $f"; exit 1; }
done
[ -d "$MALFORMED" ] || { echo "FAIL missing $MALFORMED"; exit 1; }
SIGN_KEY=${WINE_TEST_SIGN_KEY:-}
[ -n "$SIGN_KEY" ] && [ -f "$SIGN_KEY" ] || { echo "FAIL WINE_TEST_SIGN_KEY is not set to a key file"; exit 1; }
SIGN_KEY=$(realpath "$SIGN_KEY")
wine_session wine

# --- content ---------------------------------------------------------------
CONTENT=$D/content
mkdir -p "$CONTENT" "$D/malformed" "$D/staging"
"$PIPECTL" compile "$HERE/tests/wine/rules-v1" -o "$CONTENT/C-00000291-00000001.sys" --sequence 1 >"$LOG/compile1" 2>&1 || fail "compile v1"
"$PIPECTL" compile "$HERE/tests/wine/rules-v2" -o "$D/staging/v2-seq2.sys" --sequence 2 >"$LOG/compile2" 2>&1 || fail "compile v2"
"$PIPECTL" compile "$HERE/tests/wine/rules-v2" -o "$D/staging/C-00000291-00000005.sys" --sequence 5 >"$LOG/compile5" 2>&1 || fail "compile seq 5"
"$PIPECTL" compile "$HERE/tests/wine/rules-v2" -o "$D/staging/C-00000291-00000006.sys" --sequence 6 >"$LOG/compile6" 2>&1 || fail "compile seq 6"
# Signed content (phase 10): by the trusted CI key, a tampered copy, an
# unsigned file, and one signed by a key the driver does not trust.
"$PIPECTL" keygen "$D/other" >"$LOG/keygen-other" 2>&1 || fail "keygen other"
"$PIPECTL" compile "$HERE/tests/wine/rules-v1" -o "$D/staging/C-00000291-00000020.sys" --sequence 20 --sign "$SIGN_KEY" >"$LOG/compile20" 2>&1 || fail "compile signed 20"
"$PIPECTL" compile "$HERE/tests/wine/rules-v2" -o "$D/staging/signed-21.sys" --sequence 21 --sign "$SIGN_KEY" >"$LOG/compile21" 2>&1 || fail "compile signed 21"
"$PIPECTL" compile "$HERE/tests/wine/rules-v2" -o "$D/staging/unsigned-21.sys" --sequence 21 >"$LOG/compile21u" 2>&1 || fail "compile unsigned 21"
"$PIPECTL" compile "$HERE/tests/wine/rules-v2" -o "$D/staging/other-21.sys" --sequence 21 --sign "$D/other.key" >"$LOG/compile21o" 2>&1 || fail "compile other-key 21"
# Tampered: one byte of the last rule's text flipped (after signing).
python3 - "$D/staging/signed-21.sys" "$D/staging/tampered-21.sys" <<'PY'
import sys
d = bytearray(open(sys.argv[1], "rb").read())
i = d.rfind(b"V2ONLY")  # the rule text of content 2 (upper-cased by the compiler)
assert i > 0, "marker not found"
d[i] ^= 0x01
open(sys.argv[2], "wb").write(d)
PY
[ -f "$D/staging/tampered-21.sys" ] || fail "tampered copy"
cp "$D/staging/tampered-21.sys" "$D/staging/C-00000291-00000030.sys"
cp "$SYS" "$D/pipesensor.sys"
cp "$PIPECTL_EXE" "$D/pipectl.exe"
cp "$SHIM" "$D/bcryptprimitives.dll"
# Files the manifest marks "valid" are positive controls of the generator,
# not malformed: leave them out. Without a manifest every *.bin counts.
if [ -f "$MALFORMED/MANIFEST.tsv" ]; then
  awk -F'\t' '$2 != "valid" {print $1}' "$MALFORMED/MANIFEST.tsv" | while read -r f; do cp "$MALFORMED/$f" "$D/malformed/"; done
else
  find "$MALFORMED" -maxdepth 1 -type f -name '*.bin' -exec cp {} "$D/malformed/" \;
fi
NMAL=$(find "$D/malformed" -name '*.bin' | wc -l)
[ "$NMAL" -gt 0 ] && pass "malformed corpus: $NMAL files" || fail "malformed corpus is empty"

# --- prefix and service ----------------------------------------------------
SECONDS=0
wine_boot
create_service
reg_set ContentDirectory REG_SZ '\??\C:\pipesensor\content'
reg_set ProvenAfterSeconds REG_DWORD 3600
reg_set MaxFailedStarts REG_DWORD 3
# Phases 1-9 use unsigned content (and the malformed corpus must reach the
# parser); phase 10 turns signatures back on (the default).
reg_set RequireSignature REG_DWORD 0

# --- 1. start with good content --------------------------------------------
start_driver "start"
ctl status status || fail "status IOCTL"
expect filter_registered true "filter registered"
if driver_log | grep -a "PipeSensor: filter registered (handle " | tail -1 | grep -q "(handle 0xdeadbeaf)"; then
  pass "Wine's stub fltmgr.sys is bound (handle 0xdeadbeaf): no callbacks in this script"
else fail "expected Wine's stub fltmgr.sys here: $(driver_log | grep -a 'PipeSensor: filter registered' | tail -1)"; fi
if driver_log | grep -a -q "PipeSensor: BugCheckCallback is 0 in the service key (a test setting)"; then
  pass "BugCheckCallback=0 (test-only service value): bug-check callback not registered"
else fail "no log line for BugCheckCallback=0 (the driver must not call Wine's stub)"; fi
expect active.sequence 1 "content 1 active"
expect active.rules 4 "content 1 has 4 rules"
expect guard.pending 1 "content 1 pending (not proven yet)"
expect guard.start_count 1 "first start counted"
expect last_error.origin none "no load error"
expect mode monitor "default mode"

# --- 2. evaluate names: same decision path as the callbacks ----------------
ctl eval-postex eval '\postex_1234'
expect decision alert "monitor: block rule only alerts"; expect rule 1001 "post-ex rule"
ctl eval-unc eval '\\.\pipe\postex_99' --kind connect
expect decision alert "\\\\.\\pipe\\ spelling normalized"; expect name '\postex_99' "normalized name"
ctl eval-dev eval '\Device\NamedPipe\msagent_12'
expect rule 1002 "NT path spelling, glob rule"; expect name '\msagent_12' "normalized NT name"
ctl eval-clean eval '\harmless_pipe'
expect decision allow "non-matching name allowed"; expect matched 0 "no rule matched"
ctl eval-image eval '\whatever' --image 'C:\Temp\evil.exe' --pid 4242
expect rule 1003 "image rule"; expect decision alert "image rule alerts"
ctl mode-enforce mode enforce
expect mode enforce "mode set to enforce"
ctl eval-deny eval '\postex_1'
expect decision deny "enforce: block rule denies"
ctl eval-alert eval '\msagent_1'
expect decision alert "enforce: alert rule still only alerts"
ctl events events --max 100
if grep -q 'decision=deny rule=1001' "$LOG/$LAST.out" && grep -q 'pid=4242 .*rule=1003' "$LOG/$LAST.out"; then
  pass "events recorded (deny of 1001, pid 4242 for 1003)"
else fail "events missing (see $LOG/$LAST.out)"; fi
expect events 6 "6 matching events recorded"
ctl events-empty events
expect events 0 "events drained"
ctl mode-monitor mode monitor
expect previous enforce "mode back to monitor"
# The ring holds 128 records; 200 matches overwrite the oldest 72 and count
# them; the evaluations never wait for a reader.
ctl eval-flood eval '\postex_flood' --repeat 200
expect decision alert "200 evaluations in a row"
ctl events-flood events --max 256
expect events 128 "ring keeps its 128 newest records"
expect overwritten 72 "72 overwritten records counted"
ctl status-flood status
expect counters.events_overwritten 72 "overflow counted in status"

# --- 2b. image paths in DOS form: the drive-letter table ---------------------
# At start the driver reads the links \??\A: .. \??\Z: and logs each target
# ("drive C: = \Device\HarddiskVolume1" under Wine 8, which links C: and Z:
# to volume devices). EVAL goes through the same rewrite as the
# callbacks: an image under C:'s device must match rule 1004
# (Image|startswith 'C:\Windows\') and be reported as C:\... in events.
DRVLOGS=("$LOG"/*.err "$LOG/wineserver.out" "$LOG/wineboot.out")
CLINE=$(grep -a -h "PipeSensor: drive C: = " "${DRVLOGS[@]}" 2>/dev/null | tail -1 | tr -d '\r')
CDEV=${CLINE##*drive C: = }
if [[ "$CLINE" == *"drive C: = "* && "$CDEV" == \\Device\\?* && "$CDEV" != *' '* ]]; then
  pass "drive table: \\??\\C: links to $CDEV"
else
  fail "drive table: no usable '\\??\\C:' target in the driver log (line: '$CLINE')"
  CDEV='\Device\NoDriveC'
fi
SUMMARY=$(grep -a -h "PipeSensor: drive letters: " "${DRVLOGS[@]}" 2>/dev/null | tail -1 | tr -d '\r')
if [[ "$SUMMARY" =~ drive\ letters:\ ([0-9]+)\ mapped ]] && [ "${BASH_REMATCH[1]}" -ge 1 ]; then
  pass "drive table logged: ${SUMMARY##*PipeSensor: }"
else fail "drive table summary missing or empty: '$SUMMARY'"; fi
ctl events-before-dos events --max 256 >/dev/null
ctl eval-img-nt eval '\dos_path_test' --image "$CDEV\\Windows\\System32\\notepad.exe" --pid 5151
expect rule 1004 "NT image path under C:'s device matches the C:\\Windows\\ rule"
expect decision alert "C:\\Windows\\ rule alerts"
ctl eval-img-case eval '\dos_path_test' --image "${CDEV^^}\\Windows\\x.exe" --pid 5152
expect rule 1004 "device prefix compared case-insensitively"
ctl eval-img-boundary eval '\dos_path_test' --image "${CDEV}0\\Windows\\System32\\notepad.exe" --pid 5153
expect matched 0 "${CDEV}0 is not C: (component boundary)"
ctl eval-img-unknown eval '\dos_path_test' --image '\Device\HarddiskVolume97\Windows\x.exe' --pid 5154
expect matched 0 "an unknown device stays in NT form"
ctl eval-img-qq eval '\dos_path_test' --image '\??\C:\Windows\System32\cmd.exe' --pid 5155
expect rule 1004 "\\??\\C:\\ form normalized"
ctl eval-img-win32 eval '\dos_path_test' --image '\\?\c:\windows\x.exe' --pid 5156
expect rule 1004 "\\\\?\\c:\\ form normalized"
ctl eval-img-dos eval '\dos_path_test' --image 'C:\Windows\x.exe' --pid 5157
expect rule 1004 "a DOS path still matches"
ctl eval-img-temp eval '\dos_path_test' --image "$CDEV\\Temp\\evil.exe" --pid 5158
expect rule 1003 "NT path: endswith rules unaffected"
ctl events-dos events --max 100
expect events 6 "6 image events recorded (not the boundary and unknown-device cases)"
for spec in '5151|1004|C:\Windows\System32\notepad.exe' '5152|1004|C:\Windows\x.exe' \
  '5155|1004|C:\Windows\System32\cmd.exe' '5156|1004|C:\windows\x.exe' '5158|1003|C:\Temp\evil.exe'; do
  IFS='|' read -r pid rule img <<<"$spec"
  line=$(grep -m1 " pid=$pid " "$LOG/$LAST.out")
  if [[ "$line" == *" rule=$rule "* && "$line" == *" image=$img" ]]; then
    pass "event of pid $pid reports the DOS path $img"
  else fail "event of pid $pid: expected rule $rule image $img, got '$line'"; fi
done

# --- 3. malformed IOCTL requests are rejected ------------------------------
ctl raw-ok raw 0x226400 5053494f01000000 --out-len 500
expect raw "accepted len=480" "well-formed raw status"
for spec in "short:0x226400:5053494f" "magic:0x226400:50534f5801000000" "version:0x226400:5053494f02000000" \
  "trailing:0x226400:5053494f0100000000" "unknown-ioctl:0x226800:5053494f01000000" \
  "eval-len:0x226410:5053494f01000000010000000400000005000000000000005c00" \
  "load-len:0x22a404:5053494f0100000000000000ff000000aabb" "mode-value:0x22a40c:5053494f010000000700000000000000" \
  "neither-method:0x226403:5053494f01000000"; do
  IFS=: read -r what code hex <<<"$spec"
  ctl "raw-$what" raw "$code" "$hex"
  if grep -q '^raw=failed' "$LOG/$LAST.out"; then pass "bad request rejected: $what"; else fail "bad request accepted: $what ($(cat "$LOG/$LAST.out"))"; fi
done
ctl raw-small raw 0x226400 5053494f01000000 --out-len 100
if grep -q '^raw=failed' "$LOG/$LAST.out"; then pass "output buffer too small rejected"; else fail "small output buffer accepted"; fi

# --- 4. hot reload ---------------------------------------------------------
ctl load-v2 load 'C:\pipesensor\staging\v2-seq2.sys'
expect result loaded "hot load of content 2"
ctl status-v2 status
expect active.sequence 2 "content 2 active after hot load"
expect active.origin ioctl "content 2 came by IOCTL"
expect lkg.sequence 1 "content 1 is last-known-good"
ctl eval-v2 eval '\v2only'
expect rule 2001 "rule only in content 2 matches"
# Content 2 has a regex rule: its DFA is read in place from the content
# buffer (the driver logs "1 DFAs read in place") and EVAL runs it there.
ctl eval-v2-re eval '\v2re_123'
expect rule 2002 "regex rule matches through its DFA (read in place)"
ctl eval-v2-re-miss eval '\v2re_12'
expect matched 0 "regex rule does not match a near miss"
if grep -a -h "hot-loaded content 2 (" "$LOG"/*.err "$LOG/wineserver.out" "$LOG/wineboot.out" 2>/dev/null | grep -q "1 DFAs read in place"; then
  pass "content 2's DFA read in place at hot load (driver log)"
else fail "no 'hot-loaded content 2 (... 1 DFAs read in place)' line in the driver log"; fi
ctl load-stale load 'C:\pipesensor\content\C-00000291-00000001.sys'
expect result rejected "stale sequence refused without --force"
expect error.code 3 "stale refusal code"
ctl status-stale status
expect active.sequence 2 "content 2 still active"

# --- 5. every malformed file by IOCTL --------------------------------------
POOL_BEFORE_MALFORMED=$(val "$LAST" counters.pool_live)
ctl malformed-ioctl load-each-rejected 'C:\pipesensor\malformed'
if [ $? -eq 0 ]; then pass "all $(val "$LAST" files) malformed files rejected by IOCTL"; else fail "malformed by IOCTL (see $LOG/$LAST.out)"; fi
expect rejected "$NMAL" "every malformed file rejected"
ctl status-after-malformed status
expect active.sequence 2 "host alive, content 2 still active"
expect counters.pool_live "$POOL_BEFORE_MALFORMED" "every rejected file's memory freed (pool allocations back to $POOL_BEFORE_MALFORMED)"
expect lkg.sequence 1 "last-known-good unchanged"
expect last_error.origin ioctl "last error reported from IOCTL"
expect last_error.code 1 "last error is a parse error"

# --- 6. stop and start; clean unload proves content 1 -----------------------
stop_driver "stop"
start_driver "restart"
ctl status-restart status
expect active.sequence 1 "content 1 active from disk after restart"
expect guard.proven 1 "clean unload proved content 1"
expect guard.pending 0 "nothing pending"
expect mode monitor "mode persisted"

# --- 7. every malformed file by file, 16 per start -------------------------
BATCHES=${WINE_TEST_FILE_BATCHES:-0}
mapfile -t MALFILES < <(find "$D/malformed" -name '*.bin' | sort)
total=${#MALFILES[@]}; b=0; i=0; byfile_ok=0
while [ $i -lt "$total" ]; do
  b=$((b + 1))
  [ "$BATCHES" -gt 0 ] && [ $b -gt "$BATCHES" ] && break
  stop_driver "file batch $b" >/dev/null
  rm -f "$CONTENT"/C-00000291-0000[1-9]*.sys
  n=0
  while [ $n -lt 16 ] && [ $i -lt "$total" ]; do
    cp "${MALFILES[$i]}" "$CONTENT/C-00000291-$(printf '%08d' $((1000 + i))).sys"
    i=$((i + 1)); n=$((n + 1))
  done
  start_driver "file batch $b" >/dev/null
  ctl "file-batch-$b" status
  if [ "$(val "$LAST" active.sequence)" = 1 ] && [ "$(val "$LAST" counters.loads_failed)" = "$n" ] &&
    [ "$(val "$LAST" last_error.origin)" = disk ]; then
    byfile_ok=$((byfile_ok + n))
  else
    fail "file batch $b: $n malformed files, status: active $(val "$LAST" active.sequence), loads_failed $(val "$LAST" counters.loads_failed)"
  fi
done
rm -f "$CONTENT"/C-00000291-0000[1-9]*.sys
if [ "$byfile_ok" -eq "$total" ]; then pass "all $total malformed files rejected from the content directory, content 1 stayed active"
elif [ "$BATCHES" -gt 0 ]; then pass "$byfile_ok malformed files rejected from the content directory ($BATCHES batches)"
else fail "by file: $byfile_ok of $total rejected"; fi

# --- 8. crash loop: unproven content 5 dies 3 times, then is quarantined ----
stop_driver "before crash loop"
cp "$D/staging/C-00000291-00000005.sys" "$CONTENT/"
for n in 1 2 3; do
  start_driver "crash-loop start $n"
  ctl "crash-$n" status
  expect active.sequence 5 "start $n runs new content 5"
  expect guard.pending 5 "content 5 pending"
  expect guard.start_count "$n" "start $n counted"
  kill_host "crash $n"
done
start_driver "start after 3 crashes"
ctl status-quarantine status
expect quarantined 5 "content 5 quarantined"
expect active.sequence 1 "last-known-good content 1 active"
expect guard.pending 0 "nothing pending"
expect guard.proven 1 "content 1 still the proven one"

# --- 9. a clean run proves new content -------------------------------------
reg_set ProvenAfterSeconds REG_DWORD 2
stop_driver "before proven test"
cp "$D/staging/C-00000291-00000006.sys" "$CONTENT/"
start_driver "start with content 6"
ctl status-6 status
expect active.sequence 6 "content 6 active"
expect guard.pending 6 "content 6 pending"
sleep 5
ctl status-6-proven status
expect guard.proven 6 "content 6 proven after a clean run"
expect guard.pending 0 "nothing pending after proof"
expect quarantined 5 "content 5 stays quarantined"

# --- 10. signed content -----------------------------------------------------
stop_driver "before signature test"
reg_set RequireSignature REG_DWORD 1
rm -f "$CONTENT"/*.sys
cp "$D/staging/C-00000291-00000020.sys" "$D/staging/C-00000291-00000030.sys" "$CONTENT/"
start_driver "start requiring signatures"
ctl status-signed status
expect active.sequence 20 "signed content 20 loaded from disk"
expect last_error.origin disk "tampered file 30 on disk rejected"
expect last_error.code 8 "disk: tampered error code"
ctl load-signed-20-eval eval '\postex_1'
expect rule 1001 "signed content 20 evaluates"
for spec in "tampered:8" "unsigned:6" "other:9"; do
  IFS=: read -r what code <<<"$spec"
  ctl "load-$what" load "C:\\pipesensor\\staging\\$what-21.sys"
  expect result rejected "$what file rejected"
  expect error.code "$code" "$what file: distinct error"
  ctl "status-$what" status
  expect active.sequence 20 "$what file: content 20 stays active"
  expect last_error.code "$code" "$what file: error in status"
  expect last_error.origin ioctl "$what file: error origin ioctl"
done
ctl load-signed-21 load 'C:\pipesensor\staging\signed-21.sys'
expect result loaded "signed file 21 hot-loaded"
ctl status-21 status
expect active.sequence 21 "signed content 21 active"
expect lkg.sequence 20 "content 20 is last-known-good"

# --- 11. staged rollout, customer control, anti-rollback --------------------
# Signed files; this machine: ring broad, MachineId wine-test-machine. The
# host computes the bucket the driver must report; file 41 is first released
# to exactly that share (this machine is just outside), then re-released one
# thousandth of a percent wider (just inside).
stop_driver "before rollout test"
rm -f "$CONTENT"/*.sys
reg_set ProvenAfterSeconds REG_DWORD 2
reg_set Ring REG_SZ broad
reg_set MachineId REG_SZ wine-test-machine
"$PIPECTL" rollout bucket wine-test-machine >"$LOG/bucket.out" 2>&1 || fail "pipectl rollout bucket"
BUCKET=$(grep -m1 '^bucket_milli=' "$LOG/bucket.out" | cut -d= -f2)
HELD=$(python3 -c "print('%.3f' % ($BUCKET / 1000))")
WIDE=$(python3 -c "print('%.3f' % (($BUCKET + 1) / 1000))")
R=$D/rollout
mkdir -p "$R"
sign() { "$PIPECTL" compile "$HERE/tests/wine/$1" -o "$R/$2" --sequence "$3" --sign "$SIGN_KEY" "${@:4}" >"$LOG/compile-$2" 2>&1 || fail "compile $2"; }
sign rules-v1 40.sys 40
sign rules-v2 41-held.sys 41 --ring broad --percent "$HELD"
sign rules-v2 41-wide.sys 41 --ring broad --percent "$WIDE"
sign rules-v1 42-canary.sys 42 --ring canary --percent 100
sign rules-v1 43-later.sys 43 --ring broad --percent 100 --not-before 2100-01-01T00:00:00Z
sign rules-v1 39.sys 39
sign rules-v1 39-rollback.sys 39 --rollback-ceiling 41
put() { cp "$R/$1" "$CONTENT/C-00000291-$(printf '%08d' "$2").sys"; }
rescan() { ctl "rescan-$1" rescan || fail "$1: rescan IOCTL"; }

put 40.sys 40
start_driver "start with content 40"
sleep 4
ctl rollout-40 status
expect active.sequence 40 "content 40 active"
expect guard.proven 40 "content 40 proven after a clean run"
expect rollout.highest_proven 40 "highest proven sequence is 40"
expect rollout.ring broad "ring from the service key"
expect rollout.machine_id service-key "machine id from the service key"
expect rollout.bucket_milli "$BUCKET" "kernel bucket equals pipectl rollout bucket"
expect rollout.control latest "default control: latest"
expect file.40 adopted "file 40 adopted"

put 41-held.sys 41; put 42-canary.sys 42; put 43-later.sys 43
rescan held
expect active.sequence 40 "held back: content 40 stays active"
expect file.41 share "file 41 held back by its share ($HELD% < bucket)"
expect file.42 ring "file 42 held back: canary ring only"
expect file.43 not-before "file 43 held back until its not-before time"
expect file.40 adopted "file 40 still adopted"
ctl eval-held eval '\v2only'
expect matched 0 "content 41's rule is not active"

put 41-wide.sys 41
rescan widened
expect active.sequence 41 "widened policy: content 41 adopted"
expect guard.pending 41 "content 41 pending under the crash-loop guard"
expect file.41 adopted "file 41 adopted after its policy widened to $WIDE%"
expect file.40 not-selected "file 40 eligible, not selected"
ctl eval-wide eval '\v2only'
expect rule 2001 "content 41's rule is active"
ctl status-wide status
expect lkg.sequence 40 "content 40 is last-known-good"

reg_set ContentControl REG_SZ n-1
rescan n-1
expect active.sequence 40 "customer N-1: content 40"
expect file.41 one-behind "file 41 held by N-1"
reg_set ContentControl REG_SZ freeze
put 41-wide.sys 41
rescan freeze
expect active.sequence 40 "customer freeze: content 40 stays"
expect file.41 frozen "file 41 frozen out"
expect file.40 kept "file 40 kept running"
reg_set ContentControl REG_SZ 'pin:41'
rescan pin
expect active.sequence 41 "customer pin: content 41"
expect rollout.control 'pin:41' "pin reported"
reg_set ContentControl REG_SZ bogus
rescan bad-control
expect rollout.control latest "an unreadable control falls back to latest"
expect rollout.warnings 'ContentControl value not understood (latest used)' "and says so"
reg_set ContentControl REG_SZ latest
sleep 4
ctl status-41-proven status
expect guard.proven 41 "content 41 proven after a clean run"
expect rollout.highest_proven 41 "highest proven sequence is 41"

# Anti-rollback: an older file is refused, from disk and by IOCTL (force
# does not help); a signed rollback instruction whose ceiling covers 41 is
# adopted and revokes 40 and 41.
put 39.sys 39
rescan old
expect active.sequence 41 "old file 39 not adopted"
expect file.39 rollback "file 39 refused: older than the highest proven"
ctl load-rollback load "C:\\pipesensor\\rollout\\39.sys" --force
expect result rejected "hot load of older file 39 refused even with --force"
expect error.code 11 "anti-rollback error code"
ctl load-rollback-40 load "C:\\pipesensor\\rollout\\40.sys" --force
expect error.code 11 "hot load of 40 below highest proven 41 refused"
ctl status-after-rollback status
expect active.sequence 41 "content 41 stays active"
put 39-rollback.sys 39
rescan rollback-instruction
expect active.sequence 39 "signed rollback instruction 39 adopted"
expect file.39 adopted "file 39 (rollback instruction) adopted"
expect file.41 revoked "file 41 revoked by the instruction"
expect file.40 revoked "file 40 revoked by the instruction"
sleep 4
ctl status-39-proven status
expect guard.proven 39 "the rollback instruction proven"
expect rollout.highest_proven 41 "highest proven stays 41"
stop_driver "restart after rollback"
start_driver "restart after rollback"
ctl status-39-restart status
expect active.sequence 39 "after restart: rollback instruction 39 still active"
expect file.41 revoked "after restart: 41 still revoked"

# Periodic rescan (RescanIntervalSeconds): a file whose not-before time
# passes is adopted by the driver's own rescan thread, with no IOCTL.
stop_driver "before periodic rescan"
reg_set RescanIntervalSeconds REG_DWORD 2
NB=$(( $(date +%s) + 20 ))
sign rules-v2 44-soon.sys 44 --ring broad --percent 100 --not-before "$NB"
put 44-soon.sys 44
start_driver "start with a 2 s rescan interval"
ctl status-44-held status
expect active.sequence 39 "file 44 not adopted before its time"
expect file.44 not-before "file 44 held until its not-before time"
# Adopted within one interval (2 s) of NB, proven 2 s later (ProvenAfterSeconds).
WAIT=$(( NB - $(date +%s) + 9 ))
[ "$WAIT" -gt 0 ] && sleep "$WAIT"
ctl status-44-adopted status
expect active.sequence 44 "the rescan thread adopted file 44 once its time came (no IOCTL)"
expect file.44 adopted "file 44 adopted"
expect guard.proven 44 "file 44 ran under the crash-loop guard and was proven"

# --- 12. unload --------------------------------------------------------------
stop_driver "unload"
if grep -a -h "PipeSensor: unloaded" "$LOG"/*.err "$LOG/wineserver.out" "$LOG/wineboot.out" 2>/dev/null | tail -1 | grep -q "pool allocations outstanding: 0"; then
  pass "unload freed every pool allocation (outstanding: 0)"
else fail "unload left pool allocations (or no unload line): $(grep -a -h 'PipeSensor: unloaded' "$LOG"/*.err "$LOG/wineboot.out" 2>/dev/null | tail -1)"; fi
if grep -a -q "PipeSensor: unloaded" "$LOG"/sc-*.err "$LOG"/*.err "$LOG/wineserver.out" "$LOG/wineboot.out" 2>/dev/null; then
  pass "driver logged a clean unload"
else fail "no 'PipeSensor: unloaded' in the driver log"; fi

echo "wine tests: $PASSES passed, $FAILS failed (${SECONDS}s)"
[ "$FAILS" -eq 0 ]
