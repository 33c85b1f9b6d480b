#!/usr/bin/env bash
# The event service under Wine (issue 11): pipesensor-service.exe runs as a
# real Windows service (own process) beside the real driver, and the test
# checks what it writes. Never skips: a missing tool or file is a failure.
#
# usage: scripts/service-wine-test.sh SYS PIPECTL_EXE PIPECTL_HOST SERVICE_EXE SHIM_DLL
#   SYS            the driver image (.sys)
#   PIPECTL_EXE    pipectl built for x86_64-pc-windows-gnu
#   PIPECTL_HOST   pipectl built for the host (compiles content, replays the JSON)
#   SERVICE_EXE    pipesensor-service built for x86_64-pc-windows-gnu
#   SHIM_DLL       bcryptprimitives.dll (tests/wine/processprng.c)
#
# Events come from the driver's EVAL IOCTL (the same decision path as the
# callbacks; Wine never fires minifilter callbacks without the
# filter-manager double of issue 10). Phases:
#   1. service first, no driver: ServiceStarted, DriverUnavailable
#   2. driver starts: DriverConnected, ContentAdopted (sequence 1)
#   3. events: create and connect lines with the real pid and image
#   4. service stopped, events recorded, service started: none lost
#   5. a burst larger than the ring while the service is stopped: EventsLost 72
#   6. driver stopped and started under the running service: reconnects
#   7. `pipectl driver events --json` prints the service's JSON shape
#   8. replay of the JSON files reproduces the live verdicts
#   9. service stop: ServiceStopped; the Event Log source is registered
# Environment: WINE_TEST_KEEP=1 keeps the prefix.
set -uo pipefail

HERE=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=scripts/wine-lib.sh
. "$HERE/scripts/wine-lib.sh"
wine_args '2,24p' SYS PIPECTL_EXE PIPECTL SERVICE_EXE SHIM -- "$@"
command -v python3 >/dev/null || { echo "FAIL missing tool python3"; exit 1; }

wine_session svc
mkdir -p "$D/content"
"$PIPECTL" compile "$HERE/tests/wine/rules-v1" -o "$D/content/C-00000291-00000001.sys" --sequence 1 >"$LOG/compile" 2>&1 || fail "compile"
wine_stage "$SYS" pipesensor.sys "$PIPECTL_EXE" pipectl.exe "$SERVICE_EXE" pipesensor-service.exe "$SHIM" bcryptprimitives.dll

# --- prefix, driver and service ----------------------------------------------
wine_boot
create_service
reg_set ContentDirectory REG_SZ '\??\C:\pipesensor\content'
reg_set RequireSignature REG_DWORD 0
reg_set ProvenAfterSeconds REG_DWORD 3600
create_event_service --max-bytes 8192 --keep 1000 --status-secs 1

# --- 1. the service first, without the driver ---------------------------------
svc start PipeSensorEvents RUNNING "1. service started before the driver"
events_check 'e["EventID"] == 100' 1 10 "1. ServiceStarted written"
events_check 'e["EventID"] == 103 and "PipeSensor" in e["Device"]' 1 10 "1. DriverUnavailable written"

# --- 2. the driver arrives ----------------------------------------------------
start_driver "2. driver"
events_check 'e["EventID"] == 102' 1 15 "2. DriverConnected written"
events_check 'e["EventID"] == 110 and e["ContentSequence"] == 1 and e["Rules"] == 4' 1 15 "2. ContentAdopted (sequence 1, 4 rules)"

# --- 3. events --------------------------------------------------------------
T0=$(date +%s%N)
ctl eval-create eval '\postex_1234' --pid 4242 --image 'C:\Temp\evil.exe'
T1=$(date +%s%N)
events_check 'e["EventID"] == 17 and e["PipeName"] == "\\postex_1234" and e["ProcessId"] == 4242 and e["Image"] == "C:\\Temp\\evil.exe" and e["RuleId"] == 1001 and e["Decision"] == "alert" and e["Action"] == "block" and e["Severity"] == "high" and e["ContentSequence"] == 1 and e["RuleName"] != "" and e["User"] is None and e["EventType"] == "CreatePipe"' 1 10 "3. create event: Sysmon 17 with pid, image, rule"
T2=$(date +%s%N)
echo "     (not a latency measurement: EVAL took $(( (T1 - T0) / 1000000 )) ms with Wine process start; the line was seen $(( (T2 - T1) / 1000000 )) ms later by a poll that runs python each time)"
ctl eval-connect eval '\msagent_7' --kind connect --pid 77
events_check 'e["EventID"] == 18 and e["EventType"] == "ConnectPipe" and e["PipeName"] == "\\msagent_7" and e["ProcessId"] == 77 and e["RuleId"] == 1002' 1 10 "3. connect event: Sysmon 18"
events_check 'e["EventID"] in (17, 18) and e["UtcTime"][:2] == "20" and len(e["UtcTime"]) == 23 and e["ProcessGuid"].startswith("{")' 2 5 "3. UtcTime in Sysmon's format, ProcessGuid present"

# --- 4. service stopped while events are recorded: none lost ---------------------
svc stop PipeSensorEvents STOPPED "4. service stop"
ctl eval-while-stopped eval '\postex_while_stopped' --repeat 3
svc start PipeSensorEvents RUNNING "4. service start"
events_check 'e["EventID"] == 17 and e["PipeName"] == "\\postex_while_stopped"' 3 10 "4. the 3 events recorded while the service was stopped are written"
if [ "$(events_q 'e["EventID"] == 114')" = 0 ]; then pass "4. nothing reported lost"; else fail "4. EventsLost reported"; fi

