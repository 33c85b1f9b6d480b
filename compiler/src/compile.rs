//! The writer: [`RuleSet`] → channel-file bytes (format version 1).
//!
//! The compiler applies the same [`Limits`] and capability checks as the
//! parser, so a rule the sensor would reject fails here, at authoring time,
//! with the rule's source location. Every file it writes is parsed back with
//! `channel_parser::parse` before it is returned.

use crate::model::{Atom, Cond, GlobTok, Matcher, Rule, RuleSet, SourceLoc};
use channel_format::{self as fmt, op, AtomKind, FieldId, FieldType, Limits, SectionKind};
use channel_parser::{fold_char, Capabilities};
use regex_automata::dfa::dense;
use std::collections::{BTreeMap, HashMap, VecDeque};
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
    /// Monitor-first periods and breaker limits for the ENFORCEMENT section
    /// (written only when some part is set).
    pub enforcement: Option<channel_parser::EnforcementPolicy>,
}

impl Default for CompileOptions {
    fn default() -> Self {
        CompileOptions {
            sequence: 1,
            capabilities: Capabilities::SENSOR_V1,
            limits: Limits::DEFAULT,
            optional_flags: 0,
            rollout: None,
            enforcement: None,
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
    /// A block rule can match a protected pipe or a critical process, which
    /// the sensor never denies ([`crate::protect`]).
    Protected,
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
    /// Decided false when the prefilter reports nothing.
    fn prefiltered(&self) -> bool {
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
            Cond::Atom(a) => match self.lower_atom(a)?.or_else(|| presence(a.field)) {
                Some(spec) => {
                    let next = u32::try_from(self.atoms.len()).unwrap_or(u32::MAX);
                    let idx = *self.index.entry(spec.clone()).or_insert_with(|| {
                        self.atoms.push(spec);
                        next
                    });
                    self.push_op(op::ATOM, 1);
                    self.program.extend_from_slice(&idx.to_le_bytes());
                }
                None => self.push_op(op::TRUE, 1),
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
    let always = kleene_may_be_true(&l.program, &l.atoms);
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

/// Kleene evaluation with prefiltered atoms false and the others unknown:
/// whether the condition may be true when the prefilter reports nothing.
fn kleene_may_be_true(program: &[u8], atoms: &[AtomSpec]) -> bool {
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
                let pre = atoms.get(idx).is_some_and(AtomSpec::prefiltered);
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

enum RegexBuildError {
    /// Determinization went past the size budget.
    TooBig,
    /// Syntax or unsupported construct (e.g. Unicode word boundaries).
    Invalid(String),
}

/// Builds the DFA of a regex atom, giving up early once it grows well past
/// `budget` bytes.
fn build_regex_dfa(source: &str, ci: bool, budget: usize) -> Result<Vec<u8>, RegexBuildError> {
    use regex_automata::dfa::StartKind;
    use regex_automata::nfa::thompson;
    use regex_automata::util::syntax;
    let dfa = dense::Builder::new()
        .syntax(
            syntax::Config::new()
                .case_insensitive(ci)
                .unicode(true)
                .utf8(true),
        )
        .thompson(thompson::Config::new().utf8(true))
        .configure(
            dense::Config::new()
                .start_kind(StartKind::Unanchored)
                .minimize(false)
                .dfa_size_limit(Some(budget.saturating_mul(4)))
                .determinize_size_limit(Some(budget.saturating_mul(16).max(1 << 20))),
        )
        .build(source)
        .map_err(|e| {
            if e.to_string().contains("size limit") {
                RegexBuildError::TooBig
            } else {
                RegexBuildError::Invalid(e.to_string())
            }
        })?;
    let (bytes, pad) = dfa.to_bytes_little_endian();
    Ok(bytes[pad..].to_vec())
}

/// An Aho-Corasick automaton laid out as FORMAT.md describes.
struct AcBuild {
    /// (first_edge, fail, dict, first_output) per state, breadth-first.
    states: Vec<[u32; 4]>,
    labels: Vec<u8>,
    depths: Vec<u8>,
    outputs: Vec<u32>,
}

fn build_ac(literals: &[(Vec<u8>, u32)]) -> AcBuild {
    // Trie with BTreeMap children (sorted labels), then renumber breadth-first.
    let mut children: Vec<BTreeMap<u8, usize>> = vec![BTreeMap::new()];
    let mut outs: Vec<Vec<u32>> = vec![Vec::new()];
    for (lit, atom) in literals {
        let mut s = 0;
        for &b in lit {
            s = match children[s].get(&b) {
                Some(&n) => n,
                None => {
                    children.push(BTreeMap::new());
                    outs.push(Vec::new());
                    let n = children.len() - 1;
                    children[s].insert(b, n);
                    n
                }
            };
        }
        outs[s].push(*atom);
    }
    let n = children.len();
    let mut order = Vec::with_capacity(n);
    let mut newid = vec![0u32; n];
    let mut depth = vec![0u8; n];
    let mut q = VecDeque::from([0usize]);
    while let Some(s) = q.pop_front() {
        newid[s] = order.len() as u32;
        order.push(s);
        for &c in children[s].values() {
            depth[c] = depth[s] + 1;
            q.push_back(c);
        }
    }
    // Failure and dictionary links (in old ids), breadth-first.
    let mut fail = vec![0usize; n];
    let mut dict = vec![0usize; n];
    for &s in &order {
        for (&b, &c) in &children[s] {
            if s != 0 {
                let mut f = fail[s];
                loop {
                    if let Some(&t) = children[f].get(&b) {
                        fail[c] = t;
                        break;
                    }
                    if f == 0 {
                        fail[c] = 0;
                        break;
                    }
                    f = fail[f];
                }
            }
            let f = fail[c];
            dict[c] = if !outs[f].is_empty() { f } else { dict[f] };
        }
    }
    let mut b = AcBuild {
        states: Vec::with_capacity(n),
        labels: Vec::new(),
        depths: Vec::with_capacity(n),
        outputs: Vec::new(),
    };
    for &s in &order {
        let mut o = outs[s].clone();
        o.sort_unstable();
        o.dedup();
        b.states.push([
            b.labels.len() as u32,
            newid[fail[s]],
            newid[dict[s]],
            b.outputs.len() as u32,
        ]);
        b.labels.extend(children[s].keys());
        b.depths.push(depth[s]);
        b.outputs.extend(o);
    }
    b
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
    let out = compile_unchecked(set, opts)?;
    let aligned = crate::AlignedBytes::new(&out);
    let file =
        channel_parser::parse_with_limits(aligned.as_slice(), &opts.capabilities, &opts.limits)
            .map_err(|e| CompileError {
                loc: None,
                rule: None,
                kind: CompileErrorKind::Internal,
                message: format!("compiled file fails validation (compiler bug): {e}"),
            })?;
    if let Some(f) = crate::protect::check_file(&file).into_iter().next() {
        let rule = set.rules.iter().find(|r| r.id == f.rule_id);
        return Err(CompileError {
            loc: rule.map(|r| r.source.clone()),
            rule: Some((f.rule_id, f.rule_name.clone())),
            kind: CompileErrorKind::Protected,
            message: f.describe(),
        });
    }
    Ok(out)
}

/// The low-level writer: [`compile`] without the protected-set check. For
/// test content that must prove the *kernel's* protected-set check (the Wine
/// test builds a block rule on `\lsass` with it); content for machines goes
/// through [`compile`].
///
/// # Errors
/// As [`compile`], except [`CompileErrorKind::Protected`].
pub fn compile_unchecked(set: &RuleSet, opts: &CompileOptions) -> Result<Vec<u8>, CompileError> {
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
    let mut dfas: Vec<Vec<u8>> = Vec::new();
    let mut always: Vec<u32> = Vec::new();
    let mut schema: Vec<FieldId> = Vec::new();
    // Prefilter literals per field: (folded bytes, atom index).
    let mut pre: BTreeMap<u16, Vec<(Vec<u8>, u32)>> = BTreeMap::new();
    let mut atom_base = 0u32;

    for (ri, rule) in rules.iter().enumerate() {
        let ri = ri as u32;
        if rule.name.len() > limits.max_string_len as usize {
            return Err(rule_err(
                rule,
                CompileErrorKind::LimitExceeded,
                "rule name is too long",
            ));
        }
        let low = lower_rule(rule, limits)?;
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

        for (k, a) in low.atoms.iter().enumerate() {
            let idx = atom_base + k as u32;
            let (kind, flags, text, arg): (AtomKind, u8, String, u32) = match a {
                AtomSpec::Literal { field, kind, lit } => {
                    pre.entry(field.0)
                        .or_default()
                        .push((lit.as_bytes().to_vec(), idx));
                    (*kind, fmt::ATOM_FLAG_PREFILTERED, lit.clone(), 0)
                }
                AtomSpec::Glob {
                    field,
                    pattern,
                    prefilter,
                } => {
                    let mut flags = 0;
                    if let Some(p) = prefilter {
                        pre.entry(field.0)
                            .or_default()
                            .push((p.as_bytes().to_vec(), idx));
                        flags = fmt::ATOM_FLAG_PREFILTERED;
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
                            format!("regex {source:?} compiles to a DFA of {size}, above the DFA size budget of {budget} bytes; simplify it (fewer repetitions, alternatives or case-insensitive classes)"),
                        )
                    };
                    let dfa = match build_regex_dfa(source, *ci, budget) {
                        Ok(d) => d,
                        Err(RegexBuildError::TooBig) => {
                            return Err(too_big("more bytes than the builder allows".into()))
                        }
                        Err(RegexBuildError::Invalid(e)) => {
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
                    let mut flags = if *ci {
                        fmt::ATOM_FLAG_CASE_INSENSITIVE
                    } else {
                        0
                    };
                    for p in prefilters {
                        pre.entry(field.0)
                            .or_default()
                            .push((p.as_bytes().to_vec(), idx));
                        flags |= fmt::ATOM_FLAG_PREFILTERED;
                    }
                    dfas.push(dfa);
                    (
                        AtomKind::REGEX,
                        flags,
                        source.clone(),
                        dfas.len() as u32 - 1,
                    )
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
                strings.add(&text)
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
        let ac = build_ac(lits);
        if ac.states.len() > limits.max_states as usize {
            return Err(CompileError {
                loc: None,
                rule: None,
                kind: CompileErrorKind::LimitExceeded,
                message: format!(
                    "prefilter for field {} has {} states, above the limit of {}",
                    FieldId(*field),
                    ac.states.len(),
                    limits.max_states
                ),
            });
        }
        pf.extend_from_slice(&field.to_le_bytes());
        pf.extend_from_slice(&[0, 0]);
        pf.extend_from_slice(&(ac.states.len() as u32).to_le_bytes());
        pf.extend_from_slice(&(ac.labels.len() as u32).to_le_bytes());
        pf.extend_from_slice(&(ac.outputs.len() as u32).to_le_bytes());
        pf.extend_from_slice(&[0; 8]);
        for s in &ac.states {
            for w in s {
                pf.extend_from_slice(&w.to_le_bytes());
            }
        }
        pf.extend_from_slice(&ac.labels);
        pf.extend_from_slice(&ac.depths);
        pad_to(&mut pf, 4);
        for o in &ac.outputs {
            pf.extend_from_slice(&o.to_le_bytes());
        }
        pad_to(&mut pf, 8);
    }
    // DFAS
    let mut dfa_sec = Vec::new();
    dfa_sec.extend_from_slice(&(dfas.len() as u32).to_le_bytes());
    dfa_sec.extend_from_slice(&0u32.to_le_bytes());
    let mut off = 8 + 8 * dfas.len();
    let mut entries = Vec::new();
    for d in &dfas {
        off = off.next_multiple_of(8);
        entries.push((off as u32, d.len() as u32));
        off += d.len();
    }
    for (o, l) in &entries {
        dfa_sec.extend_from_slice(&o.to_le_bytes());
        dfa_sec.extend_from_slice(&l.to_le_bytes());
    }
    for (d, (o, _)) in dfas.iter().zip(&entries) {
        dfa_sec.resize(*o as usize, 0);
        dfa_sec.extend_from_slice(d);
    }
    // ALWAYS
    let always_bytes: Vec<u8> = always.iter().flat_map(|r| r.to_le_bytes()).collect();
    let versioned = |v: u32| -> Vec<u8> { [v.to_le_bytes(), [0; 4]].concat() };

    let mut bodies: Vec<(SectionKind, u32, Vec<u8>)> = vec![
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
    ];
    if let Some(body) = opts.enforcement.as_ref().and_then(enforcement_body) {
        bodies.push((SectionKind::ENFORCEMENT, 0, body));
    }
    bodies.push((SectionKind::SIGNATURE, 0, versioned(fmt::SIGNATURE_VERSION)));
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

/// The ENFORCEMENT section body (FORMAT.md §15); `None` when the policy sets
/// nothing. Values are written as given: the parser checks the bounds, so a
/// policy out of bounds fails the compiler's self-check (the CLI checks
/// them first, with a message).
pub fn enforcement_body(p: &channel_parser::EnforcementPolicy) -> Option<Vec<u8>> {
    use core::mem::offset_of;
    use fmt::RawEnforcement as R;
    if p.monitor_first.is_none() && p.rule_breaker.is_none() && p.machine_breaker.is_none() {
        return None;
    }
    let mut b = vec![0u8; fmt::ENFORCEMENT_LEN];
    let mut put = |at: usize, v: u32| b[at..at + 4].copy_from_slice(&v.to_le_bytes());
    let mut flags = 0;
    put(offset_of!(R, version), fmt::ENFORCEMENT_VERSION);
    if let Some([c, e, br]) = p.monitor_first {
        flags |= fmt::ENFORCEMENT_FLAG_MONITOR_FIRST;
        put(offset_of!(R, monitor_first_canary), c);
        put(offset_of!(R, monitor_first_early), e);
        put(offset_of!(R, monitor_first_broad), br);
    }
    if let Some(l) = p.rule_breaker {
        flags |= fmt::ENFORCEMENT_FLAG_RULE_BREAKER;
        put(offset_of!(R, rule_denies), l.denies);
        put(offset_of!(R, rule_window_secs), l.window_secs);
    }
    if let Some(l) = p.machine_breaker {
        flags |= fmt::ENFORCEMENT_FLAG_MACHINE_BREAKER;
        put(offset_of!(R, machine_denies), l.denies);
        put(offset_of!(R, machine_window_secs), l.window_secs);
    }
    put(offset_of!(R, flags), flags);
    Some(b)
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
