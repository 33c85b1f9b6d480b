//! The `detection:` block shared by Sigma rules and native rules: named
//! selections (field tests with modifiers) and a `condition:` expression over
//! them. The two dialects differ only in how a value is read (Sigma wildcards
//! versus native literals) and which fields and modifiers they accept.

use std::path::Path;

use crate::model::{Atom, Cond, EventKind, FieldId, GlobTok, Matcher, SourceError};

use super::placeholders::Placeholders;
use super::yaml::{Kind, Node};

/// Which rule language a detection block is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    /// Sigma: values are wildcard patterns (`*`, `?`, `\` escapes); fields
    /// PipeName and Image.
    Sigma,
    /// Native: values are literal unless the `glob` modifier is given; fields
    /// PipeName, Image, ProcessId, EventKind.
    Native,
}

/// Parses `s` as a Sigma wildcard string: `*` any run, `?` one character,
/// `\` escapes `*`, `?` and `\`; a backslash before any other character (or
/// at the end) is a literal backslash.
pub fn parse_wildcards(s: &str) -> Vec<GlobTok> {
    let mut out: Vec<GlobTok> = Vec::new();
    let mut lit = String::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.peek() {
                Some(&n @ ('*' | '?' | '\\')) => {
                    lit.push(n);
                    chars.next();
                }
                _ => lit.push('\\'),
            },
            '*' | '?' => {
                if !lit.is_empty() {
                    out.push(GlobTok::Lit(std::mem::take(&mut lit)));
                }
                let tok = if c == '*' {
                    GlobTok::Star
                } else {
                    GlobTok::One
                };
                // `**` is the same as `*`.
                if !(tok == GlobTok::Star && out.last() == Some(&GlobTok::Star)) {
                    out.push(tok);
                }
            }
            _ => lit.push(c),
        }
    }
    if !lit.is_empty() {
        out.push(GlobTok::Lit(lit));
    }
    out
}

/// Where a string test is anchored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Anchor {
    /// The whole field.
    Whole,
    /// Anywhere.
    Contains,
    /// At the start.
    Start,
    /// At the end.
    End,
}

/// The matcher for wildcard tokens anchored as `anchor`: a literal kind when
/// the pattern has no wildcard, a [`Matcher::Glob`] otherwise.
pub fn glob_matcher(toks: Vec<GlobTok>, anchor: Anchor) -> Matcher {
    let literal: Option<String> = toks
        .iter()
        .map(|t| match t {
            GlobTok::Lit(s) => Some(s.as_str()),
            _ => None,
        })
        .collect::<Option<Vec<&str>>>()
        .map(|v| v.concat());
    if let Some(lit) = literal {
        return match anchor {
            Anchor::Whole => Matcher::Exact(lit),
            Anchor::Contains => Matcher::Contains(lit),
            Anchor::Start => Matcher::Prefix(lit),
            Anchor::End => Matcher::Suffix(lit),
        };
    }
    let mut out = Vec::with_capacity(toks.len() + 2);
    if matches!(anchor, Anchor::Contains | Anchor::End) {
        out.push(GlobTok::Star);
    }
    for t in toks {
        if !(t == GlobTok::Star && out.last() == Some(&GlobTok::Star)) {
            out.push(t);
        }
    }
    if matches!(anchor, Anchor::Contains | Anchor::Start) && out.last() != Some(&GlobTok::Star) {
        out.push(GlobTok::Star);
    }
    Matcher::Glob(out)
}

/// A case-sensitive regex equivalent to the wildcard tokens anchored as
/// `anchor` (Sigma `cased`).
fn glob_regex(toks: &[GlobTok], anchor: Anchor) -> String {
    let mut re = String::from("(?s)");
    if matches!(anchor, Anchor::Whole | Anchor::Start) {
        re.push('^');
    }
    for t in toks {
        match t {
            GlobTok::Lit(s) => re.push_str(&regex::escape(s)),
            GlobTok::Star => re.push_str(".*"),
            GlobTok::One => re.push('.'),
        }
    }
    if matches!(anchor, Anchor::Whole | Anchor::End) {
        re.push('$');
    }
    re
}

