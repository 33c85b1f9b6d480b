//! The compiler: [`RuleSet`] → channel-file bytes (format version 2), in
//! steps: order and check the rules ([`compile`]), lower each rule to atoms
//! and a program (`lower.rs`), plan the prefilter — gates, lazy fields,
//! ALWAYS rules (`plan.rs`) —, add each rule's records to the section
//! bodies ([`Builder`]), build the prefilter and the DFAs (`automata/`),
//! lay out the file (`write.rs`), and parse it back.
//!
//! Every byte offset comes from `channel_format`'s record tables; nothing
//! here spells one.
//!
//! The compiler applies the same [`Limits`] and capability checks as the
//! parser, so a rule the sensor would reject fails here, at authoring time,
//! with the rule's source location. Every file it writes is parsed back with
//! `channel_parser::parse` before it is returned.

use crate::automata::dfa::{DfaBuildError, DfaSection};
use crate::lower::{lower_rule, AtomSpec, Lowered};
use crate::model::{Rule, RuleSet, SourceLoc};
use crate::write;
use channel_format::program::{self, Instr};
use channel_format::{self as fmt, AtomKind, FieldId, Limits, SectionKind};
use channel_parser::{fold_char, Capabilities};
use std::collections::{BTreeMap, HashMap};
use std::fmt as stdfmt;

pub use crate::write::{assemble, rollout_body};

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
            capabilities: Capabilities::SENSOR,
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

pub(crate) fn rule_err(
    rule: &Rule,
    kind: CompileErrorKind,
    message: impl Into<String>,
) -> CompileError {
    CompileError {
        loc: Some(rule.source.clone()),
        rule: Some((rule.id, rule.name.clone())),
        kind,
        message: message.into(),
    }
}

/// An error about the whole rule set (no rule to name).
fn set_err(kind: CompileErrorKind, message: String) -> CompileError {
    CompileError {
        loc: None,
        rule: None,
        kind,
        message,
    }
}

/// Folds a string with the sensor's case folding.
pub fn fold(s: &str) -> String {
    s.chars().map(fold_char).collect()
}

/// Compiles `set` into a channel file.
///
/// # Errors
/// Duplicate rule ids, rules reading a field the target sensor does not
/// supply, values the format cannot hold, exceeded limits (including the
/// DFA size budget, naming the rule), and block rules that can match a
/// protected pipe or a critical process ([`CompileErrorKind::Protected`],
/// [`crate::protect`]), each naming the rule and its source.
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
    let rules = sorted_rules(set, limits)?;
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
    let lazy = crate::plan::plan_prefilter(&mut lowered);
    let mut b = Builder {
        lazy,
        ..Builder::default()
    };
    for ((index, rule), low) in (0u32..).zip(&rules).zip(&lowered) {
        b.add_rule(index, rule, low, opts)?;
    }
    b.check_totals(&rules, limits)?;
    let bodies = b.into_sections(opts)?;
    let out = assemble(opts.sequence, opts.optional_flags, &bodies);
    if out.len() > limits.max_file_len as usize {
        return Err(set_err(
            CompileErrorKind::LimitExceeded,
            format!(
                "file would be {} bytes, above the limit of {}",
                out.len(),
                limits.max_file_len
            ),
        ));
    }
    self_check(&out, opts)?;
    Ok(out)
}

/// The rules in file order (ascending id), with unique ids and within the
/// rule-count limit.
fn sorted_rules<'a>(set: &'a RuleSet, limits: &Limits) -> Result<Vec<&'a Rule>, CompileError> {
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
        return Err(set_err(
            CompileErrorKind::LimitExceeded,
            format!(
                "{} rules, above the limit of {}",
                rules.len(),
                limits.max_rules
            ),
        ));
    }
    Ok(rules)
}

/// Self-check: exactly the kernel's parser, on an aligned copy.
fn self_check(out: &[u8], opts: &CompileOptions) -> Result<(), CompileError> {
    let aligned = crate::AlignedBytes::new(out);
    channel_parser::parse_with_limits(aligned.as_slice(), &opts.capabilities, &opts.limits)
        .map(|_| ())
        .map_err(|e| {
            set_err(
                CompileErrorKind::Internal,
                format!("compiled file fails validation (compiler bug): {e}"),
            )
        })
}

/// The section bodies as rules are added, in the format's records.
#[derive(Default)]
struct Builder {
    strings: Strings,
    rules: Vec<u8>,
    rule_fields: Vec<u8>,
    atoms: Vec<u8>,
    programs: Vec<u8>,
    dfas: DfaSection,
    /// Bytes each DFA added to DFAS: (bytes, rule index, regex source).
    dfa_sizes: Vec<(usize, usize, String)>,
    /// Fields whose automaton is scanned only on demand.
    lazy: Vec<FieldId>,
    always: Vec<u32>,
    schema: Vec<FieldId>,
    /// Prefilter literals per field: (folded bytes, atom index).
    prefilter: BTreeMap<u16, Vec<(Vec<u8>, u32)>>,
    /// Atoms written so far: the next rule's first atom.
    atom_count: u32,
}

