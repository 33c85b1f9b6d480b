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
pub mod sigma;
pub mod sysmon;
mod yaml;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::model::{RuleSet, SourceError, SourceLoc};

pub use sysmon::SysmonOptions;

/// Options of [`load_paths_with`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ImportOptions {
    /// Severity and action of rules imported from Sysmon configs.
    pub sysmon: SysmonOptions,
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
    out: &mut Vec<(PathBuf, SourceKind)>,
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
            Some(k) => out.push((path.to_path_buf(), k)),
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
/// also two rules with the same id (naming both places).
pub fn load_paths_with(
    paths: &[PathBuf],
    opts: &ImportOptions,
) -> Result<RuleSet, Vec<SourceError>> {
    let mut errors = Vec::new();
    let mut files = Vec::new();
    for p in paths {
        collect(p, true, &mut files, &mut errors);
    }
    let mut set = RuleSet::default();
    let mut sysmon_files = Vec::new();
    for (path, kind) in files {
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) => {
                errors.push(file_err(&path, format!("cannot read: {e}")));
                continue;
            }
        };
        match kind {
            SourceKind::Xml => sysmon_files.push((path, text)),
            SourceKind::Yaml => match load_yaml(&path, &text) {
                Ok(rules) => set.rules.extend(rules),
                Err(e) => errors.extend(e),
            },
        }
    }
    if !sysmon_files.is_empty() {
        match sysmon::import(&sysmon_files, &opts.sysmon) {
            Ok(rules) => set.rules.extend(rules),
            Err(e) => errors.extend(e),
        }
    }
    check_unique_ids(&set, &mut errors);
    if errors.is_empty() {
        Ok(set)
    } else {
        Err(errors)
    }
}

/// Imports one YAML file (Sigma or native, by content).
///
/// # Errors
/// Every error in the file, with file:line:column.
pub fn load_yaml(path: &Path, text: &str) -> Result<Vec<crate::model::Rule>, Vec<SourceError>> {
    let docs = yaml::parse(path, text).map_err(|e| vec![e])?;
    if docs.iter().any(sigma::looks_like_sigma) {
        sigma::import(path, &docs)
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
