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
//!
//! [`plan`] puts this together with the crash-loop guard
//! ([`crate::guard::plan_start`]): the file [`select`] adopts is started
//! under the guard, and if the guard has quarantined it, the newest older
//! file this machine may run takes its place. The driver calls [`plan`] at
//! start and on a rescan; [`check_anti_rollback`] on a hot load.

use crate::guard::{plan_start, GuardState, StartPlan};
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
    /// Running although not selected: the customer froze content, nothing
    /// newer is eligible, or the selected file was quarantined and this is
    /// the newest older file this machine may run. Set by [`plan`].
    Kept,
    /// Quarantined by the crash-loop guard. Set by [`plan`].
    Quarantined,
    /// The file did not load (signature, parse or I/O failure; `code` is a
    /// [`crate::proto::failure`] code). Set by the driver.
    Invalid {
        /// The failure code.
        code: u32,
    },
}

impl Reason {
    /// The wire form: a code and two values (meaning per code; see
    /// `proto::RolloutStatus`).
    pub fn to_wire(self) -> (u32, u64, u64) {
        match self {
            Reason::Unknown => (0, 0, 0),
            Reason::Adopted => (1, 0, 0),
            Reason::NotSelected => (2, 0, 0),
            Reason::Rollback { highest_proven } => (3, highest_proven, 0),
            Reason::Revoked { by } => (4, by, 0),
            Reason::Ring { file, machine } => (5, u64::from(file.0), u64::from(machine.0)),
            Reason::Share {
                bucket_milli,
                percent_milli,
            } => (6, u64::from(bucket_milli), u64::from(percent_milli)),
            Reason::NotBefore { not_before } => (7, not_before, 0),
            Reason::Frozen => (8, 0, 0),
            Reason::Pinned { pin } => (9, pin, 0),
            Reason::OneBehind => (10, 0, 0),
            Reason::Kept => (11, 0, 0),
            Reason::Quarantined => (12, 0, 0),
            Reason::Invalid { code } => (13, u64::from(code), 0),
        }
    }

    /// Parses the wire form; `None` for an unknown code or out-of-range value.
    pub fn from_wire(code: u32, a: u64, b: u64) -> Option<Reason> {
        let ring = |v: u64| u8::try_from(v).ok().map(Ring);
        let milli = |v: u64| u32::try_from(v).ok();
        Some(match code {
            0 => Reason::Unknown,
            1 => Reason::Adopted,
            2 => Reason::NotSelected,
            3 => Reason::Rollback { highest_proven: a },
            4 => Reason::Revoked { by: a },
            5 => Reason::Ring {
                file: ring(a)?,
                machine: ring(b)?,
            },
            6 => Reason::Share {
                bucket_milli: milli(a)?,
                percent_milli: milli(b)?,
            },
            7 => Reason::NotBefore { not_before: a },
            8 => Reason::Frozen,
            9 => Reason::Pinned { pin: a },
            10 => Reason::OneBehind,
            11 => Reason::Kept,
            12 => Reason::Quarantined,
            13 => Reason::Invalid { code: milli(a)? },
            _ => return None,
        })
    }

    /// A short name (`adopted`, `share`, ...), as `pipectl driver status`
    /// prints it.
    pub const fn name(self) -> &'static str {
        match self {
            Reason::Unknown => "unknown",
            Reason::Adopted => "adopted",
            Reason::NotSelected => "not-selected",
            Reason::Rollback { .. } => "rollback",
            Reason::Revoked { .. } => "revoked",
            Reason::Ring { .. } => "ring",
            Reason::Share { .. } => "share",
            Reason::NotBefore { .. } => "not-before",
            Reason::Frozen => "frozen",
            Reason::Pinned { .. } => "pinned",
            Reason::OneBehind => "one-behind",
            Reason::Kept => "kept",
            Reason::Quarantined => "quarantined",
            Reason::Invalid { .. } => "invalid",
        }
    }
}

