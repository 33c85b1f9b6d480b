//! Routines resolved at run time (`MmGetSystemRoutineAddress`), the boot identity and system time.

use super::*;
use crate::globals::sys::*;

pub(super) type ExAllocatePool2Fn =
    unsafe extern "system" fn(flags: u64, size: usize, tag: u32) -> *mut c_void;
type QuerySystemTimeFn = unsafe extern "system" fn(*mut i64);

pub(super) fn system_routine(name: &str) -> *mut c_void {
    let w = Wide::<64>::new(name);
    let us = w.unicode();
    // SAFETY: PASSIVE_LEVEL (DriverEntry); `us` points into `w`, alive for the call.
    unsafe { MmGetSystemRoutineAddress(&us) }
}

type QueryInterruptTimeFn = unsafe extern "system" fn() -> u64;
type QueryInterruptTimePreciseFn = unsafe extern "system" fn(*mut u64) -> u64;

/// Fixes the boot identity (DriverEntry, PASSIVE_LEVEL, after
/// [`resolve_dynamic_routines`]): the boot instant in whole seconds since
/// 1601, system time minus interrupt time (`KeQueryInterruptTimePrecise`
/// on Windows 10; else `KeQueryInterruptTime`, as in Wine, whose value
/// counts ticks and is scaled by `KeQueryTimeIncrement`),
/// so a driver restart within one boot keeps every process's GUID. Without
/// an interrupt-time routine it is the driver's start time (GUIDs then
/// change when the driver restarts; logged). The clock being set while the
/// machine runs moves the computed instant: GUIDs of processes seen after a
/// driver restart that follows a clock change differ (documented in
/// docs/events.md).
pub fn fix_boot_identity() {
    let now = system_time();
    INTERRUPT_TIME_PRECISE.store(
        system_routine("KeQueryInterruptTimePrecise"),
        Ordering::Release,
    );
    INTERRUPT_TIME.store(system_routine("KeQueryInterruptTime"), Ordering::Release);
    let precise = INTERRUPT_TIME_PRECISE.load(Ordering::Acquire);
    let plain = INTERRUPT_TIME.load(Ordering::Acquire);
    let interrupt = if !precise.is_null() {
        // SAFETY: the exported routine has this prototype
        // (ULONG64 fn(PULONG64 QpcTimeStamp)); any IRQL; qpc is a live local.
        let f =
            unsafe { core::mem::transmute::<*mut c_void, QueryInterruptTimePreciseFn>(precise) };
        let mut qpc = 0u64;
        // SAFETY: see above.
        Some(unsafe { f(&mut qpc) })
    } else if !plain.is_null() {
        // SAFETY: the exported routine has this prototype (ULONGLONG fn(void)); any IRQL.
        let f = unsafe { core::mem::transmute::<*mut c_void, QueryInterruptTimeFn>(plain) };
        // SAFETY: see above.
        let t = unsafe { f() };
        // Only reached where KeQueryInterruptTimePrecise is missing: Wine
        // (the driver needs Windows 10, which has it). Wine 8's
        // KeQueryInterruptTime returns KeQueryTickCount (ticks, not 100 ns
        // units): scale by the tick length.
        // SAFETY: no arguments; any IRQL.
        let inc = unsafe { KeQueryTimeIncrement() };
        Some(t.saturating_mul(u64::from(inc)))
    } else {
        None
    };
    let boot = match interrupt {
        Some(i) if now > i => {
            BOOT_FROM_INTERRUPT_TIME.store(true, Ordering::Release);
            (now - i) / 10_000_000
        }
        _ => now / 10_000_000,
    };
    BOOT_ID.store(boot, Ordering::Release);
    log(
        Level::Trace,
        format_args!(
            "boot identity {boot:#x} ({})",
            if BOOT_FROM_INTERRUPT_TIME.load(Ordering::Relaxed) {
                "boot instant"
            } else {
                "driver start: no interrupt-time routine"
            }
        ),
    );
}

/// The boot identity fixed by [`fix_boot_identity`].
pub fn boot_identity() -> u64 {
    BOOT_ID.load(Ordering::Acquire)
}

/// Resolves routines that are missing on older kernels or under Wine
/// (`ExAllocatePool2` since Windows 10 2004; `KeQuerySystemTimePrecise`
/// since Windows 8). Call once from DriverEntry (PASSIVE_LEVEL).
pub fn resolve_dynamic_routines() {
    EX_ALLOCATE_POOL2.store(system_routine("ExAllocatePool2"), Ordering::Release);
    let mut t = system_routine("KeQuerySystemTimePrecise");
    if t.is_null() {
        // x64 Windows has only the Precise export; Wine has only this one.
        t = system_routine("KeQuerySystemTime");
    }
    QUERY_TIME.store(t, Ordering::Release);
    clock::resolve();
    log(
        Level::Trace,
        format_args!(
            "ExAllocatePool2 {}, time source {}",
            if EX_ALLOCATE_POOL2.load(Ordering::Relaxed).is_null() {
                "absent (ExAllocatePoolWithTag)"
            } else {
                "present"
            },
            if QUERY_TIME.load(Ordering::Relaxed).is_null() {
                "none"
            } else {
                "present"
            }
        ),
    );
}

/// System time in 100 ns units since 1601, 0 when no routine is available.
/// Any IRQL.
pub fn system_time() -> u64 {
    let p = QUERY_TIME.load(Ordering::Acquire);
    if p.is_null() {
        return 0;
    }
    // SAFETY: p came from MmGetSystemRoutineAddress for a routine with this
    // exact prototype (VOID fn(PLARGE_INTEGER)).
    let f: QuerySystemTimeFn = unsafe { core::mem::transmute::<*mut c_void, QuerySystemTimeFn>(p) };
    let mut t = 0i64;
    // SAFETY: writes one LARGE_INTEGER to a valid local; callable at any IRQL.
    unsafe { f(&mut t) };
    t as u64
}
