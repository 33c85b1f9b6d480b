//! Rule importers: native YAML rules, Sigma `pipe_created` rules and Sysmon
//! `PipeEvent` configs, all into one [`RuleSet`].
//!
//! [`load_paths`] takes files and directories (read recursively, in sorted
//! order) and picks the importer from the content: a `.yml`/`.yaml` file
//! whose document has both `detection:` and `logsource:` is Sigma, any other
//! YAML file is native, and a `.xml` file is a Sysmon config. All Sysmon
//! configs given together are merged into one configuration. Every error of
//! every file is reported, each with file:line:column.

pub mod detection;
pub mod native;
pub mod placeholders;
pub mod sigma;
pub mod sysmon;
mod yaml;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use crate::model::{Rule, RuleSet, SourceError, SourceLoc};

pub use placeholders::Placeholders;
pub use sysmon::SysmonOptions;

/// Options of [`load_paths_with`] and [`load_tree`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportOptions {
    /// Severity and action of rules imported from Sysmon configs.
    pub sysmon: SysmonOptions,
    /// Values of Sigma `expand` placeholders; without them a placeholder is
    /// an error.
    pub placeholders: Option<Placeholders>,
    /// Whole Sigma trees: Sigma rules of other log sources found in
    /// directories are skipped and counted (see [`load_tree`]) instead of
    /// being errors. A file named explicitly is always an error.
    pub skip_other_log_sources: bool,
}

/// Loads every rule source in `paths` with default options.
///
/// # Errors
/// All errors of all files, each naming file:line:column and the construct.
pub fn load_paths(paths: &[PathBuf]) -> Result<RuleSet, Vec<SourceError>> {
    load_paths_with(paths, &ImportOptions::default())
}

fn file_err(file: &Path, msg: impl Into<String>) -> SourceError {
    SourceError::new(
        SourceLoc {
            file: file.to_path_buf(),
            line: 0,
            col: 0,
        },
        msg,
    )
}

/// What kind of rule source a file is, by extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SourceKind {
    Yaml,
    Xml,
}

fn kind_of(path: &Path) -> Option<SourceKind> {
    match path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("yml" | "yaml") => Some(SourceKind::Yaml),
        Some("xml") => Some(SourceKind::Xml),
        _ => None,
    }
}

fn collect(
    path: &Path,
    explicit: bool,
    out: &mut Vec<(PathBuf, SourceKind, bool)>,
    errors: &mut Vec<SourceError>,
) {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) => {
            errors.push(file_err(path, format!("cannot read: {e}")));
            return;
        }
    };
    if meta.is_dir() {
        let mut entries: Vec<PathBuf> = match std::fs::read_dir(path) {
            Ok(rd) => rd.filter_map(|e| e.ok().map(|e| e.path())).collect(),
            Err(e) => {
                errors.push(file_err(path, format!("cannot read directory: {e}")));
                return;
            }
        };
        entries.sort();
        for e in entries {
            collect(&e, false, out, errors);
        }
    } else {
        match kind_of(path) {
            Some(k) => out.push((path.to_path_buf(), k, explicit)),
            // Files in a directory that are not rule sources (README.md, ...)
            // are skipped; a file named on the command line must be one.
            None if explicit => errors.push(file_err(
                path,
                "not a rule source: expected a .yml/.yaml (native or Sigma) or .xml (Sysmon) file",
            )),
            None => {}
        }
    }
}

/// Loads every rule source in `paths`.
///
/// # Errors
/// All errors of all files, each naming file:line:column and the construct;
/// also two rules with the same id (naming both places). Sigma rules that
/// cannot be imported are errors here too (see [`load_tree`] to tell them
/// apart).
pub fn load_paths_with(
    paths: &[PathBuf],
    opts: &ImportOptions,
) -> Result<RuleSet, Vec<SourceError>> {
    let (t, all_errors) = load_inner(paths, opts);
    if all_errors.is_empty() {
        Ok(t.set)
    } else {
        Err(all_errors)
    }
}

/// A Sigma `pipe_created` rule that could not be imported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsupported {
    /// The rule's `title`, when it has one.
    pub title: Option<String>,
    /// Every error of the rule (at least one), in source order.
    pub errors: Vec<SourceError>,
}

impl std::fmt::Display for Unsupported {
    /// One line: the first error (file:line:column and reason), the rule's
    /// title, and how many more problems the rule has.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.errors.first() {
            Some(e) => write!(f, "{e}")?,
            None => f.write_str("(no error)")?,
        }
        if let Some(t) = &self.title {
            write!(f, " [rule `{t}`]")?;
        }
        if self.errors.len() > 1 {
            write!(f, " (+{} more in this rule)", self.errors.len() - 1)?;
        }
        Ok(())
    }
}

/// What [`load_tree`] read.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TreeLoad {
    /// The rules imported.
    pub set: RuleSet,
    /// Errors that are not a Sigma pipe rule's (native rules, Sysmon
    /// configs, unreadable files, duplicate ids, YAML that does not parse,
    /// Sigma rules of other log sources that were not skipped).
    pub errors: Vec<SourceError>,
    /// Sigma `pipe_created` rules that could not be imported, one entry per
    /// file.
    pub unsupported: Vec<Unsupported>,
    /// Sigma rules of other log sources skipped in directories, by log
    /// source (`process_creation`, `service:security`, ...).
    pub other_log_sources: BTreeMap<String, usize>,
    /// Ids of the rules that came from Sigma files.
    pub sigma_ids: BTreeSet<u32>,
}

