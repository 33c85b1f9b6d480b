//! System threads: the "proven after a clean run" timer and the periodic content rescan.

use super::*;
use crate::globals::sys::*;

pub(crate) struct ThreadState {
    stop: UnsafeCell<KEVENT>,
    thread: AtomicPtr<c_void>,
    func: AtomicPtr<c_void>,
    seconds: AtomicUsize,
}
// SAFETY: the KEVENT is only touched through Ke* routines, which synchronise.
unsafe impl Sync for ThreadState {}

impl ThreadState {
    pub(crate) const fn new() -> Self {
        ThreadState {
            stop: UnsafeCell::new(KEVENT { opaque: [0; 24] }),
            thread: AtomicPtr::new(null_mut()),
            func: AtomicPtr::new(null_mut()),
            seconds: AtomicUsize::new(0),
        }
    }

    /// Waits `seconds` on the stop event: true when the time ran out, false
    /// when the thread was told to stop. PASSIVE_LEVEL, from the thread.
    fn wait(&self) -> bool {
        let secs = self.seconds.load(Ordering::Acquire) as i64;
        let timeout: i64 = -(secs.saturating_mul(10_000_000)); // relative, 100 ns units
                                                               // SAFETY: PASSIVE_LEVEL system thread; the event was initialised
                                                               // before the thread was created and outlives it (a static).
        let s = unsafe { KeWaitForSingleObject(self.stop.get().cast(), 0, 0, 0, &timeout) };
        s == STATUS_TIMEOUT
    }

    /// Creates the system thread running `entry`, tracked in `thread`.
    /// PASSIVE_LEVEL.
    fn spawn(
        &'static self,
        seconds: u32,
        entry: unsafe extern "system" fn(*mut c_void),
    ) -> Result<(), NTSTATUS> {
        self.seconds.store(seconds as usize, Ordering::Release);
        // SAFETY: initialising a static KEVENT (NotificationEvent=0, not
        // signalled) before any thread waits on it.
        unsafe { KeInitializeEvent(self.stop.get().cast(), 0, 0) };
        let mut h: HANDLE = null_mut();
        let oa = OBJECT_ATTRIBUTES {
            Length: core::mem::size_of::<OBJECT_ATTRIBUTES>() as u32,
            RootDirectory: null_mut(),
            ObjectName: ptr::null(),
            Attributes: OBJ_KERNEL_HANDLE,
            SecurityDescriptor: null_mut(),
            SecurityQualityOfService: null_mut(),
        };
        // SAFETY: PASSIVE_LEVEL; entry has the PKSTART_ROUTINE prototype.
        let s = unsafe {
            PsCreateSystemThread(
                &mut h,
                0x1F_FFFF,
                &oa,
                null_mut(),
                null_mut(),
                entry,
                null_mut(),
            )
        };
        if !nt_success(s) {
            return Err(s);
        }
        let mut obj: *mut c_void = null_mut();
        // SAFETY: h is the kernel handle just returned; KernelMode access; no type check.
        let r = unsafe {
            ObReferenceObjectByHandle(h, SYNCHRONIZE, null_mut(), 0, &mut obj, null_mut())
        };
        // SAFETY: closing our handle; the referenced object keeps the thread alive.
        unsafe { ZwClose(h) };
        if nt_success(r) {
            self.thread.store(obj, Ordering::Release);
        }
        Ok(())
    }

    /// Tells the thread to stop and waits for it to exit. PASSIVE_LEVEL,
    /// never from the thread itself.
    fn stop(&self) {
        let t = self.thread.swap(null_mut(), Ordering::AcqRel);
        if t.is_null() {
            return;
        }
        // SAFETY: the event was initialised in spawn (t non-null implies it ran).
        unsafe { KeSetEvent(self.stop.get().cast(), 0, 0) };
        // SAFETY: t is a referenced thread object; waiting at PASSIVE_LEVEL.
        unsafe { KeWaitForSingleObject(t, 0, 0, 0, ptr::null()) };
        // SAFETY: dropping the reference taken in spawn.
        unsafe { ObfDereferenceObject(t) };
    }
}

unsafe extern "system" fn timer_thread(_ctx: *mut c_void) {
    if TIMER.wait() {
        let f = TIMER.func.load(Ordering::Acquire);
        if !f.is_null() {
            // SAFETY: func was stored from a `fn()` in start_timer.
            let f: fn() = unsafe { core::mem::transmute::<*mut c_void, fn()>(f) };
            f();
        }
    }
    // SAFETY: terminating the current system thread.
    unsafe { PsTerminateSystemThread(STATUS_SUCCESS) };
}

/// Starts a system thread that calls `f` after `seconds`, unless
/// [`stop_timer`] runs first. PASSIVE_LEVEL.
pub fn start_timer(seconds: u32, f: fn()) -> Result<(), NTSTATUS> {
    TIMER.func.store(f as *mut c_void, Ordering::Release);
    TIMER.spawn(seconds, timer_thread)
}

/// Stops the timer thread and waits for it to exit (PASSIVE_LEVEL).
pub fn stop_timer() {
    TIMER.stop();
}

unsafe extern "system" fn rescan_thread(_ctx: *mut c_void) {
    while RESCANNER.wait() {
        (HOOKS.periodic_rescan)();
    }
    // SAFETY: terminating the current system thread.
    unsafe { PsTerminateSystemThread(STATUS_SUCCESS) };
}

/// Starts the system thread that rescans the content directory every
/// `seconds` (`content::periodic_rescan`) until [`stop_rescan_thread`].
/// PASSIVE_LEVEL.
pub fn start_rescan_thread(seconds: u32) -> Result<(), NTSTATUS> {
    RESCANNER.spawn(seconds, rescan_thread)
}

/// Stops the rescan thread and waits for it to exit (unload, PASSIVE_LEVEL).
pub fn stop_rescan_thread() {
    RESCANNER.stop();
}
