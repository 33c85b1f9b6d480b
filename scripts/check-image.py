#!/usr/bin/env python3
"""Checks a driver image (.sys) and its .pdb. Standard library only.

usage: check-image.py DRIVER.sys DRIVER.pdb

Checks (each printed as "ok"/"FAIL"; exit 1 on any FAIL):
  * PE32+ for x86-64, subsystem NATIVE (1)
  * DllCharacteristics has FORCE_INTEGRITY (0x80), NX_COMPAT (0x100), DYNAMIC_BASE (0x40)
  * imports come only from ntoskrnl.exe, fltmgr.sys, hal.dll (case-insensitive)
  * no section is both writable and executable
  * the entry point is the exported DriverEntry
  * the CodeView (RSDS) record's GUID and age match the PDB's info stream
"""
import struct
import sys

ALLOWED_IMPORTS = {"ntoskrnl.exe", "fltmgr.sys", "hal.dll"}
# Names that are not kernel exports on Windows although a build may link
# them: wdmsec.lib's routines (Wine's ntoskrnl exports them anyway, so a
# Wine run would not notice) and Wine's private exports.
NOT_WINDOWS_EXPORTS = {"IoCreateDeviceSecure", "IoValidateDeviceIoControlAccess"}
IMAGE_SCN_MEM_EXECUTE = 0x20000000
IMAGE_SCN_MEM_WRITE = 0x80000000

failures = 0


def check(ok, what):
    global failures
    print(("ok   " if ok else "FAIL ") + what)
    if not ok:
        failures += 1


