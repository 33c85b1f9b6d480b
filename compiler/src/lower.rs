//! Lowering: a rule's condition becomes atoms and a postfix condition
//! program (encoded with `channel_format::program`), with the per-rule
//! limits applied.

use crate::compile::{fold, rule_err, CompileError, CompileErrorKind};
use crate::model::{Atom, Cond, GlobTok, Matcher, Rule};
use channel_format::program::{self, Instr};
use channel_format::{self as fmt, AtomKind, FieldId, FieldType, Limits};
use channel_parser::fold_char;
use std::collections::HashMap;

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

/// One atom of a lowered rule, before it is written.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum AtomSpec {
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
    pub(crate) fn field(&self) -> FieldId {
        match self {
            AtomSpec::Literal { field, .. }
            | AtomSpec::Glob { field, .. }
            | AtomSpec::Regex { field, .. }
            | AtomSpec::Num { field, .. } => *field,
        }
    }
    /// Decided false when the prefilter reports nothing.
    pub(crate) fn prefiltered(&self) -> bool {
        match self {
            AtomSpec::Literal { .. } => true,
            AtomSpec::Glob { prefilter, .. } => prefilter.is_some(),
            AtomSpec::Regex { prefilters, .. } => !prefilters.is_empty(),
            AtomSpec::Num { .. } => false,
        }
    }
}

/// One rule lowered to atoms and a postfix program.
pub(crate) struct Lowered {
    /// Its distinct atoms; the program's operands index this list.
    pub(crate) atoms: Vec<AtomSpec>,
    /// The condition program (rule-local atom operands).
    pub(crate) program: Vec<u8>,
    /// The ALWAYS flag ([`program::check`]).
    pub(crate) always: bool,
    /// The fields it reads, ascending.
    pub(crate) fields: Vec<FieldId>,
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
    /// Appends one instruction and tracks the stack depth.
    fn push(&mut self, instr: Instr) {
        self.program.extend_from_slice(instr.encode().as_bytes());
        self.depth = self.depth.saturating_sub(instr.pops() as usize) + 1;
        self.max_depth = self.max_depth.max(self.depth);
    }

    fn emit(&mut self, c: &Cond) -> Result<(), CompileError> {
        match c {
            Cond::Const(true) => self.push(Instr::True),
            Cond::Const(false) => self.push(Instr::False),
            Cond::Not(inner) => {
                self.emit(inner)?;
                self.push(Instr::Not);
            }
            Cond::And(xs) | Cond::Or(xs) => {
                let and = matches!(c, Cond::And(_));
                let mut first = true;
                for x in xs {
                    self.emit(x)?;
                    if !first {
                        self.push(if and { Instr::And } else { Instr::Or });
                    }
                    first = false;
                }
                if first {
                    self.push(if and { Instr::True } else { Instr::False });
                }
            }
            Cond::Atom(a) => match self.lower_atom(a)?.or_else(|| presence(a.field)) {
                Some(spec) => {
                    let next = u32::try_from(self.atoms.len()).unwrap_or(u32::MAX);
                    let idx = *self.index.entry(spec.clone()).or_insert_with(|| {
                        self.atoms.push(spec);
                        next
                    });
                    self.push(Instr::Atom(idx));
                }
                None => self.push(Instr::True),
            },
        }
        Ok(())
    }

    /// Lowers one atom; `None` means "always true" (e.g. contains "").
    fn lower_atom(&self, a: &Atom) -> Result<Option<AtomSpec>, CompileError> {
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
        match &a.matcher {
            Matcher::Exact(s) => lit(AtomKind::EXACT, s),
            Matcher::Prefix(s) => lit(AtomKind::PREFIX, s),
            Matcher::Suffix(s) => lit(AtomKind::SUFFIX, s),
            Matcher::Contains(s) => lit(AtomKind::CONTAINS, s),
            Matcher::NumEq(v) => Ok(Some(AtomSpec::Num { field, value: *v })),
            Matcher::Glob(toks) => self.lower_glob(field, toks, &lit),
            Matcher::Regex {
                pattern,
                case_insensitive,
            } => {
                let prefilters =
                    regex_prefilters(pattern, *case_insensitive, max_lit).map_err(|e| {
                        rule_err(
                            rule,
                            CompileErrorKind::InvalidRule,
                            format!("regex {pattern:?}: {e}"),
                        )
                    })?;
                Ok(Some(AtomSpec::Regex {
                    field,
                    source: pattern.clone(),
                    ci: *case_insensitive,
                    prefilters,
                }))
            }
        }
    }

