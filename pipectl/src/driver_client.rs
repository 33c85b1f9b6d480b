//! `pipectl driver …`: talks to the PipeSensor driver's control device
//! (`\\.\PipeSensor`) with `DeviceIoControl`, using the protocol in
//! `sensor_core::proto`. Windows only; elsewhere every command fails with
//! "driver commands need Windows".
//!
//! Output is `key=value` lines (one fact per line) so scripts can grep it;
//! `events` prints one line per event.
//!
//! Exit codes: 0 success; 1 the driver rejected the request (load refused,
//! IOCTL failed); 2 usage / I/O errors (returned as `Err`).

use clap::{Subcommand, ValueEnum};
use event_sink::device::{Device, Lookup, SensorDriver};
use event_sink::pipeline::{self, JsonLines, LoopConfig, Pipeline, Sink};
use event_sink::record::{Out, Value};
use event_sink::sid::SidCache;
use sensor_core::decision::{Decision, Mode};
use sensor_core::proto::{
    self, ContentInfo, EnforcementStatus, EvalResponse, LoadFailure, LoadResponse, MachineIdSource,
    Origin, ResetTarget, RolloutStatus, Status,
};
use sensor_core::ring::{EventKind, EventRecord};
use std::path::PathBuf;
use std::time::Duration;

/// The device, with errors as text.
struct Dev(Device);

impl Dev {
    fn ioctl(&self, code: u32, input: &[u8], out_len: usize) -> Result<Vec<u8>, String> {
        self.0.ioctl(code, input, out_len).map_err(|e| e.message)
    }
}

/// Text lines for `events --follow` without `--json`: pipe events as the
/// one-shot `events` prints them, health events as `health NAME k=v ...`.
struct TextLines;

impl Sink for TextLines {
    fn write(&mut self, out: &Out) -> std::io::Result<()> {
        use std::io::Write as _;
        let f = |k: &str| out.get(k).map(Value::text).unwrap_or_default();
        let line = if out.def.fields == event_sink::ids::PIPE_FIELDS {
            format!(
                "event id={} pid={} kind={} decision={} rule={} action={} severity={} user={} guid={} name={} image={}",
                f("RecordId"),
                f("ProcessId"),
                if out.def.id == event_sink::ids::PIPE_CONNECTED.id { "connect" } else { "create" },
                f("Decision"),
                f("RuleId"),
                f("Action"),
                f("Severity"),
                f("User"),
                f("ProcessGuid"),
                f("PipeName"),
                f("Image"),
            )
        } else {
            let kv: Vec<String> = out
                .def
                .fields
                .iter()
                .zip(&out.values)
                .skip(1)
                .map(|(k, v)| format!("{k}={}", v.text()))
                .collect();
            format!("health {} {}", out.def.name, kv.join(" "))
        };
        let mut o = std::io::stdout().lock();
        writeln!(o, "{line}")?;
        o.flush()
    }
}

/// `events --json` (one read) and `events --follow [--json]` (until ended):
/// the service's pipeline with stdout as its only sink.
fn events_stream(max: u32, follow: bool, json: bool) -> Result<i32, String> {
    let sink: Box<dyn Sink> = if json {
        Box::new(JsonLines(std::io::stdout()))
    } else {
        Box::new(TextLines)
    };
    let mut p = Pipeline::new(
        vec![sink],
        SidCache::new(Lookup, 1024, Duration::from_secs(300)),
    );
    let mut d = SensorDriver::new();
    if !follow {
        use event_sink::pipeline::Driver as _;
        d.connect().map_err(|e| e.to_string())?;
        let b = d
            .read(max.max(1), Duration::ZERO)
            .map_err(|e| e.to_string())?;
        p.batch(&b.events, b.info);
        return Ok(0);
    }
    let cfg = LoopConfig {
        max: max.max(1),
        ..LoopConfig::default()
    };
    pipeline::run(&mut d, &mut p, &cfg, &|| false, &std::thread::sleep);
    Ok(0)
}

/// Event kind for `eval`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum DriverKind {
    /// The pipe is created.
    Create,
    /// A client opens the pipe.
    Connect,
}

/// Mode for `mode`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum DriverMode {
    /// Record matches only.
    Monitor,
    /// Deny operations block rules match.
    Enforce,
}

