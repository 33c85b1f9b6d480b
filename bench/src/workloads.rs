//! The rule sets the benchmarks run.
//!
//! - [`sigma`]: the 17 Sigma `pipe_created` rules of the corpus (multi-atom
//!   conditions, `not`, Image filters, one regex rule).
//! - [`mthcht`]: the ~300 suspicious pipe-name patterns of `data/pipe-names/suspicious.csv` (the name of the mthcht list it replaced),
//!   one whole-name wildcard rule each (`\name*` becomes a prefix, ...).
//! - [`synthetic`]: `n` rules from one deterministic stream (so the 10-rule
//!   set is a prefix of the 100-rule set, and so on up to 10k), one pipe-name
//!   atom each, mixed: 25 % prefix, 20 % suffix, 25 % contains, 20 % wildcard
//!   (`*` and `?`), 10 % regex. Literals are words seen in real pipe names
//!   (corpus patterns, common Windows pipes) plus a random tail, so realistic
//!   names do reach the prefilter and the verification of many rules.

use crate::corpus;
use crate::names::{csv_patterns, rmm_patterns, BENIGN_WORDS};
use crate::rng::Rng;
use pipe_compiler::import::detection::{glob_matcher, Anchor};
use pipe_compiler::import::load_paths;
use pipe_compiler::model::{
    Action, Atom, Cond, FieldId, GlobTok, Matcher, Rule, RuleSet, Severity, SourceLoc,
};
use std::collections::HashSet;

/// Seed of the synthetic rule stream.
pub const SYNTH_SEED: u64 = 0x5359_4e54_4845_5449; // "SYNTHETI"

/// The synthetic sizes.
pub const SYNTH_SIZES: [usize; 4] = [10, 100, 1_000, 10_000];

fn rule(id: u32, name: String, m: Matcher) -> Rule {
    Rule {
        id,
        name,
        severity: Severity::MEDIUM,
        action: Action::ALERT,
        condition: Cond::Atom(Atom {
            field: FieldId::PIPE_NAME,
            matcher: m,
        }),
        source: SourceLoc::default(),
        tests: Vec::new(),
    }
}

/// The 17 Sigma rules.
///
/// # Errors
/// The importer's errors, joined.
pub fn sigma() -> Result<RuleSet, String> {
    load_paths(&[corpus("third_party/sigma/rules/windows/pipe_created")]).map_err(|e| {
        e.iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ")
    })
}

/// One whole-name wildcard rule per mthcht pattern.
pub fn mthcht() -> RuleSet {
    let rules = csv_patterns("data/pipe-names/suspicious.csv")
        .into_iter()
        .enumerate()
        .map(|(i, (text, toks))| {
            rule(
                i as u32 + 1,
                text,
                as_literal(glob_matcher(toks, Anchor::Whole)),
            )
        })
        .collect();
    RuleSet { rules }
}

/// `lit`, `lit*`, `*lit` and `*lit*` globs as the literal matchers they are
/// (the compiler does the same), so the literal-only subset sees them.
pub fn as_literal(m: Matcher) -> Matcher {
    use GlobTok::{Lit, Star};
    match &m {
        Matcher::Glob(t) => match t.as_slice() {
            [Lit(s)] => Matcher::Exact(s.clone()),
            [Lit(s), Star] => Matcher::Prefix(s.clone()),
            [Star, Lit(s)] => Matcher::Suffix(s.clone()),
            [Star, Lit(s), Star] => Matcher::Contains(s.clone()),
            _ => m,
        },
        _ => m,
    }
}

/// Alphanumeric words (3+ characters) of the corpus patterns and of common
/// pipe names, deduplicated, in a fixed order.
pub fn vocabulary() -> Vec<String> {
    let mut words: Vec<String> = Vec::new();
    let mut seen = HashSet::new();
    let pats = csv_patterns("data/pipe-names/suspicious.csv")
        .into_iter()
        .chain(rmm_patterns())
        .map(|(p, _)| p)
        .chain(BENIGN_WORDS.iter().map(|s| s.to_string()));
    for p in pats {
        for w in p.split(|c: char| !c.is_ascii_alphanumeric()) {
            if w.len() >= 3 && seen.insert(w.to_ascii_lowercase()) {
                words.push(w.to_string());
            }
        }
    }
    words
}

const ALNUM: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";

