//! Helpers shared by the `pipectl` end-to-end tests.
#![allow(dead_code)] // each test file uses a subset

use std::path::PathBuf;
use std::process::{Command, Output};

/// Runs the built `pipectl` with `args`.
pub fn pipectl(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pipectl"))
        .args(args)
        .output()
        .expect("run pipectl")
}

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A path in the repository, as a string (third-party data under
/// `third_party/`, the project's own lists under `data/`).
pub fn corpus(p: &str) -> String {
    root().join(p).to_string_lossy().into_owned()
}

/// The 17 SigmaHQ `pipe_created` rules (third_party/sigma/README.md).
pub const SIGMA_PIPE: &str = "third_party/sigma/rules/windows/pipe_created";
/// The real Sysmon Event ID 17 of SigmaHQ's regression data: the EVTX
/// written by Windows.
pub const REDSUN_EVTX: &str = "third_party/sigma/regression_data/rules-emerging-threats/2026/Exploits/RedSun/pipe_created_win_exploit_redsun_named_pipe/9b4e7c2a-3f6d-4a8b-b5e9-1c7d3f2e6a4b.evtx";
/// The same event as JSON.
pub const REDSUN_JSON: &str = "third_party/sigma/regression_data/rules-emerging-threats/2026/Exploits/RedSun/pipe_created_win_exploit_redsun_named_pipe/9b4e7c2a-3f6d-4a8b-b5e9-1c7d3f2e6a4b.json";

/// A fresh directory for one test (`group` names the test file).
pub fn tmp(group: &str, name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("pipectl-{group}-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Output bytes as text.
pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Fails the test if pipectl panicked.
pub fn assert_no_panic(o: &Output) {
    let err = text(&o.stderr);
    assert!(!err.contains("panicked"), "pipectl panicked: {err}");
}
