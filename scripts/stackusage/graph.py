"""The call graph: frames, edges, indirect-call resolution by the driver's
tables, recursion bounds and the worst path per entry point."""

import bisect
import collections
import re
import struct

from .common import ALIAS, REGS64, Fail, glob, match_any
from .disasm import NO_WRITE, SLOT, TOP, disassemble, join, operands, transfer
from .pdb import Pdb
from .pe import Image
from .tables import ACTIVE_FRAMES

# Kernel routines that are leaves with a few bytes of stack (not reported as
# the "deepest kernel call"; __chkstk runs before the frame it probes is
# allocated, so its 24 bytes are inside that frame's bound).
LEAF_IMPORT = re.compile(r"^ntoskrnl\.exe!(memcpy|memmove|memset|memcmp|__chkstk)$")


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


class Analysis:
    def __init__(self, sys_path, pdb_path, objdump, tables):
        self.spec = tables
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
                kp = [r for p, r in self.spec.KERNEL_POINTER_STATICS if glob(p, name)]
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
                for caller_pat, op_pat, targets, why, scope in self.spec.INDIRECT:
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
        for caller_pat, _, targets, _, _ in self.spec.INDIRECT:
            for t in targets:
                if (caller_pat, t) not in used_patterns and not t.startswith("*"):
                    self.errors.append("INDIRECT entry for %s names %s, which is not an "
                                       "address-taken function in the image (stale table?)"
                                       % (caller_pat, t))
        # Every address-taken function is accounted for.
        entry_names = [n for n, _ in self.spec.ENTRY_POINTS]
        indirect_targets = [t for _, _, ts, _, _ in self.spec.INDIRECT for t in ts]
        for a in sorted(self.addr_taken):
            g = self.funcs[a]
            names = [g.name] + g.aliases
            if any(match_any(n, entry_names + indirect_targets + [p for p, _ in self.spec.NOT_CALLED])
                   for n in names):
                continue
            self.errors.append("address of %s is taken but it is not an entry point, an "
                               "INDIRECT target nor in NOT_CALLED: a callback the analysis "
                               "does not know" % g.name)

    def recursion_limit(self, f):
        """How often f may appear on one path (RECURSION), or None."""
        for pat, n, _ in self.spec.RECURSION:
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
