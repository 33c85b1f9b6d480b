//! `pipectl`: the tool security engineers use to author pipe-sensor content.
//!
//! Exit codes: 0 success (valid / matched / all tests passed), 1 a negative
//! answer (invalid file, no match, failing tests, rule errors), 2 usage or
//! I/O errors.

use channel_parser::{Capabilities, ChannelFile, FieldId, Scratch};
use clap::{Parser, Subcommand, ValueEnum};
use pipe_compiler::{AlignedBytes, CompileOptions};
use sensor_core::decision;
use sensor_core::dospath::DeviceMap;
use sensor_core::eval::{self, RawEvent, Work};
use sensor_core::ring::EventKind;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// `println!` that ignores a closed stdout (`pipectl inspect x | head`).
macro_rules! outln {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout().lock(), $($t)*);
    }};
}

mod cases;
mod driver_client;
#[allow(dead_code)]
mod enforcement;
mod keys;
mod protected;
mod replay;
mod rollout;
mod rulediff;
mod select;
mod show;
mod trust;

const EXAMPLES: &str = "\
Examples:
  pipectl compile third_party/sigma rules -o C-00000291-00000001.sys --sequence 1
  pipectl verify C-00000291-00000001.sys
  pipectl inspect C-00000291-00000001.sys --json
  pipectl match C-00000291-00000001.sys '\\postex_1234'
  pipectl match C-00000291-00000001.sys '\\MICROSOFT##WID\\tsql\\query' --image 'C:\\x\\evil.exe' --kind connect
  pipectl test rules/
  pipectl gen-malformed out/malformed";

#[derive(Parser, Debug)]
#[command(name = "pipectl", version, about = "Author, compile, verify, inspect and test pipe-sensor channel files", after_help = EXAMPLES)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

/// The event fields a sensor supplies, by name (PipeName, Image, ProcessId,
/// EventKind, User) or number.
#[derive(Debug, Clone, clap::Args)]
struct SensorArgs {
    /// Fields the target sensor supplies (comma-separated). Default: what
    /// this driver supplies (PipeName,Image,ProcessId,EventKind,User); a
    /// driver from before `User` supplies PipeName,Image,ProcessId,EventKind.
    #[arg(long, value_delimiter = ',')]
    sensor_fields: Option<Vec<String>>,
}

impl SensorArgs {
    fn caps(&self) -> Result<Capabilities, String> {
        let Some(names) = &self.sensor_fields else {
            return Ok(Capabilities::SENSOR);
        };
        let mut fields = Vec::new();
        for n in names {
            let f = FieldId::KNOWN
                .iter()
                .copied()
                .find(|f| f.name().is_some_and(|x| x.eq_ignore_ascii_case(n.trim())))
                .or_else(|| n.trim().parse::<u16>().ok().map(FieldId));
            fields.push(f.ok_or_else(|| {
                format!("unknown sensor field {n:?} (known: PipeName, Image, ProcessId, EventKind, User)")
            })?);
        }
        Ok(Capabilities::from_fields(&fields))
    }
}

/// Staged rollout written into the file's ROLLOUT section.
#[derive(Debug, Clone, clap::Args)]
struct RolloutArgs {
    /// Release to this ring (and the rings before it): canary, early or broad.
    #[arg(long, value_parser = ["canary", "early", "broad"])]
    ring: Option<String>,
    /// Share of the ring's machines, in percent (0-100, up to 3 decimals).
    #[arg(long, requires = "ring")]
    percent: Option<f64>,
    /// Not before this time: RFC 3339 (2026-12-01T06:00:00Z) or Unix seconds.
    #[arg(long, requires = "ring")]
    not_before: Option<String>,
    /// Make this file a rollback instruction: machines whose highest proven
    /// sequence is at most N may adopt it although its sequence is lower.
    #[arg(long, value_name = "N")]
    rollback_ceiling: Option<u64>,
}

