//! The content scan's decisions, at start and on RESCAN: which files of the
//! content directory are candidates, validating every one (newest first),
//! choosing with [`rollout::plan`] (staging, customer control,
//! anti-rollback, crash-loop guard), persisting the guard state *before*
//! anything pending is activated, what runs when that state cannot be
//! persisted, when a rescan changes nothing, and when the proven timer stops
//! and starts.
//!
//! The driver performs the side effects through [`Platform`] (list the
//! directory, load and validate one file, read and write the guard state,
//! the time, the store, the timer, its log); the decisions are here, tested
//! on the host with a platform double.
//!
//! Policy when something cannot be decided:
//! * the directory cannot be listed: a load failure (`failure::IO`) is
//!   recorded and the scan goes on with no files (at start: no content, every
//!   event allowed; on RESCAN: what runs stays, see below);
//! * a file fails validation: its failure is recorded, its verdict is
//!   [`Reason::Invalid`], it is never activated;
//! * the stored guard state is unreadable (wrong length, bad version): it is
//!   treated as empty and status carries [`FLAG_GUARD_RESET`];
//! * the new guard state cannot be persisted: pending content is not
//!   activated (a crash loop could not be detected without the marker); the
//!   proven content runs if it is still valid, else none
//!   ([`Note::PersistFailed`]);
//! * RESCAN selects nothing, or what already runs: nothing changes, the
//!   proven timer keeps running ([`Note::RescanKeeps`]).

use crate::guard::{GuardState, StartPlan, GUARD_STATE_LEN};
use crate::proto::{
    failure, ContentInfo, FixedText, LoadFailure, MachineIdSource, Origin, RolloutFile,
    RolloutStatus, FLAG_GUARD_RESET, ROLLOUT_FILES,
};
use crate::rollout::{self, Candidate, Control, Machine, Reason};
use crate::store::{order_candidates, Slot};
use channel_format::Ring;
use channel_parser::RolloutPolicy;
use core::fmt::Write;

/// Content files considered by a scan: the newest 64 by sequence.
pub const MAX_CANDIDATES: usize = 64;

/// A content file of the directory: its sequence and how many digits its
/// name spells it with (the name is rebuilt from these: [`FileRef::name`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileRef {
    /// The sequence in its name.
    pub seq: u64,
    /// Digits of the sequence in the name (at least 8, zero-padded).
    pub digits: u8,
}

impl FileRef {
    /// Its file name, `C-00000291-<seq, zero-padded to digits>.sys`.
    pub fn name(&self) -> FixedText<64> {
        let mut t = FixedText::<64>::empty();
        let _ = write!(
            t,
            "C-00000291-{:0width$}.sys",
            self.seq,
            width = usize::from(self.digits)
        );
        t
    }
}

/// What started the scan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// Driver start (DriverEntry): the guard counts this start.
    Start,
    /// RESCAN (IOCTL or the periodic thread): only a different selection
    /// changes what runs.
    Rescan,
}

/// This machine's rollout inputs (read by the driver from the service key).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// The ring.
    pub ring: Ring,
    /// The customer's control.
    pub control: Control,
    /// The machine's bucket (thousandths of a percent).
    pub bucket_milli: u32,
    /// Where the machine id came from.
    pub id_source: MachineIdSource,
    /// `ROLLOUT_FLAG_*` bits (bad values in the service key).
    pub flags: u32,
}

/// What the scan tells the platform's log (nothing here formats text for a
/// log; the driver words these).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Note {
    /// The content directory could not be listed (the status).
    ListFailed {
        /// The platform's status code.
        status: i32,
    },
    /// A known file was not adopted (verdicts other than Adopted and Kept).
    NotAdopted {
        /// The file.
        sequence: u64,
        /// Why.
        reason: Reason,
    },
    /// RESCAN: what runs stays (the selection is empty or unchanged).
    RescanKeeps {
        /// What runs (None: nothing).
        running: Option<u64>,
    },
    /// Pending content reached the failed-start limit: quarantined.
    Quarantined {
        /// The file.
        sequence: u64,
        /// The limit.
        max_failed: u32,
    },
    /// The guard state could not be persisted: pending content not activated.
    PersistFailed,
}

