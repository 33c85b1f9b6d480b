//! Every piece of the driver's global state, in one place (as the
//! minifilter samples keep theirs in one `SCANNER_DATA`), and the hooks
//! table the FFI layer calls the driver through ([`HOOKS`]).
//!
//! One section per owner: only the owning module reads and writes a
//! section (it imports it with `use crate::globals::<owner>::*`); other
//! modules go through the owner's functions. Each static's doc says who
//! writes it, at which IRQL, and when. Lifetime: every static lives as
//! long as the image (mapped before DriverEntry, gone after unload);
//! nothing is reset between DriverEntry and unload unless said. They are
//! nonpaged (image data), so any IRQL may touch them; the locks they sit
//! behind say which IRQL a holder runs at (`sys::SpinLock`: DISPATCH_LEVEL
//! while held; `sys::Slot`: a try-lock, never waits; `sys::InitOnce`:
//! written once at PASSIVE_LEVEL before readers exist).
//!
//! Not state, so not here: constant tables and link anchors defined where
//! they are used — the filter registration (`sys::filter` `OPERATIONS`,
//! `REGISTRATION`), the trusted content keys (`content` `TRUSTED`, built at
//! compile time), the empty drive map (`drives` `EMPTY`), and the CRT
//! anchors (`sys::crt`).
//!
//! | section | state |
//! |---|---|
//! | [`root`] | start/teardown progress |
//! | [`sensor`] | content store, event ring, mode, status flags and counters, working memory |
//! | [`content`] | configuration, guard snapshot, rollout report, scan working memory |
//! | [`blocksafe`] | system root, enforcement time, breaker, adoption report, counters |
//! | [`control`] | EVAL's working memory |
//! | [`drives`] | drive-letter table |
//! | [`dump`] | secondary bug-check dump area and its lock |
//! | [`sys`] | the FFI layer's own: kernel routine pointers, clock, pool count, bug-check record, system threads, control device, filter handle and rundown, pended EVENTS_V2 queue |

use crate::sys::Hooks;

/// What the FFI layer calls in the driver (see `sys::Hooks`): a constant
/// table, complete before any entry point can run.
pub static HOOKS: Hooks = Hooks {
    start: crate::driver_entry,
    stop: crate::teardown,
    periodic_rescan: crate::content::periodic_rescan,
    device_control: crate::control::handle,
    events_wants_wait: crate::events::wants_wait,
    events_answer_now: crate::events::answer_now,
    events_answer: crate::events::answer,
    ring: &sensor::RING,
    count_callback: crate::sensor::count_callback,
    has_content: crate::sensor::has_content,
    on_callback: crate::sensor::on_callback,
    dump_area: || dump::DUMP.raw(),
};

/// Start-up and teardown progress (`crate::driver_entry`, `crate::teardown`).
pub mod root {
    use core::sync::atomic::AtomicBool;

    /// Set by DriverEntry (PASSIVE_LEVEL) once everything started; read by
    /// teardown (a clean unload proves the active content only then).
    pub static STARTED: AtomicBool = AtomicBool::new(false);
    /// Set by the first teardown (PASSIVE_LEVEL: filter unload or, under
    /// Wine, DriverUnload): a second one returns at once.
    pub static TORN_DOWN: AtomicBool = AtomicBool::new(false);
}