impl RolloutArgs {
    fn policy(&self) -> Result<Option<channel_parser::RolloutPolicy>, String> {
        let staged = match &self.ring {
            None => None,
            Some(r) => {
                let ring = sensor_core::rollout::parse_ring(r)
                    .ok_or_else(|| format!("--ring {r:?}: expected canary, early or broad"))?;
                let pct = self.percent.unwrap_or(100.0);
                if !(0.0..=100.0).contains(&pct) {
                    return Err(format!("--percent {pct}: must be between 0 and 100"));
                }
                let not_before = match &self.not_before {
                    None => 0,
                    Some(t) => match t.parse::<u64>() {
                        Ok(n) => n,
                        Err(_) => humantime::parse_rfc3339_weak(t)
                            .map_err(|e| {
                                format!(
                                    "--not-before {t:?}: {e}; expected a UTC date and time in \
                                     RFC 3339 form, e.g. 2026-12-01T06:00:00Z, or Unix seconds"
                                )
                            })?
                            .duration_since(std::time::UNIX_EPOCH)
                            .map_err(|e| e.to_string())?
                            .as_secs(),
                    },
                };
                Some(channel_parser::Staging {
                    ring,
                    percent_milli: (pct * 1000.0).round() as u32,
                    not_before,
                })
            }
        };
        if staged.is_none() && self.rollback_ceiling.is_none() {
            return Ok(None);
        }
        Ok(Some(channel_parser::RolloutPolicy {
            staged,
            rollback_ceiling: self.rollback_ceiling,
        }))
    }
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum KindArg {
    Create,
    Connect,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Compile rule files or directories (native YAML, Sigma YAML, Sysmon XML)
    /// into a channel file.
    #[command(
        after_help = "Example:\n  pipectl compile rules/ third_party/sigma -o out/ --sequence 42\n  (a directory output gets the name C-00000291-00000042.sys)\nExit codes: 0 written; 1 rule errors, nothing written; 2 usage or I/O errors;\n3 written without the Sigma rules --skip-unsupported skipped (listed on stderr).\nSigma rules of other log sources in directories are skipped and counted (--strict: errors)."
    )]
    Compile(CompileArgs),
    /// Generate an Ed25519 key pair for signing channel files: PREFIX.key
    /// (secret, mode 0600) and PREFIX.pub.
    #[command(
        after_help = "Example:\n  pipectl keygen keys/release-2026\n  pipectl compile rules/ -o out/ --sequence 43 --sign keys/release-2026.key\n  pipectl verify out/C-00000291-00000043.sys --key keys/release-2026.pub"
    )]
    Keygen(KeygenArgs),
    /// Validate a channel file with exactly the kernel's parser. Exit 0 when
    /// valid, 1 with the error (offset, reason) on stderr when not.
    #[command(
        after_help = "Example:\n  pipectl verify C-00000291-00000001.sys --sensor-fields PipeName,Image"
    )]
    Verify(VerifyArgs),
    /// Show header, sections, rules and the SHA-256 digest of a channel file.
    #[command(
        after_help = "Example:\n  pipectl inspect C-00000291-00000001.sys --json | jq '.rules[].name'"
    )]
    Inspect(InspectArgs),
    /// Match one event against a channel file. Exit 0 on a match, 1 on none.
    #[command(
        after_help = "Example:\n  pipectl match C-00000291-00000001.sys '\\postex_1234' --image 'C:\\Temp\\a.exe' --json"
    )]
    Match(MatchArgs),
    /// Run every rule's embedded test cases through the compiled file.
    #[command(
        after_help = "Example:\n  pipectl test rules/\nExit codes: 0 all cases pass; 1 a case fails or rule errors; 2 usage or I/O errors;\n3 all cases pass but --skip-unsupported skipped Sigma rules."
    )]
    Test(TestArgs),
    /// Talk to the running PipeSensor driver (Windows): status, load, events,
    /// mode, eval.
    Driver {
        #[command(subcommand)]
        cmd: driver_client::DriverCmd,
    },
    /// Backtest: run a channel file over recorded Sysmon pipe events (ID 17/18;
    /// .evtx, JSON, JSON lines) and report per rule what it would alert on or
    /// block.
    Replay(replay::ReplayArgs),
    /// Which verdicts a new release changes on recorded events (newly matched,
    /// no longer matched, action changed, best rule changed).
    Diff(replay::DiffArgs),
    /// Rollout planning: `rollout simulate` models the blast radius of a bad
    /// release.
    Rollout {
        #[command(subcommand)]
        cmd: rollout::RolloutCmd,
    },
    /// Write the malformed-file corpus (files the parser must reject) into a
    /// directory, with a manifest of expected errors.
    #[command(name = "gen-malformed")]
    GenMalformed(GenMalformedArgs),
}

