#!/usr/bin/env python3
"""Writes the project's own pipe-name pattern lists (suspicious.csv,
rmm/rmm.csv) used by tests and benchmarks in place of third-party lists
whose licence could not be established (see third_party/README.md).

The lists are written by this project: a hand-written part (default pipe
names of well-known tools, as their public source code or documentation
shows them) and a synthetic part built from a fixed seed in the shapes real
lists have (exact names, `prefix*`, a few `*suffix`, `*infix*`, `a*b` and
`?`). They are test and benchmark data, not threat intelligence.

Run from the repository root: python3 data/pipe-names/make_lists.py
The output is deterministic; CI does not run this script.
"""
import os
import random

HERE = os.path.dirname(os.path.abspath(__file__))

# (pattern, tool): default pipe names of well-known tools.
KNOWN = [
    (r"\PSEXESVC*", "PsExec"),
    (r"\PSEXESVC-*-stdin", "PsExec"),
    (r"\PSEXESVC-*-stdout", "PsExec"),
    (r"\PSEXESVC-*-stderr", "PsExec"),
    (r"\PAExec*", "PAExec"),
    (r"\RemCom_communicaton", "RemCom"),
    (r"\RemCom_stdin*", "RemCom"),
    (r"\RemCom_stdout*", "RemCom"),
    (r"\RemCom_stderr*", "RemCom"),
    (r"\csexecsvc*", "CSExec"),
    (r"\winexesvc*", "winexe"),
    (r"\svcctl", "Impacket smbexec"),
    (r"\atsvc", "Impacket atexec"),
    (r"\lsadump*", "credential dumper"),
    (r"\cachedump*", "credential dumper"),
    (r"\wceservicepipe", "Windows Credential Editor"),
    (r"\msagent_*", "Cobalt Strike"),
    (r"\MSSE-*-server", "Cobalt Strike"),
    (r"\postex_*", "Cobalt Strike"),
    (r"\postex_ssh_*", "Cobalt Strike"),
    (r"\status_*", "Cobalt Strike"),
    (r"\mojo.5688.8052.*", "Cobalt Strike profile"),
    (r"\win_svc*", "Cobalt Strike profile"),
    (r"\DserNamePipe*", "Cobalt Strike profile"),
    (r"\SearchTextHarvester*", "Cobalt Strike profile"),
    (r"\gruntsvc*", "Covenant"),
    (r"\msf-pipe*", "Metasploit"),
    (r"\demon_pipe*", "Havoc"),
    (r"\imposecost", "Koh"),
    (r"\imposingcost", "Koh"),
    (r"\RoguePotato\pipe\epmapper", "RoguePotato"),
    (r"\*\pipe\spoolss", "PrintSpoofer-style relay"),
    (r"\*\pipe\epmapper", "Potato-style relay"),
    (r"\*\pipe\srvsvc", "Potato-style relay"),
    (r"\PSHost.*", "PowerShell host"),
    (r"\tsvcpipe-*", "test pipe"),
    (r"\testpipe*", "test pipe"),
    (r"\mypipe*", "test pipe"),
    (r"\pipename", "test pipe"),
    (r"\foopipe*", "test pipe"),
]

# Word parts for synthetic names (no real tool implied).
WORDS = [
    "agent", "svc", "update", "host", "relay", "bridge", "sync", "broker",
    "helper", "loader", "stage", "beacon", "tunnel", "proxy", "shell",
    "runner", "worker", "monitor", "client", "server", "ctrl", "link",
    "pipe", "comm", "chan", "node", "core", "task", "job", "net",
]
VENDORS = [
    "acme", "contoso", "fabrikam", "northwind", "tailspin", "woodgrove",
    "litware", "adatum", "proseware", "wingtip",
]


def synthetic(rng, n):
    out = []
    seen = set()
    while len(out) < n:
        a, b = rng.choice(WORDS), rng.choice(WORDS)
        hexs = "".join(rng.choice("0123456789abcdef") for _ in range(rng.choice([4, 6, 8])))
        shape = rng.randrange(100)
        if shape < 60:  # exact
            p = rng.choice([rf"\{a}_{b}_{hexs}", rf"\{a}{b}", rf"\{a}-{hexs}", rf"\{a}.{b}.{hexs}"])
        elif shape < 90:  # prefix*
            p = rng.choice([rf"\{a}_{b}_*", rf"\{a}{hexs}*", rf"\{a}-{b}-*"])
        elif shape < 93:  # *suffix
            p = rf"\*_{a}_{b}"
        elif shape < 95:  # *infix*
            p = rf"\*{a}{hexs}*"
        elif shape < 98:  # a*b
            p = rf"\{a}_*_{b}"
        else:  # ?
            p = rf"\{a}_{b}_??"
        if p not in seen:
            seen.add(p)
            out.append((p, "synthetic"))
    return out


def rmm(rng, n):
    out = []
    for v in VENDORS:
        out.append((rf"\{v}_remote_control", v))
        out.append((rf"\{v}RemoteSupport*", v))
        out.append((rf"\{v}-session-*", v))
        out.append((rf"\{v}_agent_ipc", v))
        out.append((rf"\{v}.viewer.{rng.randrange(1, 9)}", v))
    return out[:n]


def write(path, rows):
    with open(path, "w", newline="\n") as f:
        f.write("pipe_name,tool\n")
        for p, t in rows:
            assert "," not in p and "," not in t, p
            f.write(f"{p},{t}\n")


def main():
    rng = random.Random(291)
    write(os.path.join(HERE, "suspicious.csv"), KNOWN + synthetic(rng, 300 - len(KNOWN)))
    write(os.path.join(HERE, "rmm", "rmm.csv"), rmm(rng, 50))


if __name__ == "__main__":
    main()