impl TreeLoad {
    /// Rules of other log sources skipped.
    pub fn other_total(&self) -> usize {
        self.other_log_sources.values().sum()
    }
}

/// Loads every rule source in `paths`, keeping apart what a whole Sigma
/// tree needs kept apart: with `opts.skip_other_log_sources`, Sigma rules of
/// other log sources found in directories are skipped and counted per log
/// source (a file named explicitly is still an error), and every Sigma rule
/// that cannot be imported is one [`Unsupported`] entry instead of a list
/// of errors. Nothing is dropped without being counted or listed.
pub fn load_tree(paths: &[PathBuf], opts: &ImportOptions) -> TreeLoad {
    load_inner(paths, opts).0
}

/// [`load_tree`], and every error (Sigma ones included) in the order met.
fn load_inner(paths: &[PathBuf], opts: &ImportOptions) -> (TreeLoad, Vec<SourceError>) {
    let mut out = TreeLoad::default();
    let mut files = Vec::new();
    for p in paths {
        collect(p, true, &mut files, &mut out.errors);
    }
    let mut all = out.errors.clone();
    let mut sysmon_files = Vec::new();
    for (path, kind, explicit) in files {
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) => {
                let e = file_err(&path, format!("cannot read: {e}"));
                all.push(e.clone());
                out.errors.push(e);
                continue;
            }
        };
        match kind {
            SourceKind::Xml => sysmon_files.push((path, text)),
            SourceKind::Yaml => {
                let docs = match yaml::parse(&path, &text) {
                    Ok(d) => d,
                    Err(e) => {
                        all.push(e.clone());
                        out.errors.push(e);
                        continue;
                    }
                };
                if !docs.iter().any(sigma::looks_like_sigma) {
                    match native::import(&path, &docs) {
                        Ok(rules) => out.set.rules.extend(rules),
                        Err(e) => {
                            all.extend(e.iter().cloned());
                            out.errors.extend(e);
                        }
                    }
                    continue;
                }
                let other = sigma::other_log_source(&docs);
                if opts.skip_other_log_sources && !explicit {
                    if let Some(label) = other {
                        *out.other_log_sources.entry(label).or_default() += 1;
                        continue;
                    }
                }
                match sigma::import(&path, &docs, opts.placeholders.as_ref()) {
                    Ok(rules) => {
                        out.sigma_ids.extend(rules.iter().map(|r| r.id));
                        out.set.rules.extend(rules);
                    }
                    // A rule of another log source that is not skipped (named
                    // explicitly, or strict): an error, never "unsupported".
                    Err(errors) if other.is_some() => {
                        all.extend(errors.iter().cloned());
                        out.errors.extend(errors);
                    }
                    Err(errors) => {
                        all.extend(errors.iter().cloned());
                        out.unsupported.push(Unsupported {
                            title: sigma::title(&docs),
                            errors,
                        });
                    }
                }
            }
        }
    }
    if !sysmon_files.is_empty() {
        match sysmon::import(&sysmon_files, &opts.sysmon) {
            Ok(rules) => out.set.rules.extend(rules),
            Err(e) => {
                all.extend(e.iter().cloned());
                out.errors.extend(e);
            }
        }
    }
    let before = out.errors.len();
    check_unique_ids(&out.set, &mut out.errors);
    all.extend(out.errors.iter().skip(before).cloned());
    (out, all)
}

/// Imports one YAML file (Sigma or native, by content).
///
/// # Errors
/// Every error in the file, with file:line:column.
pub fn load_yaml(path: &Path, text: &str) -> Result<Vec<Rule>, Vec<SourceError>> {
    load_yaml_with(path, text, &ImportOptions::default())
}

/// [`load_yaml`] with options (placeholder values for Sigma `expand`).
///
/// # Errors
/// As [`load_yaml`].
pub fn load_yaml_with(
    path: &Path,
    text: &str,
    opts: &ImportOptions,
) -> Result<Vec<Rule>, Vec<SourceError>> {
    let docs = yaml::parse(path, text).map_err(|e| vec![e])?;
    if docs.iter().any(sigma::looks_like_sigma) {
        sigma::import(path, &docs, opts.placeholders.as_ref())
    } else {
        native::import(path, &docs)
    }
}

fn check_unique_ids(set: &RuleSet, errors: &mut Vec<SourceError>) {
    let mut seen: HashMap<u32, &SourceLoc> = HashMap::new();
    for r in &set.rules {
        if let Some(first) = seen.get(&r.id) {
            errors.push(SourceError::new(
                r.source.clone(),
                format!(
                    "rule id {} (0x{:08x}) of `{}` is already used by the rule at {first}",
                    r.id, r.id, r.name
                ),
            ));
        } else {
            seen.insert(r.id, &r.source);
        }
    }
}