/// The field names each dialect accepts.
fn field_by_name(name: &str, dialect: Dialect) -> Option<FieldId> {
    match (name, dialect) {
        ("PipeName", _) => Some(FieldId::PIPE_NAME),
        ("Image", _) => Some(FieldId::IMAGE),
        ("User", _) => Some(FieldId::USER),
        ("ProcessId", Dialect::Native) => Some(FieldId::PROCESS_ID),
        ("EventKind", Dialect::Native) => Some(FieldId::EVENT_KIND),
        _ => None,
    }
}

/// What a field key's modifiers ask for.
#[derive(Debug, Default)]
struct Mods {
    anchor: Option<Anchor>,
    glob: bool,
    exact: bool,
    re: bool,
    re_i: bool,
    re_m: bool,
    re_s: bool,
    all: bool,
    cased: bool,
    exists: bool,
    neq: bool,
    expand: bool,
}

/// Reads a detection block into one condition, pushing every error found.
pub(crate) struct DetectionReader<'a> {
    pub file: &'a Path,
    pub dialect: Dialect,
    pub errors: &'a mut Vec<SourceError>,
    /// Values of `expand` placeholders (Sigma), if the caller has any.
    pub placeholders: Option<&'a Placeholders>,
}

impl DetectionReader<'_> {
    fn err(&mut self, node: &Node, msg: impl Into<String>) {
        self.errors.push(node.err(self.file, msg));
    }

    fn err_at(&mut self, node: &Node, off: usize, msg: impl Into<String>) {
        let (line, col) = node.col_at(off);
        self.errors.push(SourceError::new(
            crate::model::SourceLoc {
                file: self.file.to_path_buf(),
                line,
                col,
            },
            msg,
        ));
    }

    /// Reads `detection:` (a mapping of selections plus `condition`).
    pub fn read(&mut self, detection: &Node) -> Option<Cond> {
        let before = self.errors.len();
        let Kind::Map(entries) = &detection.kind else {
            self.err(
                detection,
                format!(
                    "`detection` must be a mapping, found {}",
                    detection.kind_name()
                ),
            );
            return None;
        };
        let mut selections: Vec<(String, Option<Cond>)> = Vec::new();
        let mut condition: Option<&Node> = None;
        for (k, v) in entries {
            let name = k.as_str().unwrap_or_default();
            match name {
                "condition" => condition = Some(v),
                "timeframe" => self.err(k, "`timeframe` (temporal aggregation) is not supported"),
                _ => {
                    let c = self.selection(name, v);
                    selections.push((name.to_string(), c));
                }
            }
        }
        let Some(condition) = condition else {
            self.err(detection, "`detection` has no `condition`");
            return None;
        };
        let cond = match &condition.kind {
            Kind::Scalar { .. } if !condition.is_null() => self.condition(condition, &selections),
            Kind::Seq(items) if !items.is_empty() => {
                // Sigma 1.0: a list of conditions means any of them.
                let mut out = Vec::new();
                for item in items {
                    if item.as_str().is_none() || item.is_null() {
                        self.err(
                            item,
                            format!("a condition must be a string, found {}", item.kind_name()),
                        );
                    } else if let Some(c) = self.condition(item, &selections) {
                        out.push(c);
                    }
                }
                Some(Cond::Or(out))
            }
            _ => {
                self.err(
                    condition,
                    format!(
                        "`condition` must be a string, found {}",
                        condition.kind_name()
                    ),
                );
                None
            }
        };
        if self.errors.len() > before {
            return None;
        }
        cond
    }

    /// One named selection: a mapping (all fields must match) or a list of
    /// mappings (any of them must match).
    fn selection(&mut self, name: &str, v: &Node) -> Option<Cond> {
        match &v.kind {
            Kind::Map(entries) => {
                if entries.is_empty() {
                    self.err(v, format!("selection `{name}` is empty"));
                    return None;
                }
                let mut all = Vec::new();
                let mut ok = true;
                for (k, val) in entries {
                    match self.field_test(k, val) {
                        Some(c) => all.push(c),
                        None => ok = false,
                    }
                }
                ok.then(|| one_or(all, Cond::And))
            }
            Kind::Seq(items) => {
                if items.is_empty() {
                    self.err(v, format!("selection `{name}` is an empty list"));
                    return None;
                }
                if items.iter().all(|i| !matches!(i.kind, Kind::Map(_))) {
                    self.err(
                        v,
                        format!("selection `{name}` is a list of plain values (a keyword search without a field), which is not supported"),
                    );
                    return None;
                }
                let mut any = Vec::new();
                let mut ok = true;
                for item in items {
                    if !matches!(item.kind, Kind::Map(_)) {
                        self.err(item, format!("selection `{name}`: every list item must be a mapping of fields, found {}", item.kind_name()));
                        ok = false;
                        continue;
                    }
                    match self.selection(name, item) {
                        Some(c) => any.push(c),
                        None => ok = false,
                    }
                }
                ok.then(|| one_or(any, Cond::Or))
            }
            _ => {
                self.err(
                    v,
                    format!(
                        "selection `{name}` must be a mapping or a list of mappings, found {}",
                        v.kind_name()
                    ),
                );
                None
            }
        }
    }

    /// `Field|mod|mod: value-or-list`.
    fn field_test(&mut self, key: &Node, val: &Node) -> Option<Cond> {
        let key_text = key.as_str().unwrap_or_default();
        let mut parts = key_text.split('|');
        let field_name = parts.next().unwrap_or_default();
        let Some(field) = field_by_name(field_name, self.dialect) else {
            let known = match self.dialect {
                Dialect::Sigma => "PipeName, Image, User",
                Dialect::Native => "PipeName, Image, User, ProcessId, EventKind",
            };
            self.err(
                key,
                format!("unsupported field `{field_name}` (supported: {known})"),
            );
            return None;
        };
        let mut m = Mods::default();
        let mut off = field_name.chars().count() + 1;
        let mut ok = true;
        for modifier in parts {
            let set_anchor = |m: &mut Mods, a: Anchor| {
                let dup = m.anchor.is_some();
                m.anchor = Some(a);
                dup
            };
            let conflict = match (modifier, self.dialect) {
                ("contains", _) => set_anchor(&mut m, Anchor::Contains),
                ("startswith", _) => set_anchor(&mut m, Anchor::Start),
                ("endswith", _) => set_anchor(&mut m, Anchor::End),
                ("all", _) => std::mem::replace(&mut m.all, true),
                ("re", _) => std::mem::replace(&mut m.re, true),
                ("i", _) if m.re => std::mem::replace(&mut m.re_i, true),
                ("m", _) if m.re => std::mem::replace(&mut m.re_m, true),
                ("s", _) if m.re => std::mem::replace(&mut m.re_s, true),
                ("cased", Dialect::Sigma) => std::mem::replace(&mut m.cased, true),
                ("exists", Dialect::Sigma) => std::mem::replace(&mut m.exists, true),
                ("neq", Dialect::Sigma) => std::mem::replace(&mut m.neq, true),
                ("expand", Dialect::Sigma) => std::mem::replace(&mut m.expand, true),
                ("fieldref", Dialect::Sigma) => {
                    self.err_at(
                        key,
                        off,
                        format!("modifier `fieldref` in `{key_text}` is not supported: a pipe event's only string fields are PipeName, Image and User, and comparing one with the other needs a field-to-field atom the channel format does not have (docs/rules.md)"),
                    );
                    ok = false;
                    false
                }
                ("lt" | "lte" | "gt" | "gte", Dialect::Sigma) => {
                    self.err_at(
                        key,
                        off,
                        format!("modifier `{modifier}` in `{key_text}` compares numbers; the Sigma fields of a pipe event (PipeName, Image, User) are strings"),
                    );
                    ok = false;
                    false
                }
                ("glob", Dialect::Native) => std::mem::replace(&mut m.glob, true),
                ("exact", Dialect::Native) => std::mem::replace(&mut m.exact, true),
                ("i" | "m" | "s", _) => {
                    self.err_at(
                        key,
                        off,
                        format!("modifier `{modifier}` is only valid after `re` (in `{key_text}`)"),
                    );
                    ok = false;
                    false
                }
                _ => {
                    self.err_at(
                        key,
                        off,
                        format!("unsupported modifier `{modifier}` in `{key_text}`"),
                    );
                    ok = false;
                    false
                }
            };
            if conflict {
                self.err_at(
                    key,
                    off,
                    format!(
                        "modifier `{modifier}` conflicts with an earlier modifier in `{key_text}`"
                    ),
                );
                ok = false;
            }
            off += modifier.chars().count() + 1;
        }
        if !ok {
            return None;
        }
        // `glob` combines with `contains`/`startswith`/`endswith`; `re`,
        // `exists` and `exact` stand alone.
        let exclusive = [m.re, m.exists, m.exact, m.glob || m.anchor.is_some()];
        if exclusive.iter().filter(|b| **b).count() > 1 {
            self.err(key, format!("modifiers in `{key_text}` cannot be combined"));
            return None;
        }
        if m.cased && (m.re || m.exists) {
            self.err(
                key,
                format!("`cased` cannot be combined with `re` or `exists` in `{key_text}`"),
            );
            return None;
        }
        // As the Sigma specification and pySigma: `exists` takes an unmodified
        // boolean; placeholders expand into wildcard values, not regexes.
        if m.exists && (m.neq || m.expand || m.all) {
            self.err(
                key,
                format!("`exists` cannot be combined with other modifiers in `{key_text}`"),
            );
            return None;
        }
        if m.expand && m.re {
            self.err(
                key,
                format!("`expand` with `re` is not supported in `{key_text}`: placeholder values are wildcard strings"),
            );
            return None;
        }
        let numeric = matches!(field, FieldId::PROCESS_ID | FieldId::EVENT_KIND);
        if numeric && (m.re || m.glob || m.anchor.is_some() || m.cased || m.all) {
            self.err(key, format!("field `{field_name}` is numeric: only equality (optionally `exact`) applies, not `{key_text}`"));
            return None;
        }
        if m.exists {
            let Some(b) = val.as_str().filter(|_| !val.is_null()) else {
                self.err(val, "`exists` takes `true` or `false`");
                return None;
            };
            let present = Cond::Atom(Atom {
                field,
                matcher: Matcher::Glob(vec![GlobTok::Star]),
            });
            return match b {
                "true" => Some(present),
                "false" => Some(Cond::Not(Box::new(present))),
                _ => {
                    self.err(
                        val,
                        format!("`exists` takes `true` or `false`, found `{b}`"),
                    );
                    None
                }
            };
        }
        let values: Vec<&Node> = match &val.kind {
            Kind::Seq(items) => {
                if items.is_empty() {
                    self.err(val, format!("`{key_text}` has an empty list of values"));
                    return None;
                }
                items.iter().collect()
            }
            Kind::Scalar { .. } if m.all => {
                // Sigma: "Single item values are not allowed to have an
                // `all` modifier".
                self.err(
                    val,
                    format!("`all` in `{key_text}` needs a list of values, found a single value"),
                );
                return None;
            }
            Kind::Scalar { .. } => vec![val],
            Kind::Map(_) => {
                self.err(val, format!("the value of `{key_text}` must be a scalar or a list of scalars, found a mapping"));
                return None;
            }
        };
        let mut conds = Vec::new();
        for v in values {
            match self.value(field, field_name, &m, key_text, v) {
                Some(c) => conds.push(c),
                None => ok = false,
            }
        }
        if !ok {
            return None;
        }
        let item = if m.all {
            one_or(flat_unique(conds, true), Cond::And)
        } else {
            one_or(flat_unique(conds, false), Cond::Or)
        };
        // `neq` negates the whole item (pySigma: `not (v1 or v2 ...)`).
        Some(if m.neq {
            Cond::Not(Box::new(item))
        } else {
            item
        })
    }

    /// One value of a field test.
    fn value(
        &mut self,
        field: FieldId,
        field_name: &str,
        m: &Mods,
        key_text: &str,
        v: &Node,
    ) -> Option<Cond> {
        if !matches!(v.kind, Kind::Scalar { .. }) {
            self.err(
                v,
                format!(
                    "values of `{key_text}` must be scalars, found {}",
                    v.kind_name()
                ),
            );
            return None;
        }
        if v.is_null() {
            if m.re || m.glob || m.anchor.is_some() || m.all || m.cased || m.exact {
                self.err(
                    v,
                    format!("`null` cannot be combined with the modifiers of `{key_text}`"),
                );
                return None;
            }
            if matches!(field, FieldId::PROCESS_ID | FieldId::EVENT_KIND) {
                self.err(
                    v,
                    format!("`null` does not apply to the numeric field `{field_name}`"),
                );
                return None;
            }
            // Sigma null: the field is absent or empty, i.e. it does not hold
            // at least one character.
            return Some(Cond::Not(Box::new(Cond::Atom(Atom {
                field,
                matcher: Matcher::Glob(vec![GlobTok::One, GlobTok::Star]),
            }))));
        }
        let text = v.as_str().unwrap_or_default();
        if field == FieldId::USER && !m.re {
            // The sensor supplies User as a SID; names are mapped here
            // (crate::user, docs/rules.md "User").
            use crate::user::{rule_value, RuleValue};
            let anchor = m.anchor.unwrap_or(Anchor::Whole);
            let wildcards = match self.dialect {
                Dialect::Sigma => parse_wildcards(text)
                    .iter()
                    .any(|t| !matches!(t, GlobTok::Lit(_))),
                Dialect::Native => m.glob && text.contains(['*', '?']),
            };
            match rule_value(text, anchor, wildcards || m.expand) {
                Ok(RuleValue::Sid) => {}
                Ok(RuleValue::Sids(sids)) => {
                    let atoms = sids
                        .into_iter()
                        .map(|sid| {
                            Cond::Atom(Atom {
                                field,
                                matcher: Matcher::Exact(sid.to_string()),
                            })
                        })
                        .collect();
                    return Some(one_or(atoms, Cond::Or));
                }
                Err(e) => {
                    self.err(v, format!("`{key_text}`: {e}"));
                    return None;
                }
            }
        }
        let matcher = match field {
            FieldId::PROCESS_ID => match text.parse::<u32>() {
                Ok(n) => Matcher::NumEq(n),
                Err(_) => {
                    self.err(
                        v,
                        format!("`{field_name}` needs an unsigned 32-bit integer, found `{text}`"),
                    );
                    return None;
                }
            },
            FieldId::EVENT_KIND => match EventKind::from_name(text) {
                Some(k) => Matcher::NumEq(k.value()),
                None => {
                    self.err(
                        v,
                        format!("`EventKind` is `create` (1) or `connect` (2), found `{text}`"),
                    );
                    return None;
                }
            },
            _ if m.re => {
                let mut pattern = String::new();
                if m.re_m {
                    pattern.push_str("(?m)");
                }
                if m.re_s {
                    pattern.push_str("(?s)");
                }
                pattern.push_str(text);
                let check = if m.re_i {
                    format!("(?i){pattern}")
                } else {
                    pattern.clone()
                };
                if let Err(e) = regex::Regex::new(&check) {
                    let detail = e
                        .to_string()
                        .lines()
                        .last()
                        .unwrap_or_default()
                        .trim()
                        .to_string();
                    self.err(
                        v,
                        format!("invalid regular expression `{text}` in `{key_text}`: {detail}"),
                    );
                    return None;
                }
                Matcher::Regex {
                    pattern,
                    case_insensitive: m.re_i,
                }
            }
            _ if m.expand => {
                let anchor = m.anchor.unwrap_or(Anchor::Whole);
                let patterns = match super::placeholders::expand(text, self.placeholders) {
                    Ok(p) => p,
                    Err(e) => {
                        self.err(v, format!("`{key_text}`: {e}"));
                        return None;
                    }
                };
                let atoms = patterns
                    .into_iter()
                    .map(|toks| {
                        let matcher = if m.cased {
                            Matcher::Regex {
                                pattern: glob_regex(&toks, anchor),
                                case_insensitive: false,
                            }
                        } else {
                            glob_matcher(toks, anchor)
                        };
                        Cond::Atom(Atom { field, matcher })
                    })
                    .collect();
                return Some(one_or(atoms, Cond::Or));
            }
            _ => {
                let anchor = m.anchor.unwrap_or(Anchor::Whole);
                let toks = match self.dialect {
                    Dialect::Sigma => parse_wildcards(text),
                    Dialect::Native if m.glob => parse_wildcards(text),
                    Dialect::Native => {
                        if text.is_empty() {
                            Vec::new()
                        } else {
                            vec![GlobTok::Lit(text.to_string())]
                        }
                    }
                };
                if m.cased {
                    Matcher::Regex {
                        pattern: glob_regex(&toks, anchor),
                        case_insensitive: false,
                    }
                } else {
                    glob_matcher(toks, anchor)
                }
            }
        };
        Some(Cond::Atom(Atom { field, matcher }))
    }

    /// Parses and resolves a condition string.
    fn condition(&mut self, node: &Node, selections: &[(String, Option<Cond>)]) -> Option<Cond> {
        let text = node.as_str().unwrap_or_default();
        let toks = match tokenize(text) {
            Ok(t) => t,
            Err((off, msg)) => {
                self.err_at(node, off, msg);
                return None;
            }
        };
        let mut p = CondParser {
            toks: &toks,
            pos: 0,
            text_len: text.chars().count(),
            selections,
        };
        match p.or_expr().and_then(|c| match p.toks.get(p.pos) {
            None => Ok(c),
            Some(t) => Err((t.off, format!("unexpected `{}` in condition", t.text))),
        }) {
            Ok(c) => Some(c),
            Err((off, msg)) => {
                self.err_at(node, off, msg);
                None
            }
        }
    }
}