    fn lower_glob(
        &self,
        field: FieldId,
        toks: &[GlobTok],
        lit: &LitFn<'_>,
    ) -> Result<Option<AtomSpec>, CompileError> {
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
        match norm.as_slice() {
            [] => return lit(AtomKind::EXACT, ""),
            [Star] => return Ok(None),
            [Lit(s)] => return lit(AtomKind::EXACT, s),
            [Lit(s), Star] => return lit(AtomKind::PREFIX, s),
            [Star, Lit(s)] => return lit(AtomKind::SUFFIX, s),
            [Star, Lit(s), Star] => return lit(AtomKind::CONTAINS, s),
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
        let prefilter =
            best.map(|b| truncate_chars(&b, self.limits.max_literal_len as usize).to_string());
        Ok(Some(AtomSpec::Glob {
            field,
            pattern,
            prefilter,
        }))
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
/// ([`fold_variants`]), is required just the same. Whichever reading gives
/// the longer shortest literal wins.
fn regex_prefilters(pattern: &str, ci: bool, max_lit: usize) -> Result<Vec<String>, String> {
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
    let mut hirs = vec![(parse(ci)?, false)];
    if ci {
        hirs.push((parse(false)?, true));
    }
    let mut best: Option<Vec<String>> = None;
    for ((hir, expand), is_prefix) in hirs.iter().flat_map(|h| [(h, true), (h, false)]) {
        let kind = if is_prefix {
            ExtractKind::Prefix
        } else {
            ExtractKind::Suffix
        };
        let mut seq = Extractor::new().kind(kind).extract(hir);
        if is_prefix {
            seq.optimize_for_prefix_by_preference();
        } else {
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
        let score = |v: &Vec<String>| v.iter().map(|s| s.len()).min().unwrap_or(0);
        if best.as_ref().is_none_or(|b| score(&out) > score(b)) {
            best = Some(out);
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

/// Lowers one rule: simplifies its condition, emits the program and its
/// atoms, and applies the per-rule limits (stack depth, program length,
/// atoms per rule, each capped as the parser caps it).
pub(crate) fn lower_rule(rule: &Rule, limits: &Limits) -> Result<Lowered, CompileError> {
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
    if l.max_depth > limits.max_stack_depth.min(fmt::STACK_DEPTH_CEILING) as usize {
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
    // The parser caps the limit at the matcher's scratch size; so does the
    // compiler, so that it refuses what the parser would reject.
    let max_atoms = limits.max_atoms_per_rule.min(fmt::ATOMS_PER_RULE_CEILING);
    if l.atoms.len() > max_atoms as usize {
        return Err(rule_err(
            rule,
            CompileErrorKind::LimitExceeded,
            format!(
                "rule has {} distinct atoms, above the limit of {max_atoms}",
                l.atoms.len(),
            ),
        ));
    }
    let atoms = &l.atoms;
    let always = program::check(
        &l.program,
        0..u32::try_from(atoms.len()).unwrap_or(u32::MAX),
        fmt::STACK_DEPTH_CEILING,
        |i| atoms.get(i as usize).is_some_and(AtomSpec::prefiltered),
    )
    .map_err(|e| {
        rule_err(
            rule,
            CompileErrorKind::Internal,
            format!(
                "condition program is invalid at byte {}: {} (compiler bug)",
                e.at, e.reason
            ),
        )
    })?;
    let mut fields: Vec<FieldId> = l.atoms.iter().map(AtomSpec::field).collect();
    fields.sort();
    fields.dedup();
    Ok(Lowered {
        atoms: l.atoms,
        program: l.program,
        always,
        fields,
    })
}