/// `pipectl compile`.
#[derive(Debug, clap::Args)]
struct CompileArgs {
    /// Rule files or directories.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    #[command(flatten)]
    select: select::SelectArgs,
    /// Output file, or a directory to write C-00000291-<sequence>.sys into.
    #[arg(short, long)]
    output: PathBuf,
    /// Content sequence number.
    #[arg(long, default_value_t = 1)]
    sequence: u64,
    /// Sign with this secret key file (repeat for key rotation, up to 4).
    #[arg(long = "sign", value_name = "KEY")]
    sign: Vec<PathBuf>,
    /// Replace an existing file at the output path.
    #[arg(long)]
    force: bool,
    /// Do not run the rules' embedded test cases (by default a release
    /// whose own cases fail is not written).
    #[arg(long)]
    no_test: bool,
    #[command(flatten)]
    rollout: RolloutArgs,
    #[command(flatten)]
    enforcement: enforcement::EnforcementArgs,
    #[command(flatten)]
    sensor: SensorArgs,
    /// Test aid: write block rules that can match a protected pipe or a
    /// critical process (the low-level writer, no refusal), to prove the
    /// driver's own protected-set check on a test machine.
    #[arg(long, hide = true)]
    unchecked_protected: bool,
}

/// `pipectl keygen`.
#[derive(Debug, clap::Args)]
struct KeygenArgs {
    /// Path prefix of the key files (directories are created).
    prefix: PathBuf,
    /// Rewrite PREFIX.key / PREFIX.pub written by an older pipectl (64 hex
    /// digits, no header) in the current format, after checking that the
    /// .pub is the .key's public half.
    #[arg(long)]
    upgrade: bool,
}

/// `pipectl verify`.
#[derive(Debug, clap::Args)]
struct VerifyArgs {
    /// The channel file.
    file: PathBuf,
    /// Require a valid signature by one of these public keys (as the
    /// driver does with its built-in keys) before parsing.
    #[arg(long = "key", value_name = "PUB")]
    keys: Vec<PathBuf>,
    #[command(flatten)]
    sensor: SensorArgs,
}

/// `pipectl inspect`.
#[derive(Debug, clap::Args)]
struct InspectArgs {
    /// The channel file.
    file: PathBuf,
    /// Machine-readable output.
    #[arg(long)]
    json: bool,
}

/// `pipectl match`.
#[derive(Debug, clap::Args)]
struct MatchArgs {
    /// The channel file.
    file: PathBuf,
    /// Pipe name: `\name` as Sysmon reports it, or any spelling the driver
    /// normalizes (`\\.\pipe\name`, `\Device\NamedPipe\name`, `name`).
    name: String,
    /// Image path of the creating/connecting process.
    #[arg(long)]
    image: Option<String>,
    /// Event kind (default: create, as the driver and `test` assume when
    /// none is given).
    #[arg(long, value_enum, default_value = "create")]
    kind: KindArg,
    /// Process id (default: 0, sensor_core::eval::DEFAULT_PID, as `test`
    /// and `replay` assume when none is given).
    #[arg(long, default_value_t = sensor_core::eval::DEFAULT_PID)]
    pid: u32,
    /// The requester's user SID (`S-1-5-18`), as the driver supplies the
    /// `User` field; a well-known `DOMAIN\name` (`NT AUTHORITY\SYSTEM`)
    /// is mapped to its SID. Without it, rules on `User` do not match.
    #[arg(long)]
    user: Option<String>,
    /// Machine-readable output.
    #[arg(long)]
    json: bool,
}

/// `pipectl test`.
#[derive(Debug, clap::Args)]
struct TestArgs {
    /// Rule files or directories.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    #[command(flatten)]
    select: select::SelectArgs,
    /// Fail (exit 1) when a rule has no test case.
    #[arg(long)]
    require_cases: bool,
}

