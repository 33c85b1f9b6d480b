//! The crash-loop guard.
//!
//! Content that has not yet run cleanly on this machine is *pending*. Before
//! the driver activates pending content it persists a marker (the sequence)
//! and a start counter in its service key. A clean run (a configurable time
//! with the content active, or a clean unload) marks the content *proven*.
//! When the driver starts and finds the same pending content has already
//! been started [`GuardState::max_failed_starts`] times without becoming
//! proven (the machine or the host process died each time), it quarantines
//! that content and runs the last-known-good instead. No human action needed.
//!
//! The state is a fixed 72-byte little-endian record ([`GuardState::encode`]),
//! stored as the `GuardState` `REG_BINARY` value. It also carries the
//! highest sequence ever proven here, which anti-rollback
//! ([`crate::rollout`]) measures against. Version 1 records (64 bytes, no
//! highest-proven field) are still read: their highest proven is their
//! proven sequence.

use static_assertions::const_assert_eq;

/// Starts of the same unproven content before it is quarantined.
pub const DEFAULT_MAX_FAILED_STARTS: u32 = 3;
/// Quarantined sequences remembered (oldest forgotten first).
pub const QUARANTINE_SLOTS: usize = 4;
/// Encoded length of [`GuardState`] (version 2).
pub const GUARD_STATE_LEN: usize = 72;
/// Length of a version 1 record (read, never written).
pub const GUARD_STATE_V1_LEN: usize = 64;
const GUARD_MAGIC: [u8; 4] = *b"PSGD";
const GUARD_VERSION: u32 = 2;

// magic 4 + version 4 + pending 8 + count 4 + reserved 4 + proven 8 + quarantine 32
const_assert_eq!(
    4 + 4 + 8 + 4 + 4 + 8 + 8 * QUARANTINE_SLOTS,
    GUARD_STATE_V1_LEN
);
// version 2 appends highest proven 8
const_assert_eq!(GUARD_STATE_V1_LEN + 8, GUARD_STATE_LEN);

/// The persisted guard record. Sequence 0 means "none" (channel files start at 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GuardState {
    /// Content activated but not yet proven (0: none).
    pub pending: u64,
    /// How many times `pending` has been started.
    pub start_count: u32,
    /// The newest content proven on this machine (0: none).
    pub proven: u64,
    /// Quarantined sequences (0: empty slot), newest first.
    pub quarantined: [u64; QUARANTINE_SLOTS],
    /// The highest sequence ever proven on this machine (0: none). Unlike
    /// `proven` it never goes down, not even when a signed rollback
    /// instruction runs older content.
    pub highest_proven: u64,
}

/// Why a stored guard record was not accepted (the driver then starts from
/// [`GuardState::default`] and reports it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum GuardDecodeError {
    /// Not [`GUARD_STATE_LEN`] bytes (nor [`GUARD_STATE_V1_LEN`] for version 1).
    Length,
    /// Wrong magic.
    Magic,
    /// Unknown version.
    Version,
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut a = [0u8; 4];
    if let Some(s) = at.checked_add(4).and_then(|end| b.get(at..end)) {
        a.copy_from_slice(s);
    }
    u32::from_le_bytes(a)
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    if let Some(s) = at.checked_add(8).and_then(|end| b.get(at..end)) {
        a.copy_from_slice(s);
    }
    u64::from_le_bytes(a)
}

impl GuardState {
    /// Serializes to the registry record.
    pub fn encode(&self) -> [u8; GUARD_STATE_LEN] {
        let mut out = [0u8; GUARD_STATE_LEN];
        let mut w = crate::codec::Writer::new(&mut out);
        // The buffer is exactly GUARD_STATE_LEN long (asserted above), so
        // these writes cannot run out of room.
        let _ = w.bytes(&GUARD_MAGIC);
        let _ = w.u32(GUARD_VERSION);
        let _ = w.u64(self.pending);
        let _ = w.u32(self.start_count);
        let _ = w.u32(0);
        let _ = w.u64(self.proven);
        for q in self.quarantined {
            let _ = w.u64(q);
        }
        let _ = w.u64(self.highest_proven);
        out
    }

