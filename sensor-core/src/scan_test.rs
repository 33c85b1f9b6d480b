//! Host tests of the scan's decisions, through a platform double that
//! records every side effect in order.

use super::*;
use crate::guard::DEFAULT_MAX_FAILED_STARTS;
use std::string::String;
use std::vec;
use std::vec::Vec;

/// A side effect, as the double saw it.
#[derive(Debug, Clone, PartialEq)]
enum Ev {
    Load(u64),
    Failure(u64, u32),
    WriteGuard(GuardState),
    Publish(Vec<(u64, Reason)>),
    Note(Note),
    StopTimer,
    SetGuard(GuardState, u32, bool),
    Install(Trigger, Option<u64>, Option<u64>, bool),
    StartTimer,
}

struct Double {
    /// File names in the directory, with whether they validate.
    files: Vec<(String, bool)>,
    list_status: Option<i32>,
    /// The stored guard record (None: no value).
    guard: Option<Vec<u8>>,
    write_ok: bool,
    running: Option<u64>,
    /// How many loads succeed before every further one fails (None: all).
    loads_left: Option<usize>,
    ev: Vec<Ev>,
}

impl Double {
    fn new(files: &[(&str, bool)]) -> Double {
        Double {
            files: files.iter().map(|(n, ok)| ((*n).into(), *ok)).collect(),
            list_status: None,
            guard: None,
            write_ok: true,
            running: None,
            loads_left: None,
            ev: Vec::new(),
        }
    }
    fn add(&mut self, (name, ok): (&str, bool)) {
        self.files.push((name.into(), ok));
    }
    fn with_guard(mut self, g: GuardState) -> Double {
        self.guard = Some(g.encode().to_vec());
        self
    }
    fn run(&mut self, trigger: Trigger) {
        let mut w = Work::new();
        scan(self, &mut w, trigger, &SETTINGS, DEFAULT_MAX_FAILED_STARTS);
    }
    fn installs(&self) -> Vec<&Ev> {
        self.ev
            .iter()
            .filter(|e| matches!(e, Ev::Install(..)))
            .collect()
    }
    fn has(&self, e: &Ev) -> bool {
        self.ev.contains(e)
    }
    fn position(&self, f: impl Fn(&Ev) -> bool) -> Option<usize> {
        self.ev.iter().position(f)
    }
}

const SETTINGS: Settings = Settings {
    ring: Ring::BROAD,
    control: Control::Latest,
    bucket_milli: 500,
    id_source: MachineIdSource::ServiceKey,
    flags: 0,
};

fn failure_of(seq: u64, code: u32) -> LoadFailure {
    LoadFailure {
        origin: Origin::Disk,
        sequence: seq,
        code,
        offset: u32::MAX,
        message: FixedText::empty(),
    }
}

impl Platform for Double {
    type Content = u64;
    fn list_files(&mut self, mut each: impl FnMut(&[u16])) -> Result<(), i32> {
        if let Some(s) = self.list_status {
            return Err(s);
        }
        for (name, _) in &self.files {
            let units: Vec<u16> = name.encode_utf16().collect();
            each(&units);
        }
        Ok(())
    }
    fn load(&mut self, file: FileRef) -> Result<u64, LoadFailure> {
        self.ev.push(Ev::Load(file.seq));
        let name = file.name();
        let ok = self
            .files
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name.as_str()))
            .is_some_and(|(_, ok)| *ok);
        if let Some(left) = &mut self.loads_left {
            if *left == 0 {
                return Err(failure_of(file.seq, failure::IO));
            }
            *left -= 1;
        }
        if !ok {
            return Err(failure_of(file.seq, failure::PARSE));
        }
        Ok(file.seq)
    }
    fn info(content: &u64) -> ContentInfo {
        ContentInfo {
            sequence: *content,
            origin: Origin::Disk,
            ..ContentInfo::NONE
        }
    }
    fn rollout(_: &u64) -> Option<RolloutPolicy> {
        None
    }
    fn record_failure(&mut self, f: LoadFailure) {
        self.ev.push(Ev::Failure(f.sequence, f.code));
    }
    fn read_guard(&mut self, buf: &mut [u8; GUARD_STATE_LEN]) -> Option<usize> {
        let g = self.guard.as_ref()?;
        let n = g.len().min(GUARD_STATE_LEN);
        buf[..n].copy_from_slice(&g[..n]);
        Some(n)
    }
    fn write_guard(&mut self, bytes: &[u8; GUARD_STATE_LEN]) -> bool {
        let g = GuardState::decode(bytes).unwrap();
        self.ev.push(Ev::WriteGuard(g));
        if self.write_ok {
            self.guard = Some(bytes.to_vec());
        }
        self.write_ok
    }
    fn now(&mut self) -> u64 {
        1_800_000_000
    }
    fn running(&mut self) -> Option<u64> {
        self.running
    }
    fn publish(&mut self, report: &RolloutStatus) {
        let n = usize::try_from(report.count).unwrap().min(ROLLOUT_FILES);
        self.ev.push(Ev::Publish(
            report.files[..n]
                .iter()
                .map(|f| (f.sequence, f.reason))
                .collect(),
        ));
    }
    fn note(&mut self, note: Note) {
        self.ev.push(Ev::Note(note));
    }
    fn stop_proven_timer(&mut self) {
        self.ev.push(Ev::StopTimer);
    }
    fn set_guard(&mut self, state: GuardState, flags: u32, pending_active: bool) {
        self.ev.push(Ev::SetGuard(state, flags, pending_active));
    }
    fn install(
        &mut self,
        trigger: Trigger,
        active: Option<Slot<u64>>,
        lkg: Option<Slot<u64>>,
        pending_active: bool,
    ) {
        if let Some(a) = &active {
            assert_eq!(a.info.sequence, a.handle);
            self.running = Some(a.handle);
        }
        self.ev.push(Ev::Install(
            trigger,
            active.map(|s| s.handle),
            lkg.map(|s| s.handle),
            pending_active,
        ));
    }
    fn start_proven_timer(&mut self) {
        self.ev.push(Ev::StartTimer);
    }
}

