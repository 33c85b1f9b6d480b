//! Step 1 of a backtest: reading recorded events into [`Record`]s.
//!
//! Inputs: `.evtx` files (read with the `evtx` crate) or JSON text: one
//! object, an array of objects, JSON lines, concatenated pretty-printed
//! objects, `evtx_dump`'s `Record <id>` output, and the result containers of
//! SIEM exports (Splunk `{"result": ..}` lines and `{"results": [..]}`,
//! Elasticsearch `{"hits": {"hits": [{"_source": ..}]}}`, Log Analytics /
//! Sentinel `{"tables": [{"columns": .., "rows": ..}]}`). Record shapes (see
//! docs/backtesting.md): the Windows event (`Event.System` +
//! `Event.EventData`, from EVTX, `evtx_dump` or an XML-to-JSON converter,
//! or as XML text in a Splunk `_raw`), Winlogbeat / Elastic documents
//! (`winlog.*`, the ECS `event` object, the Sysmon module's `file.name`,
//! `process.executable`, `process.pid`), Splunk (`EventCode`, flat fields),
//! Sentinel's `Event` table (`EventID`, `Source`, `EventData` as XML text),
//! and flat JSON.
//!
//! A **pipe event** is a record of the provider `Microsoft-Windows-Sysmon`
//! with Event ID 17 (PipeCreated) or 18 (PipeConnected). Records of other
//! providers are skipped and counted per provider; records with no provider
//! information (and no Sysmon channel) are taken as Sysmon's, as before.
//! The sensor's own Event Log records (source `PipeSensor` in the
//! Application log, docs/events.md) are pipe events too: their event data
//! has no names, only positions (`param1`.. in Winlogbeat, unnamed `Data`
//! in XML), which are Sysmon's fields in the order of
//! [`event_sink::ids::PIPE_FIELDS`].

use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Sysmon's provider name.
pub const SYSMON_PROVIDER: &str = "Microsoft-Windows-Sysmon";
/// Sysmon's provider GUID (`System.Provider Guid`).
const SYSMON_GUID: &str = "5770385F-C22A-43E0-BF4C-06F5698FFBD9";
/// The event source of the sensor's own service in the Application log
/// (docs/events.md): its IDs 17/18 are pipe events in Sysmon's layout.
pub const SENSOR_PROVIDER: &str = "PipeSensor";
/// The channel Sysmon writes to.
const SYSMON_CHANNEL: &str = "Microsoft-Windows-Sysmon/Operational";
/// What Sysmon writes as `PipeName` for a pipe without a name.
pub const ANONYMOUS_PIPE: &str = "<Anonymous Pipe>";
/// What Sysmon writes as `Image` when it could not resolve the process.
const UNKNOWN_PROCESS: &str = "<unknown process>";

/// One recorded pipe event.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// `file:line N` or `file:record N`.
    pub source: String,
    /// 17 or 18.
    pub event_id: u32,
    /// Pipe name as recorded (Sysmon: `\name`, or `<Anonymous Pipe>`).
    pub pipe_name: String,
    /// Image of the process, when recorded (`<unknown process>` is none).
    pub image: Option<String>,
    /// Process id (0 when not recorded).
    pub pid: u32,
    /// `User` as recorded (Sysmon: `DOMAIN\name`), when recorded.
    pub user: Option<String>,
    /// `UserSid` (the sensor's own records), when recorded.
    pub user_sid: Option<String>,
    /// Event time as recorded (UtcTime, System.TimeCreated, @timestamp), if any.
    pub time: Option<String>,
}

impl Record {
    /// Whether Sysmon recorded a pipe without a name (`<Anonymous Pipe>`).
    pub fn is_anonymous(&self) -> bool {
        self.pipe_name == ANONYMOUS_PIPE
    }

