//! Working memory for evaluations: a fixed pool of `N` slots, admission
//! with a bounded wait, and the policy when the wait runs out.
//!
//! The driver keeps its per-evaluation memory (matcher scratch, image and
//! name buffers) in `N` preallocated slots: no allocation and no large
//! stack frame in a callback. More callbacks than slots may run at once
//! (one per thread creating or opening a pipe), so a callback that finds
//! every slot busy must either wait or decide without evaluating. Deciding
//! without evaluating is a bypass in enforce mode (issue 10: 17 concurrent
//! pipe creations let one through unchecked), so the policy is:
//!
//! 1. **Wait** for a slot, at most the configured time (the driver's
//!    `WorkWaitMilliseconds`, default [`DEFAULT_WAIT_MS`]); pre-create
//!    callbacks run at PASSIVE_LEVEL, where waiting is allowed. An
//!    evaluation holds a slot for microseconds, so the wait only runs out
//!    when evaluations are stalled.
//! 2. When it runs out, decide **unchecked** ([`decide_unchecked`]): deny in
//!    enforce mode (fail closed: nothing a block rule names gets through
//!    without being checked), allow in monitor mode (nothing is blocked
//!    there anyway). Both are counted in status.
//!
//! This module is the admission logic, without any kernel object: a
//! counting gate in the style of a "benaphore" (an atomic count of free
//! admissions; only a caller that finds none needs the kernel semaphore)
//! plus a bitmap of free slots. The driver supplies the semaphore
//! (`KSEMAPHORE`) and calls, in order: [`WorkPool::enter`]; when told to
//! wait, a wait on its semaphore with a timeout, then
//! [`WorkPool::after_wait`] on a timeout; [`WorkPool::claim`] once
//! admitted; [`WorkPool::leave`] when done, signalling the semaphore once
//! when it returns [`Wake::One`].
//!
//! Guarantees (tested below with threads and a semaphore made of a mutex
//! and a condition variable): never more than `N` callers admitted; every
//! admitted caller finds a free slot; a caller that timed out never takes
//! a wake-up meant for another (a wake-up counted for it is consumed, so
//! none is lost); no allocation, no panic, no unsafe. Lock-free except for
//! the semaphore wait itself.

use crate::decision::{Decision, Mode};
use core::sync::atomic::{AtomicI64, AtomicU32, Ordering};

/// Default bound on the wait for working memory, in milliseconds.
pub const DEFAULT_WAIT_MS: u32 = 1000;
/// Largest accepted `WorkWaitMilliseconds` (a minute: a callback must not
/// hold a thread for longer).
pub const MAX_WAIT_MS: u32 = 60_000;

/// Most slots a pool can have (one bit each in a `u32`).
pub const MAX_SLOTS: usize = 32;

/// What [`WorkPool::enter`] says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Enter {
    /// Admitted: call [`WorkPool::claim`].
    Admitted,
    /// No slot free: wait on the semaphore (with the timeout), then call
    /// [`WorkPool::claim`] if the wait succeeded or
    /// [`WorkPool::after_wait`] if it timed out.
    Wait,
}

/// What a caller whose wait timed out must do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterTimeout {
    /// Withdrawn: not admitted; decide with [`decide_unchecked`].
    GaveUp,
    /// A leaving caller already signalled the semaphore for this one (the
    /// race between the timeout and the wake-up): wait on the semaphore
    /// again (it is signalled: no timeout needed) and proceed as admitted.
    ConsumeWakeup,
}

/// What [`WorkPool::leave`] asks of the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub enum Wake {
    /// Nobody waits.
    None,
    /// Signal the semaphore once: a waiter is admitted.
    One,
}

/// Why an event was decided without being evaluated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unchecked {
    /// No working memory within the wait bound.
    WorkExhausted,
    /// The name could not be normalized (longer than the sensor's buffer).
    NameTooLong,
}