const F41: (&str, bool) = ("C-00000291-00000041.sys", true);
const F42: (&str, bool) = ("C-00000291-00000042.sys", true);
const F43: (&str, bool) = ("C-00000291-00000043.sys", true);

fn proven(seq: u64) -> GuardState {
    GuardState {
        proven: seq,
        highest_proven: seq,
        ..GuardState::default()
    }
}

#[test]
fn file_names_and_their_digits() {
    let units = |s: &str| s.encode_utf16().collect::<Vec<u16>>();
    let f = file_ref(&units("C-00000291-000000042.SYS")).unwrap();
    assert_eq!(f, FileRef { seq: 42, digits: 9 });
    assert_eq!(f.name().as_str(), "C-00000291-000000042.sys");
    assert_eq!(file_ref(&units("C-00000292-00000042.sys")), None);
    assert_eq!(file_ref(&units("C-00000291-0042.sys")), None);
    assert_eq!(file_ref(&units("notes.txt")), None);
    // Not ASCII, and longer than the 64-unit buffer.
    assert_eq!(file_ref(&[0x43, 0x2d, 0x263a]), None);
    assert_eq!(file_ref(&[u16::from(b'C'); 65]), None);
}

#[test]
fn start_validates_newest_first_then_activates_pending_after_persisting() {
    let mut d = Double::new(&[F41, ("readme.txt", true), F43, F42]).with_guard(proven(42));
    d.run(Trigger::Start);
    // Pass 1 newest first, then pass 2 the active (43) and the LKG (42).
    let loads: Vec<_> = d.ev.iter().filter(|e| matches!(e, Ev::Load(_))).collect();
    assert_eq!(
        loads,
        [
            &Ev::Load(43),
            &Ev::Load(42),
            &Ev::Load(41),
            &Ev::Load(43),
            &Ev::Load(42)
        ]
    );
    let want = GuardState {
        pending: 43,
        start_count: 1,
        ..proven(42)
    };
    let wrote = d.position(|e| *e == Ev::WriteGuard(want)).unwrap();
    let installed = d
        .position(|e| *e == Ev::Install(Trigger::Start, Some(43), Some(42), true))
        .unwrap();
    assert!(wrote < installed, "guard persisted before activation");
    assert!(d.has(&Ev::SetGuard(want, 0, true)));
    // At start the caller starts the timer (after filtering starts).
    assert!(!d.has(&Ev::StartTimer) && !d.has(&Ev::StopTimer));
}

#[test]
fn invalid_files_are_recorded_and_never_activated() {
    let mut d = Double::new(&[F41, ("C-00000291-00000042.sys", false)]);
    d.run(Trigger::Start);
    assert!(d.has(&Ev::Failure(42, failure::PARSE)));
    let Some(Ev::Publish(files)) = d.ev.iter().find(|e| matches!(e, Ev::Publish(_))) else {
        panic!("no report published");
    };
    assert_eq!(
        files[0],
        (
            42,
            Reason::Invalid {
                code: failure::PARSE
            }
        )
    );
    assert_eq!(files[1], (41, Reason::Adopted));
    assert!(d.has(&Ev::Note(Note::NotAdopted {
        sequence: 42,
        reason: Reason::Invalid {
            code: failure::PARSE
        }
    })));
    assert_eq!(
        d.installs(),
        [&Ev::Install(Trigger::Start, Some(41), None, true)]
    );
}

