//! Monitor first: after new content is adopted, its block rules act as
//! alerts for a soak period before they enforce.
//!
//! The staged rollout ([`crate::rollout`]) limits *which machines* get a
//! release; the soak limits *what a release does* on them at first. During
//! the soak a match of a block rule is recorded with the decision
//! [`crate::decision::Decision::Soak`] — the event says the rule would have
//! denied — and the operation goes through. A wrong block rule shows up in
//! those events (and in the fleet's health gate) before it can deny
//! anything. The period is set per ring by the content's policy
//! ([`SoakPolicy`]; `pipectl compile --soak canary:1h,early:4h,broad:24h`):
//! canary machines can enforce sooner than the broad fleet. A file without a
//! policy has no soak (it enforces as soon as it is adopted, as before this
//! existed).
//!
//! The soak counts from the moment this machine first adopted the file's
//! sequence, which the driver keeps in its service key ([`Adoption`]), so a
//! reboot during the soak neither restarts nor skips it. The decision path
//! compares a monotonic clock against a deadline computed once per
//! adoption ([`enforce_at_ms`]), so a wall-clock change after adoption does
//! not end the soak early; a wall clock that is *behind* the adoption time
//! (set back) makes the remaining soak the whole period, never less.
//!
//! Every block rule of the new file soaks, including rules that were
//! already enforcing in the previous file: the sensor does not compare rules
//! across files. A release that must enforce at once sets a zero soak for
//! its rings.

use channel_format::Ring;

/// Soak periods per ring, in seconds: canary, early, broad.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SoakPolicy {
    /// Seconds per ring, indexed by the ring's wire value.
    pub secs: [u32; 3],
}

impl SoakPolicy {
    /// No soak anywhere.
    pub const NONE: SoakPolicy = SoakPolicy { secs: [0; 3] };

    /// The policy of a file: its ENFORCEMENT section's monitor-first periods,
    /// or none.
    pub fn of(content: Option<channel_parser::EnforcementPolicy>) -> SoakPolicy {
        content
            .and_then(|e| e.monitor_first)
            .map_or(SoakPolicy::NONE, |secs| SoakPolicy { secs })
    }

    /// The soak of `ring`; a ring this build does not know gets the longest
    /// period of the policy (never less soak than any known ring).
    pub fn for_ring(&self, ring: Ring) -> u32 {
        match self.secs.get(usize::from(ring.0)) {
            Some(s) => *s,
            None => self.secs.iter().copied().max().unwrap_or(0),
        }
    }
}

/// When this machine adopted which sequence (persisted in the service key
/// as the `Adopted` `REG_BINARY` value, [`ADOPTION_LEN`] bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Adoption {
    /// The sequence.
    pub sequence: u64,
    /// Unix seconds, UTC.
    pub at_unix: u64,
}

/// Encoded length of [`Adoption`]: magic 4, version 4, sequence 8, time 8.
pub const ADOPTION_LEN: usize = 24;
const ADOPTION_MAGIC: [u8; 4] = *b"PSAD";
const ADOPTION_VERSION: u32 = 1;

impl Adoption {
    /// The record for content `sequence` that becomes active at `now_unix`:
    /// the stored one if it is for the same sequence (a restart), else a new
    /// one (which the driver stores).
    pub fn on_activate(stored: Option<Adoption>, sequence: u64, now_unix: u64) -> Adoption {
        match stored {
            Some(a) if a.sequence == sequence => a,
            _ => Adoption {
                sequence,
                at_unix: now_unix,
            },
        }
    }

    /// Serializes the record.
    pub fn encode(&self) -> [u8; ADOPTION_LEN] {
        let mut out = [0u8; ADOPTION_LEN];
        let mut w = crate::codec::Writer::new(&mut out);
        // Exactly ADOPTION_LEN bytes: the writes cannot run out of room.
        let _ = w.bytes(&ADOPTION_MAGIC);
        let _ = w.u32(ADOPTION_VERSION);
        let _ = w.u64(self.sequence);
        let _ = w.u64(self.at_unix);
        out
    }