/// The values of one field test combined under one operator (`and` when
/// `all`): a value that is itself the same operator is spliced in, and a
/// condition equal to an earlier one is dropped (`a or a` is `a`). Sigma's
/// `User|contains: ['AUTHORI', 'AUTORI']` maps both values to the same
/// three `NT AUTHORITY` SIDs; this keeps them three atoms, not six.
fn flat_unique(conds: Vec<Cond>, all: bool) -> Vec<Cond> {
    let mut out: Vec<Cond> = Vec::with_capacity(conds.len());
    let push = |c: Cond, out: &mut Vec<Cond>| {
        if !out.contains(&c) {
            out.push(c);
        }
    };
    for c in conds {
        match c {
            Cond::And(inner) if all => inner.into_iter().for_each(|c| push(c, &mut out)),
            Cond::Or(inner) if !all => inner.into_iter().for_each(|c| push(c, &mut out)),
            c => push(c, &mut out),
        }
    }
    out
}

fn one_or(mut v: Vec<Cond>, f: fn(Vec<Cond>) -> Cond) -> Cond {
    if v.len() == 1 {
        v.pop().unwrap_or(Cond::Const(false))
    } else {
        f(v)
    }
}

#[derive(Debug, Clone, PartialEq)]
enum TokKind {
    Word,
    LParen,
    RParen,
}

