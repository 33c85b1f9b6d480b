//! Pended EVENTS_V2 requests: the IRP side of `sensor_core::waitq`.
//!
//! A request is identified by its IRP's address (the token) and owned by
//! its file object (the handle). The cancel routine is armed and disarmed
//! with `IoSetCancelRoutine`'s semantics (an atomic exchange of
//! `Irp->CancelRoutine`; the WDK's inline routine is not an export):
//! whoever takes the routine back (exchange returns non-NULL) owns the
//! completion; a request whose routine already started stays queued, marked,
//! until that routine removes and completes it.
//!
//! Locks: the ring's lock, then the queue's lock (never the other way). A
//! push takes the ring's lock, so a submit that saw the ring empty under it
//! is queued before the push's wake looks for waiters. The cancel routine
//! takes only the queue's lock.
//!
//! IRQL: submit and cleanup run in dispatch routines (PASSIVE_LEVEL), wake
//! in the pre-create callback after a push (PASSIVE_LEVEL) or the EVAL
//! IOCTL, close at unload (PASSIVE_LEVEL), the cancel routine at
//! DISPATCH_LEVEL or below. Completing an IRP is allowed at all of them.

use super::types::*;
use super::{
    log, BufferedIo, IoReleaseCancelSpinLock, IofCompleteRequest, KeDelayExecutionThread, Level,
};
use crate::globals::sys::*;
use crate::globals::HOOKS;
use core::sync::atomic::{AtomicUsize, Ordering};
use sensor_core::waitq::{Cancel, Submit, WaitQueue};

/// Most requests pended at once (a service keeps one; `pipectl driver
/// events --follow` another). A request beyond them is answered at once
/// with what the ring holds (possibly nothing), counted.
pub const WAIT_SLOTS: usize = 8;

/// Counts for the unload log: (pended, woken, cancelled, cleaned up or
/// closed, answered at once because every slot was in use).
pub fn counts() -> (u64, u64, u64, u64, u64) {
    (
        PENDED.load(Ordering::Relaxed),
        WOKEN.load(Ordering::Relaxed),
        CANCELLED.load(Ordering::Relaxed),
        CLEANED.load(Ordering::Relaxed),
        QUEUE.with(|q| q.full_count()),
    )
}

/// The current stack location of an IRP we own.
fn stack(irp: *mut IRP) -> *mut IO_STACK_LOCATION {
    // Validity: irp is an IRP dispatched to us and not yet completed (every
    // caller owns it); Tail.Overlay and its CurrentStackLocation are the
    // active members while it is ours (layout checked in layout.rs).
    // SAFETY: see above.
    let r = unsafe { &*irp };
    // SAFETY: see above (Tail.Overlay is the active member of Tail).
    let overlay = unsafe { &r.Tail.Overlay };
    // SAFETY: see above (CurrentStackLocation is the active member).
    unsafe { overlay.Anonymous2.Anonymous.CurrentStackLocation }.cast()
}

/// The file object (the handle) a request came on: the queue's owner.
fn owner(irp: *mut IRP) -> usize {
    // SAFETY: as in stack(): our IRP's current stack location is valid.
    unsafe { (*stack(irp)).FileObject as usize }
}

/// The METHOD_BUFFERED system buffer of an IRP we own.
fn buffered(irp: *mut IRP) -> BufferedIo {
    // Validity as in stack(); DeviceIoControl is the Parameters member for
    // IRP_MJ_DEVICE_CONTROL (only such IRPs are queued here), and
    // SystemBuffer the AssociatedIrp member for METHOD_BUFFERED.
    // SAFETY: see above.
    let sl = unsafe { &*stack(irp) };
    // SAFETY: see above.
    let p = unsafe { sl.Parameters.DeviceIoControl };
    // SAFETY: see above.
    let r = unsafe { &*irp };
    // SAFETY: see above.
    let buf = unsafe { r.AssociatedIrp.SystemBuffer }.cast();
    BufferedIo {
        buf,
        in_len: p.InputBufferLength as usize,
        out_len: p.OutputBufferLength as usize,
    }
}

