"""The report: per entry point, the bound, the worst path and the deepest
kernel calls."""

IMPORT_FRAME_NOTE = ("imported kernel routines run on this stack too; their use is "
                     "outside the image: see the 'kernel call' lines")


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
        print("UNRESOLVED indirect calls (add to INDIRECT in %s after "
              "reading the code):" % a.spec.name)
        for f, site, op in a.unresolved:
            print("  %#x in %s: %s" % (site, f.name, op))
    entry = a.funcs.get(a.img.entry_rva)
    if entry is None or entry.name != a.spec.ENTRY_POINTS[0][0]:
        ok = False
        print("ERROR: the image's entry point %#x is not %s" % (a.img.entry_rva + base, a.spec.ENTRY_POINTS[0][0]))
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
    for name, role in a.spec.ENTRY_POINTS:
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