/// The verdict for an event the sensor could not evaluate: fail closed in
/// enforce mode (deny), open in monitor mode (allow). The caller counts it.
pub const fn decide_unchecked(mode: Mode, _why: Unchecked) -> Decision {
    match mode {
        Mode::Enforce => Decision::Deny,
        Mode::Monitor => Decision::Allow,
    }
}

/// Admission to `N` slots (`1 <= N <= MAX_SLOTS`).
#[derive(Debug)]
pub struct WorkPool<const N: usize> {
    /// Free admissions; negative: callers waiting for one.
    avail: AtomicI64,
    /// Bit i set: slot i is free.
    free: AtomicU32,
}

impl<const N: usize> Default for WorkPool<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> WorkPool<N> {
    const VALID: () = assert!(N >= 1 && N <= MAX_SLOTS, "1..=32 slots");
    /// N low bits set.
    const ALL: u32 = match MAX_SLOTS.checked_sub(N) {
        Some(unused) => u32::MAX >> unused,
        None => 0,
    };

    /// Every slot free.
    pub const fn new() -> Self {
        #[allow(clippy::let_unit_value)]
        let () = Self::VALID;
        WorkPool {
            avail: AtomicI64::new(N as i64),
            // N low bits set (N <= 32, checked above).
            free: AtomicU32::new(Self::ALL),
        }
    }

    /// Asks for admission. Never blocks.
    pub fn enter(&self) -> Enter {
        if self.avail.fetch_sub(1, Ordering::AcqRel) > 0 {
            Enter::Admitted
        } else {
            Enter::Wait
        }
    }

    /// After a timed-out wait: withdraws the request, unless a wake-up was
    /// already counted for this caller (then it must be consumed).
    pub fn after_wait(&self) -> AfterTimeout {
        let mut a = self.avail.load(Ordering::Acquire);
        loop {
            if a >= 0 {
                // Every waiter, this one included, has a wake-up coming.
                return AfterTimeout::ConsumeWakeup;
            }
            // a < 0 here: a + 1 cannot overflow.
            match self.avail.compare_exchange_weak(
                a,
                a.saturating_add(1),
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return AfterTimeout::GaveUp,
                Err(now) => a = now,
            }
        }
    }

    /// Takes a free slot; only for an admitted caller. `None` would mean
    /// the pool's invariant is broken (more admitted callers than slots):
    /// the caller then gives its admission back with
    /// [`WorkPool::leave_unclaimed`] and decides unchecked.
    pub fn claim(&self) -> Option<usize> {
        let mut f = self.free.load(Ordering::Acquire);
        loop {
            if f == 0 {
                return None;
            }
            let bit = f.trailing_zeros();
            let next = f & !(1u32 << bit);
            match self
                .free
                .compare_exchange_weak(f, next, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return Some(bit as usize),
                Err(now) => f = now,
            }
        }
    }

    /// Frees `slot` (from [`WorkPool::claim`]) and the admission.
    pub fn leave(&self, slot: usize) -> Wake {
        if let Some(bit) = u32::try_from(slot).ok().and_then(|s| 1u32.checked_shl(s)) {
            self.free.fetch_or(bit, Ordering::AcqRel);
        }
        self.leave_unclaimed()
    }

    /// Gives back an admission without a slot.
    pub fn leave_unclaimed(&self) -> Wake {
        if self.avail.fetch_add(1, Ordering::AcqRel) < 0 {
            Wake::One
        } else {
            Wake::None
        }
    }

    /// Free admissions right now (negative: waiters), for diagnostics.
    pub fn available(&self) -> i64 {
        self.avail.load(Ordering::Relaxed)
    }

    /// Slots free right now, for diagnostics.
    pub fn free_slots(&self) -> u32 {
        self.free.load(Ordering::Relaxed).count_ones()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, AtomicUsize};
    use std::sync::{Arc, Condvar, Mutex};
    use std::time::Duration;
    use std::vec::Vec;