/// `IoSetCancelRoutine`: exchanges `Irp->CancelRoutine`, returning whether
/// a routine was set before.
fn set_cancel(irp: *mut IRP, routine: usize) -> bool {
    // SAFETY: CancelRoutine is a pointer-sized, pointer-aligned field of our
    // IRP (offset 104, layout.rs); the I/O manager reads and exchanges it
    // atomically as well (IoCancelIrp).
    let field = unsafe { core::ptr::addr_of_mut!((*irp).CancelRoutine) }.cast::<usize>();
    // SAFETY: see above; the field is valid and aligned for an AtomicUsize.
    let a = unsafe { AtomicUsize::from_ptr(field) };
    a.swap(routine, Ordering::AcqRel) != 0
}

/// Disarms the cancel routine of a queued request: true when we took it
/// back (we own the completion), false when the routine already started.
fn disarm(token: usize) -> bool {
    set_cancel(token as *mut IRP, 0)
}

fn complete(irp: *mut IRP, status: NTSTATUS, information: usize) {
    {
        // SAFETY: an IRP we own (taken out of the queue, or never queued).
        let r = unsafe { &mut *irp };
        r.IoStatus.Anonymous.Status = status;
        r.IoStatus.Information = information;
    }
    // SAFETY: completed once, not touched afterwards.
    unsafe { IofCompleteRequest(irp, 0) };
}

/// Writes the answer (events from the ring) into a request's buffer while
/// the ring's lock is held; returns what to complete it with.
fn answer_into(irp: *mut IRP, ring: &mut super::Ring) -> (NTSTATUS, usize) {
    let mut io = buffered(irp);
    let out_len = io.out_len;
    match (HOOKS.events_answer)(&mut io, ring) {
        Ok(n) => (STATUS_SUCCESS, n.min(out_len)),
        Err(e) => (e.ntstatus(), 0),
    }
}

/// An EVENTS_V2 request with the WAIT flag (dispatch routine,
/// PASSIVE_LEVEL). Marks the IRP pending and always returns
/// `STATUS_PENDING`; the IRP is completed here (answered at once, or
/// cancelled before it could be queued) or later by a wake, its cancel
/// routine, the handle's cleanup or unload.
pub fn submit_wait(irp: *mut IRP) -> NTSTATUS {
    // IoMarkIrpPending, before any other path can see the IRP.
    // SAFETY: our IRP's current stack location (see stack()).
    let sl = unsafe { &mut *stack(irp) };
    sl.Control |= SL_PENDING_RETURNED;
    let token = irp as usize;
    let who = owner(irp);
    let done = HOOKS.ring.with(|ring| {
        let empty = ring.is_empty();
        let d = QUEUE.with(|q| {
            if q.is_closed() || !empty || q.pending() >= WAIT_SLOTS {
                // Answered at once (Closing, Answer or Full): no cancel
                // routine was armed.
                return q.submit(token, who, true, empty, false);
            }
            set_cancel(irp, cancel_routine as *const () as usize);
            // SAFETY: our IRP; Cancel is a byte the I/O manager sets
            // before it calls the routine.
            let cancel = unsafe { core::ptr::addr_of!((*irp).Cancel) };
            // SAFETY: see above: a valid, aligned byte of our IRP.
            let flagged = unsafe { cancel.read_volatile() };
            // Cancelled already and the routine taken back: answer
            // CANCELLED. Cancelled but the routine started: queue it, the
            // routine removes and completes it.
            let cancelled = flagged && disarm(token);
            q.submit(token, who, true, empty, cancelled)
        });
        match d {
            Submit::Pended => None,
            Submit::Cancelled => Some((STATUS_CANCELLED, 0)),
            Submit::Answer | Submit::Full | Submit::Closing => Some(answer_into(irp, ring)),
        }
    });
    match done {
        None => {
            PENDED.fetch_add(1, Ordering::Relaxed);
        }
        Some((status, info)) => {
            if status == STATUS_CANCELLED {
                CANCELLED.fetch_add(1, Ordering::Relaxed);
            }
            complete(irp, status, info);
        }
    }
    STATUS_PENDING
}

