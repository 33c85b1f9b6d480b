//! The content store: which content is active, which is last-known-good,
//! and the last load failure.
//!
//! The store is generic over the driver's handle type `H` (a reference to a
//! parsed channel file in nonpaged pool). It only decides; the driver keeps
//! the store behind a lock, swaps the active pointer atomically and releases
//! the handles this module hands back once readers have drained.

use crate::codec::FixedText;
use crate::proto::{failure, ContentInfo, LoadFailure, Origin};

/// Content the store holds: its description and the driver's handle.
#[derive(Debug)]
pub struct Slot<H> {
    /// What it is.
    pub info: ContentInfo,
    /// The driver's handle.
    pub handle: H,
}

/// The store.
#[derive(Debug)]
pub struct Store<H> {
    active: Option<Slot<H>>,
    lkg: Option<Slot<H>>,
    last_error: LoadFailure,
    loads_ok: u64,
    loads_failed: u64,
}

impl<H> Default for Store<H> {
    fn default() -> Self {
        Self::new()
    }
}

/// Why a hot load was refused before validation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The sequence is not newer than the active content's (and no force).
    Stale {
        /// The active sequence.
        active: u64,
    },
}

impl<H> Store<H> {
    /// An empty store.
    pub const fn new() -> Self {
        Store {
            active: None,
            lkg: None,
            last_error: LoadFailure::none(),
            loads_ok: 0,
            loads_failed: 0,
        }
    }

    /// The active slot.
    pub const fn active(&self) -> Option<&Slot<H>> {
        self.active.as_ref()
    }
    /// The last-known-good slot.
    pub const fn lkg(&self) -> Option<&Slot<H>> {
        self.lkg.as_ref()
    }
    /// Active content description (empty when none).
    pub fn active_info(&self) -> ContentInfo {
        self.active.as_ref().map_or(ContentInfo::NONE, |s| s.info)
    }
    /// Last-known-good description (empty when none).
    pub fn lkg_info(&self) -> ContentInfo {
        self.lkg.as_ref().map_or(ContentInfo::NONE, |s| s.info)
    }
    /// The last failure (origin None when there was none).
    pub const fn last_error(&self) -> &LoadFailure {
        &self.last_error
    }
    /// (successful, failed) load counts.
    pub const fn load_counts(&self) -> (u64, u64) {
        (self.loads_ok, self.loads_failed)
    }

    /// Whether a hot load of `sequence` may proceed (checked before the
    /// content is validated, and again when it is installed).
    ///
    /// # Errors
    /// [`Refusal::Stale`] when `sequence` is not newer than the active one
    /// and `force` is not set.
    pub fn check_hot_load(&self, sequence: u64, force: bool) -> Result<(), Refusal> {
        match &self.active {
            Some(a) if !force && sequence <= a.info.sequence => Err(Refusal::Stale {
                active: a.info.sequence,
            }),
            _ => Ok(()),
        }
    }

    /// Installs the content chosen at start. Returns handles displaced (the
    /// store is normally empty then).
    pub fn install_start(
        &mut self,
        active: Option<Slot<H>>,
        lkg: Option<Slot<H>>,
    ) -> [Option<H>; 2] {
        let old_a = core::mem::replace(&mut self.active, active).map(|s| s.handle);
        let old_l = core::mem::replace(&mut self.lkg, lkg).map(|s| s.handle);
        [old_a, old_l]
    }

    /// Counts a successful start load (one per file that validated and was kept).
    pub fn count_ok(&mut self) {
        self.loads_ok = self.loads_ok.saturating_add(1);
    }

    /// Activates validated content: the active content becomes
    /// last-known-good; the previous last-known-good is returned so the
    /// driver can release it once readers drain.
    pub fn activate(&mut self, new: Slot<H>) -> Option<H> {
        self.loads_ok = self.loads_ok.saturating_add(1);
        let old_active = self.active.replace(new);
        match old_active {
            Some(a) => self.lkg.replace(a).map(|s| s.handle),
            None => None,
        }
    }

    /// Records a failed load; the active and last-known-good content stay.
    pub fn record_failure(&mut self, f: LoadFailure) {
        self.loads_failed = self.loads_failed.saturating_add(1);
        self.last_error = f;
    }

