#!/usr/bin/env python3
"""Lists the panic call sites left in a linked binary and attributes each to
the crate whose code branches to it (scripts/panic-free.sh, step 3).

usage: panic-sites.py <llvm-objdump> <binary> [allowed crate prefix...]

A site is a call or jump to one of core's panic entry points. LLVM merges
identical panic calls, so the call's own debug location may be lost ("?"):
the site's origins are therefore the call itself and every branch into the
basic block that ends with it. Each origin is symbolized with addr2line -i;
its owner is the innermost frame outside core. Exit status 1 if any origin
with a known location is owned by a crate not in the allowed list.
"""
import re
import subprocess
import sys

PANIC = re.compile(r"(panic|_fail\b|_fail<|unwrap_failed|expect_failed|assert_failed|do_panic)")
CORE = re.compile(r"^(<)?(core|alloc|std)::|^<\[|^<&|^<char|^<\(|^<u8|^<usize|^<i32")


def main():
    objdump, binary = sys.argv[1], sys.argv[2]
    allowed = sys.argv[3:]
    dis = subprocess.run(
        [objdump, "-d", "--no-show-raw-insn", "--demangle", binary],
        check=True, capture_output=True, text=True).stdout
    entries = set()
    insns = []  # (addr, mnemonic, target or None)
    in_panic = set()  # instructions inside panic functions themselves
    cur_panic = False
    for line in dis.splitlines():
        m = re.match(r"^([0-9a-f]+) <(.*)>:$", line)
        if m:
            cur_panic = bool(PANIC.search(m.group(2)))
            if cur_panic:
                entries.add(int(m.group(1), 16))
            continue
        m = re.match(r"^\s+([0-9a-f]+):\s+(\S+)\s*(.*)$", line)
        if m:
            tgt = re.match(r"0x([0-9a-f]+)", m.group(3))
            insns.append((int(m.group(1), 16), m.group(2), int(tgt.group(1), 16) if tgt else None))
            if cur_panic:
                in_panic.add(int(m.group(1), 16))
    jumps_to = {}
    for a, mn, t in insns:
        if t is not None and mn.startswith("j"):
            jumps_to.setdefault(t, []).append(a)
    sites = []
    for i, (a, mn, t) in enumerate(insns):
        if t in entries and a not in in_panic and (mn.startswith("call") or mn.startswith("jmp")):
            # Start of the block ending here.
            j = i
            while j > 0:
                pmn, pt = insns[j - 1][1], insns[j - 1][2]
                if pmn.startswith("ret") or pmn.startswith("jmp") or pmn == "ud2" or \
                        (pmn.startswith("call") and pt in entries):
                    break
                j -= 1
            origins = [a]
            for k in range(j, i + 1):
                origins += jumps_to.get(insns[k][0], [])
            sites.append((a, sorted(set(origins))))
    addrs = sorted({o for _, os in sites for o in os})
    sym = {}
    if addrs:
        out = subprocess.run(
            ["addr2line", "-i", "-f", "-C", "-a", "-e", binary] + [hex(x) for x in addrs],
            check=True, capture_output=True, text=True).stdout.splitlines()
        cur = None
        frames = []
        for line in out:
            if re.match(r"^0x[0-9a-f]+$", line):
                if cur is not None:
                    sym[cur] = frames
                cur, frames = int(line, 16), []
            else:
                frames.append(line)
        if cur is not None:
            sym[cur] = frames
    bad = 0
    owners_count = {}
    for a, origins in sites:
        print(f"site {a:#x}")
        site_owners = set()
        for o in origins:
            fr = sym.get(o, [])
            pairs = list(zip(fr[0::2], fr[1::2]))
            owner = None
            known = bool(pairs) and not pairs[0][1].endswith(":?")
            for fn, loc in pairs:
                if not CORE.search(fn):
                    owner = fn
                    break
            label = "origin" if o != a else "call"
            print(f"  {label} {o:#x}: owner {owner or '?'}{'' if known else ' (location lost)'}")
            for fn, loc in pairs:
                loc = re.sub(r"^.*?/\.cargo/registry/src/[^/]*/|^/rustc/[0-9a-f]+/", "", loc)
                print(f"      {fn}  {loc}")
            if owner and known:
                site_owners.add(owner)
        if not site_owners:
            # Only lost locations: fall back to whatever owner was named.
            for o in origins:
                pairs = list(zip(sym.get(o, [])[0::2], sym.get(o, [])[1::2]))
                for fn, _ in pairs:
                    if not CORE.search(fn):
                        site_owners.add(fn)
                        break
        for ow in site_owners or {"core (no other frame)"}:
            crate = re.sub(r"^<", "", ow).split("::")[0]
            owners_count[crate] = owners_count.get(crate, 0) + 1
            if not any(ow.lstrip("<").startswith(p) for p in allowed) and not ow.startswith("core"):
                print(f"  NOT ALLOWED: {ow}")
                bad += 1
    print(f"summary: {len(sites)} sites; owners: "
          + ", ".join(f"{k} {v}" for k, v in sorted(owners_count.items())))
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
