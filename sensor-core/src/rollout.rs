//! Which content file a machine adopts: staged rollout, customer control and
//! anti-rollback.
//!
//! Inputs are plain values: each known, valid channel file's sequence and
//! ROLLOUT policy ([`Candidate`]), and this machine's state ([`Machine`]):
//! its ring, its stable bucket ([`bucket`]), the customer's control setting
//! from the service key, the time, and the highest sequence ever proven here.
//! [`select`] returns the file to run and, for every candidate, why it was or
//! was not adopted — the driver's status reports those reasons.
//!
//! Rules, in order:
//! 1. **Anti-rollback.** A file older than the highest proven sequence is
//!    refused, unless it is a rollback instruction (ROLLBACK flag, signed with
//!    the rest of the file) whose ceiling is at least that sequence. A
//!    rollback instruction for sequence `s` with ceiling `c` also revokes
//!    every file in `(s, c]`: that is how a bad release is pulled back fast
//!    without reopening downgrade attacks.
//! 2. **Staging.** A file with a policy is adopted only by machines whose ring
//!    is at or before the file's ring, whose bucket is below the file's share,
//!    and only after its not-before time. No policy: everyone, any time.
//! 3. **Customer control.** `Latest` takes the newest eligible file;
//!    `OneBehind` the newest eligible file older than the newest eligible
//!    one (N-1); `Pin(n)` exactly sequence `n` (staging does not apply to a
//!    pin — the customer chose it — but anti-rollback does); `Freeze` adopts
//!    nothing new and keeps what runs.

use channel_format::Ring;
use channel_parser::RolloutPolicy;
use sha2::{Digest, Sha256};

/// The customer's choice, from the service key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// Follow the newest eligible release.
    Latest,
    /// Stay one release behind the newest eligible (N-1).
    OneBehind,
    /// Run exactly this sequence.
    Pin(u64),
    /// Adopt nothing new.
    Freeze,
}

/// This machine's rollout state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Machine {
    /// The ring this machine is in.
    pub ring: Ring,
    /// Its bucket, 0..100000 (thousandths of a percent): [`bucket`].
    pub bucket_milli: u32,
    /// The customer's control setting.
    pub control: Control,
    /// Now, Unix seconds UTC.
    pub now: u64,
    /// The highest sequence proven on this machine (0: none).
    pub highest_proven: u64,
    /// The sequence running now, if any.
    pub current: Option<u64>,
}

/// A valid channel file the machine knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Candidate {
    /// Its sequence.
    pub sequence: u64,
    /// Its ROLLOUT policy.
    pub rollout: Option<RolloutPolicy>,
}

/// Why a candidate was or was not adopted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// Not looked at (more candidates than reasons slots).
    Unknown,
    /// Selected.
    Adopted,
    /// Eligible, but another file was selected (an older one, or held by N-1).
    NotSelected,
    /// Older than the highest proven sequence and not a rollback instruction
    /// covering it.
    Rollback {
        /// The highest proven sequence.
        highest_proven: u64,
    },
    /// Revoked by a rollback instruction.
    Revoked {
        /// The instruction's sequence.
        by: u64,
    },
    /// This machine's ring comes after the file's.
    Ring {
        /// The file's ring.
        file: Ring,
        /// This machine's ring.
        machine: Ring,
    },
    /// This machine's bucket is not within the file's share of its ring.
    Share {
        /// The machine's bucket (thousandths of a percent).
        bucket_milli: u32,
        /// The file's share.
        percent_milli: u32,
    },
    /// Before the file's not-before time.
    NotBefore {
        /// The file's time.
        not_before: u64,
    },
    /// The customer froze content.
    Frozen,
    /// The customer pinned another sequence.
    Pinned {
        /// The pinned sequence.
        pin: u64,
    },
    /// N-1: this is the newest eligible file.
    OneBehind,
}

