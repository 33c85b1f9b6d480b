#!/usr/bin/env python3
"""Static worst-case stack usage of the linked driver image (pipesensor.sys).

usage: stack-usage.py [--budget BYTES] [--objdump PATH] [--verbose] SYS PDB
       stack-usage.py --self-test [--objdump PATH] SYS PDB
       stack-usage.py --locals FUNCTION-PATTERN SYS PDB

(scripts/stack-usage.sh builds the driver and runs the self-test and the
check; see there.)

What it reads, all of it from the final image (after fat LTO, inlining and
the linker's /OPT:REF,ICF), so what is measured is what runs:
* the PE image: sections, the import table (IAT slot -> kernel routine),
  the exception directory (.pdata) and its UNWIND_INFO, base relocations;
* the PDB: every function's name, start and length (S_GPROC32/S_LPROC32)
  and the data symbols (which static a routine pointer is loaded from);
* `llvm-objdump -d` of .text: every call and jump.

Frames. A function's frame = 8 (return address) + what its prologue pushes
and allocates, from its UNWIND_INFO (what the kernel unwinds with; a
`__chkstk` frame is an ALLOC_LARGE there), cross-checked against the
disassembled prologue (push, sub rsp imm, mov eax N + call __chkstk + sub
rsp rax): a mismatch is an error. A function without .pdata must be a leaf
that never moves rsp (x64 ABI): checked. Any rsp decrement outside a
prologue (alloca, realignment) is an error.

Edges. Direct calls, and jumps to another function (tail calls, counted like
calls: an over-approximation by the jumping function's frame). Calls through
the IAT are kernel routines: their own stack is outside the image; the
report shows how much of ours is in use at the deepest call of each.
Register-indirect calls are resolved by a constant propagation over each
function's control flow (register loaded from an IAT slot, from a named
static, `lea` of a function); jump tables (`movsxd r, [table + 4*i]; add r,
table; jmp r`) are resolved the same way and stay inside the function. What
is left (fmt's argument functions, `dyn fmt::Write` vtable slots, the
timer's `fn()` in a static) must match an entry of INDIRECT, which says what
each can call and why; anything else is an error.

Recursion. Every cycle of the call graph must pass through a function listed
in RECURSION with a bound on how often it may appear on one path; the worst
path is then searched under those bounds. Anything else is an error.

Completeness. Every function whose address is taken (a `lea` in code, or a
pointer in data per the base relocations) must be an entry point, an
INDIRECT target, or listed in NOT_CALLED: a new callback cannot go
unanalysed.

What it cannot see (and the report says so): the stack of the kernel
routines the driver calls (the file-system stack below ZwCreateFile /
ZwReadFile, the registry, DbgPrintEx, KeBugCheckEx) and the frames below our
entry points; the INDIRECT and RECURSION claims are read from the code by a
person (each entry says why). Not a substitute for Driver Verifier.

Exit status: 0 when every entry point's bound is within the budget and
nothing is unresolved; 1 otherwise (and on any inconsistency).
"""

import argparse
import bisect
import collections
import os
import re
import shutil
import signal
import struct
import subprocess
import sys
import tempfile

# ---------------------------------------------------------------------------
# Entry points: where the kernel calls into the image (name in the PDB, role).
# ---------------------------------------------------------------------------
ENTRY_POINTS = [
    ("pipesensor::sys::DriverEntry", "DriverEntry (I/O manager, system thread)"),
    ("pipesensor::sys::dispatch_device_control", "IRP_MJ_DEVICE_CONTROL dispatch (caller's thread)"),
    ("pipesensor::sys::dispatch_create_close", "IRP_MJ_CREATE/CLOSE dispatch"),
    ("pipesensor::sys::dispatch_cleanup", "IRP_MJ_CLEANUP dispatch (completes the handle's pended EVENTS_V2)"),
    ("pipesensor::sys::pending::cancel_routine", "DRIVER_CANCEL of a pended EVENTS_V2 (IoCancelIrp, <= DISPATCH_LEVEL)"),
    ("pipesensor::sys::pre_create_named_pipe", "minifilter pre-op IRP_MJ_CREATE_NAMED_PIPE"),
    ("pipesensor::sys::pre_create", "minifilter pre-op IRP_MJ_CREATE"),
    ("pipesensor::sys::instance_setup", "minifilter InstanceSetupCallback"),
    ("pipesensor::sys::instance_query_teardown", "minifilter InstanceQueryTeardownCallback"),
    ("pipesensor::sys::filter_unload", "minifilter FilterUnloadCallback (unload)"),
    ("pipesensor::sys::driver_unload", "DriverUnload (unload, Wine)"),
    ("pipesensor::sys::timer_thread", "timer system thread (PsCreateSystemThread)"),
    ("pipesensor::sys::rescan_thread", "periodic rescan system thread (PsCreateSystemThread)"),
    ("pipesensor::sys::bugcheck_secondary", "bug-check reason callback (secondary dump)"),
]

# ---------------------------------------------------------------------------
# Indirect calls that constant propagation cannot resolve, resolved by
# reading the code. Each entry: (pattern of the calling function's PDB name,
# pattern of the call's operand as printed in the report, target name
# patterns, why, scope). Patterns match with `*` as the only wildcard; a
# target pattern must match at least one function whose address is taken,
# or the table is stale (error). A site matching no entry is an error
# ("unresolved indirect call").
#
# scope ANY: every address-taken function matching the targets.
# scope ACTIVE_FRAMES: only those whose address a function on the current
# call path took (a `lea` in its code) or that sit in data (vtables,
# statics). For fmt::rt::Argument: format_args! builds the Argument array on
# the stack of the function that formats (it borrows its values), so that
# function is still active when core::fmt::write calls through it.
# ---------------------------------------------------------------------------
# The image's core::fmt::Write impls, by `dyn Write` vtable slot (after
# drop_in_place, size, align): 0x18 write_str, 0x20 write_char, 0x28 write_fmt.
WRITE_STR = ["*::write_str", "*::write_str<*>"]
WRITE_CHAR = ["*::write_char", "*::write_char<*>"]
WRITE_FMT = ["*::write_fmt", "*::write_fmt<*>"]
# Display/Debug/... impls: the formatter fns of fmt::rt::Argument.
FMT_IMPLS = ["*::fmt", "*::fmt<*>"]
ANY, ACTIVE_FRAMES = "any", "active-frames"
FORMATTING = ["core::fmt::*", "*::fmt", "*::fmt<*>", "*::write_str", "*::write_str<*>",
              "*::write_char", "*::write_char<*>", "*::write_fmt", "*::write_fmt<*>"]