impl Builder {
    /// Lowers rule `index` and appends its name, fields, program, atoms and
    /// rule record.
    fn add_rule(
        &mut self,
        index: u32,
        rule: &Rule,
        low: &Lowered,
        opts: &CompileOptions,
    ) -> Result<(), CompileError> {
        let limits = &opts.limits;
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
            if !self.schema.contains(&f) {
                self.schema.push(f);
            }
        }
        let (name_off, name_len) = self.strings.add(&rule.name);
        let fields_start = (self.rule_fields.len() / fmt::rule_field::LEN) as u32;
        for f in &low.fields {
            self.rule_fields
                .extend_from_slice(&fmt::RuleFieldRecord { field: f.0 }.to_bytes());
        }
        let prog_off = self.programs.len() as u32;
        let prog_len =
            rebase_program(&mut self.programs, &low.program, self.atom_count).map_err(|e| {
                rule_err(
                    rule,
                    CompileErrorKind::Internal,
                    format!(
                        "condition program: {} at byte {} (compiler bug)",
                        e.reason, e.at
                    ),
                )
            })?;
        let atoms_start = self.atom_count;
        // A glob's literal pieces are usually substrings of its stored
        // pattern (`\\WORD*ABC` holds `\WORD` and `ABC`): they share its
        // bytes.
        let hosts: Vec<(String, (u32, u32))> = low
            .atoms
            .iter()
            .filter_map(|a| match a {
                AtomSpec::Glob { pattern, .. } if !pattern.is_empty() => {
                    Some((pattern.clone(), self.strings.add(pattern)))
                }
                _ => None,
            })
            .collect();
        for (k, a) in (0u32..).zip(&low.atoms) {
            let flags = (low.prefiltered[k as usize], low.gates[k as usize]);
            self.add_atom(index, atoms_start + k, rule, a, flags, &hosts, limits)?;
        }
        let rec = fmt::RuleRecord {
            id: rule.id,
            name_off,
            name_len,
            fields_start,
            fields_count: low.fields.len() as u16,
            severity: rule.severity.0,
            action: rule.action.0,
            prog_off,
            prog_len: prog_len as u16,
            flags: if low.always { fmt::RULE_FLAG_ALWAYS } else { 0 },
            atoms_start,
        };
        self.rules.extend_from_slice(&rec.to_bytes());
        if low.always {
            self.always.push(index);
        }
        self.atom_count += low.atoms.len() as u32;
        Ok(())
    }

    /// Appends atom `idx` of rule `rule_index`: its text (inside one of
    /// `hosts` when it is a part of it), its DFA (regex), its prefilter
    /// literals and its record; `(prefiltered, gate)` as planned.
    #[allow(clippy::too_many_arguments)]
    fn add_atom(
        &mut self,
        rule_index: u32,
        idx: u32,
        rule: &Rule,
        a: &AtomSpec,
        (prefiltered, gate): (bool, bool),
        hosts: &[(String, (u32, u32))],
        limits: &Limits,
    ) -> Result<(), CompileError> {
        let pre_flags = if gate {
            fmt::ATOM_FLAG_PREFILTERED | fmt::ATOM_FLAG_GATE
        } else {
            fmt::ATOM_FLAG_PREFILTERED
        };
        let (kind, flags, text, arg): (AtomKind, u8, &str, u32) = match a {
            AtomSpec::Literal { field, kind, lit } => {
                let mut flags = 0;
                if prefiltered {
                    self.prefilter_literal(*field, lit, idx);
                    flags = pre_flags;
                }
                (*kind, flags, lit, 0)
            }
            AtomSpec::Glob {
                field,
                pattern,
                prefilter,
            } => {
                let mut flags = 0;
                if let Some(p) = prefilter.as_ref().filter(|_| prefiltered) {
                    self.prefilter_literal(*field, p, idx);
                    flags = pre_flags;
                }
                (AtomKind::GLOB, flags, pattern, 0)
            }
            AtomSpec::Regex {
                field,
                source,
                ci,
                prefilters,
            } => {
                let dfa = regex_dfa(rule, source, *ci, limits)?;
                let (dfa_index, added) = self.dfas.add(&dfa);
                self.dfa_sizes
                    .push((added, rule_index as usize, source.clone()));
                let mut flags = if *ci {
                    fmt::ATOM_FLAG_CASE_INSENSITIVE
                } else {
                    0
                };
                for p in prefilters.iter().filter(|_| prefiltered) {
                    self.prefilter_literal(*field, p, idx);
                    flags |= pre_flags;
                }
                (AtomKind::REGEX, flags, source, dfa_index)
            }
            AtomSpec::Num { value, .. } => (AtomKind::NUM_EQ, 0, "", *value),
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
            self.strings.add_within(text, hosts)
        };
        let rec = fmt::AtomRecord {
            rule: rule_index,
            field: a.field().0,
            kind: kind.0,
            flags,
            str_off,
            str_len,
            arg,
        };
        self.atoms.extend_from_slice(&rec.to_bytes());
        Ok(())
    }

    fn prefilter_literal(&mut self, field: FieldId, lit: &str, atom: u32) {
        self.prefilter
            .entry(field.0)
            .or_default()
            .push((lit.as_bytes().to_vec(), atom));
    }

    /// The limits on the whole file's atoms and DFAs; over the total DFA
    /// budget, the error names the largest DFAs and how to shrink them.
    fn check_totals(&self, rules: &[&Rule], limits: &Limits) -> Result<(), CompileError> {
        let total: usize = self.dfa_sizes.iter().map(|d| d.0).sum();
        if total > limits.max_dfa_total as usize {
            let mut sizes = self.dfa_sizes.clone();
            sizes.sort_by_key(|s| std::cmp::Reverse(s.0));
            let largest: Vec<String> = sizes
                .iter()
                .take(5)
                .map(|(len, ri, src)| match rules.get(*ri) {
                    Some(r) => format!(
                        "rule {} ({}) at {}: {src:?}, {len} bytes",
                        r.id, r.name, r.source
                    ),
                    None => format!("{src:?}, {len} bytes"),
                })
                .collect();
            return Err(set_err(
                CompileErrorKind::LimitExceeded,
                format!(
                    "the {} regex DFAs take {total} bytes, above the total DFA budget of {} bytes (Limits::max_dfa_total); the largest: {}; to shrink them, use [0-9] for \\d and drop (?i) where only ASCII is meant, use fewer or smaller repetition counts, anchor regexes with ^ or $ where the name must start or end with them, or split the rules over several channel files",
                    sizes.len(),
                    limits.max_dfa_total,
                    largest.join("; ")
                ),
            ));
        }
        if self.atom_count > limits.max_atoms {
            return Err(set_err(
                CompileErrorKind::LimitExceeded,
                format!(
                    "{} atoms, above the limit of {}",
                    self.atom_count, limits.max_atoms
                ),
            ));
        }
        if self.dfas.len() > limits.max_dfas as usize {
            return Err(set_err(
                CompileErrorKind::LimitExceeded,
                format!(
                    "{} regex DFAs, above the limit of {}",
                    self.dfas.len(),
                    limits.max_dfas
                ),
            ));
        }
        Ok(())
    }

    /// Every section body, in the order the writer lays them out.
    fn into_sections(
        mut self,
        opts: &CompileOptions,
    ) -> Result<Vec<(SectionKind, u32, Vec<u8>)>, CompileError> {
        self.schema.sort();
        let prefilter = write::prefilter_body(&self.prefilter, &self.lazy, &opts.limits)?;
        let critical = fmt::SECTION_FLAG_CRITICAL;
        Ok(vec![
            (
                SectionKind::SCHEMA,
                critical,
                write::schema_body(&self.schema),
            ),
            (SectionKind::RULES, critical, self.rules),
            (SectionKind::RULE_FIELDS, critical, self.rule_fields),
            (SectionKind::ATOMS, critical, self.atoms),
            (SectionKind::PROGRAMS, critical, self.programs),
            (SectionKind::STRINGS, critical, self.strings.bytes),
            (SectionKind::PREFILTER, critical, prefilter),
            (SectionKind::DFAS, critical, self.dfas.to_bytes()),
            (
                SectionKind::ALWAYS,
                critical,
                write::always_body(&self.always),
            ),
            (SectionKind::ROLLOUT, 0, rollout_body(opts.rollout.as_ref())),
        ]
        .into_iter()
        .chain(
            opts.enforcement
                .as_ref()
                .and_then(write::enforcement_body)
                .map(|b| (SectionKind::ENFORCEMENT, 0, b)),
        )
        .chain([(SectionKind::SIGNATURE, 0, write::unsigned_signature_body())])
        .collect())
    }
}

