//! Embedded test cases for `pipectl test` and `pipectl compile`: the one
//! runner (`test_kit::cases::run`, on the driver's evaluation path), and
//! the report a rule author reads (failures at `file:line` with the event
//! that ran and YAML hints, rules without cases).

use crate::show;
use channel_format::EventKind;
use channel_parser::{ChannelFile, Scratch};
use pipe_compiler::model::{Rule, RuleSet};
use test_kit::cases::{CaseEvent, Outcome};

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

fn failure(o: &Outcome<'_>) -> Failure {
    let (rule, case) = (o.rule, o.case);
    let ev = CaseEvent::of(case);
    let mut details = vec![format!(
        "event: name {}, image {}, pid {}{}, kind {}{}",
        show::quote(&case.pipe_name),
        case.image
            .as_deref()
            .map_or("none".to_string(), show::quote),
        ev.pid,
        if case.pid.is_none() { " (default)" } else { "" },
        match ev.kind {
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
            "{}: rule {} {}: {} {}",
            case.source,
            rule_id_text(rule),
            show::quote(&rule.name),
            show::quote(&case.pipe_name),
            o.what()
        ),
        details,
    }
}

/// Runs every case of every rule in `set` through `file` (compiled from
/// `set`) with `test_kit::cases::run`.
pub fn run(set: &RuleSet, file: &ChannelFile<'_>) -> Report {
    let mut scratch = Box::new(Scratch::new());
    let mut report = Report::default();
    for rule in set.rules.iter().filter(|r| r.tests.is_empty()) {
        report.without_cases.push((
            rule_id_text(rule),
            rule.name.clone(),
            rule.source.to_string(),
        ));
    }
    for o in test_kit::cases::run(set, file, &mut scratch) {
        if o.passed() {
            report.passed += 1;
        } else {
            report.failures.push(failure(&o));
        }
    }
    report
}
