//! Matcher properties beyond the corpus: more hits than the scratch holds
//! (windowed rescans), priorities, unpaired surrogates, very long names.

use channel_parser::{parse, Capabilities, Event, EventKind, Scratch, Text};
use pipe_compiler::model::{
    Action, Atom, Cond, FieldId, GlobTok, Matcher, Rule, RuleSet, Severity, SourceLoc,
};
use pipe_compiler::{compile, AlignedBytes, CompileOptions};
use std::ops::ControlFlow;
use test_kit::reference::{matching_ids, RefEvent};

fn rule(id: u32, severity: Severity, action: Action, condition: Cond) -> Rule {
    Rule {
        id,
        name: format!("r{id}"),
        severity,
        action,
        condition,
        source: SourceLoc::default(),
        tests: vec![],
    }
}

fn name(m: Matcher) -> Cond {
    Cond::Atom(Atom {
        field: FieldId::PIPE_NAME,
        matcher: m,
    })
}

/// Rule ids the kernel matcher reports for a UTF-16 pipe name, and the
/// number of scan windows it needed.
fn kernel_ids(set: &RuleSet, units: &[u16]) -> (Vec<u32>, u32) {
    let bytes = compile(set, &CompileOptions::default()).unwrap();
    let aligned = AlignedBytes::new(&bytes);
    let file = parse(aligned.as_slice(), &Capabilities::SENSOR).unwrap();
    let mut scratch = Scratch::new();
    let mut got = Vec::new();
    let ev = Event {
        pipe_name: Text::Utf16(units),
        image: None,
        pid: 1,
        kind: EventKind::Create,
        user: None,
    };
    file.for_each_match(&ev, &mut scratch, |r| {
        got.push(r.id());
        ControlFlow::Continue(())
    });
    (got, scratch.passes())
}

/// Kernel ids, reference ids, and scan windows for a name.
fn ids(set: &RuleSet, n: &str) -> (Vec<u32>, Vec<u32>, u32) {
    let units: Vec<u16> = n.encode_utf16().collect();
    let (got, passes) = kernel_ids(set, &units);
    let mut want = matching_ids(
        set,
        &RefEvent {
            pipe_name: n,
            image: None,
            pid: 1,
            kind: 1,
            user: None,
        },
    );
    want.sort_unstable();
    (got, want, passes)
}

#[test]
fn more_distinct_hits_than_the_scratch_holds_are_all_found() {
    // 700 rules of mixed kinds, one name containing every literal.
    let mut rules = Vec::new();
    let mut text = String::from("\\");
    for i in 0..700u32 {
        let lit = format!("<{i}>");
        text.push_str(&lit);
        let c = match i % 5 {
            0 => name(Matcher::Contains(lit)),
            1 => Cond::Not(Box::new(name(Matcher::Contains(lit)))),
            2 => Cond::And(vec![
                name(Matcher::Contains(lit.clone())),
                name(Matcher::Contains(format!("<{}>", i + 1))),
            ]),
            3 => name(Matcher::Glob(vec![
                GlobTok::Star,
                GlobTok::Lit(lit),
                GlobTok::One,
                GlobTok::Star,
            ])),
            _ => Cond::Or(vec![
                name(Matcher::Suffix(lit.clone())),
                name(Matcher::Prefix(format!("\\{lit}"))),
            ]),
        };
        rules.push(rule(i + 1, Severity::LOW, Action::ALERT, c));
    }
    let set = RuleSet { rules };
    let (got, want, passes) = ids(&set, &text);
    assert_eq!(got, want);
    assert!(got.len() > 400, "{}", got.len());
    assert!(
        passes > 1,
        "the name must overflow the scratch ({passes} pass)"
    );
    let (got, want, passes) = ids(&set, "\\<3><699>");
    assert_eq!(got, want);
    assert_eq!(passes, 1);
}