/// `pipectl driver` subcommands.
#[derive(Subcommand, Debug)]
pub enum DriverCmd {
    /// Show the driver's state: mode, active / last-known-good / quarantined
    /// content, guard, counters, last load error, and the rollout: this
    /// machine's ring, bucket and control, and why each content file in the
    /// content directory was or was not adopted.
    Status,
    /// Re-read the rollout settings (Ring, ContentControl, MachineId) and the
    /// content directory, and activate what the policy selects now (a new
    /// file, a widened policy, a not-before time passed, a changed control).
    Rescan,
    /// Load a channel file into the running driver (validated by the kernel's
    /// parser; the active content stays on failure). Exit 1 when rejected.
    Load {
        /// The channel file.
        file: PathBuf,
        /// Accept a sequence not newer than the active one.
        #[arg(long)]
        force: bool,
    },
    /// Read (and remove) recorded events. With --follow, wait for new ones
    /// and print each as it arrives (until the process is ended), with the
    /// health events the service writes; with --json, one JSON line per
    /// event, exactly as the event service writes them (Sysmon 17/18 shape).
    Events {
        /// At most this many per read.
        #[arg(long, default_value_t = 64)]
        max: u32,
        /// Keep reading: wait in the driver for new events.
        #[arg(long)]
        follow: bool,
        /// JSON lines (the service's shape) instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Set monitor or enforce mode (persisted in the service key).
    Mode {
        /// The mode.
        #[arg(value_enum)]
        mode: DriverMode,
    },
    /// Evaluate a pipe event through the driver's decision path.
    Eval {
        /// Pipe name (`\name`, `\\.\pipe\name`, `\Device\NamedPipe\name`).
        name: String,
        /// Image path of the process.
        #[arg(long)]
        image: Option<String>,
        /// Event kind.
        #[arg(long, value_enum, default_value = "create")]
        kind: DriverKind,
        /// Process id to report (default: 0, sensor_core::eval::DEFAULT_PID,
        /// as `pipectl match` and `test` assume when none is given).
        #[arg(long, default_value_t = sensor_core::eval::DEFAULT_PID)]
        pid: u32,
        /// The requester's SID in string form (`S-1-5-18`) or a well-known
        /// name (`NT AUTHORITY\SYSTEM`), the `User` field, as `pipectl
        /// match --user` takes it (default: none, as a callback whose SID
        /// could not be read).
        #[arg(long)]
        user: Option<String>,
        /// Test aid: send the same request this many times (the last
        /// response is printed).
        #[arg(long, default_value_t = 1, hide = true)]
        repeat: u32,
    },
    /// The circuit breaker: `pipectl driver breaker reset [RULE]` lifts the
    /// demotion of one block rule (or, without RULE, of every rule and of
    /// the machine-wide breaker) so it denies again. `driver status` shows
    /// what is demoted.
    Breaker {
        /// What to do.
        #[command(subcommand)]
        cmd: BreakerCmd,
    },
    /// Test aid: load every `*.bin` / `*.sys` file of a directory by IOCTL,
    /// one after another, and check each is rejected and the active content
    /// stays. Exit 0 when all were rejected and the active sequence never
    /// changed, 1 otherwise.
    #[command(hide = true, name = "load-each-rejected")]
    LoadEachRejected {
        /// Directory of files the parser must reject.
        dir: PathBuf,
    },
    /// Test aid: send raw bytes (hex) as IOCTL `code` and print whether the
    /// driver accepted them. Exit 0 when accepted, 1 when failed.
    #[command(hide = true)]
    Raw {
        /// IOCTL code (hex, e.g. 0x226400).
        code: String,
        /// Input bytes as hex ("" for none).
        input: String,
        /// Output buffer length.
        #[arg(long, default_value_t = 4096)]
        out_len: usize,
    },
}

/// `pipectl driver breaker` subcommands.
#[derive(Subcommand, Debug)]
pub enum BreakerCmd {
    /// Lift demotions: of RULE (its counts start again), or of every rule
    /// and the machine-wide breaker. Prints how many were lifted.
    Reset {
        /// The rule id (as events and `driver status` show it).
        rule: Option<u32>,
    },
}

/// The ENFORCEMENT report as `key=value` lines: the soak, the breaker's
/// limits and where they come from, what is demoted, and the counters of
/// denies that did not happen.
pub fn enforcement_lines(e: &EnforcementStatus) -> Vec<String> {
    let lim = |x: &sensor_core::breaker::Effective| format!("{} ({})", x.limit, x.source.name());
    let mut v = vec![
        format!("enforcement.ring={}", e.ring),
        format!("enforcement.sequence={}", e.sequence),
        format!("enforcement.adopted_unix={}", e.adopted_unix),
        format!("enforcement.soak_seconds={}", e.soak_secs),
        format!("enforcement.soak_left_ms={}", e.soak_left_ms()),
        format!(
            "enforcement.block_rules={}",
            if e.soak_left_ms() > 0 {
                "soak (alert)"
            } else {
                "enforce"
            }
        ),
        format!("breaker.rule={}", lim(&e.rule)),
        format!("breaker.machine={}", lim(&e.machine)),
        format!(
            "breaker.machine_demoted={}",
            e.flags & proto::ENFORCEMENT_FLAG_MACHINE_DEMOTED != 0
        ),
        format!("breaker.demoted={}", e.demoted_count),
    ];
    for d in e.demotions() {
        v.push(format!(
            "breaker.demoted.{}=denies {} then demoted {} ms ago",
            d.rule_id,
            d.denies,
            e.now_ms.saturating_sub(d.at_ms)
        ));
    }
    let c = &e.counters;
    for (k, n) in [
        ("protected", c.protected),
        ("soak", c.soak),
        ("demoted", c.demoted),
        ("rule_trips", c.rule_trips),
        ("machine_trips", c.machine_trips),
        ("table_full", c.table_full),
        ("resets", c.resets),
    ] {
        v.push(format!("counters.{k}={n}"));
    }
    if e.flags & proto::ENFORCEMENT_FLAG_ROOT_UNKNOWN != 0 {
        v.push("enforcement.system_root=unknown (any <drive>:\\Windows counts)".into());
    }
    if e.flags & proto::ENFORCEMENT_FLAG_BAD_SETTING != 0 {
        v.push("breaker.setting_error=BreakerRule or BreakerMachine in the service key is not N/S or off (ignored)".into());
    }
    v
}

fn origin(o: Origin) -> &'static str {
    match o {
        Origin::None => "none",
        Origin::Disk => "disk",
        Origin::Ioctl => "ioctl",
    }
}

