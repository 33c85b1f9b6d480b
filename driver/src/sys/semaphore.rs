//! A kernel semaphore (`KSEMAPHORE`): what a callback waits on when every
//! working-memory slot is busy (`sensor_core::work`).

use super::types::KSEMAPHORE;
use super::{KeInitializeSemaphore, KeReleaseSemaphore, KeWaitForSingleObject, STATUS_SUCCESS};
use core::cell::UnsafeCell;
use core::ptr;
use core::sync::atomic::{AtomicBool, Ordering};

/// A `KSEMAPHORE` in the image (nonpaged), initialised once.
pub struct Semaphore {
    k: UnsafeCell<KSEMAPHORE>,
    ready: AtomicBool,
}

// SAFETY: the KSEMAPHORE is only touched through Ke* routines, which
// synchronise; `ready` publishes its initialisation.
unsafe impl Sync for Semaphore {}

impl Semaphore {
    /// Not yet initialised: [`Semaphore::wait`] fails at once and
    /// [`Semaphore::release`] does nothing until [`Semaphore::init`].
    pub const fn new() -> Self {
        Semaphore {
            k: UnsafeCell::new(KSEMAPHORE { opaque: [0; 32] }),
            ready: AtomicBool::new(false),
        }
    }

    /// Count 0, no practical limit (a release beyond the limit raises an
    /// exception on Windows). Once, at PASSIVE_LEVEL, before any wait or
    /// release (DriverEntry).
    pub fn init(&self) {
        if self.ready.load(Ordering::Acquire) {
            return;
        }
        // SAFETY: PASSIVE_LEVEL; the static KSEMAPHORE is not in use yet
        // (ready is false: no waiter or releaser touches it).
        unsafe { KeInitializeSemaphore(self.k.get().cast(), 0, i32::MAX) };
        self.ready.store(true, Ordering::Release);
    }

    /// Waits for the semaphore, at most `ms` milliseconds (`None`: no
    /// bound). True when it was signalled. IRQL <= APC_LEVEL (PASSIVE_LEVEL
    /// in the create callbacks and the IOCTL path that call it).
    pub fn wait(&self, ms: Option<u32>) -> bool {
        if !self.ready.load(Ordering::Acquire) {
            return false;
        }
        let timeout: i64 = ms.map_or(0, |m| -(i64::from(m) * 10_000)); // relative, 100 ns units
        let t = if ms.is_some() {
            &timeout as *const i64
        } else {
            ptr::null()
        };
        // SAFETY: IRQL <= APC_LEVEL (see above); the semaphore was
        // initialised (ready) and is a static; `t` is null or points to a
        // live local. Executive wait, KernelMode, not alertable.
        let s = unsafe { KeWaitForSingleObject(self.k.get().cast(), 0, 0, 0, t) };
        s == STATUS_SUCCESS
    }

    /// Signals the semaphore once. IRQL <= DISPATCH_LEVEL.
    pub fn release(&self) {
        if !self.ready.load(Ordering::Acquire) {
            return;
        }
        // SAFETY: initialised static semaphore; adjustment 1 never reaches
        // the limit (i32::MAX: at most one unit per waiting callback).
        unsafe { KeReleaseSemaphore(self.k.get().cast(), 0, 1, 0) };
    }
}