/// The sensor (`crate::sensor`): content, events, mode, status.
pub mod sensor {
    use crate::sensor::{ContentRef, Work, WORK_SLOTS};
    use crate::sys::{Semaphore, Slot, SpinLock};
    use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64};
    use sensor_core::event::PipeEvent;
    use sensor_core::ring::{EventRing, RING_CAP};
    use sensor_core::store::Store;
    use sensor_core::work::WorkPool;

    /// The active and last-known-good content. Written by loads and
    /// releases (DriverEntry, RESCAN/LOAD IOCTLs, the rescan thread,
    /// unload: PASSIVE_LEVEL); read by every callback (<= APC_LEVEL),
    /// under its spin lock. Emptied at unload (`release_all_content`).
    pub static STORE: SpinLock<Store<ContentRef>> = SpinLock::new(Store::new());
    /// The event ring: [`RING_CAP`] full records (`sensor_core::event`), in
    /// the image (nonpaged). A push never waits for a reader: when the ring is
    /// full the oldest record is overwritten and counted (`events_overwritten`).
    /// Pushed by callbacks and EVAL (<= APC_LEVEL), drained by EVENTS /
    /// EVENTS_V2 and the pended-request completions (<= DISPATCH_LEVEL),
    /// under its spin lock.
    pub static RING: SpinLock<EventRing<RING_CAP, PipeEvent>> = SpinLock::new(EventRing::new());
    /// Whether [`STORE`] has active content: written with the store's lock
    /// held whenever the active content changes; read lock-free by the
    /// callbacks' first check.
    pub static HAS_CONTENT: AtomicBool = AtomicBool::new(false);
    /// The mode (`Mode::to_u32`): DriverEntry (configuration) and the
    /// SET_MODE IOCTL (PASSIVE_LEVEL); read by every decision.
    pub static MODE: AtomicU32 = AtomicU32::new(0);
    /// Status flags (`proto::FLAG_*`), only ever set (DriverEntry, the
    /// guard, PASSIVE_LEVEL); read by STATUS.
    pub static FLAGS: AtomicU32 = AtomicU32::new(0);
    // The status counters: incremented (Relaxed) by the decision path
    // (callbacks and EVAL, <= APC_LEVEL), read by STATUS and the unload log.
    /// Operations evaluated against content.
    pub static EVALUATED: AtomicU64 = AtomicU64::new(0);
    /// Evaluations with at least one rule hit.
    pub static MATCHED: AtomicU64 = AtomicU64::new(0);
    /// Operations denied.
    pub static DENIED: AtomicU64 = AtomicU64::new(0);
    /// Names that could not be normalized (decided unchecked).
    pub static NAME_ERRORS: AtomicU64 = AtomicU64::new(0);
    /// Minifilter callbacks entered.
    pub static CALLBACKS: AtomicU64 = AtomicU64::new(0);
    /// Opens of the NPFS root (never evaluated).
    pub static ROOT_OPENS: AtomicU64 = AtomicU64::new(0);
    /// Unchecked decisions that denied (enforce mode).
    pub static UNCHECKED_DENIED: AtomicU64 = AtomicU64::new(0);
    /// Unchecked decisions that allowed (monitor mode).
    pub static UNCHECKED_ALLOWED: AtomicU64 = AtomicU64::new(0);
    /// Evaluations that waited for a working-memory slot.
    pub static WORK_WAITS: AtomicU64 = AtomicU64::new(0);
    /// Evaluations whose wait for a slot ran out.
    pub static WORK_EXHAUSTED: AtomicU64 = AtomicU64::new(0);
    /// Evaluations waiting for a slot now (up and down).
    pub static WORK_WAITING: AtomicU64 = AtomicU64::new(0);
    /// Requestor images found in the process's context.
    pub static IMAGE_LOCATED: AtomicU64 = AtomicU64::new(0);
    /// Requestor images queried from the process.
    pub static IMAGE_QUERIED: AtomicU64 = AtomicU64::new(0);
    /// Requestors without an image path.
    pub static IMAGE_MISSING: AtomicU64 = AtomicU64::new(0);
    /// Event SIDs taken from the operation's security context.
    pub static SID_FROM_CONTEXT: AtomicU64 = AtomicU64::new(0);
    /// Event SIDs taken from the process token.
    pub static SID_FROM_PROCESS: AtomicU64 = AtomicU64::new(0);
    /// Events without a SID.
    pub static SID_MISSING: AtomicU64 = AtomicU64::new(0);
    /// Evaluations whose content reads `User` and whose requester's SID
    /// was read (once per operation, reused by the recorder).
    pub static USER_READ: AtomicU64 = AtomicU64::new(0);
    /// Evaluations whose content reads `User` but whose SID could not be
    /// read: `User` is absent for that evaluation (its atoms are false).
    pub static USER_MISSING: AtomicU64 = AtomicU64::new(0);
    /// Per-evaluation working memory, preallocated in the image (nonpaged),
    /// never on the stack: a slot is taken for one evaluation (callbacks,
    /// EVAL; <= APC_LEVEL) through [`WORK_POOL`].
    pub static WORK: [Slot<Work>; WORK_SLOTS] = [const { Slot::new(Work::INIT) }; WORK_SLOTS];
    /// Which [`WORK`] slots are taken and who waits (`sensor_core::work`).
    pub static WORK_POOL: WorkPool<WORK_SLOTS> = WorkPool::new();
    /// Signalled once per waiter admitted by a leaving evaluation;
    /// initialised by DriverEntry (`init_work`, PASSIVE_LEVEL) before any
    /// callback.
    pub static WORK_SEM: Semaphore = Semaphore::new();
    /// How long an evaluation waits for a slot (ms): DriverEntry
    /// (configuration, PASSIVE_LEVEL).
    pub static WORK_WAIT_MS: AtomicU32 = AtomicU32::new(sensor_core::work::DEFAULT_WAIT_MS);
}

