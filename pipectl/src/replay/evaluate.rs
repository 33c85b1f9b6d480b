//! Step 2 of a backtest: one recorded event through a channel file, the way
//! the driver evaluates it.
//!
//! The pipe name goes through the driver's normalization
//! (`sensor_core::name::normalize_into`: `\\.\pipe\x`, `\Device\NamedPipe\x`
//! and `x` become `\x`) and is matched as UTF-16, as in the kernel. A name
//! the driver cannot normalize is not evaluated: the driver counts it as a
//! name error and lets it through, and replay counts it the same way. That
//! is where Sysmon's `<Anonymous Pipe>` goes: the pipe has no name, so the
//! sensor sees an empty one.

use super::ingest::Record;
use channel_parser::{Capabilities, ChannelFile, Event, EventKind, FieldId, Scratch, Text};
use pipe_compiler::AlignedBytes;
use sensor_core::name::{normalize_into, NameError, MAX_NAME_UNITS};
use serde_json::{json, Value};
use std::ops::ControlFlow;
use std::path::Path;

/// A channel file's bytes, kept alive for its parsed view.
pub struct Channel {
    /// The file as named on the command line.
    pub path: String,
    bytes: AlignedBytes,
}

impl Channel {
    /// Reads a channel file.
    ///
    /// # Errors
    /// The file cannot be read.
    pub fn open(path: &Path) -> Result<Channel, String> {
        let raw = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(Channel::from_bytes(path.display().to_string(), &raw))
    }

    /// A channel file already in memory (compiled from rule sources).
    pub fn from_bytes(path: String, raw: &[u8]) -> Channel {
        Channel {
            path,
            bytes: AlignedBytes::new(raw),
        }
    }

    /// Parses with the kernel's parser for the version-1 sensor.
    ///
    /// # Errors
    /// `file: invalid: <error> [<kind>]`.
    pub fn parse(&self) -> Result<ChannelFile<'_>, String> {
        channel_parser::parse(self.bytes.as_slice(), &Capabilities::SENSOR)
            .map_err(|e| format!("{}: invalid: {e} [{}]", self.path, e.kind()))
    }

    /// The `channel` object of the JSON reports.
    pub fn json(&self, f: &ChannelFile<'_>) -> Value {
        json!({"file": self.path, "sequence": f.sequence(), "rules": f.rule_count()})
    }
}

/// A rule as the reports show it.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleInfo {
    /// Rule id.
    pub id: u32,
    /// Rule name.
    pub name: String,
    /// Severity, as text.
    pub severity: String,
    /// Action, as text (`alert` / `block`).
    pub action: String,
}

impl RuleInfo {
    /// The report's view of a rule.
    pub fn of(r: &channel_parser::RuleView<'_>) -> RuleInfo {
        RuleInfo {
            id: r.id(),
            name: r.name().to_string(),
            severity: r.severity().to_string(),
            action: r.action().to_string(),
        }
    }

    /// The rule as JSON.
    pub fn json(&self) -> Value {
        json!({"id": self.id, "name": self.name, "severity": self.severity, "action": self.action})
    }

    /// Whether the rule blocks (in enforce mode).
    pub fn blocks(&self) -> bool {
        self.action == channel_parser::Action::BLOCK.to_string()
    }
}

/// The verdict of one file on one event.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// Ids of every matching rule, ascending rule index.
    pub matched: Vec<u32>,
    /// The best rule (block before alert, then severity, then index).
    pub best: Option<RuleInfo>,
}

/// An evaluated event: the outcome, the matching rules' indexes and the
/// best rule's index.
#[derive(Debug, Clone)]
pub struct Evaluation {
    /// What the file decides.
    pub outcome: Outcome,
    /// Indexes of the matching rules.
    pub indexes: Vec<u32>,
    /// Index of the best rule.
    pub best_index: Option<u32>,
}