class PE:
    def __init__(self, data):
        self.d = data
        if data[:2] != b"MZ":
            raise ValueError("no MZ header")
        self.pe = struct.unpack_from("<I", data, 0x3C)[0]
        if data[self.pe:self.pe + 4] != b"PE\0\0":
            raise ValueError("no PE signature")
        coff = self.pe + 4
        self.machine, self.nsect, _, _, _, self.opt_size, self.chars = struct.unpack_from("<HHIIIHH", data, coff)
        self.opt = coff + 20
        self.magic = struct.unpack_from("<H", data, self.opt)[0]
        self.entry = struct.unpack_from("<I", data, self.opt + 16)[0]
        self.subsystem, self.dllchars = struct.unpack_from("<HH", data, self.opt + 68)
        ndirs = struct.unpack_from("<I", data, self.opt + 108)[0]
        self.dirs = [struct.unpack_from("<II", data, self.opt + 112 + 8 * i) for i in range(ndirs)]
        self.sections = []
        s = self.opt + self.opt_size
        for i in range(self.nsect):
            name, vsize, va, rsize, rptr = struct.unpack_from("<8sIIII", data, s + 40 * i)
            chars = struct.unpack_from("<I", data, s + 40 * i + 36)[0]
            self.sections.append((name.rstrip(b"\0").decode(errors="replace"), va, max(vsize, rsize), rptr, rsize, chars))

    def off(self, rva):
        for _, va, size, rptr, rsize, _ in self.sections:
            if va <= rva < va + size:
                return rptr + (rva - va)
        raise ValueError("RVA %#x not in any section" % rva)

    def cstr(self, rva):
        o = self.off(rva)
        return self.d[o:self.d.index(b"\0", o)].decode()

    def imports(self):
        rva, size = self.dirs[1]
        out = {}
        if rva == 0:
            return out
        o = self.off(rva)
        while True:
            ilt, _, _, name, iat = struct.unpack_from("<IIIII", self.d, o)
            if name == 0:
                break
            dll = self.cstr(name)
            names = []
            t = self.off(ilt or iat)
            while True:
                v = struct.unpack_from("<Q", self.d, t)[0]
                if v == 0:
                    break
                names.append("#%d" % (v & 0xFFFF) if v >> 63 else self.cstr(v & 0x7FFFFFFF)[0:] if False else self.hint_name(v))
                t += 8
            out[dll] = names
            o += 20
        return out

    def hint_name(self, v):
        if v >> 63:
            return "#%d" % (v & 0xFFFF)
        o = self.off(v & 0x7FFFFFFF)
        return self.d[o + 2:self.d.index(b"\0", o + 2)].decode()

    def exports(self):
        rva, size = self.dirs[0]
        if rva == 0:
            return {}
        o = self.off(rva)
        _, _, _, _, _, base, nfunc, nnames, afuncs, anames, aords = struct.unpack_from("<IIHHIIIIIII", self.d, o)
        out = {}
        for i in range(nnames):
            name = self.cstr(struct.unpack_from("<I", self.d, self.off(anames) + 4 * i)[0])
            ordi = struct.unpack_from("<H", self.d, self.off(aords) + 2 * i)[0]
            out[name] = struct.unpack_from("<I", self.d, self.off(afuncs) + 4 * ordi)[0]
        return out

    def codeview(self):
        rva, size = self.dirs[6]
        if rva == 0:
            return None
        o = self.off(rva)
        for i in range(size // 28):
            _, _, _, _, typ, dsize, drva, dptr = struct.unpack_from("<IIHHIIII", self.d, o + 28 * i)
            if typ == 2:  # IMAGE_DEBUG_TYPE_CODEVIEW
                if self.d[dptr:dptr + 4] != b"RSDS":
                    return None
                guid = self.d[dptr + 4:dptr + 20]
                age = struct.unpack_from("<I", self.d, dptr + 20)[0]
                path = self.d[dptr + 24:self.d.index(b"\0", dptr + 24)].decode(errors="replace")
                return guid, age, path
        return None


def pdb_info(data):
    """GUID and age from the PDB info stream (stream 1) of an MSF 7.00 file."""
    magic = b"Microsoft C/C++ MSF 7.00\r\n\x1aDS\0\0\0"
    if data[:32] != magic:
        raise ValueError("not an MSF 7.00 PDB")
    bs, _, nblocks, dir_bytes, _, map_addr = struct.unpack_from("<IIIIII", data, 32)
    ndir_blocks = (dir_bytes + bs - 1) // bs
    dir_block_idx = struct.unpack_from("<%dI" % ndir_blocks, data, map_addr * bs)
    directory = b"".join(data[b * bs:(b + 1) * bs] for b in dir_block_idx)[:dir_bytes]
    nstreams = struct.unpack_from("<I", directory, 0)[0]
    sizes = struct.unpack_from("<%dI" % nstreams, directory, 4)
    o = 4 + 4 * nstreams
    blocks = []
    for sz in sizes:
        n = 0 if sz == 0xFFFFFFFF else (sz + bs - 1) // bs
        blocks.append(struct.unpack_from("<%dI" % n, directory, o))
        o += 4 * n
    info = b"".join(data[b * bs:(b + 1) * bs] for b in blocks[1])[:sizes[1]]
    _version, _sig, age = struct.unpack_from("<III", info, 0)
    guid = info[12:28]
    return guid, age


def main():
    if len(sys.argv) != 3:
        print(__doc__)
        return 2
    img = open(sys.argv[1], "rb").read()
    pdb = open(sys.argv[2], "rb").read()
    pe = PE(img)
    check(pe.machine == 0x8664 and pe.magic == 0x20B, "PE32+ x86-64 (machine %#x, magic %#x)" % (pe.machine, pe.magic))
    check(pe.subsystem == 1, "subsystem NATIVE (found %d)" % pe.subsystem)
    for bit, name in ((0x80, "FORCE_INTEGRITY"), (0x100, "NX_COMPAT"), (0x40, "DYNAMIC_BASE")):
        check(pe.dllchars & bit == bit, "%s in DllCharacteristics %#x" % (name, pe.dllchars))
    imports = pe.imports()
    check(len(imports) > 0, "has imports")
    for dll, names in sorted(imports.items()):
        check(dll.lower() in ALLOWED_IMPORTS, "imports from %s (%d): %s" % (dll, len(names), " ".join(sorted(names))))
        bad = sorted(n for n in names if n in NOT_WINDOWS_EXPORTS or n.startswith("wine_") or n.startswith("__wine"))
        check(not bad, "no import that Windows does not export from %s%s" % (dll, (": " + " ".join(bad)) if bad else ""))
    for name, va, size, _, _, chars in pe.sections:
        wx = chars & IMAGE_SCN_MEM_EXECUTE and chars & IMAGE_SCN_MEM_WRITE
        check(not wx, "section %-8s not writable+executable (characteristics %#x)" % (name, chars))
    exports = pe.exports()
    de = exports.get("DriverEntry")
    check(de is not None and de == pe.entry, "entry point %#x is DriverEntry (%s)" % (pe.entry, "%#x" % de if de is not None else "not exported"))
    cv = pe.codeview()
    check(cv is not None, "CodeView RSDS record present")
    if cv is not None:
        guid, age = pdb_info(pdb)
        check(cv[0] == guid, "PDB GUID matches (image %s, pdb %s)" % (cv[0].hex(), guid.hex()))
        check(cv[1] == age, "PDB age matches (image %d, pdb %d)" % (cv[1], age))
        print("     pdb path in image: %s" % cv[2])
    print("image check: %s" % ("PASSED" if failures == 0 else "%d FAILED" % failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