    /// `create` (17) or `connect` (18).
    pub fn kind_str(&self) -> &'static str {
        if self.event_id == 18 {
            "connect"
        } else {
            "create"
        }
    }

    /// The record as the JSON reports show it.
    pub fn to_json(&self) -> Value {
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

    /// One line for the text reports.
    pub fn to_text(&self) -> String {
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
    /// The pipe events (Sysmon ID 17/18), in input order.
    pub records: Vec<Record>,
    /// Records read (every event, any ID, including bad ones).
    pub read: usize,
    /// Records with another event ID, by ID (any provider).
    pub skipped: BTreeMap<u32, usize>,
    /// Records with ID 17 or 18 of another provider, by provider.
    pub other_providers: BTreeMap<String, usize>,
    /// Malformed records skipped under `--skip-bad`.
    pub bad: Vec<String>,
    /// EVTX chunks that could not be read (their records are missing).
    pub chunks_skipped: Vec<String>,
    /// The input files, in order.
    pub files: Vec<String>,
}

impl Loaded {
    /// Records skipped for their event ID.
    pub fn skipped_total(&self) -> usize {
        self.skipped.values().sum()
    }

    /// Records skipped for their provider.
    pub fn other_providers_total(&self) -> usize {
        self.other_providers.values().sum()
    }

    /// Pipe events by ID.
    pub fn count_id(&self, id: u32) -> usize {
        self.records.iter().filter(|r| r.event_id == id).count()
    }

    /// The `events` object of the JSON reports.
    pub fn json(&self) -> Value {
        json!({
            "files": self.files,
            "records_read": self.read,
            "pipe_events": self.records.len(),
            "created": self.count_id(17),
            "connected": self.count_id(18),
            "skipped_other_ids": self.skipped_total(),
            "skipped_by_id": self.skipped.iter().map(|(k, v)| (k.to_string(), json!(v))).collect::<Map<_, _>>(),
            "skipped_other_providers": self.other_providers_total(),
            "skipped_by_provider": self.other_providers.iter().map(|(k, v)| (k.clone(), json!(v))).collect::<Map<_, _>>(),
            "bad": self.bad.len(),
            "bad_records": self.bad,
            "evtx_chunks_unreadable": self.chunks_skipped,
        })
    }

    /// The `events` line (and bad records) of the text reports.
    pub fn text(&self) -> String {
        let by = |m: Vec<String>| {
            if m.is_empty() {
                String::new()
            } else {
                format!(" ({})", m.join(", "))
            }
        };
        let ids = by(self
            .skipped
            .iter()
            .map(|(k, v)| format!("ID {k}: {v}"))
            .collect());
        let providers = by(self
            .other_providers
            .iter()
            .map(|(k, v)| format!("{k}: {v}"))
            .collect());
        let mut s = format!(
            "events    {} records read from {} file(s): {} pipe events ({} created, {} connected), {} other event IDs skipped{ids}, {} ID 17/18 records of other providers skipped{providers}, {} bad\n",
            self.read,
            self.files.len(),
            self.records.len(),
            self.count_id(17),
            self.count_id(18),
            self.skipped_total(),
            self.other_providers_total(),
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

    /// Records one raw record: a pipe event, a skipped one, or a bad one.
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
            Err(RecordError::OtherProvider(p)) => *self.other_providers.entry(p).or_default() += 1,
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
    /// An event with ID 17 or 18 of another provider: skipped and counted.
    OtherProvider(String),
    /// A malformed record.
    Bad(String),
}

/// Reads event files (or directories of them, recursively, sorted).
///
/// # Errors
/// An unreadable file, or (without `skip_bad`) the first malformed record,
/// naming the file and the record.
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

/// JSON text: one value (object, array of objects, or a SIEM result
/// container), JSON lines, concatenated values, or `evtx_dump` output.
///
/// # Errors
/// As [`load_events`].
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
        Ok(v) => take_value(name, None, &v, skip_bad, loaded),
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
                match serde_json::from_str::<Value>(line) {
                    Ok(v) => take_value(name, Some(idx + 1), &v, skip_bad, loaded)?,
                    Err(e) => {
                        let why = format!(
                            "invalid JSON at column {}: {}",
                            e.column(),
                            strip_position(&e)
                        );
                        let source = format!("{name}:line {}", idx + 1);
                        loaded.take(source, Err(RecordError::Bad(why)), skip_bad)?;
                    }
                }
            }
            Ok(())
        }
    }
}

/// One JSON value of a file (the whole file, or line `line`): a record, an
/// array of records, or a SIEM result container.
fn take_value(
    name: &str,
    line: Option<usize>,
    v: &Value,
    skip_bad: bool,
    loaded: &mut Loaded,
) -> Result<(), String> {
    let at = |k: usize| match line {
        Some(l) => format!("{name}:line {l} record {k}"),
        None => format!("{name}:record {k}"),
    };
    if let Some(items) = container(v) {
        for (i, item) in items.iter().enumerate() {
            let source = at(i + 1);
            loaded.take(source.clone(), parse_record(item, source), skip_bad)?;
        }
        return Ok(());
    }
    let source = match line {
        Some(l) => format!("{name}:line {l}"),
        None => format!("{name}:record 1"),
    };
    loaded.take(source.clone(), parse_record(v, source), skip_bad)
}

