//! Bug check: panic handler, the bug-check reason callback and its dump area.

use super::*;
use crate::globals::sys::*;

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
/// buffer of `N` bytes in the image (nonpaged), updated by the driver's
/// dump module under its lock; [`Hooks::dump_area`] hands its address and
/// length to [`bugcheck_secondary`].
pub struct DumpArea<const N: usize>(UnsafeCell<[u8; N]>);
// SAFETY: writers hold the dump module's spin lock; the bug-check callback
// reads it with the system halted (a torn read only garbles diagnostics).
unsafe impl<const N: usize> Sync for DumpArea<N> {}

impl<const N: usize> DumpArea<N> {
    pub const fn new() -> Self {
        DumpArea(UnsafeCell::new([0; N]))
    }
    /// The area's address and length, for the kernel (no access here).
    pub fn raw(&self) -> (*mut u8, usize) {
        (self.0.get().cast(), N)
    }
    /// Writes the area. Callers serialise (the dump module's lock).
    pub fn write(&self, f: impl FnOnce(&mut [u8; N])) {
        // SAFETY: writers are serialised by the caller's lock; the only other
        // access is the bug-check callback (system halted).
        f(unsafe { &mut *self.0.get() })
    }
}

pub(crate) struct BugRecord(UnsafeCell<KBUGCHECK_REASON_CALLBACK_RECORD>);
// SAFETY: the record is written only by the kernel (registration) and by
// register/deregister in DriverEntry/unload, which do not overlap.
unsafe impl Sync for BugRecord {}

impl BugRecord {
    /// An unregistered record.
    pub(crate) const fn new() -> Self {
        BugRecord(UnsafeCell::new(KBUGCHECK_REASON_CALLBACK_RECORD {
            Entry: LIST_ENTRY {
                Flink: null_mut(),
                Blink: null_mut(),
            },
            CallbackRoutine: null_mut(),
            Component: null_mut(),
            Checksum: 0,
            Reason: 0,
            State: 0,
        }))
    }
}

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
    let (area, area_len) = (HOOKS.dump_area)();
    if (d.MaximumAllowed as usize) < area_len {
        return;
    }
    d.OutBuffer = area.cast();
    d.OutBufferLength = area_len as u32;
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