/// Content loading (`crate::content`).
pub mod content {
    use crate::content::{Config, GuardSnapshot, ScanWork};
    use crate::sys::{Slot, SpinLock};
    use sensor_core::proto::RolloutStatus;

    /// The configuration read from the service key: DriverEntry
    /// (PASSIVE_LEVEL); read by scans and the signature check.
    pub static CONFIG: SpinLock<Option<Config>> = SpinLock::new(None);
    /// The crash-loop guard as last persisted, plus status flags: scans,
    /// the proven timer and unload (PASSIVE_LEVEL); read by STATUS.
    pub static GUARD: SpinLock<GuardSnapshot> = SpinLock::new(GuardSnapshot::INIT);
    /// The last selection's inputs and verdicts (the ROLLOUT IOCTL):
    /// written by every scan (PASSIVE_LEVEL).
    pub static ROLLOUT: SpinLock<RolloutStatus> = SpinLock::new(RolloutStatus::EMPTY);
    /// A scan's working memory, one scan at a time (DriverEntry, RESCAN,
    /// the rescan thread; PASSIVE_LEVEL): a second scan finds it taken.
    pub static SCAN: Slot<ScanWork> = Slot::new(ScanWork::INIT);
}

/// Protected pipes, critical processes, circuit breaker, soak (`crate::blocksafe`).
pub mod blocksafe {
    use crate::blocksafe::{Adopted, ROOT_UNITS};
    use crate::sys::{InitOnce, SpinLock, Wide};
    use core::sync::atomic::{AtomicU32, AtomicU64};
    use sensor_core::breaker::{Breaker, DEFAULT_SETTINGS};

    /// The system root in DOS form without a trailing backslash; set once
    /// before the callbacks start (DriverEntry, PASSIVE_LEVEL).
    pub static ROOT: InitOnce<Wide<ROOT_UNITS>> = InitOnce::new(Wide::empty());
    /// Block rules enforce from this monotonic time (ms) on: set when
    /// content is adopted (PASSIVE_LEVEL); read by every decision.
    pub static ENFORCE_AT_MS: AtomicU64 = AtomicU64::new(0);
    /// ENFORCEMENT flags (`ENFORCEMENT_FLAG_*`): DriverEntry and adoption
    /// (PASSIVE_LEVEL).
    pub static FLAGS: AtomicU32 = AtomicU32::new(0);
    /// Denials turned into allows because the pipe is protected (decision
    /// path, <= APC_LEVEL).
    pub static PROTECTED: AtomicU64 = AtomicU64::new(0);
    /// Denials turned into alerts by the soak (decision path).
    pub static SOAKED: AtomicU64 = AtomicU64::new(0);
    /// Denials turned into alerts by the breaker (decision path).
    pub static DEMOTED: AtomicU64 = AtomicU64::new(0);
    /// The circuit breaker: the decision path (<= APC_LEVEL), adoption and
    /// BREAKER_RESET (PASSIVE_LEVEL), under its spin lock.
    pub static BREAKER: SpinLock<Breaker> = SpinLock::new(Breaker::new(DEFAULT_SETTINGS));
    /// What ENFORCEMENT reports besides the breaker: adoption (PASSIVE_LEVEL).
    pub static ADOPTED: SpinLock<Adopted> = SpinLock::new(Adopted::INIT);
}