/// The stable bucket of a machine for a channel: SHA-256 of the machine id
/// and the channel number, reduced to 0..100000 (thousandths of a percent).
pub fn bucket(machine_id: &[u8], channel: u32) -> u32 {
    let mut h = Sha256::new();
    h.update(machine_id);
    h.update(channel.to_le_bytes());
    let d = h.finalize();
    let mut first = [0u8; 8];
    for (o, i) in first.iter_mut().zip(d.iter()) {
        *o = *i;
    }
    let n = u64::from_le_bytes(first) % 100_000;
    u32::try_from(n).unwrap_or(0)
}

/// The rollback instruction that revokes `seq`, if any.
fn revoked_by(seq: u64, all: &[Candidate]) -> Option<u64> {
    all.iter().find_map(|c| {
        let ceiling = c.rollout?.rollback_ceiling?;
        (seq > c.sequence && seq <= ceiling).then_some(c.sequence)
    })
}

/// Anti-rollback and revocation: may this machine run `c` at all?
fn allowed(c: &Candidate, all: &[Candidate], m: &Machine) -> Result<(), Reason> {
    if let Some(by) = revoked_by(c.sequence, all) {
        return Err(Reason::Revoked { by });
    }
    if c.sequence < m.highest_proven {
        let covered = c
            .rollout
            .and_then(|r| r.rollback_ceiling)
            .is_some_and(|ceiling| ceiling >= m.highest_proven);
        if !covered {
            return Err(Reason::Rollback {
                highest_proven: m.highest_proven,
            });
        }
    }
    Ok(())
}

/// Staging: is this machine in the file's audience now?
fn staged_in(c: &Candidate, m: &Machine) -> Result<(), Reason> {
    let Some(s) = c.rollout.and_then(|r| r.staged) else {
        return Ok(());
    };
    if m.ring > s.ring {
        return Err(Reason::Ring {
            file: s.ring,
            machine: m.ring,
        });
    }
    if m.bucket_milli >= s.percent_milli {
        return Err(Reason::Share {
            bucket_milli: m.bucket_milli,
            percent_milli: s.percent_milli,
        });
    }
    if m.now < s.not_before {
        return Err(Reason::NotBefore {
            not_before: s.not_before,
        });
    }
    Ok(())
}

/// Chooses the file to run among `candidates` (each a valid file), writing
/// a reason per candidate into `reasons` (same order; extra candidates get
/// none). Returns the index of the file to adopt, or `None` to keep what
/// runs.
///
/// # Panics
/// Never panics. Allocates nothing. Quadratic in the number of candidates
/// (a handful of files in the content directory).
pub fn select(candidates: &[Candidate], m: &Machine, reasons: &mut [Reason]) -> Option<usize> {
    let verdict = |c: &Candidate| {
        allowed(c, candidates, m).and_then(|()| match m.control {
            Control::Freeze => Err(Reason::Frozen),
            Control::Pin(pin) if pin != c.sequence => Err(Reason::Pinned { pin }),
            Control::Pin(_) => Ok(()),
            Control::Latest | Control::OneBehind => staged_in(c, m),
        })
    };
    // The newest eligible file below `limit`.
    let newest_below = |limit: u64| {
        let mut best: Option<(usize, u64)> = None;
        for (i, c) in candidates.iter().enumerate() {
            if c.sequence < limit && verdict(c).is_ok() && best.is_none_or(|(_, s)| c.sequence > s)
            {
                best = Some((i, c.sequence));
            }
        }
        best
    };
    let newest = newest_below(u64::MAX);
    let chosen = match (m.control, newest) {
        (Control::OneBehind, Some((_, seq))) => newest_below(seq).map(|(i, _)| i),
        (_, n) => n.map(|(i, _)| i),
    };
    for (i, (c, slot)) in candidates.iter().zip(reasons.iter_mut()).enumerate() {
        *slot = match verdict(c) {
            Err(r) => r,
            Ok(()) if Some(i) == chosen => Reason::Adopted,
            Ok(()) if m.control == Control::OneBehind && newest.is_some_and(|(n, _)| n == i) => {
                Reason::OneBehind
            }
            Ok(()) => Reason::NotSelected,
        };
    }
    chosen
}

