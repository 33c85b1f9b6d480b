//! The native rule format: a YAML list of rules, each with a Sigma-like
//! `detection:` block whose values are literal unless the `glob` modifier is
//! given, and embedded test cases. `docs/rules.md` is the reference.

use std::path::Path;

use crate::model::{Action, EventKind, Rule, SourceError, TestCase};

use super::detection::{DetectionReader, Dialect};
use super::sigma::severity_by_name;
use super::yaml::{Kind, Node};

const RULE_KEYS: &[&str] = &[
    "id",
    "name",
    "severity",
    "action",
    "description",
    "detection",
    "tests",
];

/// Imports the native rule documents `docs` of `file`.
///
/// # Errors
/// Every malformed construct, each at its file:line:column.
pub(crate) fn import(file: &Path, docs: &[Node]) -> Result<Vec<Rule>, Vec<SourceError>> {
    let mut errors = Vec::new();
    let mut rules = Vec::new();
    let docs: Vec<&Node> = docs.iter().filter(|d| !d.is_null()).collect();
    if docs.len() > 1 {
        return Err(vec![docs[1].err(
            file,
            "a native rule file holds one YAML document (a list of rules)",
        )]);
    }
    let Some(doc) = docs.first() else {
        // An empty file holds no rules.
        return Ok(rules);
    };
    let Kind::Seq(items) = &doc.kind else {
        return Err(vec![doc.err(
            file,
            format!("a native rule file is a list of rules, found {} (a Sigma rule needs `logsource:` and `detection:`)", doc.kind_name()),
        )]);
    };
    for item in items {
        if let Some(rule) = rule(file, item, &mut errors) {
            rules.push(rule);
        }
    }
    if errors.is_empty() {
        Ok(rules)
    } else {
        Err(errors)
    }
}

fn rule(file: &Path, item: &Node, errors: &mut Vec<SourceError>) -> Option<Rule> {
    let before = errors.len();
    let Kind::Map(entries) = &item.kind else {
        errors.push(item.err(
            file,
            format!("a rule must be a mapping, found {}", item.kind_name()),
        ));
        return None;
    };
    for (k, _) in entries {
        let key = k.as_str().unwrap_or_default();
        if !RULE_KEYS.contains(&key) {
            errors.push(k.err(
                file,
                format!(
                    "unknown rule key `{key}` (expected one of: {})",
                    RULE_KEYS.join(", ")
                ),
            ));
        }
    }
    let id = match item.get("id") {
        Some(n) => match n.as_str().filter(|_| !n.is_null()).map(parse_u32) {
            Some(Some(id)) => Some(id),
            _ => {
                errors.push(n.err(
                    file,
                    format!(
                        "`id` must be an unsigned 32-bit integer, found `{}`",
                        n.as_str().unwrap_or(n.kind_name())
                    ),
                ));
                None
            }
        },
        None => {
            errors.push(item.err(file, "rule has no `id`"));
            None
        }
    };
    let name = item.required_str("name", "rule has no `name`", file, errors);
    let severity = match item.get("severity") {
        Some(n) => match n.as_str().and_then(severity_by_name) {
            Some(s) => Some(s),
            None => {
                errors.push(n.err(
                    file,
                    format!(
                        "unknown `severity` `{}` (informational, low, medium, high, critical)",
                        n.as_str().unwrap_or(n.kind_name())
                    ),
                ));
                None
            }
        },
        None => {
            errors.push(item.err(file, "rule has no `severity`"));
            None
        }
    };
    let action = match item.get("action") {
        None => Some(Action::ALERT),
        Some(n) => match n.as_str() {
            Some("alert") => Some(Action::ALERT),
            Some("block") => Some(Action::BLOCK),
            _ => {
                errors.push(n.err(
                    file,
                    format!(
                        "unknown `action` `{}` (alert, block)",
                        n.as_str().unwrap_or(n.kind_name())
                    ),
                ));
                None
            }
        },
    };
    if let Some(d) = item.get("description") {
        if d.as_str().is_none() {
            errors.push(d.err(
                file,
                format!("`description` must be a string, found {}", d.kind_name()),
            ));
        }
    }
    let condition = match item.get("detection") {
        Some(det) => DetectionReader {
            file,
            dialect: Dialect::Native,
            errors: &mut *errors,
            placeholders: None,
        }
        .read(det),
        None => {
            errors.push(item.err(file, "rule has no `detection`"));
            None
        }
    };
    let tests = match item.get("tests") {
        Some(t) => tests(file, t, errors),
        None => Vec::new(),
    };
    if errors.len() > before {
        return None;
    }
    Some(Rule {
        id: id?,
        name,
        severity: severity?,
        action: action?,
        condition: condition?,
        source: item.loc(file),
        tests,
    })
}

