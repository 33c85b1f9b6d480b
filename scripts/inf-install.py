#!/usr/bin/env python3
"""What inf/PipeSensor.inf installs, read from the INF itself (never typed twice).

usage:
  inf-install.py INF cmd        install-without-inf.cmd: `sc create` + `reg add`,
                                the same service and values as DefaultInstall
  inf-install.py INF uninstall  uninstall-without-inf.cmd
  inf-install.py INF expect     the service key the INF writes, as JSON lines
                                {"key": ..., "name": ..., "type": ..., "value": ..., "noclobber": ...}
  inf-install.py INF check-doc DOC
                                exit 1 unless DOC contains install-without-inf.cmd
                                verbatim in a ```bat block

Reads only what the PipeSensor INF uses (one service, AddReg lines under HKR
with REG_SZ / REG_DWORD and FLG_ADDREG_NOCLOBBER); anything else is an error,
so a new INF construct cannot be dropped silently.
"""
import json
import re
import sys

SERVICE_ROOT = r"HKLM\SYSTEM\CurrentControlSet\Services"
SERVICE_TYPES = {1: "kernel", 2: "filesys"}
START_TYPES = {0: "boot", 1: "system", 2: "auto", 3: "demand", 4: "disabled"}
ERROR_CONTROLS = {0: "ignore", 1: "normal", 2: "severe", 3: "critical"}
DIRIDS = {"12": r"\SystemRoot\System32\drivers"}
FLG_NOCLOBBER = 0x2
REG_TYPES = {0x00000000: "REG_SZ", 0x00010001: "REG_DWORD"}


def die(msg):
    sys.stderr.write("inf-install.py: %s\n" % msg)
    sys.exit(2)


def strip_comment(line):
    out, quoted = [], False
    for c in line:
        if c == '"':
            quoted = not quoted
        if c == ";" and not quoted:
            break
        out.append(c)
    return "".join(out).strip()


def parse_inf(path):
    sections, cur = {}, None
    for raw in open(path, encoding="utf-8"):
        line = strip_comment(raw)
        if not line:
            continue
        m = re.fullmatch(r"\[(.+)\]", line)
        if m:
            cur = m.group(1).strip()
            sections.setdefault(cur.lower(), [])
            continue
        if cur is None:
            die("line outside a section: %r" % line)
        sections[cur.lower()].append(line)
    return sections


def split_fields(line):
    fields, cur, quoted = [], [], False
    for c in line:
        if c == '"':
            quoted = not quoted
            continue
        if c == "," and not quoted:
            fields.append("".join(cur).strip())
            cur = []
            continue
        cur.append(c)
    fields.append("".join(cur).strip())
    return fields


class Inf:
    def __init__(self, path):
        self.s = parse_inf(path)
        self.strings = {}
        for line in self.s.get("strings", []):
            k, v = line.split("=", 1)
            self.strings[k.strip().lower()] = v.strip().strip('"')

    def expand(self, text):
        def sub(m):
            key = m.group(1).lower()
            if key in DIRIDS:
                return DIRIDS[key]
            if key not in self.strings:
                die("unknown %%%s%%" % m.group(1))
            return self.strings[key]
        return re.sub(r"%([^%]+)%", sub, text)

    def directives(self, section):
        out = {}
        for line in self.s.get(section.lower(), []):
            if "=" not in line:
                die("[%s]: not a directive: %r" % (section, line))
            k, v = line.split("=", 1)
            out.setdefault(k.strip().lower(), []).append(v.strip())
        return out

    def install(self):
        d = self.directives("DefaultInstall.NTamd64.Services")
        (add,) = d["addservice"]
        name, _flags, svc_section = split_fields(add)
        name = self.expand(name)
        svc = self.directives(svc_section)
        one = lambda k: self.expand(split_fields(svc[k][0])[0])
        service = {
            "name": name,
            "display": one("displayname"),
            "description": one("description"),
            "binary": one("servicebinary"),
            "dependencies": one("dependencies"),
            "type": int(one("servicetype"), 0),
            "start": int(one("starttype"), 0),
            "error": int(one("errorcontrol"), 0),
            "group": one("loadordergroup"),
        }
        values = []
        for reg_section in svc.get("addreg", []):
            for line in self.s.get(reg_section.lower(), []):
                f = split_fields(line)
                if len(f) != 5 or f[0] != "HKR":
                    die("[%s]: unsupported AddReg line %r" % (reg_section, line))
                _, sub, vname, flags, value = f
                flags = int(flags, 0)
                typ = REG_TYPES.get(flags & ~FLG_NOCLOBBER)
                if typ is None:
                    die("[%s]: unsupported AddReg flags %#x" % (reg_section, flags))
                sub = self.expand(sub)
                value = self.expand(value)
                if typ == "REG_DWORD":
                    value = int(value, 0)
                values.append({
                    "key": SERVICE_ROOT + "\\" + name + ("\\" + sub if sub else ""),
                    "name": self.expand(vname),
                    "type": typ,
                    "value": value,
                    "noclobber": bool(flags & FLG_NOCLOBBER),
                })
        driver_file = self.s.get("pipesensor.driverfiles", [])
        if len(driver_file) != 1:
            die("[PipeSensor.DriverFiles] must name one file")
        service["file"] = self.expand(driver_file[0])
        return service, values

    def expected(self):
        service, values = self.install()
        key = SERVICE_ROOT + "\\" + service["name"]
        base = [
            (key, "Type", "REG_DWORD", service["type"]),
            (key, "Start", "REG_DWORD", service["start"]),
            (key, "ErrorControl", "REG_DWORD", service["error"]),
            (key, "Group", "REG_SZ", service["group"]),
            (key, "ImagePath", "REG_EXPAND_SZ", service["binary"]),
            (key, "DisplayName", "REG_SZ", service["display"]),
            (key, "Description", "REG_SZ", service["description"]),
            (key, "DependOnService", "REG_MULTI_SZ", service["dependencies"]),
        ]
        out = [{"key": k, "name": n, "type": t, "value": v, "noclobber": False} for k, n, t, v in base]
        return out + values


