//! The image is scanned only when a candidate rule needs one of its atoms
//! (FORMAT.md, PREFILTER: a LAZY automaton): Sigma-style rules that test
//! the pipe name and filter on the image gate on the name, and an event
//! whose name makes no rule a candidate never scans its image
//! (`Scratch::scans`). Every verdict is checked against the reference
//! matcher.

use channel_parser::{parse, Capabilities, ChannelFile, Event, EventKind, Scratch, Text};
use pipe_compiler::model::{Cond, FieldId, Matcher, Rule, RuleSet};
use pipe_compiler::{compile, AlignedBytes, CompileOptions};
use std::ops::ControlFlow;
use test_kit::build::{on, rule};
use test_kit::reference::{matching_ids, RefEvent};

fn name(m: Matcher) -> Cond {
    on(FieldId::PIPE_NAME, m)
}

fn image(m: Matcher) -> Cond {
    on(FieldId::IMAGE, m)
}

fn contains(s: &str) -> Matcher {
    Matcher::Contains(s.into())
}

/// The compiled set, its matches for one event (kernel, UTF-16) and the
/// field scans that took; each verdict checked against the reference.
struct Compiled {
    set: RuleSet,
    bytes: AlignedBytes,
}

/// Rules beside the ones under test, as in any real set: name `contains`
/// tests, which make the pipe name eager (a few anchored name literals
/// alone would be compared directly, their rules evaluated on every event).
fn fillers() -> Vec<Rule> {
    (0..6)
        .map(|i| rule(100 + i, name(contains(&format!("\\filler{i}")))))
        .collect()
}

impl Compiled {
    fn new(mut rules: Vec<Rule>) -> Compiled {
        rules.extend(fillers());
        Compiled::bare(rules)
    }

    fn bare(rules: Vec<Rule>) -> Compiled {
        let set = RuleSet { rules };
        let bytes = AlignedBytes::new(&compile(&set, &CompileOptions::default()).unwrap());
        Compiled { set, bytes }
    }

    fn file(&self) -> ChannelFile<'_> {
        parse(self.bytes.as_slice(), &Capabilities::SENSOR).unwrap()
    }

    /// Whether the image automaton is lazy (and there is one).
    fn image_is_lazy(&self) -> bool {
        self.file()
            .prefilter_shape()
            .any(|(f, _, _, _, lazy)| f == FieldId::IMAGE && lazy)
    }

    /// Matching rule ids and the field scans (`Scratch::scans`).
    fn run(&self, pipe: &str, img: Option<&str>) -> (Vec<u32>, u32) {
        let file = self.file();
        let units: Vec<u16> = pipe.encode_utf16().collect();
        let img16: Option<Vec<u16>> = img.map(|i| i.encode_utf16().collect());
        let ev = Event {
            pipe_name: Text::Utf16(&units),
            image: img16.as_deref().map(Text::Utf16),
            pid: 7,
            kind: EventKind::Create,
            user: None,
        };
        let mut scratch = Scratch::new();
        let mut got = Vec::new();
        file.for_each_match(&ev, &mut scratch, |r| {
            got.push(r.id());
            ControlFlow::Continue(())
        });
        let mut want = matching_ids(
            &self.set,
            &RefEvent {
                pipe_name: pipe,
                image: img,
                pid: 7,
                kind: 1,
                user: None,
            },
        );
        want.sort_unstable();
        assert_eq!(got, want, "{pipe} / {img:?}: kernel vs reference");
        (got, scratch.scans())
    }
}

/// SigmaHQ's PsExec rule shape: a name test and image filters beside it.
fn psexec() -> Rule {
    rule(
        1,
        Cond::And(vec![
            name(Matcher::Exact("\\PSEXESVC".into())),
            Cond::Or(vec![
                image(contains(":\\Users\\Public\\")),
                image(contains("\\AppData\\Local\\Temp\\")),
                image(contains("\\Downloads\\")),
            ]),
        ]),
    )
}

#[test]
fn a_name_gate_with_an_image_filter_scans_the_image_only_for_candidates() {
    let c = Compiled::new(vec![psexec()]);
    assert!(c.image_is_lazy(), "the image filter made the image eager");
    // The rule gates on its name, not on an image literal.
    let file = c.file();
    let gates: Vec<FieldId> = file
        .rules()
        .filter(|r| r.id() == 1)
        .flat_map(|r| r.atoms())
        .filter(|a| a.gate())
        .map(|a| a.field())
        .collect();
    assert_eq!(gates, [FieldId::PIPE_NAME]);
    assert_eq!(file.always_count(), 0);
    // A candidate: the image is scanned once, and decides.
    assert_eq!(
        c.run("\\PSEXESVC", Some("C:\\Users\\Public\\p.exe")),
        (vec![1], 2)
    );
    assert_eq!(
        c.run("\\psexesvc", Some("C:\\x\\AppData\\Local\\Temp\\a.exe")),
        (vec![1], 2)
    );
    assert_eq!(
        c.run("\\PSEXESVC", Some("C:\\Windows\\PSEXESVC.exe")),
        (vec![], 2)
    );
    // No image: the filter is false, nothing to scan.
    assert_eq!(c.run("\\PSEXESVC", None), (vec![], 1));
}

