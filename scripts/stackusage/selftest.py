"""The self-test: the check must be able to fail."""

import dataclasses
import os
import struct
import sys
import tempfile

from .common import Fail
from .graph import Analysis
from .report import report


def _quiet(fn, *a):
    old = sys.stdout
    sys.stdout = open(os.devnull, "w")
    try:
        return fn(*a)
    finally:
        sys.stdout.close()
        sys.stdout = old


def _analyse(sys_path, pdb_path, objdump, tables):
    a = Analysis(sys_path, pdb_path, objdump, tables)
    a.resolve()
    a.check_recursion()
    return a


def _oversized_copy(a, grow, consistent):
    """A copy of the image in which one function on a worst path allocates
    `grow` more bytes: its UNWIND_INFO (ALLOC_LARGE) and, if `consistent`,
    its prologue's immediate (`sub rsp, imm32` or `mov eax, imm32` before
    __chkstk) too. Returns (bytes, function, entry point name)."""
    img = a.img
    d = bytearray(img.data)

    def file_off(rva):
        for _, va, _, rawptr, rawsize, _ in img.sections:
            if va <= rva < va + rawsize:
                return rawptr + rva - va
        raise Fail("RVA %#x not in the file" % rva)

    for name, _ in a.spec.ENTRY_POINTS:
        (_, path), _ = a.solve(a.by_name[name].start)
        for v, _, _ in path:
            if v not in a.rtf:
                continue
            _, _, u = a.rtf[v]
            count = img.read(u, 4)[2]
            codes = [struct.unpack("<BB", img.read(u + 4 + 2 * i, 2)) for i in range(count)]
            slot = [i for i, (_, oi) in enumerate(codes) if oi & 0xF == 1 and oi >> 4 == 0]
            imm = None
            for i in a.funcs[v].insns[:16]:
                raw = img.read(i.addr, 7)
                if raw[:3] == b"\x48\x81\xec" or raw[:1] == b"\xb8":
                    imm = i.addr + (3 if raw[:1] == b"\x48" else 1)
                    break
            if not slot or imm is None:
                continue
            so = file_off(u + 4 + 2 * (slot[0] + 1))
            struct.pack_into("<H", d, so, struct.unpack_from("<H", d, so)[0] + grow // 8)
            if consistent:
                io = file_off(imm)
                struct.pack_into("<I", d, io, struct.unpack_from("<I", d, io)[0] + grow)
            return bytes(d), a.funcs[v], name
    raise Fail("no function with ALLOC_LARGE and a recognisable prologue on any worst path")


def self_test(args):
    """The check must be able to fail. On the real image:
    (1) a budget one byte below the measured worst case;
    (2) a synthetic copy in which a function on a worst path allocates
        64 KiB more (unwind info and prologue both patched): the bound must
        grow by exactly 64 KiB, consistently, and fail a budget below it;
    (3) a copy in which only the unwind info was patched: the cross-check
        must report the mismatch;
    (4) the INDIRECT table emptied: indirect calls unresolved;
    (5) the RECURSION table emptied: unbounded recursion."""
    failures = []
    a = _analyse(args.sys, args.pdb, args.objdump, args.tables)
    depths = {n: a.solve(a.by_name[n].start)[0][0] for n, _ in args.tables.ENTRY_POINTS}
    worst = max(depths.values())
    ok, _ = _quiet(report, a, worst, False)
    if not ok:
        failures.append("the real image does not pass at a budget of its own worst case (%d)" % worst)
    ok, _ = _quiet(report, a, worst - 1, False)
    if ok:
        failures.append("(1) a budget 1 byte below the measured worst case (%d) passed" % worst)
    grow = 65536
    for consistent in (True, False):
        data, f, entry = _oversized_copy(a, grow, consistent)
        with tempfile.NamedTemporaryFile(suffix=".sys", delete=False) as t:
            t.write(data)
        try:
            b = _analyse(t.name, args.pdb, args.objdump, args.tables)
            ok, res = _quiet(report, b, depths[entry] + grow - 1, False)
        finally:
            os.unlink(t.name)
        mismatch = [e for e in b.errors if "frame from UNWIND_INFO" in e]
        dep = dict(res).get(entry, 0)
        if consistent and (ok or b.errors or dep != depths[entry] + grow):
            failures.append("(2) %s with a 64 KiB larger frame: pass=%s, errors=%s, bound %d "
                            "(expected %d)" % (f.name, ok, b.errors[:2], dep, depths[entry] + grow))
        if not consistent and (ok or not mismatch):
            failures.append("(3) unwind info and prologue of %s disagree, not reported" % f.name)

    def without(table):
        """Analyses the image with the named resolution table emptied."""
        emptied = dataclasses.replace(args.tables, **{table: []})
        a = _analyse(args.sys, args.pdb, args.objdump, emptied)
        return a, _quiet(report, a, 1 << 30, False)[0]

    c, ok = without("INDIRECT")
    if ok or not c.unresolved:
        failures.append("(4) unresolved indirect calls (empty INDIRECT table) passed")
    r, ok = without("RECURSION")
    cycles = [e for e in r.errors if e.startswith("recursion not bounded")]
    if ok or not cycles:
        failures.append("(5) unbounded recursion (empty RECURSION table) passed")
    if failures:
        for f in failures:
            print("stack-usage self-test FAILED: " + f)
        return 1
    print("stack-usage self-test: rejected (1) a budget 1 byte below the worst case (%d), "
          "(2) %s made 64 KiB larger (bound %d), (3) unwind info contradicting the prologue, "
          "(4) %d unresolved indirect call sites, (5) %d unbounded recursions"
          % (worst, f.name, depths[entry] + grow, len(c.unresolved), len(cycles)))
    return 0
