//! Block rules on what the sensor never denies: `pipectl compile` refuses
//! them; `pipectl replay` and `pipectl diff` report them in files written by
//! the low-level writer (or an older compiler).

use std::path::Path;

use pipe_compiler::import::load_yaml;
use pipe_compiler::model::RuleSet;
use pipe_compiler::{compile_unchecked, CompileOptions};
use serde_json::Value;

mod common;
use common::{assert_no_panic, pipectl, root, text, tmp};

const BAD: &str = "\
- id: 9001
  name: block the LSA pipe
  severity: high
  action: block
  detection:
    s:
      PipeName: '\\lsarpc'
    condition: s
";

const GOOD: &str = "\
- id: 9002
  name: block postex pipes
  severity: high
  action: block
  detection:
    s:
      PipeName|startswith: '\\postex_'
    condition: s
";

fn s(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

/// Writes `yaml` with the low-level writer (no protected-set check).
fn unchecked(dir: &Path, name: &str, yaml: &str, seq: u64) -> String {
    let set = RuleSet {
        rules: load_yaml(Path::new("t.yml"), yaml).unwrap(),
    };
    let bytes = compile_unchecked(
        &set,
        &CompileOptions {
            sequence: seq,
            ..CompileOptions::default()
        },
    )
    .unwrap();
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    s(&p)
}

fn events() -> String {
    s(&root().join("pipectl/tests/fixtures/backtest/events.jsonl"))
}

#[test]
fn compile_refuses_naming_the_rule_its_source_and_an_example() {
    let d = tmp("protected", "compile");
    let src = d.join("bad.yml");
    std::fs::write(&src, format!("{GOOD}{BAD}")).unwrap();
    let o = pipectl(&["compile", &s(&src), "-o", &s(&d.join("out.sys"))]);
    assert_no_panic(&o);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stdout));
    let err = text(&o.stderr);
    for want in [
        "bad.yml:9:3: rule 9001 (block the LSA pipe): this block rule matches the protected pipe \\lsarpc",
        "e.g. \\lsarpc created by",
        "decision `protected`",
    ] {
        assert!(err.contains(want), "{want:?} not in {err}");
    }
    assert!(!d.join("out.sys").exists(), "nothing written");
    // Without the bad rule it compiles.
    std::fs::write(&src, GOOD).unwrap();
    let o = pipectl(&["compile", &s(&src), "-o", &s(&d.join("out.sys"))]);
    assert!(o.status.success(), "{}", text(&o.stderr));
}

#[test]
fn replay_reports_them() {
    let d = tmp("protected", "replay");
    let f = unchecked(&d, "bad.sys", &format!("{GOOD}{BAD}"), 3);
    let o = pipectl(&["replay", &f, &events()]);
    assert_no_panic(&o);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let out = text(&o.stdout);
    assert!(
        out.contains("protected 1 block rule(s) can match what the sensor never denies")
            && out.contains("block rule 9001"),
        "{out}"
    );
    let o = pipectl(&["replay", &f, &events(), "--json"]);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    let p = v["protected_block_rules"].as_array().unwrap();
    assert_eq!(p.len(), 1);
    assert_eq!(p[0]["rule"], 9001);
    assert_eq!(p[0]["matches"], "the protected pipe \\lsarpc");
    // A clean file reports none.
    let g = unchecked(&d, "good.sys", GOOD, 2);
    let o = pipectl(&["replay", &g, &events(), "--json"]);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["protected_block_rules"].as_array().unwrap().len(), 0);
}

#[test]
fn diff_fails_on_a_new_protected_block_rule() {
    let d = tmp("protected", "diff");
    let old = unchecked(&d, "old.sys", GOOD, 2);
    let new = unchecked(&d, "new.sys", &format!("{GOOD}{BAD}"), 3);
    // The events never touch \lsarpc: only the static check sees the rule.
    let o = pipectl(&["diff", &old, &new, "--events", &events()]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert!(
        text(&o.stdout).contains("protected new: 1 block rule(s)"),
        "{}",
        text(&o.stdout)
    );
    let o = pipectl(&[
        "diff",
        &old,
        &new,
        "--events",
        &events(),
        "--fail-on-new-block",
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stdout));
    let o = pipectl(&["diff", &old, &new, "--events", &events(), "--json"]);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["protected_block_rules_added"], serde_json::json!([9001]));
    assert_eq!(v["summary"]["new_blocks"], 0, "no event newly blocked");
    // Already in the old release: reported in JSON, not new, no failure.
    let o = pipectl(&[
        "diff",
        &new,
        &new,
        "--events",
        &events(),
        "--fail-on-new-block",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stdout));
}