/// The first `n` rules of the synthetic stream.
pub fn synthetic(n: usize) -> RuleSet {
    let vocab = vocabulary();
    let mut rng = Rng::new(SYNTH_SEED);
    let mut used = HashSet::new();
    let mut rules = Vec::with_capacity(n);
    // A literal: a real word, usually with a short random tail (unique).
    let mut literal = |rng: &mut Rng| loop {
        let w = rng.pick(&vocab).clone();
        let lit = match rng.below(10) {
            0..=5 => format!(
                "{w}{}{}",
                rng.pick(&["_", "-", ".", ""]),
                rng.string_r(ALNUM, 2, 4)
            ),
            6..=7 => format!("{w}{}", rng.pick(&vocab)),
            _ => w,
        };
        if used.insert(lit.to_ascii_lowercase()) {
            return lit;
        }
    };
    for i in 0..n {
        let id = i as u32 + 1;
        let (label, m) = match i % 20 {
            0..=4 => {
                let l = literal(&mut rng);
                ("prefix", Matcher::Prefix(format!("\\{l}")))
            }
            5..=8 => ("suffix", Matcher::Suffix(literal(&mut rng))),
            9..=13 => ("contains", Matcher::Contains(literal(&mut rng))),
            14..=17 => {
                let a = literal(&mut rng);
                let w = rng.pick(&vocab).clone();
                let toks = match rng.below(4) {
                    0 => vec![
                        GlobTok::Lit(format!("\\{w}")),
                        GlobTok::Star,
                        GlobTok::Lit(a),
                    ],
                    1 => vec![
                        GlobTok::Star,
                        GlobTok::Lit(a),
                        GlobTok::One,
                        GlobTok::One,
                        GlobTok::Star,
                    ],
                    2 => vec![
                        GlobTok::Lit(format!("\\{a}")),
                        GlobTok::One,
                        GlobTok::One,
                        GlobTok::One,
                        GlobTok::One,
                    ],
                    _ => vec![
                        GlobTok::Lit(format!("\\{w}")),
                        GlobTok::Star,
                        GlobTok::Lit(format!("\\{a}")),
                        GlobTok::Star,
                    ],
                };
                ("wildcard", Matcher::Glob(toks))
            }
            _ => {
                let a = literal(&mut rng);
                let (pattern, ci) = match rng.below(4) {
                    0 => (format!(r"^\\{a}[0-9a-f]{{4,16}}$"), true),
                    1 => (format!(r"{a}[-_.]\d{{2,6}}"), true),
                    2 => (format!(r"^\\{a}\.\d+\.\d+\.\d{{4,}}"), false),
                    _ => {
                        let b = literal(&mut rng);
                        (format!(r"(?:{a}|{b})_[a-z]{{4}}"), true)
                    }
                };
                (
                    "regex",
                    Matcher::Regex {
                        pattern,
                        case_insensitive: ci,
                    },
                )
            }
        };
        rules.push(rule(id, format!("synthetic {id} ({label})"), m));
    }
    RuleSet { rules }
}

/// Whether a rule is one literal test of the pipe name (exact, prefix,
/// suffix or contains): what a plain Aho-Corasick engine can express.
pub fn literal_rule(r: &Rule) -> Option<(&Matcher, &str)> {
    match &r.condition {
        Cond::Atom(a) if a.field == FieldId::PIPE_NAME => match &a.matcher {
            m @ (Matcher::Exact(s)
            | Matcher::Prefix(s)
            | Matcher::Suffix(s)
            | Matcher::Contains(s)) => Some((m, s.as_str())),
            _ => None,
        },
        _ => None,
    }
}

/// The rules of `set` that are one literal test of the pipe name.
pub fn literal_subset(set: &RuleSet) -> RuleSet {
    RuleSet {
        rules: set
            .rules
            .iter()
            .filter(|r| literal_rule(r).is_some())
            .cloned()
            .collect(),
    }
}

/// Every workload of the matcher benchmarks, by name: `sigma`, `mthcht`,
/// `synth-10` ... `synth-10000`.
///
/// # Errors
/// When the Sigma corpus does not import.
pub fn all() -> Result<Vec<(String, RuleSet)>, String> {
    let mut out = vec![
        ("sigma".to_string(), sigma()?),
        ("mthcht".to_string(), mthcht()),
    ];
    for n in SYNTH_SIZES {
        out.push((format!("synth-{n}"), synthetic(n)));
    }
    Ok(out)
}