    /// Parses a registry record.
    ///
    /// # Errors
    /// See [`GuardDecodeError`].
    pub fn decode(b: &[u8]) -> Result<GuardState, GuardDecodeError> {
        if b.len() != GUARD_STATE_LEN && b.len() != GUARD_STATE_V1_LEN {
            return Err(GuardDecodeError::Length);
        }
        if b.get(..4) != Some(&GUARD_MAGIC[..]) {
            return Err(GuardDecodeError::Magic);
        }
        let version = u32_at(b, 4);
        match (version, b.len()) {
            (1, GUARD_STATE_V1_LEN) | (GUARD_VERSION, GUARD_STATE_LEN) => {}
            (1 | GUARD_VERSION, _) => return Err(GuardDecodeError::Length),
            _ => return Err(GuardDecodeError::Version),
        }
        let mut quarantined = [0u64; QUARANTINE_SLOTS];
        let mut at = 32usize;
        for q in &mut quarantined {
            *q = u64_at(b, at);
            at = at.saturating_add(8);
        }
        let proven = u64_at(b, 24);
        let highest_proven = if version == 1 {
            proven
        } else {
            u64_at(b, GUARD_STATE_V1_LEN).max(proven)
        };
        Ok(GuardState {
            pending: u64_at(b, 8),
            start_count: u32_at(b, 16),
            proven,
            quarantined,
            highest_proven,
        })
    }

    /// The default threshold, exposed for docs and status.
    pub const fn max_failed_starts() -> u32 {
        DEFAULT_MAX_FAILED_STARTS
    }

    /// Whether `seq` is quarantined.
    pub fn is_quarantined(&self, seq: u64) -> bool {
        seq != 0 && self.quarantined.contains(&seq)
    }

    fn quarantine(&mut self, seq: u64) {
        if self.is_quarantined(seq) {
            return;
        }
        self.quarantined.rotate_right(1);
        if let Some(first) = self.quarantined.first_mut() {
            *first = seq;
        }
    }

    /// Marks the pending content proven (after a clean run or unload).
    /// Returns whether anything changed (and must be persisted).
    pub fn mark_proven(&mut self, active: u64) -> bool {
        if self.pending == 0 || self.pending != active {
            return false;
        }
        self.proven = self.pending;
        self.highest_proven = self.highest_proven.max(self.pending);
        self.pending = 0;
        self.start_count = 0;
        true
    }
}

/// What to do at driver start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StartPlan {
    /// The sequence to activate (None: run with no content; every event allowed).
    pub active: Option<u64>,
    /// The sequence to keep as last-known-good.
    pub lkg: Option<u64>,
    /// Content quarantined by this start.
    pub quarantined_now: Option<u64>,
    /// Whether `active` is pending (the proven timer must run).
    pub active_is_pending: bool,
    /// The state to persist *before* activating.
    pub state: GuardState,
}

