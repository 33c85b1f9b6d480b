//! Each limit, at exactly the limit (accepted) and one below what the file
//! needs (rejected with `LimitExceeded` naming the limit, or the specific
//! variant for stack depth). The compiler refuses the same files.

use channel_format::Limits;
use channel_parser::{parse_with_limits, Capabilities, ParseError};
use pipe_compiler::model::{
    Action, Atom, Cond, FieldId, Matcher, Rule, RuleSet, Severity, SourceLoc,
};
use pipe_compiler::{compile, AlignedBytes, CompileErrorKind, CompileOptions};

fn rule(id: u32, name: &str, condition: Cond) -> Rule {
    Rule {
        id,
        name: name.into(),
        severity: Severity::LOW,
        action: Action::ALERT,
        condition,
        source: SourceLoc::default(),
        tests: vec![],
    }
}

fn lit(s: &str) -> Cond {
    Cond::Atom(Atom {
        field: FieldId::PIPE_NAME,
        matcher: Matcher::Contains(s.into()),
    })
}

fn set(rules: Vec<Rule>) -> RuleSet {
    RuleSet { rules }
}

/// Compiles with default limits, then checks `parse_with_limits` at `set_limit(needed)` (ok)
/// and `set_limit(needed - 1)` (rejected), and that the compiler refuses with the lower limit.
fn check(
    name: &str,
    rs: &RuleSet,
    needed: u32,
    set_limit: impl Fn(&mut Limits, u32),
    expect_kind: &str,
) {
    let bytes = compile(rs, &CompileOptions::default()).unwrap_or_else(|e| panic!("{name}: {e}"));
    let aligned = AlignedBytes::new(&bytes);
    let caps = Capabilities::SENSOR;
    let mut at = Limits::DEFAULT;
    set_limit(&mut at, needed);
    parse_with_limits(aligned.as_slice(), &caps, &at)
        .unwrap_or_else(|e| panic!("{name}: at the limit ({needed}) must be accepted: {e}"));
    let mut below = Limits::DEFAULT;
    set_limit(&mut below, needed - 1);
    let err = parse_with_limits(aligned.as_slice(), &caps, &below).expect_err(name);
    assert_eq!(err.kind(), expect_kind, "{name}: {err}");
    if let ParseError::LimitExceeded { found, limit, .. } = err {
        assert_eq!((found, limit), (needed, needed - 1), "{name}");
    }
    match compile(
        rs,
        &CompileOptions {
            limits: below,
            ..CompileOptions::default()
        },
    ) {
        Err(e) => assert_eq!(e.kind, CompileErrorKind::LimitExceeded, "{name}: {e}"),
        // A literal longer than the prefilter allows is compiled as a glob
        // gated by a shorter piece of it: the file fits the lower limit.
        Ok(b) if name == "literal length" => {
            let aligned = AlignedBytes::new(&b);
            parse_with_limits(aligned.as_slice(), &caps, &below)
                .unwrap_or_else(|e| panic!("{name}: fallback must fit: {e}"));
        }
        Ok(_) => panic!("{name}: the compiler must refuse a rule set above the limit"),
    }
}

#[test]
fn each_limit_at_and_past_the_boundary() {
    let three = set(vec![
        rule(1, "a", lit("x")),
        rule(2, "b", lit("y")),
        rule(3, "c", lit("z")),
    ]);
    check("rules", &three, 3, |l, v| l.max_rules = v, "limit-exceeded");
    check("atoms", &three, 3, |l, v| l.max_atoms = v, "limit-exceeded");

    let wide = set(vec![rule(
        1,
        "w",
        Cond::Or((0..10).map(|i| lit(&format!("lit{i}"))).collect()),
    )]);
    check(
        "atoms per rule",
        &wide,
        10,
        |l, v| l.max_atoms_per_rule = v,
        "limit-exceeded",
    );
    // 10 atoms: 5 bytes each, 9 ORs.
    check(
        "program length",
        &wide,
        59,
        |l, v| l.max_program_len = v,
        "limit-exceeded",
    );

    let name = "n".repeat(100);
    check(
        "string length",
        &set(vec![rule(1, &name, lit("x"))]),
        100,
        |l, v| l.max_string_len = v,
        "limit-exceeded",
    );
    let long = "L".repeat(40);
    check(
        "literal length",
        &set(vec![rule(1, "l", lit(&long))]),
        40,
        |l, v| l.max_literal_len = v,
        "limit-exceeded",
    );

    let fields = set(vec![rule(
        1,
        "f",
        Cond::And(vec![
            lit("x"),
            Cond::Atom(Atom {
                field: FieldId::IMAGE,
                matcher: Matcher::Suffix("a.exe".into()),
            }),
            Cond::Atom(Atom {
                field: FieldId::PROCESS_ID,
                matcher: Matcher::NumEq(4),
            }),
        ]),
    )]);
    check(
        "fields per rule",
        &fields,
        3,
        |l, v| l.max_fields_per_rule = v,
        "limit-exceeded",
    );

    let re = |id, p: &str| {
        rule(
            id,
            "r",
            Cond::Atom(Atom {
                field: FieldId::PIPE_NAME,
                matcher: Matcher::Regex {
                    pattern: p.into(),
                    case_insensitive: false,
                },
            }),
        )
    };
    let two_dfas = set(vec![re(1, "a[0-9]+b"), re(2, "c[0-9]+d")]);
    check(
        "dfa count",
        &two_dfas,
        2,
        |l, v| l.max_dfas = v,
        "limit-exceeded",
    );

    // Stack depth: ((((x or y) ...) nested to the right needs depth n+1.
    let mut c = lit("d0");
    for i in 1..8 {
        c = Cond::Or(vec![lit(&format!("d{i}")), c]);
    }
    check(
        "stack depth",
        &set(vec![rule(1, "deep", c)]),
        8,
        |l, v| l.max_stack_depth = v,
        "bad-program",
    );
}

