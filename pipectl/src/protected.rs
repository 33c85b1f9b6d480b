//! Block rules that can match what the sensor never denies (the protected
//! pipes and critical processes of `sensor_core::protect`), reported by
//! `pipectl replay` and `pipectl diff`. The analysis is the compiler's
//! ([`pipe_compiler::protect::check_file`]), which `pipectl compile`
//! applies as a refusal; these reports find such rules in files built by
//! an older compiler or the low-level writer.

use channel_parser::ChannelFile;
use pipe_compiler::protect::{check_file, Finding};
use serde_json::{json, Value};
use std::fmt::Write as _;

/// The findings of `f`.
pub fn findings(f: &ChannelFile<'_>) -> Vec<Finding> {
    check_file(f)
}

/// One finding as JSON.
pub fn finding_json(x: &Finding) -> Value {
    json!({
        "rule": x.rule_id,
        "name": x.rule_name,
        "matches": x.case.to_string(),
        "example": x.example.as_ref().map(ToString::to_string),
        "message": x.to_string(),
    })
}

/// The text section for `findings` (empty when there are none); `label`
/// names the file (`""`, `"new: "`).
pub fn text(findings: &[Finding], label: &str) -> String {
    let mut s = String::new();
    if findings.is_empty() {
        return s;
    }
    let _ = writeln!(
        s,
        "protected {label}{} block rule(s) can match what the sensor never denies (decision `protected` instead of a deny):",
        findings.len()
    );
    for x in findings {
        let _ = writeln!(s, "  {x}");
    }
    s
}

/// The findings of `new` whose rule has no finding in `old`.
pub fn new_in(old: &[Finding], new: &[Finding]) -> Vec<Finding> {
    new.iter()
        .filter(|n| !old.iter().any(|o| o.rule_id == n.rule_id))
        .cloned()
        .collect()
}
