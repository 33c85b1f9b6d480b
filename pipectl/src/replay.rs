//! `pipectl replay` and `pipectl diff`: backtesting channel files on recorded
//! Sysmon pipe events (Event ID 17 PipeCreated, 18 PipeConnected).
//!
//! Inputs: `.evtx` files (read with the `evtx` crate), or JSON: one object, an
//! array of objects, or JSON lines. Accepted record shapes (see
//! docs/backtesting.md):
//! - the `evtx_dump` shape: `{"Event": {"System": {"EventID": 17, ..},
//!   "EventData": {"PipeName": .., "Image": .., "ProcessId": ..}}}`;
//! - XML-to-JSON shapes where `EventData.Data` is a list of
//!   `{"@Name"|"Name"|"#attributes": {"Name"}, "#text"|"value"}` items;
//! - Winlogbeat: `{"winlog": {"event_id": 17, "event_data": {..}}}`;
//! - flat: `{"EventID": 17, "PipeName": .., "Image": .., "ProcessId": ..}`.
//!
//! Every event goes through exactly the kernel's matcher
//! (`ChannelFile::for_each_match` / `evaluate`).

use channel_parser::{Action, Capabilities, ChannelFile, Event, EventKind, Scratch, Text};
use pipe_compiler::AlignedBytes;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