impl core::fmt::Display for Reason {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let ring = |r: Ring| r.name().unwrap_or("unknown ring");
        match *self {
            Reason::Unknown => f.write_str("not examined"),
            Reason::Adopted => f.write_str("adopted"),
            Reason::NotSelected => f.write_str("eligible, a newer file was adopted"),
            Reason::Rollback { highest_proven } => write!(
                f,
                "older than {highest_proven}, the highest sequence proven here, and no rollback instruction covers it"
            ),
            Reason::Revoked { by } => write!(f, "revoked by rollback instruction {by}"),
            Reason::Ring { file, machine } => write!(
                f,
                "released to the {} ring; this machine is in the {} ring",
                ring(file),
                ring(machine)
            ),
            Reason::Share {
                bucket_milli,
                percent_milli,
            } => write!(
                f,
                "released to {}.{:03}% of the ring; this machine's bucket is {}.{:03}%",
                percent_milli / 1000,
                percent_milli % 1000,
                bucket_milli / 1000,
                bucket_milli % 1000
            ),
            Reason::NotBefore { not_before } => {
                write!(f, "not before {not_before} (Unix seconds, UTC)")
            }
            Reason::Frozen => f.write_str("the customer froze content"),
            Reason::Pinned { pin } => write!(f, "the customer pinned sequence {pin}"),
            Reason::OneBehind => f.write_str("newest eligible file; the customer stays one behind"),
            Reason::Kept => f.write_str("kept running (nothing newer may be adopted)"),
            Reason::Quarantined => f.write_str("quarantined by the crash-loop guard"),
            Reason::Invalid { code } => write!(f, "did not load (failure code {code})"),
        }
    }
}

/// Parses a ring name (`canary`, `early`, `broad`; ASCII case-insensitive).
pub fn parse_ring(s: &str) -> Option<Ring> {
    [Ring::CANARY, Ring::EARLY, Ring::BROAD]
        .into_iter()
        .find(|r| r.name().is_some_and(|n| n.eq_ignore_ascii_case(s.trim())))
}

/// Why a customer control setting was not understood.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ControlParseError;

impl core::fmt::Display for ControlParseError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("expected latest, n-1, pin:SEQUENCE or freeze")
    }
}

impl Control {
    /// Parses the service key's `ContentControl` string: `latest`, `n-1`
    /// (or `one-behind`), `pin:SEQUENCE` (a decimal sequence above 0) or
    /// `freeze`; ASCII case-insensitive, surrounding blanks ignored.
    ///
    /// # Errors
    /// [`ControlParseError`] for anything else (the driver then keeps
    /// `latest` and reports it).
    pub fn parse(s: &str) -> Result<Control, ControlParseError> {
        let s = s.trim();
        let is = |w: &str| s.eq_ignore_ascii_case(w);
        if is("latest") {
            return Ok(Control::Latest);
        }
        if is("n-1") || is("one-behind") {
            return Ok(Control::OneBehind);
        }
        if is("freeze") {
            return Ok(Control::Freeze);
        }
        let (kind, seq) = s.split_once(':').ok_or(ControlParseError)?;
        if !kind.trim().eq_ignore_ascii_case("pin") {
            return Err(ControlParseError);
        }
        let seq = seq.trim();
        if seq.is_empty() || !seq.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ControlParseError);
        }
        match seq.parse::<u64>() {
            Ok(n) if n > 0 => Ok(Control::Pin(n)),
            _ => Err(ControlParseError),
        }
    }

    /// The wire form: kind (0 latest, 1 n-1, 2 pin, 3 freeze) and the pin.
    pub const fn to_wire(self) -> (u32, u64) {
        match self {
            Control::Latest => (0, 0),
            Control::OneBehind => (1, 0),
            Control::Pin(n) => (2, n),
            Control::Freeze => (3, 0),
        }
    }

    /// Parses the wire form.
    pub const fn from_wire(kind: u32, pin: u64) -> Option<Control> {
        match kind {
            0 => Some(Control::Latest),
            1 => Some(Control::OneBehind),
            2 => Some(Control::Pin(pin)),
            3 => Some(Control::Freeze),
            _ => None,
        }
    }
}

