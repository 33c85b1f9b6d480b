//! Sysmon configuration import (the `PipeEvent` filters, Event IDs 17/18).
//!
//! # Semantics
//! Sysmon reports a pipe event when it matches at least one *include* filter
//! and no *exclude* filter (exclude wins). With no `onmatch="include"` block
//! at all, every event not excluded is reported; an include block with no
//! filters includes nothing; an exclude block with no filters excludes
//! nothing. Several files given together are merged as sysmon-modular merges
//! its modules: all include filters, and all exclude filters, of all files.
//!
//! Combining filters: in `<RuleGroup groupRelation="or">` each filter (a
//! field element or a `<Rule>`) stands alone; with `groupRelation="and"`
//! (the default, as for `<Rule>`) all filters of the event element must hold
//! together. A `<PipeEvent>` directly under `<EventFiltering>` (schemas
//! before RuleGroup) combines filters on the same field with OR and on
//! different fields with AND, as the Sysmon documentation of the time said.
//!
//! # Mapping to the rule model
//! Each include filter (a field element directly in `<PipeEvent>`, a
//! `<Rule>` group, or all filters of an AND group) becomes one rule
//! `filter and not (exclude_1 or exclude_2 ...)`. When no file has an
//! include block, one rule `not (exclude_1 or ...)` is emitted. Rule ids are
//! FNV-1a hashes of the file name and the filter's line and column, so they
//! are stable across runs and directories.
//!
//! Conditions are case-insensitive and literal (Sysmon has no wildcards):
//! `is`, `is not`, `is any`, `contains`, `contains any`, `contains all`,
//! `excludes`, `excludes any`, `excludes all`, `begin with`,
//! `not begin with`, `end with`, `not end with`, `image`; `;` separates the
//! values of the `any`/`all` forms (an empty value there is an error).
//! `less than` / `more than` are rejected with an error: Sysmon documents
//! them only as a lexical comparison, not which order (docs/rules.md). Other event
//! types in a config (ProcessCreate, ...) are not pipe content and are not
//! read.

use std::path::{Path, PathBuf};

use roxmltree::{Document, Node};

use crate::model::{Action, Atom, Cond, FieldId, Matcher, Rule, Severity, SourceError, SourceLoc};

/// Severity and action given to the rules imported from Sysmon configs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SysmonOptions {
    /// Severity of every imported rule (default informational: Sysmon only logs).
    pub severity: Severity,
    /// Action of every imported rule (default alert).
    pub action: Action,
}

impl Default for SysmonOptions {
    fn default() -> Self {
        SysmonOptions {
            severity: Severity::INFORMATIONAL,
            action: Action::ALERT,
        }
    }
}

/// One include filter of a config.
#[derive(Debug, Clone)]
struct Include {
    cond: Cond,
    name: String,
    loc: SourceLoc,
}

/// What one config file contributes.
#[derive(Debug, Default)]
struct Config {
    includes: Vec<Include>,
    excludes: Vec<Cond>,
    has_include_block: bool,
}