/// The driver's side of a scan. Every method is a side effect or an input;
/// the order of the calls is the scan's policy.
pub trait Platform {
    /// The driver's handle to loaded content.
    type Content;
    /// Calls `each` with the name of every file of the content directory
    /// (UTF-16 units); Err(status) when the directory cannot be listed.
    fn list_files(&mut self, each: impl FnMut(&[u16])) -> Result<(), i32>;
    /// Reads, checks and parses one file (its header sequence must equal
    /// `file.seq`). (LoadFailure by value: it is what status records; the
    /// handle is returned as is, so the driver's frame holds nothing more.)
    #[allow(clippy::result_large_err)]
    fn load(&mut self, file: FileRef) -> Result<Self::Content, LoadFailure>;
    /// What loaded content is.
    fn info(content: &Self::Content) -> ContentInfo;
    /// Loaded content's ROLLOUT policy.
    fn rollout(content: &Self::Content) -> Option<RolloutPolicy>;
    /// Records a failure in status (and the log).
    fn record_failure(&mut self, f: LoadFailure);
    /// The stored guard state into `buf`: its length, or None when there is
    /// none (or no service key).
    fn read_guard(&mut self, buf: &mut [u8; GUARD_STATE_LEN]) -> Option<usize>;
    /// Persists the guard state (flushed): whether that succeeded.
    fn write_guard(&mut self, bytes: &[u8; GUARD_STATE_LEN]) -> bool;
    /// Unix seconds (UTC) now.
    fn now(&mut self) -> u64;
    /// The sequence of the content active now, if any.
    fn running(&mut self) -> Option<u64>;
    /// Publishes the selection's report (the ROLLOUT IOCTL).
    fn publish(&mut self, report: &RolloutStatus);
    /// A log line.
    fn note(&mut self, note: Note);
    /// Stops the proven timer and forgets that pending content is active
    /// (RESCAN activates other content: the timer belonged to the old one).
    fn stop_proven_timer(&mut self);
    /// The guard state in effect (status), its flags and whether the active
    /// content is pending.
    fn set_guard(&mut self, state: GuardState, flags: u32, pending_active: bool);
    /// Installs the chosen active and last-known-good content (either may be
    /// None: the file failed its second load, or nothing was chosen).
    fn install(
        &mut self,
        trigger: Trigger,
        active: Option<Slot<Self::Content>>,
        lkg: Option<Slot<Self::Content>>,
        pending_active: bool,
    );
    /// Starts the proven timer if the active content is pending.
    fn start_proven_timer(&mut self);
}

/// Working memory of a scan (a few KiB): the driver keeps it off the kernel
/// stack, one scan at a time.
#[derive(Debug)]
pub struct Work {
    entries: [Option<FileRef>; MAX_CANDIDATES],
    seqs: [u64; MAX_CANDIDATES],
    /// Every ordered file with its verdict, newest first.
    files: [RolloutFile; MAX_CANDIDATES],
    /// The files that validated, with their policies.
    cands: [Candidate; MAX_CANDIDATES],
    reasons: [Reason; MAX_CANDIDATES],
}

impl Work {
    /// Empty working memory.
    pub const fn new() -> Work {
        Work {
            entries: [None; MAX_CANDIDATES],
            seqs: [0; MAX_CANDIDATES],
            files: [RolloutFile::NONE; MAX_CANDIDATES],
            cands: [Candidate {
                sequence: 0,
                rollout: None,
            }; MAX_CANDIDATES],
            reasons: [Reason::Unknown; MAX_CANDIDATES],
        }
    }
}

impl Default for Work {
    fn default() -> Self {
        Work::new()
    }
}

