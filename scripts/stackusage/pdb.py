"""The PDB (MSF 7.0): procedure, data and public symbols, local variables."""

import struct

from .common import Fail


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