    /// A counting semaphore (the driver's KSEMAPHORE).
    #[derive(Default)]
    struct Sem {
        count: Mutex<u64>,
        cv: Condvar,
    }
    impl Sem {
        fn release(&self) {
            *self.count.lock().unwrap() += 1;
            self.cv.notify_one();
        }
        /// true when acquired, false on timeout (None: no timeout).
        fn wait(&self, timeout: Option<Duration>) -> bool {
            let mut c = self.count.lock().unwrap();
            loop {
                if *c > 0 {
                    *c -= 1;
                    return true;
                }
                match timeout {
                    None => c = self.cv.wait(c).unwrap(),
                    Some(t) => {
                        let (g, r) = self.cv.wait_timeout(c, t).unwrap();
                        c = g;
                        if r.timed_out() && *c == 0 {
                            return false;
                        }
                    }
                }
            }
        }
    }

    /// The driver's protocol around the pool: Some(slot) or None (gave up).
    fn acquire<const N: usize>(p: &WorkPool<N>, s: &Sem, timeout: Duration) -> Option<usize> {
        if p.enter() == Enter::Wait && !s.wait(Some(timeout)) {
            match p.after_wait() {
                AfterTimeout::GaveUp => return None,
                AfterTimeout::ConsumeWakeup => assert!(s.wait(None)),
            }
        }
        match p.claim() {
            Some(i) => Some(i),
            None => panic!("admitted caller found no free slot"),
        }
    }

    fn release<const N: usize>(p: &WorkPool<N>, s: &Sem, slot: usize) {
        if p.leave(slot) == Wake::One {
            s.release();
        }
    }

    #[test]
    fn sequential_admission_and_exhaustion() {
        let p = WorkPool::<4>::new();
        let mut got = Vec::new();
        for _ in 0..4 {
            assert_eq!(p.enter(), Enter::Admitted);
            got.push(p.claim().unwrap());
        }
        got.sort_unstable();
        assert_eq!(got, [0, 1, 2, 3]);
        assert_eq!(p.free_slots(), 0);
        // The fifth must wait; its wait times out and it withdraws.
        assert_eq!(p.enter(), Enter::Wait);
        assert_eq!(p.after_wait(), AfterTimeout::GaveUp);
        assert_eq!(p.available(), 0);
        // A leave with nobody waiting wakes nobody.
        assert_eq!(p.leave(2), Wake::None);
        assert_eq!(p.enter(), Enter::Admitted);
        assert_eq!(p.claim(), Some(2));
    }

    #[test]
    fn wakeup_counted_for_a_timed_out_waiter_is_consumed() {
        let p = WorkPool::<1>::new();
        assert_eq!(p.enter(), Enter::Admitted);
        let s0 = p.claim().unwrap();
        assert_eq!(p.enter(), Enter::Wait); // waiter W
                                            // The holder leaves before W notices its timeout: W is owed a wake-up.
        assert_eq!(p.leave(s0), Wake::One);
        assert_eq!(p.after_wait(), AfterTimeout::ConsumeWakeup);
        assert_eq!(p.claim(), Some(0));
        assert_eq!(p.leave(0), Wake::None);
        assert_eq!(p.available(), 1);
    }

    #[test]
    fn unclaimed_admission_is_returned() {
        let p = WorkPool::<2>::new();
        assert_eq!(p.enter(), Enter::Admitted);
        assert_eq!(p.leave_unclaimed(), Wake::None);
        assert_eq!(p.available(), 2);
        assert_eq!(p.free_slots(), 2);
    }

    #[test]
    fn thirty_two_slots() {
        let p = WorkPool::<32>::new();
        let mut seen = 0u64;
        for _ in 0..32 {
            assert_eq!(p.enter(), Enter::Admitted);
            seen |= 1 << p.claim().unwrap();
        }
        assert_eq!(seen, u32::MAX as u64);
        assert_eq!(p.enter(), Enter::Wait);
        assert_eq!(p.after_wait(), AfterTimeout::GaveUp);
        assert_eq!(p.leave(31), Wake::None);
    }

