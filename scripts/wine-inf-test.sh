#!/usr/bin/env bash
# Installs the package the way docs/install.md tells an admin to, under Wine:
# through the INF's DefaultInstall section (Wine's setupapi runs
# `rundll32 setupapi.dll,InstallHinfSection`), and again through the package's
# install-without-inf.cmd (`sc create` + `reg add`, generated from the INF).
# Checks the package layout, the service key against what the INF says
# (scripts/inf-install.py reads it), that the driver starts and answers
# STATUS with the healthy status docs/install.md shows, that `driver eval`
# gives the verdicts `pipectl match` gives on the host, and the uninstall.
#
# usage: scripts/wine-inf-test.sh PACKAGE_DIR PIPECTL_HOST SHIM_DLL
#   PACKAGE_DIR   target/package (scripts/package.sh)
#   PIPECTL_HOST  pipectl for the host (compiles content, `match` for comparison)
#   SHIM_DLL      bcryptprimitives.dll (tests/wine/processprng.c; Wine 8 lacks ProcessPrng)
#
# The package's driver is built without the CI test key: with no content key
# built in it must refuse signed content (and say so); the content steps then
# use RequireSignature 0, the documented test-machine setting. Signatures are
# covered by scripts/wine-test.sh (phase 10). Not here: certutil (Wine has no
# certificate stores for drivers), fltmc (absent in Wine; `sc` is the
# documented equivalent), callbacks on real pipes (see "What only Windows shows").
set -uo pipefail