#[cfg(test)]
mod tests {
    use super::*;
    use channel_parser::Staging;

    fn plain(sequence: u64) -> Candidate {
        Candidate {
            sequence,
            rollout: None,
        }
    }

    fn staged(sequence: u64, ring: Ring, percent: u32, not_before: u64) -> Candidate {
        Candidate {
            sequence,
            rollout: Some(RolloutPolicy {
                staged: Some(Staging {
                    ring,
                    percent_milli: percent * 1000,
                    not_before,
                }),
                rollback_ceiling: None,
            }),
        }
    }

    fn rollback(sequence: u64, ceiling: u64) -> Candidate {
        Candidate {
            sequence,
            rollout: Some(RolloutPolicy {
                staged: None,
                rollback_ceiling: Some(ceiling),
            }),
        }
    }

    fn machine(ring: Ring, bucket_milli: u32, control: Control) -> Machine {
        Machine {
            ring,
            bucket_milli,
            control,
            now: 1_000,
            highest_proven: 0,
            current: None,
        }
    }

    fn run(c: &[Candidate], m: &Machine) -> (Option<u64>, std::vec::Vec<Reason>) {
        let mut reasons = std::vec![Reason::Unknown; c.len()];
        let i = select(c, m, &mut reasons);
        (i.map(|i| c[i].sequence), reasons)
    }

    #[test]
    fn latest_takes_the_newest_file() {
        let (got, reasons) = run(
            &[plain(3), plain(5), plain(4)],
            &machine(Ring::BROAD, 50_000, Control::Latest),
        );
        assert_eq!(got, Some(5));
        assert_eq!(
            reasons,
            [Reason::NotSelected, Reason::Adopted, Reason::NotSelected]
        );
    }

    #[test]
    fn staging_by_ring_share_and_time() {
        let files = [plain(10), staged(11, Ring::CANARY, 100, 0)];
        // A broad machine waits for the canary release to widen.
        let (got, reasons) = run(&files, &machine(Ring::BROAD, 1, Control::Latest));
        assert_eq!(got, Some(10));
        assert_eq!(
            reasons[1],
            Reason::Ring {
                file: Ring::CANARY,
                machine: Ring::BROAD
            }
        );
        // A canary machine takes it.
        assert_eq!(
            run(&files, &machine(Ring::CANARY, 99_999, Control::Latest)).0,
            Some(11)
        );
        // Share: 5% of early machines.
        let files = [plain(10), staged(11, Ring::EARLY, 5, 0)];
        assert_eq!(
            run(&files, &machine(Ring::EARLY, 4_999, Control::Latest)).0,
            Some(11)
        );
        let (got, reasons) = run(&files, &machine(Ring::EARLY, 5_000, Control::Latest));
        assert_eq!(got, Some(10));
        assert_eq!(
            reasons[1],
            Reason::Share {
                bucket_milli: 5_000,
                percent_milli: 5_000
            }
        );
        // Earlier rings get what later rings get.
        assert_eq!(
            run(&files, &machine(Ring::CANARY, 0, Control::Latest)).0,
            Some(11)
        );
        // Not before.
        let files = [plain(10), staged(11, Ring::BROAD, 100, 2_000)];
        let (got, reasons) = run(&files, &machine(Ring::BROAD, 0, Control::Latest));
        assert_eq!(got, Some(10));
        assert_eq!(reasons[1], Reason::NotBefore { not_before: 2_000 });
        let mut m = machine(Ring::BROAD, 0, Control::Latest);
        m.now = 2_000;
        assert_eq!(run(&files, &m).0, Some(11));
    }