    /// Records a stale refusal.
    pub fn record_refusal(&mut self, origin: Origin, sequence: u64, r: Refusal) {
        let Refusal::Stale { active } = r;
        let mut message = FixedText::default();
        let _ = core::fmt::write(
            &mut message,
            format_args!("sequence {sequence} is not newer than active {active}"),
        );
        self.record_failure(LoadFailure {
            origin,
            sequence,
            code: failure::STALE,
            offset: u32::MAX,
            message,
        });
    }

    /// Empties the store (unload), returning every handle.
    pub fn take_all(&mut self) -> [Option<H>; 2] {
        [
            self.active.take().map(|s| s.handle),
            self.lkg.take().map(|s| s.handle),
        ]
    }
}

/// Sorts `seqs` newest first and removes duplicates; returns the used prefix
/// length. The driver validates candidates in this order and keeps the first
/// that validates as active, the next as last-known-good.
pub fn order_candidates(seqs: &mut [u64]) -> usize {
    seqs.sort_unstable_by(|a, b| b.cmp(a));
    let mut n = 0usize;
    let mut prev = None;
    for i in 0..seqs.len() {
        let Some(&v) = seqs.get(i) else { break };
        if prev != Some(v) {
            if let Some(d) = seqs.get_mut(n) {
                *d = v;
            }
            n = n.saturating_add(1);
            prev = Some(v);
        }
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slot(seq: u64, h: u32) -> Slot<u32> {
        Slot {
            info: ContentInfo {
                sequence: seq,
                rule_count: 1,
                len: 10,
                origin: Origin::Disk,
                digest: [0; 32],
            },
            handle: h,
        }
    }

    #[test]
    fn activate_shifts_active_to_lkg_and_returns_old_lkg() {
        let mut s = Store::new();
        assert_eq!(
            s.install_start(Some(slot(5, 50)), Some(slot(4, 40))),
            [None, None]
        );
        assert_eq!(s.active_info().sequence, 5);
        assert_eq!(s.lkg_info().sequence, 4);
        assert_eq!(s.activate(slot(6, 60)), Some(40));
        assert_eq!((s.active_info().sequence, s.lkg_info().sequence), (6, 5));
        assert_eq!(s.load_counts(), (1, 0));
        assert_eq!(s.take_all(), [Some(60), Some(50)]);
        assert_eq!(s.active_info(), ContentInfo::NONE);
    }

    #[test]
    fn first_activation_has_no_lkg() {
        let mut s = Store::new();
        assert_eq!(s.activate(slot(1, 10)), None);
        assert!(s.lkg().is_none());
        assert_eq!(s.activate(slot(2, 20)), None);
        assert_eq!(s.lkg().map(|l| l.handle), Some(10));
    }

    #[test]
    fn failures_keep_content_and_are_reported() {
        let mut s = Store::new();
        s.install_start(Some(slot(5, 50)), None);
        let f = LoadFailure {
            origin: Origin::Ioctl,
            sequence: 9,
            code: failure::PARSE,
            offset: 12,
            message: FixedText::new("bad magic"),
        };
        s.record_failure(f);
        assert_eq!(s.active_info().sequence, 5);
        assert_eq!(s.last_error().message.as_str(), "bad magic");
        assert_eq!(s.load_counts(), (0, 1));
    }

    #[test]
    fn stale_loads_need_force() {
        let mut s = Store::new();
        assert_eq!(s.check_hot_load(1, false), Ok(()));
        s.install_start(Some(slot(5, 50)), None);
        assert_eq!(
            s.check_hot_load(5, false),
            Err(Refusal::Stale { active: 5 })
        );
        assert_eq!(
            s.check_hot_load(4, false),
            Err(Refusal::Stale { active: 5 })
        );
        assert_eq!(s.check_hot_load(4, true), Ok(()));
        assert_eq!(s.check_hot_load(6, false), Ok(()));
        s.record_refusal(Origin::Ioctl, 4, Refusal::Stale { active: 5 });
        assert_eq!(s.last_error().code, failure::STALE);
        assert_eq!(
            s.last_error().message.as_str(),
            "sequence 4 is not newer than active 5"
        );
    }

    #[test]
    fn candidates_newest_first_deduplicated() {
        let mut v = [3u64, 9, 3, 1, 9, 4];
        let n = order_candidates(&mut v);
        assert_eq!(&v[..n], &[9, 4, 3, 1]);
        let mut e: [u64; 0] = [];
        assert_eq!(order_candidates(&mut e), 0);
    }
}