    /// Parses a stored record; `None` for anything else (the driver then
    /// treats the content as adopted now: the soak starts over, never
    /// shorter).
    pub fn decode(b: &[u8]) -> Option<Adoption> {
        let mut r = crate::codec::Reader::new(b);
        if r.take(4, "adoption").ok()? != ADOPTION_MAGIC {
            return None;
        }
        if r.u32("adoption").ok()? != ADOPTION_VERSION {
            return None;
        }
        let sequence = r.u64("adoption").ok()?;
        let at_unix = r.u64("adoption").ok()?;
        r.finish("adoption").ok()?;
        Some(Adoption { sequence, at_unix })
    }
}

/// The monotonic time (ms) from which block rules enforce: `soak_secs`
/// after `adopted_unix`, placed on the monotonic clock whose current value
/// is `now_ms` while the wall clock reads `now_unix`. The remaining soak is
/// never longer than `soak_secs` (a wall clock set back) and never negative.
pub fn enforce_at_ms(adopted_unix: u64, soak_secs: u32, now_unix: u64, now_ms: u64) -> u64 {
    let end = adopted_unix.saturating_add(u64::from(soak_secs));
    let remaining = end.saturating_sub(now_unix).min(u64::from(soak_secs));
    now_ms.saturating_add(remaining.saturating_mul(1000))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_ring() {
        let p = SoakPolicy {
            secs: [3_600, 14_400, 86_400],
        };
        assert_eq!(p.for_ring(Ring::CANARY), 3_600);
        assert_eq!(p.for_ring(Ring::EARLY), 14_400);
        assert_eq!(p.for_ring(Ring::BROAD), 86_400);
        assert_eq!(p.for_ring(Ring(7)), 86_400, "unknown ring: the longest");
        assert_eq!(SoakPolicy::NONE.for_ring(Ring::BROAD), 0);
        assert_eq!(SoakPolicy::of(None), SoakPolicy::NONE);
        let e = channel_parser::EnforcementPolicy {
            monitor_first: Some([1, 2, 3]),
            ..Default::default()
        };
        assert_eq!(SoakPolicy::of(Some(e)).for_ring(Ring::EARLY), 2);
        assert_eq!(
            SoakPolicy::of(Some(channel_parser::EnforcementPolicy::default())),
            SoakPolicy::NONE
        );
    }

    #[test]
    fn deadline_from_the_adoption_time() {
        // Adopted at 1000 (wall), soak 2 h; now 1000 + 600 with the
        // monotonic clock at 50 s: 6,600 s left.
        assert_eq!(
            enforce_at_ms(1_000, 7_200, 1_600, 50_000),
            50_000 + 6_600_000
        );
        // Past the soak: now.
        assert_eq!(enforce_at_ms(1_000, 7_200, 9_000, 50_000), 50_000);
        // No soak.
        assert_eq!(enforce_at_ms(1_000, 0, 1_000, 5), 5);
        // Wall clock behind the adoption: the whole soak, not more.
        assert_eq!(enforce_at_ms(10_000, 60, 1_000, 0), 60_000);
        // Extremes saturate.
        assert_eq!(enforce_at_ms(u64::MAX, u32::MAX, 0, u64::MAX), u64::MAX);
    }

    #[test]
    fn adoption_record() {
        let a = Adoption {
            sequence: 42,
            at_unix: 1_900_000_000,
        };
        assert_eq!(Adoption::decode(&a.encode()), Some(a));
        // The same sequence after a restart keeps its time; another starts now.
        assert_eq!(Adoption::on_activate(Some(a), 42, 2_000_000_000), a);
        assert_eq!(
            Adoption::on_activate(Some(a), 43, 2_000_000_000),
            Adoption {
                sequence: 43,
                at_unix: 2_000_000_000
            }
        );
        assert_eq!(
            Adoption::on_activate(None, 42, 7).at_unix,
            7,
            "no record: adopted now"
        );
        let good = a.encode();
        let mut bad = good;
        bad[0] ^= 1;
        assert_eq!(Adoption::decode(&bad), None);
        let mut bad = good;
        bad[4] = 2;
        assert_eq!(Adoption::decode(&bad), None);
        assert_eq!(Adoption::decode(&good[..23]), None);
        let mut long = [0u8; 25];
        long[..24].copy_from_slice(&good);
        assert_eq!(Adoption::decode(&long), None);
    }
}
