"""Command line."""

import argparse
import signal

from . import __doc__ as PACKAGE_DOC
from .common import Fail, glob
from .disasm import find_objdump
from .graph import Analysis
from .pdb import Pdb
from .pe import Image
from .report import report
from .selftest import self_test
from .tables import DEFAULT_TABLES, load_tables


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
    p = argparse.ArgumentParser(description=PACKAGE_DOC.split("\n")[0])
    p.add_argument("sys")
    p.add_argument("pdb")
    p.add_argument("--budget", type=int, default=12 * 1024, help="bytes per entry point (default 12288)")
    p.add_argument("--objdump", default=None)
    p.add_argument("--tables", default=DEFAULT_TABLES,
                   help="the driver's tables (default: driver/stack-tables.py)")
    p.add_argument("--verbose", "-v", action="store_true")
    p.add_argument("--self-test", action="store_true")
    p.add_argument("--locals", metavar="FUNCTION",
                   help="list the stack locals (PDB) of FUNCTION, largest first, and exit")
    args = p.parse_args()
    try:
        args.objdump = find_objdump(args.objdump)
        args.tables = load_tables(args.tables)
        if args.self_test:
            return self_test(args)
        if args.locals:
            return show_locals(args)
        a = Analysis(args.sys, args.pdb, args.objdump, args.tables)
        a.resolve()
        a.check_recursion()
        ok, _ = report(a, args.budget, args.verbose)
        return 0 if ok else 1
    except Fail as e:
        print("stack-usage: %s" % e)
        return 1