if [ $# -ne 3 ]; then
  sed -n '2,24p' "$0"
  exit 2
fi
PKG=$(realpath "$1"); PIPECTL=$(realpath "$2"); SHIM=$(realpath "$3")
HERE=$(cd "$(dirname "$0")/.." && pwd)
INF_PY="$HERE/scripts/inf-install.py"

# Helpers shared with the other Wine scripts: pass/fail, W, ctl/expect (the
# package's pipectl.exe, copied to C:\pipesensor), start_driver, stop_driver.
# shellcheck source=scripts/wine-lib.sh
. "$HERE/scripts/wine-lib.sh"

for f in "$PKG/PipeSensor.inf" "$PKG/pipesensor.sys" "$PKG/pipectl.exe" "$PIPECTL" "$SHIM"; do
  [ -f "$f" ] || { echo "FAIL missing $f"; exit 1; }
done
for t in osslsigncode python3; do
  command -v "$t" >/dev/null || { echo "FAIL missing tool $t"; exit 1; }
done
wine_session wine-inf
DRIVERS=$WINEPREFIX/drive_c/windows/system32/drivers
# The service key against what the INF writes. MODE: inf | cmd.
check_key() { # MODE DESCRIPTION
  W "reg-$1" reg query "$SVC_KEY" /s || { fail "$2: no service key"; return; }
  python3 "$INF_PY" "$PKG/PipeSensor.inf" expect >"$LOG/expect.jsonl"
  if python3 - "$LOG/reg-$1.out" "$LOG/expect.jsonl" "$1" >"$LOG/check-$1.txt" 2>&1 <<'PY'
import json, sys
dump, expect, mode = sys.argv[1], sys.argv[2], sys.argv[3]
keys, cur = {}, None
for line in open(dump):
    line = line.rstrip("\n")
    if line.startswith("HKEY_LOCAL_MACHINE\\"):
        cur = "HKLM\\" + line[len("HKEY_LOCAL_MACHINE\\"):]
        keys[cur.lower()] = {}
    elif line.startswith("    ") and cur:
        parts = line.strip().split(None, 2)
        if len(parts) >= 2:
            keys[cur.lower()][parts[0].lower()] = (parts[1], parts[2] if len(parts) > 2 else "")
bad = 0
expected = [json.loads(l) for l in open(expect)]
# A minifilter needs these whatever the INF says (FltRegisterFilter reads
# the instance; the filter manager attaches by altitude).
for need in ["Type", "Start", "Group", "DefaultInstance", "Altitude", "Flags", "ImagePath"]:
    if need not in [e["name"] for e in expected]:
        print("MISSING from the INF: %s" % need); bad += 1
for e in expected:
    got = keys.get(e["key"].lower(), {}).get(e["name"].lower())
    what = "%s\\%s" % (e["key"].split("\\Services\\", 1)[1], e["name"])
    if got is None:
        if mode == "inf" and e["name"] == "DependOnService":
            print("note %s: not written by Wine's setupapi (Windows writes it from Dependencies)" % what)
            continue
        print("MISSING %s" % what); bad += 1; continue
    typ, raw = got
    if e["name"] == "ImagePath":
        ok = raw.lower().replace("c:\\windows", "\\systemroot").endswith(e["value"].lower()[len("\\systemroot"):]) 
    elif e["type"] == "REG_DWORD":
        ok = typ == "REG_DWORD" and int(raw, 16) == e["value"]
    else:
        ok = typ == e["type"] and raw == e["value"]
    print("%s %s = %s %s (INF: %s)" % ("same" if ok else "DIFFERENT", what, typ, raw, e["value"]))
    bad += 0 if ok else 1
sys.exit(1 if bad else 0)
PY
  then pass "$2: the service key holds every value the INF writes ($(grep -c '^same' "$LOG/check-$1.txt") checked)"
  else fail "$2: service key differs from the INF: $(grep -v '^same' "$LOG/check-$1.txt" | tr '\n' ';')"; fi
}

# --- the package --------------------------------------------------------------
if osslsigncode verify -CAfile "$PKG/test-cert/PipeSensorTest.pem" -in "$PKG/pipesensor.sys" >"$LOG/verify-signed.txt" 2>&1; then
  pass "package: the pipesensor.sys beside the INF is the test-signed image"
else fail "package: pipesensor.sys beside the INF does not verify (see $LOG/verify-signed.txt)"; fi
if osslsigncode verify -CAfile "$PKG/test-cert/PipeSensorTest.pem" -in "$PKG/unsigned/pipesensor-unsigned.sys" >"$LOG/verify-unsigned.txt" 2>&1; then
  fail "package: unsigned/pipesensor-unsigned.sys carries a signature"
else pass "package: the unsigned image is only unsigned/pipesensor-unsigned.sys"; fi
# One certificate per code-signing key: the package carries the kept one,
# and asking for it again neither makes a new one nor changes it.
CODESIGN=${PIPESENSOR_CODESIGN_DIR:-$HERE/keys/codesign}
if cmp -s "$PKG/test-cert/PipeSensorTest.pem" "$CODESIGN/cert.pem"; then
  before=$(sha256sum "$CODESIGN/cert.pem" "$CODESIGN/key.pem")
  again=$("$HERE/scripts/codesign-cert.sh" "$CODESIGN" 2>"$LOG/codesign-again.err")
  if [ "$again" = "$(cat "$PKG/test-cert/thumbprint.txt")" ] && [ "$before" = "$(sha256sum "$CODESIGN/cert.pem" "$CODESIGN/key.pem")" ] &&
     [ ! -s "$LOG/codesign-again.err" ]; then
    pass "package: the test certificate is the kept one (thumbprint $again), reused by the next package"
  else fail "package: the test certificate would change on the next package run"; fi
else fail "package: test-cert/PipeSensorTest.pem is not $CODESIGN/cert.pem"; fi
# driver/keys has no .pub in the repository: the package must say so.
if ls "$HERE"/driver/keys/*.pub >/dev/null 2>&1; then
  grep -q "^Content-signing keys built into this driver" "$PKG/CONTENT-KEYS.txt" &&
    pass "package: CONTENT-KEYS.txt lists the built-in keys" || fail "package: CONTENT-KEYS.txt does not list the keys"
else
  grep -q "^NO CONTENT-SIGNING KEY IS BUILT INTO THIS DRIVER" "$PKG/CONTENT-KEYS.txt" &&
    pass "package: CONTENT-KEYS.txt warns that no content key is built in" || fail "package: no warning about the missing content key"
fi
n_sys=$(find "$PKG" -maxdepth 1 -name '*.sys' | wc -l)
[ "$n_sys" = 1 ] && pass "package: one .sys beside the INF" || fail "package: $n_sys .sys files beside the INF"
if python3 "$INF_PY" "$PKG/PipeSensor.inf" cmd | cmp -s - "$PKG/install-without-inf.cmd"; then
  pass "package: install-without-inf.cmd is generated from the INF"
else fail "package: install-without-inf.cmd differs from scripts/inf-install.py's output"; fi
if python3 "$INF_PY" "$PKG/PipeSensor.inf" check-doc "$HERE/docs/install.md" >"$LOG/check-doc.txt" 2>&1; then
  pass "docs/install.md shows install-without-inf.cmd verbatim"
else fail "docs/install.md: $(head -1 "$LOG/check-doc.txt")"; fi

# --- prefix --------------------------------------------------------------------
wine_boot
# The admin copies the package folder to the machine. The ProcessPrng shim
# is a Wine 8 test aid only (Windows 10+ has bcryptprimitives.dll).
cp -r "$PKG"/. "$D/"
cp "$SHIM" "$D/"

# --- content, compiled on the host (docs/install.md steps 1-3) -------------------
CONTENT_SRC=$LOG/content
"$PIPECTL" keygen "$LOG/keys/vm-test" >"$LOG/keygen.out" 2>&1 || fail "keygen"
"$PIPECTL" compile "$HERE/rules" -o "$CONTENT_SRC/" --sequence 1 --sign "$LOG/keys/vm-test.key" >"$LOG/compile.out" 2>&1 ||
  fail "compile the example rules (see $LOG/compile.out)"

# --- install through the INF ------------------------------------------------------
W inf-install rundll32 setupapi.dll,InstallHinfSection DefaultInstall.NTamd64 132 'C:\pipesensor\PipeSensor.inf'
check_key inf "INF install"
if cmp -s "$PKG/pipesensor.sys" "$DRIVERS/pipesensor.sys"; then
  pass "INF install: System32\\drivers\\pipesensor.sys is the package's signed image"
else fail "INF install: System32\\drivers\\pipesensor.sys is not the package's signed image"; fi
# FLG_ADDREG_NOCLOBBER: a value the admin set survives a reinstall.
W reg-mode1 reg add "$SVC_KEY" /v Mode /t REG_DWORD /d 1 /f || fail "reg add Mode"
W inf-reinstall rundll32 setupapi.dll,InstallHinfSection DefaultInstall.NTamd64 132 'C:\pipesensor\PipeSensor.inf'
W reg-mode reg query "$SVC_KEY" /v Mode
if grep -q 'REG_DWORD *0x1$' "$LOG/reg-mode.out"; then pass "INF reinstall keeps Mode=1 (NOCLOBBER)"; else fail "INF reinstall reset Mode ($(cat "$LOG/reg-mode.out"))"; fi
W reg-mode0 reg add "$SVC_KEY" /v Mode /t REG_DWORD /d 0 /f || fail "reg add Mode 0"

# Wine 8 has no \SystemRoot object link: the INF's ContentDirectory
# (\SystemRoot\System32\drivers\PipeSensor, checked above) fails there with
# 0xc000003a. Point the driver at the same folder by its \??\C: path.
# And the test-only value BugCheckCallback=0 (Wine 8's
# KeRegisterBugCheckReasonCallback is a stub that raises; the driver does not
# detect Wine, docs/install.md): the INF never writes it, a test sets it.
wine_only_values() {
  W "reg-cdir-$1" reg add "$SVC_KEY" /v ContentDirectory /t REG_SZ /d '\??\C:\windows\system32\drivers\PipeSensor' /f || fail "reg add ContentDirectory"
  W "reg-bugcheck-$1" reg add "$SVC_KEY" /v BugCheckCallback /t REG_DWORD /d 0 /f || fail "reg add BugCheckCallback"
}
wine_only_values inf
# Content before the first start (docs: step 5), then start.
mkdir -p "$DRIVERS/PipeSensor"
cp "$CONTENT_SRC/C-00000291-00000001.sys" "$DRIVERS/PipeSensor/"
start_driver "INF install"
ctl status-nokey status
expect filter_registered true "INF install: filter registered"
expect active.sequence 0 "no content key built in: the signed file is refused"
expect last_error.code 9 "no content key built in: refused as wrong key"
grep -q '^last_error.message=.*not a trusted key' "$LOG/$LAST.out" &&
  pass "no content key built in: the message says the key is not trusted" ||
  fail "no content key built in: last_error.message unclear (see $LOG/status-nokey.out)"
stop_driver "before RequireSignature 0"
W reg-nosig reg add "$SVC_KEY" /v RequireSignature /t REG_DWORD /d 0 /f || fail "reg add RequireSignature 0"
start_driver "RequireSignature 0"

# --- is it working: the healthy status docs/install.md shows ---------------------
ctl status status
STATUS_OUT=$LOG/$LAST.out
python3 - "$HERE/docs/install.md" >"$LOG/healthy.txt" <<'PY'
import re, sys
doc = open(sys.argv[1]).read()
m = re.search(r"<!-- healthy-status[^>]*-->\s*```text\n(.*?)```", doc, re.S)
print(m.group(1) if m else "", end="")
PY
if [ ! -s "$LOG/healthy.txt" ]; then
  fail "docs/install.md has no <!-- healthy-status --> block"
else
  missing=0
  while IFS= read -r line; do
    [ -z "$line" ] && continue
    grep -qxF -- "$line" "$STATUS_OUT" || { fail "healthy status: '$line' not in driver status (see $LOG/status.out)"; missing=1; }
  done <"$LOG/healthy.txt"
  [ $missing = 0 ] && pass "driver status shows every line of the documented healthy status ($(grep -c . "$LOG/healthy.txt") lines)"
fi

# --- driver eval = pipectl match on the host --------------------------------------
# NAME|IMAGE|KIND|PID (empty: the default), the same content file on both sides.
n=0
while IFS='|' read -r name image kind pid; do
  n=$((n + 1))
  args=("$name"); [ -n "$image" ] && args+=(--image "$image"); [ -n "$kind" ] && args+=(--kind "$kind"); [ -n "$pid" ] && args+=(--pid "$pid")
  ctl "eval-$n" eval "${args[@]}"
  EVAL_OUT=$LOG/$LAST.out
  "$PIPECTL" match "$CONTENT_SRC/C-00000291-00000001.sys" "${args[@]}" --json >"$LOG/match-$n.json" 2>"$LOG/match-$n.err"
  python3 - "$LOG/match-$n.json" "$EVAL_OUT" >"$LOG/cmp-$n.txt" 2>&1 <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
e = dict(l.split("=", 1) for l in open(sys.argv[2]).read().splitlines() if "=" in l)
best = m["best"]["id"] if m["best"] else None
want = {"matched": str(len(m["matched"])), "rule": "" if best is None else str(best),
        "decision": m["decision"]["monitor"], "name": m["normalized_name"]}
diff = {k: (want[k], e.get(k)) for k in want if want[k] != e.get(k)}
print(diff if diff else "same: %s" % want)
sys.exit(1 if diff else 0)
PY
  if [ $? = 0 ]; then pass "driver eval = pipectl match: ${args[*]}"; else fail "driver eval != pipectl match for ${args[*]}: $(cat "$LOG/cmp-$n.txt")"; fi
done <<'CASES'
\postex_1234|||
\\.\pipe\postex_1234|||
postex_1234|||
\Device\NamedPipe\MSSE-77-server|||
\rpc_0f|C:\x.exe||
\rpc_0f|C:\x.exe||4
\rpc_0f|C:\x.exe|connect|
\PSEXESVC|\??\C:\Users\Public\p.exe||
\psexesvc-1-stdin|C:\Users\Public\p.exe|connect|77
\harmless_pipe|||
CASES

# --- uninstall (docs: stop first, then the INF's DefaultUninstall) ----------------
stop_driver "uninstall"
W inf-uninstall rundll32 setupapi.dll,InstallHinfSection DefaultUninstall.NTamd64 132 'C:\pipesensor\PipeSensor.inf'
if W reg-gone reg query "$SVC_KEY"; then fail "INF uninstall: the service key is still there"; else pass "INF uninstall: service key removed"; fi
[ -e "$DRIVERS/pipesensor.sys" ] && fail "INF uninstall: pipesensor.sys left in System32\\drivers" || pass "INF uninstall: pipesensor.sys removed"

# --- the same through install-without-inf.cmd --------------------------------------
W cmd-install cmd /c 'C:\pipesensor\install-without-inf.cmd' || fail "install-without-inf.cmd failed (see $LOG/cmd-install.out)"
check_key cmd "install-without-inf.cmd"
cmp -s "$PKG/pipesensor.sys" "$DRIVERS/pipesensor.sys" && pass "install-without-inf.cmd: copied the signed image" ||
  fail "install-without-inf.cmd: System32\\drivers\\pipesensor.sys is not the package's signed image"
wine_only_values cmd
W reg-nosig2 reg add "$SVC_KEY" /v RequireSignature /t REG_DWORD /d 0 /f || fail "reg add RequireSignature 0"
start_driver "install-without-inf.cmd"
ctl status2 status
expect active.sequence 1 "install-without-inf.cmd: content loaded"
expect filtering true "install-without-inf.cmd: filtering"
W cmd-uninstall cmd /c 'C:\pipesensor\uninstall-without-inf.cmd'
wait_state STOPPED 20 >/dev/null 2>&1
if W reg-gone2 reg query "$SVC_KEY"; then fail "uninstall-without-inf.cmd: the service key is still there"; else pass "uninstall-without-inf.cmd: service key removed"; fi
[ -e "$DRIVERS/pipesensor.sys" ] && fail "uninstall-without-inf.cmd: pipesensor.sys left" || pass "uninstall-without-inf.cmd: pipesensor.sys removed"

echo
echo "wine INF tests: $PASSES passed, $FAILS failed"
[ "$FAILS" = 0 ]