/// `pipectl gen-malformed`.
#[derive(Debug, clap::Args)]
struct GenMalformedArgs {
    /// Output directory.
    dir: PathBuf,
    /// Include a truncation at every byte offset (thousands of files).
    #[arg(long)]
    every_offset: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli.cmd) {
        Ok(code) => ExitCode::from(code),
        Err(msg) => {
            eprintln!("error: {msg}");
            ExitCode::from(2)
        }
    }
}

fn read_file(path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))
}

/// Parses with the kernel's parser for the version-1 sensor; on failure
/// prints `file: invalid: error [kind]` and returns `None`.
fn parse_or_report<'a>(file: &Path, aligned: &'a AlignedBytes) -> Option<ChannelFile<'a>> {
    channel_parser::parse(aligned.as_slice(), &Capabilities::SENSOR)
        .map_err(|e| eprintln!("{}: invalid: {e} [{}]", file.display(), e.kind()))
        .ok()
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn run(cmd: Cmd) -> Result<u8, String> {
    match cmd {
        Cmd::Replay(a) => replay::run_replay(a),
        Cmd::Diff(a) => replay::run_diff(a),
        Cmd::Rollout { cmd } => rollout::run(cmd),
        Cmd::Driver { cmd } => driver_client::run(cmd).map(|c| u8::try_from(c).unwrap_or(1)),
        Cmd::Keygen(a) => cmd_keygen(a),
        Cmd::Compile(a) => cmd_compile(a),
        Cmd::Verify(a) => cmd_verify(a),
        Cmd::Inspect(a) => cmd_inspect(a),
        Cmd::Match(a) => cmd_match(a),
        Cmd::Test(a) => cmd_test(a),
        Cmd::GenMalformed(a) => cmd_gen_malformed(a),
    }
}

fn cmd_keygen(a: KeygenArgs) -> Result<u8, String> {
    if a.upgrade {
        let u = keys::upgrade(&a.prefix)?;
        for (p, what) in &u.rewritten {
            outln!("rewrote {} ({what} key file)", p.display());
        }
        outln!(
            "key id {}{}",
            u.id,
            if u.pair_checked {
                " (the .pub is the public half of the .key)"
            } else {
                ""
            }
        );
        return Ok(0);
    }
    let (secret, public, id) = keys::keygen(&a.prefix)?;
    outln!(
        "wrote {} (secret: keep it offline) and {}; key id {id}",
        secret.display(),
        public.display()
    );
    outln!(
        "a driver trusts it once {} is copied into driver/keys/ and the driver rebuilt (docs/install.md)",
        public.display()
    );
    Ok(0)
}

/// Where `compile -o` writes: into a directory (existing, or named with a
/// trailing separator; created) as `C-00000291-<sequence>.sys`, or the file
/// named (its directory created).
fn output_path(output: &Path, sequence: u64) -> Result<PathBuf, String> {
    let text = output.as_os_str().to_string_lossy();
    let dir_like = output.is_dir() || text.ends_with('/') || text.ends_with('\\');
    if dir_like {
        std::fs::create_dir_all(output).map_err(|e| format!("{}: {e}", output.display()))?;
        let mut name = String::new();
        channel_format::file_name(sequence, &mut name).map_err(|e| e.to_string())?;
        Ok(output.join(name))
    } else {
        keys::create_parent(output)?;
        Ok(output.to_path_buf())
    }
}

/// Writes `bytes` to `out` through a temporary file beside it, so that a
/// content directory never holds a half-written channel file.
fn write_atomically(out: &Path, bytes: &[u8]) -> Result<(), String> {
    let mut tmp = out.as_os_str().to_owned();
    tmp.push(".partial");
    let tmp = PathBuf::from(tmp);
    std::fs::write(&tmp, bytes).map_err(|e| format!("{}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, out).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        format!("{}: {e}", out.display())
    })
}

