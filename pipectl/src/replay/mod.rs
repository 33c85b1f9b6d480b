//! `pipectl replay` and `pipectl diff`: backtesting channel files on recorded
//! Sysmon pipe events (Event ID 17 PipeCreated, 18 PipeConnected), in three
//! steps:
//!
//! 1. [`ingest`]: event files (EVTX, JSON in every shape SIEMs export) into
//!    records; only Sysmon's 17/18 are pipe events, other providers' records
//!    are counted per provider;
//! 2. [`evaluate`]: each record through the kernel's parser and matcher, with
//!    the name normalized as the driver does;
//! 3. [`report`]: per rule, what the file would alert on or block
//!    ([`diff`] compares two files on the same records).

pub mod diff;
pub mod evaluate;
pub mod ingest;
pub mod report;

pub use diff::{run_diff, DiffArgs};

use std::path::PathBuf;

/// Arguments of `pipectl replay`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  pipectl replay C-00000291-00000001.sys third_party/sigma/regression_data/
  pipectl replay C-00000291-00000001.sys logs/*.jsonl Microsoft-Windows-Sysmon.evtx --json
  pipectl replay --rules rules/ --rules third_party/sigma logs/
Exit codes: 0 replayed (whatever matched); 1 invalid channel file, or rule errors with
--rules; 2 unreadable or malformed event input (the error names the file and record;
--skip-bad goes on); 3 replayed, but --skip-unsupported left Sigma rules out.")]
pub struct ReplayArgs {
    /// The channel file, then event files (.evtx, JSON object or array, JSON
    /// lines) or directories of them (*.evtx, *.json, *.jsonl, *.ndjson,
    /// recursively). With --rules, all of them are event files.
    #[arg(required = true, value_name = "FILE.sys | EVENTS")]
    inputs: Vec<PathBuf>,
    /// Compile these rule files or directories in memory and replay them
    /// instead of a channel file (the selection of `pipectl compile`).
    #[arg(long, value_name = "RULES")]
    rules: Vec<PathBuf>,
    #[command(flatten)]
    select: crate::select::SelectArgs,
    #[command(flatten)]
    common: CommonArgs,
    /// Also list the rules that matched nothing (text output).
    #[arg(long)]
    all: bool,
}

/// Options shared by `replay` and `diff`.
#[derive(Debug, clap::Args)]
pub struct CommonArgs {
    /// Machine-readable output (one JSON document on stdout).
    #[arg(long)]
    pub(crate) json: bool,
    /// Example events shown per rule or change group.
    #[arg(long, default_value_t = 3)]
    pub(crate) examples: usize,
    /// Skip malformed records (counted and listed) instead of stopping at the
    /// first one.
    #[arg(long)]
    pub(crate) skip_bad: bool,
}

/// Runs `pipectl replay`.
///
/// # Errors
/// Unreadable files and (without `--skip-bad`) malformed records.
pub fn run_replay(a: ReplayArgs) -> Result<u8, String> {
    let (ch, events, ok_code) = if a.rules.is_empty() {
        let [file, events @ ..] = a.inputs.as_slice() else {
            return Err("no channel file given".into());
        };
        if events.is_empty() {
            return Err(format!(
                "no event files given after the channel file {} (or use --rules RULES to compile rules instead)",
                file.display()
            ));
        }
        (evaluate::Channel::open(file)?, events, 0)
    } else {
        let opts = pipe_compiler::CompileOptions::default();
        let (sel, bytes) = match crate::select::load_and_compile(&a.rules, &a.select, &opts) {
            Ok(x) => x,
            Err(code) => return Ok(code),
        };
        let name = format!("(compiled from {} rule source(s))", a.rules.len());
        (
            evaluate::Channel::from_bytes(name, &bytes),
            a.inputs.as_slice(),
            sel.ok_code(),
        )
    };
    let f = match ch.parse() {
        Ok(f) => f,
        Err(e) => {
            eprintln!("{e}");
            return Ok(1);
        }
    };
    let loaded = ingest::load_events(events, a.common.skip_bad)?;
    let mut work = evaluate::Work::new();
    let results: Vec<_> = loaded
        .records
        .iter()
        .map(|r| evaluate::evaluate(&f, r, &mut work))
        .collect();
    let opts = report::ReportOptions {
        examples: a.common.examples,
        json: a.common.json,
        all: a.all,
    };
    print(&report::replay(&ch, &f, &loaded, &results, opts));
    Ok(ok_code)
}

/// Writes to stdout, ignoring a closed pipe (`pipectl replay .. | head`).
fn print(s: &str) {
    use std::io::Write as _;
    let _ = std::io::stdout().lock().write_all(s.as_bytes());
}