/// Arguments of `pipectl replay`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  pipectl replay C-00000291-00000001.sys ../shared/corpus/events/sysmon_eid17_redsun.json
  pipectl replay C-00000291-00000001.sys logs/*.jsonl Microsoft-Windows-Sysmon.evtx --json
Exit codes: 0 replayed (whatever matched), 1 invalid channel file, 2 unreadable or
malformed event input (the error names the file and record; --skip-bad goes on).")]
pub struct ReplayArgs {
    /// The channel file.
    file: PathBuf,
    /// Event files (.evtx, JSON object or array, JSON lines) or directories of
    /// them (*.evtx, *.json, *.jsonl, *.ndjson, recursively).
    #[arg(required = true)]
    events: Vec<PathBuf>,
    #[command(flatten)]
    common: CommonArgs,
    /// Also list the rules that matched nothing (text output).
    #[arg(long)]
    all: bool,
}

/// Arguments of `pipectl diff`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Example:
  pipectl diff C-00000291-00000041.sys C-00000291-00000042.sys --events logs/ --fail-on-new-block
Exit codes: 0 compared (by default even when verdicts change), 1 a --fail-on-* condition
held (or a channel file is invalid), 2 unreadable or malformed event input.")]
pub struct DiffArgs {
    /// The release in the field.
    old: PathBuf,
    /// The candidate release.
    new: PathBuf,
    /// Event files (.evtx, JSON, JSON lines) or directories of them.
    #[arg(long, required = true, num_args = 1..)]
    events: Vec<PathBuf>,
    #[command(flatten)]
    common: CommonArgs,
    /// Exit 1 when any event's verdict changes.
    #[arg(long)]
    fail_on_change: bool,
    /// Exit 1 when any event would be blocked by the new release but not by the
    /// old one (newly matched by a block rule, or alert→block), or when the new
    /// release adds a block rule that can match a protected pipe or critical
    /// process (which the sensor never denies).
    #[arg(long)]
    fail_on_new_block: bool,
}

#[derive(Debug, clap::Args)]
struct CommonArgs {
    /// Machine-readable output (one JSON document on stdout).
    #[arg(long)]
    json: bool,
    /// Example events shown per rule or change group.
    #[arg(long, default_value_t = 3)]
    examples: usize,
    /// Skip malformed records (counted and listed) instead of stopping at the
    /// first one.
    #[arg(long)]
    skip_bad: bool,
}

/// One recorded pipe event.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// `file:line N` or `file:record N`.
    pub source: String,
    /// 17 or 18.
    pub event_id: u32,
    /// Pipe name as Sysmon reports it.
    pub pipe_name: String,
    /// Image of the process, when recorded.
    pub image: Option<String>,
    /// Process id (0 when not recorded).
    pub pid: u32,
    /// Event time as recorded (UtcTime or System.TimeCreated), if any.
    pub time: Option<String>,
}

impl Record {
    /// The sensor's event kind.
    pub fn kind(&self) -> EventKind {
        if self.event_id == 18 {
            EventKind::Connect
        } else {
            EventKind::Create
        }
    }

    fn kind_str(&self) -> &'static str {
        if self.event_id == 18 {
            "connect"
        } else {
            "create"
        }
    }

    fn to_json(&self) -> Value {
        json!({
            "source": self.source,
            "event_id": self.event_id,
            "kind": self.kind_str(),
            "pipe_name": self.pipe_name,
            "image": self.image,
            "pid": self.pid,
            "time": self.time,
        })
    }

    fn to_text(&self) -> String {
        let mut s = format!("{}  {} {:?}", self.source, self.kind_str(), self.pipe_name);
        if let Some(i) = &self.image {
            let _ = write!(s, " image {i:?}");
        }
        let _ = write!(s, " pid {}", self.pid);
        s
    }
}

/// What reading the event files found.
#[derive(Debug, Default, Clone)]
pub struct Loaded {
    /// The pipe events (ID 17/18), in input order.
    pub records: Vec<Record>,
    /// Records read (every event, any ID, including bad ones).
    pub read: usize,
    /// Records with another event ID, by ID.
    pub skipped: BTreeMap<u32, usize>,
    /// Malformed records skipped under `--skip-bad`.
    pub bad: Vec<String>,
    /// EVTX chunks that could not be read (their records are missing).
    pub chunks_skipped: Vec<String>,
    /// The input files, in order.
    pub files: Vec<String>,
}

impl Loaded {
    fn skipped_total(&self) -> usize {
        self.skipped.values().sum()
    }

    fn json(&self) -> Value {
        json!({
            "files": self.files,
            "records_read": self.read,
            "pipe_events": self.records.len(),
            "created": self.records.iter().filter(|r| r.event_id == 17).count(),
            "connected": self.records.iter().filter(|r| r.event_id == 18).count(),
            "skipped_other_ids": self.skipped_total(),
            "skipped_by_id": self.skipped.iter().map(|(k, v)| (k.to_string(), json!(v))).collect::<Map<_, _>>(),
            "bad": self.bad.len(),
            "bad_records": self.bad,
            "evtx_chunks_unreadable": self.chunks_skipped,
        })
    }

    fn text(&self) -> String {
        let mut skipped = String::new();
        if !self.skipped.is_empty() {
            let ids: Vec<String> = self
                .skipped
                .iter()
                .map(|(k, v)| format!("ID {k}: {v}"))
                .collect();
            skipped = format!(" ({})", ids.join(", "));
        }
        let mut s = format!(
            "events    {} records read from {} file(s): {} pipe events ({} created, {} connected), {} other event IDs skipped{}, {} bad\n",
            self.read,
            self.files.len(),
            self.records.len(),
            self.records.iter().filter(|r| r.event_id == 17).count(),
            self.records.iter().filter(|r| r.event_id == 18).count(),
            self.skipped_total(),
            skipped,
            self.bad.len()
        );
        for b in &self.bad {
            let _ = writeln!(s, "  skipped bad record: {b}");
        }
        for c in &self.chunks_skipped {
            let _ = writeln!(s, "  unreadable EVTX chunk (records missing): {c}");
        }
        s
    }

    /// Records one raw record: a pipe event, another ID, or a bad record.
    fn take(
        &mut self,
        source: String,
        parsed: Result<Record, RecordError>,
        skip_bad: bool,
    ) -> Result<(), String> {
        self.read += 1;
        match parsed {
            Ok(r) => self.records.push(r),
            Err(RecordError::OtherId(id)) => *self.skipped.entry(id).or_default() += 1,
            Err(RecordError::Bad(why)) => {
                let msg = format!("{source}: {why}");
                if skip_bad {
                    self.bad.push(msg);
                } else {
                    return Err(format!("{msg} (use --skip-bad to skip malformed records)"));
                }
            }
        }
        Ok(())
    }
}

/// Why a record is not a pipe event.
#[derive(Debug, Clone, PartialEq)]
pub enum RecordError {
    /// A well-formed event with another ID: skipped and counted.
    OtherId(u32),
    /// A malformed record.
    Bad(String),
}

/// Reads event files (or directories of them, recursively, sorted).
pub fn load_events(paths: &[PathBuf], skip_bad: bool) -> Result<Loaded, String> {
    let mut files = Vec::new();
    for p in paths {
        collect_files(p, &mut files)?;
    }
    let mut loaded = Loaded::default();
    for f in &files {
        loaded.files.push(f.display().to_string());
        load_file(f, skip_bad, &mut loaded)?;
    }
    Ok(loaded)
}

fn collect_files(p: &Path, out: &mut Vec<PathBuf>) -> Result<(), String> {
    if p.is_dir() {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(p)
            .map_err(|e| format!("{}: {e}", p.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        entries.sort();
        for e in entries {
            let name = e.file_name().and_then(|n| n.to_str()).unwrap_or("");
            let lower = name.to_ascii_lowercase();
            if e.is_dir()
                || lower.ends_with(".json")
                || lower.ends_with(".jsonl")
                || lower.ends_with(".ndjson")
                || lower.ends_with(".evtx")
            {
                collect_files(&e, out)?;
            }
        }
    } else {
        out.push(p.to_path_buf());
    }
    Ok(())
}

const EVTX_MAGIC: &[u8] = b"ElfFile\0";

fn load_file(path: &Path, skip_bad: bool, loaded: &mut Loaded) -> Result<(), String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let name = path.display().to_string();
    if bytes.starts_with(EVTX_MAGIC) {
        return load_evtx(&name, bytes, skip_bad, loaded);
    }
    if path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("evtx"))
    {
        return Err(format!(
            "{name}: not an EVTX file (no \"ElfFile\" signature)"
        ));
    }
    let text = String::from_utf8(bytes).map_err(|e| {
        format!(
            "{name}: not UTF-8 text at byte {} (expected JSON, JSON lines or .evtx)",
            e.utf8_error().valid_up_to()
        )
    })?;
    load_json_text(&name, &text, skip_bad, loaded)
}

fn load_evtx(
    name: &str,
    bytes: Vec<u8>,
    skip_bad: bool,
    loaded: &mut Loaded,
) -> Result<(), String> {
    let mut parser = evtx::EvtxParser::from_buffer(bytes)
        .map_err(|e| format!("{name}: not a readable EVTX file: {}", error_chain(&e)))?
        .with_configuration(evtx::ParserSettings::new().num_threads(1));
    let mut n = 0usize;
    let mut last_id = None;
    for rec in parser.records_json_value() {
        match rec {
            Ok(r) => {
                n += 1;
                last_id = Some(r.event_record_id);
                let source = format!("{name}:record {n} (EventRecordID {})", r.event_record_id);
                let parsed = parse_record(&r.data, source.clone());
                loaded.take(source, parsed, skip_bad)?;
            }
            // A chunk that cannot be read (slack space with no chunk header in
            // a dirty log, a bad checksum, a truncated file): its records are
            // unknown. Reported, never fatal, as evtx_dump does.
            Err(e @ evtx::err::EvtxError::FailedToParseChunk { .. }) => {
                let msg = format!("{name}: {}", error_chain(&e));
                eprintln!("warning: {msg}: its records were not read");
                loaded.chunks_skipped.push(msg);
            }
            Err(e) => {
                n += 1;
                let after = last_id
                    .map(|id| format!(" (after EventRecordID {id})"))
                    .unwrap_or_default();
                let source = format!("{name}:record {n}{after}");
                let parsed = Err(RecordError::Bad(format!(
                    "unreadable EVTX record: {}",
                    error_chain(&e)
                )));
                loaded.take(source, parsed, skip_bad)?;
            }
        }
    }
    Ok(())
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(x) = src {
        let _ = write!(s, ": {x}");
        src = x.source();
    }
    s
}

/// JSON text: one value (object or array of objects), or JSON lines.
pub fn load_json_text(
    name: &str,
    text: &str,
    skip_bad: bool,
    loaded: &mut Loaded,
) -> Result<(), String> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if text.trim().is_empty() {
        return Ok(());
    }
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Array(items)) => {
            for (i, v) in items.iter().enumerate() {
                let source = format!("{name}:record {}", i + 1);
                loaded.take(source.clone(), parse_record(v, source), skip_bad)?;
            }
            Ok(())
        }
        Ok(v) => {
            let source = format!("{name}:record 1");
            loaded.take(source.clone(), parse_record(&v, source), skip_bad)
        }
        Err(whole) => {
            let lines: Vec<(usize, &str)> = text
                .lines()
                .enumerate()
                .filter(|(_, l)| !l.trim().is_empty())
                .collect();
            // evtx_dump's default output: `Record <id>` lines, each followed by
            // one pretty-printed JSON record.
            if lines.iter().any(|(_, l)| is_evtx_dump_marker(l)) {
                return load_evtx_dump_text(name, text, skip_bad, loaded);
            }
            // JSON lines when at least one line is a complete JSON value on its
            // own and there is more than one line; otherwise one broken document.
            let jsonl = lines.len() > 1
                && lines
                    .iter()
                    .any(|(_, l)| serde_json::from_str::<Value>(l).is_ok());
            if !jsonl {
                // Concatenated values (pretty-printed records one after another).
                if let Some(values) = concatenated(text) {
                    for (k, (line, v)) in values.iter().enumerate() {
                        let source = format!("{name}:record {} (line {line})", k + 1);
                        loaded.take(source.clone(), parse_record(v, source), skip_bad)?;
                    }
                    return Ok(());
                }
                let why = format!(
                    "invalid JSON at line {}, column {}: {}",
                    whole.line(),
                    whole.column(),
                    strip_position(&whole)
                );
                return loaded.take(name.to_string(), Err(RecordError::Bad(why)), skip_bad);
            }
            for (idx, line) in lines {
                let source = format!("{name}:line {}", idx + 1);
                let parsed = match serde_json::from_str::<Value>(line) {
                    Ok(v) => parse_record(&v, source.clone()),
                    Err(e) => Err(RecordError::Bad(format!(
                        "invalid JSON at column {}: {}",
                        e.column(),
                        strip_position(&e)
                    ))),
                };
                loaded.take(source, parsed, skip_bad)?;
            }
            Ok(())
        }
    }
}

/// `Record 83237` (evtx_dump's separator line).
fn is_evtx_dump_marker(line: &str) -> bool {
    line.trim()
        .strip_prefix("Record ")
        .and_then(|r| r.split_whitespace().next())
        .is_some_and(|id| !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()))
}

/// evtx_dump text output: each `Record <id>` line starts a record.
fn load_evtx_dump_text(
    name: &str,
    text: &str,
    skip_bad: bool,
    loaded: &mut Loaded,
) -> Result<(), String> {
    let mut segments: Vec<(usize, String, String)> = Vec::new(); // (line, id, body)
    for (idx, line) in text.lines().enumerate() {
        if is_evtx_dump_marker(line) {
            let id = line.trim()["Record ".len()..].trim().to_string();
            segments.push((idx + 1, id, String::new()));
        } else if let Some((_, _, body)) = segments.last_mut() {
            body.push_str(line);
            body.push('\n');
        } else if !line.trim().is_empty() {
            let why = format!("line {}: text before the first `Record <id>` line", idx + 1);
            loaded.take(name.to_string(), Err(RecordError::Bad(why)), skip_bad)?;
        }
    }
    for (n, (line, id, body)) in segments.iter().enumerate() {
        let source = format!("{name}:record {} (Record {id}, line {line})", n + 1);
        let parsed = match serde_json::from_str::<Value>(body) {
            Ok(v) => parse_record(&v, source.clone()),
            Err(e) => Err(RecordError::Bad(format!(
                "invalid JSON at line {}, column {}: {}",
                line + e.line(),
                e.column(),
                strip_position(&e)
            ))),
        };
        loaded.take(source, parsed, skip_bad)?;
    }
    Ok(())
}

/// Two or more JSON values one after another covering the whole text, each
/// with the line it starts on; `None` otherwise.
fn concatenated(text: &str) -> Option<Vec<(usize, Value)>> {
    let mut stream = serde_json::Deserializer::from_str(text).into_iter::<Value>();
    let mut out = Vec::new();
    let mut start = 0usize;
    while let Some(item) = stream.next() {
        let v = item.ok()?;
        let skipped = text[start..].len() - text[start..].trim_start().len();
        let line = 1 + text[..start + skipped].matches('\n').count();
        out.push((line, v));
        start = stream.byte_offset();
    }
    (out.len() >= 2).then_some(out)
}

/// serde_json's message without its " at line L column C" tail.
fn strip_position(e: &serde_json::Error) -> String {
    let s = e.to_string();
    match s.rfind(" at line ") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

/// Case-insensitive key lookup (exact key first).
fn get<'v>(v: &'v Value, key: &str) -> Option<&'v Value> {
    let m = v.as_object()?;
    m.get(key).or_else(|| {
        m.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, x)| x)
    })
}

fn path<'v>(v: &'v Value, keys: &[&str]) -> Option<&'v Value> {
    keys.iter().try_fold(v, |v, k| get(v, k))
}

/// A scalar's text: a string, a number, or an XML-ish `{"#text": ..}` object.
fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Object(_) => get(v, "#text")
            .or_else(|| get(v, "value"))
            .and_then(scalar_text),
        _ => None,
    }
}

fn scalar_u32(v: &Value, what: &str) -> Result<u32, String> {
    let text = scalar_text(v).ok_or_else(|| format!("{what} is not a number: {v}"))?;
    let t = text.trim();
    let parsed = match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        Some(hex) => u32::from_str_radix(hex, 16).ok(),
        None => t.parse::<u32>().ok(),
    };
    parsed.ok_or_else(|| format!("{what} is not a 32-bit unsigned number: {text:?}"))
}

/// The event-data map of a record: `EventData` (a map, or `Data` items with
/// names), `winlog.event_data`, `event_data`, or the record itself (flat).
fn event_data(ev: &Value) -> Result<Map<String, Value>, String> {
    let found = get(ev, "EventData")
        .or_else(|| path(ev, &["winlog", "event_data"]))
        .or_else(|| get(ev, "event_data"));
    let Some(c) = found else {
        return Ok(ev.as_object().cloned().unwrap_or_default());
    };
    match c {
        Value::Object(m) => match get(c, "Data") {
            Some(data) => data_items(data),
            None => Ok(m.clone()),
        },
        Value::Array(_) => data_items(c),
        Value::Null => Ok(Map::new()),
        other => Err(format!(
            "EventData is neither an object nor a list: {other}"
        )),
    }
}

/// `Data` as a list of named items (`{"@Name": "PipeName", "#text": ".."}`,
/// `{"Name": .., "value"|"#text": ..}`, `{"#attributes": {"Name": ..}, "#text": ..}`)
/// or as a map.
fn data_items(data: &Value) -> Result<Map<String, Value>, String> {
    match data {
        Value::Object(m) if get(data, "@Name").is_none() && get(data, "Name").is_none() => {
            Ok(m.clone())
        }
        Value::Object(_) => data_items(&Value::Array(vec![data.clone()])),
        Value::Array(items) => {
            let mut out = Map::new();
            for it in items {
                let name = get(it, "@Name")
                    .or_else(|| get(it, "Name"))
                    .or_else(|| path(it, &["#attributes", "Name"]))
                    .and_then(Value::as_str);
                let Some(name) = name else {
                    return Err(format!("EventData.Data item without a Name: {it}"));
                };
                let val = get(it, "#text")
                    .or_else(|| get(it, "value"))
                    .or_else(|| get(it, "Value"))
                    .cloned()
                    .unwrap_or(Value::Null);
                out.insert(name.to_string(), val);
            }
            Ok(out)
        }
        other => Err(format!(
            "EventData.Data is neither a list nor an object: {other}"
        )),
    }
}

/// Parses one record: a pipe event, `Err(OtherId)` for a
/// well-formed event of another ID.
pub fn parse_record(v: &Value, source: String) -> Result<Record, RecordError> {
    let bad = RecordError::Bad;
    if !v.is_object() {
        return Err(bad(format!(
            "not a JSON object: {}",
            truncate(&v.to_string())
        )));
    }
    let ev = match get(v, "Event") {
        Some(e) if e.is_object() => e,
        Some(e) => {
            return Err(bad(format!(
                "\"Event\" is not an object: {}",
                truncate(&e.to_string())
            )))
        }
        None => v,
    };
    let data = event_data(ev).map_err(bad)?;
    let data_v = Value::Object(data);
    let id_v = path(ev, &["System", "EventID"])
        .or_else(|| path(ev, &["winlog", "event_id"]))
        .or_else(|| get(ev, "EventID"))
        .or_else(|| get(ev, "EventId"))
        .or_else(|| get(ev, "event_id"))
        .or_else(|| path(ev, &["event", "code"]));
    let event_id = match id_v {
        Some(x) => scalar_u32(x, "EventID").map_err(bad)?,
        None => match get(&data_v, "EventType").and_then(Value::as_str) {
            Some(t) if t.eq_ignore_ascii_case("CreatePipe") => 17,
            Some(t) if t.eq_ignore_ascii_case("ConnectPipe") => 18,
            _ => {
                return Err(bad(
                    "no EventID (looked for Event.System.EventID, EventID, winlog.event_id) and no EventType CreatePipe/ConnectPipe".into(),
                ))
            }
        },
    };
    if event_id != 17 && event_id != 18 {
        return Err(RecordError::OtherId(event_id));
    }
    let pipe_name = match get(&data_v, "PipeName") {
        Some(p) => scalar_text(p).ok_or_else(|| bad(format!("PipeName is not a string: {p}")))?,
        None => return Err(bad(format!("event ID {event_id} without a PipeName"))),
    };
    let image = match get(&data_v, "Image") {
        None | Some(Value::Null) => None,
        Some(i) => Some(scalar_text(i).ok_or_else(|| bad(format!("Image is not a string: {i}")))?),
    };
    let pid = match get(&data_v, "ProcessId") {
        None | Some(Value::Null) => 0,
        Some(p) => scalar_u32(p, "ProcessId").map_err(bad)?,
    };
    let time = get(&data_v, "UtcTime").and_then(scalar_text).or_else(|| {
        path(ev, &["System", "TimeCreated", "#attributes", "SystemTime"]).and_then(scalar_text)
    });
    Ok(Record {
        source,
        event_id,
        pipe_name,
        image,
        pid,
        time,
    })
}

fn truncate(s: &str) -> String {
    if s.chars().count() > 80 {
        format!("{}...", s.chars().take(80).collect::<String>())
    } else {
        s.to_string()
    }
}

/// A parsed channel file with its bytes kept alive.
struct Channel {
    path: String,
    bytes: AlignedBytes,
}

impl Channel {
    fn open(path: &Path) -> Result<Channel, String> {
        let raw = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(Channel {
            path: path.display().to_string(),
            bytes: AlignedBytes::new(&raw),
        })
    }

    fn parse(&self) -> Result<ChannelFile<'_>, String> {
        channel_parser::parse(self.bytes.as_slice(), &Capabilities::SENSOR_V1)
            .map_err(|e| format!("{}: invalid: {e} [{}]", self.path, e.kind()))
    }
}

/// A rule as the report shows it.
#[derive(Debug, Clone, PartialEq)]
struct RuleInfo {
    id: u32,
    name: String,
    severity: String,
    action: String,
}

impl RuleInfo {
    fn of(r: &channel_parser::RuleView<'_>) -> RuleInfo {
        RuleInfo {
            id: r.id(),
            name: r.name().to_string(),
            severity: r.severity().to_string(),
            action: r.action().to_string(),
        }
    }
    fn json(&self) -> Value {
        json!({"id": self.id, "name": self.name, "severity": self.severity, "action": self.action})
    }
}

/// The verdict of one file on one event.
#[derive(Debug, Clone, PartialEq)]
struct Outcome {
    /// Ids of every matching rule, ascending rule index.
    matched: Vec<u32>,
    /// The best rule (block before alert, then severity, then index).
    best: Option<RuleInfo>,
}

/// The outcome, the matching rule indexes and the best rule's index.
fn evaluate(
    f: &ChannelFile<'_>,
    r: &Record,
    scratch: &mut Scratch,
) -> (Outcome, Vec<u32>, Option<u32>) {
    let ev = Event {
        pipe_name: Text::Utf8(&r.pipe_name),
        image: r.image.as_deref().map(Text::Utf8),
        pid: r.pid,
        kind: r.kind(),
    };
    let mut matched = Vec::new();
    let mut indexes = Vec::new();
    f.for_each_match(&ev, scratch, |rule| {
        matched.push(rule.id());
        indexes.push(rule.index());
        ControlFlow::Continue(())
    });
    let best = f.evaluate(&ev, scratch).best;
    let best_index = best.map(|b| b.index());
    let best = best.map(|b| RuleInfo::of(&b));
    (Outcome { matched, best }, indexes, best_index)
}

fn channel_json(c: &Channel, f: &ChannelFile<'_>) -> Value {
    json!({"file": c.path, "sequence": f.sequence(), "rules": f.rule_count()})
}

/// Runs `pipectl replay`.
pub fn run_replay(a: ReplayArgs) -> Result<u8, String> {
    let ch = Channel::open(&a.file)?;
    let f = match ch.parse() {
        Ok(f) => f,
        Err(e) => {
            eprintln!("{e}");
            return Ok(1);
        }
    };
    let loaded = load_events(&a.events, a.common.skip_bad)?;
    let out = replay_report(&ch, &f, &loaded, a.common.examples, a.common.json, a.all);
    print(&out);
    Ok(0)
}

#[derive(Default)]
struct RuleTally {
    events: usize,
    best: usize,
    examples: Vec<Value>,
    example_text: Vec<String>,
}

fn replay_report(
    ch: &Channel,
    f: &ChannelFile<'_>,
    loaded: &Loaded,
    examples: usize,
    as_json: bool,
    all: bool,
) -> String {
    let mut scratch = Box::new(Scratch::new());
    let mut tallies: Vec<RuleTally> = (0..f.rule_count()).map(|_| RuleTally::default()).collect();
    let (mut matched, mut blocked, mut alerted) = (0usize, 0usize, 0usize);
    for r in &loaded.records {
        let (o, idx, best_index) = evaluate(f, r, &mut scratch);
        if let Some(b) = &o.best {
            matched += 1;
            if b.action == Action::BLOCK.to_string() {
                blocked += 1;
            } else {
                alerted += 1;
            }
        }
        for &i in &idx {
            let Some(t) = tallies.get_mut(i as usize) else {
                continue;
            };
            t.events += 1;
            if best_index == Some(i) {
                t.best += 1;
            }
            if t.examples.len() < examples {
                t.examples.push(r.to_json());
                t.example_text.push(r.to_text());
            }
        }
    }
    let rules: Vec<(RuleInfo, &RuleTally)> = f
        .rules()
        .map(|r| RuleInfo::of(&r))
        .zip(tallies.iter())
        .collect();
    let mut order: Vec<usize> = (0..rules.len()).collect();
    order.sort_by_key(|&i| (std::cmp::Reverse(rules[i].1.events), i));
    let total = loaded.records.len();
    let protected = crate::protected::findings(f);
    if as_json {
        let v = json!({
            "channel": channel_json(ch, f),
            "events": loaded.json(),
            "verdicts": {
                "matched": matched, "alert": alerted, "block": blocked, "no_match": total - matched,
            },
            "rules": order.iter().map(|&i| {
                let (info, t) = &rules[i];
                let mut v = info.json();
                v["events"] = json!(t.events);
                v["as_best"] = json!(t.best);
                v["would"] = json!(if t.events == 0 { "nothing" } else if info.action == "block" { "block" } else { "alert" });
                v["examples"] = json!(t.examples);
                v
            }).collect::<Vec<_>>(),
            "protected_block_rules": protected.iter().map(crate::protected::finding_json).collect::<Vec<_>>(),
        });
        return serde_json::to_string_pretty(&v).unwrap_or_default() + "\n";
    }
    let mut s = String::new();
    let _ = writeln!(
        s,
        "channel   {} (sequence {}, {} rules)",
        ch.path,
        f.sequence(),
        f.rule_count()
    );
    s.push_str(&loaded.text());
    let _ = writeln!(
        s,
        "verdicts  {matched} of {total} pipe events matched: {alerted} alert, {blocked} block (in enforce mode); {} no match",
        total - matched
    );
    let _ = writeln!(
        s,
        "\n{:>10}  {:<5}  {:<13} {:>7} {:>7}  name",
        "rule", "would", "severity", "events", "as-best"
    );
    let mut silent = Vec::new();
    for &i in &order {
        let (info, t) = &rules[i];
        if t.events == 0 {
            silent.push(info.id.to_string());
            if !all {
                continue;
            }
        }
        let _ = writeln!(
            s,
            "{:>10}  {:<5}  {:<13} {:>7} {:>7}  {}",
            info.id, info.action, info.severity, t.events, t.best, info.name
        );
        for e in &t.example_text {
            let _ = writeln!(s, "{:>12}e.g. {e}", "");
        }
    }
    if !silent.is_empty() && !all {
        let _ = writeln!(
            s,
            "({} rule(s) matched no event: {}; --all lists them)",
            silent.len(),
            silent.join(", ")
        );
    }
    s.push_str(&crate::protected::text(&protected, ""));
    s
}

fn print(s: &str) {
    use std::io::Write as _;
    let _ = std::io::stdout().lock().write_all(s.as_bytes());
}

/// How an event's verdict changes between two releases.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Change {
    /// No rule matched in old, some rule matches in new.
    NewlyMatched,
    /// Some rule matched in old, none in new.
    NoLongerMatched,
    /// Both match, the resulting action differs (alert→block, block→alert).
    ActionChanged,
    /// Both match with the same action, but the best rule differs.
    BestRuleChanged,
    /// Same best rule and action, but the set of matching rules differs.
    OtherMatchesChanged,
}

impl Change {
    fn key(self) -> &'static str {
        match self {
            Change::NewlyMatched => "newly_matched",
            Change::NoLongerMatched => "no_longer_matched",
            Change::ActionChanged => "action_changed",
            Change::BestRuleChanged => "best_rule_changed",
            Change::OtherMatchesChanged => "other_matches_changed",
        }
    }
    fn title(self) -> &'static str {
        match self {
            Change::NewlyMatched => "NEWLY MATCHED",
            Change::NoLongerMatched => "NO LONGER MATCHED",
            Change::ActionChanged => "ACTION CHANGED",
            Change::BestRuleChanged => "BEST RULE CHANGED",
            Change::OtherMatchesChanged => "OTHER MATCHES CHANGED",
        }
    }
    const ALL: [Change; 5] = [
        Change::NewlyMatched,
        Change::NoLongerMatched,
        Change::ActionChanged,
        Change::BestRuleChanged,
        Change::OtherMatchesChanged,
    ];
}

fn classify(old: &Outcome, new: &Outcome) -> Option<Change> {
    match (&old.best, &new.best) {
        (None, None) => None,
        (None, Some(_)) => Some(Change::NewlyMatched),
        (Some(_), None) => Some(Change::NoLongerMatched),
        (Some(o), Some(n)) if o.action != n.action => Some(Change::ActionChanged),
        (Some(o), Some(n)) if o.id != n.id => Some(Change::BestRuleChanged),
        _ if old.matched != new.matched => Some(Change::OtherMatchesChanged),
        _ => None,
    }
}

struct Group {
    change: Change,
    old: Option<RuleInfo>,
    new: Option<RuleInfo>,
    count: usize,
    examples: Vec<Record>,
}

/// Runs `pipectl diff`.
pub fn run_diff(a: DiffArgs) -> Result<u8, String> {
    let (co, cn) = (Channel::open(&a.old)?, Channel::open(&a.new)?);
    let (fo, fnew) = match (co.parse(), cn.parse()) {
        (Ok(o), Ok(n)) => (o, n),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("{e}");
            return Ok(1);
        }
    };
    let loaded = load_events(&a.events, a.common.skip_bad)?;
    let mut scratch = Box::new(Scratch::new());
    let mut groups: Vec<Group> = Vec::new();
    let mut counts: BTreeMap<Change, usize> = BTreeMap::new();
    let (mut alert_to_block, mut block_to_alert, mut new_blocks) = (0usize, 0usize, 0usize);
    for r in &loaded.records {
        let (o, _, _) = evaluate(&fo, r, &mut scratch);
        let (n, _, _) = evaluate(&fnew, r, &mut scratch);
        let Some(c) = classify(&o, &n) else { continue };
        *counts.entry(c).or_default() += 1;
        let old_block = o.best.as_ref().is_some_and(|b| b.action == "block");
        let new_block = n.best.as_ref().is_some_and(|b| b.action == "block");
        if new_block && !old_block {
            new_blocks += 1;
        }
        if c == Change::ActionChanged {
            if new_block {
                alert_to_block += 1;
            } else {
                block_to_alert += 1;
            }
        }
        let g = match groups
            .iter_mut()
            .find(|g| g.change == c && g.old == o.best && g.new == n.best)
        {
            Some(g) => g,
            None => {
                groups.push(Group {
                    change: c,
                    old: o.best.clone(),
                    new: n.best.clone(),
                    count: 0,
                    examples: Vec::new(),
                });
                groups.last_mut().expect("just pushed")
            }
        };
        g.count += 1;
        if g.examples.len() < a.common.examples {
            g.examples.push(r.clone());
        }
    }
    groups.sort_by(|x, y| {
        (x.change, std::cmp::Reverse(x.count)).cmp(&(y.change, std::cmp::Reverse(y.count)))
    });
    let changed: usize = counts.values().sum();
    let rules_diff = static_rule_diff(&fo, &fnew);
    let protected_new = crate::protected::findings(&fnew);
    let protected_added =
        crate::protected::new_in(&crate::protected::findings(&fo), &protected_new);
    if a.common.json {
        let v = json!({
            "old": channel_json(&co, &fo),
            "new": channel_json(&cn, &fnew),
            "events": loaded.json(),
            "summary": {
                "pipe_events": loaded.records.len(),
                "changed": changed,
                "unchanged": loaded.records.len() - changed,
                "newly_matched": counts.get(&Change::NewlyMatched).copied().unwrap_or(0),
                "no_longer_matched": counts.get(&Change::NoLongerMatched).copied().unwrap_or(0),
                "action_changed": counts.get(&Change::ActionChanged).copied().unwrap_or(0),
                "alert_to_block": alert_to_block,
                "block_to_alert": block_to_alert,
                "best_rule_changed": counts.get(&Change::BestRuleChanged).copied().unwrap_or(0),
                "other_matches_changed": counts.get(&Change::OtherMatchesChanged).copied().unwrap_or(0),
                "new_blocks": new_blocks,
            },
            "rules": rules_diff.json,
            "protected_block_rules": protected_new.iter().map(crate::protected::finding_json).collect::<Vec<_>>(),
            "protected_block_rules_added": protected_added.iter().map(|x| x.rule_id).collect::<Vec<_>>(),
            "groups": groups.iter().map(|g| json!({
                "change": g.change.key(),
                "old": g.old.as_ref().map(RuleInfo::json),
                "new": g.new.as_ref().map(RuleInfo::json),
                "events": g.count,
                "examples": g.examples.iter().map(Record::to_json).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
        });
        print(&(serde_json::to_string_pretty(&v).unwrap_or_default() + "\n"));
    } else {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "old       {} (sequence {}, {} rules)",
            co.path,
            fo.sequence(),
            fo.rule_count()
        );
        let _ = writeln!(
            s,
            "new       {} (sequence {}, {} rules)",
            cn.path,
            fnew.sequence(),
            fnew.rule_count()
        );
        s.push_str(&loaded.text());
        s.push_str(&rules_diff.text);
        s.push_str(&crate::protected::text(&protected_added, "new: "));
        let _ = writeln!(
            s,
            "verdicts  {changed} of {} pipe events change:",
            loaded.records.len()
        );
        for c in Change::ALL {
            let n = counts.get(&c).copied().unwrap_or(0);
            let extra = if c == Change::ActionChanged {
                format!(" (alert→block {alert_to_block}, block→alert {block_to_alert})")
            } else {
                String::new()
            };
            let _ = writeln!(s, "  {:<22} {n}{extra}", c.key().replace('_', " "));
        }
        let _ = writeln!(s, "  {:<22} {new_blocks}", "newly blocked (any)");
        for g in &groups {
            let desc = |r: &Option<RuleInfo>| match r {
                Some(r) => format!("rule {} {:?} ({}, {})", r.id, r.name, r.severity, r.action),
                None => "no match".to_string(),
            };
            let _ = writeln!(
                s,
                "\n{}: {} event(s)\n  old: {}\n  new: {}",
                g.change.title(),
                g.count,
                desc(&g.old),
                desc(&g.new)
            );
            for e in &g.examples {
                let _ = writeln!(s, "    e.g. {}", e.to_text());
            }
        }
        if changed == 0 {
            let _ = writeln!(s, "\nno verdict changes on these events");
        }
        print(&s);
    }
    let fail = (a.fail_on_change && changed > 0)
        || (a.fail_on_new_block && (new_blocks > 0 || !protected_added.is_empty()));
    Ok(u8::from(fail))
}

struct RulesDiff {
    text: String,
    json: Value,
}

/// Rules added, removed, or with another action/severity/name (by id).
fn static_rule_diff(old: &ChannelFile<'_>, new: &ChannelFile<'_>) -> RulesDiff {
    let o: BTreeMap<u32, RuleInfo> = old.rules().map(|r| (r.id(), RuleInfo::of(&r))).collect();
    let n: BTreeMap<u32, RuleInfo> = new.rules().map(|r| (r.id(), RuleInfo::of(&r))).collect();
    let added: Vec<&RuleInfo> = n.values().filter(|r| !o.contains_key(&r.id)).collect();
    let removed: Vec<&RuleInfo> = o.values().filter(|r| !n.contains_key(&r.id)).collect();
    let changed: Vec<(&RuleInfo, &RuleInfo)> = o
        .values()
        .filter_map(|r| n.get(&r.id).map(|x| (r, x)))
        .filter(|(a, b)| a != b)
        .collect();
    let mut text = format!(
        "rules     {} added, {} removed, {} with another action/severity/name (by rule id)\n",
        added.len(),
        removed.len(),
        changed.len()
    );
    for r in &added {
        let _ = writeln!(
            text,
            "  + {} {:?} ({}, {})",
            r.id, r.name, r.severity, r.action
        );
    }
    for r in &removed {
        let _ = writeln!(
            text,
            "  - {} {:?} ({}, {})",
            r.id, r.name, r.severity, r.action
        );
    }
    for (a, b) in &changed {
        let _ = writeln!(
            text,
            "  ~ {} {:?}: {} {} -> {} {}",
            a.id, b.name, a.severity, a.action, b.severity, b.action
        );
    }
    let json = json!({
        "added": added.iter().map(|r| r.json()).collect::<Vec<_>>(),
        "removed": removed.iter().map(|r| r.json()).collect::<Vec<_>>(),
        "changed": changed.iter().map(|(a, b)| json!({"old": a.json(), "new": b.json()})).collect::<Vec<_>>(),
    });
    RulesDiff { text, json }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(v: Value) -> Result<Record, RecordError> {
        parse_record(&v, "t".into())
    }

    #[test]
    fn shapes() {
        let nested = json!({"Event": {"System": {"EventID": 17}, "EventData": {"PipeName": "\\a", "Image": "C:\\x.exe", "ProcessId": 5}}});
        let r = one(nested).unwrap();
        assert_eq!(
            (r.event_id, r.pipe_name.as_str(), r.image.as_deref(), r.pid),
            (17, "\\a", Some("C:\\x.exe"), 5)
        );
        let flat = json!({"EventID": "18", "PipeName": "\\b", "ProcessId": "0x10"});
        let r = one(flat).unwrap();
        assert_eq!((r.event_id, r.pid, r.kind()), (18, 16, EventKind::Connect));
        let xml = json!({"Event": {"System": {"EventID": {"#text": "17", "@Qualifiers": ""}},
            "EventData": {"Data": [{"@Name": "PipeName", "#text": "\\c"}, {"@Name": "ProcessId", "#text": "7"}]}}});
        let r = one(xml).unwrap();
        assert_eq!((r.pipe_name.as_str(), r.pid, r.image), ("\\c", 7, None));
        let beat =
            json!({"winlog": {"event_id": 18, "event_data": {"PipeName": "\\d", "Image": "x"}}});
        assert_eq!(one(beat).unwrap().event_id, 18);
        let typed = json!({"EventType": "ConnectPipe", "PipeName": "\\e"});
        assert_eq!(one(typed).unwrap().event_id, 18);
        assert_eq!(
            one(json!({"EventID": 1, "Image": "x"})),
            Err(RecordError::OtherId(1))
        );
        assert!(
            matches!(one(json!({"EventID": 17})), Err(RecordError::Bad(m)) if m.contains("PipeName"))
        );
        assert!(
            matches!(one(json!({"EventID": 17, "PipeName": "\\x", "ProcessId": -1})), Err(RecordError::Bad(m)) if m.contains("ProcessId"))
        );
        assert!(matches!(one(json!([1])), Err(RecordError::Bad(_))));
        assert!(
            matches!(one(json!({"PipeName": "\\x"})), Err(RecordError::Bad(m)) if m.contains("EventID"))
        );
    }

    #[test]
    fn json_lines_array_and_single() {
        let mut l = Loaded::default();
        load_json_text(
            "a",
            "{\"EventID\":17,\"PipeName\":\"\\\\x\"}\n\n{\"EventID\":3}\n",
            false,
            &mut l,
        )
        .unwrap();
        assert_eq!((l.read, l.records.len(), l.skipped_total()), (2, 1, 1));
        assert_eq!(l.records[0].source, "a:line 1");
        let mut l = Loaded::default();
        load_json_text(
            "b",
            "[{\"EventID\":17,\"PipeName\":\"\\\\x\"},{\"EventID\":18,\"PipeName\":\"\\\\y\"}]",
            false,
            &mut l,
        )
        .unwrap();
        assert_eq!(l.records[1].source, "b:record 2");
        let mut l = Loaded::default();
        let e = load_json_text(
            "c",
            "{\"EventID\":17,\"PipeName\":\"\\\\x\"}\n{\"EventID\":17,\n",
            false,
            &mut l,
        )
        .unwrap_err();
        assert!(e.contains("c:line 2") && e.contains("invalid JSON"), "{e}");
        let mut l = Loaded::default();
        load_json_text("c", "{\"EventID\":17,\"PipeName\":\"\\\\x\"}\n{\"EventID\":17,\n{\"EventID\":18,\"PipeName\":\"\\\\x\"}", true, &mut l).unwrap();
        assert_eq!((l.read, l.records.len(), l.bad.len()), (3, 2, 1));
        let mut l = Loaded::default();
        let e = load_json_text(
            "d",
            "{\n \"EventID\": 17,\n \"PipeName\": \n}",
            false,
            &mut l,
        )
        .unwrap_err();
        assert!(e.contains("line 4"), "{e}");
    }

    #[test]
    fn concatenated_and_evtx_dump_text() {
        let pretty = "{\n \"EventID\": 17,\n \"PipeName\": \"\\\\a\"\n}\n{\n \"EventID\": 18,\n \"PipeName\": \"\\\\b\"\n}\n";
        let mut l = Loaded::default();
        load_json_text("p", pretty, false, &mut l).unwrap();
        assert_eq!(l.records.len(), 2);
        assert_eq!(l.records[1].source, "p:record 2 (line 5)");
        assert_eq!(l.records[1].pipe_name, "\\b");
        let dump = format!(
            "Record 7\n{}\nRecord 8 (recovered)\n{}\n",
            json!({"Event": {"System": {"EventID": 17}, "EventData": {"PipeName": "\\a"}}}),
            serde_json::to_string_pretty(&json!({"Event": {"System": {"EventID": 18}, "EventData": {"PipeName": "\\b", "ProcessId": 4}}})).unwrap()
        );
        let mut l = Loaded::default();
        load_json_text("d", &dump, false, &mut l).unwrap();
        assert_eq!(l.records.len(), 2);
        assert_eq!(
            l.records[1].source,
            "d:record 2 (Record 8 (recovered), line 3)"
        );
        assert_eq!((l.records[1].event_id, l.records[1].pid), (18, 4));
        let mut l = Loaded::default();
        let e = load_json_text(
            "d",
            "Record 1\n{\"EventID\": 17, \"PipeName\": \"x\"}\nRecord 2\n{\"EventID\":\n",
            false,
            &mut l,
        )
        .unwrap_err();
        assert!(
            e.contains("d:record 2 (Record 2, line 3): invalid JSON at line 5"),
            "{e}"
        );
    }

    #[test]
    fn classification() {
        let r = |id: u32, action: &str| RuleInfo {
            id,
            name: String::new(),
            severity: "high".into(),
            action: action.into(),
        };
        let none = Outcome {
            matched: vec![],
            best: None,
        };
        let a1 = Outcome {
            matched: vec![1],
            best: Some(r(1, "alert")),
        };
        let b1 = Outcome {
            matched: vec![1],
            best: Some(r(1, "block")),
        };
        let a2 = Outcome {
            matched: vec![1, 2],
            best: Some(r(2, "alert")),
        };
        let a1b = Outcome {
            matched: vec![1, 3],
            best: Some(r(1, "alert")),
        };
        assert_eq!(classify(&none, &none), None);
        assert_eq!(classify(&a1, &a1), None);
        assert_eq!(classify(&none, &a1), Some(Change::NewlyMatched));
        assert_eq!(classify(&a1, &none), Some(Change::NoLongerMatched));
        assert_eq!(classify(&a1, &b1), Some(Change::ActionChanged));
        assert_eq!(classify(&a1, &a2), Some(Change::BestRuleChanged));
        assert_eq!(classify(&a1, &a1b), Some(Change::OtherMatchesChanged));
    }
}
