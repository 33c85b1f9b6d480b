//! Sigma value semantics checked with the reference evaluator: a table of
//! pipe names written for this project (wildcards, escapes, case folding,
//! modifiers, conditions).

use std::path::Path;

use pipe_compiler::import::load_yaml;

mod tables;
use pipe_compiler::model::Rule;
use test_kit::reference::{eval_rule, RefEvent};

/// A Sigma rule around `detection` (indented by 4 under `detection:`).
fn sigma(detection: &str) -> Rule {
    let text = format!(
        "title: t\nid: 01234567-89ab-cdef-0123-456789abcdef\nlogsource:\n  category: pipe_created\n  product: windows\nlevel: low\ndetection:\n{detection}"
    );
    match load_yaml(Path::new("table.yml"), &text) {
        Ok(mut rules) => rules.remove(0),
        Err(e) => panic!("{text}\n{e:?}"),
    }
}

fn matches(rule: &Rule, name: &str, image: Option<&str>) -> bool {
    eval_rule(
        rule,
        &RefEvent {
            pipe_name: name,
            image,
            pid: 1,
            kind: 1,
        },
    )
}

#[test]
fn sigma_value_table() {
    let mut failures = Vec::new();
    for (key, value, name, expected) in tables::SIGMA_TABLE {
        let rule = sigma(&format!(
            "    sel:\n        {key}: {value}\n    condition: sel\n"
        ));
        let got = matches(&rule, name, None);
        if got != *expected {
            failures.push(format!(
                "{key}: {value} vs {name:?}: expected {expected}, got {got}"
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// (pipe name, image, expected)
type Case<'a> = (&'a str, Option<&'a str>, bool);

#[test]
fn conditions() {
    let det = "    sel_a:\n        PipeName|startswith: 'a'\n    sel_b:\n        PipeName|endswith: 'b'\n    filter_x:\n        PipeName|contains: 'x'\n    filter_y:\n        Image|endswith: '\\y.exe'\n";
    let cases: &[(&str, &[Case<'_>])] = &[
        (
            "1 of sel_*",
            &[("a", None, true), ("zb", None, true), ("z", None, false)],
        ),
        (
            "all of sel_*",
            &[("ab", None, true), ("a", None, false), ("b", None, false)],
        ),
        (
            "1 of sel_* and not 1 of filter*",
            &[
                ("ab", None, true),
                ("axb", None, false),
                ("ab", Some(r"C:\y.exe"), false),
                ("ab", Some(r"C:\z.exe"), true),
            ],
        ),
        (
            "sel_a and not (filter_x or filter_y)",
            &[
                ("a", None, true),
                ("ax", None, false),
                ("a", Some(r"C:\Y.EXE"), false),
            ],
        ),
        ("not sel_a", &[("a", None, false), ("b", None, true)]),
        ("not not sel_a", &[("a", None, true)]),
        (
            "sel_a or sel_b and filter_x",
            &[("a", None, true), ("zb", None, false), ("zxb", None, true)],
        ),
        (
            "(sel_a or sel_b) and filter_x",
            &[("a", None, false), ("ax", None, true)],
        ),
        (
            "1 of them",
            &[("q", Some(r"C:\y.exe"), true), ("q", None, false)],
        ),
        (
            "all of them",
            &[("axb", Some(r"C:\y.exe"), true), ("axb", None, false)],
        ),
        (
            "all of filter_*",
            &[("x", Some(r"c:\Y.exe"), true), ("x", None, false)],
        ),
    ];
    for (cond, events) in cases {
        let rule = sigma(&format!("{det}    condition: {cond}\n"));
        for (name, image, expected) in *events {
            assert_eq!(
                matches(&rule, name, *image),
                *expected,
                "condition `{cond}` on {name:?} image {image:?}"
            );
        }
    }
}

#[test]
fn selection_shapes() {
    // A mapping is AND of its fields; a list of mappings is OR.
    let and = sigma("    sel:\n        PipeName|startswith: '\\a'\n        Image|endswith: '\\x.exe'\n    condition: sel\n");
    assert!(matches(&and, r"\ab", Some(r"C:\x.exe")));
    assert!(!matches(&and, r"\ab", Some(r"C:\y.exe")));
    assert!(
        !matches(&and, r"\ab", None),
        "an atom on a missing image is false"
    );
    let or = sigma("    sel:\n        - PipeName|startswith: '\\a'\n        - Image|endswith: '\\x.exe'\n    condition: sel\n");
    assert!(matches(&or, r"\zz", Some(r"C:\x.exe")));
    assert!(matches(&or, r"\ab", None));
    assert!(!matches(&or, r"\zz", None));
    // `null`: the field is absent or empty.
    let null = sigma("    sel:\n        Image: null\n    condition: sel\n");
    assert!(matches(&null, "x", None));
    assert!(matches(&null, "x", Some("")));
    assert!(!matches(&null, "x", Some("a")));
    // `exists`.
    let ex = sigma("    sel:\n        Image|exists: true\n    condition: sel\n");
    assert!(matches(&ex, "x", Some("")));
    assert!(!matches(&ex, "x", None));
    let nex = sigma("    sel:\n        Image|exists: false\n    condition: sel\n");
    assert!(matches(&nex, "x", None));
    // A condition list is any of its conditions (Sigma 1.0 form).
    let list = sigma("    a:\n        PipeName: 'a'\n    b:\n        PipeName: 'b'\n    condition:\n        - a\n        - b\n");
    assert!(matches(&list, "a", None) && matches(&list, "B", None) && !matches(&list, "c", None));
}
