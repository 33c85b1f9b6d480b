//! The embedded-case runner: every native rule's `tests:` cases through a
//! compiled channel file, with the driver's evaluation path
//! (`sensor_core::eval`: name normalization, DOS image path, default pid and
//! kind). `pipectl test` and `pipectl compile` (before it writes a release)
//! both call [`run`].

use crate::show;
use channel_parser::{ChannelFile, Scratch};
use pipe_compiler::model::{Rule, RuleSet, TestCase};
use sensor_core::dospath::DeviceMap;
use sensor_core::eval::{self, Buffers, RawEvent, DEFAULT_KIND, DEFAULT_PID};
use sensor_core::ring::EventKind;
use std::ops::ControlFlow;

/// One failed case, ready to print.
#[derive(Debug)]
pub struct Failure {
    /// `file:line:col: rule …: '…' should match but does not`.
    pub message: String,
    /// The event it ran (pid, kind, image), and hints.
    pub details: Vec<String>,
}

/// What [`run`] found.
#[derive(Debug, Default)]
pub struct Report {
    /// Cases that passed.
    pub passed: usize,
    /// Cases that failed.
    pub failures: Vec<Failure>,
    /// Rules with no case at all: (id as text, name, where).
    pub without_cases: Vec<(String, String, String)>,
}

impl Report {
    /// Prints failures to stderr and the summary to stdout.
    pub fn print(&self, list_without_cases: bool) {
        for f in &self.failures {
            eprintln!("{}", f.message);
            for d in &f.details {
                eprintln!("    {d}");
            }
        }
        let mut summary = format!("{} passed, {} failed", self.passed, self.failures.len());
        if !self.without_cases.is_empty() {
            summary.push_str(&format!(
                "; {} rule(s) without test cases",
                self.without_cases.len()
            ));
        }
        outln!("{summary}");
        if list_without_cases {
            const SHOWN: usize = 20;
            for (id, name, at) in self.without_cases.iter().take(SHOWN) {
                outln!("  no cases: rule {id} {} ({at})", show::quote(name));
            }
            if self.without_cases.len() > SHOWN {
                outln!("  ... and {} more", self.without_cases.len() - SHOWN);
            }
        }
    }
}

/// The rule's id as its source wrote it, when that differs from the decimal
/// number: a Sigma rule's UUID (`d5601f8c-b26f-…`, whose first 8 hex digits
/// are the id), a native rule's `0x2001`. Read from the source file at the
/// rule's position, and only when it denotes the same id.
pub fn source_id(rule: &Rule) -> Option<String> {
    let text = std::fs::read_to_string(&rule.source.file).ok()?;
    let first = rule.source.line.saturating_sub(1);
    text.lines().skip(first).take(64).find_map(|l| {
        let t = l.trim_start().trim_start_matches("- ").trim_start();
        let v = t
            .strip_prefix("id:")?
            .trim()
            .trim_matches(|c| c == '\'' || c == '"');
        let same = match v.get(..2) {
            Some("0x") | Some("0X") => u32::from_str_radix(&v[2..], 16).ok() == Some(rule.id),
            _ if v.len() == 36 && v.as_bytes().get(8) == Some(&b'-') => {
                u32::from_str_radix(v.get(..8)?, 16).ok() == Some(rule.id)
            }
            _ => false,
        };
        same.then(|| {
            if v.len() == 36 {
                format!("Sigma id {v}")
            } else {
                format!("id {v}")
            }
        })
    })
}

/// `0x000003e9 (1001)`, and the id as the source wrote it when that is
/// another form (`[Sigma id d5601f8c-…]`).
fn rule_id_text(rule: &Rule) -> String {
    match source_id(rule) {
        Some(s) => format!("{} [{s}]", show::rule_id(rule.id)),
        None => show::rule_id(rule.id),
    }
}

/// The kind a case runs with.
pub fn case_kind(case: &TestCase) -> EventKind {
    case.kind
        .and_then(EventKind::from_u32)
        .unwrap_or(DEFAULT_KIND)
}

/// The process id a case runs with.
pub fn case_pid(case: &TestCase) -> u32 {
    case.pid.unwrap_or(DEFAULT_PID)
}

/// Whether `rule` matches the case's event in `file`, through the driver's
/// evaluation path (`drives`: the drive table; offline, an empty one).
pub fn rule_matches(
    file: &ChannelFile<'_>,
    rule_id: u32,
    case: &TestCase,
    drives: &DeviceMap,
    scratch: &mut Scratch,
    buffers: &mut Buffers,
) -> Result<bool, String> {
    let name: Vec<u16> = case.pipe_name.encode_utf16().collect();
    let image: Option<Vec<u16>> = case.image.as_ref().map(|i| i.encode_utf16().collect());
    let raw = RawEvent {
        kind: case_kind(case),
        pid: case_pid(case),
        name: &name,
        image: image.as_deref(),
    };
    let p = eval::prepare(drives, &raw, buffers).map_err(|e| format!("{}: {e}", case.source))?;
    let mut hit = false;
    file.for_each_match(&p.event(), scratch, |r| {
        if r.id() == rule_id {
            hit = true;
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(())
    });
    Ok(hit)
}

fn failure(rule: &Rule, case: &TestCase, error: Option<String>) -> Failure {
    let what = match (&error, case.expect_match) {
        (Some(e), _) => format!("cannot be evaluated: {e}"),
        (None, true) => "should match but does not".to_string(),
        (None, false) => "should not match but does".to_string(),
    };
    let mut details = vec![format!(
        "event: name {}, image {}, pid {}{}, kind {}{}",
        show::quote(&case.pipe_name),
        case.image
            .as_deref()
            .map_or("none".to_string(), show::quote),
        case_pid(case),
        if case.pid.is_none() { " (default)" } else { "" },
        match case_kind(case) {
            EventKind::Create => "create",
            EventKind::Connect => "connect",
        },
        if case.kind.is_none() {
            " (default)"
        } else {
            ""
        },
    )];
    for v in std::iter::once(&case.pipe_name).chain(case.image.as_ref()) {
        if let Some(h) = show::yaml_hint(v) {
            details.push(h);
            break;
        }
    }
    Failure {
        message: format!(
            "{}: rule {} {}: {} {what}",
            case.source,
            rule_id_text(rule),
            show::quote(&rule.name),
            show::quote(&case.pipe_name)
        ),
        details,
    }
}

/// Runs every case of every rule in `set` through `file` (compiled from
/// `set`).
pub fn run(set: &RuleSet, file: &ChannelFile<'_>) -> Report {
    let mut scratch = Box::new(Scratch::new());
    let mut buffers = Box::new(Buffers::new());
    let drives = DeviceMap::new();
    let mut report = Report::default();
    for rule in &set.rules {
        if rule.tests.is_empty() {
            report.without_cases.push((
                rule_id_text(rule),
                rule.name.clone(),
                rule.source.to_string(),
            ));
        }
        for case in &rule.tests {
            match rule_matches(file, rule.id, case, &drives, &mut scratch, &mut buffers) {
                Ok(hit) if hit == case.expect_match => report.passed += 1,
                Ok(_) => report.failures.push(failure(rule, case, None)),
                Err(e) => report.failures.push(failure(rule, case, Some(e))),
            }
        }
    }
    report
}