/// Why an event was not evaluated (the driver would count a name error and
/// let it through).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum NotEvaluated {
    /// Sysmon's `<Anonymous Pipe>`: the sensor sees no name.
    AnonymousPipe,
    /// An empty pipe name.
    EmptyName,
    /// A name longer than the sensor keeps after normalization.
    NameTooLong,
    /// The content has rules on `User` and the event's `User` is an account
    /// name no SID can be given for without its machine (`CONTOSO\alice`;
    /// the sensor matches SIDs, docs/rules.md "User"): those rules cannot
    /// be decided, so the event is not evaluated rather than guessed.
    UserNotMapped,
}

impl NotEvaluated {
    /// A stable key for the JSON reports.
    pub fn key(self) -> &'static str {
        match self {
            NotEvaluated::AnonymousPipe => "anonymous_pipe",
            NotEvaluated::EmptyName => "empty_name",
            NotEvaluated::NameTooLong => "name_too_long",
            NotEvaluated::UserNotMapped => "user_not_mapped",
        }
    }
}

/// Working memory for [`evaluate`].
pub struct Work {
    scratch: Box<Scratch>,
    name: Box<[u16; MAX_NAME_UNITS]>,
}

impl Work {
    /// Fresh working memory.
    pub fn new() -> Work {
        Work {
            scratch: Box::new(Scratch::new()),
            name: Box::new([0; MAX_NAME_UNITS]),
        }
    }
}

/// The sensor's event kind of a record (18 connect, else create).
pub fn kind(r: &Record) -> EventKind {
    if r.event_id == 18 {
        EventKind::Connect
    } else {
        EventKind::Create
    }
}