#[test]
fn an_event_whose_name_makes_no_candidate_never_scans_its_image() {
    let c = Compiled::new(vec![
        psexec(),
        rule(
            2,
            Cond::And(vec![
                name(Matcher::Prefix("\\PSHost".into())),
                Cond::Not(Box::new(image(contains("\\WindowsPowerShell\\")))),
            ]),
        ),
    ]);
    assert!(c.image_is_lazy());
    // The image would satisfy rule 1's filter, but no name gate fires.
    for pipe in ["\\spoolss", "\\PSEXESVC-x", "\\xPSHost", "\\"] {
        assert_eq!(
            c.run(pipe, Some("C:\\Users\\Public\\p.exe")),
            (vec![], 1),
            "{pipe}"
        );
    }
}

#[test]
fn a_false_selection_skips_its_not_image_filter_in_an_always_rule() {
    // Alone, the rule's one anchored name literal is compared directly and
    // the rule is evaluated on every event; `sel and not filter` with `sel`
    // false is decided without the filter, so the image is not scanned.
    let c = Compiled::bare(vec![rule(
        2,
        Cond::And(vec![
            name(Matcher::Prefix("\\PSHost".into())),
            Cond::Not(Box::new(image(contains("\\WindowsPowerShell\\")))),
        ]),
    )]);
    assert_eq!(c.file().always_count(), 1);
    assert!(c.image_is_lazy());
    assert_eq!(c.run("\\spoolss", Some("C:\\Temp\\a.exe")), (vec![], 0));
    assert_eq!(c.run("\\PSHost1", Some("C:\\Temp\\a.exe")), (vec![2], 1));
}

#[test]
fn a_not_image_filter_holds_when_the_image_is_absent() {
    // SigmaHQ's PowerShell host rule shape: a name and `not` image filters.
    let c = Compiled::new(vec![rule(
        3,
        Cond::And(vec![
            name(Matcher::Prefix("\\PSHost".into())),
            Cond::Not(Box::new(Cond::Or(vec![
                image(contains(":\\Windows\\System32\\WindowsPowerShell\\")),
                image(contains("\\pwsh.exe")),
            ]))),
        ]),
    )]);
    assert!(c.image_is_lazy());
    // No image: `contains` on a missing image is false, its `not` true.
    assert_eq!(c.run("\\PSHost.123", None), (vec![3], 1));
    assert_eq!(
        c.run(
            "\\PSHost.123",
            Some("C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe")
        ),
        (vec![], 2)
    );
    assert_eq!(
        c.run("\\PSHost.123", Some("C:\\Temp\\evil.exe")),
        (vec![3], 2)
    );
    assert_eq!(c.run("\\other", Some("C:\\Temp\\evil.exe")), (vec![], 1));
}

#[test]
fn rules_with_only_image_literals_still_fire() {
    // SigmaHQ's WMI consumer rule: an image suffix alone (compared directly,
    // the rule evaluated on every event), and rules gated on image
    // `contains` literals (the image then scanned on every event).
    let only_suffix = Compiled::new(vec![
        psexec(),
        rule(4, image(Matcher::Suffix("\\scrcons.exe".into()))),
    ]);
    assert!(only_suffix.image_is_lazy());
    assert_eq!(only_suffix.file().always_count(), 1);
    assert_eq!(
        only_suffix.run("\\any", Some("C:\\Windows\\System32\\scrcons.exe")),
        (vec![4], 1)
    );
    assert_eq!(
        only_suffix.run("\\any", Some("C:\\Windows\\System32\\svchost.exe")),
        (vec![], 1)
    );
    assert_eq!(only_suffix.run("\\any", None), (vec![], 1));

    let only_contains = Compiled::new(vec![psexec(), rule(5, image(contains("\\Temp\\mimi")))]);
    assert!(
        !only_contains.image_is_lazy(),
        "an image gate needs an eager scan"
    );
    assert_eq!(
        only_contains.run("\\any", Some("C:\\Windows\\Temp\\mimikatz.exe")),
        (vec![5], 2)
    );
    assert_eq!(
        only_contains.run("\\PSEXESVC", Some("C:\\Windows\\Temp\\mimikatz.exe")),
        (vec![5], 2)
    );
    assert_eq!(
        only_contains.run("\\PSEXESVC", Some("C:\\Users\\Public\\Temp\\mimi.exe")),
        (vec![1, 5], 2)
    );
}