#[test]
fn file_size_states_and_dfa_size_limits() {
    let rs = set(vec![rule(1, "a", lit("abc")), rule(2, "b", lit("abd"))]);
    let bytes = compile(&rs, &CompileOptions::default()).unwrap();
    let len = bytes.len() as u32;
    check(
        "file length",
        &rs,
        len,
        |l, v| l.max_file_len = v,
        "limit-exceeded",
    );
    // Trie: root, A, AB, ABC, ABD = 5 states.
    check(
        "prefilter states",
        &rs,
        5,
        |l, v| l.max_states = v,
        "limit-exceeded",
    );
    let re = set(vec![rule(
        1,
        "r",
        Cond::Atom(Atom {
            field: FieldId::PIPE_NAME,
            matcher: Matcher::Regex {
                pattern: "x[a-f]{3}y".into(),
                case_insensitive: false,
            },
        }),
    )]);
    // The DFA blob's length (entry 0), and every blob's (the DFA and its
    // range table) for the total.
    let (dfa_len, total) = dfa_lengths(&re);
    check(
        "dfa length",
        &re,
        dfa_len,
        |l, v| l.max_dfa_len = v,
        "limit-exceeded",
    );
    check(
        "total dfa length",
        &re,
        total,
        |l, v| l.max_dfa_total = v,
        "limit-exceeded",
    );
    // Two DFAs sharing one range table.
    let two = set(vec![re_rule(1, "x[a-f]{3}y"), re_rule(2, "z[0-9]{4}w")]);
    let (_, total) = dfa_lengths(&two);
    check(
        "total dfa length, two DFAs",
        &two,
        total,
        |l, v| l.max_dfa_total = v,
        "limit-exceeded",
    );
}

fn re_rule(id: u32, pattern: &str) -> Rule {
    rule(
        id,
        "r",
        Cond::Atom(Atom {
            field: FieldId::PIPE_NAME,
            matcher: Matcher::Regex {
                pattern: pattern.into(),
                case_insensitive: false,
            },
        }),
    )
}

/// The length of DFA 0's blob and of every DFAS blob together (DFAs and
/// range tables), read through the format's records.
fn dfa_lengths(rs: &RuleSet) -> (u32, u32) {
    use channel_format::{dfa_table, DfaEntryRecord, DfaTableRecord, SectionKind};
    let b = compile(rs, &CompileOptions::default()).unwrap();
    let mut parts = test_kit::malformed::Parts::of(&b);
    let body = parts.body(SectionKind::DFAS);
    let t = DfaTableRecord::read(body).unwrap();
    let entries = &body[dfa_table::LEN..];
    let lens: Vec<u32> = (0..(t.count + t.range_table_count) as usize)
        .map(|i| DfaEntryRecord::read_nth(entries, i).unwrap().len)
        .collect();
    assert!(t.count >= 1 && t.range_table_count >= 1);
    (lens[0], lens.iter().sum())
}

