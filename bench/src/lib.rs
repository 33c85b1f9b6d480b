//! Workloads and engines for the matcher benchmarks (issue 5).
//!
//! Everything here is deterministic: the synthetic rule sets and the ~10k
//! realistic pipe names are generated from the third-party corpus
//! (`third_party/` and `data/pipe-names/` in the repository) with a fixed seed, so every run of
//! `scripts/bench.sh` times the same rules against the same names.
//!
//! - [`workloads`]: the rule sets (17 Sigma rules, the ~300 patterns of `data/pipe-names/suspicious.csv` (workload name `mthcht` kept),
//!   synthetic 10 / 100 / 1k / 10k rules) as [`pipe_compiler::model::RuleSet`].
//! - [`names`]: the realistic events (benign and malicious pipe names, with
//!   an image path each).
//! - [`engines`]: the engines compared side by side on the same rules and
//!   names: our matcher on the validated channel view, `regex::RegexSet`,
//!   `aho-corasick` (literal-only subset), the naive reference loop.
//!   (`sigma-rust` lives in the bench itself: it is a dev-dependency.)

pub mod engines;
pub mod names;
pub mod rng;
pub mod workloads;

use std::path::PathBuf;

/// A path in the repository: third-party data under `third_party/`
/// (third_party/README.md), the project's own lists under `data/`.
pub fn corpus(p: &str) -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../")).join(p)
}

/// The first column of each data row of a corpus CSV file (quotes handled).
pub fn csv_first_column(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in text.lines().skip(1) {
        let field = if let Some(rest) = line.strip_prefix('"') {
            // Quoted: up to the closing quote not followed by another quote.
            let mut s = String::new();
            let mut chars = rest.chars().peekable();
            while let Some(c) = chars.next() {
                if c == '"' {
                    if chars.peek() == Some(&'"') {
                        s.push('"');
                        chars.next();
                    } else {
                        break;
                    }
                } else {
                    s.push(c);
                }
            }
            s
        } else {
            line.split(',').next().unwrap_or("").to_string()
        };
        let field = field.trim().to_string();
        if !field.is_empty() {
            out.push(field);
        }
    }
    out
}