#[derive(Debug, Clone)]
struct Tok {
    kind: TokKind,
    text: String,
    /// Offset in characters from the start of the condition.
    off: usize,
}

fn tokenize(s: &str) -> Result<Vec<Tok>, (usize, String)> {
    let chars: Vec<char> = s.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '(' || c == ')' {
            out.push(Tok {
                kind: if c == '(' {
                    TokKind::LParen
                } else {
                    TokKind::RParen
                },
                text: c.to_string(),
                off: i,
            });
            i += 1;
        } else if c == '|' {
            return Err((
                i,
                "aggregation expressions (`| count() ...`) are not supported".into(),
            ));
        } else if c.is_alphanumeric() || matches!(c, '_' | '*' | '-' | '.') {
            let start = i;
            while i < chars.len()
                && (chars[i].is_alphanumeric() || matches!(chars[i], '_' | '*' | '-' | '.'))
            {
                i += 1;
            }
            out.push(Tok {
                kind: TokKind::Word,
                text: chars[start..i].iter().collect(),
                off: start,
            });
        } else {
            return Err((i, format!("unexpected character `{c}` in condition")));
        }
    }
    Ok(out)
}

/// Matches a selection-name pattern whose only wildcard is `*`.
fn name_matches(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    // dp[j] = pattern[..i] matches name[..j]
    let mut dp = vec![false; n.len() + 1];
    dp[0] = true;
    for &pc in &p {
        let mut next = vec![false; n.len() + 1];
        if pc == '*' {
            let mut any = false;
            for j in 0..=n.len() {
                any |= dp[j];
                next[j] = any;
            }
        } else {
            for j in 1..=n.len() {
                next[j] = dp[j - 1] && n[j - 1] == pc;
            }
        }
        dp = next;
    }
    dp[n.len()]
}

