//! The writer: [`RuleSet`] → channel-file bytes (format version 1).
//!
//! The compiler applies the same [`Limits`] and capability checks as the
//! parser, so a rule the sensor would reject fails here, at authoring time,
//! with the rule's source location. Every file it writes is parsed back with
//! `channel_parser::parse` before it is returned.

use crate::automata::dfa::DfaBuildError;
use crate::automata::prefilter::{Prefilter, DENSE_BUDGET as PREFILTER_DENSE_BUDGET};
use crate::model::{Atom, Cond, GlobTok, Matcher, Rule, RuleSet, SourceLoc};
use channel_format::{self as fmt, op, AtomKind, FieldId, FieldType, Limits, SectionKind};
use channel_parser::{fold_char, Capabilities};
use std::collections::{BTreeMap, HashMap};
use std::fmt as stdfmt;

/// What the compiler is asked to produce.
#[derive(Debug, Clone)]
pub struct CompileOptions {
    /// Content sequence number written in the header.
    pub sequence: u64,
    /// The fields the target sensor supplies; rules reading others are refused.
    pub capabilities: Capabilities,
    /// Limits (the parser's defaults unless told otherwise).
    pub limits: Limits,
    /// Optional flags to set in the header.
    pub optional_flags: u32,
    /// Staged-rollout policy / rollback instruction for the ROLLOUT section.
    pub rollout: Option<channel_parser::RolloutPolicy>,
}

impl Default for CompileOptions {
    fn default() -> Self {
        CompileOptions {
            sequence: 1,
            capabilities: Capabilities::SENSOR_V1,
            limits: Limits::DEFAULT,
            optional_flags: 0,
            rollout: None,
        }
    }
}

/// Why a rule set could not be compiled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompileError {
    /// Where the offending rule is defined.
    pub loc: Option<SourceLoc>,
    /// The rule's id and name.
    pub rule: Option<(u32, String)>,
    /// A stable name for the kind of failure.
    pub kind: CompileErrorKind,
    /// What is wrong.
    pub message: String,
}

/// Kinds of [`CompileError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompileErrorKind {
    /// Two rules share an id.
    DuplicateId,
    /// A rule reads a field the target sensor does not supply.
    FieldNotSupplied,
    /// A value the format cannot hold (bad literal, bad regex...).
    InvalidRule,
    /// A limit (program size, DFA size budget, counts) is exceeded.
    LimitExceeded,
    /// The written file failed validation: a compiler bug.
    Internal,
}

