//! Pended waits for events (EVENTS_V2 with `STREAM_FLAG_WAIT`): which
//! request the driver completes, and when, as a pure state machine.
//!
//! The driver holds one lock over this queue. A request is identified by an
//! opaque `token` (the driver: the IRP's address) and belongs to an `owner`
//! (its file object). The rules are those of a cancel-safe IRP queue:
//!
//! * **Submit** ([`WaitQueue::submit`]), under the lock, with the ring's
//!   emptiness read under the same lock: a request with events waiting, or
//!   without the WAIT flag, is answered at once; otherwise it is queued
//!   (the driver marks the IRP pending and arms its cancel routine). A
//!   request that was cancelled before it could be queued, one that finds
//!   the queue full, and any request after [`WaitQueue::close`] are answered
//!   at once, so nothing ever waits without a slot.
//! * **Wake** ([`WaitQueue::take_for_wake`]), after events were pushed: the
//!   oldest queued request whose cancel routine can still be disarmed
//!   (`IoSetCancelRoutine(irp, NULL)` returned the routine) is removed and
//!   completed with the events. One whose cancel routine already started is
//!   left for that routine ([`WaitQueue::cancel`]); the next one is taken.
//! * **Cancel** ([`WaitQueue::cancel`]): the cancel routine removes its
//!   request and completes it with `STATUS_CANCELLED`; if the request is no
//!   longer queued, someone else already owns its completion and the routine
//!   does nothing.
//! * **Cleanup** ([`WaitQueue::cleanup`], `IRP_MJ_CLEANUP` of a handle) and
//!   **close** ([`WaitQueue::close`], unload) take every request they can
//!   disarm (of that owner, or all); requests whose cancel routine started
//!   complete through it.
//!
//! Every request is completed exactly once, by exactly one of these paths;
//! no request stays queued while events wait (a push is always followed by
//! a wake under the lock); after close, nothing is queued and nothing can
//! be. The tests below check these over every interleaving of a small
//! scenario.

/// A queued request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Waiter {
    token: usize,
    owner: usize,
    /// Arrival order (FIFO wake-up).
    seq: u64,
    /// The cancel routine started: only [`WaitQueue::cancel`] may take it.
    cancelling: bool,
}

/// What to do with a submitted request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Submit {
    /// Answer now with what the ring holds (events, or none without WAIT).
    Answer,
    /// Queued: return `STATUS_PENDING`; a later wake, cancel, cleanup or
    /// close completes it.
    Pended,
    /// The request was cancelled before it was queued: complete it with
    /// `STATUS_CANCELLED`.
    Cancelled,
    /// Every slot is in use: answer now (with no events) rather than queue
    /// without a slot; counted by the driver.
    Full,
    /// The queue is closed (unloading): answer now with what the ring holds.
    Closing,
}

/// What the cancel routine does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cancel {
    /// Removed: complete it with `STATUS_CANCELLED`.
    Complete,
    /// Not queued (already taken by a wake, cleanup or close): do nothing.
    NotQueued,
}

/// At most `N` pended requests.
#[derive(Debug)]
pub struct WaitQueue<const N: usize> {
    slots: [Option<Waiter>; N],
    next_seq: u64,
    closed: bool,
    full: u64,
}

impl<const N: usize> Default for WaitQueue<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> WaitQueue<N> {
    /// An empty, open queue.
    pub const fn new() -> Self {
        WaitQueue {
            slots: [None; N],
            next_seq: 0,
            closed: false,
            full: 0,
        }
    }

    /// Requests queued now.
    pub fn pending(&self) -> usize {
        self.slots.iter().filter(|s| s.is_some()).count()
    }

    /// Requests answered at once because every slot was in use.
    pub const fn full_count(&self) -> u64 {
        self.full
    }

    /// Whether [`WaitQueue::close`] ran.
    pub const fn is_closed(&self) -> bool {
        self.closed
    }

    /// Re-opens a closed, empty queue (a new driver instance).
    pub fn reopen(&mut self) {
        if self.pending() == 0 {
            self.closed = false;
        }
    }

