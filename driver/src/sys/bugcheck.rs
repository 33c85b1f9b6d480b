//! Bug check: panic handler, the bug-check reason callback and its dump area.

use super::*;

/// Stops the machine with `code`. Never returns.
pub fn bug_check(code: u32, p1: usize, p2: usize, p3: usize, p4: usize) -> ! {
    // SAFETY: KeBugCheckEx is callable at any IRQL and does not return.
    unsafe { KeBugCheckEx(code, p1, p2, p3, p4) }
}

#[cfg(not(test))]
#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    let (file, line, col) = match info.location() {
        Some(l) => (l.file(), l.line(), l.column()),
        None => ("?", 0, 0),
    };
    log(Level::Error, format_args!("panic at {file}:{line}:{col}"));
    bug_check(
        BUGCHECK_PANIC,
        file.as_ptr() as usize,
        file.len(),
        line as usize,
        col as usize,
    )
}

/// Secondary dump data handed to the bug-check reason callback: a fixed
/// buffer in the image (nonpaged), updated by `crate::dump` under its lock.
pub struct DumpArea(UnsafeCell<[u8; crate::dump::DUMP_LEN]>);
// SAFETY: writers hold crate::dump's spin lock; the bug-check callback reads
// it with the system halted (a torn read only garbles diagnostics).
unsafe impl Sync for DumpArea {}

impl DumpArea {
    pub const fn new() -> Self {
        DumpArea(UnsafeCell::new([0; crate::dump::DUMP_LEN]))
    }
    /// Writes the area. Callers serialise (crate::dump's lock).
    pub fn write(&self, f: impl FnOnce(&mut [u8; crate::dump::DUMP_LEN])) {
        // SAFETY: writers are serialised by the caller's lock; the only other
        // access is the bug-check callback (system halted).
        f(unsafe { &mut *self.0.get() })
    }
}

struct BugRecord(UnsafeCell<KBUGCHECK_REASON_CALLBACK_RECORD>);
// SAFETY: the record is written only by the kernel (registration) and by
// register/deregister in DriverEntry/unload, which do not overlap.
unsafe impl Sync for BugRecord {}

static BUG_RECORD: BugRecord = BugRecord(UnsafeCell::new(KBUGCHECK_REASON_CALLBACK_RECORD {
    Entry: LIST_ENTRY {
        Flink: null_mut(),
        Blink: null_mut(),
    },
    CallbackRoutine: null_mut(),
    Component: null_mut(),
    Checksum: 0,
    Reason: 0,
    State: 0,
}));
static BUG_REGISTERED: AtomicBool = AtomicBool::new(false);

/// The service-key value `BugCheckCallback` (REG_DWORD, default 1): 0 leaves
/// the bug-check reason callback unregistered. A test setting: Wine 8's
/// `KeRegisterBugCheckReasonCallback` is a stub that raises when called, so
/// the Wine tests set it (scripts/wine-lib.sh); the driver itself never asks
/// what kernel it runs on.
static BUGCHECK_CALLBACK: AtomicBool = AtomicBool::new(true);

/// Sets [`BUGCHECK_CALLBACK`] (from the service key, before
/// [`register_bugcheck_callback`]).
pub fn set_bugcheck_callback(on: bool) {
    BUGCHECK_CALLBACK.store(on, Ordering::Release);
}

/// GUID tagging our secondary dump data: {5053454e-0291-4e50-9f1b-7069706573ff}.
pub const DUMP_GUID: GUID = GUID {
    Data1: 0x5053_454e,
    Data2: 0x0291,
    Data3: 0x4e50,
    Data4: [0x9f, 0x1b, 0x70, 0x69, 0x70, 0x65, 0x73, 0xff],
};

unsafe extern "system" fn bugcheck_secondary(
    reason: i32,
    _rec: *mut c_void,
    data: *mut c_void,
    len: u32,
) {
    if reason != KB_CALLBACK_SECONDARY_DUMP_DATA
        || data.is_null()
        || (len as usize) < core::mem::size_of::<KBUGCHECK_SECONDARY_DUMP_DATA>()
    {
        return;
    }
    let d = data.cast::<KBUGCHECK_SECONDARY_DUMP_DATA>();
    // SAFETY: HIGH_LEVEL during a bug check; the kernel passes a valid
    // KBUGCHECK_SECONDARY_DUMP_DATA of `len` bytes (checked above).
    let d = unsafe { &mut *d };
    if (d.MaximumAllowed as usize) < crate::dump::DUMP_LEN {
        return;
    }
    d.OutBuffer = crate::dump::DUMP.0.get().cast();
    d.OutBufferLength = crate::dump::DUMP_LEN as u32;
    d.Guid = DUMP_GUID;
}

/// Registers the secondary-dump callback (PASSIVE_LEVEL, DriverEntry).
pub fn register_bugcheck_callback() -> bool {
    if !BUGCHECK_CALLBACK.load(Ordering::Acquire) {
        log(
            Level::Warning,
            format_args!("BugCheckCallback is 0 in the service key (a test setting): the bug-check reason callback is not registered"),
        );
        return false;
    }
    // SAFETY: the record and component name are statics that outlive the
    // registration (deregistered in unload before the image goes away).
    let ok = unsafe {
        KeRegisterBugCheckReasonCallback(
            BUG_RECORD.0.get().cast(),
            bugcheck_secondary,
            KB_CALLBACK_SECONDARY_DUMP_DATA,
            c"PipeSensor".as_ptr().cast(),
        )
    } != 0;
    BUG_REGISTERED.store(ok, Ordering::Release);
    ok
}

/// Deregisters it (unload).
pub fn deregister_bugcheck_callback() {
    if BUG_REGISTERED.swap(false, Ordering::AcqRel) {
        // SAFETY: the record was registered above and is deregistered once.
        unsafe { KeDeregisterBugCheckReasonCallback(BUG_RECORD.0.get().cast()) };
    }
}
