//! The importers never panic on damaged input, and every error they report
//! has a real position (line and column at least 1): the corpus files are
//! truncated at every character boundary and have single bytes replaced.

use std::path::{Path, PathBuf};

use pipe_compiler::import::{load_yaml, sysmon, SysmonOptions};
use pipe_compiler::model::SourceError;

/// A path in the repository (third-party data under `third_party/`, the
/// project's own lists under `data/`).
fn corpus(rel: &str) -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../")).join(rel)
}

/// The 17 SigmaHQ `pipe_created` rules (third_party/sigma/README.md).
const SIGMA_PIPE: &str = "third_party/sigma/rules/windows/pipe_created";
/// SwiftOnSecurity's whole Sysmon configuration.
const SYSMON_CONFIG: &str = "third_party/sysmon-config/sysmonconfig-export.xml";

#[track_caller]
fn positioned(errs: &[SourceError], what: &str) {
    assert!(!errs.is_empty(), "{what}: an Err with no error");
    for e in errs {
        assert!(
            e.loc.line >= 1 && e.loc.col >= 1,
            "{what}: error without a position: {e}"
        );
    }
}

/// Variants of `text`: every prefix (at char boundaries, every `step`-th),
/// and copies with one character replaced by each of a few troublemakers.
fn variants(text: &str, step: usize) -> Vec<String> {
    let bounds: Vec<usize> = text
        .char_indices()
        .map(|(i, _)| i)
        .chain([text.len()])
        .collect();
    let mut out: Vec<String> = bounds
        .iter()
        .step_by(step)
        .map(|&i| text[..i].to_string())
        .collect();
    for (n, &i) in bounds.iter().enumerate().step_by(step * 7 + 1) {
        if i == text.len() {
            continue;
        }
        let c_len = text[i..].chars().next().map_or(1, char::len_utf8);
        let r = ["\"", "'", "|", "*", "<", ":", "\t", "-", "\\", "&"][n % 10];
        out.push(format!("{}{r}{}", &text[..i], &text[i + c_len..]));
    }
    out
}

#[test]
fn damaged_sigma_rules() {
    let mut files: Vec<PathBuf> = std::fs::read_dir(corpus(SIGMA_PIPE))
        .expect("dir")
        .map(|e| e.expect("entry").path())
        .collect();
    files.sort();
    let mut errors = 0usize;
    for (k, f) in files.iter().enumerate() {
        let text = std::fs::read_to_string(f).expect("read");
        // The first file at every boundary, the others sampled.
        let step = if k == 0 { 1 } else { 13 };
        for v in variants(&text, step) {
            if let Err(e) = load_yaml(Path::new("damaged.yml"), &v) {
                positioned(&e, &v);
                errors += 1;
            }
        }
    }
    assert!(errors > 100, "the damage produced only {errors} errors");
}

#[test]
fn damaged_sysmon_configs() {
    let mut errors = 0usize;
    for (name, step) in [
        (
            "third_party/sysmon-modular/17_18_pipe_event/exclude_adobe.xml",
            1,
        ),
        (
            "third_party/sysmon-modular/17_18_pipe_event/include_cobaltstrike.xml",
            3,
        ),
        (SYSMON_CONFIG, 997),
    ] {
        let text = std::fs::read_to_string(corpus(name)).expect("read");
        for v in variants(&text, step) {
            if let Err(e) = sysmon::import(
                &[(PathBuf::from("damaged.xml"), v.clone())],
                &SysmonOptions::default(),
            ) {
                positioned(&e, &v);
                errors += 1;
            }
        }
    }
    assert!(errors > 100, "the damage produced only {errors} errors");
}