fn hex(d: &[u8]) -> String {
    d.iter().map(|b| format!("{b:02x}")).collect()
}

fn print_content(prefix: &str, c: &ContentInfo) {
    println!("{prefix}.sequence={}", c.sequence);
    println!("{prefix}.rules={}", c.rule_count);
    println!("{prefix}.length={}", c.len);
    println!("{prefix}.origin={}", origin(c.origin));
    println!(
        "{prefix}.sha256={}",
        if c.sequence == 0 {
            String::new()
        } else {
            hex(&c.digest)
        }
    );
}

fn print_failure(prefix: &str, f: &LoadFailure) {
    println!("{prefix}.origin={}", origin(f.origin));
    println!("{prefix}.sequence={}", f.sequence);
    println!("{prefix}.code={}", f.code);
    if f.offset != u32::MAX {
        println!("{prefix}.offset={}", f.offset);
    }
    println!("{prefix}.message={}", f.message.as_str());
}

fn mode_name(m: Mode) -> &'static str {
    match m {
        Mode::Monitor => "monitor",
        Mode::Enforce => "enforce",
    }
}

fn decision_name(d: Option<Decision>) -> &'static str {
    d.map_or("?", Decision::name)
}

/// Prints a STATUS response.
pub fn print_status(s: &Status) {
    println!("mode={}", mode_name(s.mode));
    println!("flags={:#x}", s.flags);
    println!(
        "filter_registered={}",
        s.flags & proto::FLAG_FILTER_REGISTERED != 0
    );
    println!("filtering={}", s.flags & proto::FLAG_FILTERING != 0);
    print_content("active", &s.active);
    print_content("lkg", &s.lkg);
    let q: Vec<String> = s
        .quarantined
        .iter()
        .filter(|&&q| q != 0)
        .map(u64::to_string)
        .collect();
    println!("quarantined={}", q.join(","));
    println!("guard.pending={}", s.pending);
    println!("guard.start_count={}", s.start_count);
    println!("guard.max_failed={}", s.max_failed);
    println!("guard.proven={}", s.proven);
    let c = &s.counters;
    println!("counters.evaluated={}", c.evaluated);
    println!("counters.matched={}", c.matched);
    println!("counters.denied={}", c.denied);
    println!("counters.events_total={}", c.events_total);
    println!("counters.events_overwritten={}", c.events_overwritten);
    println!("counters.name_errors={}", c.name_errors);
    println!("counters.loads_ok={}", c.loads_ok);
    println!("counters.loads_failed={}", c.loads_failed);
    println!("counters.pool_live={}", c.pool_live);
    println!("counters.callbacks={}", c.callbacks);
    println!("counters.root_opens={}", c.root_opens);
    println!("counters.unchecked_denied={}", c.unchecked_denied);
    println!("counters.unchecked_allowed={}", c.unchecked_allowed);
    println!("counters.work_waits={}", c.work_waits);
    println!("counters.work_exhausted={}", c.work_exhausted);
    println!("counters.work_waiting={}", c.work_waiting);
    println!("counters.work_wait_ms={}", c.work_wait_ms);
    println!("counters.image_located={}", c.image_located);
    println!("counters.image_queried={}", c.image_queried);
    println!("counters.image_missing={}", c.image_missing);
    println!("counters.user_read={}", c.user_read);
    println!("counters.user_missing={}", c.user_missing);
    print_failure("last_error", &s.last_error);
}

