//! Which rules `compile`, `test` and `replay --rules` take from their rule
//! sources: whole Sigma trees (other log sources skipped and counted), Sigma
//! pipe rules that cannot be compiled (an error, or skipped with
//! `--skip-unsupported`, never silently), and placeholder values for Sigma
//! `expand`.
//!
//! Exit code 3 (`SKIPPED`) says the command did its work but left rules
//! out; docs/rules.md lists every code.

use pipe_compiler::import::{load_tree, ImportOptions, Placeholders, TreeLoad};
use pipe_compiler::model::RuleSet;
use pipe_compiler::{CompileError, CompileErrorKind, CompileOptions};
use std::path::PathBuf;

/// Exit code of a command that completed but skipped Sigma pipe rules it
/// could not compile (`--skip-unsupported`).
pub const SKIPPED: u8 = 3;

/// Log sources named in the summary line (the largest; the rest counted).
const SUMMARY_SOURCES: usize = 10;

/// The rule-selection options shared by `compile`, `test` and `replay`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct SelectArgs {
    /// Treat Sigma rules of other log sources found in directories as errors
    /// (as a file named on the command line always is). Without it they are
    /// skipped and counted per log source.
    #[arg(long)]
    pub strict: bool,
    /// Compile the rest when Sigma `pipe_created` rules cannot be compiled:
    /// each is listed on stderr (file:line:column, reason) and the exit code
    /// is 3.
    #[arg(long)]
    pub skip_unsupported: bool,
    /// Values of Sigma `expand` placeholders: a YAML mapping from placeholder
    /// name to a value or a list of values (wildcard strings).
    #[arg(long, value_name = "FILE")]
    pub placeholders: Option<PathBuf>,
}

/// The rules selected, and whether any pipe rule was skipped.
#[derive(Debug)]
pub struct Selected {
    /// The rules to compile.
    pub set: RuleSet,
    /// Ids of the Sigma rules compiled.
    sigma_ids: std::collections::BTreeSet<u32>,
    /// Sigma pipe rules skipped (`--skip-unsupported`).
    pub skipped: usize,
}

impl Selected {
    /// The exit code of a command that otherwise succeeded.
    pub fn ok_code(&self) -> u8 {
        if self.skipped > 0 {
            SKIPPED
        } else {
            0
        }
    }
}

/// Loads rule sources with the selection and compiles them; prints (on
/// stderr, so that JSON output stays clean) the one-line summary of other
/// log sources skipped and every rule error or skipped rule. Every Sigma
/// pipe rule that cannot be compiled is found in one run, whether the
/// importer refuses it or the compiler does (a value the format cannot
/// hold, a limit, a field the sensor does not supply): one line each.
///
/// # Errors
/// The exit code to return: 1 for rule errors (including Sigma pipe rules
/// that cannot be compiled, without `--skip-unsupported`), 2 for an
/// unreadable placeholder file.
pub fn load_and_compile(
    paths: &[PathBuf],
    sel: &SelectArgs,
    opts: &CompileOptions,
) -> Result<(Selected, Vec<u8>), u8> {
    load_and_compile_with(paths, sel, opts, pipe_compiler::compile)
}

/// The writer a compile uses: [`pipe_compiler::compile`], or the low-level
/// [`pipe_compiler::compile_unchecked`] (test aid `--unchecked-protected`).
pub type Writer = fn(&RuleSet, &CompileOptions) -> Result<Vec<u8>, CompileError>;

/// [`load_and_compile`] with the writer `write`.
///
/// # Errors
/// As [`load_and_compile`].
pub fn load_and_compile_with(
    paths: &[PathBuf],
    sel: &SelectArgs,
    opts: &CompileOptions,
    write: Writer,
) -> Result<(Selected, Vec<u8>), u8> {
    let placeholders = match &sel.placeholders {
        None => None,
        Some(p) => match Placeholders::load(p) {
            Ok(v) => Some(v),
            Err(errors) => {
                for e in &errors {
                    eprintln!("error: {e}");
                }
                return Err(2);
            }
        },
    };
    let import = ImportOptions {
        placeholders,
        skip_other_log_sources: !sel.strict,
        ..ImportOptions::default()
    };
    let t = load_tree(paths, &import);
    summary(&t);
    for e in &t.errors {
        eprintln!("error: {e}");
    }
    if !t.errors.is_empty() {
        for u in &t.unsupported {
            eprintln!("error: {u}");
        }
        eprintln!(
            "{} error(s) in rule sources",
            t.errors.len() + t.unsupported.len()
        );
        return Err(1);
    }
    let mut refused: Vec<String> = t.unsupported.iter().map(ToString::to_string).collect();
    let mut selected = Selected {
        skipped: 0,
        sigma_ids: t.sigma_ids,
        set: t.set,
    };
    let compiled = compile_skipping(&mut selected, opts, &mut refused, write);
    let what = if sel.skip_unsupported {
        "skipped"
    } else {
        "error"
    };
    for r in &refused {
        eprintln!("{what}: {r}");
    }
    let bytes = match compiled {
        Ok(b) => b,
        Err(e) => {
            eprintln!("error: {e}");
            return Err(1);
        }
    };
    if !refused.is_empty() && !sel.skip_unsupported {
        eprintln!(
            "{} Sigma pipe rule(s) cannot be compiled: --skip-unsupported compiles the others (exit code 3)",
            refused.len()
        );
        return Err(1);
    }
    selected.skipped = refused.len();
    Ok((selected, bytes))
}

/// The one-line summary of the Sigma rules of other log sources skipped.
fn summary(t: &TreeLoad) {
    if t.other_total() == 0 {
        return;
    }
    // Largest first; a whole SigmaHQ tree has over a hundred log sources.
    let mut by: Vec<(&String, &usize)> = t.other_log_sources.iter().collect();
    by.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    let mut shown: Vec<String> = by
        .iter()
        .take(SUMMARY_SOURCES)
        .map(|(k, v)| format!("{k} {v}"))
        .collect();
    if by.len() > SUMMARY_SOURCES {
        shown.push(format!("{} more log sources", by.len() - SUMMARY_SOURCES));
    }
    eprintln!(
        "note: skipped {} Sigma rule(s) of other log sources ({}); only pipe_created rules are pipe content (--strict makes them errors)",
        t.other_total(),
        shown.join(", ")
    );
}

/// Compiles, leaving out (and listing in `refused`) each Sigma rule the
/// compiler refuses for that rule alone. Returns the file, or the first
/// error that is not such a rule's.
fn compile_skipping(
    sel: &mut Selected,
    opts: &CompileOptions,
    refused: &mut Vec<String>,
    write: Writer,
) -> Result<Vec<u8>, CompileError> {
    loop {
        let e = match write(&sel.set, opts) {
            Ok(b) => return Ok(b),
            Err(e) => e,
        };
        let per_rule = matches!(
            e.kind,
            CompileErrorKind::InvalidRule
                | CompileErrorKind::LimitExceeded
                | CompileErrorKind::FieldNotSupplied
        );
        match e.rule.as_ref().map(|(id, _)| *id) {
            Some(id) if per_rule && sel.sigma_ids.remove(&id) => {
                sel.set.rules.retain(|r| r.id != id);
                refused.push(e.to_string());
            }
            _ => return Err(e),
        }
    }
}
