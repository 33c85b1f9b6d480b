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

/// Rule ids for `n` fed as UTF-16 and as UTF-8, checked against the
/// reference evaluator; returns the UTF-16 ids.
fn ids_both(set: &RuleSet, n: &str) -> Vec<u32> {
    let (got, want, _) = ids(set, n);
    assert_eq!(got, want, "UTF-16 {n:?}");
    let bytes = compile(set, &CompileOptions::default()).unwrap();
    let aligned = AlignedBytes::new(&bytes);
    let file = parse(aligned.as_slice(), &Capabilities::SENSOR).unwrap();
    let mut scratch = Scratch::new();
    let mut got8 = Vec::new();
    let ev = Event {
        pipe_name: Text::Utf8(n),
        image: None,
        pid: 1,
        kind: EventKind::Create,
        user: None,
    };
    file.for_each_match(&ev, &mut scratch, |r| {
        got8.push(r.id());
        ControlFlow::Continue(())
    });
    assert_eq!(got8, want, "UTF-8 {n:?}");
    got
}

fn contains_rules(lits: &[&str]) -> RuleSet {
    RuleSet {
        rules: lits
            .iter()
            .enumerate()
            .map(|(i, l)| {
                let m = match l.strip_prefix('^') {
                    Some(p) => Matcher::Prefix(p.into()),
                    None => match l.strip_suffix('$') {
                        Some(s) => Matcher::Suffix(s.into()),
                        None => Matcher::Contains((*l).into()),
                    },
                };
                rule(i as u32 + 1, Severity::LOW, Action::ALERT, name(m))
            })
            .collect(),
    }
}

#[test]
fn root_skip_stops_at_a_start_unit_at_either_end() {
    // The scan skips the units that leave no trace in the root; a literal
    // starting at the first unit or ending at the last must still be seen.
    let set = contains_rules(&["AB", "^\\Q", "Z$", "YZ"]);
    assert_eq!(ids_both(&set, "ab"), vec![1]);
    assert_eq!(ids_both(&set, "\\qxx"), vec![2]);
    assert_eq!(ids_both(&set, "xxxxz"), vec![3]);
    assert_eq!(ids_both(&set, "xxxyz"), vec![3, 4]);
    assert_eq!(ids_both(&set, "abxxxxxxyz"), vec![1, 3, 4]);
    // A start unit that does not complete a literal, then the root again.
    assert_eq!(ids_both(&set, "axaxab"), vec![1]);
    assert_eq!(ids_both(&set, "a"), Vec::<u32>::new());
}

#[test]
fn root_skip_hands_a_non_ascii_unit_to_the_character_path() {
    // Non-ASCII units inside a run of root units: the skip loop stops on
    // them (they are not in the ASCII start set), the character path folds
    // them, and the scan goes on.
    let set = contains_rules(&["ÄB", "€", "AB"]);
    assert_eq!(ids_both(&set, "xxäbxx"), vec![1]);
    assert_eq!(ids_both(&set, "xx€xx"), vec![2]);
    assert_eq!(ids_both(&set, "xxéxxabxx"), vec![3]);
    assert_eq!(ids_both(&set, "中文ab"), vec![3]);
    assert_eq!(ids_both(&set, "ab😀"), vec![3]);
    // An unpaired surrogate in a root run.
    let units: Vec<u16> = "xx"
        .encode_utf16()
        .chain([0xD800])
        .chain("xab".encode_utf16())
        .collect();
    assert_eq!(kernel_ids(&set, &units).0, vec![3]);
}

#[test]
fn a_name_of_root_units_only_reports_nothing() {
    let set = contains_rules(&["AB", "CD$", "^EF"]);
    for n in [
        "",
        "x",
        "\\xyxyxyxyxyxyxyxyxyxyxyxyxyxyxyxyxyxyxyxyxyx",
        "\\ \\ \\",
    ] {
        assert_eq!(ids_both(&set, n), Vec::<u32>::new(), "{n:?}");
    }
}

#[test]
fn root_skip_set_holds_both_cases_of_a_folded_start() {
    // Literals are stored folded (upper case); only the lower-case form
    // occurs in the names, so the start set must hold it through the fold.
    let set = contains_rules(&["PIPE", "^\\MOJO", "X1$", "_Z"]);
    assert_eq!(ids_both(&set, "\\mojo.pipe"), vec![1, 2]);
    assert_eq!(ids_both(&set, "\\qqqpipeqqq"), vec![1]);
    assert_eq!(ids_both(&set, "qqq_zqqqx1"), vec![3, 4]);
    assert_eq!(ids_both(&set, "qqq_Zqqq"), vec![4]);
}