/// After a push: completes waiting requests with the ring's events while
/// events wait and someone waits.
pub fn wake() {
    loop {
        let done = HOOKS.ring.with(|ring| {
            if ring.is_empty() {
                return None;
            }
            let token = QUEUE.with(|q| q.take_for_wake(disarm))?;
            let irp = token as *mut IRP;
            Some((irp, answer_into(irp, ring)))
        });
        let Some((irp, (status, info))) = done else {
            return;
        };
        WOKEN.fetch_add(1, Ordering::Relaxed);
        complete(irp, status, info);
    }
}

/// Takes the requests `take` removes (under both locks) and completes them
/// with the ring's events.
type Taker<'a> = &'a mut dyn FnMut(usize);

fn take_and_answer(take: impl FnOnce(&mut WaitQueue<WAIT_SLOTS>, Taker<'_>)) {
    let mut out = [(0usize, STATUS_SUCCESS, 0usize); WAIT_SLOTS];
    let mut n = 0usize;
    HOOKS.ring.with(|ring| {
        QUEUE.with(|q| {
            take(q, &mut |token| {
                let irp = token as *mut IRP;
                let (s, i) = answer_into(irp, ring);
                if let Some(slot) = out.get_mut(n) {
                    *slot = (token, s, i);
                    n = n.saturating_add(1);
                }
            })
        })
    });
    for &(token, s, i) in out.get(..n).unwrap_or(&[]) {
        CLEANED.fetch_add(1, Ordering::Relaxed);
        complete(token as *mut IRP, s, i);
    }
}

/// `IRP_MJ_CLEANUP` of a handle: completes its pended requests (with any
/// events the ring holds). PASSIVE_LEVEL.
pub fn cleanup(irp: *mut IRP) {
    let who = owner(irp);
    take_and_answer(|q, f| q.cleanup(who, disarm, f));
}

/// Unload: closes the queue, completes every pended request with what the
/// ring still holds, and waits (10 ms steps, at most 5 s) for cancel
/// routines that had started. PASSIVE_LEVEL.
pub fn close() {
    take_and_answer(|q, f| q.close(disarm, f));
    let interval: i64 = -100_000; // 10 ms, relative
    for _ in 0..500 {
        if QUEUE.with(|q| q.pending()) == 0 {
            return;
        }
        // SAFETY: PASSIVE_LEVEL; interval is a live local.
        unsafe { KeDelayExecutionThread(0, 0, &interval) };
    }
    log(
        Level::Error,
        format_args!("unload: a pended events request's cancel routine did not finish in 5 s"),
    );
}

/// The cancel routine (`DRIVER_CANCEL`): called by `IoCancelIrp` with the
/// cancel spin lock held and the routine already cleared.
unsafe extern "system" fn cancel_routine(_dev: *mut DEVICE_OBJECT, irp: *mut IRP) {
    // SAFETY: the I/O manager calls us with the cancel spin lock held at
    // DISPATCH_LEVEL; the IRP is valid and ours until we complete it (it is
    // still queued: nobody else can complete it, see the module docs).
    let irql = unsafe { (*irp).CancelIrql };
    // SAFETY: releasing the cancel spin lock the I/O manager acquired for us.
    unsafe { IoReleaseCancelSpinLock(irql) };
    if QUEUE.with(|q| q.cancel(irp as usize)) == Cancel::Complete {
        CANCELLED.fetch_add(1, Ordering::Relaxed);
        complete(irp, STATUS_CANCELLED, 0);
    }
}
