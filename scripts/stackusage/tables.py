"""The driver-specific tables (entry points, indirect-call resolutions,
kernel routine pointers, recursion bounds, address-taken functions never
called): a Python data file beside the driver, `driver/stack-tables.py` by
default. It assigns the five names below and nothing here trusts their shape:
`load_tables` checks every entry and names what is wrong where."""

import dataclasses
import os
import runpy

from .common import Fail

ANY, ACTIVE_FRAMES = "any", "active-frames"

DEFAULT_TABLES = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                              os.pardir, os.pardir, "driver", "stack-tables.py")


@dataclasses.dataclass(frozen=True)
class Tables:
    name: str                       # the file, as given (for messages)
    # (PDB name, role); the first is the image's entry point (DriverEntry).
    ENTRY_POINTS: list
    # (caller pattern, operand pattern, target patterns, why, ANY | ACTIVE_FRAMES)
    INDIRECT: list
    # (static's PDB name pattern, kernel routine it holds)
    KERNEL_POINTER_STATICS: list
    # (function pattern, bound on its appearances on one path, why)
    RECURSION: list
    # (function pattern, why its taken address is never called)
    NOT_CALLED: list


def _check(path, table, rows, shape):
    if not isinstance(rows, list):
        raise Fail("%s: %s is not a list" % (path, table))
    for k, row in enumerate(rows):
        if not isinstance(row, tuple) or len(row) != len(shape) or not all(
                check(v) for check, v in zip(shape, row)):
            raise Fail("%s: %s entry %d is not (%s): %r"
                       % (path, table, k, ", ".join(c.__doc__ for c in shape), row))


def _text(v):
    """text"""
    return isinstance(v, str) and v != ""


def _patterns(v):
    """list of patterns"""
    return isinstance(v, list) and v != [] and all(_text(p) for p in v)


def _bound(v):
    """bound >= 1"""
    return isinstance(v, int) and not isinstance(v, bool) and v >= 1


def _scope(v):
    """'any' or 'active-frames'"""
    return v in (ANY, ACTIVE_FRAMES)


SHAPES = {
    "ENTRY_POINTS": (_text, _text),
    "INDIRECT": (_text, _text, _patterns, _text, _scope),
    "KERNEL_POINTER_STATICS": (_text, _text),
    "RECURSION": (_text, _bound, _text),
    "NOT_CALLED": (_text, _text),
}


def load_tables(path):
    try:
        ns = runpy.run_path(path)
    except OSError as e:
        raise Fail("cannot read the tables %s: %s" % (path, e))
    missing = [t for t in SHAPES if t not in ns]
    if missing:
        raise Fail("%s: does not define %s" % (path, ", ".join(missing)))
    for table, shape in SHAPES.items():
        _check(path, table, ns[table], shape)
    if not ns["ENTRY_POINTS"]:
        raise Fail("%s: ENTRY_POINTS is empty" % path)
    shown = os.path.relpath(os.path.normpath(path))
    return Tables(name=shown, **{t: ns[t] for t in SHAPES})