/// The records of a container value: a JSON array, Splunk's
/// `{"results": [..]}`, an Elasticsearch response `{"hits": {"hits":
/// [..]}}`, or a Log Analytics response `{"tables": [{"columns", "rows"}]}`
/// (rows become objects keyed by column name). `None` for one record.
fn container(v: &Value) -> Option<Vec<Value>> {
    if let Value::Array(items) = v {
        return Some(items.clone());
    }
    let m = v.as_object()?;
    if let Some(Value::Array(items)) = m.get("results") {
        return Some(items.clone());
    }
    if let Some(Value::Array(items)) = m.get("hits").and_then(|h| h.get("hits")) {
        return Some(
            items
                .iter()
                .map(|h| h.get("_source").unwrap_or(h).clone())
                .collect(),
        );
    }
    if let Some(Value::Array(tables)) = m.get("tables") {
        let mut out = Vec::new();
        for t in tables {
            let cols: Vec<&str> = t
                .get("columns")
                .and_then(Value::as_array)
                .map(|c| {
                    c.iter()
                        .map(|c| c.get("name").and_then(Value::as_str).unwrap_or(""))
                        .collect()
                })
                .unwrap_or_default();
            for row in t
                .get("rows")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let obj: Map<String, Value> = cols
                    .iter()
                    .zip(row.as_array().into_iter().flatten())
                    .map(|(c, x)| ((*c).to_string(), x.clone()))
                    .collect();
                out.push(Value::Object(obj));
            }
        }
        return Some(out);
    }
    None
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

/// A nested field: `a.b.c` as nested objects, or as one flattened key
/// (`{"winlog.event_data.PipeName": ..}`, as some exports write them), or
/// nested down to a flattened rest. Case-insensitive.
fn lookup<'v>(v: &'v Value, dotted: &str) -> Option<&'v Value> {
    if let Some(x) = get(v, dotted) {
        return Some(x);
    }
    let (head, rest) = dotted.split_once('.')?;
    lookup(get(v, head)?, rest)
}

/// A scalar's text: a string, a number, or an XML-ish `{"#text": ..}` object.
fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Object(_) => get(v, "#text")
            .or_else(|| get(v, "value"))
            .and_then(scalar_text),
        // A multi-value field with one value (Splunk).
        Value::Array(a) if a.len() == 1 => a.first().and_then(scalar_text),
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

/// A Windows event as XML text (`<Event><System>..<EventData>..`, a
/// Sentinel `<DataItem>` around `<EventData>`, or a bare `<EventData>`) as
/// the JSON shape the `evtx` crate produces: `{"Event": {"System": {..},
/// "EventData": {name: text}}}`.
fn xml_event(text: &str) -> Result<Value, String> {
    let doc = roxmltree::Document::parse(text).map_err(|e| format!("invalid XML: {e}"))?;
    let mut system = Map::new();
    let mut data = Map::new();
    let mut position = 0usize;
    for n in doc.descendants().filter(|n| n.is_element()) {
        let parent = n.parent_element().map(|p| p.tag_name().name());
        match (parent, n.tag_name().name()) {
            (Some("System"), tag) => {
                let mut v = Map::new();
                if n.attributes().len() > 0 {
                    let attrs: Map<String, Value> = n
                        .attributes()
                        .map(|a| (a.name().to_string(), json!(a.value())))
                        .collect();
                    v.insert("#attributes".into(), Value::Object(attrs));
                }
                if let Some(t) = n.text().filter(|t| !t.trim().is_empty()) {
                    v.insert("#text".into(), json!(t));
                }
                system.insert(tag.to_string(), Value::Object(v));
            }
            (Some("EventData"), "Data") => {
                // Unnamed items (a classic event source's insertion
                // strings) by position: param1, param2, ...
                position += 1;
                let name = n
                    .attribute("Name")
                    .map_or_else(|| format!("param{position}"), str::to_string);
                data.insert(name, json!(n.text().unwrap_or("")));
            }
            _ => {}
        }
    }
    Ok(json!({"Event": {"System": system, "EventData": data}}))
}

/// The event-data map of a record: `EventData` (a map, `Data` items with
/// names, or XML text), `winlog.event_data`, `event_data`, or the record
/// itself (flat).
fn event_data(ev: &Value) -> Result<Map<String, Value>, String> {
    let found = get(ev, "EventData")
        .or_else(|| lookup(ev, "winlog.event_data"))
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
        Value::String(s) if s.trim().is_empty() => Ok(Map::new()),
        // Sentinel's Event table: EventData is the event's XML.
        Value::String(s) if s.trim_start().starts_with('<') => {
            let x = xml_event(s).map_err(|e| format!("EventData: {e}"))?;
            Ok(lookup(&x, "Event.EventData")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default())
        }
        other => Err(format!(
            "EventData is neither an object, a list nor XML: {}",
            truncate(&other.to_string())
        )),
    }
}

