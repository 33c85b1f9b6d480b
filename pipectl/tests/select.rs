//! End-to-end tests of rule selection: whole Sigma trees (other log sources
//! skipped and counted), `--strict`, `--skip-unsupported` (exit code 3) in
//! `compile`, `test` and `replay --rules`, and `--placeholders`.

use std::path::{Path, PathBuf};

mod common;
use common::{assert_no_panic, corpus, pipectl, root, text, tmp};

/// SigmaHQ's mixed tree: 20 pipe_created rules and 7 of other log sources.
const SIGMA_TREE: &str = "third_party/sigma";

fn s(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

fn fixture(p: &str) -> String {
    s(&PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(p))
}

const OTHER_SUMMARY: &str = "note: skipped 7 Sigma rule(s) of other log sources (service:security 2, file_event 1, network_connection 1, process_creation 1, registry_set 1, service:system 1); only pipe_created rules are pipe content (--strict makes them errors)";

#[test]
fn compile_of_a_sigma_tree_takes_the_pipe_rules_and_says_what_it_skipped() {
    let dir = tmp("select", "tree");
    let out = dir.join("tree.sys");
    let o = pipectl(&["compile", &corpus(SIGMA_TREE), "-o", &s(&out)]);
    assert_no_panic(&o);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert!(
        text(&o.stdout).contains(": 20 rules,"),
        "{}",
        text(&o.stdout)
    );
    let err = text(&o.stderr);
    assert_eq!(err.trim(), OTHER_SUMMARY);
    // The file holds exactly the pipe rules: the 17 of the main set and 3
    // more (emerging threats, threat hunting).
    let o = pipectl(&["inspect", &s(&out), "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["rules"].as_array().unwrap().len(), 20);
    // A RedSun event matches the emerging-threats rule compiled from the tree.
    let o = pipectl(&["match", &s(&out), "\\REDSUN"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(text(&o.stdout).contains("RedSun - Named Pipe Created"));
}

#[test]
fn strict_keeps_the_old_error_and_an_explicit_file_is_always_one() {
    let dir = tmp("select", "strict");
    let out = s(&dir.join("x.sys"));
    let o = pipectl(&["compile", &corpus(SIGMA_TREE), "-o", &out, "--strict"]);
    assert_no_panic(&o);
    assert_eq!(o.status.code(), Some(1));
    let err = text(&o.stderr);
    assert!(
        err.contains("file_event_win_sysinternals_psexec_service.yml:")
            && err
                .contains("logsource category `file_event` is not supported (only `pipe_created`)"),
        "{err}"
    );
    assert!(!dir.join("x.sys").exists());
    // Named on the command line, a rule of another log source is an error
    // even without --strict.
    let f = corpus(
        "third_party/sigma/rules/windows/process_creation/proc_creation_win_hktl_impacket_tools.yml",
    );
    let o = pipectl(&["compile", &f, "-o", &out]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o.stderr).contains("logsource category `process_creation` is not supported"),
        "{}",
        text(&o.stderr)
    );
}

/// The three rules of `fixtures/sigma-unsupported/`: two the importer
/// refuses, one the compiler refuses (its regex DFA is over the budget).
fn assert_three_lines(err: &str, prefix: &str) {
    for (file, line_col, reason) in [
        (
            "pipe_created_encoded_pipe_name.yml",
            ":12:18: ",
            "unsupported modifier `base64offset` in `PipeName|base64offset|contains` [rule `Test - Base64 Encoded Pipe Name`]",
        ),
        (
            "pipe_created_many_pipes_per_image.yml",
            ":13:26: ",
            "aggregation expressions (`| count() ...`) are not supported [rule `Test - Many Pipes From One Image`]",
        ),
        (
            "pipe_created_oversized_regex.yml",
            ":1:1: ",
            "(Test - Oversized Regex): regex ",
        ),
    ] {
        let line = err
            .lines()
            .find(|l| l.contains(file))
            .unwrap_or_else(|| panic!("no line for {file}: {err}"));
        assert!(
            line.starts_with(prefix) && line.contains(line_col) && line.contains(reason),
            "{line}"
        );
        assert_eq!(err.matches(file).count(), 1, "one line per rule: {err}");
    }
}

#[test]
fn unsupported_pipe_rules_are_errors_or_skipped_never_silently() {
    let dir = tmp("select", "unsupported");
    let out = dir.join("u.sys");
    let unsupported = fixture("sigma-unsupported");
    let tree = corpus(SIGMA_TREE);
    let o = pipectl(&["compile", &tree, &unsupported, "-o", &s(&out)]);
    assert_no_panic(&o);
    assert_eq!(o.status.code(), Some(1));
    let err = text(&o.stderr);
    assert_three_lines(&err, "error: ");
    assert!(
        err.contains("3 Sigma pipe rule(s) cannot be compiled: --skip-unsupported compiles the others (exit code 3)"),
        "{err}"
    );
    assert!(!out.exists(), "nothing is written");

    let o = pipectl(&[
        "compile",
        &tree,
        &unsupported,
        "-o",
        &s(&out),
        "--skip-unsupported",
    ]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o.stderr));
    let err = text(&o.stderr);
    assert_three_lines(&err, "skipped: ");
    assert!(err.contains(OTHER_SUMMARY), "{err}");
    assert!(
        text(&o.stdout).contains(": 20 rules,"),
        "{}",
        text(&o.stdout)
    );
    let o = pipectl(&["verify", &s(&out)]);
    assert_eq!(o.status.code(), Some(0));

    // `test` and `replay --rules` take the same selection and exit codes.
    let rules = s(&root().join("rules"));
    let o = pipectl(&["test", &rules, &tree, &unsupported]);
    assert_eq!(o.status.code(), Some(1));
    assert_three_lines(&text(&o.stderr), "error: ");
    let o = pipectl(&["test", &rules, &tree, &unsupported, "--skip-unsupported"]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o.stderr));
    assert!(text(&o.stdout).contains(" passed, 0 failed"));
    let o = pipectl(&["test", &rules, &tree]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));

    let logs = fixture("logs");
    let o = pipectl(&[
        "replay",
        "--rules",
        &tree,
        "--rules",
        &unsupported,
        &logs,
        "--json",
    ]);
    assert_eq!(o.status.code(), Some(1));
    let o = pipectl(&[
        "replay",
        "--rules",
        &tree,
        "--rules",
        &unsupported,
        &logs,
        "--json",
        "--skip-unsupported",
    ]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o.stderr));
    assert_three_lines(&text(&o.stderr), "skipped: ");
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).expect("clean JSON on stdout");
    assert_eq!(r["channel"]["rules"], 20);
    assert_eq!(r["events"]["pipe_events"], 15);
    // Replaying the compiled file gives the same report.
    let o = pipectl(&["replay", &s(&out), &logs, "--json"]);
    assert_eq!(o.status.code(), Some(0));
    let f: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(f["verdicts"], r["verdicts"]);
    assert_eq!(f["rules"], r["rules"]);
}