/// Over the total DFA budget, the compiler names the largest DFAs (their
/// rules, sources and sizes, largest first) and how to shrink them.
#[test]
fn total_dfa_budget_error_names_the_largest_dfas() {
    let rules: Vec<Rule> = (1..=6)
        .map(|i| {
            let mut r = re_rule(i, &format!("p{i}[a-z]{{{}}}q", i * 3));
            r.name = format!("regex {i}");
            r
        })
        .collect();
    let rs = set(rules);
    let (_, total) = dfa_lengths(&rs);
    let e = compile(
        &rs,
        &CompileOptions {
            limits: Limits {
                max_dfa_total: total - 1,
                ..Limits::DEFAULT
            },
            ..CompileOptions::default()
        },
    )
    .unwrap_err();
    assert_eq!(e.kind, CompileErrorKind::LimitExceeded, "{e}");
    let text = e.to_string();
    assert!(
        text.contains(&format!("take {total} bytes"))
            && text.contains(&format!("total DFA budget of {} bytes", total - 1))
            && text.contains("max_dfa_total")
            && text.contains("to shrink them"),
        "{text}"
    );
    // The five largest, largest first: rules 6, 5, 4, 3, 2 (not 1).
    let at = |needle: &str| {
        text.find(needle)
            .unwrap_or_else(|| panic!("{needle}: {text}"))
    };
    let order: Vec<usize> = (2..=6)
        .rev()
        .map(|i| at(&format!("rule {i} (regex {i})")))
        .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{text}");
    assert!(!text.contains("rule 1 (regex 1)"), "{text}");
}

#[test]
fn dfa_budget_error_names_the_rule() {
    let big = set(vec![rule(
        77,
        "exploding regex",
        Cond::Atom(Atom {
            field: FieldId::PIPE_NAME,
            matcher: Matcher::Regex {
                pattern: "[a-z]{1,40}x[a-z]{30}".into(),
                case_insensitive: true,
            },
        }),
    )]);
    let e = compile(&big, &CompileOptions::default()).unwrap_err();
    assert_eq!(e.kind, CompileErrorKind::LimitExceeded, "{e}");
    let text = e.to_string();
    assert!(
        text.contains("rule 77")
            && text.contains("exploding regex")
            && text.contains("DFA size budget"),
        "{text}"
    );
}

/// `max_atoms_per_rule` cannot be lifted past the matcher's scratch
/// (`channel_format::ATOMS_PER_RULE_CEILING`, 256 hits): a rule with 256 atoms
/// is accepted at any limit from 256 up, a rule with 257 is rejected even with
/// a limit of 1000 (the parser caps the limit as it caps the stack depth),
/// and the compiler refuses it the same way.
#[test]
fn atoms_per_rule_is_capped_at_the_scratch_size() {
    use channel_format::{AtomRecord, SectionKind, ATOMS_PER_RULE_CEILING};
    let ceiling = ATOMS_PER_RULE_CEILING;
    assert_eq!(ceiling as usize, channel_parser::SCRATCH_HITS);
    let wide = |n: u32| {
        set(vec![rule(
            1,
            "w",
            Cond::Or((0..n).map(|i| lit(&format!("atom{i:03}"))).collect()),
        )])
    };
    let lifted = |v: u32| Limits {
        max_atoms_per_rule: v,
        ..Limits::DEFAULT
    };
    let caps = Capabilities::SENSOR;

    // At the ceiling: accepted with the limit at it and above it.
    let bytes = compile(&wide(ceiling), &CompileOptions::default()).unwrap();
    let aligned = AlignedBytes::new(&bytes);
    for limit in [ceiling, ceiling + 1, 1000, u32::MAX] {
        let f = parse_with_limits(aligned.as_slice(), &caps, &lifted(limit))
            .unwrap_or_else(|e| panic!("{ceiling} atoms, limit {limit}: {e}"));
        assert_eq!(f.atom_count(), ceiling);
    }

    // One past it (a 257th atom appended to the rule): rejected whatever the
    // limit says, naming the ceiling.
    let mut parts = test_kit::malformed::Parts::of(&bytes);
    let atoms = parts.body(SectionKind::ATOMS);
    let last = AtomRecord::read_nth(atoms, ceiling as usize - 1).unwrap();
    atoms.extend_from_slice(&last.to_bytes());
    let past = parts.build();
    let aligned = AlignedBytes::new(&past);
    for limit in [ceiling, ceiling + 1, 1000, u32::MAX] {
        let Err(err) = parse_with_limits(aligned.as_slice(), &caps, &lifted(limit)) else {
            panic!("limit {limit}: a rule with 257 atoms was accepted");
        };
        match err {
            ParseError::LimitExceeded {
                what,
                found,
                limit: l,
                ..
            } => {
                assert_eq!(
                    (what, found, l),
                    ("atoms per rule", ceiling + 1, ceiling),
                    "limit {limit}"
                );
            }
            other => panic!("limit {limit}: expected LimitExceeded, got {other:?}"),
        }
    }

    // The compiler applies the same ceiling.
    for limit in [ceiling, 1000] {
        let e = compile(
            &wide(ceiling + 1),
            &CompileOptions {
                limits: lifted(limit),
                ..CompileOptions::default()
            },
        )
        .unwrap_err();
        assert_eq!(e.kind, CompileErrorKind::LimitExceeded, "{e}");
        assert!(e.to_string().contains("above the limit of 256"), "{e}");
    }
}