impl stdfmt::Display for CompileError {
    fn fmt(&self, f: &mut stdfmt::Formatter<'_>) -> stdfmt::Result {
        if let Some(loc) = &self.loc {
            write!(f, "{loc}: ")?;
        }
        if let Some((id, name)) = &self.rule {
            write!(f, "rule {id} ({name}): ")?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for CompileError {}

fn rule_err(rule: &Rule, kind: CompileErrorKind, message: impl Into<String>) -> CompileError {
    CompileError {
        loc: Some(rule.source.clone()),
        rule: Some((rule.id, rule.name.clone())),
        kind,
        message: message.into(),
    }
}

/// Folds a string with the sensor's case folding.
pub fn fold(s: &str) -> String {
    s.chars().map(fold_char).collect()
}

/// Escapes a literal for the stored glob encoding.
fn glob_escape(out: &mut String, lit: &str) {
    for c in lit.chars() {
        if matches!(c, '*' | '?' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
}

/// Truncates to at most `max` bytes at a character boundary.
fn truncate_chars(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum AtomSpec {
    Literal {
        field: FieldId,
        kind: AtomKind,
        lit: String,
    },
    Glob {
        field: FieldId,
        pattern: String,
        prefilter: Option<String>,
    },
    Regex {
        field: FieldId,
        source: String,
        ci: bool,
        prefilters: Vec<String>,
    },
    Num {
        field: FieldId,
        value: u32,
    },
}

impl AtomSpec {
    fn field(&self) -> FieldId {
        match self {
            AtomSpec::Literal { field, .. }
            | AtomSpec::Glob { field, .. }
            | AtomSpec::Regex { field, .. }
            | AtomSpec::Num { field, .. } => *field,
        }
    }
    /// The literal the prefilter reports for this atom (a literal's own, a
    /// glob's gate; a regex's shortest gate).
    fn gate_literal(&self) -> Option<&str> {
        match self {
            AtomSpec::Literal { lit, .. } => Some(lit),
            AtomSpec::Glob { prefilter, .. } => prefilter.as_deref(),
            AtomSpec::Regex { prefilters, .. } => prefilters
                .iter()
                .min_by_key(|l| l.len())
                .map(String::as_str),
            AtomSpec::Num { .. } => None,
        }
    }

    /// A prefix, suffix or exact literal.
    fn is_anchored_literal(&self) -> bool {
        matches!(self, AtomSpec::Literal { kind, .. }
            if matches!(*kind, AtomKind::PREFIX | AtomKind::SUFFIX | AtomKind::EXACT))
    }

    /// Whether the atom can be decided false when the prefilter reports
    /// nothing (it has a literal the prefilter can report).
    fn prefilterable(&self) -> bool {
        match self {
            AtomSpec::Literal { .. } => true,
            AtomSpec::Glob { prefilter, .. } => prefilter.is_some(),
            AtomSpec::Regex { prefilters, .. } => !prefilters.is_empty(),
            AtomSpec::Num { .. } => false,
        }
    }
}

/// One rule lowered to atoms and a postfix program.
struct Lowered {
    atoms: Vec<AtomSpec>,
    program: Vec<u8>,
    /// Per atom: whether it goes into the prefilter (see [`plan_prefilter`]).
    prefiltered: Vec<bool>,
    /// Per atom: whether it is a gate (its report makes the rule a
    /// candidate).
    gates: Vec<bool>,
    always: bool,
    fields: Vec<FieldId>,
}

/// A condition with constants folded away where possible.
enum Simple {
    Const(bool),
    Cond(Cond),
}

fn simplify(c: &Cond) -> Simple {
    match c {
        Cond::Const(b) => Simple::Const(*b),
        Cond::Atom(a) => Simple::Cond(Cond::Atom(a.clone())),
        Cond::Not(inner) => match simplify(inner) {
            Simple::Const(b) => Simple::Const(!b),
            Simple::Cond(c) => Simple::Cond(Cond::Not(Box::new(c))),
        },
        Cond::And(xs) | Cond::Or(xs) => {
            let is_and = matches!(c, Cond::And(_));
            let mut kept = Vec::new();
            for x in xs {
                match simplify(x) {
                    Simple::Const(b) if b == is_and => {}
                    Simple::Const(b) => return Simple::Const(b),
                    Simple::Cond(c) => kept.push(c),
                }
            }
            match kept.len() {
                0 => Simple::Const(is_and),
                1 => Simple::Cond(kept.pop().unwrap_or(Cond::Const(is_and))),
                _ => Simple::Cond(if is_and {
                    Cond::And(kept)
                } else {
                    Cond::Or(kept)
                }),
            }
        }
    }
}

/// Lowers a literal of a given kind (see `Lowerer::lower_atom`).
type LitFn<'a> = dyn Fn(AtomKind, &str) -> Result<Option<AtomSpec>, CompileError> + 'a;

/// A lowered atom and the literal pieces it implies (see
/// `Lowerer::lower_atom`).
type LoweredAtom = (Option<AtomSpec>, Vec<Vec<AtomSpec>>);

struct Lowerer<'r> {
    rule: &'r Rule,
    limits: &'r Limits,
    atoms: Vec<AtomSpec>,
    index: HashMap<AtomSpec, u32>,
    program: Vec<u8>,
    depth: usize,
    max_depth: usize,
}

impl Lowerer<'_> {
    fn push_op(&mut self, opcode: u8, delta: isize) {
        self.program.push(opcode);
        self.depth = self.depth.saturating_add_signed(delta);
        self.max_depth = self.max_depth.max(self.depth);
    }

    fn emit(&mut self, c: &Cond) -> Result<(), CompileError> {
        match c {
            Cond::Const(true) => self.push_op(op::TRUE, 1),
            Cond::Const(false) => self.push_op(op::FALSE, 1),
            Cond::Not(inner) => {
                self.emit(inner)?;
                self.push_op(op::NOT, 0);
            }
            Cond::And(xs) | Cond::Or(xs) => {
                let opcode = if matches!(c, Cond::And(_)) {
                    op::AND
                } else {
                    op::OR
                };
                let mut first = true;
                for x in xs {
                    self.emit(x)?;
                    if !first {
                        self.push_op(opcode, -1);
                    }
                    first = false;
                }
                if first {
                    self.push_op(
                        if opcode == op::AND {
                            op::TRUE
                        } else {
                            op::FALSE
                        },
                        1,
                    );
                }
            }
            Cond::Atom(a) => {
                let (spec, pieces) = self.lower_atom(a)?;
                match spec.or_else(|| presence(a.field)) {
                    Some(spec) => {
                        // The required pieces first (each an OR of
                        // literals), ANDed, then the atom itself.
                        let n = pieces.len();
                        for (i, any) in pieces.into_iter().enumerate() {
                            for (j, p) in any.into_iter().enumerate() {
                                self.push_atom(p);
                                if j > 0 {
                                    self.push_op(op::OR, -1);
                                }
                            }
                            if i > 0 {
                                self.push_op(op::AND, -1);
                            }
                        }
                        self.push_atom(spec);
                        if n > 0 {
                            self.push_op(op::AND, -1);
                        }
                    }
                    None => self.push_op(op::TRUE, 1),
                }
            }
        }
        Ok(())
    }

    /// Pushes one atom (shared with an equal atom of the rule).
    fn push_atom(&mut self, spec: AtomSpec) {
        let next = u32::try_from(self.atoms.len()).unwrap_or(u32::MAX);
        let idx = *self.index.entry(spec.clone()).or_insert_with(|| {
            self.atoms.push(spec);
            next
        });
        self.push_op(op::ATOM, 1);
        self.program.extend_from_slice(&idx.to_le_bytes());
    }

    /// Lowers one atom; `None` means "always true" (e.g. contains ""). The
    /// pieces are literals the atom implies (a conjunction of disjunctions):
    /// a glob's literal start and end, an anchored regex's prefix or suffix
    /// literals. The rule tests them before the pattern, and they make
    /// better gates than a literal anywhere in the field.
    fn lower_atom(&self, a: &Atom) -> Result<LoweredAtom, CompileError> {
        let rule = self.rule;
        let field = a.field;
        let ty = field.field_type();
        let string_field = ty == Some(FieldType::STRING);
        let numeric = matches!(a.matcher, Matcher::NumEq(_));
        if ty.is_some() && string_field == numeric {
            return Err(rule_err(
                rule,
                CompileErrorKind::InvalidRule,
                format!("field {field} cannot be tested with {:?}", a.matcher),
            ));
        }
        let max_lit = self.limits.max_literal_len as usize;
        let lit = |kind: AtomKind, s: &str| -> Result<Option<AtomSpec>, CompileError> {
            if s.contains('\u{FFFD}') {
                return Err(rule_err(rule, CompileErrorKind::InvalidRule, "literal contains U+FFFD, which stands for unpaired surrogates and never matches literally"));
            }
            let f = fold(s);
            if f.is_empty() {
                return Ok(match kind {
                    AtomKind::EXACT => Some(AtomSpec::Glob {
                        field,
                        pattern: String::new(),
                        prefilter: None,
                    }),
                    _ => None,
                });
            }
            if f.len() <= max_lit {
                return Ok(Some(AtomSpec::Literal {
                    field,
                    kind,
                    lit: f,
                }));
            }
            // Too long for the prefilter: run it as a glob gated by a piece of it.
            let mut pattern = String::new();
            if matches!(kind, AtomKind::SUFFIX | AtomKind::CONTAINS) {
                pattern.push('*');
            }
            glob_escape(&mut pattern, &f);
            if matches!(kind, AtomKind::PREFIX | AtomKind::CONTAINS) {
                pattern.push('*');
            }
            Ok(Some(AtomSpec::Glob {
                field,
                pattern,
                prefilter: Some(truncate_chars(&f, max_lit).to_string()),
            }))
        };
        let alone = |r: Result<Option<AtomSpec>, CompileError>| r.map(|a| (a, Vec::new()));
        match &a.matcher {
            Matcher::Exact(s) => alone(lit(AtomKind::EXACT, s)),
            Matcher::Prefix(s) => alone(lit(AtomKind::PREFIX, s)),
            Matcher::Suffix(s) => alone(lit(AtomKind::SUFFIX, s)),
            Matcher::Contains(s) => alone(lit(AtomKind::CONTAINS, s)),
            Matcher::NumEq(v) => Ok((Some(AtomSpec::Num { field, value: *v }), Vec::new())),
            Matcher::Glob(toks) => self.lower_glob(field, toks, &lit),
            Matcher::Regex {
                pattern,
                case_insensitive,
            } => {
                let (prefilters, anchor) = regex_prefilters(pattern, *case_insensitive, max_lit)
                    .map_err(|e| {
                        rule_err(
                            rule,
                            CompileErrorKind::InvalidRule,
                            format!("regex {pattern:?}: {e}"),
                        )
                    })?;
                // Literals that must start (or end) the field are pieces;
                // others gate the regex from anywhere in the field.
                // (A literal atom may not hold U+FFFD: such a set stays a gate.)
                let anchor = anchor.filter(|_| !prefilters.iter().any(|l| l.contains('\u{FFFD}')));
                let (gates, pieces) = match anchor {
                    Some(kind) => {
                        let any = prefilters
                            .into_iter()
                            .map(|lit| AtomSpec::Literal { field, kind, lit })
                            .collect();
                        (Vec::new(), vec![any])
                    }
                    None => (prefilters, Vec::new()),
                };
                Ok((
                    Some(AtomSpec::Regex {
                        field,
                        source: pattern.clone(),
                        ci: *case_insensitive,
                        prefilters: gates,
                    }),
                    pieces,
                ))
            }
        }
    }

    fn lower_glob(
        &self,
        field: FieldId,
        toks: &[GlobTok],
        lit: &LitFn<'_>,
    ) -> Result<LoweredAtom, CompileError> {
        // Merge adjacent literals and collapse runs of stars.
        let mut norm: Vec<GlobTok> = Vec::new();
        for t in toks {
            match (norm.last_mut(), t) {
                (Some(GlobTok::Lit(prev)), GlobTok::Lit(s)) => prev.push_str(s),
                (Some(GlobTok::Star), GlobTok::Star) => {}
                (_, GlobTok::Lit(s)) if s.is_empty() => {}
                _ => norm.push(t.clone()),
            }
        }
        use GlobTok::*;
        let alone = |r: Result<Option<AtomSpec>, CompileError>| r.map(|a| (a, Vec::new()));
        match norm.as_slice() {
            [] => return alone(lit(AtomKind::EXACT, "")),
            [Star] => return Ok((None, Vec::new())),
            [Lit(s)] => return alone(lit(AtomKind::EXACT, s)),
            [Lit(s), Star] => return alone(lit(AtomKind::PREFIX, s)),
            [Star, Lit(s)] => return alone(lit(AtomKind::SUFFIX, s)),
            [Star, Lit(s), Star] => return alone(lit(AtomKind::CONTAINS, s)),
            _ => {}
        }
        let mut pattern = String::new();
        let mut best: Option<String> = None;
        for t in &norm {
            match t {
                Star => pattern.push('*'),
                One => pattern.push('?'),
                Lit(s) => {
                    if s.contains('\u{FFFD}') {
                        return Err(rule_err(
                            self.rule,
                            CompileErrorKind::InvalidRule,
                            "glob literal contains U+FFFD",
                        ));
                    }
                    let f = fold(s);
                    glob_escape(&mut pattern, &f);
                    if best.as_ref().is_none_or(|b| f.len() > b.len()) {
                        best = Some(f);
                    }
                }
            }
        }
        if pattern.len() > self.limits.max_string_len as usize {
            return Err(rule_err(
                self.rule,
                CompileErrorKind::LimitExceeded,
                format!(
                    "glob pattern is {} bytes, above the limit of {}",
                    pattern.len(),
                    self.limits.max_string_len
                ),
            ));
        }
        let max_lit = self.limits.max_literal_len as usize;
        // The literal start and end of the pattern are pieces; without
        // either, its longest literal gates it from anywhere.
        let mut pieces = Vec::new();
        if let Some(Lit(s)) = norm.first() {
            let f = fold(s);
            pieces.push(vec![AtomSpec::Literal {
                field,
                kind: AtomKind::PREFIX,
                lit: truncate_chars(&f, max_lit).to_string(),
            }]);
        }
        if let Some(Lit(s)) = norm.last().filter(|_| norm.len() > 1) {
            let f = fold(s);
            let mut start = f.len().saturating_sub(max_lit);
            while !f.is_char_boundary(start) {
                start += 1;
            }
            pieces.push(vec![AtomSpec::Literal {
                field,
                kind: AtomKind::SUFFIX,
                lit: f[start..].to_string(),
            }]);
        }
        // The longest literal between them as well, if it is longer than
        // both ends: a common prefix (`\\Win32Pipes*...`) is a poor gate.
        let ends = |i: usize| match norm.get(i) {
            Some(Lit(s)) => s.chars().count(),
            _ => 0,
        };
        let inner = norm
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != 0 && *i + 1 != norm.len())
            .filter_map(|(_, t)| match t {
                Lit(s) => Some(s),
                _ => None,
            })
            .max_by_key(|s| s.chars().count())
            .filter(|s| s.chars().count() > ends(0).max(ends(norm.len() - 1)));
        if let (Some(s), false) = (inner, pieces.is_empty()) {
            pieces.push(vec![AtomSpec::Literal {
                field,
                kind: AtomKind::CONTAINS,
                lit: truncate_chars(&fold(s), max_lit).to_string(),
            }]);
        }
        let prefilter = if pieces.is_empty() {
            best.map(|b| truncate_chars(&b, max_lit).to_string())
        } else {
            None
        };
        Ok((
            Some(AtomSpec::Glob {
                field,
                pattern,
                prefilter,
            }),
            pieces,
        ))
    }
}

/// An atom that holds for every string (`contains ''`, glob `*`) still needs
/// the field to be there: on a field that may be absent (Image) it becomes
/// "field present" (a glob `*`, false when the field is missing). The pipe
/// name is always present, so there it is simply true.
fn presence(field: FieldId) -> Option<AtomSpec> {
    (field.field_type() == Some(FieldType::STRING) && field != FieldId::PIPE_NAME).then(|| {
        AtomSpec::Glob {
            field,
            pattern: "*".into(),
            prefilter: None,
        }
    })
}

/// Required literals of a regex, folded: every match contains one of them.
/// Empty when none can be found (the regex then runs on every event).
///
/// A case-insensitive regex is also read case-sensitively: the literals of
/// the case-insensitive HIR are all case variants, which the extractor trims
/// to a byte or two (`\\` for `(?i)^\\abcd[0-9a-f]{4}`), while every match of
/// the case-insensitive regex is, character by character, a case variant of
/// a match of the case-sensitive one. So a case-sensitive literal, with each
/// character replaced by the folds of its simple case-fold orbit
/// ([`fold_variants`]), is required just the same. Inner literals (prefix
/// literals of each tail of a top-level concatenation) are required too.
/// Whichever reading gives the longer shortest literal wins.
fn regex_prefilters(
    pattern: &str,
    ci: bool,
    max_lit: usize,
) -> Result<(Vec<String>, Option<AtomKind>), String> {
    use regex_syntax::hir::literal::{ExtractKind, Extractor};
    let parse = |ci: bool| {
        regex_syntax::ParserBuilder::new()
            .case_insensitive(ci)
            .unicode(true)
            .utf8(true)
            .build()
            .parse(pattern)
            .map_err(|e| e.to_string())
    };
    use regex_syntax::hir::{Hir, HirKind, Look};
    // (HIR, expand case variants, whole regex)
    let mut hirs = vec![(parse(ci)?, false, true)];
    if ci {
        hirs.push((parse(false)?, true, true));
    }
    // Inner literals: every match also matches each tail of a top-level
    // concatenation, so the prefix literals of `xs[i..]` are required too
    // (`server.y5i[-_.]\d` gives `y5i-`, `y5i_`, `y5i.` past the `.`).
    let mut tails = Vec::new();
    for (hir, expand, _) in &hirs {
        if let HirKind::Concat(xs) = hir.kind() {
            for i in 1..xs.len() {
                tails.push((Hir::concat(xs[i..].to_vec()), *expand, false));
            }
        }
    }
    hirs.extend(tails);
    // Whether every match starts at the start (ends at the end) of the text.
    let edge = |hir: &Hir, start: bool| -> bool {
        let (look, pick): (Look, fn(&[Hir]) -> Option<&Hir>) = if start {
            (Look::Start, <[Hir]>::first)
        } else {
            (Look::End, <[Hir]>::last)
        };
        match hir.kind() {
            HirKind::Look(l) => *l == look,
            HirKind::Concat(xs) => {
                pick(xs).is_some_and(|x| matches!(x.kind(), HirKind::Look(l) if *l == look))
            }
            _ => false,
        }
    };
    let mut best: Option<(Vec<String>, Option<AtomKind>)> = None;
    // Each reading, prefix and suffix literals, as extracted and as
    // regex-syntax optimizes them (which can shorten a good set to a
    // common prefix: `(?:abcd|axyz)_` to `a`).
    let readings = hirs
        .iter()
        .flat_map(|h| [(h, true), (h, false)])
        .flat_map(|r| [(r, false), (r, true)]);
    for (((hir, expand, whole), is_prefix), optimize) in readings {
        let kind = if is_prefix {
            ExtractKind::Prefix
        } else {
            ExtractKind::Suffix
        };
        let mut seq = Extractor::new().kind(kind).extract(hir);
        if optimize && is_prefix {
            seq.optimize_for_prefix_by_preference();
        } else if optimize {
            seq.optimize_for_suffix_by_preference();
        }
        let Some(lits) = seq.literals() else { continue };
        let mut out: Vec<String> = Vec::new();
        let mut ok = !lits.is_empty() && lits.len() <= 64;
        for l in lits {
            let bytes = l.as_bytes();
            let text = match std::str::from_utf8(bytes) {
                Ok(s) => s,
                Err(e) if is_prefix => std::str::from_utf8(&bytes[..e.valid_up_to()]).unwrap_or(""),
                Err(_) => {
                    // A suffix cut inside a character: keep the complete tail.
                    let mut start = 0;
                    while start < bytes.len() && std::str::from_utf8(&bytes[start..]).is_err() {
                        start += 1;
                    }
                    std::str::from_utf8(&bytes[start..]).unwrap_or("")
                }
            };
            let variants = if *expand {
                match fold_variants(text, is_prefix) {
                    Some(v) => v,
                    None => {
                        ok = false;
                        break;
                    }
                }
            } else {
                vec![fold(text)]
            };
            for f in variants {
                let f = if is_prefix {
                    truncate_chars(&f, max_lit).to_string()
                } else {
                    let mut start = f.len().saturating_sub(max_lit);
                    while !f.is_char_boundary(start) {
                        start += 1;
                    }
                    f[start..].to_string()
                };
                if f.is_empty() {
                    ok = false;
                    break;
                }
                if !out.contains(&f) {
                    out.push(f);
                }
            }
        }
        if !ok || out.len() > 64 {
            continue;
        }
        let anchor = match (*whole, is_prefix) {
            (true, true) if edge(hir, true) => Some(AtomKind::PREFIX),
            (true, false) if edge(hir, false) => Some(AtomKind::SUFFIX),
            _ => None,
        };
        // Longest shortest literal first (a literal that must start or end
        // the field counts 8 bytes more: it is far more selective), then
        // fewer literals.
        let score = |(v, anchor): &(Vec<String>, Option<AtomKind>)| {
            (
                v.iter().map(|s| s.len()).min().unwrap_or(0) + if anchor.is_some() { 8 } else { 0 },
                std::cmp::Reverse(v.len()),
            )
        };
        let cand = (out, anchor);
        if best.as_ref().is_none_or(|b| score(&cand) > score(b)) {
            best = Some(cand);
        }
    }
    Ok(best.unwrap_or_default())
}

/// The folded forms a case-insensitive match of the case-sensitive literal
/// `text` can take: each character becomes every distinct fold of its simple
/// case-fold orbit (one for most characters; `k` gives `K` and the Kelvin
/// sign). Keeps at most 16 variants by cutting the literal (at the end for
/// a prefix literal, at the start for a suffix literal): a part of a
/// required prefix or suffix is still required. `None` without case tables.
fn fold_variants(text: &str, is_prefix: bool) -> Option<Vec<String>> {
    use regex_syntax::hir::{ClassUnicode, ClassUnicodeRange};
    let mut chars: Vec<char> = text.chars().collect();
    if !is_prefix {
        chars.reverse();
    }
    let mut out = vec![String::new()];
    for c in chars {
        let mut orbit = ClassUnicode::new([ClassUnicodeRange::new(c, c)]);
        orbit.try_case_fold_simple().ok()?;
        let mut folds: Vec<char> = orbit
            .iter()
            .flat_map(|r| r.start()..=r.end())
            .map(fold_char)
            .collect();
        folds.sort_unstable();
        folds.dedup();
        if out.len() * folds.len() > 16 {
            break;
        }
        out = out
            .iter()
            .flat_map(|v| folds.iter().map(move |f| format!("{v}{f}")))
            .collect();
    }
    if !is_prefix {
        for v in &mut out {
            *v = v.chars().rev().collect();
        }
    }
    Some(out)
}

fn lower_rule(rule: &Rule, limits: &Limits) -> Result<Lowered, CompileError> {
    let cond = match simplify(&rule.condition) {
        Simple::Const(b) => Cond::Const(b),
        Simple::Cond(c) => c,
    };
    let mut l = Lowerer {
        rule,
        limits,
        atoms: Vec::new(),
        index: HashMap::new(),
        program: Vec::new(),
        depth: 0,
        max_depth: 0,
    };
    l.emit(&cond)?;
    if l.max_depth > limits.max_stack_depth.min(64) as usize {
        return Err(rule_err(
            rule,
            CompileErrorKind::LimitExceeded,
            format!(
                "condition needs an evaluation stack of {}, above the limit of {}",
                l.max_depth, limits.max_stack_depth
            ),
        ));
    }
    if l.program.len() > limits.max_program_len as usize {
        return Err(rule_err(
            rule,
            CompileErrorKind::LimitExceeded,
            format!(
                "condition program is {} bytes, above the limit of {}",
                l.program.len(),
                limits.max_program_len
            ),
        ));
    }
    if l.atoms.len() > limits.max_atoms_per_rule as usize {
        return Err(rule_err(
            rule,
            CompileErrorKind::LimitExceeded,
            format!(
                "rule has {} distinct atoms, above the limit of {}",
                l.atoms.len(),
                limits.max_atoms_per_rule
            ),
        ));
    }
    let mut fields: Vec<FieldId> = l.atoms.iter().map(AtomSpec::field).collect();
    fields.sort();
    fields.dedup();
    let low = Lowered {
        prefiltered: vec![false; l.atoms.len()],
        gates: vec![false; l.atoms.len()],
        atoms: l.atoms,
        program: l.program,
        always: true,
        fields,
    };
    Ok(low)
}

/// Finds gates for a rule: atoms in the prefilter such that, with all of
/// them false, the rule's condition is false (Kleene logic, every other atom
/// unknown). The rules owning a reported gate are the candidates evaluated;
/// a rule with no such set is evaluated on every event (ALWAYS).
///
/// Starting from every prefilterable atom of `fields`, the poorest gates are
/// dropped one by one while the rule stays decided: Image atoms before
/// PipeName atoms (the image is longer), pattern gates and `contains` before
/// anchored literals, shorter literals before longer ones. An atom under a
/// `not` is never a useful gate and always goes. Returns `None` when the
/// rule cannot be decided (ALWAYS), else the gate flags.
fn find_gates(low: &Lowered, fields: &[FieldId], shared: &Shared) -> Option<Vec<bool>> {
    let mut gate: Vec<bool> = low
        .atoms
        .iter()
        .map(|a| a.prefilterable() && fields.contains(&a.field()))
        .collect();
    if kleene_may_be_true(&low.program, &gate) {
        return None;
    }
    let mut order: Vec<usize> = (0..low.atoms.len()).filter(|&i| gate[i]).collect();
    order.sort_by_key(|&i| gate_rank(&low.atoms[i], shared));
    for i in order {
        gate[i] = false;
        if kleene_may_be_true(&low.program, &gate) {
            gate[i] = true;
        }
    }
    Some(gate)
}

/// Most anchored literals (prefix, suffix, exact) the rules may need as
/// gates on a field that is then still not scanned on every event:
/// comparing a few literals with the start or end of a field costs less
/// than scanning the whole field (an image path is ~40 characters). Their
/// rules are evaluated on every event instead.
const DIRECT_GATES_MAX: usize = 4;

/// Plans the prefilter: which fields are scanned on every event (*eager*:
/// some rule needs a gate there), which are scanned only when a candidate
/// rule reads them (*lazy*), which atoms are in the automata, and which
/// rules are ALWAYS. Sets `prefiltered` and `always` of every rule and
/// returns the lazy fields.
///
/// - An eager field's automaton holds the gates (only they make a rule a
///   candidate), the pattern atoms' literals (which save running a
///   matcher) and every literal of ALWAYS rules (evaluated on every
///   event, where a lookup is the cheapest). A candidate rule's other
///   literals are compared directly: recording them on every event would
///   cost more than comparing them for the few candidates.
/// - A field whose needed gates are at most [`DIRECT_GATES_MAX`] anchored
///   literals is not eager: those rules become ALWAYS.
/// - A lazy field's automaton holds its `contains` literals and pattern
///   literals: scanned once, when a candidate rule first reads one of them,
///   it decides them all. Its anchored literals are compared directly.
/// - ALWAYS: the condition is not false with every gate false (the parser
///   recomputes it the same way).
fn plan_prefilter(lowered: &mut [Lowered]) -> Vec<FieldId> {
    let strings = [FieldId::PIPE_NAME, FieldId::IMAGE];
    let mut shared = Shared::new();
    for low in lowered.iter() {
        for a in &low.atoms {
            if let Some(l) = a.gate_literal() {
                *shared.entry((a.field(), l.to_string())).or_default() += 1;
            }
        }
    }
    let mut needed: BTreeMap<FieldId, (usize, bool)> = BTreeMap::new();
    for low in lowered.iter() {
        if let Some(g) = find_gates(low, &strings, &shared) {
            for (a, _) in low.atoms.iter().zip(&g).filter(|(_, &g)| g) {
                let e = needed.entry(a.field()).or_insert((0, true));
                e.0 += 1;
                e.1 &= a.is_anchored_literal();
            }
        }
    }
    let eager: Vec<FieldId> = needed
        .into_iter()
        .filter(|(_, (n, anchored))| !(*anchored && *n <= DIRECT_GATES_MAX))
        .map(|(f, _)| f)
        .collect();
    let lazy: Vec<FieldId> = strings.into_iter().filter(|f| !eager.contains(f)).collect();
    for low in lowered.iter_mut() {
        let gates = find_gates(low, &eager, &shared);
        low.always = gates.is_none();
        low.gates = gates.unwrap_or_else(|| vec![false; low.atoms.len()]);
        low.prefiltered = low
            .atoms
            .iter()
            .zip(&low.gates)
            .map(|(a, &gate)| {
                let literal = matches!(a, AtomSpec::Literal { .. });
                a.prefilterable()
                    && if eager.contains(&a.field()) {
                        gate || low.always || !literal
                    } else {
                        !a.is_anchored_literal()
                    }
            })
            .collect();
    }
    lazy
}

/// How many atoms of the rule set gate on each literal: a literal many
/// rules share is a common word of pipe names (`\\Win32Pipes`), a poor
/// gate.
type Shared = HashMap<(FieldId, String), usize>;

/// How good a gate an atom makes (higher is better): PipeName before
/// Image, a literal few atoms share before a common one, a literal that
/// must start or end the field before one anywhere, and before a pattern's
/// gate (which still has its matcher to run), the longer first.
fn gate_rank(a: &AtomSpec, shared: &Shared) -> (u8, std::cmp::Reverse<usize>, u8, usize) {
    let field = u8::from(a.field() == FieldId::PIPE_NAME);
    let common = a
        .gate_literal()
        .and_then(|l| shared.get(&(a.field(), l.to_string())))
        .copied()
        .unwrap_or(0);
    let (kind, len) = match a {
        AtomSpec::Literal { kind, lit, .. } => (
            match *kind {
                AtomKind::CONTAINS => 1,
                AtomKind::SUFFIX => 2,
                _ => 3,
            },
            lit.len(),
        ),
        AtomSpec::Glob { prefilter, .. } => (0, prefilter.as_ref().map_or(0, String::len)),
        AtomSpec::Regex { prefilters, .. } => {
            (0, prefilters.iter().map(String::len).min().unwrap_or(0))
        }
        AtomSpec::Num { .. } => (0, 0),
    };
    (field, std::cmp::Reverse(common), kind, len)
}

/// Kleene evaluation with prefiltered atoms false and the others unknown:
/// whether the condition may be true when the prefilter reports nothing.
fn kleene_may_be_true(program: &[u8], prefiltered: &[bool]) -> bool {
    let mut st: Vec<(bool, bool)> = Vec::new();
    let mut pc = 0;
    while pc < program.len() {
        let opcode = program[pc];
        pc += 1;
        match opcode {
            op::ATOM => {
                let idx =
                    u32::from_le_bytes(program[pc..pc + 4].try_into().unwrap_or([0; 4])) as usize;
                pc += 4;
                let pre = prefiltered.get(idx).copied().unwrap_or(false);
                st.push((!pre, true));
            }
            op::TRUE => st.push((true, false)),
            op::FALSE => st.push((false, true)),
            op::NOT => {
                let (t, f) = st.pop().unwrap_or((true, true));
                st.push((f, t));
            }
            _ => {
                let (bt, bf) = st.pop().unwrap_or((true, true));
                let (at, af) = st.pop().unwrap_or((true, true));
                st.push(if opcode == op::AND {
                    (at && bt, af || bf)
                } else {
                    (at || bt, af && bf)
                });
            }
        }
    }
    st.pop().is_none_or(|(t, _)| t)
}

/// Byte buffer with the section bookkeeping.
struct Writer {
    buf: Vec<u8>,
    table: Vec<(SectionKind, u32, u32, u32)>,
}

impl Writer {
    fn section(&mut self, kind: SectionKind, flags: u32, body: &[u8]) {
        while !self.buf.len().is_multiple_of(fmt::SECTION_ALIGN as usize) {
            self.buf.push(0);
        }
        self.table
            .push((kind, flags, self.buf.len() as u32, body.len() as u32));
        self.buf.extend_from_slice(body);
    }
}

fn pad_to(v: &mut Vec<u8>, align: usize) {
    while !v.len().is_multiple_of(align) {
        v.push(0);
    }
}

/// Interned strings.
#[derive(Default)]
struct Strings {
    bytes: Vec<u8>,
    index: HashMap<String, (u32, u32)>,
}

impl Strings {
    /// `s` as a part of one of `hosts` (strings already added) if it is
    /// one, else added on its own.
    fn add_within(&mut self, s: &str, hosts: &[(String, (u32, u32))]) -> (u32, u32) {
        for (h, (off, _)) in hosts {
            if let Some(pos) = h.find(s) {
                return (off + pos as u32, s.len() as u32);
            }
        }
        self.add(s)
    }

    fn add(&mut self, s: &str) -> (u32, u32) {
        if let Some(&r) = self.index.get(s) {
            return r;
        }
        let r = (self.bytes.len() as u32, s.len() as u32);
        self.bytes.extend_from_slice(s.as_bytes());
        self.index.insert(s.to_string(), r);
        r
    }
}

/// Compiles `set` into a channel file.
///
/// # Errors
/// Duplicate rule ids, rules reading a field the target sensor does not
/// supply, values the format cannot hold, and exceeded limits (including the
/// DFA size budget, naming the rule), each naming the rule and its source.
pub fn compile(set: &RuleSet, opts: &CompileOptions) -> Result<Vec<u8>, CompileError> {
    let limits = &opts.limits;
    let mut rules: Vec<&Rule> = set.rules.iter().collect();
    rules.sort_by_key(|r| r.id);
    for w in rules.windows(2) {
        if w[0].id == w[1].id {
            return Err(CompileError {
                loc: Some(w[1].source.clone()),
                rule: Some((w[1].id, w[1].name.clone())),
                kind: CompileErrorKind::DuplicateId,
                message: format!(
                    "rule id {} is also used by {} ({})",
                    w[1].id, w[0].name, w[0].source
                ),
            });
        }
    }
    if rules.len() > limits.max_rules as usize {
        return Err(CompileError {
            loc: None,
            rule: None,
            kind: CompileErrorKind::LimitExceeded,
            message: format!(
                "{} rules, above the limit of {}",
                rules.len(),
                limits.max_rules
            ),
        });
    }

    let mut strings = Strings::default();
    let mut rule_recs = Vec::with_capacity(rules.len() * fmt::RULE_LEN);
    let mut rule_fields: Vec<u8> = Vec::new();
    let mut atom_recs: Vec<u8> = Vec::new();
    let mut programs: Vec<u8> = Vec::new();
    let mut dfas = crate::automata::dfa::DfaSection::default();
    let mut always: Vec<u32> = Vec::new();
    let mut schema: Vec<FieldId> = Vec::new();
    // Prefilter literals per field: (folded bytes, atom index).
    let mut pre: BTreeMap<u16, Vec<(Vec<u8>, u32)>> = BTreeMap::new();
    // DFA sizes for the total budget: (bytes, rule index, regex source).
    let mut dfa_sizes: Vec<(usize, usize, String)> = Vec::new();
    let mut atom_base = 0u32;

    let mut lowered = Vec::with_capacity(rules.len());
    for rule in &rules {
        if rule.name.len() > limits.max_string_len as usize {
            return Err(rule_err(
                rule,
                CompileErrorKind::LimitExceeded,
                "rule name is too long",
            ));
        }
        lowered.push(lower_rule(rule, limits)?);
    }
    let lazy_fields = plan_prefilter(&mut lowered);

    for (ri, (rule, low)) in rules.iter().zip(&lowered).enumerate() {
        let ri = ri as u32;
        if low.fields.len() > limits.max_fields_per_rule as usize {
            return Err(rule_err(
                rule,
                CompileErrorKind::LimitExceeded,
                "rule reads too many fields",
            ));
        }
        for &f in &low.fields {
            if !opts.capabilities.supplies(f) {
                return Err(rule_err(
                    rule,
                    CompileErrorKind::FieldNotSupplied,
                    format!("reads field {f}, which the target sensor does not supply"),
                ));
            }
            if !schema.contains(&f) {
                schema.push(f);
            }
        }
        let (name_off, name_len) = strings.add(&rule.name);
        let fields_start = (rule_fields.len() / 2) as u32;
        for f in &low.fields {
            rule_fields.extend_from_slice(&f.0.to_le_bytes());
        }
        let prog_off = programs.len() as u32;
        // Program atom operands are rule-local: rebase to file indices.
        let mut prog = low.program.clone();
        let mut pc = 0;
        while pc < prog.len() {
            if prog[pc] == op::ATOM {
                let local = u32::from_le_bytes(prog[pc + 1..pc + 5].try_into().unwrap_or([0; 4]));
                prog[pc + 1..pc + 5].copy_from_slice(&(local + atom_base).to_le_bytes());
                pc += 5;
            } else {
                pc += 1;
            }
        }
        programs.extend_from_slice(&prog);

        // A glob's literal pieces are usually substrings of its stored
        // pattern (`\\WORD*ABC` holds `\WORD` and `ABC`): they share its
        // bytes.
        let hosts: Vec<(String, (u32, u32))> = low
            .atoms
            .iter()
            .filter_map(|a| match a {
                AtomSpec::Glob { pattern, .. } if !pattern.is_empty() => {
                    Some((pattern.clone(), strings.add(pattern)))
                }
                _ => None,
            })
            .collect();
        for (k, a) in low.atoms.iter().enumerate() {
            let idx = atom_base + k as u32;
            let gate = low.prefiltered[k];
            let gate_flag = if low.gates[k] { fmt::ATOM_FLAG_GATE } else { 0 };
            let (kind, flags, text, arg): (AtomKind, u8, String, u32) = match a {
                AtomSpec::Literal { field, kind, lit } => {
                    let mut flags = 0;
                    if gate {
                        pre.entry(field.0)
                            .or_default()
                            .push((lit.as_bytes().to_vec(), idx));
                        flags = fmt::ATOM_FLAG_PREFILTERED | gate_flag;
                    }
                    (*kind, flags, lit.clone(), 0)
                }
                AtomSpec::Glob {
                    field,
                    pattern,
                    prefilter,
                } => {
                    let mut flags = 0;
                    if let Some(p) = prefilter.as_ref().filter(|_| gate) {
                        pre.entry(field.0)
                            .or_default()
                            .push((p.as_bytes().to_vec(), idx));
                        flags = fmt::ATOM_FLAG_PREFILTERED | gate_flag;
                    }
                    (AtomKind::GLOB, flags, pattern.clone(), 0)
                }
                AtomSpec::Regex {
                    field,
                    source,
                    ci,
                    prefilters,
                } => {
                    let budget = limits.max_dfa_len as usize;
                    let too_big = |size: String| {
                        rule_err(
                            rule,
                            CompileErrorKind::LimitExceeded,
                            format!("regex {source:?} compiles to a DFA of {size}, above the DFA size budget of {budget} bytes (Limits::max_dfa_len); simplify it: fewer or smaller repetition counts, anchor it with ^ or $ where the name must start or end with it, fewer alternatives"),
                        )
                    };
                    // Every state costs at least one byte: the state cap
                    // only stops a runaway exploration early.
                    let max_states = budget.clamp(3, fmt::dfa::MAX_STATES as usize);
                    let dfa = match crate::automata::dfa::build(source, *ci, max_states) {
                        Ok(d) => d,
                        Err(DfaBuildError::TooBig(why)) => {
                            return Err(too_big(format!("more than the budget ({why})")))
                        }
                        Err(DfaBuildError::Invalid(e)) => {
                            return Err(rule_err(
                                rule,
                                CompileErrorKind::InvalidRule,
                                format!("regex {source:?}: {e}"),
                            ))
                        }
                    };
                    if dfa.len() > budget {
                        return Err(too_big(format!("{} bytes", dfa.len())));
                    }
                    let (dfa_index, added) = dfas.add(&dfa);
                    dfa_sizes.push((added, ri as usize, source.clone()));
                    let mut flags = if *ci {
                        fmt::ATOM_FLAG_CASE_INSENSITIVE
                    } else {
                        0
                    };
                    for p in prefilters.iter().filter(|_| gate) {
                        pre.entry(field.0)
                            .or_default()
                            .push((p.as_bytes().to_vec(), idx));
                        flags |= fmt::ATOM_FLAG_PREFILTERED | gate_flag;
                    }
                    (AtomKind::REGEX, flags, source.clone(), dfa_index)
                }
                AtomSpec::Num { value, .. } => (AtomKind::NUM_EQ, 0, String::new(), *value),
            };
            if text.len() > limits.max_string_len as usize {
                return Err(rule_err(
                    rule,
                    CompileErrorKind::LimitExceeded,
                    "pattern text is too long",
                ));
            }
            let (str_off, str_len) = if text.is_empty() {
                (0, 0)
            } else {
                strings.add_within(&text, &hosts)
            };
            atom_recs.extend_from_slice(&ri.to_le_bytes());
            atom_recs.extend_from_slice(&a.field().0.to_le_bytes());
            atom_recs.push(kind.0);
            atom_recs.push(flags);
            atom_recs.extend_from_slice(&str_off.to_le_bytes());
            atom_recs.extend_from_slice(&str_len.to_le_bytes());
            atom_recs.extend_from_slice(&arg.to_le_bytes());
        }

        rule_recs.extend_from_slice(&rule.id.to_le_bytes());
        rule_recs.extend_from_slice(&name_off.to_le_bytes());
        rule_recs.extend_from_slice(&name_len.to_le_bytes());
        rule_recs.extend_from_slice(&fields_start.to_le_bytes());
        rule_recs.extend_from_slice(&(low.fields.len() as u16).to_le_bytes());
        rule_recs.push(rule.severity.0);
        rule_recs.push(rule.action.0);
        rule_recs.extend_from_slice(&prog_off.to_le_bytes());
        rule_recs.extend_from_slice(&(prog.len() as u16).to_le_bytes());
        rule_recs
            .extend_from_slice(&(if low.always { fmt::RULE_FLAG_ALWAYS } else { 0 }).to_le_bytes());
        rule_recs.extend_from_slice(&atom_base.to_le_bytes());
        if low.always {
            always.push(ri);
        }
        atom_base += low.atoms.len() as u32;
    }
    if atom_base > limits.max_atoms {
        return Err(CompileError {
            loc: None,
            rule: None,
            kind: CompileErrorKind::LimitExceeded,
            message: format!("{atom_base} atoms, above the limit of {}", limits.max_atoms),
        });
    }

    let dfa_total: usize = dfa_sizes.iter().map(|d| d.0).sum();
    if dfa_total > limits.max_dfa_total as usize {
        dfa_sizes.sort_by(|a, b| b.0.cmp(&a.0));
        let largest: Vec<String> = dfa_sizes
            .iter()
            .take(5)
            .map(|(len, ri, src)| {
                let r = rules[*ri];
                format!(
                    "rule {} ({}) at {}: {src:?}, {len} bytes",
                    r.id, r.name, r.source
                )
            })
            .collect();
        return Err(CompileError {
            loc: None,
            rule: None,
            kind: CompileErrorKind::LimitExceeded,
            message: format!(
                "the {} regex DFAs take {dfa_total} bytes, above the total DFA budget of {} bytes (Limits::max_dfa_total); the largest: {}; to shrink them, use [0-9] for \\d and drop (?i) where only ASCII is meant, use fewer or smaller repetition counts, anchor regexes with ^ or $ where the name must start or end with them, or split the rules over several channel files",
                dfa_sizes.len(),
                limits.max_dfa_total,
                largest.join("; ")
            ),
        });
    }
    if dfas.len() > limits.max_dfas as usize {
        return Err(CompileError {
            loc: None,
            rule: None,
            kind: CompileErrorKind::LimitExceeded,
            message: format!(
                "{} regex DFAs, above the limit of {}",
                dfas.len(),
                limits.max_dfas
            ),
        });
    }

    // SCHEMA
    schema.sort();
    let mut schema_bytes = Vec::new();
    for f in &schema {
        schema_bytes.extend_from_slice(&f.0.to_le_bytes());
        schema_bytes.push(f.field_type().map_or(0, |t| t.0));
        schema_bytes.push(0);
    }
    // PREFILTER
    let mut pf = Vec::new();
    pf.extend_from_slice(&(pre.len() as u32).to_le_bytes());
    pf.extend_from_slice(&0u32.to_le_bytes());
    for (field, lits) in &pre {
        let ac = Prefilter::build(lits, PREFILTER_DENSE_BUDGET);
        if ac.states() > limits.max_states as usize {
            return Err(CompileError {
                loc: None,
                rule: None,
                kind: CompileErrorKind::LimitExceeded,
                message: format!(
                    "prefilter for field {} has {} states, above the limit of {}",
                    FieldId(*field),
                    ac.states(),
                    limits.max_states
                ),
            });
        }
        ac.write(*field, lazy_fields.contains(&FieldId(*field)), &mut pf);
    }
    // DFAS
    let dfa_sec = dfas.to_bytes();
    // ALWAYS
    let always_bytes: Vec<u8> = always.iter().flat_map(|r| r.to_le_bytes()).collect();
    let versioned = |v: u32| -> Vec<u8> { [v.to_le_bytes(), [0; 4]].concat() };

    let bodies: Vec<(SectionKind, u32, Vec<u8>)> = vec![
        (
            SectionKind::SCHEMA,
            fmt::SECTION_FLAG_CRITICAL,
            schema_bytes,
        ),
        (SectionKind::RULES, fmt::SECTION_FLAG_CRITICAL, rule_recs),
        (
            SectionKind::RULE_FIELDS,
            fmt::SECTION_FLAG_CRITICAL,
            rule_fields,
        ),
        (SectionKind::ATOMS, fmt::SECTION_FLAG_CRITICAL, atom_recs),
        (SectionKind::PROGRAMS, fmt::SECTION_FLAG_CRITICAL, programs),
        (
            SectionKind::STRINGS,
            fmt::SECTION_FLAG_CRITICAL,
            strings.bytes,
        ),
        (SectionKind::PREFILTER, fmt::SECTION_FLAG_CRITICAL, pf),
        (SectionKind::DFAS, fmt::SECTION_FLAG_CRITICAL, dfa_sec),
        (
            SectionKind::ALWAYS,
            fmt::SECTION_FLAG_CRITICAL,
            always_bytes,
        ),
        (SectionKind::ROLLOUT, 0, rollout_body(opts.rollout.as_ref())),
        (SectionKind::SIGNATURE, 0, versioned(fmt::SIGNATURE_VERSION)),
    ];
    let out = assemble(opts.sequence, opts.optional_flags, &bodies);
    if out.len() > limits.max_file_len as usize {
        return Err(CompileError {
            loc: None,
            rule: None,
            kind: CompileErrorKind::LimitExceeded,
            message: format!(
                "file would be {} bytes, above the limit of {}",
                out.len(),
                limits.max_file_len
            ),
        });
    }
    // Self-check: exactly the kernel's parser, on an aligned copy.
    let aligned = crate::AlignedBytes::new(&out);
    if let Err(e) =
        channel_parser::parse_with_limits(aligned.as_slice(), &opts.capabilities, limits)
    {
        return Err(CompileError {
            loc: None,
            rule: None,
            kind: CompileErrorKind::Internal,
            message: format!("compiled file fails validation (compiler bug): {e}"),
        });
    }
    Ok(out)
}

/// The ROLLOUT section body (FORMAT.md §13).
pub fn rollout_body(policy: Option<&channel_parser::RolloutPolicy>) -> Vec<u8> {
    let mut b = fmt::ROLLOUT_VERSION.to_le_bytes().to_vec();
    let Some(p) = policy.filter(|p| p.staged.is_some() || p.rollback_ceiling.is_some()) else {
        b.extend_from_slice(&[0; 4]);
        return b;
    };
    let mut flags = 0;
    if p.staged.is_some() {
        flags |= fmt::ROLLOUT_FLAG_POLICY;
    }
    if p.rollback_ceiling.is_some() {
        flags |= fmt::ROLLOUT_FLAG_ROLLBACK;
    }
    b.extend_from_slice(&flags.to_le_bytes());
    let (ring, pct, nb) = p
        .staged
        .map_or((0, 0, 0), |s| (s.ring.0, s.percent_milli, s.not_before));
    b.push(ring);
    b.extend_from_slice(&[0; 3]);
    b.extend_from_slice(&pct.to_le_bytes());
    b.extend_from_slice(&nb.to_le_bytes());
    b.extend_from_slice(&p.rollback_ceiling.unwrap_or(0).to_le_bytes());
    b
}

/// Lays out a file: header, section table, then each section 8-aligned in
/// the order given, zero padding between. No validation: the malformed-corpus
/// generator uses it to build files the parser must reject.
pub fn assemble(
    sequence: u64,
    optional_flags: u32,
    bodies: &[(SectionKind, u32, Vec<u8>)],
) -> Vec<u8> {
    let table_len = fmt::SECTION_ENTRY_LEN * bodies.len();
    let mut w = Writer {
        buf: vec![0; fmt::HEADER_LEN as usize + table_len],
        table: Vec::new(),
    };
    for (kind, flags, body) in bodies {
        w.section(*kind, *flags, body);
    }
    pad_to(&mut w.buf, 8);
    let total = w.buf.len() as u32;
    let table = std::mem::take(&mut w.table);
    write_header(
        &mut w.buf,
        sequence,
        optional_flags,
        total,
        table.len() as u32,
    );
    for (i, (kind, flags, off, len)) in table.iter().enumerate() {
        let at = fmt::HEADER_LEN as usize + i * fmt::SECTION_ENTRY_LEN;
        w.buf[at..at + 4].copy_from_slice(&kind.0.to_le_bytes());
        w.buf[at + 4..at + 8].copy_from_slice(&flags.to_le_bytes());
        w.buf[at + 8..at + 12].copy_from_slice(&off.to_le_bytes());
        w.buf[at + 12..at + 16].copy_from_slice(&len.to_le_bytes());
    }
    w.buf
}

fn write_header(buf: &mut [u8], sequence: u64, optional_flags: u32, total: u32, sections: u32) {
    use fmt::header as h;
    let mut put = |at: usize, bytes: &[u8]| buf[at..at + bytes.len()].copy_from_slice(bytes);
    put(h::MAGIC, &fmt::MAGIC);
    put(h::ENDIAN, &fmt::ENDIAN_MARKER.to_le_bytes());
    put(h::HEADER_LEN, &fmt::HEADER_LEN.to_le_bytes());
    put(h::FORMAT_MAJOR, &fmt::FORMAT_VERSION.to_le_bytes());
    put(h::FORMAT_MINOR, &fmt::FORMAT_MINOR.to_le_bytes());
    put(h::CHANNEL, &fmt::CHANNEL_PIPES.to_le_bytes());
    put(h::REQUIRED_FLAGS, &0u32.to_le_bytes());
    put(h::SEQUENCE, &sequence.to_le_bytes());
    put(h::TOTAL_LEN, &total.to_le_bytes());
    put(h::SECTION_COUNT, &sections.to_le_bytes());
    put(h::OPTIONAL_FLAGS, &optional_flags.to_le_bytes());
}