fn cmd_compile(a: CompileArgs) -> Result<u8, String> {
    let caps = a.sensor.caps()?;
    let rollout = a.rollout.policy()?;
    let enforcement = a.enforcement.policy()?;
    let signing_keys = a
        .sign
        .iter()
        .map(|p| keys::signing_key(p).map(|(k, id)| (k, id, p)))
        .collect::<Result<Vec<_>, _>>()?;
    let out = output_path(&a.output, a.sequence)?;
    let opts = CompileOptions {
        sequence: a.sequence,
        capabilities: caps,
        rollout,
        enforcement,
        ..CompileOptions::default()
    };
    let write: select::Writer = if a.unchecked_protected {
        pipe_compiler::compile_unchecked
    } else {
        pipe_compiler::compile
    };
    let (sel, mut bytes) = match select::load_and_compile_with(&a.paths, &a.select, &opts, write) {
        Ok(x) => x,
        Err(code) => return Ok(code),
    };
    let set = &sel.set;
    // After the sources: their errors come first, whatever the output.
    if out.exists() && !a.force {
        return Err(format!(
            "{} exists: not overwriting a channel file (--force replaces it)",
            out.display()
        ));
    }
    let tests = if a.no_test {
        None
    } else {
        let aligned = AlignedBytes::new(&bytes);
        let f = channel_parser::parse(aligned.as_slice(), &caps)
            .map_err(|e| format!("compiled file invalid: {e}"))?;
        let report = cases::run(set, &f);
        if !report.failures.is_empty() {
            report.print(false);
            eprintln!(
                "error: {} embedded test case(s) fail: not writing {} (fix the rules or their cases; --no-test skips them)",
                report.failures.len(),
                out.display()
            );
            return Ok(1);
        }
        Some(report)
    };
    if !signing_keys.is_empty() {
        let keys: Vec<_> = signing_keys.iter().map(|(k, _, _)| k.clone()).collect();
        bytes = pipe_compiler::sign::sign(&bytes, &keys)?;
    }
    write_atomically(&out, &bytes)?;
    outln!(
        "wrote {}: {} rules, {} bytes, sequence {}, sha256 {}",
        out.display(),
        set.rules.len(),
        bytes.len(),
        a.sequence,
        sha256_hex(&bytes)
    );
    match &tests {
        None => outln!("tests:     skipped (--no-test)"),
        Some(r) => outln!(
            "tests:     {} embedded case(s) passed{}",
            r.passed,
            if r.without_cases.is_empty() {
                String::new()
            } else {
                format!(
                    "; {} rule(s) without cases (`pipectl test --require-cases` lists them)",
                    r.without_cases.len()
                )
            }
        ),
    }
    if signing_keys.is_empty() {
        outln!("signature: none (unsigned; sign with --sign KEY.key)");
    }
    for (_, id, path) in &signing_keys {
        outln!("signature: signed with key id {id} ({})", path.display());
    }
    outln!(
        "driver:    {}",
        trust::Admission::default_driver(&bytes)?.text()
    );
    Ok(sel.ok_code())
}

fn cmd_verify(a: VerifyArgs) -> Result<u8, String> {
    let caps = a.sensor.caps()?;
    let file = &a.file;
    let bytes = read_file(file)?;
    let trusted = a
        .keys
        .iter()
        .map(|p| keys::trusted_key(p))
        .collect::<Result<Vec<_>, _>>()?;
    if !trusted.is_empty() {
        match content_trust::verify(&bytes, &trusted) {
            Ok(id) => outln!("{}: signature: valid, key id {id}", file.display()),
            Err(e) => {
                eprintln!("{}: untrusted: {e} [{}]", file.display(), e.kind());
                return Ok(1);
            }
        }
    }
    // The driver checks the signature before it parses: a tampered file is
    // reported as such even when the change also breaks the format.
    let sig = trust::Signature::of(&bytes);
    let aligned = AlignedBytes::new(&bytes);
    let f = match channel_parser::parse(aligned.as_slice(), &caps) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("{}: invalid: {e} [{}]", file.display(), e.kind());
            if sig.is_bad() {
                eprintln!("{}: signature: {}", file.display(), sig.text());
            }
            return Ok(1);
        }
    };
    outln!(
        "{}: valid: format {}.{}, sequence {}, {} rules, sha256 {}",
        file.display(),
        f.header().format_major,
        f.header().format_minor,
        f.sequence(),
        f.rule_count(),
        sha256_hex(&bytes)
    );
    let admission = if trusted.is_empty() {
        trust::Admission::default_driver(&bytes)?
    } else {
        trust::Admission::judge(
            &bytes,
            &trusted,
            "a driver trusting the --key keys (RequireSignature 1)".to_string(),
        )
    };
    if sig.is_bad() {
        eprintln!("{}: signature: {}", file.display(), sig.text());
    } else {
        outln!("{}: signature: {}", file.display(), sig.text());
    }
    outln!("{}: driver: {}", file.display(), admission.text());
    Ok(u8::from(sig.is_bad()))
}