def q(s):
    return '"%s"' % s


def install_cmd(inf):
    service, values = inf.install()
    name = service["name"]
    lines = [
        "@echo off",
        "rem Generated from PipeSensor.inf by scripts/inf-install.py: the same service and",
        "rem values as `rundll32 setupapi.dll,InstallHinfSection DefaultInstall.NTamd64 132 PipeSensor.inf`.",
        "rem Run it elevated from the package folder. Values marked keep are left as they are",
        "rem when already set (FLG_ADDREG_NOCLOBBER in the INF).",
        "setlocal",
        "set SVC=%s\\%s" % (SERVICE_ROOT, name),
        "copy /y \"%%~dp0%s\" \"%%SystemRoot%%\\System32\\drivers\\%s\" >nul" % (service["file"], service["file"]),
        "if errorlevel 1 exit /b 1",
        "sc create %s type= %s start= %s error= %s binPath= %s group= %s DisplayName= %s"
        % (
            name,
            SERVICE_TYPES[service["type"]],
            START_TYPES[service["start"]],
            ERROR_CONTROLS[service["error"]],
            q(service["binary"]),
            q(service["group"]),
            q(service["display"]),
        ),
        "if errorlevel 1 exit /b 1",
        "sc description %s %s" % (name, q(service["description"])),
        # The INF's Dependencies (sc's depend= would do on Windows; Wine 8's sc
        # writes a value without its final NUL there).
        "reg add \"%%SVC%%\" /v DependOnService /t REG_MULTI_SZ /d %s /f >nul" % q(service["dependencies"]),
    ]
    for v in values:
        key = "%SVC%" + v["key"][len(SERVICE_ROOT) + 1 + len(name):]
        add = "reg add %s /v %s /t %s /d %s /f >nul" % (q(key), v["name"], v["type"], q(str(v["value"])))
        if v["noclobber"]:
            lines.append("rem keep")
            lines.append("reg query %s /v %s >nul 2>&1" % (q(key), v["name"]))
            lines.append("if errorlevel 1 " + add)
        else:
            lines.append(add)
    lines.append("echo %s installed; start it with: sc start %s" % (name, name))
    return "\r\n".join(lines) + "\r\n"


def uninstall_cmd(inf):
    service, _ = inf.install()
    name = service["name"]
    return "\r\n".join([
        "@echo off",
        "rem Generated from PipeSensor.inf by scripts/inf-install.py: undoes install-without-inf.cmd",
        "rem (the service, its key and the driver file). Run it elevated.",
        "sc stop %s >nul 2>&1" % name,
        "sc delete %s" % name,
        "del \"%%SystemRoot%%\\System32\\drivers\\%s\"" % service["file"],
    ]) + "\r\n"


def main():
    if len(sys.argv) < 3:
        sys.stderr.write(__doc__)
        sys.exit(2)
    inf = Inf(sys.argv[1])
    what = sys.argv[2]
    if what == "cmd":
        sys.stdout.write(install_cmd(inf))
    elif what == "uninstall":
        sys.stdout.write(uninstall_cmd(inf))
    elif what == "expect":
        for v in inf.expected():
            print(json.dumps(v))
    elif what == "check-doc":
        doc = open(sys.argv[3], encoding="utf-8").read()
        want = install_cmd(inf).replace("\r\n", "\n")
        blocks = re.findall(r"```bat\n(.*?)```", doc, re.S)
        if want not in blocks:
            sys.stderr.write("%s: no ```bat block equals `scripts/inf-install.py %s cmd`; update it:\n%s"
                             % (sys.argv[3], sys.argv[1], want))
            sys.exit(1)
        print("%s: install-without-inf.cmd shown verbatim" % sys.argv[3])
    else:
        die("unknown command %r" % what)


if __name__ == "__main__":
    main()
