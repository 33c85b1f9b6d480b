//! Sigma `pipe_created` rule import.
//!
//! Semantics follow the Sigma specification v2: values are case-insensitive
//! wildcard strings (`*` any run, `?` one character, `\` escapes `*`, `?` and
//! itself; a backslash before any other character is literal); modifiers
//! `contains`, `startswith`, `endswith`, `all`, `re` (sub-modifiers `i`, `m`,
//! `s`), `cased`, `exists`, `neq` (negates the field test), `expand`
//! (placeholders, see [`super::placeholders`]); a list of values is any of
//! them (all of them with `all`); a selection mapping is all of its fields; a
//! list of mappings is any of them; the condition has `and`, `or`, `not`,
//! parentheses, `N of x*` (at least N; a bounded disjunction of
//! conjunctions), `all of x*`, and the same over `them`. Everything else is
//! an error (`fieldref` and the numeric `lt`/`gt` with a reason).
//!
//! The rule id is the first 8 hex digits of the Sigma `id` (a UUID) read as a
//! `u32`; the severity is `level` (medium when absent); the action is alert.

use std::path::Path;

use crate::model::{Action, Rule, Severity, SourceError};

use super::detection::{DetectionReader, Dialect};
use super::placeholders::Placeholders;
use super::yaml::{Kind, Node};

/// Top-level keys that change what a Sigma document means and that this
/// importer does not implement.
const UNSUPPORTED_KEYS: &[(&str, &str)] = &[
    ("correlation", "Sigma correlation rules are not supported"),
    (
        "filter",
        "Sigma filter documents (meta filters) are not supported",
    ),
    (
        "action",
        "Sigma rule collections (`action: global/reset/repeat`) are not supported",
    ),
];

/// The severity named by a Sigma `level` or a native `severity`.
pub(crate) fn severity_by_name(s: &str) -> Option<Severity> {
    Some(match s {
        "informational" => Severity::INFORMATIONAL,
        "low" => Severity::LOW,
        "medium" => Severity::MEDIUM,
        "high" => Severity::HIGH,
        "critical" => Severity::CRITICAL,
        _ => return None,
    })
}

/// The rule id derived from a Sigma UUID: its first 8 hex digits as a `u32`.
pub fn id_from_uuid(uuid: &str) -> Option<u32> {
    let b = uuid.as_bytes();
    let shape_ok = b.len() == 36
        && b.iter().enumerate().all(|(i, c)| {
            if matches!(i, 8 | 13 | 18 | 23) {
                *c == b'-'
            } else {
                c.is_ascii_hexdigit()
            }
        });
    if !shape_ok {
        return None;
    }
    u32::from_str_radix(&uuid[..8], 16).ok()
}

/// Whether a parsed YAML document looks like a Sigma document: a rule
/// (`logsource` and `detection`), or a correlation or filter document
/// (`title` and `correlation` / `filter`).
pub(crate) fn looks_like_sigma(doc: &Node) -> bool {
    (doc.get("detection").is_some() && doc.get("logsource").is_some())
        || (doc.get("title").is_some()
            && (doc.get("correlation").is_some() || doc.get("filter").is_some()))
}

/// The `title` of the first document that has one.
pub(crate) fn title(docs: &[Node]) -> Option<String> {
    docs.iter()
        .find_map(|d| d.get("title").and_then(Node::as_str).map(str::to_string))
}

/// For a Sigma file that is not a `pipe_created` rule, the log source it is
/// for (`process_creation`, `service:security`, `product:linux`,
/// `no category`, `correlation`, `filter`); `None` for a pipe rule (which
/// the importer then reads, with its errors if it cannot). A document is a
/// pipe rule when its category is `pipe_created`, whatever else is wrong
/// with it: an error in a pipe rule is reported, never skipped.
pub(crate) fn other_log_source(docs: &[Node]) -> Option<String> {
    let docs: Vec<&Node> = docs.iter().filter(|d| !d.is_null()).collect();
    let field = |ls: &Node, k: &str| ls.get(k).and_then(Node::as_str).map(str::to_string);
    if docs.iter().any(|d| {
        d.get("logsource")
            .and_then(|ls| field(ls, "category"))
            .is_some_and(|c| c == "pipe_created")
    }) {
        return None;
    }
    let doc = docs.iter().find(|d| looks_like_sigma(d)).or(docs.first())?;
    if doc.get("correlation").is_some() {
        return Some("correlation".into());
    }
    if doc.get("filter").is_some() && doc.get("detection").is_none() {
        return Some("filter".into());
    }
    let Some(ls) = doc.get("logsource") else {
        return Some("no logsource".into());
    };
    Some(
        match (
            field(ls, "category"),
            field(ls, "service"),
            field(ls, "product"),
        ) {
            (Some(c), _, _) => c,
            (None, Some(sv), _) => format!("service:{sv}"),
            (None, None, Some(p)) => format!("product:{p}"),
            (None, None, None) => "no category".into(),
        },
    )
}