/// The control device's IOCTLs (`crate::control`).
pub mod control {
    use crate::control::EvalBufs;
    use crate::sys::Slot;

    /// EVAL's copies of the request's name and image, one EVAL at a time
    /// (the caller's thread, PASSIVE_LEVEL): a concurrent EVAL gets
    /// STATUS_DEVICE_BUSY.
    pub static EVAL_BUFS: Slot<EvalBufs> = Slot::new(EvalBufs::INIT);
}

/// The drive-letter table (`crate::drives`).
pub mod drives {
    use crate::sys::InitOnce;
    use core::sync::atomic::AtomicU64;
    use sensor_core::dospath::DeviceMap;

    /// Targets of `\??\A:` .. `\??\Z:`: filled once by DriverEntry
    /// (PASSIVE_LEVEL) before the callbacks start; read by every evaluation.
    pub static DRIVES: InitOnce<DeviceMap> = InitOnce::new(DeviceMap::new());
    /// Image paths left in NT form because their DOS form did not fit
    /// (decision path, <= APC_LEVEL).
    pub static TOO_LONG: AtomicU64 = AtomicU64::new(0);
}

/// Secondary bug-check dump data (`crate::dump`).
pub mod dump {
    use crate::dump::DUMP_LEN;
    use crate::sys::{DumpArea, SpinLock};

    /// The dump area: written under [`LOCK`] by content changes and events
    /// (<= APC_LEVEL); read by the bug-check callback (HIGH_LEVEL, system
    /// halted) through `HOOKS.dump_area`.
    pub static DUMP: DumpArea<DUMP_LEN> = DumpArea::new();
    /// Serialises writers of [`DUMP`]; holds the next event slot.
    pub static LOCK: SpinLock<u32> = SpinLock::new(0);
}