fn parse_u32(s: &str) -> Option<u32> {
    match s.strip_prefix("0x") {
        Some(hex) => u32::from_str_radix(hex, 16).ok(),
        None => s.parse().ok(),
    }
}

fn tests(file: &Path, t: &Node, errors: &mut Vec<SourceError>) -> Vec<TestCase> {
    let mut out = Vec::new();
    let Kind::Map(entries) = &t.kind else {
        errors.push(t.err(
            file,
            format!(
                "`tests` must be a mapping with `match` and/or `no_match`, found {}",
                t.kind_name()
            ),
        ));
        return out;
    };
    for (k, v) in entries {
        let expect_match = match k.as_str().unwrap_or_default() {
            "match" => true,
            "no_match" => false,
            other => {
                errors.push(k.err(
                    file,
                    format!("unknown `tests` key `{other}` (match, no_match)"),
                ));
                continue;
            }
        };
        let Kind::Seq(items) = &v.kind else {
            errors.push(v.err(
                file,
                format!(
                    "`{}` must be a list of cases, found {}",
                    k.as_str().unwrap_or_default(),
                    v.kind_name()
                ),
            ));
            continue;
        };
        for case in items {
            if let Some(c) = test_case(file, case, expect_match, errors) {
                out.push(c);
            }
        }
    }
    out
}

fn test_case(
    file: &Path,
    case: &Node,
    expect_match: bool,
    errors: &mut Vec<SourceError>,
) -> Option<TestCase> {
    let source = case.loc(file);
    match &case.kind {
        Kind::Scalar { text, .. } if !case.is_null() => Some(TestCase {
            pipe_name: text.clone(),
            image: None,
            kind: None,
            pid: None,
            user: None,
            expect_match,
            source,
        }),
        Kind::Map(entries) => {
            let mut name = None;
            let mut image = None;
            let mut kind = None;
            let mut pid = None;
            let mut user = None;
            let mut ok = true;
            for (k, v) in entries {
                let key = k.as_str().unwrap_or_default();
                let text = v.as_str().filter(|_| !v.is_null());
                match (key, text) {
                    ("name", Some(s)) => name = Some(s.to_string()),
                    ("image", Some(s)) => image = Some(s.to_string()),
                    ("user", Some(s)) if crate::user::is_sid(s) => user = Some(s.to_string()),
                    ("user", _) => {
                        errors.push(v.err(
                            file,
                            "test case `user` is a SID string as the sensor supplies it (S-1-5-18, S-1-5-21-…-1001)",
                        ));
                        ok = false;
                    }
                    ("kind", Some(k)) if EventKind::from_name(k).is_some() => {
                        kind = EventKind::from_name(k)
                    }
                    ("kind", _) => {
                        errors.push(v.err(file, "test case `kind` is `create` or `connect`"));
                        ok = false;
                    }
                    ("pid", Some(s)) if s.parse::<u32>().is_ok() => pid = s.parse::<u32>().ok(),
                    ("pid", _) => {
                        errors.push(v.err(
                            file,
                            "test case `pid` is a process id (an unsigned 32-bit decimal number)",
                        ));
                        ok = false;
                    }
                    ("name" | "image", None) => {
                        errors.push(v.err(
                            file,
                            format!(
                                "test case `{key}` must be a string, found {}",
                                v.kind_name()
                            ),
                        ));
                        ok = false;
                    }
                    _ => {
                        errors.push(k.err(
                            file,
                            format!("unknown test case key `{key}` (name, image, kind, pid, user)"),
                        ));
                        ok = false;
                    }
                }
            }
            let Some(pipe_name) = name else {
                if ok {
                    errors.push(case.err(file, "test case has no `name`"));
                }
                return None;
            };
            ok.then_some(TestCase {
                pipe_name,
                image,
                kind,
                pid,
                user,
                expect_match,
                source,
            })
        }
        _ => {
            errors.push(case.err(
                file,
                format!(
                    "a test case is a pipe name or a mapping {{name, image, kind, pid, user}}, found {}",
                    case.kind_name()
                ),
            ));
            None
        }
    }
}