fn cmd_inspect(a: InspectArgs) -> Result<u8, String> {
    let bytes = read_file(&a.file)?;
    let aligned = AlignedBytes::new(&bytes);
    let Some(f) = parse_or_report(&a.file, &aligned) else {
        return Ok(1);
    };
    let sig = trust::Signature::of(&bytes);
    let admission = trust::Admission::default_driver(&bytes)?;
    if a.json {
        let mut v = inspect_json(&f, &bytes);
        v["signature"] = sig.json();
        v["default_driver"] = admission.json();
        outln!(
            "{}",
            serde_json::to_string_pretty(&v).map_err(|e| e.to_string())?
        );
    } else {
        print_inspect(&a.file, &f, &bytes, &sig, &admission);
    }
    Ok(0)
}

fn cmd_match(a: MatchArgs) -> Result<u8, String> {
    let bytes = read_file(&a.file)?;
    let aligned = AlignedBytes::new(&bytes);
    let Some(f) = parse_or_report(&a.file, &aligned) else {
        return Ok(2);
    };
    let kind = match a.kind {
        KindArg::Create => EventKind::Create,
        KindArg::Connect => EventKind::Connect,
    };
    let name16: Vec<u16> = a.name.encode_utf16().collect();
    let image16: Option<Vec<u16>> = a.image.as_ref().map(|i| i.encode_utf16().collect());
    let user = match &a.user {
        None => None,
        Some(u) => Some(pipe_compiler::user::event_user_sid(u).ok_or_else(|| {
            format!("--user {u:?} is neither a SID (S-1-5-21-…-1001) nor a well-known name the sensor's table maps (NT AUTHORITY\\SYSTEM, …): give the SID, as the driver supplies it")
        })?),
    };
    let raw = RawEvent {
        kind,
        pid: a.pid,
        name: &name16,
        image: image16.as_deref(),
        user: user.as_deref(),
    };
    // The driver's evaluation path (sensor_core::eval), with no drive table:
    // DOS and \??\C: image paths as the driver sees them after its rewrite.
    let drives = DeviceMap::new();
    let mut work = Box::new(Work::new());
    let (prepared, verdict) =
        eval::evaluate(&f, &drives, &raw, &mut work).map_err(|e| format!("{:?}: {e}", a.name))?;
    let mut scratch = Box::new(Scratch::new());
    let mut matches = Vec::new();
    f.for_each_match(&prepared.event(), &mut scratch, |r| {
        matches.push(r);
        ControlFlow::Continue(())
    });
    let name = String::from_utf16_lossy(prepared.name);
    let image = prepared.image.map(|i| String::from_utf16_lossy(i.path()));
    let best = verdict.best;
    let decisions = |mode| {
        decision::decide(
            mode,
            best.map(|r| decision::RuleHit {
                id: r.id(),
                action: r.action(),
                severity: r.severity(),
            }),
        )
    };
    let word = decision::Decision::name;
    let kind_name = match kind {
        EventKind::Create => "create",
        EventKind::Connect => "connect",
    };
    if a.json {
        let v = json!({
            "name": a.name,
            "normalized_name": name,
            "image": image,
            "pid": a.pid,
            "kind": kind_name,
            "user": user,
            "matched": matches.iter().map(rule_json).collect::<Vec<_>>(),
            "best": best.as_ref().map(rule_json),
            "decision": {
                "monitor": word(decisions(decision::Mode::Monitor)),
                "enforce": word(decisions(decision::Mode::Enforce)),
            },
        });
        outln!(
            "{}",
            serde_json::to_string_pretty(&v).map_err(|e| e.to_string())?
        );
    } else {
        outln!(
            "event: name {}{}, image {}, pid {}, kind {kind_name}, user {}",
            show::quote(&name),
            if name == a.name {
                String::new()
            } else {
                format!(" (normalized from {})", show::quote(&a.name))
            },
            image.as_deref().map_or("none".to_string(), show::quote),
            a.pid,
            user.as_deref().unwrap_or("none"),
        );
        if matches.is_empty() {
            outln!("no match");
        }
        for r in &matches {
            outln!(
                "MATCH rule {} {} severity={} action={}",
                show::rule_id(r.id()),
                show::quote(r.name()),
                r.severity(),
                r.action()
            );
        }
        if let Some(b) = best {
            outln!(
                "best: rule {} (driver decision: {} in monitor mode, {} in enforce mode)",
                show::rule_id(b.id()),
                word(decisions(decision::Mode::Monitor)),
                word(decisions(decision::Mode::Enforce)),
            );
        }
    }
    Ok(if matches.is_empty() { 1 } else { 0 })
}

