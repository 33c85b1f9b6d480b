"""Shared by the modules: the error type, x64 register names, name globs."""

import re


VOLATILE = ("rax", "rcx", "rdx", "r8", "r9", "r10", "r11")
REGS64 = ("rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "rsp",
          "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15")


def _alias_table():
    t = {}
    for r in ("ax", "bx", "cx", "dx"):
        full = "r" + r
        for a in (full, "e" + r, r, r[0] + "l", r[0] + "h"):
            t[a] = full
    for r in ("si", "di", "bp", "sp"):
        full = "r" + r
        for a in (full, "e" + r, r, r + "l"):
            t[a] = full
    for n in range(8, 16):
        full = "r%d" % n
        for a in (full, full + "d", full + "w", full + "b"):
            t[a] = full
    return t


ALIAS = _alias_table()


class Fail(Exception):
    pass


_GLOBS = {}


def glob(pattern, s):
    """Whether `s` matches `pattern`, where only `*` is special (any text)."""
    r = _GLOBS.get(pattern)
    if r is None:
        r = _GLOBS[pattern] = re.compile("^" + ".*".join(map(re.escape, pattern.split("*"))) + "$",
                                         re.S)
    return r.match(s) is not None


def match_any(name, pats):
    return any(glob(p, name) for p in pats)