#[test]
fn best_match_prefers_block_then_severity_then_lower_index() {
    let c = || name(Matcher::Prefix("\\evil".into()));
    let set = RuleSet {
        rules: vec![
            rule(1, Severity::CRITICAL, Action::ALERT, c()),
            rule(2, Severity::LOW, Action::BLOCK, c()),
            rule(3, Severity::HIGH, Action::BLOCK, c()),
            rule(4, Severity::HIGH, Action::BLOCK, c()),
        ],
    };
    let bytes = compile(&set, &CompileOptions::default()).unwrap();
    let aligned = AlignedBytes::new(&bytes);
    let file = parse(aligned.as_slice(), &Capabilities::SENSOR).unwrap();
    let mut scratch = Scratch::new();
    let v = file.evaluate(
        &Event {
            pipe_name: Text::Utf8("\\EVIL1"),
            image: None,
            pid: 1,
            kind: EventKind::Create,
            user: None,
        },
        &mut scratch,
    );
    assert_eq!(v.matched, 4);
    assert_eq!(v.best.unwrap().id(), 3);
    assert!(v.blocks());
}

#[test]
fn unpaired_surrogates_match_only_wildcards() {
    let set = RuleSet {
        rules: vec![
            rule(
                1,
                Severity::LOW,
                Action::ALERT,
                name(Matcher::Glob(vec![
                    GlobTok::Lit("\\a".into()),
                    GlobTok::One,
                    GlobTok::Lit("b".into()),
                ])),
            ),
            rule(
                2,
                Severity::LOW,
                Action::ALERT,
                name(Matcher::Exact("\\ab".into())),
            ),
            rule(
                3,
                Severity::LOW,
                Action::ALERT,
                name(Matcher::Prefix("\\a".into())),
            ),
        ],
    };
    // "\a" + lone high surrogate + "b": the surrogate is one character (U+FFFD).
    let units = [0x5C, 0x61, 0xD800, 0x62];
    let (got, _) = kernel_ids(&set, &units);
    assert_eq!(got, vec![1, 3]);
    // A literal cannot hold U+FFFD: the compiler refuses it.
    let bad = RuleSet {
        rules: vec![rule(
            1,
            Severity::LOW,
            Action::ALERT,
            name(Matcher::Exact("\\a\u{FFFD}b".into())),
        )],
    };
    assert!(compile(&bad, &CompileOptions::default()).is_err());
}

#[test]
fn very_long_names_are_matched_in_full() {
    let set = RuleSet {
        rules: vec![
            rule(
                1,
                Severity::LOW,
                Action::ALERT,
                name(Matcher::Suffix("tail".into())),
            ),
            rule(
                2,
                Severity::LOW,
                Action::ALERT,
                name(Matcher::Glob(vec![
                    GlobTok::Lit("\\".into()),
                    GlobTok::Star,
                    GlobTok::Lit("mid".into()),
                    GlobTok::Star,
                    GlobTok::Lit("tail".into()),
                ])),
            ),
        ],
    };
    // Longer than any UNICODE_STRING (32,767 units): matched in full, no truncation.
    let long = format!("\\{}mid{}tail", "x".repeat(40_000), "y".repeat(40_000));
    let (got, want, _) = ids(&set, &long);
    assert_eq!(got, vec![1, 2]);
    assert_eq!(got, want);
}

#[test]
fn root_transitions_for_every_kind_of_first_byte() {
    // The matcher finds the root's child through a 256-bit set of its
    // labels (two popcounts): literals starting in each 64-byte range that
    // UTF-8 lead bytes use, next to each other, plus names that walk in and
    // out of the root, must agree with the reference evaluator.
    let lits = [
        "!bang",
        "#hash",
        "0zero",
        "9nine",
        "?q",
        "@at",
        "Aa",
        "Zz",
        "[br",
        "_u",
        "~t",
        "ä-umlaut",
        "ÿy",
        "€euro",
        "中文",
        "😀smile",
        "\u{7f}del",
    ];
    let set = RuleSet {
        rules: lits
            .iter()
            .enumerate()
            .map(|(i, l)| {
                rule(
                    i as u32 + 1,
                    Severity::LOW,
                    Action::ALERT,
                    name(Matcher::Contains((*l).into())),
                )
            })
            .collect(),
    };
    for n in [
        "\\!bang#hash",
        "\\xx0zero9nine?q@at",
        "\\AA zz [BR _U ~T",
        "\\Ä-UMLAUTÿY€EURO",
        "\\中文😀SMILE\u{7f}DEL",
        "\\nothing here at all",
        "\\ä-umlau€eur中😀smil",
        "",
    ] {
        let (got, want, _) = ids(&set, n);
        assert_eq!(got, want, "{n:?}");
    }
    let (got, _, _) = ids(&set, "\\!bang#hash 0zero ä-umlaut 😀smile");
    assert_eq!(got, vec![1, 2, 3, 12, 16]);
}