INDIRECT = [
    # core::fmt::write calls each argument's formatting function: the fn
    # pointer at offset 8 of a 16-byte fmt::rt::Argument, built by
    # format_args! in the caller from the Display/Debug impls it formats.
    ("core::fmt::write", "call qword ptr [* + * + 0x8]", FMT_IMPLS,
     "fmt::rt::Argument formatter fns (Display/Debug impls)", ACTIVE_FRAMES),
] + [
    # Formatting code writes to Formatter.buf / the output, a `dyn fmt::Write`:
    # the image's Write impls are sys::LineBuf (sys::log) and
    # sensor_core::proto::FixedText<N> (messages).
    (caller, "* = slot %#x" % slot, targets, "dyn fmt::Write::%s" % what, ANY)
    for caller in FORMATTING
    for slot, targets, what in ((0x18, WRITE_STR, "write_str"), (0x20, WRITE_CHAR, "write_char"),
                                (0x28, WRITE_FMT, "write_fmt"))
] + [
    # The timer thread calls the `fn()` start_timer stored in TIMER.func.
    # start_timer's only caller is content::start_proven_timer, which passes
    # content::proven_timer_fired (driver/src/content.rs).
    ("pipesensor::sys::timer_thread", "call rax = [pipesensor::sys::TIMER+*]",
     ["pipesensor::content::proven_timer_fired"],
     "TIMER.func: start_timer(secs, proven_timer_fired) is its only use", ANY),
]

# Routine pointers resolved at run time (MmGetSystemRoutineAddress) and kept
# in statics: a call through one is a call into the kernel, like an import.
# (static's PDB name pattern -> kernel routine it holds)
KERNEL_POINTER_STATICS = [
    ("pipesensor::sys::EX_ALLOCATE_POOL2", "ntoskrnl.exe!ExAllocatePool2 (MmGetSystemRoutineAddress)"),
    ("pipesensor::sys::QUERY_TIME", "ntoskrnl.exe!KeQuerySystemTime[Precise] (MmGetSystemRoutineAddress)"),
    ("pipesensor::sys::INTERRUPT_TIME", "ntoskrnl.exe!KeQueryInterruptTime (MmGetSystemRoutineAddress)"),
    ("pipesensor::sys::INTERRUPT_TIME_PRECISE", "ntoskrnl.exe!KeQueryInterruptTimePrecise (MmGetSystemRoutineAddress)"),
]

# Recursion: every cycle of the call graph must pass through a function
# listed here, with how often it may appear on one path (the worst path is
# searched under these bounds). (pattern, bound, why)
RECURSION = [
    # Formatting re-enters core::fmt::write when a Display impl itself uses
    # write!/format_args!. The deepest nestings in the driver are 3:
    # check_signature's write!(message, "{e}") (1) -> TrustError's Display
    # (2) -> KeyId's Display writing "{b:02x}" or ParseError's (3) -> u8/u32
    # (pad_integral: no further write); and sys::log's "PipeSensor: {args}"
    # (1) -> <Arguments as Display> running the caller's format (2) ->
    # rollout::Reason / ControlParseError (3) -> u32. Bound 4: one level of
    # margin (e.g. a log line that displays a TrustError). See the Display
    # impls in content-trust/src/lib.rs, parser/src/error.rs,
    # sensor-core/src/rollout.rs and the format strings in driver/src.
    ("core::fmt::write", 4, "Display impls that format other Display values"),
    # sort_unstable (sensor_core::store::order_candidates, at most
    # MAX_CANDIDATES = 64 sequences): ipnsort's quicksort recurses into the
    # left partition with limit = 2*ilog2(len|1) = 12 and stops at limit 0
    # (heapsort): at most 13 nested quicksort frames.
    # Only this instantiation: another sort has other lengths (review it).
    ("core::slice::sort::unstable::quicksort::quicksort<u64,*order_candidates*>", 13,
     "limit = 2*ilog2(64|1) = 12 recursions for <= 64 candidates"),
    # choose_pivot recurses (median3_rec) only for len >= 64, with n = len/8
    # <= 8 and once more for n*8 >= 64: at most 2 nested frames.
    ("core::slice::sort::shared::pivot::median3_rec<u64,*order_candidates*>", 2,
     "n = len/8 <= 8 for <= 64 candidates: one recursion"),
]

# Functions whose address is taken but that are not called through a pointer
# by anything in the image (why each one is safe to leave out).
NOT_CALLED = [
    ("pipesensor::sys::__CxxFrameHandler3",
     "referenced by precompiled core's unwind data only; panic=abort never unwinds"),
]

# Kernel routines that are leaves with a few bytes of stack (not reported as
# the "deepest kernel call"; __chkstk runs before the frame it probes is
# allocated, so its 24 bytes are inside that frame's bound).
LEAF_IMPORT = re.compile(r"^ntoskrnl\.exe!(memcpy|memmove|memset|memcmp|__chkstk)$")

IMPORT_FRAME_NOTE = ("imported kernel routines run on this stack too; their use is "
                     "outside the image: see the 'kernel call' lines")

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