/// Evaluates one record as the driver would.
///
/// # Errors
/// [`NotEvaluated`] for a name the driver cannot normalize.
pub fn evaluate(
    f: &ChannelFile<'_>,
    r: &Record,
    work: &mut Work,
) -> Result<Evaluation, NotEvaluated> {
    let raw: Vec<u16> = if r.is_anonymous() {
        Vec::new()
    } else {
        r.pipe_name.encode_utf16().collect()
    };
    let name = match normalize_into(&raw, &mut work.name[..]) {
        Ok(n) => n,
        Err(_) if r.is_anonymous() => return Err(NotEvaluated::AnonymousPipe),
        Err(NameError::Empty) => return Err(NotEvaluated::EmptyName),
        Err(_) => return Err(NotEvaluated::NameTooLong),
    };
    let image: Option<Vec<u16>> = r.image.as_ref().map(|i| i.encode_utf16().collect());
    // User as the driver supplies it: the SID string. The sensor's own
    // records carry it (UserSid); Sysmon's `DOMAIN\name` goes through the
    // compiler's table of well-known principals (pipe_compiler::user).
    let user = r
        .user_sid
        .as_deref()
        .or(r.user.as_deref())
        .map(|u| pipe_compiler::user::event_user_sid(u).ok_or(u));
    let user = match user {
        None => None,
        Some(Ok(sid)) => Some(sid),
        Some(Err(_)) if f.reads_field(FieldId::USER) => return Err(NotEvaluated::UserNotMapped),
        Some(Err(_)) => None,
    };
    let ev = Event {
        pipe_name: Text::Utf16(name),
        image: image.as_deref().map(Text::Utf16),
        pid: r.pid,
        kind: kind(r),
        user: user.as_deref().map(Text::Utf8),
    };
    let mut matched = Vec::new();
    let mut indexes = Vec::new();
    f.for_each_match(&ev, &mut work.scratch, |rule| {
        matched.push(rule.id());
        indexes.push(rule.index());
        ControlFlow::Continue(())
    });
    let best = f.evaluate(&ev, &mut work.scratch).best;
    let best_index = best.map(|b| b.index());
    let best = best.map(|b| RuleInfo::of(&b));
    Ok(Evaluation {
        outcome: Outcome { matched, best },
        indexes,
        best_index,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use pipe_compiler::import::load_yaml;
    use pipe_compiler::model::RuleSet;
    use pipe_compiler::{compile, CompileOptions};

    fn rec(name: &str) -> Record {
        Record {
            source: "t".into(),
            event_id: 17,
            pipe_name: name.into(),
            image: None,
            pid: 0,
            user: None,
            user_sid: None,
            time: None,
        }
    }

    #[test]
    fn user_is_matched_as_the_sid_the_driver_supplies() {
        let rules = load_yaml(
            Path::new("u.yml"),
            "- id: 1\n  name: x\n  severity: high\n  detection:\n    s:\n      PipeName: '\\p'\n      User: 'NT AUTHORITY\\SYSTEM'\n    condition: s\n",
        )
        .unwrap();
        let bytes = compile(&RuleSet { rules }, &CompileOptions::default()).unwrap();
        let ch = Channel::from_bytes("x".into(), &bytes);
        let f = ch.parse().unwrap();
        let mut w = Work::new();
        let with = |user: Option<&str>, sid: Option<&str>| Record {
            user: user.map(String::from),
            user_sid: sid.map(String::from),
            ..rec("\\p")
        };
        for (user, sid) in [
            (Some("NT AUTHORITY\\SYSTEM"), None),
            (Some("nt-autorität\\system"), None),
            (Some("S-1-5-18"), None),
            (Some("CORP\\svc"), Some("S-1-5-18")),
        ] {
            let e = evaluate(&f, &with(user, sid), &mut w).unwrap();
            assert_eq!(e.outcome.matched, vec![1], "{user:?} {sid:?}");
        }
        for (user, sid) in [
            (None, None),
            (Some("NT AUTHORITY\\LOCAL SERVICE"), None),
            (Some("CORP\\alice"), Some("S-1-5-21-1-2-3-1001")),
        ] {
            let e = evaluate(&f, &with(user, sid), &mut w).unwrap();
            assert!(e.outcome.matched.is_empty(), "{user:?} {sid:?}");
        }
        // A name only its machine can resolve: not evaluated, never "no match".
        assert_eq!(
            evaluate(&f, &with(Some("CORP\\alice"), None), &mut w).unwrap_err(),
            NotEvaluated::UserNotMapped
        );
        // Content without rules on User evaluates such an event as usual.
        let rules = load_yaml(
            Path::new("p.yml"),
            "- id: 2\n  name: y\n  severity: high\n  detection:\n    s:\n      PipeName: '\\p'\n    condition: s\n",
        )
        .unwrap();
        let bytes = compile(&RuleSet { rules }, &CompileOptions::default()).unwrap();
        let ch = Channel::from_bytes("y".into(), &bytes);
        let f = ch.parse().unwrap();
        let e = evaluate(&f, &with(Some("CORP\\alice"), None), &mut w).unwrap();
        assert_eq!(e.outcome.matched, vec![2]);
    }

    #[test]
    fn names_are_normalized_as_the_driver_does() {
        let rules = load_yaml(
            Path::new("r.yml"),
            "- id: 1\n  name: x\n  severity: high\n  detection:\n    s:\n      PipeName: '\\postex_1'\n    condition: s\n",
        )
        .unwrap();
        let bytes = compile(&RuleSet { rules }, &CompileOptions::default()).unwrap();
        let ch = Channel::from_bytes("x".into(), &bytes);
        let f = ch.parse().unwrap();
        let mut w = Work::new();
        for n in [
            "\\postex_1",
            "\\\\.\\pipe\\postex_1",
            "\\Device\\NamedPipe\\POSTEX_1",
            "postex_1",
        ] {
            let e = evaluate(&f, &rec(n), &mut w).unwrap();
            assert_eq!(e.outcome.matched, vec![1], "{n}");
        }
        assert!(evaluate(&f, &rec("\\postex_2"), &mut w)
            .unwrap()
            .outcome
            .matched
            .is_empty());
        assert_eq!(
            evaluate(&f, &rec("<Anonymous Pipe>"), &mut w).unwrap_err(),
            NotEvaluated::AnonymousPipe
        );
        assert_eq!(
            evaluate(&f, &rec(""), &mut w).unwrap_err(),
            NotEvaluated::EmptyName
        );
        let long = format!("\\{}", "a".repeat(MAX_NAME_UNITS));
        assert_eq!(
            evaluate(&f, &rec(&long), &mut w).unwrap_err(),
            NotEvaluated::NameTooLong
        );
    }
}