/// Imports the Sigma rule documents `docs` of `file`.
///
/// # Errors
/// Every unsupported or malformed construct, each at its file:line:column.
pub(crate) fn import(
    file: &Path,
    docs: &[Node],
    placeholders: Option<&Placeholders>,
) -> Result<Vec<Rule>, Vec<SourceError>> {
    let mut errors = Vec::new();
    let docs: Vec<&Node> = docs.iter().filter(|d| !d.is_null()).collect();
    if docs.len() != 1 {
        let at = docs.get(1).copied().or(docs.first().copied());
        let msg = if docs.is_empty() {
            "empty Sigma file".to_string()
        } else {
            "multiple YAML documents in one Sigma file (rule collections) are not supported"
                .to_string()
        };
        return Err(vec![match at {
            Some(n) => n.err(file, msg),
            None => SourceError::new(
                crate::model::SourceLoc {
                    file: file.to_path_buf(),
                    line: 1,
                    col: 1,
                },
                msg,
            ),
        }]);
    }
    let doc = docs[0];
    let Kind::Map(entries) = &doc.kind else {
        return Err(vec![doc.err(
            file,
            format!("a Sigma rule must be a mapping, found {}", doc.kind_name()),
        )]);
    };
    for (k, _) in entries {
        let key = k.as_str().unwrap_or_default();
        if let Some((_, msg)) = UNSUPPORTED_KEYS.iter().find(|(n, _)| *n == key) {
            errors.push(k.err(file, format!("`{key}`: {msg}")));
        }
    }

    let title = doc.required_str("title", "Sigma rule has no `title`", file, &mut errors);

    let id = match doc.get("id") {
        Some(n) => match n.as_str().and_then(id_from_uuid) {
            Some(id) => Some(id),
            None => {
                errors.push(n.err(
                    file,
                    format!(
                        "`id` must be a UUID (8-4-4-4-12 hex digits), found `{}`",
                        n.as_str().unwrap_or(n.kind_name())
                    ),
                ));
                None
            }
        },
        None => {
            errors.push(doc.err(
                file,
                "Sigma rule has no `id`: the rule id is derived from it",
            ));
            None
        }
    };

    let severity = match doc.get("level") {
        None => Some(Severity::MEDIUM),
        Some(n) => match n.as_str().and_then(severity_by_name) {
            Some(s) => Some(s),
            None => {
                errors.push(n.err(
                    file,
                    format!(
                        "unknown `level` `{}` (informational, low, medium, high, critical)",
                        n.as_str().unwrap_or(n.kind_name())
                    ),
                ));
                None
            }
        },
    };

    if let Some(ls) = doc.get("logsource") {
        check_logsource(file, ls, &mut errors);
    }

    let condition = match doc.get("detection") {
        Some(det) => {
            let mut r = DetectionReader {
                file,
                dialect: Dialect::Sigma,
                errors: &mut errors,
                placeholders,
            };
            r.read(det)
        }
        None => None,
    };

    if !errors.is_empty() {
        return Err(errors);
    }
    match (id, severity, condition) {
        (Some(id), Some(severity), Some(condition)) => Ok(vec![Rule {
            id,
            name: title,
            severity,
            action: Action::ALERT,
            condition,
            source: doc.loc(file),
            tests: Vec::new(),
        }]),
        _ => Err(vec![doc.err(file, "Sigma rule could not be imported")]),
    }
}

fn check_logsource(file: &Path, ls: &Node, errors: &mut Vec<SourceError>) {
    let Kind::Map(entries) = &ls.kind else {
        errors.push(ls.err(
            file,
            format!("`logsource` must be a mapping, found {}", ls.kind_name()),
        ));
        return;
    };
    let mut has_category = false;
    for (k, v) in entries {
        let key = k.as_str().unwrap_or_default();
        let val = v.as_str().unwrap_or_default();
        match key {
            "category" => {
                has_category = true;
                if val != "pipe_created" {
                    errors.push(v.err(
                        file,
                        format!(
                            "logsource category `{val}` is not supported (only `pipe_created`)"
                        ),
                    ));
                }
            }
            "product" => {
                if val != "windows" {
                    errors.push(v.err(
                        file,
                        format!("logsource product `{val}` is not supported (only `windows`)"),
                    ));
                }
            }
            "service" => errors.push(v.err(
                file,
                format!(
                    "logsource service `{val}` is not supported (only category `pipe_created`)"
                ),
            )),
            "definition" => {}
            _ => errors.push(k.err(file, format!("unknown logsource key `{key}`"))),
        }
    }
    if !has_category {
        errors.push(ls.err(file, "logsource has no `category` (must be `pipe_created`)"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_ids() {
        assert_eq!(
            id_from_uuid("1ea13e8c-03ea-409b-877d-ce5c3d2c1cb3"),
            Some(0x1ea1_3e8c)
        );
        assert_eq!(id_from_uuid("1ea13e8c"), None);
        assert_eq!(id_from_uuid("1ea13e8g-03ea-409b-877d-ce5c3d2c1cb3"), None);
    }
}