/// A content file's name as a [`FileRef`], or None (not `C-00000291-*.sys`,
/// not ASCII, longer than 64 units).
pub fn file_ref(name: &[u16]) -> Option<FileRef> {
    let mut ascii = [0u8; 64];
    let mut k = 0usize;
    for &u in name {
        match (u8::try_from(u), ascii.get_mut(k)) {
            (Ok(b), Some(slot)) if b.is_ascii() => {
                *slot = b;
                k = k.saturating_add(1);
            }
            _ => return None,
        }
    }
    let seq = core::str::from_utf8(ascii.get(..k)?)
        .ok()
        .and_then(channel_format::parse_file_name)?;
    // "C-00000291-" is 11 characters, ".sys" 4.
    let digits = u8::try_from(k.saturating_sub(15)).unwrap_or(8);
    Some(FileRef { seq, digits })
}

/// Lists the directory into `w` (the newest [`MAX_CANDIDATES`] files by
/// sequence); returns how many. Not inlined: its name buffer stays off the
/// stack of the loads.
#[inline(never)]
fn list<P: Platform>(p: &mut P, w: &mut Work) -> usize {
    w.entries = [None; MAX_CANDIDATES];
    w.seqs = [0; MAX_CANDIDATES];
    let mut n = 0usize;
    let (entries, seqs) = (&mut w.entries, &mut w.seqs);
    let listed = p.list_files(|name| {
        let Some(file) = file_ref(name) else { return };
        // Keep the newest MAX_CANDIDATES.
        let slot = if n < MAX_CANDIDATES {
            n = n.saturating_add(1);
            n.saturating_sub(1)
        } else {
            let Some((i, _)) = seqs
                .iter()
                .enumerate()
                .min_by_key(|(_, s)| **s)
                .filter(|(_, s)| **s < file.seq)
            else {
                return;
            };
            i
        };
        if let (Some(s), Some(c)) = (seqs.get_mut(slot), entries.get_mut(slot)) {
            *s = file.seq;
            *c = Some(file);
        }
    });
    if let Err(status) = listed {
        p.note(Note::ListFailed { status });
        let mut message = FixedText::empty();
        let _ = write!(message, "content directory unreadable: {status:#x}");
        p.record_failure(LoadFailure {
            origin: Origin::Disk,
            sequence: 0,
            code: failure::IO,
            offset: u32::MAX,
            message,
        });
    }
    n
}

/// `rollout::plan`, not inlined: its working set is not kept on the stack
/// while pass 2 loads (and signature-checks) the chosen files.
#[inline(never)]
fn plan_rollout(
    cands: &[Candidate],
    machine: &Machine,
    state: &GuardState,
    max_failed: u32,
    reasons: &mut [Reason],
) -> StartPlan {
    rollout::plan(cands, machine, state, max_failed, reasons)
}

/// The guard state as stored, and whether it had to be reset (unreadable).
fn stored_guard<P: Platform>(p: &mut P) -> (GuardState, bool) {
    let mut stored = [0u8; GUARD_STATE_LEN];
    match p.read_guard(&mut stored) {
        None => (GuardState::default(), false),
        Some(len) => match stored.get(..len).map(GuardState::decode) {
            Some(Ok(s)) => (s, false),
            _ => (GuardState::default(), true),
        },
    }
}