/// Why a file was or was not adopted, times in ISO 8601 UTC.
fn why(reason: sensor_core::rollout::Reason) -> String {
    match reason {
        sensor_core::rollout::Reason::NotBefore { not_before } => {
            format!("not before {} (UTC)", crate::show::utc(not_before))
        }
        other => other.to_string(),
    }
}

/// Prints a ROLLOUT / RESCAN response.
pub fn print_rollout(r: &RolloutStatus) {
    println!("rollout.ring={}", r.ring.name().unwrap_or("?"));
    println!("rollout.bucket_milli={}", r.bucket_milli);
    println!(
        "rollout.bucket={}.{:03}%",
        r.bucket_milli / 1000,
        r.bucket_milli % 1000
    );
    println!("rollout.control={}", r.control);
    println!(
        "rollout.machine_id={}",
        match r.id_source {
            MachineIdSource::None => "none",
            MachineIdSource::ServiceKey => "service-key",
            MachineIdSource::MachineGuid => "machine-guid",
        }
    );
    let mut warnings = Vec::new();
    if r.flags & proto::ROLLOUT_FLAG_BAD_RING != 0 {
        warnings.push("Ring value not understood (broad used)");
    }
    if r.flags & proto::ROLLOUT_FLAG_BAD_CONTROL != 0 {
        warnings.push("ContentControl value not understood (latest used)");
    }
    if r.flags & proto::ROLLOUT_FLAG_NO_MACHINE_ID != 0 {
        warnings.push("no machine id (last bucket used)");
    }
    println!("rollout.warnings={}", warnings.join("; "));
    println!("rollout.now={}", r.now);
    println!("rollout.now_utc={}", crate::show::utc(r.now));
    println!("rollout.highest_proven={}", r.highest_proven);
    println!("rollout.files={}", r.count);
    for f in r.files() {
        println!("file.{}={}", f.sequence, f.reason.name());
        println!("file.{}.why={}", f.sequence, why(f.reason));
    }
}

fn print_event(e: &EventRecord) {
    println!(
        "event id={} pid={} kind={} decision={} rule={} action={} severity={} name={} image={}",
        e.id,
        e.pid,
        EventKind::from_u32(u32::from(e.kind)).map_or("?", EventKind::name),
        decision_name(Decision::from_u8(e.decision)),
        e.rule_id,
        e.action,
        e.severity,
        String::from_utf16_lossy(e.name()),
        String::from_utf16_lossy(e.image()),
    );
}

fn print_eval(r: &EvalResponse) {
    println!("decision={}", decision_name(Some(r.decision)));
    println!("matched={}", r.matched);
    println!(
        "rule={}",
        if r.has_rule {
            r.rule_id.to_string()
        } else {
            String::new()
        }
    );
    println!("rule_name={}", r.rule_name.as_str());
    println!(
        "action={}",
        if r.has_rule {
            channel_format::Action(r.action).to_string()
        } else {
            String::new()
        }
    );
    println!(
        "severity={}",
        if r.has_rule {
            channel_format::Severity(r.severity).to_string()
        } else {
            String::new()
        }
    );
    println!("sequence={}", r.sequence);
    println!("name={}", String::from_utf16_lossy(r.name()));
}

