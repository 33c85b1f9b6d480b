"""Disassembly (llvm-objdump) and the per-function register constant
propagation used to resolve indirect calls and jump tables."""

import os
import re
import shutil
import subprocess

from .common import ALIAS, REGS64, VOLATILE, Fail


INSN = re.compile(r"^\s*([0-9a-f]+):\s+(\S+)(?:\s+(.*?))?\s*$")
DISP = re.compile(r"([+-] )(\d+)\]")


class Insn:
    __slots__ = ("addr", "next", "mnem", "ops", "comment_target")

    def __init__(self, addr, mnem, ops, comment_target):
        self.addr, self.mnem, self.ops, self.comment_target = addr, mnem, ops, comment_target
        self.next = None

    def __repr__(self):
        return "%x: %s %s" % (self.addr, self.mnem, self.ops)


def find_objdump(explicit):
    if explicit:
        return explicit
    cands = []
    try:
        root = subprocess.run(["rustc", "+nightly", "--print", "sysroot"], capture_output=True,
                              text=True, check=True).stdout.strip()
        cands.append(os.path.join(root, "lib/rustlib/x86_64-unknown-linux-gnu/bin/llvm-objdump"))
    except (OSError, subprocess.CalledProcessError):
        pass
    cands += [shutil.which("llvm-objdump") or ""]
    for c in cands:
        if c and os.access(c, os.X_OK):
            return c
    raise Fail("llvm-objdump not found (scripts/setup.sh installs llvm-tools-preview for nightly)")


def disassemble(objdump, path, base):
    out = subprocess.run([objdump, "-d", "--no-show-raw-insn", "-M", "intel", "--section=.text", path],
                         capture_output=True, text=True, check=True).stdout
    insns = []
    for line in out.splitlines():
        m = INSN.match(line)
        if not m:
            continue
        addr = int(m.group(1), 16) - base
        mnem, ops = m.group(2), (m.group(3) or "")
        # "rep movsb" and friends: prefix + mnemonic
        if mnem in ("rep", "repe", "repne", "lock", "rex64", "data16", "cs", "notrack") and ops:
            parts = ops.split(None, 1)
            mnem, ops = mnem + " " + parts[0], (parts[1] if len(parts) > 1 else "")
        target = None
        if "#" in ops:
            ops, comment = ops.split("#", 1)
            ops = ops.strip()
            t = re.match(r"\s*0x([0-9a-f]+)", comment)
            if t:
                target = int(t.group(1), 16) - base
        elif re.match(r"^0x[0-9a-f]+( <.*>)?$", ops):
            target = int(ops.split()[0], 16) - base
            ops = ops.split()[0]
        # Older llvm-objdump prints displacements in decimal: use hex throughout.
        ops = DISP.sub(lambda m: "%s%#x]" % (m.group(1), int(m.group(2))), ops)
        insns.append(Insn(addr, mnem, ops, target))
    for a, b in zip(insns, insns[1:]):
        a.next = b.addr
    if insns:
        insns[-1].next = insns[-1].addr + 1
    return insns


# ---------------------------------------------------------------------------
# Register constant propagation (per function)
# ---------------------------------------------------------------------------
TOP = ("top",)
NO_WRITE = {"cmp", "test", "push", "jmp", "call", "ret", "nop", "int3", "ud2", "bt", "ucomiss",
            "ucomisd", "comiss", "comisd", "ptest", "lfence", "mfence", "sfence", "pause",
            "prefetcht0", "prefetcht1", "prefetcht2", "prefetchnta", "prefetchw", "clflush", "int"}


def operands(ops):
    out, depth, cur = [], 0, ""
    for ch in ops:
        if ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
        if ch == "," and depth == 0:
            out.append(cur.strip())
            cur = ""
        else:
            cur += ch
    if cur.strip():
        out.append(cur.strip())
    return out


def transfer(ins, state):
    """Apply `ins` to the abstract register state (dict reg -> value)."""
    m, ops = ins.mnem, operands(ins.ops)
    if m == "call":
        for r in VOLATILE:
            state[r] = TOP
        return
    if m.startswith("j") or m in NO_WRITE:
        return
    implicit = ()
    if m in ("mul", "div", "idiv") or (m == "imul" and len(ops) == 1):
        implicit = ("rax", "rdx")
    elif m in ("cqo", "cdq", "cwd", "cdqe", "cwde", "cbw"):
        implicit = ("rax", "rdx")
    elif m == "cpuid":
        implicit = ("rax", "rbx", "rcx", "rdx")
    elif m in ("rdtsc", "rdtscp"):
        implicit = ("rax", "rcx", "rdx")
    elif re.match(r"^(rep\w* )?(movs|stos|lods|scas|cmps)[bwdq]?$", m):
        implicit = ("rax", "rcx", "rsi", "rdi")
    elif m.startswith("cmpxchg") or m.startswith("lock cmpxchg"):
        implicit = ("rax", "rdx")
    for r in implicit:
        state[r] = TOP
    if not ops:
        return
    written = [ops[0]]
    if m in ("xchg", "xadd", "lock xadd", "lock xchg") and len(ops) > 1:
        written.append(ops[1])
    for w in written:
        r = ALIAS.get(w)
        if r is None:
            continue
        val = TOP
        if w == r and len(ops) == 2 and m in ("mov", "lea"):
            src = ops[1]
            if m == "mov" and src in REGS64:
                val = state.get(src, TOP)
            elif "[rip" in src and ins.comment_target is not None:
                if m == "lea":
                    val = ("addr", ins.comment_target)
                elif src.startswith("qword ptr"):
                    val = ("load", ins.comment_target)
            elif m == "mov":
                mm = SLOT.match(src)
                if mm:
                    val = ("slot", int(mm.group(2) or "0", 16))
        state[r] = val


# `qword ptr [reg + 0xNN]`: a pointer loaded from a fixed offset of an object
# (a vtable slot when called).
SLOT = re.compile(r"^qword ptr \[(\w+)(?: \+ 0x([0-9a-f]+))?\]$")


def join(a, b):
    if a is None:
        return dict(b)
    out = {}
    for r in REGS64:
        x, y = a.get(r, TOP), b.get(r, TOP)
        out[r] = x if x == y else TOP
    return out
