//! The native format: the complete example of `docs/rules.md` imports and its
//! embedded test cases hold under the reference evaluator.

use std::path::Path;

use pipe_compiler::import::load_yaml;
use pipe_compiler::model::{Action, Matcher, Severity};
use test_kit::reference::{eval_rule, failing_cases, RefEvent};

const DOC: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/rules.md"));

/// The YAML block under "### Complete example", and its first line number in
/// the document.
fn example() -> (String, usize) {
    let start = DOC.find("### Complete example").expect("section");
    let fence = start + DOC[start..].find("```yaml\n").expect("yaml block") + "```yaml\n".len();
    let end = fence + DOC[fence..].find("```").expect("end of block");
    (
        DOC[fence..end].to_string(),
        DOC[..fence].lines().count() + 1,
    )
}

#[test]
fn documented_example_imports_and_its_tests_pass() {
    // Padded so that positions are those of docs/rules.md.
    let (yaml, first_line) = example();
    let padded = format!("{}{yaml}", "\n".repeat(first_line - 1));
    let rules = load_yaml(Path::new("docs/rules.md"), &padded).unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(
        rules.iter().map(|r| r.id).collect::<Vec<_>>(),
        vec![1001, 1002, 0x2001]
    );
    assert_eq!(rules[0].severity, Severity::CRITICAL);
    assert_eq!(rules[1].action, Action::BLOCK);
    assert_eq!(rules[2].action, Action::ALERT, "default action");
    let cases: usize = rules.iter().map(|r| r.tests.len()).sum();
    assert_eq!(cases, 15);
    for r in &rules {
        let failing = failing_cases(r);
        assert!(
            failing.is_empty(),
            "rule {} `{}`: failing cases {failing:#?}",
            r.id,
            r.name
        );
    }
    // Test cases record their own position.
    let first = &rules[0].tests[0];
    assert!(first.expect_match);
    assert_eq!(first.pipe_name, r"\postex_1234");
    assert_eq!((first.source.line, first.source.col), (first_line + 17, 9));
    assert_eq!(
        DOC.lines().nth(first.source.line - 1).map(str::trim),
        Some(r"- '\postex_1234'")
    );
    let connect = &rules[1].tests[1];
    assert_eq!(connect.kind.map(|k| k.value()), Some(2));
    // A case may set the process id (the rule's `ProcessId: 4` filter).
    let system = rules[2].tests.last().expect("cases");
    assert_eq!((system.pid, system.expect_match), (Some(4), false));
    assert_eq!(connect.image.as_deref(), Some(r"C:\Users\Public\p.exe"));
}

#[test]
fn failing_case_is_detected() {
    let text = "- id: 1\n  name: n\n  severity: low\n  detection:\n    s:\n      PipeName: '\\a'\n    condition: s\n  tests:\n    match: ['\\b']\n    no_match: ['\\A']\n";
    let rules = load_yaml(Path::new("n.yml"), text).expect("imports");
    let failing = failing_cases(&rules[0]);
    assert_eq!(failing.len(), 2);
    assert_eq!((failing[0].source.line, failing[0].source.col), (9, 13));
    assert_eq!((failing[1].source.line, failing[1].source.col), (10, 16));
}

#[test]
fn native_values_are_literal() {
    let text = "- id: 1\n  name: n\n  severity: low\n  detection:\n    lit:\n      PipeName: '\\a*?\\*'\n    glob:\n      PipeName|glob|endswith: 'x?\\*'\n    condition: lit or glob\n";
    let rules = load_yaml(Path::new("n.yml"), text).expect("imports");
    let r = &rules[0];
    let m = |name: &str| {
        eval_rule(
            r,
            &RefEvent {
                pipe_name: name,
                image: None,
                pid: 0,
                kind: 1,
                user: None,
            },
        )
    };
    assert!(m(r"\a*?\*"), "no wildcards without glob");
    assert!(m(r"\A*?\*"));
    assert!(!m(r"\abc\*"));
    assert!(m(r"\zzzxy*"), "glob with endswith");
    assert!(!m(r"\zzzxy"));
    let pid = "- id: 1\n  name: n\n  severity: low\n  detection:\n    s:\n      ProcessId: [4, 0x10]\n    condition: s\n";
    assert!(
        load_yaml(Path::new("n.yml"), pid).is_err(),
        "ProcessId values are decimal"
    );
    let pid = "- id: 1\n  name: n\n  severity: low\n  detection:\n    s:\n      ProcessId: [4, 16]\n    condition: s\n";
    let rules = load_yaml(Path::new("n.yml"), pid).expect("imports");
    let pr = &rules[0];
    assert!(eval_rule(
        pr,
        &RefEvent {
            pipe_name: "x",
            image: None,
            pid: 16,
            kind: 1,
            user: None,
        }
    ));
    assert!(!eval_rule(
        pr,
        &RefEvent {
            pipe_name: "x",
            image: None,
            pid: 5,
            kind: 1,
            user: None,
        }
    ));
    let re = "- id: 1\n  name: n\n  severity: low\n  detection:\n    s:\n      Image|re|i: '\\\\SQLSERVR\\.exe$'\n    condition: s\n";
    let rules = load_yaml(Path::new("n.yml"), re).expect("imports");
    match &rules[0].condition {
        pipe_compiler::model::Cond::Atom(a) => {
            assert_eq!(
                a.matcher,
                Matcher::Regex {
                    pattern: r"\\SQLSERVR\.exe$".into(),
                    case_insensitive: true
                }
            );
        }
        c => panic!("{c:?}"),
    }
}

#[test]
fn empty_native_file_has_no_rules() {
    assert!(load_yaml(Path::new("e.yml"), "").expect("empty").is_empty());
    assert!(load_yaml(Path::new("e.yml"), "# only a comment\n")
        .expect("empty")
        .is_empty());
    assert!(load_yaml(Path::new("e.yml"), "[]\n")
        .expect("empty")
        .is_empty());
}