/// Scans the content directory and activates what the policy selects (see
/// the module documentation). `max_failed` is the crash-loop guard's limit.
pub fn scan<P: Platform>(
    p: &mut P,
    w: &mut Work,
    trigger: Trigger,
    settings: &Settings,
    max_failed: u32,
) {
    let n = list(p, w);
    let m = order_candidates(w.seqs.get_mut(..n).unwrap_or(&mut []));
    let ordered = w.seqs.get(..m).unwrap_or(&[]);
    let entries = &w.entries;
    let find = |seq: u64| entries.iter().flatten().find(|c| c.seq == seq).copied();

    // Pass 1: validate every candidate (newest first); keep nothing.
    let (mut nf, mut nc) = (0usize, 0usize);
    for &seq in ordered {
        let Some(c) = find(seq) else { continue };
        let reason = match p.load(c) {
            Ok(content) => {
                if let Some(slot) = w.cands.get_mut(nc) {
                    *slot = Candidate {
                        sequence: seq,
                        rollout: P::rollout(&content),
                    };
                    nc = nc.saturating_add(1);
                }
                drop(content);
                Reason::Unknown
            }
            Err(f) => {
                let code = f.code;
                p.record_failure(f);
                Reason::Invalid { code }
            }
        };
        if let Some(slot) = w.files.get_mut(nf) {
            *slot = RolloutFile {
                sequence: seq,
                reason,
            };
            nf = nf.saturating_add(1);
        }
    }
    let cands = w.cands.get(..nc).unwrap_or(&[]);

    // The guard state as persisted.
    let (state, reset) = stored_guard(p);
    let running = p.running();
    let machine = Machine {
        ring: settings.ring,
        bucket_milli: settings.bucket_milli,
        control: settings.control,
        now: p.now(),
        highest_proven: state.highest_proven,
        current: match trigger {
            Trigger::Start => (state.proven != 0).then_some(state.proven),
            Trigger::Rescan => running,
        },
    };
    let reasons = w.reasons.get_mut(..nc).unwrap_or(&mut []);
    let plan = plan_rollout(cands, &machine, &state, max_failed, reasons);

    // Publish the verdicts (newest first, invalid files included).
    for f in w.files.get_mut(..nf).unwrap_or(&mut []) {
        if let Some(i) = cands.iter().position(|c| c.sequence == f.sequence) {
            f.reason = reasons.get(i).copied().unwrap_or(Reason::Unknown);
        }
    }
    let mut report = RolloutStatus {
        ring: settings.ring,
        bucket_milli: settings.bucket_milli,
        control: settings.control,
        flags: settings.flags,
        id_source: settings.id_source,
        count: u32::try_from(nf).unwrap_or(u32::MAX),
        now: machine.now,
        highest_proven: state.highest_proven,
        files: [RolloutFile::NONE; ROLLOUT_FILES],
    };
    for (d, s) in report.files.iter_mut().zip(w.files.iter().take(nf)) {
        *d = *s;
    }
    p.publish(&report);
    for f in w.files.iter().take(nf) {
        if f.reason != Reason::Adopted && f.reason != Reason::Kept {
            p.note(Note::NotAdopted {
                sequence: f.sequence,
                reason: f.reason,
            });
        }
    }

    if trigger == Trigger::Rescan && (plan.active.is_none() || plan.active == running) {
        p.note(Note::RescanKeeps { running });
        return;
    }
    if trigger == Trigger::Rescan {
        // The proven timer belongs to the content it was started for.
        p.stop_proven_timer();
    }

    // The guard plan, persisted before anything pending is activated.
    let persisted = plan.state == state && !reset || p.write_guard(&plan.state.encode());
    if let Some(sequence) = plan.quarantined_now {
        p.note(Note::Quarantined {
            sequence,
            max_failed,
        });
    }
    let (active_seq, lkg_seq, pending_active) = if persisted || !plan.active_is_pending {
        (plan.active, plan.lkg, plan.active_is_pending)
    } else {
        // Without a persisted marker a crash loop could not be detected:
        // run only proven content.
        p.note(Note::PersistFailed);
        let proven = (state.proven != 0 && cands.iter().any(|c| c.sequence == state.proven))
            .then_some(state.proven);
        (proven, None, false)
    };
    if trigger == Trigger::Rescan && active_seq == running {
        return;
    }
    p.set_guard(
        if persisted { plan.state } else { state },
        if reset { FLAG_GUARD_RESET } else { 0 },
        pending_active,
    );

    // Pass 2: load what the plan chose.
    let mut load = |seq: Option<u64>| -> Option<Slot<P::Content>> {
        let c = find(seq?)?;
        match p.load(c) {
            Ok(handle) => Some(Slot {
                info: P::info(&handle),
                handle,
            }),
            Err(f) => {
                p.record_failure(f);
                None
            }
        }
    };
    let active = load(active_seq);
    let lkg = load(lkg_seq);
    p.install(trigger, active, lkg, pending_active);
    if trigger == Trigger::Rescan {
        p.start_proven_timer();
    }
}

#[cfg(test)]
#[path = "scan_test.rs"]
mod tests;