#[test]
fn persist_failure_runs_only_proven_content() {
    let mut d = Double::new(&[F41, F42, F43]).with_guard(proven(42));
    d.write_ok = false;
    d.run(Trigger::Start);
    assert!(d.has(&Ev::Note(Note::PersistFailed)));
    // 43 would have been pending: not activated; 42 (proven) runs, no LKG,
    // nothing pending, and the guard in effect is the stored one.
    assert_eq!(
        d.installs(),
        [&Ev::Install(Trigger::Start, Some(42), None, false)]
    );
    assert!(d.has(&Ev::SetGuard(proven(42), 0, false)));
}

#[test]
fn persist_failure_without_valid_proven_content_runs_none() {
    let mut d = Double::new(&[F43, ("C-00000291-00000042.sys", false)]).with_guard(proven(42));
    d.write_ok = false;
    d.run(Trigger::Start);
    assert!(d.has(&Ev::Note(Note::PersistFailed)));
    assert_eq!(
        d.installs(),
        [&Ev::Install(Trigger::Start, None, None, false)]
    );
}

#[test]
fn persist_failure_does_not_matter_when_nothing_is_pending() {
    // Proven content restarts: the plan's state equals the stored one, no write.
    let mut d = Double::new(&[F42]).with_guard(proven(42));
    d.write_ok = false;
    d.run(Trigger::Start);
    assert!(!d.ev.iter().any(|e| matches!(e, Ev::WriteGuard(_))));
    assert!(!d.has(&Ev::Note(Note::PersistFailed)));
    assert_eq!(
        d.installs(),
        [&Ev::Install(Trigger::Start, Some(42), None, false)]
    );
}

#[test]
fn unreadable_guard_state_is_reset_and_flagged() {
    let mut d = Double::new(&[F42]);
    d.guard = Some(vec![1, 2, 3]);
    d.run(Trigger::Start);
    let want = GuardState {
        pending: 42,
        start_count: 1,
        ..GuardState::default()
    };
    assert!(d.has(&Ev::WriteGuard(want)));
    assert!(d.has(&Ev::SetGuard(want, FLAG_GUARD_RESET, true)));
}

#[test]
fn crash_loop_quarantines_and_runs_last_known_good() {
    // 43 was started max_failed times and never proven (each start crashed).
    let stored = GuardState {
        pending: 43,
        start_count: DEFAULT_MAX_FAILED_STARTS,
        ..proven(42)
    };
    let mut d = Double::new(&[F41, F42, F43]).with_guard(stored);
    d.run(Trigger::Start);
    assert!(d.has(&Ev::Note(Note::Quarantined {
        sequence: 43,
        max_failed: DEFAULT_MAX_FAILED_STARTS
    })));
    let Some(Ev::WriteGuard(g)) = d.ev.iter().find(|e| matches!(e, Ev::WriteGuard(_))) else {
        panic!("quarantine not persisted");
    };
    assert_eq!((g.pending, g.proven), (0, 42));
    assert!(g.quarantined.contains(&43));
    // The proven content runs, nothing pending.
    assert_eq!(
        d.installs(),
        [&Ev::Install(Trigger::Start, Some(42), None, false)]
    );
    // The next start does not try 43 again, and writes nothing.
    let stored = GuardState::decode(d.guard.as_ref().unwrap()).unwrap();
    let mut again = Double::new(&[F41, F42, F43]).with_guard(stored);
    again.run(Trigger::Start);
    assert!(!again.ev.iter().any(|e| matches!(e, Ev::WriteGuard(_))));
    let Some(Ev::Publish(files)) = again.ev.iter().find(|e| matches!(e, Ev::Publish(_))) else {
        panic!("no report published");
    };
    assert_eq!(files[0], (43, Reason::Quarantined));
    assert_eq!(
        again.installs(),
        [&Ev::Install(Trigger::Start, Some(42), None, false)]
    );
}

#[test]
fn crash_loop_counts_each_start_until_the_limit() {
    let mut d = Double::new(&[F42, F43]).with_guard(proven(42));
    for start in 1..=DEFAULT_MAX_FAILED_STARTS {
        d.ev.clear();
        d.run(Trigger::Start);
        assert_eq!(
            d.installs(),
            [&Ev::Install(Trigger::Start, Some(43), Some(42), true)],
            "start {start}"
        );
    }
    d.ev.clear();
    d.run(Trigger::Start);
    assert_eq!(
        d.installs(),
        [&Ev::Install(Trigger::Start, Some(42), None, false)]
    );
}