type PResult = Result<Cond, (usize, String)>;

/// `1 of`, `2 of` ... or `all of`.
#[derive(Debug, Clone, Copy)]
enum Quant {
    AtLeast(usize),
    All,
}

/// The most conjunctions `N of x` (1 < N < the number of selections) may
/// expand into: it becomes the disjunction, over every choice of N of the
/// selections, of their conjunction.
pub const MAX_N_OF_COMBINATIONS: usize = 64;

/// At least `n` of `conds` hold: `or` for 1, `and` for all of them, else
/// the disjunction of the conjunctions of every `n`-subset (in order).
fn at_least(n: usize, conds: Vec<Cond>) -> Result<Cond, String> {
    let k = conds.len();
    if n == 1 {
        return Ok(one_or(conds, Cond::Or));
    }
    if n == k {
        return Ok(one_or(conds, Cond::And));
    }
    if n > k {
        return Err(format!(
            "asks for {n} selections but the pattern matches only {k}"
        ));
    }
    // C(k, n), stopping as soon as it passes the limit.
    let mut count: usize = 1;
    for i in 0..n {
        count = count.saturating_mul(k - i) / (i + 1);
        if count > MAX_N_OF_COMBINATIONS {
            return Err(format!(
                "expands to more than {MAX_N_OF_COMBINATIONS} combinations of {n} of {k} selections (write the combinations you mean, or fewer selections)"
            ));
        }
    }
    let mut out = Vec::new();
    let mut pick: Vec<usize> = (0..n).collect();
    loop {
        out.push(Cond::And(pick.iter().map(|&i| conds[i].clone()).collect()));
        // Next combination in lexicographic order.
        let Some(i) = (0..n).rev().find(|&i| pick[i] != i + k - n) else {
            break;
        };
        pick[i] += 1;
        for j in i + 1..n {
            pick[j] = pick[j - 1] + 1;
        }
    }
    Ok(Cond::Or(out))
}

