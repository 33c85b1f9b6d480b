"""Static worst-case stack usage of the linked driver image (pipesensor.sys).

usage: stack-usage.py [--budget BYTES] [--objdump PATH] [--tables PY] [--verbose] SYS PDB
       stack-usage.py --self-test [--objdump PATH] [--tables PY] SYS PDB
       stack-usage.py --locals FUNCTION-PATTERN SYS PDB

(scripts/stack-usage.sh builds the driver and runs the self-test and the
check; see there.) Modules: pe (the PE image, unwind data), pdb (names,
locals), disasm (llvm-objdump, register constant propagation), graph
(frames, edges, resolution, recursion, worst paths), report, selftest, cli;
tables loads the driver's tables: ENTRY_POINTS, INDIRECT,
KERNEL_POINTER_STATICS, RECURSION and NOT_CALLED, defined beside the
driver in driver/stack-tables.py (--tables to use another file).

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