# --- 5. a burst larger than the ring (128) while nobody reads ----------------------
svc stop PipeSensorEvents STOPPED "5. service stop"
ctl eval-burst eval '\postex_burst' --repeat 200
svc start PipeSensorEvents RUNNING "5. service start"
events_check 'e["EventID"] == 114 and e["Lost"] == 72 and e["TotalLost"] == 72' 1 10 "5. EventsLost: 72 of 200 overwritten in the 128-record ring"
events_check 'e["EventID"] == 17 and e["PipeName"] == "\\postex_burst"' 128 15 "5. the 128 newest burst events are written"

# --- 6. the driver stops and starts under the running service -------------------------
svc stop PipeSensor STOPPED "6. driver stop"
events_check 'e["EventID"] == 103' 2 15 "6. DriverUnavailable after the driver stopped"
start_driver "6. driver restart"
events_check 'e["EventID"] == 102' 3 15 "6. DriverConnected again"
ctl eval-after eval '\msagent_after_restart' --pid 99
events_check 'e["EventID"] == 17 and e["PipeName"] == "\\msagent_after_restart" and e["ProcessId"] == 99' 1 10 "6. events flow after the driver restarted"

# --- 7. pipectl driver events --json: the service's shape ---------------------------
svc stop PipeSensorEvents STOPPED "7. service stop"
ctl eval-pipectl eval '\postex_pipectl' --pid 31 --image 'C:\Temp\evil.exe'
ctl events-json events --json
python3 - "$LOG/$LAST.out" <<'PY' && pass "7. pipectl driver events --json: the service's JSON line" || fail "7. pipectl driver events --json (see $LOG/$LAST.out)"
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
e = [x for x in lines if x.get("EventID") == 17]
assert len(e) == 1, lines
e = e[0]
keys = ["EventID", "RuleName", "EventType", "UtcTime", "ProcessGuid", "ProcessId", "PipeName", "Image", "User",
        "RuleId", "Decision", "Action", "Severity", "ContentSequence", "UserSid", "RecordId"]
assert list(e)[:len(keys)] == keys, list(e)
assert (e["PipeName"], e["ProcessId"], e["Image"], e["RuleId"]) == ("\\postex_pipectl", 31, "C:\\Temp\\evil.exe", 1001), e
PY
svc start PipeSensorEvents RUNNING "7. service start"

# --- 8. replay reproduces the live verdicts ------------------------------------------
NFILES=$(ls "$EV"/*.jsonl 2>/dev/null | wc -l)
if [ "$NFILES" -gt 1 ]; then pass "8. JSON rotated by size ($NFILES files of at most 8 KiB)"; else fail "8. no rotation ($NFILES files)"; fi
"$PIPECTL" replay "$D/content/C-00000291-00000001.sys" "$EV" --json >"$LOG/replay.json" 2>"$LOG/replay.err" || fail "8. replay failed (see $LOG/replay.err)"
python3 - "$EV" "$LOG/replay.json" <<'PY' && pass "8. pipectl replay of the service's files: every event matches, same best rule per rule id" || fail "8. replay verdicts differ (see $LOG/replay.json)"
import collections, glob, json, os, sys
lines = []
for f in glob.glob(os.path.join(sys.argv[1], "*.jsonl")):
    lines += [json.loads(l) for l in open(f, encoding="utf-8")]
pipe = [e for e in lines if e["EventID"] in (17, 18)]
r = json.load(open(sys.argv[2]))
live = collections.Counter(e["RuleId"] for e in pipe)
replay = {x["id"]: x["as_best"] for x in r["rules"] if x["as_best"]}
assert r["events"]["pipe_events"] == len(pipe), (r["events"], len(pipe))
assert r["verdicts"]["matched"] == len(pipe) and r["verdicts"]["no_match"] == 0, r["verdicts"]
assert r["verdicts"]["block"] == sum(e["Action"] == "block" for e in pipe), r["verdicts"]
assert dict(live) == replay, (live, replay)
print(len(pipe), "events,", len(live), "rules")
PY

# --- 9. stop; the Event Log source -------------------------------------------------
svc stop PipeSensorEvents STOPPED "9. service stop"
events_check 'e["EventID"] == 101 and e["Reason"] == "stop request"' 4 5 "9. ServiceStopped written at every stop"
W reg-src reg query 'HKLM\System\CurrentControlSet\Services\EventLog\Application\PipeSensor' /v EventMessageFile
if grep -qi 'pipesensor-service.exe' "$LOG/reg-src.out"; then pass "9. Event Log source PipeSensor registered (EventMessageFile = the service)"; else fail "9. Event Log source not registered"; fi
LINES=$(cat "$EV"/*.jsonl | wc -l)
BAD=$(python3 -c "
import glob, json
bad = 0
for f in glob.glob('$EV/*.jsonl'):
    for l in open(f, encoding='utf-8'):
        try: json.loads(l)
        except Exception: bad += 1
print(bad)")
if [ "$BAD" = 0 ]; then pass "9. all $LINES lines are whole JSON objects"; else fail "9. $BAD broken lines"; fi
svc stop PipeSensor STOPPED "9. driver stop"

echo
echo "service Wine tests: $PASSES passed, $FAILS failed"
[ "$FAILS" = 0 ]
