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
            user: None,
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
        // `N of`: at least N of the selections the pattern names.
        (
            "2 of them",
            &[
                ("ab", None, true),
                ("a", Some(r"C:\y.exe"), true),
                ("x", Some(r"C:\y.exe"), true),
                ("axb", None, true),
                ("a", None, false),
                ("q", Some(r"C:\y.exe"), false),
            ],
        ),
        (
            "3 of them",
            &[
                ("axb", None, true),
                ("ab", Some(r"C:\y.exe"), true),
                ("ab", None, false),
                ("ax", Some(r"C:\y.exe"), true),
                ("a", Some(r"C:\y.exe"), false),
            ],
        ),
        (
            "4 of them",
            &[("axb", Some(r"C:\y.exe"), true), ("axb", None, false)],
        ),
        (
            "2 of sel_* and not 2 of filter_*",
            &[
                ("ab", None, true),
                ("axb", None, true),
                ("axb", Some(r"C:\y.exe"), false),
                ("a", None, false),
            ],
        ),
        ("any of sel_*", &[("a", None, true), ("z", None, false)]),
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

#[test]
fn n_of_limits_and_errors() {
    let det = "    sel_a:\n        PipeName: 'a'\n    sel_b:\n        PipeName: 'b'\n";
    for (cond, msg) in [
        (
            "3 of sel_*",
            "`3 of sel_*`: asks for 3 selections but the pattern matches only 2",
        ),
        ("0 of sel_*", "`0 of` is not supported"),
        ("two of sel_*", "`two of` is not supported"),
    ] {
        let text = format!(
            "title: t\nid: 01234567-89ab-cdef-0123-456789abcdef\nlogsource:\n  category: pipe_created\ndetection:\n{det}    condition: {cond}\n"
        );
        let e = load_yaml(Path::new("n.yml"), &text).unwrap_err();
        assert!(e[0].message.contains(msg), "{cond}: {e:?}");
        assert_eq!(e[0].loc.line, 10, "{cond}: the condition's line");
    }
    // C(12, 6) = 924 conjunctions: over the documented limit of 64.
    let mut many = String::new();
    for i in 0..12 {
        many.push_str(&format!("    s{i:02}:\n        PipeName: 'p{i}'\n"));
    }
    let text = format!(
        "title: t\nid: 01234567-89ab-cdef-0123-456789abcdef\nlogsource:\n  category: pipe_created\ndetection:\n{many}    condition: 6 of s*\n"
    );
    let e = load_yaml(Path::new("n.yml"), &text).unwrap_err();
    assert!(e[0].message.contains("more than 64 combinations"), "{e:?}");
    // C(7, 3) = 35 is within it.
    let mut seven = String::new();
    for i in 0..7 {
        seven.push_str(&format!("    s{i}:\n        PipeName|contains: 'p{i}'\n"));
    }
    let text = format!(
        "title: t\nid: 01234567-89ab-cdef-0123-456789abcdef\nlogsource:\n  category: pipe_created\ndetection:\n{seven}    condition: 3 of s*\n"
    );
    let rule = load_yaml(Path::new("n.yml"), &text).unwrap().remove(0);
    assert!(matches(&rule, "p0p3p6", None));
    assert!(matches(&rule, "p6p5p4p3", None));
    assert!(!matches(&rule, "p0p6", None));
    assert!(!matches(&rule, "p7p8p9", None));
}

#[test]
fn expand_with_placeholder_values() {
    use pipe_compiler::import::{load_yaml_with, ImportOptions, Placeholders};
    let values = Placeholders::parse(
        Path::new("values.yml"),
        "Servers: ['\\srv-??', '\\dc*']\nSuffix: ['_a', '_b']\n",
    )
    .unwrap();
    let opts = ImportOptions {
        placeholders: Some(values),
        ..ImportOptions::default()
    };
    let rule = |key: &str, value: &str| {
        let text = format!(
            "title: t\nid: 01234567-89ab-cdef-0123-456789abcdef\nlogsource:\n  category: pipe_created\ndetection:\n    sel:\n        {key}: {value}\n    condition: sel\n"
        );
        load_yaml_with(Path::new("e.yml"), &text, &opts)
            .unwrap_or_else(|e| panic!("{e:?}"))
            .remove(0)
    };
    let r = rule("PipeName|expand", "'%Servers%%Suffix%'");
    for (name, want) in [
        (r"\srv-01_a", true),
        (r"\SRV-xy_b", true),
        (r"\dc_a", true),
        (r"\dc01\x_b", true),
        (r"\srv-1_a", false),
        (r"\srv-01_c", false),
        (r"\web_a", false),
    ] {
        assert_eq!(matches(&r, name, None), want, "{name}");
    }
    let r = rule("PipeName|expand|contains|neq", "'%Suffix%'");
    assert!(!matches(&r, r"\x_a_y", None));
    assert!(matches(&r, r"\x_c", None));
    // Without `expand`, `%name%` is literal text.
    let r = rule("PipeName", "'%Suffix%'");
    assert!(matches(&r, "%suffix%", None));
    assert!(!matches(&r, "_a", None));
    // An escaped percent sign is plain text.
    let r = rule("PipeName|expand", r"'\%x%Suffix%'");
    assert!(matches(&r, "%x_a", None));
}