impl core::fmt::Display for Control {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Control::Latest => f.write_str("latest"),
            Control::OneBehind => f.write_str("n-1"),
            Control::Pin(n) => write!(f, "pin:{n}"),
            Control::Freeze => f.write_str("freeze"),
        }
    }
}

/// The stable bucket of a machine for a channel: SHA-256 of the machine id
/// and the channel number, reduced to 0..100000 (thousandths of a percent).
pub fn bucket(machine_id: &[u8], channel: u32) -> u32 {
    let mut h = Sha256::new();
    h.update(machine_id);
    finish_bucket(h, channel)
}

/// The bucket of a machine id as the driver reads it from the registry
/// (UTF-16): the id's characters, ASCII letters lower-cased (GUIDs are
/// written both ways), surrounding blanks dropped, as UTF-8 — then
/// [`bucket`]. An unpaired surrogate counts as U+FFFD. So
/// `machine_bucket(w("1B4E...-A427"), 291) == bucket(b"1b4e...-a427", 291)`.
pub fn machine_bucket(id: &[u16], channel: u32) -> u32 {
    let blank = |u: &u16| *u == u16::from(b' ') || *u == u16::from(b'\t');
    let start = id.iter().position(|u| !blank(u)).unwrap_or(id.len());
    let end = id
        .iter()
        .rposition(|u| !blank(u))
        .map_or(start, |i| i.saturating_add(1));
    let id = id.get(start..end).unwrap_or(&[]);
    let mut h = Sha256::new();
    for c in char::decode_utf16(id.iter().copied()) {
        let c = c
            .unwrap_or(char::REPLACEMENT_CHARACTER)
            .to_ascii_lowercase();
        let mut b = [0u8; 4];
        h.update(c.encode_utf8(&mut b).as_bytes());
    }
    finish_bucket(h, channel)
}