#[test]
fn root_skip_after_sparse_states_fall_back_to_the_root() {
    // Enough long literals that the deeper states are sparse: a name that
    // follows a literal far, diverges into root units, and then holds
    // another literal must agree with the reference.
    let lits: Vec<String> = (0..80u32)
        .map(|i| {
            let mut s = String::new();
            let mut x = i.wrapping_mul(2_654_435_761).wrapping_add(12_345);
            for _ in 0..24 {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                s.push(char::from(
                    b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"[(x % 36) as usize],
                ));
            }
            s
        })
        .collect();
    let refs: Vec<&str> = lits.iter().map(String::as_str).collect();
    let set = contains_rules(&refs);
    let file_states = {
        let bytes = compile(&set, &CompileOptions::default()).unwrap();
        let aligned = AlignedBytes::new(&bytes);
        let file = parse(aligned.as_slice(), &Capabilities::SENSOR).unwrap();
        let shape = file.prefilter_shape().next().map(|(_, s, d, _, _)| (s, d));
        shape
    };
    let (states, dense) = file_states.unwrap();
    assert!(
        dense < states,
        "the test needs sparse states ({dense} of {states})"
    );
    for (i, l) in lits.iter().enumerate().take(20) {
        let lower = l.to_ascii_lowercase();
        let other = &lits[(i + 1) % lits.len()];
        for n in [
            format!("\\{}-_-_-{}", &lower[..20], other),
            format!("{}..{}", &l[..23], &lower[1..]),
            l.clone(),
            format!("--{}--", &lower[..12]),
        ] {
            ids_both(&set, &n);
        }
    }
}

/// The character-DFA runner on every kind of table (narrow and wide
/// targets, dense and sparse rows), on names of every length up to a few
/// blocks of four units (the runner's ASCII loop takes four per
/// iteration), with non-ASCII characters between ASCII runs and matches
/// that end at either end: UTF-16 and UTF-8 against the reference.
#[test]
fn regex_runs_of_every_table_kind_agree_with_the_reference() {
    use pipe_compiler::automata::dfa::build;
    let patterns: &[(&str, bool)] = &[
        (r"[ab]*a[ab]{8}", false),
        (r"^\\x[0-9a-f]{2,6}$", true),
        (r"a[-_.]\d{2,3}", true),
        (r"(?:ab|ba)_[a-z]{2}", true),
        (r"ä.b", true),
        (r"^\\(?:alpha|bravo|charlie|delta|echo)[0-9]{2}", true),
        (r"^\\[ab]{1,300}x", false),
        (r"^\\(?:alpha|bravo|charlie|delta|echo)[0-9]{1,300}_", true),
        (r"x\d\d$", false),
    ];
    let mut kinds = std::collections::BTreeSet::new();
    for &(p, ci) in patterns {
        let d = build(p, ci, 65_536).unwrap();
        kinds.insert((d.wide(), d.sparse()));
    }
    assert_eq!(
        kinds.len(),
        4,
        "the patterns must cover every kind of table: {kinds:?}"
    );
    let set = RuleSet {
        rules: patterns
            .iter()
            .enumerate()
            .map(|(i, &(pattern, case_insensitive))| {
                rule(
                    i as u32 + 1,
                    Severity::MEDIUM,
                    Action::ALERT,
                    name(Matcher::Regex {
                        pattern: pattern.to_string(),
                        case_insensitive,
                    }),
                )
            })
            .collect(),
    };
    let bytes = compile(&set, &CompileOptions::default()).unwrap();
    let aligned = AlignedBytes::new(&bytes);
    let file = parse(aligned.as_slice(), &Capabilities::SENSOR).unwrap();
    let mut scratch = Scratch::new();
    let alphabet = [
        "a", "b", "A", "B", "\\", "x", "X", "0", "7", "_", "-", "ä", "Ä", "😀", "٣", "f", "alpha",
        "Echo",
    ];
    let mut next = test_kit::xorshift(0x9e37_79b9);
    let mut matched = 0usize;
    for round in 0..4_000 {
        let len = round % 14;
        let mut n = String::new();
        match next(3) {
            0 => n.push_str("\\x"),
            1 => n.push('\\'),
            _ => {}
        }
        for _ in 0..len {
            n.push_str(alphabet[next(alphabet.len())]);
        }
        let mut want = matching_ids(
            &set,
            &RefEvent {
                pipe_name: &n,
                image: None,
                pid: 1,
                kind: 1,
                user: None,
            },
        );
        want.sort_unstable();
        matched += usize::from(!want.is_empty());
        let units: Vec<u16> = n.encode_utf16().collect();
        for text in [Text::Utf16(&units), Text::Utf8(&n)] {
            let ev = Event {
                pipe_name: text,
                image: None,
                pid: 1,
                kind: EventKind::Create,
                user: None,
            };
            let mut got = Vec::new();
            file.for_each_match(&ev, &mut scratch, |r| {
                got.push(r.id());
                ControlFlow::Continue(())
            });
            assert_eq!(got, want, "{n:?} as {text:?}");
        }
    }
    assert!(matched > 200, "only {matched} names matched");
}