    /// Decides about a new request. `wait`: the WAIT flag; `ring_empty`:
    /// read under the same lock; `cancelled`: the IRP's cancel flag was
    /// already set when the driver armed its cancel routine (and disarming
    /// it succeeded).
    pub fn submit(
        &mut self,
        token: usize,
        owner: usize,
        wait: bool,
        ring_empty: bool,
        cancelled: bool,
    ) -> Submit {
        if self.closed {
            return Submit::Closing;
        }
        if !wait || !ring_empty {
            return Submit::Answer;
        }
        if cancelled {
            return Submit::Cancelled;
        }
        let seq = self.next_seq;
        match self.slots.iter_mut().find(|s| s.is_none()) {
            Some(slot) => {
                *slot = Some(Waiter {
                    token,
                    owner,
                    seq,
                    cancelling: false,
                });
                self.next_seq = self.next_seq.wrapping_add(1);
                Submit::Pended
            }
            None => {
                self.full = self.full.saturating_add(1);
                Submit::Full
            }
        }
    }

    /// Events were pushed: removes and returns the oldest request whose
    /// cancel routine `disarm` could clear (it returns false when the
    /// routine already started; that request is marked and left for
    /// [`WaitQueue::cancel`]). `None`: nobody is waiting.
    pub fn take_for_wake(&mut self, mut disarm: impl FnMut(usize) -> bool) -> Option<usize> {
        loop {
            let slot = self
                .slots
                .iter_mut()
                .filter(|s| s.is_some_and(|w| !w.cancelling))
                .min_by_key(|s| s.map_or(u64::MAX, |w| w.seq))?;
            let w = (*slot)?;
            if disarm(w.token) {
                *slot = None;
                return Some(w.token);
            }
            *slot = Some(Waiter {
                cancelling: true,
                ..w
            });
        }
    }

    /// The cancel routine of `token` runs.
    pub fn cancel(&mut self, token: usize) -> Cancel {
        match self
            .slots
            .iter_mut()
            .find(|s| s.is_some_and(|w| w.token == token))
        {
            Some(slot) => {
                *slot = None;
                Cancel::Complete
            }
            None => Cancel::NotQueued,
        }
    }

    /// The handle `owner` is cleaned up: every request of it that `disarm`
    /// can clear is removed and passed to `complete` (the driver completes
    /// it with the events the ring holds, or none).
    pub fn cleanup(
        &mut self,
        owner: usize,
        disarm: impl FnMut(usize) -> bool,
        complete: impl FnMut(usize),
    ) {
        self.take_all(|w| w.owner == owner, disarm, complete);
    }

    /// Unload: no request is queued from now on; every queued request that
    /// `disarm` can clear is removed and passed to `complete` (with the
    /// events the ring still holds). Requests whose cancel routine started
    /// complete through [`WaitQueue::cancel`], which the unload waits for.
    pub fn close(&mut self, disarm: impl FnMut(usize) -> bool, complete: impl FnMut(usize)) {
        self.closed = true;
        self.take_all(|_| true, disarm, complete);
    }