/// The FFI layer's own state (`crate::sys`).
pub mod sys {
    use crate::sys::pending::WAIT_SLOTS;
    use crate::sys::types::DEVICE_OBJECT;
    use crate::sys::{BugRecord, SpinLock, ThreadState};
    use core::ffi::c_void;
    use core::ptr::null_mut;
    use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicUsize};
    use sensor_core::rundown::Rundown;
    use sensor_core::waitq::WaitQueue;

    // Kernel routines resolved by DriverEntry (MmGetSystemRoutineAddress,
    // PASSIVE_LEVEL) before anything calls them; null when the kernel lacks
    // them. Read at any IRQL.
    /// `ExAllocatePool2` (Windows 10 2004+; null under Wine).
    pub static EX_ALLOCATE_POOL2: AtomicPtr<c_void> = AtomicPtr::new(null_mut());
    /// `KeQuerySystemTimePrecise`, else `KeQuerySystemTime`.
    pub static QUERY_TIME: AtomicPtr<c_void> = AtomicPtr::new(null_mut());
    /// The boot identity the process GUIDs carry (`sensor_core::event::process_guid`):
    /// DriverEntry (`fix_boot_identity`).
    pub static BOOT_ID: AtomicU64 = AtomicU64::new(0);
    /// Whether [`BOOT_ID`] came from interrupt time (else the driver's start).
    pub static BOOT_FROM_INTERRUPT_TIME: AtomicBool = AtomicBool::new(false);
    /// `KeQueryInterruptTime`.
    pub static INTERRUPT_TIME: AtomicPtr<c_void> = AtomicPtr::new(null_mut());
    /// `KeQueryInterruptTimePrecise`.
    pub static INTERRUPT_TIME_PRECISE: AtomicPtr<c_void> = AtomicPtr::new(null_mut());
    /// `KeQueryPerformanceCounter` (`sys::clock`).
    pub static QPC: AtomicPtr<c_void> = AtomicPtr::new(null_mut());
    /// The highest value `sys::clock::monotonic_ms` returned from the
    /// fallback (any IRQL, `fetch_max`).
    pub static LAST_MS: AtomicU64 = AtomicU64::new(0);
    /// Pool allocations outstanding (every alloc/free, <= DISPATCH_LEVEL);
    /// the unload log and STATUS report it.
    pub static POOL_LIVE: AtomicUsize = AtomicUsize::new(0);
    /// The bug-check reason callback record: written by the kernel at
    /// registration and by register/deregister (DriverEntry, unload).
    pub static BUG_RECORD: BugRecord = BugRecord::new();
    /// Whether [`BUG_RECORD`] is registered (DriverEntry, unload).
    pub static BUG_REGISTERED: AtomicBool = AtomicBool::new(false);
    /// The service-key value `BugCheckCallback` (REG_DWORD, default 1): 0 leaves
    /// the bug-check reason callback unregistered. A test setting: Wine 8's
    /// `KeRegisterBugCheckReasonCallback` is a stub that raises when called, so
    /// the Wine tests set it (scripts/wine-lib.sh); the driver itself never asks
    /// what kernel it runs on. Written by DriverEntry (configuration).
    pub static BUGCHECK_CALLBACK: AtomicBool = AtomicBool::new(true);
    /// The "proven after a clean run" timer thread: started by DriverEntry
    /// and scans, stopped at unload (PASSIVE_LEVEL).
    pub static TIMER: ThreadState = ThreadState::new();
    /// The periodic rescan thread: DriverEntry / unload (PASSIVE_LEVEL).
    pub static RESCANNER: ThreadState = ThreadState::new();
    /// The control device: DriverEntry creates it, unload deletes it.
    pub static CONTROL_DEVICE: AtomicPtr<DEVICE_OBJECT> = AtomicPtr::new(null_mut());
    /// Whether the control device's symbolic link exists (DriverEntry, unload).
    pub static SYMLINK_CREATED: AtomicBool = AtomicBool::new(false);
    /// The filter handle from FltRegisterFilter (DriverEntry; cleared by
    /// FltUnregisterFilter at unload).
    pub static FILTER: AtomicPtr<c_void> = AtomicPtr::new(null_mut());
    /// Unload protection for callbacks: teardown waits for in-flight callbacks.
    /// (sensor_core::rundown, because Wine 8 stubs the EX_RUNDOWN_REF routines.)
    /// Entered by every callback (<= APC_LEVEL); closed by teardown.
    pub static RUNDOWN: Rundown = Rundown::new();
    /// Pended EVENTS_V2 requests (`sensor_core::waitq`): dispatch, wake,
    /// cancel routine (<= DISPATCH_LEVEL), cleanup and unload, under its
    /// spin lock.
    pub static QUEUE: SpinLock<WaitQueue<WAIT_SLOTS>> = SpinLock::new(WaitQueue::new());
    /// Requests pended (counted for the unload log).
    pub static PENDED: AtomicU64 = AtomicU64::new(0);
    /// Pended requests completed by a push.
    pub static WOKEN: AtomicU64 = AtomicU64::new(0);
    /// Requests completed as cancelled.
    pub static CANCELLED: AtomicU64 = AtomicU64::new(0);
    /// Requests completed by their handle's cleanup or unload.
    pub static CLEANED: AtomicU64 = AtomicU64::new(0);
}