/// Plans a start.
///
/// `valid` lists the sequences of the content files that validated, in any
/// order (duplicates ignored). `max_failed` is the number of starts pending
/// content gets before it is quarantined (at least 1).
///
/// Rules: quarantined sequences are never chosen. The newest remaining one is
/// activated. If it is the proven one, nothing is pending. Otherwise it
/// becomes pending and its start counter goes up, unless it already has
/// `max_failed` starts, in which case it is quarantined and the choice is
/// made again among the rest. The last-known-good is the proven content if
/// it is still valid and not active, else the newest valid content below
/// the active one.
///
/// # Panics
/// Never. Cost: O(len(valid)²) comparisons, at most a few hundred.
pub fn plan_start(state: &GuardState, valid: &[u64], max_failed: u32) -> StartPlan {
    let max_failed = max_failed.max(1);
    let mut st = *state;
    let mut quarantined_now = None;
    // The newest valid, non-quarantined sequence below `below`.
    let newest_below = |st: &GuardState, below: u64| -> Option<u64> {
        valid
            .iter()
            .copied()
            .filter(|&s| s != 0 && s < below && !st.is_quarantined(s))
            .max()
    };
    let mut ceiling = u64::MAX;
    let active = loop {
        let Some(top) = newest_below(&st, ceiling) else {
            break None;
        };
        if top == st.proven {
            if st.pending != 0 {
                // The pending content is gone (deleted or invalid); stop counting it.
                st.pending = 0;
                st.start_count = 0;
            }
            break Some(top);
        }
        if st.pending == top && st.start_count >= max_failed {
            st.quarantine(top);
            quarantined_now = Some(top);
            st.pending = 0;
            st.start_count = 0;
            ceiling = top;
            continue;
        }
        if st.pending == top {
            st.start_count = st.start_count.saturating_add(1);
        } else {
            st.pending = top;
            st.start_count = 1;
        }
        break Some(top);
    };
    let lkg = match active {
        None => None,
        Some(a) => {
            if st.proven != 0
                && st.proven != a
                && valid.contains(&st.proven)
                && !st.is_quarantined(st.proven)
            {
                Some(st.proven)
            } else {
                newest_below(&st, a)
            }
        }
    };
    let active_is_pending = active.is_some() && active == Some(st.pending) && st.pending != 0;
    StartPlan {
        active,
        lkg,
        quarantined_now,
        active_is_pending,
        state: st,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_decode_round_trip_and_rejects() {
        let s = GuardState {
            pending: 9,
            start_count: 2,
            proven: 7,
            quarantined: [5, 3, 0, 0],
            highest_proven: 8,
        };
        let b = s.encode();
        assert_eq!(GuardState::decode(&b), Ok(s));
        assert_eq!(GuardState::decode(&b[..71]), Err(GuardDecodeError::Length));
        assert_eq!(
            GuardState::decode(&b[..64]),
            Err(GuardDecodeError::Length),
            "a version 2 record cut to version 1's length"
        );
        let mut bad = b;
        bad[0] = b'X';
        assert_eq!(GuardState::decode(&bad), Err(GuardDecodeError::Magic));
        let mut bad = b;
        bad[4] = 3;
        assert_eq!(GuardState::decode(&bad), Err(GuardDecodeError::Version));
        assert_eq!(&b[8..16], &9u64.to_le_bytes());
        assert_eq!(&b[64..72], &8u64.to_le_bytes());
    }

    #[test]
    fn version_1_records_are_read() {
        // A record written by the previous driver: 64 bytes, version 1.
        let mut v1 = [0u8; GUARD_STATE_V1_LEN];
        v1[..4].copy_from_slice(b"PSGD");
        v1[4] = 1;
        v1[8] = 9; // pending
        v1[16] = 2; // start count
        v1[24] = 7; // proven
        v1[32] = 5; // quarantined
        let s = GuardState::decode(&v1).unwrap();
        assert_eq!(
            (
                s.pending,
                s.start_count,
                s.proven,
                s.quarantined,
                s.highest_proven
            ),
            (9, 2, 7, [5, 0, 0, 0], 7)
        );
        // Version 1 with version 2's length is rejected.
        let mut long = [0u8; GUARD_STATE_LEN];
        long[..64].copy_from_slice(&v1);
        assert_eq!(GuardState::decode(&long), Err(GuardDecodeError::Length));
    }

    #[test]
    fn highest_proven_only_moves_forward() {
        let mut st = GuardState {
            pending: 44,
            start_count: 1,
            proven: 45,
            highest_proven: 45,
            ..GuardState::default()
        };
        // A rollback instruction (44) ran cleanly: proven goes down, the
        // high-water mark does not.
        assert!(st.mark_proven(44));
        assert_eq!((st.proven, st.highest_proven), (44, 45));
        st.pending = 46;
        assert!(st.mark_proven(46));
        assert_eq!((st.proven, st.highest_proven), (46, 46));
    }

    #[test]
    fn first_start_makes_newest_pending() {
        let p = plan_start(&GuardState::default(), &[3, 5, 4], 3);
        assert_eq!(p.active, Some(5));
        assert_eq!(p.lkg, Some(4));
        assert!(p.active_is_pending);
        assert_eq!(p.state.pending, 5);
        assert_eq!(p.state.start_count, 1);
    }

    #[test]
    fn crash_loop_quarantines_after_n_failed_starts_then_runs_lkg() {
        let mut st = GuardState {
            proven: 4,
            ..GuardState::default()
        };
        for n in 1..=3 {
            let p = plan_start(&st, &[4, 5], 3);
            assert_eq!(p.active, Some(5), "start {n}");
            assert_eq!(p.lkg, Some(4));
            assert_eq!(p.state.start_count, n);
            assert_eq!(p.quarantined_now, None);
            st = p.state; // the host dies before mark_proven
        }
        let p = plan_start(&st, &[4, 5], 3);
        assert_eq!(p.quarantined_now, Some(5));
        assert_eq!(p.active, Some(4));
        assert!(!p.active_is_pending);
        assert_eq!(p.lkg, None);
        assert!(p.state.is_quarantined(5));
        assert_eq!(p.state.pending, 0);
        // And it stays quarantined on later starts.
        let p2 = plan_start(&p.state, &[4, 5], 3);
        assert_eq!(p2.active, Some(4));
        assert_eq!(p2.quarantined_now, None);
    }

    #[test]
    fn proven_content_is_not_counted() {
        let mut st = GuardState::default();
        let p = plan_start(&st, &[5], 3);
        st = p.state;
        assert!(st.mark_proven(5));
        assert!(!st.mark_proven(5));
        assert_eq!((st.proven, st.pending, st.start_count), (5, 0, 0));
        for _ in 0..10 {
            let p = plan_start(&st, &[5], 3);
            assert_eq!(p.active, Some(5));
            assert!(!p.active_is_pending);
            st = p.state;
        }
        assert_eq!(st.quarantined, [0; 4]);
    }

    #[test]
    fn mark_proven_only_for_the_active_pending() {
        let mut st = GuardState {
            pending: 6,
            start_count: 1,
            ..GuardState::default()
        };
        assert!(!st.mark_proven(5));
        assert!(st.mark_proven(6));
    }

    #[test]
    fn newer_content_resets_the_counter() {
        let st = GuardState {
            pending: 5,
            start_count: 3,
            proven: 4,
            ..GuardState::default()
        };
        let p = plan_start(&st, &[4, 5, 6], 3);
        assert_eq!(p.active, Some(6));
        assert_eq!(p.state.start_count, 1);
        assert_eq!(
            p.lkg,
            Some(4),
            "proven content is preferred as last-known-good"
        );
    }

    #[test]
    fn quarantine_cascades_and_nothing_valid() {
        // Two bad pending in a row: only the current pending is quarantined per start.
        let st = GuardState {
            pending: 6,
            start_count: 3,
            proven: 0,
            ..GuardState::default()
        };
        let p = plan_start(&st, &[5, 6], 3);
        assert_eq!(p.quarantined_now, Some(6));
        assert_eq!(p.active, Some(5));
        assert_eq!(p.state.pending, 5);
        assert_eq!(p.state.start_count, 1);
        let p = plan_start(&GuardState::default(), &[], 3);
        assert_eq!((p.active, p.lkg, p.active_is_pending), (None, None, false));
        let q = GuardState {
            quarantined: [5, 0, 0, 0],
            ..GuardState::default()
        };
        assert_eq!(plan_start(&q, &[5], 3).active, None);
    }

    #[test]
    fn max_failed_of_one_and_zero() {
        let st = GuardState {
            pending: 5,
            start_count: 1,
            ..GuardState::default()
        };
        assert_eq!(plan_start(&st, &[5], 1).quarantined_now, Some(5));
        assert_eq!(
            plan_start(&st, &[5], 0).quarantined_now,
            Some(5),
            "0 is treated as 1"
        );
        assert_eq!(plan_start(&st, &[5], 2).quarantined_now, None);
    }

    #[test]
    fn quarantine_list_is_bounded_newest_first() {
        let mut st = GuardState::default();
        for s in 1..=6 {
            st.quarantine(s);
        }
        st.quarantine(6);
        assert_eq!(st.quarantined, [6, 5, 4, 3]);
        assert!(!st.is_quarantined(0));
    }

    #[test]
    fn vanished_pending_is_forgotten() {
        let st = GuardState {
            pending: 9,
            start_count: 2,
            proven: 4,
            ..GuardState::default()
        };
        let p = plan_start(&st, &[4], 3);
        assert_eq!(p.active, Some(4));
        assert_eq!((p.state.pending, p.state.start_count), (0, 0));
    }
}