#[test]
fn placeholders_fill_expand_values() {
    let dir = tmp("select", "placeholders");
    let rule = dir.join("admin_pipes.yml");
    std::fs::write(
        &rule,
        "title: Admin tool pipes from jump servers\nid: 5e1ec7ed-0000-4000-8000-0000000000aa\n\
         logsource:\n    category: pipe_created\n    product: windows\n\
         detection:\n    selection:\n        PipeName|expand|startswith: '%Tools%_'\n    \
         condition: selection\nlevel: medium\n",
    )
    .unwrap();
    let out = s(&dir.join("p.sys"));
    // Without values: the rule is refused, naming the placeholder.
    let o = pipectl(&["compile", &s(&rule), "-o", &out]);
    assert_no_panic(&o);
    assert_eq!(o.status.code(), Some(1));
    let err = text(&o.stderr);
    assert!(
        err.contains("admin_pipes.yml:8:")
            && err.contains("placeholder `%Tools%` has no values")
            && err.contains("--placeholders"),
        "{err}"
    );
    let values = dir.join("placeholders.yml");
    // A backslash right before a placeholder would escape its `%` (as in
    // pySigma): the values carry the leading backslash.
    std::fs::write(&values, "Tools:\n  - '\\adm?n'\n  - '\\jump'\n").unwrap();
    let o = pipectl(&[
        "compile",
        &s(&rule),
        "-o",
        &out,
        "--placeholders",
        &s(&values),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    for (name, hit) in [
        ("\\admin_1", true),
        ("\\ADMXN_x", true),
        ("\\jump_", true),
        ("\\jumper_1", false),
        ("\\Tools_1", false),
    ] {
        let o = pipectl(&["match", &out, name]);
        assert_eq!(o.status.code(), Some(if hit { 0 } else { 1 }), "{name}");
    }
    // A bad placeholder file is an I/O-class error naming file:line.
    std::fs::write(&values, "Tools:\n  x: 1\n").unwrap();
    let o = pipectl(&[
        "compile",
        &s(&rule),
        "-o",
        &out,
        "--placeholders",
        &s(&values),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o.stderr).contains("placeholders.yml:2:"),
        "{}",
        text(&o.stderr)
    );
}
