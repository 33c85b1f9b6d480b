//! Synchronisation: spin lock, slot, write-once cell.

use super::*;

/// Data behind a `KSPIN_LOCK`. `with` raises to DISPATCH_LEVEL for the
/// closure: keep it short, touch only nonpaged memory, never wait.
pub struct SpinLock<T> {
    lock: UnsafeCell<usize>,
    data: UnsafeCell<T>,
}

// SAFETY: access to `data` is serialised by the kernel spin lock.
unsafe impl<T: Send> Sync for SpinLock<T> {}

impl<T> SpinLock<T> {
    /// A released lock (`KeInitializeSpinLock` stores 0).
    pub const fn new(v: T) -> Self {
        SpinLock {
            lock: UnsafeCell::new(0),
            data: UnsafeCell::new(v),
        }
    }
    /// Runs `f` with the lock held. IRQL <= DISPATCH_LEVEL.
    pub fn with<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        // SAFETY: the lock word lives as long as self (a static in practice);
        // callers are at IRQL <= DISPATCH_LEVEL.
        let old = unsafe { KeAcquireSpinLockRaiseToDpc(self.lock.get()) };
        // SAFETY: the spin lock gives exclusive access to data until release.
        let r = f(unsafe { &mut *self.data.get() });
        // SAFETY: releases the lock acquired above, restoring the old IRQL.
        unsafe { KeReleaseSpinLock(self.lock.get(), old) };
        r
    }
}

/// A try-lock slot for preallocated matcher scratch.
pub struct Slot<T> {
    busy: AtomicBool,
    data: UnsafeCell<T>,
}

// SAFETY: `busy` grants exclusive access to `data`.
unsafe impl<T: Send> Sync for Slot<T> {}

impl<T> Slot<T> {
    pub const fn new(v: T) -> Self {
        Slot {
            busy: AtomicBool::new(false),
            data: UnsafeCell::new(v),
        }
    }
    /// Runs `f` with exclusive access, or returns None at once when busy. Never waits.
    pub fn try_with<R>(&self, f: impl FnOnce(&mut T) -> R) -> Option<R> {
        if self
            .busy
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            return None;
        }
        // SAFETY: we won the compare-exchange: exclusive until the store below.
        let r = f(unsafe { &mut *self.data.get() });
        self.busy.store(false, Ordering::Release);
        Some(r)
    }
}

/// A value written once, at PASSIVE_LEVEL before any reader runs (e.g. in
/// DriverEntry), then only read, at any IRQL, without a lock.
pub struct InitOnce<T> {
    /// 0 empty, 1 being written, 2 ready.
    state: AtomicU8,
    data: UnsafeCell<T>,
}

// SAFETY: `data` is written only by the one caller that moved `state` from
// 0 to 1, and read only after `state` is 2 (Release/Acquire), never both.
unsafe impl<T: Send + Sync> Sync for InitOnce<T> {}

impl<T> InitOnce<T> {
    /// Not yet initialised; `v` is the (unpublished) starting value.
    pub const fn new(v: T) -> Self {
        InitOnce {
            state: AtomicU8::new(0),
            data: UnsafeCell::new(v),
        }
    }
    /// Runs `f` on the value in place and publishes it. Only the first call
    /// does anything; returns whether this call did.
    pub fn init(&self, f: impl FnOnce(&mut T)) -> bool {
        if self
            .state
            .compare_exchange(0, 1, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            return false;
        }
        // SAFETY: we moved state 0 -> 1: no reader sees the value before the
        // store of 2 below, and no other writer can get here.
        f(unsafe { &mut *self.data.get() });
        self.state.store(2, Ordering::Release);
        true
    }
    /// The value, once published.
    pub fn get(&self) -> Option<&T> {
        if self.state.load(Ordering::Acquire) != 2 {
            return None;
        }
        // SAFETY: state 2: the value is published and never written again.
        Some(unsafe { &*self.data.get() })
    }
}