struct CondParser<'a> {
    toks: &'a [Tok],
    pos: usize,
    text_len: usize,
    selections: &'a [(String, Option<Cond>)],
}

impl CondParser<'_> {
    fn peek_word(&self, w: &str) -> bool {
        matches!(self.toks.get(self.pos), Some(t) if t.kind == TokKind::Word && t.text == w)
    }

    fn end_off(&self) -> usize {
        self.text_len
    }

    fn or_expr(&mut self) -> PResult {
        let mut v = vec![self.and_expr()?];
        while self.peek_word("or") {
            self.pos += 1;
            v.push(self.and_expr()?);
        }
        Ok(one_or(v, Cond::Or))
    }

    fn and_expr(&mut self) -> PResult {
        let mut v = vec![self.not_expr()?];
        while self.peek_word("and") {
            self.pos += 1;
            v.push(self.not_expr()?);
        }
        Ok(one_or(v, Cond::And))
    }

    fn not_expr(&mut self) -> PResult {
        if self.peek_word("not") {
            self.pos += 1;
            return Ok(Cond::Not(Box::new(self.not_expr()?)));
        }
        self.primary()
    }

    fn primary(&mut self) -> PResult {
        let Some(t) = self.toks.get(self.pos).cloned() else {
            return Err((
                self.end_off(),
                "condition ends where a selection, `not`, `(` or `N of`/`all of` was expected"
                    .into(),
            ));
        };
        self.pos += 1;
        match t.kind {
            TokKind::LParen => {
                let c = self.or_expr()?;
                match self.toks.get(self.pos) {
                    Some(r) if r.kind == TokKind::RParen => {
                        self.pos += 1;
                        Ok(c)
                    }
                    Some(o) => Err((
                        o.off,
                        format!(
                            "expected `)` (to close the `(` at column offset {}), found `{}`",
                            t.off, o.text
                        ),
                    )),
                    None => Err((self.end_off(), "unclosed `(` in condition".into())),
                }
            }
            TokKind::RParen => Err((t.off, "unexpected `)` in condition".into())),
            TokKind::Word => {
                let w = t.text.as_str();
                if self.peek_word("of") {
                    self.pos += 1;
                    let quant = match w {
                        "any" => Quant::AtLeast(1),
                        "all" => Quant::All,
                        _ => match w.parse::<usize>() {
                            Ok(n) if n >= 1 => Quant::AtLeast(n),
                            _ => {
                                return Err((
                                    t.off,
                                    format!("`{w} of` is not supported (a count such as `1 of` or `2 of`, `any of` or `all of`)"),
                                ))
                            }
                        },
                    };
                    let Some(target) = self
                        .toks
                        .get(self.pos)
                        .cloned()
                        .filter(|x| x.kind == TokKind::Word)
                    else {
                        return Err((
                            self.toks.get(self.pos).map_or(self.end_off(), |x| x.off),
                            format!("`{w} of` must be followed by a selection pattern or `them`"),
                        ));
                    };
                    self.pos += 1;
                    let picked: Vec<&(String, Option<Cond>)> = if target.text == "them" {
                        self.selections
                            .iter()
                            .filter(|(n, _)| !n.starts_with('_'))
                            .collect()
                    } else {
                        self.selections
                            .iter()
                            .filter(|(n, _)| name_matches(&target.text, n))
                            .collect()
                    };
                    if picked.is_empty() {
                        return Err((
                            target.off,
                            format!("`{}` matches no selection", target.text),
                        ));
                    }
                    let conds: Vec<Cond> = picked
                        .iter()
                        .map(|(_, c)| c.clone().unwrap_or(Cond::Const(false)))
                        .collect();
                    return match quant {
                        Quant::All => Ok(one_or(conds, Cond::And)),
                        Quant::AtLeast(n) => at_least(n, conds)
                            .map_err(|e| (t.off, format!("`{w} of {}`: {e}", target.text))),
                    };
                }
                match w {
                    "and" | "or" | "of" | "them" => {
                        Err((t.off, format!("unexpected `{w}` in condition")))
                    }
                    "near" => Err((t.off, "`near` is not supported".into())),
                    _ if w.contains('*') => Err((
                        t.off,
                        format!("wildcard `{w}` is only allowed after `N of` / `all of`"),
                    )),
                    _ => match self.selections.iter().find(|(n, _)| n == w) {
                        Some((_, c)) => Ok(c.clone().unwrap_or(Cond::Const(false))),
                        None => Err((t.off, format!("unknown selection `{w}` in condition"))),
                    },
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_and_escapes() {
        use GlobTok::*;
        let l = |s: &str| Lit(s.to_string());
        assert_eq!(
            parse_wildcards(r"\MICROSOFT##WID\tsql\query"),
            vec![l(r"\MICROSOFT##WID\tsql\query")]
        );
        assert_eq!(parse_wildcards(r"a\*b"), vec![l("a*b")]);
        assert_eq!(parse_wildcards(r"a\?b"), vec![l("a?b")]);
        assert_eq!(parse_wildcards(r"a\\b"), vec![l(r"a\b")]);
        assert_eq!(parse_wildcards(r"a\\*"), vec![l(r"a\"), Star]);
        assert_eq!(parse_wildcards(r"a\\\*"), vec![l(r"a\*")]);
        assert_eq!(parse_wildcards(r"a\\\\"), vec![l(r"a\\")]);
        assert_eq!(parse_wildcards(r"a\"), vec![l(r"a\")]);
        assert_eq!(parse_wildcards("*a?c"), vec![Star, l("a"), One, l("c")]);
        assert_eq!(parse_wildcards("a**b"), vec![l("a"), Star, l("b")]);
        assert_eq!(parse_wildcards(""), vec![]);
    }

    #[test]
    fn glob_matcher_simplifies() {
        assert_eq!(
            glob_matcher(parse_wildcards(r"\Posh*"), Anchor::Whole),
            Matcher::Glob(vec![GlobTok::Lit(r"\Posh".into()), GlobTok::Star])
        );
        assert_eq!(
            glob_matcher(parse_wildcards("x"), Anchor::Contains),
            Matcher::Contains("x".into())
        );
        assert_eq!(
            glob_matcher(parse_wildcards("*x"), Anchor::Contains),
            Matcher::Glob(vec![GlobTok::Star, GlobTok::Lit("x".into()), GlobTok::Star])
        );
        assert_eq!(
            glob_matcher(parse_wildcards("a?"), Anchor::End),
            Matcher::Glob(vec![GlobTok::Star, GlobTok::Lit("a".into()), GlobTok::One])
        );
    }

    #[test]
    fn selection_name_patterns() {
        assert!(name_matches("filter_*", "filter_main"));
        assert!(name_matches("selection*", "selection"));
        assert!(!name_matches("filter_*", "selection"));
        assert!(name_matches("*", "x"));
        assert!(!name_matches("a*b", "ab_"));
    }
}
