//! Rules' embedded test cases run on the kernel matcher through the
//! driver's evaluation path (`sensor_core::eval`: the name normalized as the
//! driver normalizes it, the image path in DOS form, a case's own process
//! id and kind or the sensor's defaults): the one runner behind
//! `pipectl test`, `pipectl compile`, the documentation test and the
//! fuzzers' importer checks.

use channel_format::EventKind;
use channel_parser::{ChannelFile, Event, Scratch};
use pipe_compiler::model::{Rule, RuleSet, TestCase};
use sensor_core::dospath::DeviceMap;
use sensor_core::eval::{self, Buffers, Prepared, RawEvent, DEFAULT_KIND, DEFAULT_PID};
use sensor_core::name::NameError;
use std::ops::ControlFlow;

/// The event a test case describes, as the sensor receives it: UTF-16 name
/// and image as written, the case's process id and kind or the sensor's
/// defaults (`sensor_core::eval::DEFAULT_PID`, `DEFAULT_KIND`).
#[derive(Debug, Clone)]
pub struct CaseEvent {
    name: Vec<u16>,
    image: Option<Vec<u16>>,
    /// The event kind.
    pub kind: EventKind,
    /// The process id.
    pub pid: u32,
    /// The user SID string, if the case sets one.
    pub user: Option<String>,
}

fn wire_kind(k: EventKind) -> sensor_core::ring::EventKind {
    match k {
        EventKind::Create => sensor_core::ring::EventKind::Create,
        EventKind::Connect => sensor_core::ring::EventKind::Connect,
    }
}

impl CaseEvent {
    /// The event of `case`.
    pub fn of(case: &TestCase) -> CaseEvent {
        let default_kind = match DEFAULT_KIND {
            sensor_core::ring::EventKind::Create => EventKind::Create,
            sensor_core::ring::EventKind::Connect => EventKind::Connect,
        };
        CaseEvent {
            name: case.pipe_name.encode_utf16().collect(),
            image: case.image.as_ref().map(|i| i.encode_utf16().collect()),
            kind: case.kind.unwrap_or(default_kind),
            pid: case.pid.unwrap_or(DEFAULT_PID),
            user: case.user.clone(),
        }
    }

    /// The pipe name in UTF-16, as written.
    pub fn name(&self) -> &[u16] {
        &self.name
    }

    /// The image in UTF-16, as written, if the case has one.
    pub fn image(&self) -> Option<&[u16]> {
        self.image.as_deref()
    }

    /// The event as the matcher sees it, through `sensor_core::eval::prepare`
    /// with the drive table `drives` (offline: empty).
    ///
    /// # Errors
    /// A name that cannot be normalized (empty, too long).
    pub fn prepare<'b>(
        &'b self,
        drives: &DeviceMap,
        buffers: &'b mut Buffers,
    ) -> Result<Prepared<'b>, NameError> {
        let raw = RawEvent {
            kind: wire_kind(self.kind),
            pid: self.pid,
            name: &self.name,
            image: self.image.as_deref(),
            user: self.user.as_deref(),
        };
        eval::prepare(drives, &raw, buffers)
    }
}

/// What the kernel matcher did with one test case.
#[derive(Debug, Clone, Copy)]
pub struct Outcome<'r> {
    /// The rule the case belongs to.
    pub rule: &'r Rule,
    /// The case.
    pub case: &'r TestCase,
    /// Whether the rule matched the case's event.
    pub matched: bool,
    /// Why the case's event could not be evaluated (its name does not
    /// normalize). An empty name or the NPFS root is one the driver lets
    /// through without evaluating it (no rule matches it): a `no_match`
    /// case on it passes, a `match` case fails. A name too long to
    /// normalize fails either way (the driver decides it without the rules).
    pub error: Option<NameError>,
}