    #[test]
    fn policy_widening_releases_held_machines() {
        // The same machine: held at 5 %, adopted once the file's share is 50 %.
        let m = machine(Ring::BROAD, 20_000, Control::Latest);
        assert_eq!(
            run(&[plain(1), staged(2, Ring::BROAD, 5, 0)], &m).0,
            Some(1)
        );
        assert_eq!(
            run(&[plain(1), staged(3, Ring::BROAD, 50, 0)], &m).0,
            Some(3)
        );
    }

    #[test]
    fn customer_control() {
        let files = [plain(7), plain(8), plain(9)];
        let (got, reasons) = run(&files, &machine(Ring::BROAD, 0, Control::OneBehind));
        assert_eq!(got, Some(8));
        assert_eq!(reasons[2], Reason::OneBehind);
        // N-1 with a single file: nothing new.
        assert_eq!(
            run(&[plain(9)], &machine(Ring::BROAD, 0, Control::OneBehind)).0,
            None
        );
        let (got, reasons) = run(&files, &machine(Ring::BROAD, 0, Control::Pin(7)));
        assert_eq!(got, Some(7));
        assert_eq!(reasons[2], Reason::Pinned { pin: 7 });
        // A pin overrides staging (the customer chose it).
        let files2 = [plain(7), staged(8, Ring::CANARY, 1, u64::MAX)];
        assert_eq!(
            run(&files2, &machine(Ring::BROAD, 99_000, Control::Pin(8))).0,
            Some(8)
        );
        let (got, reasons) = run(&files, &machine(Ring::BROAD, 0, Control::Freeze));
        assert_eq!(got, None);
        assert!(reasons.iter().all(|r| *r == Reason::Frozen));
        // A pin to a sequence that is not there: nothing.
        assert_eq!(
            run(&files, &machine(Ring::BROAD, 0, Control::Pin(99))).0,
            None
        );
    }

    #[test]
    fn anti_rollback_and_signed_rollback_instructions() {
        let mut m = machine(Ring::BROAD, 0, Control::Latest);
        m.highest_proven = 45;
        // An old file is refused...
        let (got, reasons) = run(&[plain(44)], &m);
        assert_eq!(got, None);
        assert_eq!(reasons[0], Reason::Rollback { highest_proven: 45 });
        // ...even when pinned.
        let mut pinned = m;
        pinned.control = Control::Pin(44);
        assert_eq!(run(&[plain(44)], &pinned).0, None);
        // A rollback instruction for 44 covering 45 is adopted, and revokes 45.
        let (got, reasons) = run(&[plain(45), rollback(44, 45)], &m);
        assert_eq!(got, Some(44));
        assert_eq!(reasons[0], Reason::Revoked { by: 44 });
        // It does not reach past its ceiling: with 46 proven it is refused.
        m.highest_proven = 46;
        let (got, reasons) = run(&[plain(46), rollback(44, 45)], &m);
        assert_eq!(got, Some(46));
        assert_eq!(reasons[1], Reason::Rollback { highest_proven: 46 });
        // Newer releases beyond the ceiling are not revoked.
        m.highest_proven = 45;
        assert_eq!(
            run(&[plain(45), rollback(44, 45), plain(47)], &m).0,
            Some(47)
        );
    }

    #[test]
    #[cfg_attr(miri, ignore)] // too slow under Miri (scripts/miri.sh)
    fn buckets_are_stable_and_spread() {
        assert_eq!(bucket(b"machine-a", 291), bucket(b"machine-a", 291));
        assert_ne!(bucket(b"machine-a", 291), bucket(b"machine-a", 292));
        let mut below_5 = 0;
        for i in 0..10_000u32 {
            let b = bucket(&i.to_le_bytes(), 291);
            assert!(b < 100_000);
            if b < 5_000 {
                below_5 += 1;
            }
        }
        // 5 % of 10,000 machines, give or take sampling noise.
        assert!((400..600).contains(&below_5), "{below_5}");
    }
}