    fn take_all(
        &mut self,
        which: impl Fn(&Waiter) -> bool,
        mut disarm: impl FnMut(usize) -> bool,
        mut complete: impl FnMut(usize),
    ) {
        // Oldest first, so readers see their completions in arrival order.
        while let Some(slot) = self
            .slots
            .iter_mut()
            .filter(|s| s.is_some_and(|w| !w.cancelling && which(&w)))
            .min_by_key(|s| s.map_or(u64::MAX, |w| w.seq))
        {
            let Some(w) = *slot else { break };
            if disarm(w.token) {
                *slot = None;
                complete(w.token);
            } else {
                *slot = Some(Waiter {
                    cancelling: true,
                    ..w
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use std::vec::Vec;

    #[test]
    fn answers_at_once_unless_waiting_on_an_empty_ring() {
        let mut q = WaitQueue::<2>::new();
        assert_eq!(q.submit(1, 9, false, true, false), Submit::Answer);
        assert_eq!(q.submit(1, 9, true, false, false), Submit::Answer);
        assert_eq!(q.submit(1, 9, true, true, true), Submit::Cancelled);
        assert_eq!(q.pending(), 0);
        assert_eq!(q.submit(1, 9, true, true, false), Submit::Pended);
        assert_eq!(q.submit(2, 9, true, true, false), Submit::Pended);
        assert_eq!(q.submit(3, 9, true, true, false), Submit::Full);
        assert_eq!(q.full_count(), 1);
        // FIFO wake-up.
        assert_eq!(q.take_for_wake(|_| true), Some(1));
        assert_eq!(q.take_for_wake(|_| true), Some(2));
        assert_eq!(q.take_for_wake(|_| true), None);
    }

    #[test]
    fn a_started_cancel_routine_owns_its_request() {
        let mut q = WaitQueue::<4>::new();
        q.submit(1, 9, true, true, false);
        q.submit(2, 9, true, true, false);
        // 1's cancel routine started (disarm fails): the wake takes 2.
        assert_eq!(q.take_for_wake(|t| t != 1), Some(2));
        assert_eq!(q.pending(), 1);
        // Nobody else takes 1 any more, even when disarming would work.
        assert_eq!(q.take_for_wake(|_| true), None);
        let mut done = Vec::new();
        q.close(|_| true, |t| done.push(t));
        assert!(done.is_empty());
        assert_eq!(q.cancel(1), Cancel::Complete);
        assert_eq!(q.cancel(1), Cancel::NotQueued);
        assert_eq!(q.cancel(2), Cancel::NotQueued);
        assert_eq!(q.pending(), 0);
        assert_eq!(q.submit(5, 9, true, true, false), Submit::Closing);
        q.reopen();
        assert_eq!(q.submit(5, 9, true, true, false), Submit::Pended);
    }

    #[test]
    fn cleanup_takes_only_that_handles_requests() {
        let mut q = WaitQueue::<4>::new();
        q.submit(1, 100, true, true, false);
        q.submit(2, 200, true, true, false);
        q.submit(3, 100, true, true, false);
        let mut done = Vec::new();
        q.cleanup(100, |_| true, |t| done.push(t));
        assert_eq!(done, [1, 3]);
        assert_eq!(q.pending(), 1);
        assert_eq!(q.take_for_wake(|_| true), Some(2));
    }

    /// One step of the scenario.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Step {
        /// Request `t` is submitted with WAIT.
        Submit(usize),
        /// An event is pushed (the ring lock), then the wake runs (queue lock).
        Push,
        /// The reader drains the ring through a request answered at once.
        IoCancel(usize),
        /// The cancel routine of `t` runs (only after IoCancel(t) disarmed nothing).
        CancelRoutine(usize),
        /// The handle of owner 0 is cleaned up.
        Cleanup,
        /// The driver unloads.
        Close,
    }

    #[derive(Default, Clone)]
    struct World {
        ring: u32,
        /// Per token: completions seen.
        completed: BTreeMap<usize, u32>,
        /// Per token: IoCancelIrp ran while the routine was armed.
        cancel_started: BTreeMap<usize, bool>,
        /// Per token: the routine was disarmed by a taker (IoCancelIrp no
        /// longer calls it).
        disarmed: BTreeMap<usize, bool>,
        /// Per token: submitted and pended.
        pended: BTreeMap<usize, bool>,
        /// Completions by a taker of a request it had not disarmed (its
        /// cancel routine would then run on a completed IRP).
        violations: Vec<usize>,
    }

    fn run(steps: &[Step]) -> (World, WaitQueue<2>) {
        let mut q = WaitQueue::<2>::new();
        let mut w = World::default();
        for &s in steps {
            match s {
                Step::Submit(t) => {
                    let cancelled = w.cancel_started.get(&t).copied().unwrap_or(false);
                    match q.submit(t, t % 2, true, w.ring == 0, cancelled) {
                        Submit::Pended => {
                            w.pended.insert(t, true);
                        }
                        Submit::Answer | Submit::Closing | Submit::Full | Submit::Cancelled => {
                            w.ring = 0;
                            *w.completed.entry(t).or_default() += 1;
                            w.disarmed.insert(t, true);
                        }
                    }
                }
                Step::Push => {
                    w.ring += 1;
                    let started = w.cancel_started.clone();
                    let mut disarmed = Vec::new();
                    let taken = q.take_for_wake(|t| {
                        let ok = !started.get(&t).copied().unwrap_or(false);
                        if ok {
                            disarmed.push(t);
                        }
                        ok
                    });
                    for t in disarmed {
                        w.disarmed.insert(t, true);
                    }
                    if let Some(t) = taken {
                        w.ring = 0;
                        if !w.disarmed.get(&t).copied().unwrap_or(false) {
                            w.violations.push(t);
                        }
                        *w.completed.entry(t).or_default() += 1;
                    }
                }
                Step::IoCancel(t) => {
                    if !w.disarmed.get(&t).copied().unwrap_or(false) {
                        w.cancel_started.insert(t, true);
                    }
                }
                Step::CancelRoutine(t) => {
                    if w.cancel_started.get(&t).copied().unwrap_or(false)
                        && w.pended.get(&t).copied().unwrap_or(false)
                        && q.cancel(t) == Cancel::Complete
                    {
                        *w.completed.entry(t).or_default() += 1;
                    }
                }
                Step::Cleanup | Step::Close => {
                    let started = w.cancel_started.clone();
                    let mut done = Vec::new();
                    let mut disarmed = Vec::new();
                    let disarm = |t: usize| {
                        let ok = !started.get(&t).copied().unwrap_or(false);
                        if ok {
                            disarmed.push(t);
                        }
                        ok
                    };
                    if s == Step::Close {
                        q.close(disarm, |t| done.push(t));
                    } else {
                        q.cleanup(0, disarm, |t| done.push(t));
                    }
                    for t in disarmed {
                        w.disarmed.insert(t, true);
                    }
                    for t in done {
                        if !w.disarmed.get(&t).copied().unwrap_or(false) {
                            w.violations.push(t);
                        }
                        *w.completed.entry(t).or_default() += 1;
                    }
                }
            }
        }
        (w, q)
    }

    /// Every ordering of the steps that keeps each token's own order.
    fn interleavings(chains: &[Vec<Step>], out: &mut Vec<Vec<Step>>, cur: &mut Vec<Step>) {
        if chains.iter().all(|c| c.is_empty()) {
            out.push(cur.clone());
            return;
        }
        for i in 0..chains.len() {
            if let Some((&first, rest)) = chains[i].split_first() {
                let mut next = chains.to_vec();
                next[i] = rest.to_vec();
                cur.push(first);
                interleavings(&next, out, cur);
                cur.pop();
            }
        }
    }

    #[test]
    fn every_interleaving_completes_each_request_exactly_once() {
        // Two readers (0 on handle 0, 1 on handle 1), one of which is
        // cancelled; two pushes; a cleanup of handle 0; the unload last.
        let chains = [
            std::vec![Step::Submit(2), Step::IoCancel(2), Step::CancelRoutine(2)],
            std::vec![Step::Submit(3)],
            std::vec![Step::Push, Step::Push],
            std::vec![Step::Cleanup],
        ];
        let mut all = Vec::new();
        interleavings(&chains, &mut all, &mut Vec::new());
        assert!(all.len() > 400, "{} interleavings", all.len());
        for steps in &all {
            let mut steps = steps.clone();
            steps.push(Step::Close);
            // A cancel routine that started always runs eventually (the
            // unload waits for it).
            steps.push(Step::CancelRoutine(2));
            let (w, q) = run(&steps);
            for t in [2usize, 3] {
                assert_eq!(
                    w.completed.get(&t).copied().unwrap_or(0),
                    1,
                    "token {t} in {steps:?}"
                );
            }
            assert_eq!(q.pending(), 0, "{steps:?}");
            assert!(w.violations.is_empty(), "{:?} in {steps:?}", w.violations);
        }
    }

    #[test]
    fn no_wait_is_left_behind_while_events_wait() {
        // After every prefix of every interleaving without cancels, a
        // queued request and a non-empty ring never coexist.
        let chains = [
            std::vec![Step::Submit(2), Step::Submit(4)],
            std::vec![Step::Submit(3)],
            std::vec![Step::Push, Step::Push, Step::Push],
        ];
        let mut all = Vec::new();
        interleavings(&chains, &mut all, &mut Vec::new());
        for steps in &all {
            for k in 0..=steps.len() {
                let (w, q) = run(&steps[..k]);
                assert!(w.ring == 0 || q.pending() == 0, "{:?}", &steps[..k]);
            }
        }
    }
}