impl Outcome<'_> {
    /// Whether the matcher did what the case expects.
    pub fn passed(&self) -> bool {
        match self.error {
            None => self.matched == self.case.expect_match,
            Some(NameError::Empty) => !self.case.expect_match,
            Some(_) => false,
        }
    }

    /// What went wrong: `should match but does not`, `should not match but
    /// does`, or `cannot be evaluated: ...`.
    pub fn what(&self) -> String {
        match (self.error, self.case.expect_match) {
            (Some(NameError::Empty), true) => "should match but cannot: an empty name or the NPFS \
                 root is let through without evaluation"
                .to_string(),
            (Some(e), _) => format!("cannot be evaluated: {e}"),
            (None, true) => "should match but does not".to_string(),
            (None, false) => "should not match but does".to_string(),
        }
    }

    /// The failure in one line: `file:line:col: rule ID (NAME): "NAME"[
    /// (image "IMAGE")] should [not ]match but does[ not]`.
    pub fn failure(&self) -> String {
        let image = self
            .case
            .image
            .as_deref()
            .map(|i| format!(" (image {i:?})"))
            .unwrap_or_default();
        format!(
            "{}: rule {} ({}): {:?}{image} {}",
            self.case.source,
            self.rule.id,
            self.rule.name,
            self.case.pipe_name,
            self.what()
        )
    }
}

/// Whether rule `id` matches `event` in `file`.
pub fn rule_matches(
    file: &ChannelFile<'_>,
    id: u32,
    event: &Event<'_>,
    scratch: &mut Scratch,
) -> bool {
    let mut hit = false;
    file.for_each_match(event, scratch, |r| {
        if r.id() == id {
            hit = true;
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(())
    });
    hit
}

/// Runs every embedded case of every rule of `set` on `file` (compiled
/// from `set`), in rule and case order, through the driver's evaluation
/// path with an empty drive table.
pub fn run<'r>(
    set: &'r RuleSet,
    file: &ChannelFile<'_>,
    scratch: &mut Scratch,
) -> Vec<Outcome<'r>> {
    let drives = DeviceMap::new();
    let mut buffers = Box::new(Buffers::new());
    let mut out = Vec::new();
    for rule in &set.rules {
        for case in &rule.tests {
            let ev = CaseEvent::of(case);
            let (matched, error) = match ev.prepare(&drives, &mut buffers) {
                Ok(p) => (rule_matches(file, rule.id, &p.event(), scratch), None),
                Err(e) => (false, Some(e)),
            };
            out.push(Outcome {
                rule,
                case,
                matched,
                error,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use pipe_compiler::{compile, AlignedBytes, CompileOptions};

    /// Cases in the spellings the driver normalizes, with and without a
    /// process id: all hold only when run through the driver's path.
    #[test]
    fn cases_run_through_the_drivers_path() {
        let yaml = "- id: 1\n  name: n\n  severity: low\n  detection:\n    s:\n      PipeName|startswith: '\\postex_'\n    sys:\n      ProcessId: 4\n    condition: s and not sys\n  tests:\n    match: ['\\\\.\\pipe\\postex_1', 'postex_2', '\\Device\\NamedPipe\\postex_3', '\\postex_4']\n    no_match:\n      - {name: '\\postex_5', pid: 4}\n      - ''\n      - '\\'\n- id: 2\n  name: m\n  severity: low\n  detection:\n    s:\n      PipeName|re: '.*'\n    condition: s\n  tests:\n    match: ['\\\\.\\pipe\\', '\\x']\n    no_match: ['\\', '\\Device\\NamedPipe\\']\n";
        let rules = pipe_compiler::import::load_yaml(std::path::Path::new("t.yml"), yaml)
            .unwrap_or_else(|e| panic!("{e:?}"));
        let set = RuleSet { rules };
        let bytes = compile(&set, &CompileOptions::default()).unwrap();
        let aligned = AlignedBytes::new(&bytes);
        let file = channel_parser::parse(aligned.as_slice(), &channel_parser::Capabilities::SENSOR)
            .unwrap();
        let out = run(&set, &file, &mut Scratch::new());
        assert_eq!(out.len(), 11);
        // An empty name and the root are let through unevaluated, as the
        // driver does: a no_match case on them passes ...
        for (i, o) in out.iter().enumerate() {
            assert_eq!(o.passed(), i != 7, "{i}: {}", o.failure());
        }
        assert_eq!(out[5].error, Some(NameError::Empty));
        assert_eq!(out[6].error, Some(NameError::Empty));
        // ... a match case on them fails, saying why.
        assert_eq!(out[7].error, Some(NameError::Empty));
        assert!(out[7]
            .failure()
            .contains("should match but cannot: an empty name or the NPFS root"));
        assert!(out[8].passed() && out[8].matched);
    }
}