fn finish_bucket(mut h: Sha256, channel: u32) -> u32 {
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

/// Anti-rollback and revocation: may a machine whose highest proven
/// sequence is `highest_proven` run `c` at all?
fn allowed(c: &Candidate, all: &[Candidate], highest_proven: u64) -> Result<(), Reason> {
    if let Some(by) = revoked_by(c.sequence, all) {
        return Err(Reason::Revoked { by });
    }
    if c.sequence < highest_proven {
        let covered = c
            .rollout
            .and_then(|r| r.rollback_ceiling)
            .is_some_and(|ceiling| ceiling >= highest_proven);
        if !covered {
            return Err(Reason::Rollback { highest_proven });
        }
    }
    Ok(())
}

/// Anti-rollback for a file that arrives alone (a hot load): refused when
/// older than `highest_proven` unless it is a rollback instruction whose
/// ceiling covers `highest_proven`. Staging and customer control do not
/// apply to a hot load: an administrator chose that file.
///
/// # Errors
/// [`Reason::Rollback`].
pub fn check_anti_rollback(c: &Candidate, highest_proven: u64) -> Result<(), Reason> {
    allowed(c, core::slice::from_ref(c), highest_proven)
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
        allowed(c, candidates, m.highest_proven).and_then(|()| match m.control {
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

/// Most candidates [`plan`] considers (the driver keeps the newest 64).
pub const MAX_PLAN_CANDIDATES: usize = 64;

/// Chooses what to run at start (or on a rescan): [`select`] picks the file
/// to adopt; the crash-loop guard ([`plan_start`]) then starts it, or, if it
/// has crashed `max_failed` starts in a row, quarantines it and falls back
/// to the newest older file this machine may run (one that passes
/// anti-rollback and revocation and either passes staging or is the proven
/// one). When `select` adopts nothing (freeze, N-1 with one file, nothing
/// eligible) the machine keeps `m.current`, if that is still allowed.
///
/// `m.highest_proven` is raised to `guard.highest_proven`. `reasons` gets
/// one entry per candidate (as [`select`]), with the guard's verdicts added:
/// [`Reason::Quarantined`], and [`Reason::Kept`] for a running file that was
/// not adopted. The returned plan's `active`/`lkg` are sequences among
/// `candidates`; its `state` must be persisted before activating.
///
/// # Panics
/// Never. Allocates nothing. Candidates past [`MAX_PLAN_CANDIDATES`] are
/// ignored.
pub fn plan(
    candidates: &[Candidate],
    m: &Machine,
    guard: &GuardState,
    max_failed: u32,
    reasons: &mut [Reason],
) -> StartPlan {
    let candidates = candidates.get(..MAX_PLAN_CANDIDATES).unwrap_or(candidates);
    let m = Machine {
        highest_proven: m.highest_proven.max(guard.highest_proven),
        ..*m
    };
    let chosen = select(candidates, &m, reasons).and_then(|i| candidates.get(i));
    let may_run = |c: &Candidate| {
        allowed(c, candidates, m.highest_proven).is_ok()
            && (c.sequence == guard.proven || staged_in(c, &m).is_ok())
    };
    let target = match chosen {
        Some(c) => Some(c.sequence),
        None => m.current.filter(|cur| {
            candidates
                .iter()
                .any(|c| c.sequence == *cur && allowed(c, candidates, m.highest_proven).is_ok())
        }),
    };
    let mut eligible = [0u64; MAX_PLAN_CANDIDATES];
    let mut n = 0usize;
    if let Some(t) = target {
        for c in candidates {
            if c.sequence == t || (c.sequence < t && may_run(c)) {
                if let Some(slot) = eligible.get_mut(n) {
                    *slot = c.sequence;
                    n = n.saturating_add(1);
                }
            }
        }
    }
    let p = plan_start(guard, eligible.get(..n).unwrap_or(&[]), max_failed);
    for (c, r) in candidates.iter().zip(reasons.iter_mut()) {
        if p.state.is_quarantined(c.sequence) {
            *r = Reason::Quarantined;
        } else if Some(c.sequence) == p.active && *r != Reason::Adopted {
            *r = Reason::Kept;
        }
    }
    p
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
    fn machine_bucket_is_bucket_of_the_normalized_id() {
        let w = |s: &str| s.encode_utf16().collect::<std::vec::Vec<u16>>();
        let guid = "1b4e28ba-2fa1-11d2-883f-0016d3cca427";
        let b = bucket(guid.as_bytes(), 291);
        assert_eq!(machine_bucket(&w(guid), 291), b);
        assert_eq!(
            machine_bucket(&w(" 1B4E28BA-2FA1-11D2-883F-0016D3CCA427\t"), 291),
            b
        );
        // Only ASCII letters are lower-cased.
        assert_eq!(
            machine_bucket(&w("Ünïcode-ID"), 7),
            bucket("Ünïcode-id".as_bytes(), 7)
        );
        assert_eq!(
            machine_bucket(&[0xD800], 1),
            bucket("\u{FFFD}".as_bytes(), 1)
        );
        assert_eq!(machine_bucket(&[], 1), bucket(b"", 1));
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

    fn plan_run(
        c: &[Candidate],
        m: &Machine,
        g: &GuardState,
    ) -> (StartPlan, std::vec::Vec<Reason>) {
        let mut reasons = std::vec![Reason::Unknown; c.len()];
        let p = plan(c, m, g, 3, &mut reasons);
        (p, reasons)
    }

    #[test]
    fn plan_holds_back_then_adopts_when_the_policy_widens() {
        let m = machine(Ring::BROAD, 20_000, Control::Latest);
        let g = GuardState {
            proven: 40,
            highest_proven: 40,
            ..GuardState::default()
        };
        let (p, reasons) = plan_run(&[plain(40), staged(41, Ring::BROAD, 5, 0)], &m, &g);
        assert_eq!((p.active, p.active_is_pending), (Some(40), false));
        assert_eq!(reasons[0], Reason::Adopted);
        assert_eq!(
            reasons[1],
            Reason::Share {
                bucket_milli: 20_000,
                percent_milli: 5_000
            }
        );
        // The same sequence re-released to 50 %: adopted, pending, 40 is LKG.
        let (p, reasons) = plan_run(&[plain(40), staged(41, Ring::BROAD, 50, 0)], &m, &g);
        assert_eq!(
            (p.active, p.lkg, p.active_is_pending),
            (Some(41), Some(40), true)
        );
        assert_eq!((p.state.pending, p.state.start_count), (41, 1));
        assert_eq!(reasons, [Reason::NotSelected, Reason::Adopted]);
    }

    #[test]
    fn plan_quarantine_falls_back_to_a_file_this_machine_may_run() {
        let m = machine(Ring::BROAD, 20_000, Control::Latest);
        // 42 crashed three starts in a row; 41 is staged away from this
        // machine, so the fallback is the proven 40, not 41.
        let g = GuardState {
            pending: 42,
            start_count: 3,
            proven: 40,
            highest_proven: 40,
            ..GuardState::default()
        };
        let files = [plain(40), staged(41, Ring::CANARY, 100, 0), plain(42)];
        let (p, reasons) = plan_run(&files, &m, &g);
        assert_eq!(p.quarantined_now, Some(42));
        assert_eq!((p.active, p.active_is_pending), (Some(40), false));
        assert_eq!(reasons[0], Reason::Kept);
        assert!(matches!(reasons[1], Reason::Ring { .. }));
        assert_eq!(reasons[2], Reason::Quarantined);
    }

    #[test]
    fn plan_freeze_and_nothing_eligible_keep_what_runs() {
        let g = GuardState {
            proven: 40,
            highest_proven: 40,
            ..GuardState::default()
        };
        let mut m = machine(Ring::BROAD, 0, Control::Freeze);
        m.current = Some(40);
        let (p, reasons) = plan_run(&[plain(40), plain(41)], &m, &g);
        assert_eq!(p.active, Some(40));
        assert_eq!(reasons, [Reason::Kept, Reason::Frozen]);
        // Frozen with nothing running: nothing runs.
        m.current = None;
        assert_eq!(plan_run(&[plain(40), plain(41)], &m, &g).0.active, None);
        // A canary-only release on a broad machine with nothing proven: none.
        let m = machine(Ring::BROAD, 0, Control::Latest);
        let p = plan_run(
            &[staged(5, Ring::CANARY, 100, 0)],
            &m,
            &GuardState::default(),
        )
        .0;
        assert_eq!(p.active, None);
        assert_eq!(p.state, GuardState::default(), "nothing to persist");
    }

    #[test]
    fn plan_anti_rollback_and_rollback_instruction() {
        let m = machine(Ring::BROAD, 0, Control::Latest);
        // A rollback instruction (39, ceiling 41) ran and was proven: proven
        // is 39, the high-water mark stays 41.
        let g = GuardState {
            proven: 39,
            highest_proven: 41,
            ..GuardState::default()
        };
        // Plain 39 alone, without the instruction: refused.
        let (p, reasons) = plan_run(&[plain(39)], &m, &g);
        assert_eq!(p.active, None);
        assert_eq!(reasons[0], Reason::Rollback { highest_proven: 41 });
        // With the instruction: 39 runs, 40 and 41 are revoked and no LKG
        // reaches into them.
        let files = [plain(38), rollback(39, 41), plain(40), plain(41)];
        let (p, reasons) = plan_run(&files, &m, &g);
        assert_eq!((p.active, p.lkg), (Some(39), None));
        assert_eq!(
            reasons,
            [
                Reason::Rollback { highest_proven: 41 },
                Reason::Adopted,
                Reason::Revoked { by: 39 },
                Reason::Revoked { by: 39 }
            ]
        );
        // The machine's own high-water mark wins over a lower one in `m`.
        let mut low = m;
        low.highest_proven = 1;
        assert_eq!(plan_run(&[plain(39)], &low, &g).0.active, None);
    }

    #[test]
    fn hot_load_anti_rollback() {
        assert_eq!(check_anti_rollback(&plain(41), 40), Ok(()));
        assert_eq!(check_anti_rollback(&plain(40), 40), Ok(()));
        assert_eq!(
            check_anti_rollback(&plain(39), 40),
            Err(Reason::Rollback { highest_proven: 40 })
        );
        assert_eq!(check_anti_rollback(&rollback(39, 40), 40), Ok(()));
        assert_eq!(
            check_anti_rollback(&rollback(39, 40), 41),
            Err(Reason::Rollback { highest_proven: 41 })
        );
        // Staging does not apply to a hot load.
        assert_eq!(
            check_anti_rollback(&staged(41, Ring::CANARY, 0, u64::MAX), 40),
            Ok(())
        );
    }

    #[test]
    fn control_and_ring_parsing() {
        for (s, c) in [
            ("latest", Control::Latest),
            (" LATEST ", Control::Latest),
            ("n-1", Control::OneBehind),
            ("One-Behind", Control::OneBehind),
            ("freeze", Control::Freeze),
            ("pin:45", Control::Pin(45)),
            ("PIN: 7 ", Control::Pin(7)),
        ] {
            assert_eq!(Control::parse(s), Ok(c), "{s}");
            let (k, p) = c.to_wire();
            assert_eq!(Control::from_wire(k, p), Some(c));
            assert_eq!(Control::parse(&std::format!("{c}")), Ok(c));
        }
        for bad in [
            "",
            "pin",
            "pin:",
            "pin:0",
            "pin:-1",
            "pin:+4",
            "pin:1x",
            "pin:99999999999999999999",
            "n-2",
            "latest!",
        ] {
            assert_eq!(Control::parse(bad), Err(ControlParseError), "{bad:?}");
        }
        assert_eq!(Control::from_wire(4, 0), None);
        assert_eq!(parse_ring("Canary"), Some(Ring::CANARY));
        assert_eq!(parse_ring("early"), Some(Ring::EARLY));
        assert_eq!(parse_ring(" broad "), Some(Ring::BROAD));
        assert_eq!(parse_ring("wide"), None);
    }

    #[test]
    fn reasons_round_trip_on_the_wire() {
        let all = [
            Reason::Unknown,
            Reason::Adopted,
            Reason::NotSelected,
            Reason::Rollback { highest_proven: 9 },
            Reason::Revoked { by: 3 },
            Reason::Ring {
                file: Ring::CANARY,
                machine: Ring::BROAD,
            },
            Reason::Share {
                bucket_milli: 12_345,
                percent_milli: 5_000,
            },
            Reason::NotBefore {
                not_before: 1_900_000_000,
            },
            Reason::Frozen,
            Reason::Pinned { pin: 4 },
            Reason::OneBehind,
            Reason::Kept,
            Reason::Quarantined,
            Reason::Invalid { code: 8 },
        ];
        let mut names = std::collections::BTreeSet::new();
        for r in all {
            let (c, a, b) = r.to_wire();
            assert_eq!(Reason::from_wire(c, a, b), Some(r));
            assert!(names.insert(r.name()), "{} twice", r.name());
            assert!(!std::format!("{r}").is_empty());
        }
        assert_eq!(Reason::from_wire(14, 0, 0), None);
        assert_eq!(Reason::from_wire(5, 256, 0), None);
        assert_eq!(Reason::from_wire(6, u64::MAX, 0), None);
        assert_eq!(
            std::format!(
                "{}",
                Reason::Share {
                    bucket_milli: 20_500,
                    percent_milli: 5_000
                }
            ),
            "released to 5.000% of the ring; this machine's bucket is 20.500%"
        );
    }
}