fn cmd_gen_malformed(a: GenMalformedArgs) -> Result<u8, String> {
    let GenMalformedArgs { dir, every_offset } = a;
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let cases = test_kit::malformed::corpus(every_offset);
    let mut manifest = String::new();
    let mut written = 0;
    for (i, c) in cases.iter().enumerate() {
        // Cases needing other capabilities, limits or alignment cannot be
        // reproduced by loading a file: the manifest lists file cases only.
        if c.max_limits || c.misaligned || c.caps != Capabilities::SENSOR {
            continue;
        }
        let expect = match c.expect {
            test_kit::malformed::Expect::Valid => "valid".to_string(),
            test_kit::malformed::Expect::Kind(k) => k.to_string(),
            test_kit::malformed::Expect::OneOf(ks) => ks.join("|"),
        };
        let fname = format!("{i:05}-{}.bin", c.name);
        std::fs::write(dir.join(&fname), &c.bytes).map_err(|e| format!("{fname}: {e}"))?;
        manifest.push_str(&format!("{fname}\t{expect}\n"));
        written += 1;
    }
    std::fs::write(dir.join("MANIFEST.tsv"), manifest).map_err(|e| e.to_string())?;
    outln!(
        "wrote {written} files and MANIFEST.tsv (file, expected error kind) to {}",
        dir.display()
    );
    Ok(0)
}

fn rule_json(r: &channel_parser::RuleView<'_>) -> Value {
    json!({
        "index": r.index(),
        "id": r.id(),
        "id_hex": show::rule_id_hex(r.id()),
        "name": r.name(),
        "severity": r.severity().to_string(),
        "action": r.action().to_string(),
    })
}

fn inspect_json(f: &ChannelFile<'_>, bytes: &[u8]) -> Value {
    let h = f.header();
    json!({
        "sha256": sha256_hex(bytes),
        "header": {
            "format": format!("{}.{}", h.format_major, h.format_minor),
            "channel": h.channel,
            "sequence": h.sequence,
            "required_flags": h.required_flags,
            "optional_flags": h.optional_flags,
            "total_len": h.total_len,
        },
        "sections": f.sections().map(|s| json!({
            "kind": s.kind.to_string(), "flags": s.flags, "offset": s.offset, "len": s.len,
        })).collect::<Vec<_>>(),
        "prefilter": f.prefilter_stats().map(|(field, states, outputs)| json!({
            "field": field.to_string(), "states": states, "outputs": outputs,
        })).collect::<Vec<_>>(),
        "rollout": f.rollout().map(|r| json!({
            "ring": r.staged.map(|s| s.ring.to_string()),
            "percent": r.staged.map(|s| f64::from(s.percent_milli) / 1000.0),
            "not_before": r.staged.map(|s| s.not_before),
            "not_before_utc": r.staged.filter(|s| s.not_before != 0).map(|s| show::utc(s.not_before)),
            "rollback_ceiling": r.rollback_ceiling,
        })),
        "enforcement": f.enforcement().map(|e| enforcement::to_json(&e)),
        "dfas": f.dfa_count(),
        "always_evaluated": f.always_count(),
        "rules": f.rules().map(|r| {
            let mut v = rule_json(&r);
            v["fields"] = json!(r.fields().map(|x| x.to_string()).collect::<Vec<_>>());
            v["always_evaluated"] = json!(r.always_evaluated());
            v["atoms"] = json!(r.atoms().map(|a| show::atom_json(&a)).collect::<Vec<_>>());
            v["program"] = json!(disassemble(r.program()));
            v["condition"] = json!(show::condition(&r));
            v["condition_atoms"] = json!(show::condition_atoms(&r));
            v
        }).collect::<Vec<_>>(),
    })
}