fn encode<F: FnOnce(&mut [u8]) -> Result<usize, proto::ProtoError>>(
    len: usize,
    f: F,
) -> Result<Vec<u8>, String> {
    let mut b = vec![0u8; len];
    let n = f(&mut b).map_err(|e| format!("encoding the request: {e}"))?;
    b.truncate(n);
    Ok(b)
}

/// Runs one `pipectl driver` command; returns the exit code.
///
/// # Errors
/// Usage or I/O errors (the driver cannot be opened, a file cannot be
/// read), and on non-Windows hosts always.
pub fn run(cmd: DriverCmd) -> Result<i32, String> {
    if let DriverCmd::Events { max, follow, json } = cmd {
        if follow || json {
            return events_stream(max, follow, json);
        }
    }
    let dev = Dev(Device::open().map_err(|e| e.message)?);
    match cmd {
        DriverCmd::Status => {
            let req = encode(proto::STATUS_REQUEST_LEN, proto::encode_status_request)?;
            let out = dev.ioctl(proto::IOCTL_STATUS, &req, proto::STATUS_LEN)?;
            let s = Status::decode(&out).map_err(|e| format!("bad status response: {e}"))?;
            print_status(&s);
            // A driver older than the ROLLOUT IOCTL answers "invalid device
            // request": say so, the rest of the status stands.
            match dev.ioctl(proto::IOCTL_ROLLOUT, &req, proto::ROLLOUT_STATUS_LEN) {
                Ok(out) => print_rollout(
                    &RolloutStatus::decode(&out)
                        .map_err(|e| format!("bad rollout response: {e}"))?,
                ),
                Err(e) => println!("rollout=unavailable ({e})"),
            }
            match dev.ioctl(
                proto::IOCTL_ENFORCEMENT,
                &req,
                proto::ENFORCEMENT_STATUS_LEN,
            ) {
                Ok(out) => {
                    let e = EnforcementStatus::decode(&out)
                        .map_err(|e| format!("bad enforcement response: {e}"))?;
                    for l in enforcement_lines(&e) {
                        println!("{l}");
                    }
                }
                Err(e) => println!("enforcement=unavailable ({e})"),
            }
            Ok(0)
        }
        DriverCmd::Breaker {
            cmd: BreakerCmd::Reset { rule },
        } => {
            let target = rule.map_or(ResetTarget::All, ResetTarget::Rule);
            let req = encode(proto::BREAKER_RESET_REQUEST_LEN, |b| {
                proto::encode_breaker_reset_request(b, target)
            })?;
            let out = dev.ioctl(
                proto::IOCTL_BREAKER_RESET,
                &req,
                proto::BREAKER_RESET_RESPONSE_LEN,
            )?;
            let lifted = proto::decode_breaker_reset_response(&out)
                .map_err(|e| format!("bad breaker reset response: {e}"))?;
            println!("lifted={lifted}");
            Ok(0)
        }
        DriverCmd::Rescan => {
            let req = encode(proto::STATUS_REQUEST_LEN, proto::encode_status_request)?;
            let out = dev.ioctl(proto::IOCTL_RESCAN, &req, proto::ROLLOUT_STATUS_LEN)?;
            let r = RolloutStatus::decode(&out).map_err(|e| format!("bad rescan response: {e}"))?;
            let out = dev.ioctl(proto::IOCTL_STATUS, &req, proto::STATUS_LEN)?;
            let s = Status::decode(&out).map_err(|e| format!("bad status response: {e}"))?;
            println!("active.sequence={}", s.active.sequence);
            println!("guard.pending={}", s.pending);
            print_rollout(&r);
            Ok(0)
        }
        DriverCmd::Load { file, force } => {
            let bytes = std::fs::read(&file).map_err(|e| format!("{}: {e}", file.display()))?;
            let req = encode(proto::load_request_len(bytes.len()), |b| {
                proto::encode_load_request(b, force, &bytes)
            })?;
            let out = dev.ioctl(proto::IOCTL_LOAD, &req, proto::LOAD_RESPONSE_LEN)?;
            let r = LoadResponse::decode(&out).map_err(|e| format!("bad load response: {e}"))?;
            println!(
                "result={}",
                if r.result == proto::load_result::LOADED {
                    "loaded"
                } else {
                    "rejected"
                }
            );
            println!("active.sequence={}", r.active_sequence);
            if r.result != proto::load_result::LOADED {
                print_failure("error", &r.failure);
                return Ok(1);
            }
            Ok(0)
        }
        DriverCmd::Events { max, .. } => {
            let req = encode(proto::EVENTS_REQUEST_LEN, |b| {
                proto::encode_events_request(b, max)
            })?;
            let cap = proto::EVENTS_RESPONSE_FIXED_LEN
                + proto::EVENT_WIRE_LEN * (max.clamp(1, 256) as usize);
            let out = dev.ioctl(proto::IOCTL_EVENTS, &req, cap)?;
            let mut n = 0;
            let overwritten = proto::decode_events_response(&out, |e| {
                n += 1;
                print_event(&e);
            })
            .map_err(|e| format!("bad events response: {e}"))?;
            println!("events={n}");
            println!("overwritten={overwritten}");
            Ok(0)
        }
        DriverCmd::Mode { mode } => {
            let m = match mode {
                DriverMode::Monitor => Mode::Monitor,
                DriverMode::Enforce => Mode::Enforce,
            };
            let req = encode(proto::MODE_REQUEST_LEN, |b| {
                proto::encode_mode_request(b, m)
            })?;
            let out = dev.ioctl(proto::IOCTL_SET_MODE, &req, proto::MODE_RESPONSE_LEN)?;
            let (prev, cur) =
                proto::decode_mode_response(&out).map_err(|e| format!("bad mode response: {e}"))?;
            println!("previous={}", mode_name(prev));
            println!("mode={}", mode_name(cur));
            Ok(0)
        }
        DriverCmd::Eval {
            name,
            image,
            kind,
            pid,
            user,
            repeat,
        } => {
            let n: Vec<u16> = name.encode_utf16().collect();
            let i: Vec<u16> = image.as_deref().unwrap_or("").encode_utf16().collect();
            // As `pipectl match --user`: a SID, or a well-known name mapped
            // to its SID; anything else only its machine could resolve.
            let sid = match user.as_deref() {
                None => String::new(),
                Some(u) => pipe_compiler::user::event_user_sid(u).ok_or_else(|| {
                    format!("--user {u:?} is neither a SID (S-1-5-21-…-1001) nor a well-known name the sensor's table maps (NT AUTHORITY\\SYSTEM, …): give the SID, as the driver supplies it")
                })?,
            };
            let u: Vec<u16> = sid.encode_utf16().collect();
            let k = match kind {
                DriverKind::Create => EventKind::Create,
                DriverKind::Connect => EventKind::Connect,
            };
            let req = encode(proto::eval_request_len(n.len(), i.len(), u.len()), |b| {
                proto::encode_eval_request(b, k, pid, &n, &i, &u)
            })?;
            let mut out = Vec::new();
            for _ in 0..repeat.max(1) {
                out = dev.ioctl(proto::IOCTL_EVAL, &req, proto::EVAL_RESPONSE_LEN)?;
            }
            let r = EvalResponse::decode(&out).map_err(|e| format!("bad eval response: {e}"))?;
            print_eval(&r);
            Ok(0)
        }
        DriverCmd::LoadEachRejected { dir } => {
            let status = |dev: &Dev| -> Result<Status, String> {
                let req = encode(proto::STATUS_REQUEST_LEN, proto::encode_status_request)?;
                let out = dev.ioctl(proto::IOCTL_STATUS, &req, proto::STATUS_LEN)?;
                Status::decode(&out).map_err(|e| format!("bad status response: {e}"))
            };
            let before = status(&dev)?;
            let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
                .map_err(|e| format!("{}: {e}", dir.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "bin" || x == "sys"))
                .collect();
            files.sort();
            let (mut rejected, mut accepted) = (0usize, 0usize);
            for f in &files {
                let bytes = std::fs::read(f).map_err(|e| format!("{}: {e}", f.display()))?;
                let req = encode(proto::load_request_len(bytes.len()), |b| {
                    proto::encode_load_request(b, true, &bytes)
                })?;
                match dev.ioctl(proto::IOCTL_LOAD, &req, proto::LOAD_RESPONSE_LEN) {
                    Ok(out) => {
                        let r = LoadResponse::decode(&out)
                            .map_err(|e| format!("bad load response: {e}"))?;
                        if r.result == proto::load_result::LOADED
                            || r.active_sequence != before.active.sequence
                        {
                            accepted += 1;
                            println!(
                                "ACCEPTED {} (active now {})",
                                f.display(),
                                r.active_sequence
                            );
                        } else {
                            rejected += 1;
                        }
                    }
                    // A request the driver fails outright (e.g. too large) is also a rejection.
                    Err(_) => rejected += 1,
                }
            }
            let after = status(&dev)?;
            println!("files={}", files.len());
            println!("rejected={rejected}");
            println!("accepted={accepted}");
            println!("active.sequence.before={}", before.active.sequence);
            println!("active.sequence.after={}", after.active.sequence);
            println!(
                "loads_failed.delta={}",
                after.counters.loads_failed - before.counters.loads_failed
            );
            print_failure("last_error", &after.last_error);
            let ok = accepted == 0
                && rejected == files.len()
                && !files.is_empty()
                && after.active == before.active;
            Ok(if ok { 0 } else { 1 })
        }
        DriverCmd::Raw {
            code,
            input,
            out_len,
        } => {
            let code = u32::from_str_radix(code.trim_start_matches("0x"), 16)
                .map_err(|e| format!("bad code: {e}"))?;
            let bytes = (0..input.len() / 2)
                .map(|i| u8::from_str_radix(&input[2 * i..2 * i + 2], 16))
                .collect::<Result<Vec<u8>, _>>()
                .map_err(|e| format!("bad hex input: {e}"))?;
            match dev.ioctl(code, &bytes, out_len) {
                Ok(out) => {
                    println!("raw=accepted len={}", out.len());
                    Ok(0)
                }
                Err(e) => {
                    println!("raw=failed {e}");
                    Ok(1)
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sensor_core::breaker::{Demotion, Effective, Limit, Source};
    use sensor_core::rollout::Reason;

    #[test]
    fn enforcement_report() {
        let mut e = EnforcementStatus::EMPTY;
        e.ring = channel_format::Ring::CANARY;
        e.sequence = 7;
        e.soak_secs = 3600;
        e.now_ms = 10_000;
        e.enforce_at_ms = 12_500;
        e.rule = Effective {
            limit: Limit {
                denies: 20,
                window_secs: 60,
            },
            source: Source::Content,
        };
        e.machine = Effective {
            limit: Limit::OFF,
            source: Source::ServiceKey,
        };
        e.flags = proto::ENFORCEMENT_FLAG_MACHINE_DEMOTED | proto::ENFORCEMENT_FLAG_BAD_SETTING;
        e.demoted_count = 1;
        e.demotions[0] = Demotion {
            rule_id: 42,
            at_ms: 4_000,
            denies: 20,
        };
        e.counters.demoted = 5;
        let l = enforcement_lines(&e).join("\n");
        for want in [
            "enforcement.ring=canary",
            "enforcement.soak_left_ms=2500",
            "enforcement.block_rules=soak (alert)",
            "breaker.rule=20/60s (content)",
            "breaker.machine=off (service-key)",
            "breaker.machine_demoted=true",
            "breaker.demoted=1",
            "breaker.demoted.42=denies 20 then demoted 6000 ms ago",
            "counters.demoted=5",
            "breaker.setting_error=",
        ] {
            assert!(l.contains(want), "{want} missing in\n{l}");
        }
        e.now_ms = 20_000;
        e.demoted_count = 0;
        let l = enforcement_lines(&e).join("\n");
        assert!(l.contains("enforcement.block_rules=enforce"));
        assert!(!l.contains("breaker.demoted.42"));
    }

    #[test]
    fn not_before_is_shown_in_utc() {
        assert_eq!(
            why(Reason::NotBefore {
                not_before: 1_796_104_800
            }),
            "not before 2026-12-01T06:00:00Z (UTC)"
        );
        assert_eq!(why(Reason::Frozen), Reason::Frozen.to_string());
    }
}