/// `Data` as a list of named items (`{"@Name": "PipeName", "#text": ".."}`,
/// `{"Name": .., "value"|"#text": ..}`, `{"#attributes": {"Name": ..}, "#text": ..}`)
/// or as a map. Unnamed items (plain values: a classic event source's
/// insertion strings) are named by position, `param1`, `param2`, ...
/// (as Winlogbeat names them).
fn data_items(data: &Value) -> Result<Map<String, Value>, String> {
    match data {
        // The evtx crate's rendering of unnamed items: `{"#text": [..]}`.
        Value::Object(m) if m.len() == 1 && get(data, "#text").is_some_and(Value::is_array) => {
            data_items(get(data, "#text").unwrap_or(&Value::Null))
        }
        Value::Object(m) if get(data, "@Name").is_none() && get(data, "Name").is_none() => {
            Ok(m.clone())
        }
        Value::Object(_) | Value::String(_) | Value::Number(_) => {
            data_items(&Value::Array(vec![data.clone()]))
        }
        Value::Array(items) => {
            let mut out = Map::new();
            for (i, it) in items.iter().enumerate() {
                // An unnamed insertion string, by position (param1, ...).
                if matches!(it, Value::String(_) | Value::Number(_) | Value::Null) {
                    out.insert(format!("param{}", i.saturating_add(1)), it.clone());
                    continue;
                }
                let name = get(it, "@Name")
                    .or_else(|| get(it, "Name"))
                    .or_else(|| lookup(it, "#attributes.Name"))
                    .and_then(Value::as_str);
                let Some(name) = name else {
                    return Err(format!(
                        "EventData.Data item without a Name: {}",
                        truncate(&it.to_string())
                    ));
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
            "EventData.Data is neither a list nor an object: {}",
            truncate(&other.to_string())
        )),
    }
}

/// Unwraps one record from the containers SIEM exports put around it:
/// Splunk's `{"preview": .., "result": {..}}` and Elasticsearch's
/// `{"_source": {..}}`.
fn unwrap_export(v: &Value) -> &Value {
    let Some(m) = v.as_object() else { return v };
    // Only with the keys that come with them, so that a record's own field
    // called `result` is left alone.
    let wrappers: [(&str, &[&str]); 2] = [
        ("result", &["preview", "offset", "lastrow"]),
        ("_source", &["_index", "_id"]),
    ];
    for (key, beside) in wrappers {
        if let Some(inner @ Value::Object(_)) = m.get(key) {
            if beside.iter().any(|b| m.contains_key(*b)) {
                return inner;
            }
        }
    }
    v
}

/// The provider of a record, if the record says: `System.Provider`
/// (`Name` as an attribute, `@Name` or a plain string; or only its `Guid`),
/// Winlogbeat's `winlog.provider_name`, ECS `event.provider`, or a flat
/// `ProviderName` / `Provider` / `SourceName` / `Source` (Splunk,
/// Sentinel). Without any of those, the channel (`Channel`, `LogName`,
/// `EventLog`, `winlog.channel`, Splunk's `source`) decides: Sysmon's own
/// channel means Sysmon, `ForwardedEvents` says nothing, any other channel
/// is another provider (reported as `channel <name>`).
fn provider(root: &Value, ev: &Value) -> Option<String> {
    if let Some(p) = lookup(ev, "System.Provider") {
        let name = lookup(p, "#attributes.Name")
            .or_else(|| get(p, "@Name"))
            .or_else(|| get(p, "Name"))
            .and_then(scalar_text)
            .or_else(|| p.as_str().map(str::to_string));
        if let Some(n) = name.filter(|n| !n.is_empty()) {
            return Some(n);
        }
        let guid = lookup(p, "#attributes.Guid")
            .or_else(|| get(p, "@Guid"))
            .or_else(|| get(p, "Guid"))
            .and_then(scalar_text);
        if let Some(g) = guid {
            let g = g.trim_matches(|c| c == '{' || c == '}');
            return Some(if g.eq_ignore_ascii_case(SYSMON_GUID) {
                SYSMON_PROVIDER.to_string()
            } else {
                format!("{{{g}}}")
            });
        }
    }
    for key in [
        "winlog.provider_name",
        "event.provider",
        "ProviderName",
        "Provider_Name",
        "provider_name",
        "Provider",
        "SourceName",
    ] {
        let found = lookup(ev, key).or_else(|| lookup(root, key));
        if let Some(p) = found.and_then(scalar_text).filter(|p| !p.is_empty()) {
            return Some(p);
        }
    }
    // Sentinel's `Source` column, exactly (Splunk's `source` is a channel).
    if let Some(p) = ev
        .get("Source")
        .and_then(scalar_text)
        .filter(|p| !p.is_empty())
    {
        return Some(p);
    }
    for key in [
        "System.Channel",
        "winlog.channel",
        "Channel",
        "LogName",
        "EventLog",
        "source",
    ] {
        let found = lookup(ev, key).or_else(|| lookup(root, key));
        if let Some(c) = found.and_then(scalar_text) {
            // Splunk: `XmlWinEventLog:Microsoft-Windows-Sysmon/Operational`.
            let c = c.rsplit_once(':').map_or(c.as_str(), |(_, ch)| ch);
            if c.eq_ignore_ascii_case(SYSMON_CHANNEL) {
                return Some(SYSMON_PROVIDER.to_string());
            }
            // Sysmon writes to its own channel only; collected events keep
            // their provider but land in ForwardedEvents (unknown here).
            if !c.is_empty() && !c.eq_ignore_ascii_case("ForwardedEvents") {
                return Some(format!("channel {c}"));
            }
        }
    }
    None
}

/// Parses one record: a Sysmon pipe event, `Err(OtherId)` for a
/// well-formed event of another ID, `Err(OtherProvider)` for ID 17/18 of
/// another provider.
///
/// # Errors
/// See [`RecordError`].
pub fn parse_record(v: &Value, source: String) -> Result<Record, RecordError> {
    let bad = RecordError::Bad;
    let v = unwrap_export(v);
    if !v.is_object() {
        return Err(bad(format!(
            "not a JSON object: {}",
            truncate(&v.to_string())
        )));
    }
    // A Windows event rendered as XML text (Splunk's `_raw`).
    let from_xml;
    let root = match lookup(v, "_raw").and_then(Value::as_str) {
        Some(x) if x.trim_start().starts_with("<Event") && get(v, "EventData").is_none() => {
            from_xml = xml_event(x).map_err(|e| bad(format!("_raw: {e}")))?;
            merge_flat(&from_xml, v)
        }
        _ => v.clone(),
    };
    let root = &root;
    // The Windows event shape. Only the exact key `Event` holding `System`
    // or `EventData`: an ECS document's `event` object is not it.
    let ev = match root.get("Event") {
        Some(e) if e.is_object() => e,
        Some(e) => {
            return Err(bad(format!(
                "\"Event\" is not an object: {}",
                truncate(&e.to_string())
            )))
        }
        None => root,
    };
    let id_v = lookup(ev, "System.EventID")
        .or_else(|| lookup(ev, "winlog.event_id"))
        .or_else(|| get(ev, "EventID"))
        .or_else(|| get(ev, "EventId"))
        .or_else(|| get(ev, "event_id"))
        .or_else(|| get(ev, "EventCode"))
        .or_else(|| get(ev, "Id"))
        .or_else(|| lookup(ev, "event.code"));
    let event_id = match id_v {
        Some(x) => scalar_u32(x, "EventID").map_err(bad)?,
        None => {
            let data = Value::Object(event_data(ev).map_err(bad)?);
            match get(&data, "EventType").and_then(Value::as_str) {
                Some(t) if t.eq_ignore_ascii_case("CreatePipe") => 17,
                Some(t) if t.eq_ignore_ascii_case("ConnectPipe") => 18,
                _ => {
                    return Err(bad(
                        "no EventID (looked for Event.System.EventID, EventID, EventCode, winlog.event_id, event.code) and no EventType CreatePipe/ConnectPipe".into(),
                    ))
                }
            }
        }
    };
    if event_id != 17 && event_id != 18 {
        return Err(RecordError::OtherId(event_id));
    }
    let mut sensor = false;
    if let Some(p) = provider(root, ev) {
        sensor = p.eq_ignore_ascii_case(SENSOR_PROVIDER);
        if !sensor && !p.eq_ignore_ascii_case(SYSMON_PROVIDER) {
            return Err(RecordError::OtherProvider(p));
        }
    }
    let mut data_m = event_data(ev).map_err(bad)?;
    if sensor {
        data_m = sensor_fields(data_m);
    }
    let data_v = Value::Object(data_m);
    // Event data first (also as flattened `winlog.event_data.<name>` keys);
    // then the fields the Winlogbeat Sysmon module moves them to
    // (file.name, process.executable, process.pid, @timestamp).
    let field = |name: &str, ecs: &str| -> Option<&Value> {
        get(&data_v, name)
            .or_else(|| get(ev, &format!("winlog.event_data.{name}")))
            .filter(|x| !x.is_null())
            .or_else(|| lookup(ev, ecs).filter(|x| !x.is_null()))
    };
    let pipe_name = match field("PipeName", "file.name") {
        Some(p) => scalar_text(p).ok_or_else(|| bad(format!("PipeName is not a string: {p}")))?,
        None => return Err(bad(format!("event ID {event_id} without a PipeName"))),
    };
    let image = match field("Image", "process.executable") {
        None => None,
        Some(i) => {
            let i = scalar_text(i).ok_or_else(|| bad(format!("Image is not a string: {i}")))?;
            // `-`: the sensor's service writes unknown values as Sysmon does.
            let unknown = i == UNKNOWN_PROCESS || (sensor && i == "-");
            (!unknown && !i.is_empty()).then_some(i)
        }
    };
    let pid = match field("ProcessId", "process.pid") {
        None => 0,
        Some(p) => scalar_u32(p, "ProcessId").map_err(bad)?,
    };
    let user = field("User", "winlog.user.name")
        .and_then(scalar_text)
        .filter(|u| !u.is_empty() && u != "-");
    let user_sid = field("UserSid", "winlog.user.identifier")
        .and_then(scalar_text)
        .filter(|u| !u.is_empty() && u != "-");
    let time = field("UtcTime", "@timestamp")
        .and_then(scalar_text)
        .or_else(|| lookup(ev, "System.TimeCreated.#attributes.SystemTime").and_then(scalar_text))
        .or_else(|| get(ev, "TimeGenerated").and_then(scalar_text))
        .or_else(|| get(ev, "_time").and_then(scalar_text));
    Ok(Record {
        source,
        event_id,
        pipe_name,
        image,
        pid,
        user,
        user_sid,
        time,
    })
}

/// The sensor's Event Log data by name: its insertion strings `param1`..
/// are Sysmon's fields in the order of [`event_sink::ids::PIPE_FIELDS`]
/// (docs/events.md). Data that has names already is kept as it is.
fn sensor_fields(data: Map<String, Value>) -> Map<String, Value> {
    if data.contains_key("PipeName") {
        return data;
    }
    let mut out = Map::new();
    for (k, v) in data {
        let named = k
            .strip_prefix("param")
            .and_then(|n| n.parse::<usize>().ok())
            .and_then(|n| n.checked_sub(1))
            .and_then(|i| event_sink::ids::PIPE_FIELDS.get(i));
        out.insert(named.map_or(k, |n| (*n).to_string()), v);
    }
    out
}

/// `xml` (an `{"Event": ..}` value) with the flat fields of `flat` that
/// it lacks added at the top level (Splunk exports put extracted fields
/// beside `_raw`).
fn merge_flat(xml: &Value, flat: &Value) -> Value {
    let mut out = xml.as_object().cloned().unwrap_or_default();
    if let Some(m) = flat.as_object() {
        for (k, v) in m {
            if k != "_raw" && !out.contains_key(k) {
                out.insert(k.clone(), v.clone());
            }
        }
    }
    Value::Object(out)
}

fn truncate(s: &str) -> String {
    if s.chars().count() > 80 {
        format!("{}...", s.chars().take(80).collect::<String>())
    } else {
        s.to_string()
    }
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
        assert_eq!((r.event_id, r.pid, r.kind_str()), (18, 16, "connect"));
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
    fn the_sensors_own_event_log_records_are_read_by_position() {
        let params = |vals: &[&str]| -> Value {
            let m: Map<String, Value> = vals
                .iter()
                .enumerate()
                .map(|(i, v)| (format!("param{}", i + 1), json!(v)))
                .collect();
            Value::Object(m)
        };
        let fields = [
            "CobaltStrike default pipe names",
            "CreatePipe",
            "2026-12-02 13:01:02.345",
            "{00000000-01d9-0000-0000-000100001092}",
            "4242",
            "\\postex_1234",
            "C:\\Users\\bob\\x.exe",
            "CORP\\bob",
            "1001",
            "alert",
        ];
        // Winlogbeat on the Application channel: winlog.event_data.paramN.
        let beat = json!({"winlog": {"provider_name": "PipeSensor", "channel": "Application",
            "event_id": 17, "event_data": params(&fields)}});
        let r = one(beat).unwrap();
        assert_eq!(
            (r.event_id, r.pipe_name.as_str(), r.image.as_deref(), r.pid),
            (17, "\\postex_1234", Some("C:\\Users\\bob\\x.exe"), 4242)
        );
        assert_eq!(r.time.as_deref(), Some("2026-12-02 13:01:02.345"));
        // The Event Log's XML (a Splunk `_raw`): unnamed Data, `-` unknown.
        let xml = "<Event><System><Provider Name='PipeSensor'/><EventID>18</EventID>\
            <Channel>Application</Channel></System><EventData><Data>-</Data>\
            <Data>ConnectPipe</Data><Data>2026-12-02 13:01:03.000</Data><Data>-</Data>\
            <Data>77</Data><Data>\\lsass</Data><Data>-</Data><Data>-</Data></EventData></Event>";
        let r = one(json!({ "_raw": xml })).unwrap();
        assert_eq!(
            (r.event_id, r.pipe_name.as_str(), r.image, r.pid),
            (18, "\\lsass", None, 77)
        );
        // The evtx crate's rendering of unnamed Data: {"#text": [..]}.
        let evtx = json!({"Event": {"System": {"Provider": {"#attributes": {"Name": "PipeSensor"}},
            "EventID": 17, "Channel": "Application"},
            "EventData": {"Data": {"#text": fields}}}});
        let r = one(evtx).unwrap();
        assert_eq!((r.pipe_name.as_str(), r.pid), ("\\postex_1234", 4242));
        // Positions mean nothing for other providers: still skipped...
        let other = json!({"winlog": {"provider_name": "Foo", "event_id": 17,
            "event_data": params(&fields)}});
        assert_eq!(one(other), Err(RecordError::OtherProvider("Foo".into())));
        // ... and a Sysmon record without names has no PipeName.
        let sysmon = json!({"winlog": {"provider_name": "Microsoft-Windows-Sysmon",
            "event_id": 17, "event_data": params(&fields)}});
        assert!(matches!(one(sysmon), Err(RecordError::Bad(m)) if m.contains("PipeName")));
        // The sensor's health events (IDs 100..) are other IDs.
        let health = json!({"winlog": {"provider_name": "PipeSensor", "event_id": 110,
            "event_data": params(&["41", "40"])}});
        assert_eq!(one(health), Err(RecordError::OtherId(110)));
    }

    #[test]
    fn providers() {
        let prov = |p: Value| {
            json!({"Event": {"System": {"Provider": p, "EventID": 18},
                "EventData": {"Data": [{"@Name": "ProcessId", "#text": "7"}]}}})
        };
        // Another provider's ID 18, as the evtx crate and xmltodict render it.
        assert_eq!(
            one(prov(
                json!({"#attributes": {"Name": "Microsoft-Windows-Kernel-Power"}})
            )),
            Err(RecordError::OtherProvider(
                "Microsoft-Windows-Kernel-Power".into()
            ))
        );
        assert_eq!(
            one(prov(json!({"@Name": "Service Control Manager"}))),
            Err(RecordError::OtherProvider("Service Control Manager".into()))
        );
        // Only a GUID: Sysmon's is Sysmon (then the missing PipeName is bad).
        assert!(matches!(
            one(prov(json!({"#attributes": {"Guid": "{5770385f-c22a-43e0-bf4c-06f5698ffbd9}"}}))),
            Err(RecordError::Bad(m)) if m.contains("PipeName")
        ));
        // Sysmon by name, case-insensitively.
        let ok = json!({"Event": {"System": {"Provider": {"#attributes": {"Name": "microsoft-windows-sysmon"}}, "EventID": 17},
            "EventData": {"PipeName": "\\p"}}});
        assert_eq!(one(ok).unwrap().pipe_name, "\\p");
        // Flat and Winlogbeat providers.
        assert_eq!(
            one(json!({"EventID": 17, "ProviderName": "Foo", "Message": "x"})),
            Err(RecordError::OtherProvider("Foo".into()))
        );
        assert_eq!(
            one(json!({"winlog": {"event_id": 17, "provider_name": "Bar"}})),
            Err(RecordError::OtherProvider("Bar".into()))
        );
        // Another ID is counted by ID whatever the provider.
        assert_eq!(
            one(json!({"EventID": 4624, "ProviderName": "Foo"})),
            Err(RecordError::OtherId(4624))
        );
        // A Sysmon channel without a provider means Sysmon.
        assert_eq!(
            one(json!({"EventCode": "17", "source": "XmlWinEventLog:Microsoft-Windows-Sysmon/Operational", "PipeName": "\\s"}))
                .unwrap()
                .pipe_name,
            "\\s"
        );
        // Another channel (Splunk's `source`) is another provider.
        assert_eq!(
            one(json!({"EventCode": "18", "source": "WinEventLog:System", "Message": "x"})),
            Err(RecordError::OtherProvider("channel System".into()))
        );
        // ForwardedEvents says nothing.
        assert_eq!(
            one(json!({"EventID": 17, "Channel": "ForwardedEvents", "PipeName": "\\f"}))
                .unwrap()
                .pipe_name,
            "\\f"
        );
        // No provider information at all: read as before.
        assert_eq!(
            one(json!({"EventID": 17, "PipeName": "\\n"}))
                .unwrap()
                .pipe_name,
            "\\n"
        );
    }

    #[test]
    fn ecs_and_export_wrappers() {
        // The ECS `event` object is not the Windows `Event`.
        let ecs = json!({"event": {"kind": "event", "code": "17", "provider": "Microsoft-Windows-Sysmon"},
            "winlog": {"event_id": "17", "provider_name": "Microsoft-Windows-Sysmon", "event_data": {"RuleName": "-"}},
            "file": {"name": "\\ecs"}, "process": {"executable": "C:\\e.exe", "pid": 42},
            "@timestamp": "2026-11-30T10:00:00.000Z"});
        let r = one(ecs).unwrap();
        assert_eq!(
            (
                r.pipe_name.as_str(),
                r.image.as_deref(),
                r.pid,
                r.time.as_deref()
            ),
            (
                "\\ecs",
                Some("C:\\e.exe"),
                42,
                Some("2026-11-30T10:00:00.000Z")
            )
        );
        // Flattened dotted keys.
        let dotted = json!({"winlog.event_id": 18, "winlog.provider_name": "Microsoft-Windows-Sysmon",
            "winlog.event_data.PipeName": "\\dot"});
        assert_eq!(one(dotted).unwrap().event_id, 18);
        // Splunk result wrapper, EventCode, multi-value field.
        let splunk = json!({"preview": false, "result": {"EventCode": "18", "SourceName": "Microsoft-Windows-Sysmon",
            "PipeName": ["\\spl"], "ProcessId": "9"}});
        let r = one(splunk).unwrap();
        assert_eq!((r.event_id, r.pipe_name.as_str(), r.pid), (18, "\\spl", 9));
        // Elasticsearch hit.
        let hit = json!({"_index": "winlogbeat", "_source": {"winlog": {"event_id": 17, "event_data": {"PipeName": "\\hit"}}}});
        assert_eq!(one(hit).unwrap().pipe_name, "\\hit");
        // A record's own `result` object is not a Splunk wrapper.
        let own = json!({"EventID": 17, "PipeName": "\\own", "result": {"EventID": 1}});
        assert_eq!(one(own).unwrap().pipe_name, "\\own");
    }

    #[test]
    fn xml_text_event_data() {
        let sentinel = json!({"Source": "Microsoft-Windows-Sysmon", "EventID": 17,
            "EventData": "<DataItem type=\"System.XmlData\"><EventData xmlns=\"http://schemas.microsoft.com/win/2004/08/events/event\"><Data Name=\"PipeName\">\\sen</Data><Data Name=\"Image\">C:\\s.exe</Data><Data Name=\"ProcessId\">3</Data></EventData></DataItem>"});
        let r = one(sentinel).unwrap();
        assert_eq!(
            (r.pipe_name.as_str(), r.image.as_deref(), r.pid),
            ("\\sen", Some("C:\\s.exe"), 3)
        );
        let raw = json!({"_raw": "<Event xmlns='http://schemas.microsoft.com/win/2004/08/events/event'><System><Provider Name='Microsoft-Windows-Sysmon' Guid='{5770385f-c22a-43e0-bf4c-06f5698ffbd9}'/><EventID>18</EventID><TimeCreated SystemTime='2026-11-30T10:00:00.1Z'/></System><EventData><Data Name='PipeName'>\\raw</Data></EventData></Event>"});
        let r = one(raw).unwrap();
        assert_eq!(
            (r.event_id, r.pipe_name.as_str(), r.time.as_deref()),
            (18, "\\raw", Some("2026-11-30T10:00:00.1Z"))
        );
        let other = json!({"_raw": "<Event><System><Provider Name='Microsoft-Windows-Kernel-General'/><EventID>17</EventID></System><EventData/></Event>"});
        assert_eq!(
            one(other),
            Err(RecordError::OtherProvider(
                "Microsoft-Windows-Kernel-General".into()
            ))
        );
        assert!(
            matches!(one(json!({"EventID": 17, "EventData": "<EventData><Data"})), Err(RecordError::Bad(m)) if m.contains("invalid XML"))
        );
    }

    #[test]
    fn anonymous_pipes_and_unknown_images() {
        let r = one(
            json!({"EventID": 17, "PipeName": "<Anonymous Pipe>", "Image": "<unknown process>"}),
        )
        .unwrap();
        assert!(r.is_anonymous());
        assert_eq!(r.image, None);
    }

    #[test]
    fn containers() {
        let mut l = Loaded::default();
        let text = json!({"tables": [{"name": "PrimaryResult",
            "columns": [{"name": "EventID", "type": "int"}, {"name": "Source", "type": "string"}, {"name": "EventData", "type": "string"}],
            "rows": [[17, "Microsoft-Windows-Sysmon", "<EventData><Data Name=\"PipeName\">\\a</Data></EventData>"],
                     [18, "Microsoft-Windows-Kernel-Power", ""]]}]})
        .to_string();
        load_json_text("la", &text, false, &mut l).unwrap();
        assert_eq!(
            (l.read, l.records.len(), l.other_providers_total()),
            (2, 1, 1)
        );
        assert_eq!(l.records[0].source, "la:record 1");
        let mut l = Loaded::default();
        let text = format!(
            "{}\n{}\n",
            json!({"results": [{"EventCode": 17, "PipeName": "\\x"}, {"EventCode": 4688}]}),
            json!({"hits": {"hits": [{"_source": {"winlog": {"event_id": 18, "event_data": {"PipeName": "\\y"}}}}]}})
        );
        load_json_text("c", &text, false, &mut l).unwrap();
        assert_eq!((l.read, l.records.len()), (3, 2));
        assert_eq!(l.records[1].source, "c:line 2 record 1");
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
}