/// Appends `local` (a lowered program, rule-local atom operands) to `out`
/// with its operands rebased to file atom indices. Returns its length.
fn rebase_program(
    out: &mut Vec<u8>,
    local: &[u8],
    atom_base: u32,
) -> Result<usize, program::ProgramError> {
    let start = out.len();
    for item in program::instructions(local) {
        let instr = match item? {
            (_, Instr::Atom(a)) => Instr::Atom(a.saturating_add(atom_base)),
            (_, i) => i,
        };
        out.extend_from_slice(instr.encode().as_bytes());
    }
    Ok(out.len() - start)
}

/// The character DFA of a regex atom, within the DFA size budget.
fn regex_dfa(
    rule: &Rule,
    source: &str,
    ci: bool,
    limits: &Limits,
) -> Result<crate::automata::dfa::CharDfa, CompileError> {
    let budget = limits.max_dfa_len as usize;
    let too_big = |size: String| {
        rule_err(
            rule,
            CompileErrorKind::LimitExceeded,
            format!("regex {source:?} compiles to a DFA of {size}, above the DFA size budget of {budget} bytes (Limits::max_dfa_len); simplify it: fewer or smaller repetition counts, anchor it with ^ or $ where the name must start or end with it, fewer alternatives"),
        )
    };
    // Every state costs at least one byte: the state cap only stops a
    // runaway exploration early.
    let max_states = budget.clamp(3, fmt::dfa::MAX_STATES as usize);
    let dfa = match crate::automata::dfa::build(source, ci, max_states) {
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
    Ok(dfa)
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
