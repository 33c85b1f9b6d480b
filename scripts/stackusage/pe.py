"""The PE image: sections, imports, .pdata and UNWIND_INFO, base relocations."""

import struct

from .common import Fail


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