# ---------------------------------------------------------------------------
# PE image
# ---------------------------------------------------------------------------
class Image:
    def __init__(self, path):
        self.data = d = open(path, "rb").read()
        pe = struct.unpack_from("<I", d, 0x3C)[0]
        if d[pe:pe + 4] != b"PE\0\0":
            raise Fail("%s: not a PE image" % path)
        nsect, = struct.unpack_from("<H", d, pe + 6)
        optsz, = struct.unpack_from("<H", d, pe + 20)
        opt = pe + 24
        if struct.unpack_from("<H", d, opt)[0] != 0x20B:
            raise Fail("%s: not PE32+" % path)
        self.entry_rva, = struct.unpack_from("<I", d, opt + 16)
        self.image_base, = struct.unpack_from("<Q", d, opt + 24)
        ndirs, = struct.unpack_from("<I", d, opt + 108)
        self.dirs = [struct.unpack_from("<II", d, opt + 112 + 8 * i) for i in range(ndirs)]
        self.sections = []
        for i in range(nsect):
            off = opt + optsz + 40 * i
            name = d[off:off + 8].rstrip(b"\0").decode("ascii", "replace")
            vsize, va, rawsize, rawptr = struct.unpack_from("<IIII", d, off + 8)
            chars, = struct.unpack_from("<I", d, off + 36)
            self.sections.append((name, va, vsize, rawptr, rawsize, chars))

    def section(self, name):
        for s in self.sections:
            if s[0] == name:
                return s
        raise Fail("no %s section" % name)

    def read(self, rva, n):
        for _, va, vsize, rawptr, rawsize, _ in self.sections:
            if va <= rva < va + max(vsize, rawsize):
                off = rva - va
                b = self.data[rawptr + off:rawptr + min(off + n, rawsize)]
                return b + b"\0" * (n - len(b))
        raise Fail("RVA %#x outside the image" % rva)

    def u32(self, rva):
        return struct.unpack("<I", self.read(rva, 4))[0]

    def u64(self, rva):
        return struct.unpack("<Q", self.read(rva, 8))[0]

    def cstr(self, rva):
        out = b""
        while True:
            c = self.read(rva + len(out), 64)
            i = c.find(b"\0")
            if i >= 0:
                return (out + c[:i]).decode("ascii", "replace")
            out += c

    def imports(self):
        """IAT slot RVA -> 'dll!routine'."""
        rva, size = self.dirs[1]
        out = {}
        while size and True:
            ilt, _, _, name_rva, iat = struct.unpack("<IIIII", self.read(rva, 20))
            if ilt == 0 and iat == 0:
                break
            dll = self.cstr(name_rva)
            i = 0
            src = ilt or iat
            while True:
                e = self.u64(src + 8 * i)
                if e == 0:
                    break
                name = "#%d" % (e & 0xFFFF) if e >> 63 else self.cstr((e & 0x7FFFFFFF) + 2)
                out[iat + 8 * i] = "%s!%s" % (dll, name)
                i += 1
            rva += 20
        return out

    def runtime_functions(self):
        """[(begin, end, frame bytes incl. return address, unwind summary)]."""
        rva, size = self.dirs[3]
        out = []
        for i in range(size // 12):
            b, e, u = struct.unpack("<III", self.read(rva + 12 * i, 12))
            out.append((b, e, self.unwind_frame(u), u))
        return out

    def unwind_frame(self, u, depth=0):
        """Bytes the prologue described by UNWIND_INFO at `u` takes below
        the return address, plus 8 for the return address itself."""
        if depth > 8:
            raise Fail("unwind chain too long at %#x" % u)
        hdr = self.read(u, 4)
        version, flags = hdr[0] & 7, hdr[0] >> 3
        count = hdr[2]
        if version not in (1, 2):
            raise Fail("UNWIND_INFO version %d at %#x" % (version, u))
        codes = [struct.unpack_from("<BB", self.read(u + 4 + 2 * i, 2)) for i in range(count)]
        total, i = 0, 0
        while i < count:
            _, opinfo = codes[i]
            op, info = opinfo & 0xF, opinfo >> 4
            if op == 0:                      # UWOP_PUSH_NONVOL
                total += 8
                i += 1
            elif op == 1:                    # UWOP_ALLOC_LARGE
                if info == 0:
                    total += struct.unpack("<H", self.read(u + 4 + 2 * (i + 1), 2))[0] * 8
                    i += 2
                else:
                    total += self.u32(u + 4 + 2 * (i + 1))
                    i += 3
            elif op == 2:                    # UWOP_ALLOC_SMALL
                total += info * 8 + 8
                i += 1
            elif op == 3:                    # UWOP_SET_FPREG
                i += 1
            elif op == 4:                    # UWOP_SAVE_NONVOL
                i += 2
            elif op == 5:                    # UWOP_SAVE_NONVOL_FAR
                i += 3
            elif op == 6 and version == 2:   # UWOP_EPILOG
                i += 2
            elif op == 8:                    # UWOP_SAVE_XMM128
                i += 2
            elif op == 9:                    # UWOP_SAVE_XMM128_FAR
                i += 3
            elif op == 10:                   # UWOP_PUSH_MACHFRAME
                total += 48 if info else 40
                i += 1
            else:
                raise Fail("unknown unwind op %d at %#x" % (op, u))
        if flags & 4:                        # UNW_FLAG_CHAININFO: add the parent's prologue
            chain = u + 4 + 2 * (count + (count & 1))
            _, _, pu = struct.unpack("<III", self.read(chain, 12))
            total += self.unwind_frame(pu, depth + 1) - 8
        return total + 8

    def relocated_pointers(self):
        """Values of every absolute 64-bit pointer the loader relocates (RVAs)."""
        rva, size = self.dirs[5] if len(self.dirs) > 5 else (0, 0)
        out = []
        end = rva + size
        while rva < end:
            page, bsize = struct.unpack("<II", self.read(rva, 8))
            if bsize < 8:
                break
            for j in range((bsize - 8) // 2):
                e, = struct.unpack("<H", self.read(rva + 8 + 2 * j, 2))
                if e >> 12 == 10:            # IMAGE_REL_BASED_DIR64
                    out.append(self.u64(page + (e & 0xFFF)) - self.image_base)
            rva += bsize
        return out


# ---------------------------------------------------------------------------
# PDB (MSF 7.0): procedure and data symbols
# ---------------------------------------------------------------------------
class Pdb:
    MAGIC = b"Microsoft C/C++ MSF 7.00\r\n\x1aDS\0\0\0"

    def __init__(self, path):
        d = open(path, "rb").read()
        if not d.startswith(self.MAGIC):
            raise Fail("%s: not an MSF 7.0 PDB" % path)
        bs, _, nblocks, dir_bytes, _, map_addr = struct.unpack_from("<6I", d, 32)
        nb = (dir_bytes + bs - 1) // bs
        dir_blocks = struct.unpack_from("<%dI" % nb, d, map_addr * bs)
        dirdata = b"".join(d[b * bs:(b + 1) * bs] for b in dir_blocks)[:dir_bytes]
        n, = struct.unpack_from("<I", dirdata, 0)
        sizes = struct.unpack_from("<%dI" % n, dirdata, 4)
        pos = 4 + 4 * n
        self.streams = []
        for s in sizes:
            if s == 0xFFFFFFFF:
                self.streams.append(b"")
                continue
            k = (s + bs - 1) // bs
            blocks = struct.unpack_from("<%dI" % k, dirdata, pos)
            pos += 4 * k
            self.streams.append(b"".join(d[b * bs:(b + 1) * bs] for b in blocks)[:s])
        self.procs = []    # (segment, offset, size, name)
        self.data = []     # (segment, offset, name)
        self.publics = []  # (segment, offset, name)
        self.module_syms = []
        dbi = self.streams[3]
        sym_rec_stream, = struct.unpack_from("<H", dbi, 20)
        modinfo_size, = struct.unpack_from("<i", dbi, 24)
        p, end = 64, 64 + modinfo_size
        while p < end:
            stream, = struct.unpack_from("<H", dbi, p + 34)
            symbytes, = struct.unpack_from("<I", dbi, p + 36)
            q = p + 64
            for _ in range(2):               # module name, object file name
                q = dbi.index(b"\0", q) + 1
            p = (q + 3) & ~3
            if stream != 0xFFFF and symbytes:
                self.module_syms.append(self.streams[stream][:symbytes])
                self._symbols(self.streams[stream][4:symbytes])
        if sym_rec_stream != 0xFFFF:
            self._symbols(self.streams[sym_rec_stream])

    def _symbols(self, s):
        p = 0
        while p + 4 <= len(s):
            reclen, kind = struct.unpack_from("<HH", s, p)
            if reclen < 2:
                break
            rec = s[p:p + 2 + reclen]
            if kind in (0x1110, 0x110F, 0x1147, 0x1146):      # S_[GL]PROC32[_ID]
                size, = struct.unpack_from("<I", rec, 16)
                off, seg = struct.unpack_from("<IH", rec, 32)
                self.procs.append((seg, off, size, rec[39:].split(b"\0")[0].decode("utf-8", "replace")))
            elif kind in (0x110D, 0x110C):                    # S_[GL]DATA32
                off, seg = struct.unpack_from("<IH", rec, 8)
                self.data.append((seg, off, rec[14:].split(b"\0")[0].decode("utf-8", "replace")))
            elif kind == 0x110E:                              # S_PUB32
                off, seg = struct.unpack_from("<IH", rec, 8)
                self.publics.append((seg, off, rec[14:].split(b"\0")[0].decode("utf-8", "replace")))
            p += 2 + reclen


    # -- diagnostics: the locals of a function and their sizes ---------------
    def type_sizes(self):
        """TPI type index -> (size, name) for the types locals use."""
        tpi = self.streams[2]
        hdr_size, begin, end = struct.unpack_from("<III", tpi, 4)
        recs, p, ti = {}, hdr_size, begin
        while ti < end and p + 4 <= len(tpi):
            reclen, kind = struct.unpack_from("<HH", tpi, p)
            recs[ti] = (kind, tpi[p + 4:p + 2 + reclen])
            p += 2 + reclen
            ti += 1

        def numeric(b, o):
            v, = struct.unpack_from("<H", b, o)
            if v < 0x8000:
                return v, o + 2
            w = {0x8000: ("<b", 1), 0x8001: ("<h", 2), 0x8002: ("<H", 2), 0x8003: ("<i", 4),
                 0x8004: ("<I", 4), 0x8009: ("<q", 8), 0x800A: ("<Q", 8)}[v]
            return struct.unpack_from(w[0], b, o + 2)[0], o + 2 + w[1]

        def cstr(b, o):
            e = b.index(b"\0", o)
            return b[o:e].decode("utf-8", "replace"), e + 1

        full = {}
        for t, (kind, b) in recs.items():
            if kind in (0x1504, 0x1505, 0x1506):
                props, = struct.unpack_from("<H", b, 2)
                if props & 0x80:
                    continue
                o = 16 if kind != 0x1506 else 8
                size, o = numeric(b, o)
                name, o = cstr(b, o)
                uniq = cstr(b, o)[0] if props & 0x200 else name
                full[uniq] = full[name] = (size, name)
        prim = {0x03: 0, 0x10: 1, 0x20: 1, 0x68: 1, 0x69: 1, 0x30: 1, 0x11: 2, 0x21: 2, 0x72: 2,
                0x73: 2, 0x7A: 2, 0x12: 4, 0x22: 4, 0x74: 4, 0x75: 4, 0x40: 4, 0x7B: 4, 0x13: 8,
                0x23: 8, 0x76: 8, 0x77: 8, 0x41: 8, 0x78: 16, 0x79: 16}
        memo = {}

        def size(t, depth=0):
            if t in memo:
                return memo[t]
            if t < 0x1000:
                return (8 if (t >> 8) & 7 else prim.get(t & 0xFF, 0)), "primitive %#x" % t
            if t not in recs or depth > 20:
                return 0, "?"
            kind, b = recs[t]
            r = (0, "kind %#x" % kind)
            if kind in (0x1504, 0x1505, 0x1506):
                props, = struct.unpack_from("<H", b, 2)
                o = 16 if kind != 0x1506 else 8
                sz, o = numeric(b, o)
                name, o = cstr(b, o)
                uniq = cstr(b, o)[0] if props & 0x200 else name
                r = full.get(uniq, full.get(name, (sz, name)))
            elif kind == 0x1503:                       # LF_ARRAY
                elem, = struct.unpack_from("<I", b, 0)
                sz, _ = numeric(b, 8)
                r = (sz, "[%s; %d]" % (size(elem, depth + 1)[1], sz // max(1, size(elem, depth + 1)[0])))
            elif kind == 0x1507:                       # LF_ENUM
                ut, = struct.unpack_from("<I", b, 4)
                r = (size(ut, depth + 1)[0], cstr(b, 12)[0])
            elif kind == 0x1002:                       # LF_POINTER
                attr, = struct.unpack_from("<I", b, 4)
                r = ((attr >> 13) & 0x3F or 8, "pointer")
            elif kind == 0x1001:                       # LF_MODIFIER
                r = size(struct.unpack_from("<I", b, 0)[0], depth + 1)
            memo[t] = r
            return r

        return size

    def locals_of(self, seg, off):
        """[(frame offset, size, local name, type name)] of the procedure at
        seg:off, inlined callees' locals included."""
        size = self.type_sizes()
        for s in self.module_syms:
            p = 4                                      # after the CV signature; offsets count it
            while p + 4 <= len(s):
                reclen, kind = struct.unpack_from("<HH", s, p)
                if kind in (0x1110, 0x110F, 0x1147, 0x1146):
                    poff, pseg = struct.unpack_from("<IH", s, p + 32)
                    end, = struct.unpack_from("<I", s, p + 8)
                    if (pseg, poff) == (seg, off):
                        return self._locals(s, p + 2 + reclen, end, size)
                    p = end
                    continue
                p += 2 + reclen
        return []

    @staticmethod
    def _locals(s, p, end, size):
        out, cur = [], None
        while p < end:
            reclen, kind = struct.unpack_from("<HH", s, p)
            rec = s[p:p + 2 + reclen]
            if kind == 0x113E:                         # S_LOCAL
                t, = struct.unpack_from("<I", rec, 4)
                cur = (rec[10:].split(b"\0")[0].decode("utf-8", "replace"), t)
            elif kind in (0x1142, 0x1144) and cur:     # S_DEFRANGE_FRAMEPOINTER_REL[_FULL_SCOPE]
                o, = struct.unpack_from("<i", rec, 4)
                sz, tn = size(cur[1])
                out.append((o, sz, cur[0], tn))
            elif kind == 0x1145 and cur:               # S_DEFRANGE_REGISTER_REL
                o, = struct.unpack_from("<i", rec, 8)
                sz, tn = size(cur[1])
                out.append((o, sz, cur[0], tn))
            p += 2 + reclen
        return out


# ---------------------------------------------------------------------------
# Disassembly
# ---------------------------------------------------------------------------
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


# ---------------------------------------------------------------------------
# The analysis
# ---------------------------------------------------------------------------
class Func:
    def __init__(self, start, end, name):
        self.start, self.end, self.name = start, end, name
        self.aliases = []
        self.frame = None          # bytes incl. return address
        self.prologue = None
        self.insns = []
        self.calls = []            # (callee start, kind 'call'/'tail', site addr)
        self.imports = []          # (routine, site addr)
        self.indirect = []         # (site addr, operand text, resolved targets or None)


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


class Analysis:
    def __init__(self, sys_path, pdb_path, objdump):
        self.img = Image(sys_path)
        self.pdb = Pdb(pdb_path)
        self.errors = []
        base = self.img.image_base
        text = self.img.section(".text")
        self.text = (text[1], text[1] + text[2])
        secs = self.img.sections

        def rva(seg, off):
            if not 1 <= seg <= len(secs):
                return None
            return secs[seg - 1][1] + off

        self.iat = self.img.imports()
        self.data_syms = {}
        for seg, off, name in self.pdb.data + self.pdb.publics:
            r = rva(seg, off)
            if r is not None:
                self.data_syms.setdefault(r, name)
        self.data_addrs = sorted(self.data_syms)
        self.insns = disassemble(objdump, sys_path, base)
        # Every data address the code refers to: a jump table ends at the
        # next one (tables without a `cmp`/`ja` bound).
        self.data_refs = sorted({i.comment_target for i in self.insns
                                 if i.comment_target is not None
                                 and not self.text[0] <= i.comment_target < self.text[1]})

        # Function boundaries: PDB procedures, .pdata entries, direct call
        # targets (import thunks have neither).
        named = {}
        for seg, off, size, name in self.pdb.procs:
            r = rva(seg, off)
            if r is None or not (self.text[0] <= r < self.text[1]):
                continue
            if r in named:
                if name not in named[r][1]:
                    named[r][1].append(name)
                named[r] = (max(named[r][0], size), named[r][1])
            else:
                named[r] = (size, [name])
        self.rtf = {b: (e, fr, u) for b, e, fr, u in self.img.runtime_functions()}
        starts = set(named) | set(self.rtf)
        for i in self.insns:
            if i.mnem == "call" and re.match(r"^0x[0-9a-f]+$", i.ops):
                starts.add(int(i.ops, 16) - base)
        pubs = {}
        for seg, off, name in self.pdb.publics:
            r = rva(seg, off)
            if r is not None:
                pubs.setdefault(r, name)
        starts = sorted(s for s in starts if self.text[0] <= s < self.text[1])
        self.funcs = {}
        for k, s in enumerate(starts):
            nxt = starts[k + 1] if k + 1 < len(starts) else self.text[1]
            if s in named:
                size, names = named[s]
                end = min(s + size, nxt) if size else nxt
                f = Func(s, end, names[0])
                f.aliases = names[1:]
            else:
                end = self.rtf[s][0] if s in self.rtf else nxt
                f = Func(s, min(end, nxt), pubs.get(s, "sub_%x" % s))
            self.funcs[s] = f
        self.starts = starts
        self.by_name = {}
        for f in self.funcs.values():
            for n in [f.name] + f.aliases:
                self.by_name.setdefault(n, f)
        # Instructions per function; anything outside every function must be padding.
        for i in self.insns:
            f = self.func_at(i.addr)
            if f is not None and i.addr < f.end:
                f.insns.append(i)
            elif i.mnem not in ("int3", "nop") and not i.mnem.startswith("nop"):
                self.errors.append("code outside any known function at %#x: %r" % (i.addr + base, i))
        self.addr_taken = self.find_address_taken()
        self.tables = 0
        for f in self.funcs.values():
            self.frame(f)
            self.edges(f)

    def data_name(self, addr):
        """`symbol` or `symbol+offset` of a data address (PDB data symbols)."""
        k = bisect.bisect_right(self.data_addrs, addr) - 1
        if k < 0:
            return "?"
        a = self.data_addrs[k]
        off = addr - a
        return self.data_syms[a] + ("+%#x" % off if off else "")

    def func_at(self, addr):
        k = bisect.bisect_right(self.starts, addr) - 1
        if k < 0:
            return None
        return self.funcs[self.starts[k]]

    def va(self, rva):
        return rva + self.img.image_base

    def find_address_taken(self):
        """Functions whose address is taken: in data (base relocations) or by
        a `lea` in code (per taking function, for ACTIVE_FRAMES)."""
        taken = set()
        self.in_data = set()
        self.lea_by = collections.defaultdict(set)
        for p in self.img.relocated_pointers():
            if p in self.funcs:
                taken.add(p)
                self.in_data.add(p)
        for i in self.insns:
            if i.mnem == "lea" and i.comment_target in self.funcs:
                taken.add(i.comment_target)
                f = self.func_at(i.addr)
                if f is not None:
                    self.lea_by[f.start].add(i.comment_target)
        return taken

    # -- frames -------------------------------------------------------------
    def frame(self, f):
        ins = f.insns
        if f.start not in self.rtf:
            # x64 ABI: a function without unwind data is a leaf that never
            # changes rsp. Check it.
            for i in ins:
                if i.mnem in ("push", "call") or (i.ops.startswith("rsp,") and i.mnem != "cmp"):
                    self.errors.append("%s has no .pdata but moves rsp or calls at %#x (%r)"
                                       % (f.name, self.va(i.addr), i))
                    break
            f.frame = 8
            f.prologue = "leaf (no .pdata)"
            return
        _, unwind_frame, u = self.rtf[f.start]
        f.frame = unwind_frame
        # Cross-check against the prologue as disassembled.
        prolog_size = self.img.read(u, 2)[1]
        total, k = 8, 0
        while k < len(ins) and ins[k].addr < f.start + prolog_size:
            i = ins[k]
            if i.mnem == "push":
                total += 8
            elif i.mnem == "sub" and i.ops.startswith("rsp,"):
                arg = i.ops.split(",", 1)[1].strip()
                if arg == "rax":
                    pass  # counted at the mov eax, N before __chkstk
                else:
                    total += int(arg, 0)
            elif i.mnem == "mov" and i.ops.startswith("eax,") and k + 2 < len(ins) \
                    and ins[k + 1].mnem == "call" and ins[k + 2].mnem == "sub" \
                    and ins[k + 2].ops == "rsp, rax":
                total += int(i.ops.split(",", 1)[1].strip(), 0)
            k += 1
        f.prologue = "unwind %d, prologue %d" % (unwind_frame, total)
        if total != unwind_frame:
            self.errors.append("%s: frame from UNWIND_INFO (%d) != from the prologue (%d)"
                               % (f.name, unwind_frame, total))
        # No other stack growth in the body.
        for i in ins[k:]:
            if i.mnem == "push" or (i.mnem in ("sub", "and") and i.ops.startswith("rsp,")) \
                    or (i.mnem == "lea" and i.ops.startswith("rsp,") and "rbp" not in i.ops):
                self.errors.append("%s: stack adjusted outside the prologue at %#x (%r): "
                                   "dynamic allocation or realignment, not bounded"
                                   % (f.name, self.va(i.addr), i))

    # -- edges --------------------------------------------------------------
    def edges(self, f):
        ins = f.insns
        if not ins:
            return
        index = {i.addr: k for k, i in enumerate(ins)}
        # Control flow inside f (for the constant propagation).
        succ = collections.defaultdict(list)
        tables = {}
        no_fall = set()
        for k, i in enumerate(ins):
            m = i.mnem
            if m.startswith("j") and re.match(r"^0x[0-9a-f]+$", i.ops):
                t = int(i.ops, 16) - self.img.image_base
                if f.start <= t < f.end and t in index:
                    succ[k].append(index[t])
                if m == "jmp":
                    no_fall.add(k)
            elif m == "jmp" or m == "ret" or m == "ud2" or m == "int3":
                no_fall.add(k)
            if k not in no_fall and k + 1 < len(ins):
                succ[k].append(k + 1)
        # Jump tables: jmp rX preceded by movsxd rX, dword ptr [rT + 4*rI];
        # add rX, rT, with rT = lea [rip + table] per the constant
        # propagation. Their edges feed the propagation back: iterate until
        # no table gains an edge (edges only grow, so this ends), then keep
        # only the tables whose base is still the one their edges came from.
        jumps = [k for k, i in enumerate(ins) if i.mnem == "jmp" and i.ops in REGS64]
        bases = {}
        while True:
            states = self.propagate(ins, succ, no_fall)
            grew = False
            for k in jumps:
                t = self.jump_table(f, ins, k, index, states)
                if t is None:
                    continue
                base, entries = t
                if bases.setdefault(k, base) != base:
                    continue
                new = [e for e in entries if e not in succ[k]]
                if new:
                    succ[k].extend(new)
                    grew = True
            if not grew:
                break
        for k in jumps:
            t = self.jump_table(f, ins, k, index, states)
            if t is not None and bases.get(k) == t[0]:
                tables[k] = t[1]
        self.tables += len(tables)
        for k, i in enumerate(ins):
            m = i.mnem
            if m not in ("call", "jmp"):
                continue
            op = i.ops
            site = self.va(i.addr)
            if re.match(r"^0x[0-9a-f]+$", op):
                t = int(op, 16) - self.img.image_base
                if m == "jmp" and f.start <= t < f.end:
                    continue
                g = self.funcs.get(t)
                if g is None:
                    self.errors.append("%s: %s into the middle of %s at %#x"
                                       % (f.name, m, getattr(self.func_at(t), "name", "?"), site))
                    continue
                f.calls.append((t, "call" if m == "call" else "tail", site))
                continue
            if m == "jmp" and k in tables:
                continue
            val = None
            if "[rip" in op and i.comment_target is not None:
                val = ("load", i.comment_target)
            elif op in REGS64:
                val = states[k].get(op, TOP) if states[k] is not None else TOP
            if val is not None and val[0] == "load" and val[1] in self.iat:
                f.imports.append((self.iat[val[1]], site))
                continue
            if val is not None and val[0] == "addr" and val[1] in self.funcs:
                f.calls.append((val[1], "call" if m == "call" else "tail", site))
                continue
            if val is not None and val[0] == "load":
                name = self.data_name(val[1])
                kp = [r for p, r in KERNEL_POINTER_STATICS if glob(p, name)]
                if kp:
                    f.imports.append((kp[0] + " via " + name, site))
                    continue
                op = "%s = [%s]" % (op, name)
            elif val is not None and val[0] == "slot":
                op = "%s = slot %#x" % (op, val[1])
            else:
                mm = SLOT.match(op)
                if mm and mm.group(1) in REGS64:
                    op = "%s = slot %#x" % (op, int(mm.group(2) or "0", 16))
            f.indirect.append((site, m + " " + op, None))

    def jump_table(self, f, ins, k, index, states):
        """(table address, [entry instruction indexes]) of the jump table
        `jmp` ins[k] dispatches through, or None."""
        reg = ins[k].ops
        add = movsxd = None
        for j in range(k - 1, max(k - 12, -1), -1):
            i = ins[j]
            ops = operands(i.ops)
            if add is None and i.mnem == "add" and len(ops) == 2 and ops[0] == reg and ops[1] in REGS64:
                add = ops[1]
                continue
            if add is not None and i.mnem == "movsxd" and len(ops) == 2 and ops[0] == reg:
                mm = re.match(r"dword ptr \[(\w+) \+ 4\*(\w+)\]$", ops[1])
                if mm and mm.group(1) == add:
                    movsxd = j
                break
            if add is not None and ALIAS.get(ops[0] if ops else "") == reg:
                break
        if movsxd is None:
            return None
        # The table base: the value of `add` where the entry is loaded.
        st = states[movsxd]
        val = st.get(add, TOP) if st is not None else TOP
        if val[0] != "addr":
            return None
        base = val[1]
        idx = ALIAS.get(re.match(r"dword ptr \[\w+ \+ 4\*(\w+)\]$", operands(ins[movsxd].ops)[1]).group(1))
        count = self.table_bound(ins, movsxd, idx)
        bounded = count is not None
        if not bounded:
            # No bound in the code (an index of a range the compiler knows,
            # e.g. an enum's discriminant): the table ends at the first
            # entry that is not an instruction of f, and at the latest where
            # the next object the code refers to begins. Reading too far
            # only adds edges inside f.
            n = bisect.bisect_right(self.data_refs, base)
            end = self.data_refs[n] if n < len(self.data_refs) else base + 4 * 256
            count = min(256, (end - base) // 4)
        targets = []
        p = base
        while (p - base) // 4 < count:
            off = struct.unpack("<i", self.img.read(p, 4))[0]
            t = (base + off) & 0xFFFFFFFF
            if not (f.start <= t < f.end) or t not in index:
                if not bounded:
                    break
                self.errors.append("%s: jump table at %#x: entry %d is not an instruction of "
                                   "the function" % (f.name, self.va(base), (p - base) // 4))
                return None
            targets.append(index[t])
            p += 4
        return (base, targets) if targets else None

    @staticmethod
    def table_bound(ins, movsxd, idx):
        """Entries of a jump table: the `cmp idx, N; ja default` guarding
        the index (N + 1 entries), following register copies back."""
        seen_ja = None
        for j in range(movsxd - 1, max(movsxd - 16, -1), -1):
            i = ins[j]
            ops = operands(i.ops)
            if i.mnem in ("ja", "jae"):
                seen_ja = i.mnem
                continue
            if i.mnem == "cmp" and len(ops) == 2 and ALIAS.get(ops[0]) == idx and seen_ja:
                try:
                    n = int(ops[1], 0)
                except ValueError:
                    return None
                return n + 1 if seen_ja == "ja" else n
            if ops and ALIAS.get(ops[0]) == idx and i.mnem not in NO_WRITE \
                    and not i.mnem.startswith("j"):
                if i.mnem == "mov" and len(ops) == 2 and ops[1] in ALIAS:
                    idx = ALIAS[ops[1]]
                    continue
                return None
            if i.mnem.startswith("j") or i.mnem == "call":
                if seen_ja is None:
                    return None
        return None

    def propagate(self, ins, succ, no_fall):
        n = len(ins)
        # Only the entry starts with nothing known; every other instruction
        # gets its state from its predecessors (fall-through, direct jumps,
        # resolved jump tables: a `jmp reg` that is not a resolved table is
        # reported as an unresolved indirect jump). Code no edge reaches
        # (alignment padding after a jmp) keeps no state, and an indirect
        # call there stays unresolved.
        states = [None] * n
        states[0] = {r: TOP for r in REGS64}
        work = collections.deque([0])
        inq = set(work)
        while work:
            k = work.popleft()
            inq.discard(k)
            st = dict(states[k])
            transfer(ins[k], st)
            for s in succ[k]:
                new = join(states[s], st)
                if new != states[s]:
                    states[s] = new
                    if s not in inq:
                        work.append(s)
                        inq.add(s)
        return states

    # -- resolution, recursion, worst paths ----------------------------------
    def resolve(self):
        taken_names = {}
        for a in self.addr_taken:
            for n in [self.funcs[a].name] + self.funcs[a].aliases:
                taken_names[n] = a
        used_patterns = set()
        self.unresolved = []
        self.active_only = set()
        for f in self.funcs.values():
            resolved = []
            for site, op, _ in f.indirect:
                rule = None
                for caller_pat, op_pat, targets, why, scope in INDIRECT:
                    if match_any(f.name, [caller_pat]) and glob(op_pat, op):
                        rule = (caller_pat, op_pat, targets, why, scope)
                        break
                if rule is None:
                    self.unresolved.append((f, site, op))
                    resolved.append((site, op, None))
                    continue
                ts = sorted({a for n, a in taken_names.items() if match_any(n, rule[2])})
                for t in rule[2]:
                    if any(glob(t, n) for n in taken_names):
                        used_patterns.add((rule[0], t))
                resolved.append((site, op, (ts, rule[3])))
                if rule[4] == ACTIVE_FRAMES:
                    self.active_only.add((f.start, site))
                for t in ts:
                    f.calls.append((t, "indirect", site))
            f.indirect = resolved
        for caller_pat, _, targets, _, _ in INDIRECT:
            for t in targets:
                if (caller_pat, t) not in used_patterns and not t.startswith("*"):
                    self.errors.append("INDIRECT entry for %s names %s, which is not an "
                                       "address-taken function in the image (stale table?)"
                                       % (caller_pat, t))
        # Every address-taken function is accounted for.
        entry_names = [n for n, _ in ENTRY_POINTS]
        indirect_targets = [t for _, _, ts, _, _ in INDIRECT for t in ts]
        for a in sorted(self.addr_taken):
            g = self.funcs[a]
            names = [g.name] + g.aliases
            if any(match_any(n, entry_names + indirect_targets + [p for p, _ in NOT_CALLED])
                   for n in names):
                continue
            self.errors.append("address of %s is taken but it is not an entry point, an "
                               "INDIRECT target nor in NOT_CALLED: a callback the analysis "
                               "does not know" % g.name)

    def recursion_limit(self, f):
        """How often f may appear on one path (RECURSION), or None."""
        for pat, n, _ in RECURSION:
            if match_any(f.name, [pat]) or any(match_any(x, [pat]) for x in f.aliases):
                return n
        return None

    def sccs(self):
        index, low, onstack, stack, out = {}, {}, set(), [], []
        counter = [0]
        for root in self.funcs:
            if root in index:
                continue
            # iterative Tarjan
            work = [(root, iter(self.funcs[root].calls))]
            index[root] = low[root] = counter[0]
            counter[0] += 1
            stack.append(root)
            onstack.add(root)
            while work:
                v, it = work[-1]
                advanced = False
                for w, _, _ in it:
                    if w not in index:
                        index[w] = low[w] = counter[0]
                        counter[0] += 1
                        stack.append(w)
                        onstack.add(w)
                        work.append((w, iter(self.funcs[w].calls)))
                        advanced = True
                        break
                    if w in onstack:
                        low[v] = min(low[v], index[w])
                if advanced:
                    continue
                work.pop()
                if work:
                    u = work[-1][0]
                    low[u] = min(low[u], low[v])
                if low[v] == index[v]:
                    comp = []
                    while True:
                        w = stack.pop()
                        onstack.discard(w)
                        comp.append(w)
                        if w == v:
                            break
                    out.append(comp)
        return out

    def check_recursion(self):
        """Every cycle must pass through a function RECURSION bounds (a
        "cut"): with the edges into cuts removed, each strongly connected
        component must be acyclic."""
        self.scc_of = {}
        self.cuts = {}           # scc id -> {cut function: limit}
        self.cycles = []
        for comp in self.sccs():
            cid = len(self.cycles)
            self.cycles.append(comp)
            members = set(comp)
            for v in comp:
                self.scc_of[v] = cid
            cyclic = len(comp) > 1 or any(w == comp[0] for w, _, _ in self.funcs[comp[0]].calls)
            cuts = {}
            if cyclic:
                for v in comp:
                    n = self.recursion_limit(self.funcs[v])
                    if n is not None:
                        cuts[v] = n
            self.cuts[cid] = cuts
            if not cyclic:
                continue
            # Kahn on the component without edges into cuts.
            indeg = {v: 0 for v in comp}
            for v in comp:
                for w, _, _ in self.funcs[v].calls:
                    if w in members and w not in cuts:
                        indeg[w] += 1
            ready = [v for v in comp if indeg[v] == 0]
            done = 0
            while ready:
                v = ready.pop()
                done += 1
                for w, _, _ in self.funcs[v].calls:
                    if w in members and w not in cuts:
                        indeg[w] -= 1
                        if indeg[w] == 0:
                            ready.append(w)
            if done < len(comp):
                left = sorted(self.funcs[v].name for v in comp if indeg[v] > 0)
                self.errors.append("recursion not bounded by RECURSION: cycle through %s%s"
                                   % (", ".join(left[:8]), ", ..." if len(left) > 8 else ""))
                self.cuts[cid] = None

    def _enter(self, w, rem, from_v):
        """Remaining-appearance counts on entering w, or None if not allowed."""
        cid = self.scc_of[w]
        cuts = self.cuts.get(cid) or {}
        if from_v is None or self.scc_of[from_v] != cid:
            rem = tuple(sorted(cuts.items()))
        if w in cuts:
            d = dict(rem)
            if d[w] <= 0:
                return None
            d[w] -= 1
            rem = tuple(sorted(d.items()))
        return rem

    def solve(self, start):
        """Worst chain from `start`: (depth, path) where path is
        [(function, frame, edge kind)], and the calls into the kernel:
        {routine: (depth of ours at the deepest call, (functions...))}."""
        if any(c is None for c in self.cuts.values()):
            raise Fail("unbounded recursion (see errors)")
        memo = {}
        relevant = set()        # function pointers an ACTIVE_FRAMES site may use
        for f in self.funcs.values():
            for w, kind, site in f.calls:
                if (f.start, site) in self.active_only:
                    relevant.add(w)

        def go(v, rem, avail):
            key = (v, rem, avail)
            if key in memo:
                return memo[key]
            f = self.funcs[v]
            taken_here = self.lea_by.get(v, set()) & relevant
            if not taken_here <= avail:
                avail = avail | frozenset(taken_here)
            best, bpath = 0, []
            imp = {}
            for r, _ in f.imports:
                if not LEAF_IMPORT.match(r):
                    imp[r] = (f.frame, (v,))
            for w, kind, site in f.calls:
                if (v, site) in self.active_only and w not in avail and w not in self.in_data:
                    continue
                r2 = self._enter(w, rem, v)
                if r2 is None:
                    continue
                (d, p), sub = go(w, r2, avail)
                if d > best:
                    best, bpath = d, [(p[0][0], p[0][1], kind)] + p[1:]
                for r, (idp, ipath) in sub.items():
                    if f.frame + idp > imp.get(r, (-1,))[0]:
                        imp[r] = (f.frame + idp, (v,) + ipath)
            res = ((f.frame + best, [(v, f.frame, "entry")] + bpath), imp)
            memo[key] = res
            return res

        return go(start, self._enter(start, (), None), frozenset())


def short(name):
    """The last path segment of a function name (generic arguments dropped)."""
    depth, cut = 0, len(name)
    for k in range(len(name) - 1, -1, -1):
        c = name[k]
        if c == ">":
            depth += 1
        elif c == "<":
            depth -= 1
            if depth == 0:
                cut = k
        elif c == ":" and depth == 0:
            return name[k + 1:cut] if cut > k else name[k + 1:]
    return name[:cut]


def report(a, budget, verbose):
    ok = True
    base = a.img.image_base
    if a.errors:
        ok = False
        print("ERRORS:")
        for e in a.errors:
            print("  " + e)
    if a.unresolved:
        ok = False
        print("UNRESOLVED indirect calls (add to INDIRECT in scripts/stack-usage.py after "
              "reading the code):")
        for f, site, op in a.unresolved:
            print("  %#x in %s: %s" % (site, f.name, op))
    entry = a.funcs.get(a.img.entry_rva)
    if entry is None or entry.name != ENTRY_POINTS[0][0]:
        ok = False
        print("ERROR: the image's entry point %#x is not %s" % (a.img.entry_rva + base, ENTRY_POINTS[0][0]))
    if any(c is None for c in a.cuts.values()):
        print("stack usage: FAIL (no bound: recursion not covered by RECURSION)")
        return False, []
    nf = len(a.funcs)
    ne = sum(len(f.calls) for f in a.funcs.values())
    ni = sum(len(f.imports) for f in a.funcs.values())
    print("image: %d functions, %d call edges, %d jump tables, %d kernel call sites"
          % (nf, ne, a.tables, ni))
    print("stack budget: %d bytes per entry point (our frames only; %s)" % (budget, IMPORT_FRAME_NOTE))
    print()
    results = []
    for name, role in ENTRY_POINTS:
        f = a.by_name.get(name)
        if f is None:
            ok = False
            print("ERROR: entry point %s not found in the image" % name)
            continue
        (depth, path), imp = a.solve(f.start)
        verdict = "OK" if depth <= budget else "OVER BUDGET"
        if depth > budget:
            ok = False
        results.append((name, depth))
        print("%-42s %6d bytes  %s   [%s]" % (name, depth, verdict, role))
        running = 0
        for v, frame, kind in path:
            running += frame
            g = a.funcs[v]
            tag = {"entry": "", "call": "", "tail": " (tail call)", "indirect": " (indirect)"}[kind]
            print("    %6d %6d  %s%s" % (frame, running, g.name, tag))
        for r, (d, p) in sorted(imp.items(), key=lambda x: -x[1][0])[:3]:
            print("    kernel call %s with %d bytes of ours in use (%s)"
                  % (r, d, " > ".join(short(a.funcs[v].name) for v in p)))
        print()
    cyc = [(comp, a.cuts.get(k)) for k, comp in enumerate(a.cycles) if a.cuts.get(k)]
    if cyc:
        print("bounded recursion (RECURSION table):")
        for comp, cuts in cyc:
            print("  %d functions in a cycle, bounded by: %s" % (
                len(comp), ", ".join("%s at most %d times" % (a.funcs[v].name, n)
                                     for v, n in sorted(cuts.items(), key=lambda x: a.funcs[x[0]].name))))
        print()
    ind = [(f, s, op, r) for f in a.funcs.values() for s, op, r in f.indirect if r is not None]
    if ind:
        print("indirect calls resolved by the INDIRECT table: %d sites" % len(ind))
        if verbose:
            for f, s, op, (ts, why) in ind:
                print("  %#x in %s: %s -> %d targets (%s)" % (s, f.name, op, len(ts), why))
        print()
    if verbose:
        print("frames (bytes incl. return address):")
        for f in sorted(a.funcs.values(), key=lambda f: -f.frame):
            print("  %6d  %s  [%s]" % (f.frame, f.name, f.prologue))
    print("stack usage: %s" % ("PASS" if ok else "FAIL"))
    return ok, results


def _quiet(fn, *a):
    old = sys.stdout
    sys.stdout = open(os.devnull, "w")
    try:
        return fn(*a)
    finally:
        sys.stdout.close()
        sys.stdout = old


def _analyse(sys_path, pdb_path, objdump):
    a = Analysis(sys_path, pdb_path, objdump)
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

    for name, _ in ENTRY_POINTS:
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
    a = _analyse(args.sys, args.pdb, args.objdump)
    depths = {n: a.solve(a.by_name[n].start)[0][0] for n, _ in ENTRY_POINTS}
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
            b = _analyse(t.name, args.pdb, args.objdump)
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
        saved = globals()[table]
        try:
            globals()[table] = []
            a = _analyse(args.sys, args.pdb, args.objdump)
            return a, _quiet(report, a, 1 << 30, False)[0]
        finally:
            globals()[table] = saved

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


def show_locals(args):
    """Which variables make a frame big (inlined callees' locals included;
    LLVM may overlap locals whose lifetimes do not overlap)."""
    img, pdb = Image(args.sys), Pdb(args.pdb)
    hits = [(seg, off, size, name) for seg, off, size, name in pdb.procs if glob(args.locals, name)]
    if not hits:
        raise Fail("no function matches %s" % args.locals)
    for seg, off, _, name in hits:
        rtf = {b: fr for b, _, fr, _ in img.runtime_functions()}
        start = img.sections[seg - 1][1] + off
        print("%s: frame %s bytes" % (name, rtf.get(start, 8)))
        seen = set()
        for o, sz, lname, tname in sorted(pdb.locals_of(seg, off), key=lambda x: (-x[1], x[0])):
            if (o, sz, lname) in seen or sz < 64:
                continue
            seen.add((o, sz, lname))
            print("  %6d bytes at frame offset %6d  %s: %s" % (sz, o, lname, tname))
    return 0


def main():
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # `| head` ends quietly
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("sys")
    p.add_argument("pdb")
    p.add_argument("--budget", type=int, default=12 * 1024, help="bytes per entry point (default 12288)")
    p.add_argument("--objdump", default=None)
    p.add_argument("--verbose", "-v", action="store_true")
    p.add_argument("--self-test", action="store_true")
    p.add_argument("--locals", metavar="FUNCTION",
                   help="list the stack locals (PDB) of FUNCTION, largest first, and exit")
    args = p.parse_args()
    try:
        args.objdump = find_objdump(args.objdump)
        if args.self_test:
            return self_test(args)
        if args.locals:
            return show_locals(args)
        a = Analysis(args.sys, args.pdb, args.objdump)
        a.resolve()
        a.check_recursion()
        ok, _ = report(a, args.budget, args.verbose)
        return 0 if ok else 1
    except Fail as e:
        print("stack-usage: %s" % e)
        return 1


if __name__ == "__main__":
    sys.exit(main())