/// FNV-1a, 32 bits.
fn fnv1a(data: &[u8]) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in data {
        h ^= u32::from(*b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h
}

fn file_label(file: &Path) -> String {
    file.file_name().map_or_else(
        || file.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

/// Imports and merges the Sysmon configs `files` (path and contents).
///
/// # Errors
/// Every malformed or unsupported construct, each at its file:line:column.
pub fn import(
    files: &[(PathBuf, String)],
    opts: &SysmonOptions,
) -> Result<Vec<Rule>, Vec<SourceError>> {
    let mut errors = Vec::new();
    let mut merged = Config::default();
    for (path, text) in files {
        if let Some(c) = read_config(path, text, &mut errors) {
            merged.has_include_block |= c.has_include_block;
            merged.includes.extend(c.includes);
            merged.excludes.extend(c.excludes);
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let not_excluded = Cond::Not(Box::new(Cond::Or(merged.excludes.clone())));
    let mut rules = Vec::new();
    if merged.has_include_block {
        for inc in merged.includes {
            let condition = if merged.excludes.is_empty() {
                inc.cond
            } else {
                Cond::And(vec![inc.cond, not_excluded.clone()])
            };
            let key = format!(
                "sysmon\0{}\0{}\0{}",
                file_label(&inc.loc.file),
                inc.loc.line,
                inc.loc.col
            );
            rules.push(Rule {
                id: fnv1a(key.as_bytes()),
                name: inc.name,
                severity: opts.severity,
                action: opts.action,
                condition,
                source: inc.loc,
                tests: Vec::new(),
            });
        }
    } else if let Some((first, _)) = files.first() {
        rules.push(Rule {
            id: fnv1a(b"sysmon\0every pipe event not excluded"),
            name: "Sysmon: every pipe event not excluded".to_string(),
            severity: opts.severity,
            action: opts.action,
            condition: not_excluded,
            source: SourceLoc {
                file: first.clone(),
                line: 1,
                col: 1,
            },
            tests: Vec::new(),
        });
    }
    Ok(rules)
}

struct Reader<'a, 'i> {
    file: &'a Path,
    doc: &'a Document<'i>,
    errors: &'a mut Vec<SourceError>,
}

impl Reader<'_, '_> {
    fn loc_at(&self, pos: usize) -> SourceLoc {
        let p = self.doc.text_pos_at(pos);
        SourceLoc {
            file: self.file.to_path_buf(),
            line: p.row as usize,
            col: p.col as usize,
        }
    }

    fn loc(&self, n: Node<'_, '_>) -> SourceLoc {
        self.loc_at(n.range().start)
    }

    fn err(&mut self, n: Node<'_, '_>, msg: impl Into<String>) {
        let loc = self.loc(n);
        self.errors.push(SourceError::new(loc, msg));
    }

    fn attr_err(&mut self, n: Node<'_, '_>, attr: &str, msg: impl Into<String>) {
        let loc = match n.attribute_node(attr) {
            Some(a) => self.loc_at(a.range().start),
            None => self.loc(n),
        };
        self.errors.push(SourceError::new(loc, msg));
    }
}

fn read_config(file: &Path, text: &str, errors: &mut Vec<SourceError>) -> Option<Config> {
    let doc = match Document::parse(text) {
        Ok(d) => d,
        Err(e) => {
            let p = e.pos();
            errors.push(SourceError::new(
                SourceLoc {
                    file: file.to_path_buf(),
                    line: p.row as usize,
                    col: p.col as usize,
                },
                format!("XML error: {e}"),
            ));
            return None;
        }
    };
    let before = errors.len();
    let mut r = Reader {
        file,
        doc: &doc,
        errors,
    };
    let root = doc.root_element();
    if root.tag_name().name() != "Sysmon" {
        r.err(
            root,
            format!(
                "expected a Sysmon config (root element <Sysmon>), found <{}>",
                root.tag_name().name()
            ),
        );
        return None;
    }
    let mut cfg = Config::default();
    let mut pipe_blocks = 0usize;
    for ef in root
        .children()
        .filter(|n| n.is_element() && n.tag_name().name() == "EventFiltering")
    {
        for child in ef.children().filter(Node::is_element) {
            if child.tag_name().name() == "RuleGroup" {
                // Sysmon: "like RuleGroup the default groupRelation is AND".
                let mode = match child.attribute("groupRelation") {
                    Some("or") => Combine::Or,
                    None | Some("and") => Combine::And,
                    Some(o) => {
                        r.attr_err(
                            child,
                            "groupRelation",
                            format!("unknown RuleGroup groupRelation `{o}` (and, or)"),
                        );
                        continue;
                    }
                };
                for ev in child
                    .children()
                    .filter(|n| n.is_element() && n.tag_name().name() == "PipeEvent")
                {
                    pipe_blocks += 1;
                    pipe_event(&mut r, ev, mode, &mut cfg);
                }
            } else if child.tag_name().name() == "PipeEvent" {
                // Schemas before RuleGroup: event filters directly in
                // EventFiltering, combined as documented then.
                pipe_blocks += 1;
                pipe_event(&mut r, child, Combine::Legacy, &mut cfg);
            }
        }
    }
    if pipe_blocks == 0 {
        r.err(
            root,
            "this Sysmon config has no <PipeEvent> filter (nothing to import)",
        );
    }
    (r.errors.len() == before).then_some(cfg)
}

/// How the filters of one event element combine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Combine {
    /// `<RuleGroup groupRelation="or">`: each filter (field or `<Rule>`) is
    /// a rule of its own.
    Or,
    /// `<RuleGroup groupRelation="and">` (the default): all filters together.
    And,
    /// No RuleGroup (schemas before 4.1): filters on the same field are
    /// OR-ed, filters on different fields AND-ed, as the Sysmon
    /// documentation of that time states; `<Rule>` is not available.
    Legacy,
}

fn pipe_event(r: &mut Reader<'_, '_>, ev: Node<'_, '_>, mode: Combine, cfg: &mut Config) {
    let include = match ev.attribute("onmatch") {
        Some("include") => true,
        Some("exclude") => false,
        Some(o) => {
            r.attr_err(
                ev,
                "onmatch",
                format!("unknown PipeEvent onmatch `{o}` (include, exclude)"),
            );
            return;
        }
        None => {
            r.err(
                ev,
                "<PipeEvent> has no onmatch attribute (include or exclude)",
            );
            return;
        }
    };
    cfg.has_include_block |= include;
    let mut items: Vec<(Cond, Option<String>, Node<'_, '_>)> = Vec::new();
    for child in ev.children().filter(Node::is_element) {
        if child.tag_name().name() == "Rule" && mode == Combine::Legacy {
            r.err(
                child,
                "<Rule> needs an enclosing <RuleGroup> (schema 4.22 and later)",
            );
        } else if child.tag_name().name() == "Rule" {
            // Like RuleGroup, the default groupRelation of <Rule> is AND.
            let and = match child.attribute("groupRelation") {
                Some("or") => false,
                None | Some("and") => true,
                Some(o) => {
                    r.attr_err(
                        child,
                        "groupRelation",
                        format!("unknown Rule groupRelation `{o}` (and, or)"),
                    );
                    continue;
                }
            };
            let mut parts = Vec::new();
            for f in child.children().filter(Node::is_element) {
                if let Some(c) = field(r, f) {
                    parts.push(c);
                }
            }
            if parts.is_empty() {
                r.err(child, "<Rule> has no field filter");
                continue;
            }
            let cond = if and {
                Cond::And(parts)
            } else {
                Cond::Or(parts)
            };
            items.push((cond, child.attribute("name").map(str::to_string), child));
        } else if let Some(c) = field(r, child) {
            items.push((c, child.attribute("name").map(str::to_string), child));
        }
    }
    if mode == Combine::And && items.len() > 1 {
        let first = items[0].2;
        let name = items.iter().find_map(|(_, n, _)| n.clone());
        let cond = Cond::And(items.into_iter().map(|(c, _, _)| c).collect());
        items = vec![(cond, name, first)];
    } else if mode == Combine::Legacy && items.len() > 1 {
        // Group by field element name, in order of first appearance.
        let first = items[0].2;
        let name = items.iter().find_map(|(_, n, _)| n.clone());
        let mut groups: Vec<(&str, Vec<Cond>)> = Vec::new();
        for (c, _, node) in items {
            let field = node.tag_name().name();
            match groups.iter_mut().find(|(f, _)| *f == field) {
                Some((_, v)) => v.push(c),
                None => groups.push((field, vec![c])),
            }
        }
        let cond = Cond::And(groups.into_iter().map(|(_, v)| Cond::Or(v)).collect());
        items = vec![(cond, name, first)];
    }
    for (cond, name, node) in items {
        if include {
            let loc = r.loc(node);
            let name = match name.filter(|n| !n.is_empty()) {
                Some(n) => format!("Sysmon: {n}"),
                None => format!("Sysmon include {}:{}", file_label(r.file), loc.line),
            };
            cfg.includes.push(Include { cond, name, loc });
        } else {
            cfg.excludes.push(cond);
        }
    }
}

fn atom(field: FieldId, matcher: Matcher) -> Cond {
    Cond::Atom(Atom { field, matcher })
}

fn not(c: Cond) -> Cond {
    Cond::Not(Box::new(c))
}

/// One field filter element, e.g. `<PipeName condition="begin with">\x</PipeName>`.
fn field(r: &mut Reader<'_, '_>, f: Node<'_, '_>) -> Option<Cond> {
    let name = f.tag_name().name();
    let (field, numeric) = match name {
        "PipeName" => (FieldId::PIPE_NAME, false),
        "Image" => (FieldId::IMAGE, false),
        "ProcessId" => (FieldId::PROCESS_ID, true),
        "EventType" => (FieldId::EVENT_KIND, true),
        "User" => (FieldId::USER, false),
        "RuleName" | "UtcTime" | "ProcessGuid" => {
            r.err(f, format!("PipeEvent field <{name}> is not supplied by the pipe sensor (supported: PipeName, Image, User, ProcessId, EventType)"));
            return None;
        }
        _ => {
            r.err(f, format!("unknown PipeEvent field <{name}> (supported: PipeName, Image, User, ProcessId, EventType)"));
            return None;
        }
    };
    if let Some(child) = f.children().find(Node::is_element) {
        r.err(
            child,
            format!(
                "unexpected element <{}> inside <{name}>",
                child.tag_name().name()
            ),
        );
        return None;
    }
    let condition = f.attribute("condition").unwrap_or("is");
    let text: String = f
        .children()
        .filter(Node::is_text)
        .filter_map(|t| t.text())
        .collect();
    let multi = matches!(
        condition,
        "is any" | "contains any" | "contains all" | "excludes any" | "excludes all"
    );
    let values: Vec<&str> = if multi {
        text.split(';').collect()
    } else {
        vec![text.as_str()]
    };
    if multi && values.iter().any(|v| v.is_empty()) {
        r.err(
            f,
            format!("empty value in the `;`-separated list `{text}` of condition `{condition}`"),
        );
        return None;
    }

    if numeric {
        let mut nums = Vec::new();
        for v in &values {
            let n = if field == FieldId::EVENT_KIND {
                match v.to_ascii_lowercase().as_str() {
                    "createpipe" => Some(1),
                    "connectpipe" => Some(2),
                    _ => None,
                }
            } else {
                v.trim().parse::<u32>().ok()
            };
            match n {
                Some(n) => nums.push(atom(field, Matcher::NumEq(n))),
                None => {
                    let want = if field == FieldId::EVENT_KIND {
                        "CreatePipe or ConnectPipe"
                    } else {
                        "an unsigned 32-bit integer"
                    };
                    r.err(f, format!("<{name}> value `{v}` is not {want}"));
                    return None;
                }
            }
        }
        return match condition {
            "is" => nums.pop(),
            "is not" => nums.pop().map(not),
            "is any" => Some(Cond::Or(nums)),
            _ => {
                r.attr_err(
                    f,
                    "condition",
                    format!(
                        "condition `{condition}` does not apply to <{name}> (is, is not, is any)"
                    ),
                );
                None
            }
        };
    }

    // User: the sensor supplies a SID; well-known names are mapped to
    // SIDs, other names refused (crate::user, docs/rules.md "User").
    let mut user_sids: Vec<Option<Vec<&'static str>>> = vec![None; values.len()];
    if field == FieldId::USER {
        use crate::user::{rule_value, Anchor as UA, RuleValue};
        let anchor = match condition {
            "is" | "is not" | "is any" => UA::Whole,
            "contains" | "contains any" | "contains all" | "excludes" | "excludes any"
            | "excludes all" => UA::Contains,
            "begin with" | "not begin with" => UA::Start,
            "end with" | "not end with" => UA::End,
            _ => {
                r.attr_err(
                    f,
                    "condition",
                    format!("condition `{condition}` does not apply to <User> (is, is not, is any, contains…, excludes…, begin with, end with)"),
                );
                return None;
            }
        };
        for (v, slot) in values.iter().zip(user_sids.iter_mut()) {
            match rule_value(v, anchor, false) {
                Ok(RuleValue::Sid) => {}
                Ok(RuleValue::Sids(sids)) => *slot = Some(sids),
                Err(e) => {
                    r.err(f, format!("<User>: {e}"));
                    return None;
                }
            }
        }
    }
    let mk = |m: fn(String) -> Matcher, v: &str, sids: &Option<Vec<&'static str>>| match sids {
        Some(sids) => Cond::Or(
            sids.iter()
                .map(|s| atom(field, Matcher::Exact((*s).to_string())))
                .collect(),
        ),
        None => atom(field, m(v.to_string())),
    };
    let each = |m: fn(String) -> Matcher| -> Vec<Cond> {
        values
            .iter()
            .zip(&user_sids)
            .map(|(v, sids)| mk(m, v, sids))
            .collect()
    };
    let one = |m: fn(String) -> Matcher| mk(m, &text, user_sids.first().unwrap_or(&None));
    Some(match condition {
        "is" => one(Matcher::Exact),
        "is not" => not(one(Matcher::Exact)),
        "is any" => Cond::Or(each(Matcher::Exact)),
        "contains" => one(Matcher::Contains),
        "contains any" => Cond::Or(each(Matcher::Contains)),
        "contains all" => Cond::And(each(Matcher::Contains)),
        "excludes" => not(one(Matcher::Contains)),
        "excludes any" => Cond::Or(each(Matcher::Contains).into_iter().map(not).collect()),
        "excludes all" => not(Cond::Or(each(Matcher::Contains))),
        "begin with" => one(Matcher::Prefix),
        "not begin with" => not(one(Matcher::Prefix)),
        "end with" => one(Matcher::Suffix),
        "not end with" => not(one(Matcher::Suffix)),
        // The full path, or the file name after the last backslash.
        "image" => Cond::Or(vec![
            one(Matcher::Exact),
            atom(field, Matcher::Suffix(format!("\\{text}"))),
        ]),
        "less than" | "more than" => {
            r.attr_err(
                f,
                "condition",
                format!("condition `{condition}` on <{name}> is not supported: Sysmon documents it only as a lexical comparison, not the order (how case is folded, where `\\` and `_` sort against letters, numbers as text); a guess could silently differ from Sysmon (docs/rules.md)"),
            );
            return None;
        }
        _ => {
            r.attr_err(
                f,
                "condition",
                format!("unknown Sysmon condition `{condition}` on <{name}>"),
            );
            return None;
        }
    })
}