#[test]
fn unchanged_rescan_keeps_what_runs_and_its_timer() {
    let mut d = Double::new(&[F42, F43]).with_guard(proven(42));
    d.run(Trigger::Start);
    assert_eq!(d.running, Some(43));
    d.ev.clear();
    d.run(Trigger::Rescan);
    assert!(d.has(&Ev::Note(Note::RescanKeeps { running: Some(43) })));
    assert!(d.installs().is_empty());
    for e in &d.ev {
        assert!(
            !matches!(
                e,
                Ev::StopTimer | Ev::StartTimer | Ev::WriteGuard(_) | Ev::SetGuard(..)
            ),
            "an unchanged rescan changed something: {e:?}"
        );
    }
}

#[test]
fn rescan_with_nothing_valid_keeps_what_runs() {
    let mut d = Double::new(&[("C-00000291-00000044.sys", false)]);
    d.running = Some(43);
    d.run(Trigger::Rescan);
    assert!(d.has(&Ev::Failure(44, failure::PARSE)));
    assert!(d.has(&Ev::Note(Note::RescanKeeps { running: Some(43) })));
    assert!(d.installs().is_empty() && !d.has(&Ev::StopTimer));
}

#[test]
fn rescan_adopting_new_content_restarts_the_proven_timer() {
    let mut d = Double::new(&[F42]).with_guard(proven(42));
    d.run(Trigger::Start);
    d.add(F43);
    d.ev.clear();
    d.run(Trigger::Rescan);
    let stop = d.position(|e| *e == Ev::StopTimer).unwrap();
    let write = d.position(|e| matches!(e, Ev::WriteGuard(_))).unwrap();
    let install = d
        .position(|e| *e == Ev::Install(Trigger::Rescan, Some(43), Some(42), true))
        .unwrap();
    let start = d.position(|e| *e == Ev::StartTimer).unwrap();
    assert!(stop < write && write < install && install < start);
}

#[test]
fn rescan_whose_persist_fails_and_proven_runs_changes_nothing() {
    let mut d = Double::new(&[F42]).with_guard(proven(42));
    d.run(Trigger::Start);
    d.add(F43);
    d.write_ok = false;
    d.ev.clear();
    d.run(Trigger::Rescan);
    // The fallback (proven 42) is what runs: no install, no timer restart.
    assert!(d.has(&Ev::Note(Note::PersistFailed)));
    assert!(d.has(&Ev::StopTimer));
    assert!(d.installs().is_empty() && !d.has(&Ev::StartTimer));
}

#[test]
fn unreadable_directory_is_recorded_and_runs_nothing() {
    let mut d = Double::new(&[F42]);
    d.list_status = Some(0xC000_0034_u32 as i32);
    d.run(Trigger::Start);
    assert!(d.has(&Ev::Note(Note::ListFailed {
        status: 0xC000_0034_u32 as i32
    })));
    assert!(d.has(&Ev::Failure(0, failure::IO)));
    assert_eq!(
        d.installs(),
        [&Ev::Install(Trigger::Start, None, None, false)]
    );
}

#[test]
fn a_file_failing_its_second_load_is_recorded_not_installed() {
    let mut d = Double::new(&[F42, F43]).with_guard(proven(42));
    d.loads_left = Some(2); // pass 1 succeeds; pass 2 fails
    d.run(Trigger::Start);
    assert!(d.has(&Ev::Failure(43, failure::IO)));
    assert!(d.has(&Ev::Failure(42, failure::IO)));
    assert_eq!(
        d.installs(),
        [&Ev::Install(Trigger::Start, None, None, true)]
    );
}

#[test]
fn only_the_newest_candidates_are_considered() {
    let names: Vec<String> = (1..=70u64)
        .map(|s| std::format!("C-00000291-{s:08}.sys"))
        .collect();
    let files: Vec<_> = names.iter().map(|n| (n.as_str(), true)).collect();
    let mut d = Double::new(&files);
    d.run(Trigger::Start);
    let Some(Ev::Publish(report)) = d.ev.iter().find(|e| matches!(e, Ev::Publish(_))) else {
        panic!("no report");
    };
    let count = d.ev.iter().filter(|e| matches!(e, Ev::Load(_))).count();
    // 64 validated in pass 1 (70..=7), then 70 and its LKG in pass 2.
    assert_eq!(count, MAX_CANDIDATES + 2);
    assert_eq!(report.first().map(|f| f.0), Some(70));
    assert!(!d.has(&Ev::Load(6)));
}
