//! The monotonic millisecond clock of the circuit breaker and the soak
//! (`crate::blocksafe`).
//!
//! `KeQueryPerformanceCounter` (every Windows; any IRQL; never set back),
//! resolved at start with `MmGetSystemRoutineAddress`. Not the interrupt
//! time: Wine 8's `KeQueryInterruptTime` reads a shared-data field that
//! does not advance in the driver host (measured: the soak never ended),
//! and the Wine test must run the clock Windows runs. When the routine is
//! missing the system time stands in, made monotonic here (a clock set back
//! never makes time go backwards: the breaker's window and the soak only
//! ever see it stand still).

use super::{system_routine, system_time};
use crate::globals::sys::*;
use core::ffi::c_void;
use core::sync::atomic::Ordering;

type QueryPerformanceCounterFn = unsafe extern "system" fn(frequency: *mut i64) -> i64;

/// Resolves the performance-counter routine. PASSIVE_LEVEL (DriverEntry).
pub(super) fn resolve() {
    let p = system_routine("KeQueryPerformanceCounter");
    QPC.store(p, Ordering::Release);
    super::log(
        super::Level::Trace,
        format_args!(
            "monotonic clock: {}",
            if p.is_null() {
                "system time, never set back"
            } else {
                "performance counter"
            }
        ),
    );
}

/// `counter` ticks of `frequency` per second, in milliseconds, without
/// overflow.
const fn ticks_to_ms(counter: u64, frequency: u64) -> u64 {
    match (
        counter.checked_div(frequency),
        counter.checked_rem(frequency),
    ) {
        (Some(s), Some(r)) => s
            .saturating_mul(1000)
            .saturating_add(r.saturating_mul(1000) / frequency),
        _ => 0,
    }
}

/// Milliseconds on a clock that never goes backwards. Any IRQL.
pub fn monotonic_ms() -> u64 {
    let p = QPC.load(Ordering::Acquire);
    if !p.is_null() {
        // SAFETY: p came from MmGetSystemRoutineAddress for
        // KeQueryPerformanceCounter, whose prototype this is (LARGE_INTEGER
        // fn(PLARGE_INTEGER), returned in RAX on x64); callable at any IRQL.
        let f: QueryPerformanceCounterFn =
            unsafe { core::mem::transmute::<*mut c_void, QueryPerformanceCounterFn>(p) };
        let mut freq = 0i64;
        // SAFETY: writes one LARGE_INTEGER to a valid local.
        let c = unsafe { f(&mut freq) };
        if freq > 0 && c >= 0 {
            return ticks_to_ms(c as u64, freq as u64);
        }
    }
    let now = system_time() / 10_000;
    let prev = LAST_MS.fetch_max(now, Ordering::AcqRel);
    prev.max(now)
}
