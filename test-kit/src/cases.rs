//! Rules' embedded test cases run on the kernel matcher: the one runner
//! behind `pipectl test`, the documentation test and the fuzzers'
//! importer checks.

use channel_format::EventKind;
use channel_parser::{ChannelFile, Event, Scratch, Text};
use pipe_compiler::model::{Rule, RuleSet, TestCase};
use std::ops::ControlFlow;

/// The event a test case describes, as the kernel sees it: UTF-16 name and
/// image, process id 0, kind create unless the case says otherwise.
#[derive(Debug, Clone)]
pub struct CaseEvent {
    name: Vec<u16>,
    image: Option<Vec<u16>>,
    /// The event kind.
    pub kind: EventKind,
}

impl CaseEvent {
    /// The event of `case`.
    pub fn of(case: &TestCase) -> CaseEvent {
        CaseEvent {
            name: case.pipe_name.encode_utf16().collect(),
            image: case.image.as_ref().map(|i| i.encode_utf16().collect()),
            kind: case.kind.unwrap_or(EventKind::Create),
        }
    }

    /// The pipe name in UTF-16.
    pub fn name(&self) -> &[u16] {
        &self.name
    }

    /// The image in UTF-16, if the case has one.
    pub fn image(&self) -> Option<&[u16]> {
        self.image.as_deref()
    }

    /// The kernel's event.
    pub fn event(&self) -> Event<'_> {
        Event {
            pipe_name: Text::Utf16(&self.name),
            image: self.image.as_deref().map(Text::Utf16),
            pid: 0,
            kind: self.kind,
        }
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
}

impl Outcome<'_> {
    /// Whether the matcher did what the case expects.
    pub fn passed(&self) -> bool {
        self.matched == self.case.expect_match
    }

    /// The failure as `pipectl test` reports it: `file:line:col: rule ID
    /// (NAME): "NAME"[ (image "IMAGE")] should [not ]match but does[ not]`.
    pub fn failure(&self) -> String {
        let what = if self.case.expect_match {
            "should match but does not"
        } else {
            "should not match but does"
        };
        let image = self
            .case
            .image
            .as_deref()
            .map(|i| format!(" (image {i:?})"))
            .unwrap_or_default();
        format!(
            "{}: rule {} ({}): {:?}{image} {what}",
            self.case.source, self.rule.id, self.rule.name, self.case.pipe_name
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
/// from `set`), in rule and case order.
pub fn run<'r>(
    set: &'r RuleSet,
    file: &ChannelFile<'_>,
    scratch: &mut Scratch,
) -> Vec<Outcome<'r>> {
    let mut out = Vec::new();
    for rule in &set.rules {
        for case in &rule.tests {
            let ev = CaseEvent::of(case);
            out.push(Outcome {
                rule,
                case,
                matched: rule_matches(file, rule.id, &ev.event(), scratch),
            });
        }
    }
    out
}