fn disassemble(prog: &[u8]) -> String {
    channel_format::program::instructions(prog)
        .map(|i| match i {
            Ok((_, instr)) => instr.to_string(),
            Err(e) => format!("?({} at byte {})", e.reason, e.at),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn print_inspect(
    path: &Path,
    f: &ChannelFile<'_>,
    bytes: &[u8],
    sig: &trust::Signature,
    admission: &trust::Admission,
) {
    let h = f.header();
    outln!("file      {}", path.display());
    outln!("sha256    {}", sha256_hex(bytes));
    outln!(
        "format    {}.{}   channel {}   sequence {}   {} bytes",
        h.format_major,
        h.format_minor,
        h.channel,
        h.sequence,
        h.total_len
    );
    outln!("signature {}", sig.text());
    outln!("driver    {}", admission.text());
    if let Some(r) = f.rollout() {
        if let Some(st) = r.staged {
            outln!(
                "rollout   ring {}   {}% of it   not before {}",
                st.ring,
                f64::from(st.percent_milli) / 1000.0,
                if st.not_before == 0 {
                    "-".to_string()
                } else {
                    show::utc(st.not_before)
                }
            );
        }
        if let Some(c) = r.rollback_ceiling {
            outln!("rollback  instruction: adoptable where the highest proven sequence is <= {c}");
        }
    }
    if let Some(e) = f.enforcement() {
        outln!("enforce   {}", enforcement::describe(&e));
    }
    outln!(
        "flags     required {:#x}   optional {:#x}",
        h.required_flags,
        h.optional_flags
    );
    outln!("sections:");
    for s in f.sections() {
        outln!(
            "  {:<12} offset {:>8}  len {:>8}  flags {:#x}",
            s.kind.to_string(),
            s.offset,
            s.len,
            s.flags
        );
    }
    for (field, states, outputs) in f.prefilter_stats() {
        outln!("prefilter {field}: {states} states, {outputs} outputs");
    }
    outln!(
        "dfas      {}   always-evaluated rules {}",
        f.dfa_count(),
        f.always_count()
    );
    outln!("rules ({}):", f.rule_count());
    for r in f.rules() {
        outln!(
            "  {}  {:<13} {:<5} {}",
            show::rule_id(r.id()),
            r.severity().to_string(),
            r.action().to_string(),
            show::quote(r.name())
        );
        outln!("      condition: {}", show::condition(&r));
    }
}

fn cmd_test(a: TestArgs) -> Result<u8, String> {
    let (sel, bytes) =
        match select::load_and_compile(&a.paths, &a.select, &CompileOptions::default()) {
            Ok(x) => x,
            Err(code) => return Ok(code),
        };
    let set = &sel.set;
    let aligned = AlignedBytes::new(&bytes);
    let f = channel_parser::parse(aligned.as_slice(), &Capabilities::SENSOR)
        .map_err(|e| format!("compiled file invalid: {e}"))?;
    let report = cases::run(set, &f);
    report.print(a.require_cases);
    if a.require_cases && !report.without_cases.is_empty() {
        eprintln!(
            "error: {} rule(s) have no test cases (--require-cases)",
            report.without_cases.len()
        );
        return Ok(1);
    }
    Ok(if report.failures.is_empty() {
        sel.ok_code()
    } else {
        1
    })
}