    #[test]
    fn policy() {
        for why in [Unchecked::WorkExhausted, Unchecked::NameTooLong] {
            assert_eq!(decide_unchecked(Mode::Enforce, why), Decision::Deny);
            assert_eq!(decide_unchecked(Mode::Monitor, why), Decision::Allow);
        }
    }

    /// 24 threads over 4 slots with short timeouts: never more than 4
    /// inside, never one slot twice, and at the end every admission and
    /// slot is back and no wake-up is left over.
    #[test]
    #[cfg_attr(miri, ignore)] // too slow under Miri (scripts/miri.sh)
    fn threads_never_exceed_the_slots() {
        const N: usize = 4;
        let p = Arc::new(WorkPool::<N>::new());
        let s = Arc::new(Sem::default());
        let inside = Arc::new(AtomicUsize::new(0));
        let owners: Arc<Vec<AtomicBool>> =
            Arc::new((0..N).map(|_| AtomicBool::new(false)).collect());
        let gave_up = Arc::new(AtomicUsize::new(0));
        let done = Arc::new(AtomicUsize::new(0));
        let hs: Vec<_> = (0..24)
            .map(|t| {
                let (p, s, inside, owners, gave_up, done) = (
                    p.clone(),
                    s.clone(),
                    inside.clone(),
                    owners.clone(),
                    gave_up.clone(),
                    done.clone(),
                );
                std::thread::spawn(move || {
                    for i in 0..400u32 {
                        // Some callers give up quickly, others wait longer.
                        let timeout =
                            Duration::from_micros(if (i + t) % 3 == 0 { 1 } else { 2000 });
                        let Some(slot) = acquire(&p, &s, timeout) else {
                            gave_up.fetch_add(1, Ordering::Relaxed);
                            continue;
                        };
                        let n = inside.fetch_add(1, Ordering::SeqCst) + 1;
                        assert!(n <= N, "{n} callers inside {N} slots");
                        assert!(
                            !owners[slot].swap(true, Ordering::SeqCst),
                            "slot {slot} handed out twice"
                        );
                        if i % 7 == 0 {
                            std::thread::yield_now();
                        }
                        owners[slot].store(false, Ordering::SeqCst);
                        inside.fetch_sub(1, Ordering::SeqCst);
                        release(&p, &s, slot);
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                })
            })
            .collect();
        for h in hs {
            h.join().unwrap();
        }
        assert_eq!(
            done.load(Ordering::Relaxed) + gave_up.load(Ordering::Relaxed),
            24 * 400
        );
        assert_eq!(p.available(), N as i64, "every admission returned");
        assert_eq!(p.free_slots(), N as u32, "every slot returned");
        assert_eq!(*s.count.lock().unwrap(), 0, "no wake-up left over");
    }

    /// The scenario: N holders, one more caller. It waits; when a
    /// holder leaves within the bound it is admitted, otherwise it gives up.
    #[test]
    #[cfg_attr(miri, ignore)] // sleeps
    fn the_n_plus_first_waits_then_is_admitted() {
        const N: usize = 16;
        let p = Arc::new(WorkPool::<N>::new());
        let s = Arc::new(Sem::default());
        let held: Vec<usize> = (0..N)
            .map(|_| acquire(&p, &s, Duration::ZERO).unwrap())
            .collect();
        // Exhausted: a caller with a tiny bound gives up.
        assert_eq!(acquire(&p, &s, Duration::from_millis(1)), None);
        // With a generous bound it is admitted once a holder leaves.
        let (p2, s2) = (p.clone(), s.clone());
        let waiter = std::thread::spawn(move || acquire(&p2, &s2, Duration::from_secs(60)));
        while p.available() >= 0 {
            std::thread::yield_now();
        }
        release(&p, &s, held[5]);
        assert_eq!(waiter.join().unwrap(), Some(held[5]));
    }
}
