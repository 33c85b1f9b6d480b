"""The driver's tables for the static stack bound (scripts/stack-usage.sh,
scripts/stackusage/): where the kernel calls into the image, what each
indirect call that constant propagation cannot resolve may reach, the kernel
routine pointers kept in statics, the recursion bounds, and the functions
whose address is taken but that nothing calls through a pointer.

Names are the PDB's (the linked image after fat LTO). Patterns match with
`*` as the only wildcard. Each entry says why it holds, read from the code:
keep them true when the code changes (the check fails on a stale or missing
entry: an unknown indirect call, an unbounded cycle, an address-taken
function no table names). Loaded by scripts/stackusage/tables.py, which
checks every entry's shape.
"""

# Scope of an INDIRECT entry (see there).
ANY, ACTIVE_FRAMES = "any", "active-frames"

# ---------------------------------------------------------------------------
# Entry points: where the kernel calls into the image (name in the PDB, role).
# ---------------------------------------------------------------------------
ENTRY_POINTS = [
    ("pipesensor::sys::entry::DriverEntry", "DriverEntry (I/O manager, system thread)"),
    ("pipesensor::sys::device::dispatch_device_control", "IRP_MJ_DEVICE_CONTROL dispatch (caller's thread)"),
    ("pipesensor::sys::device::dispatch_create_close", "IRP_MJ_CREATE/CLOSE dispatch"),
    ("pipesensor::sys::device::dispatch_cleanup", "IRP_MJ_CLEANUP dispatch (completes the handle's pended EVENTS_V2)"),
    ("pipesensor::sys::pending::cancel_routine", "DRIVER_CANCEL of a pended EVENTS_V2 (IoCancelIrp, <= DISPATCH_LEVEL)"),
    ("pipesensor::sys::filter::pre_create_named_pipe", "minifilter pre-op IRP_MJ_CREATE_NAMED_PIPE"),
    ("pipesensor::sys::filter::pre_create", "minifilter pre-op IRP_MJ_CREATE"),
    ("pipesensor::sys::filter::instance_setup", "minifilter InstanceSetupCallback"),
    ("pipesensor::sys::filter::instance_query_teardown", "minifilter InstanceQueryTeardownCallback"),
    ("pipesensor::sys::filter::filter_unload", "minifilter FilterUnloadCallback (unload)"),
    ("pipesensor::sys::device::driver_unload", "DriverUnload (unload, Wine)"),
    ("pipesensor::sys::thread::timer_thread", "timer system thread (PsCreateSystemThread)"),
    ("pipesensor::sys::thread::rescan_thread", "periodic rescan system thread (PsCreateSystemThread)"),
    ("pipesensor::sys::bugcheck::bugcheck_secondary", "bug-check reason callback (secondary dump)"),
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
    # the image's Write impls are sys::log::LineBuf and
    # sensor_core::codec::FixedText<N> (messages).
    (caller, "* = slot %#x" % slot, targets, "dyn fmt::Write::%s" % what, ANY)
    for caller in FORMATTING
    for slot, targets, what in ((0x18, WRITE_STR, "write_str"), (0x20, WRITE_CHAR, "write_char"),
                                (0x28, WRITE_FMT, "write_fmt"))
] + [
    # The timer thread calls the `fn()` start_timer stored in TIMER.func.
    # start_timer's only caller is content::start_proven_timer, which passes
    # content::proven_timer_fired (driver/src/content.rs).
    ("pipesensor::sys::thread::timer_thread", "call rax = [pipesensor::globals::sys::TIMER+*]",
     ["pipesensor::content::proven_timer_fired"],
     "TIMER.func: start_timer(secs, proven_timer_fired) is its only use", ANY),
]

# Routine pointers resolved at run time (MmGetSystemRoutineAddress) and kept
# in statics: a call through one is a call into the kernel, like an import.
# (static's PDB name pattern -> kernel routine it holds)
KERNEL_POINTER_STATICS = [
    ("pipesensor::globals::sys::EX_ALLOCATE_POOL2", "ntoskrnl.exe!ExAllocatePool2 (MmGetSystemRoutineAddress)"),
    ("pipesensor::globals::sys::QUERY_TIME", "ntoskrnl.exe!KeQuerySystemTime[Precise] (MmGetSystemRoutineAddress)"),
    ("pipesensor::globals::sys::QPC", "ntoskrnl.exe!KeQueryPerformanceCounter (MmGetSystemRoutineAddress)"),
    ("pipesensor::globals::sys::INTERRUPT_TIME", "ntoskrnl.exe!KeQueryInterruptTime (MmGetSystemRoutineAddress)"),
    ("pipesensor::globals::sys::INTERRUPT_TIME_PRECISE", "ntoskrnl.exe!KeQueryInterruptTimePrecise (MmGetSystemRoutineAddress)"),
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
    ("pipesensor::sys::crt::__CxxFrameHandler3",
     "referenced by precompiled core's unwind data only; panic=abort never unwinds"),
]

# Kernel routines that are leaves with a few bytes of stack (not reported as
# the "deepest kernel call"; __chkstk runs before the frame it probes is
