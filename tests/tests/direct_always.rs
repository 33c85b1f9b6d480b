//! ALWAYS rules whose whole condition is one anchored literal of a field
//! that is not scanned (SigmaHQ's WMI consumer rule, `Image|endswith
//! '\scrcons.exe'`): the matcher compares the field with the literal
//! directly on every event, without the rule's program or atom record
//! (`DirectLiteral` in the parser). Every verdict is checked against the
//! reference matcher, as UTF-16 (kernel) and UTF-8 (tools), on events with
//! and without name hits (the two evaluation paths).

use channel_parser::{parse, Capabilities, Event, EventKind, Scratch, Text};
use pipe_compiler::model::{FieldId, Matcher, RuleSet};
use pipe_compiler::{compile, AlignedBytes, CompileOptions};
use std::ops::ControlFlow;
use test_kit::build::{on, rule};
use test_kit::reference::{matching_ids, RefEvent};

/// The ALWAYS rules under test (1–6; the first four have direct tests), and name `contains` rules beside
/// them (which make the pipe name eager, so events can have hits).
fn rules() -> RuleSet {
    let mut rules = vec![
        rule(
            1,
            on(FieldId::IMAGE, Matcher::Suffix("\\scrcons.exe".into())),
        ),
        rule(
            2,
            on(
                FieldId::IMAGE,
                Matcher::Prefix("C:\\Program Files\\".into()),
            ),
        ),
        rule(3, on(FieldId::IMAGE, Matcher::Suffix("\\Äbc.exe".into()))),
        rule(4, on(FieldId::USER, Matcher::Exact("S-1-5-18".into()))),
        rule(
            5,
            on(FieldId::IMAGE, Matcher::Exact("C:\\Temp\\a.exe".into())),
        ),
        rule(6, on(FieldId::USER, Matcher::Prefix("S-1-5-21-".into()))),
    ];
    rules.extend((0..6).map(|i| {
        rule(
            100 + i,
            on(
                FieldId::PIPE_NAME,
                Matcher::Contains(format!("\\filler{i}")),
            ),
        )
    }));
    RuleSet { rules }
}

fn check(
    set: &RuleSet,
    bytes: &AlignedBytes,
    pipe: &str,
    image: Option<&str>,
    user: Option<&str>,
) -> Vec<u32> {
    let file = parse(bytes.as_slice(), &Capabilities::SENSOR).unwrap();
    let mut want = matching_ids(
        set,
        &RefEvent {
            pipe_name: pipe,
            image,
            pid: 7,
            kind: 1,
            user,
        },
    );
    want.sort_unstable();
    let pipe16: Vec<u16> = pipe.encode_utf16().collect();
    let image16: Option<Vec<u16>> = image.map(|i| i.encode_utf16().collect());
    let user16: Option<Vec<u16>> = user.map(|u| u.encode_utf16().collect());
    let events = [
        Event {
            pipe_name: Text::Utf16(&pipe16),
            image: image16.as_deref().map(Text::Utf16),
            pid: 7,
            kind: EventKind::Create,
            user: user16.as_deref().map(Text::Utf16),
        },
        Event {
            pipe_name: Text::Utf8(pipe),
            image: image.map(Text::Utf8),
            pid: 7,
            kind: EventKind::Create,
            user: user.map(Text::Utf8),
        },
    ];
    for ev in &events {
        let mut scratch = Scratch::new();
        let mut got = Vec::new();
        file.for_each_match(ev, &mut scratch, |r| {
            got.push(r.id());
            ControlFlow::Continue(())
        });
        assert_eq!(got, want, "{pipe:?} / {image:?} / {user:?}");
        let v = file.evaluate(ev, &mut scratch);
        assert_eq!(v.matched as usize, want.len());
        assert_eq!(v.best.map(|r| r.id()), want.first().copied());
    }
    want
}

#[test]
fn direct_always_rules_agree_with_the_reference() {
    let set = rules();
    let bytes = AlignedBytes::new(&compile(&set, &CompileOptions::default()).unwrap());
    let file = parse(bytes.as_slice(), &Capabilities::SENSOR).unwrap();
    assert_eq!(file.always_count(), 6, "every rule under test is ALWAYS");
    let images = [
        None,
        Some(""),
        Some("a.exe"),
        Some("scrcons.exe"),
        Some("\\scrcons.exe"),
        Some("C:\\Windows\\System32\\wbem\\scrcons.exe"),
        Some("C:\\Windows\\System32\\wbem\\SCRCONS.EXE"),
        Some("C:\\Windows\\System32\\wbem\\ſcrconſ.exe"),
        Some("C:\\Windows\\System32\\wbem\\scrcons.exé"),
        Some("C:\\Windows\\System32\\svchost.exe"),
        Some("C:\\Windows\\System32\\xscrcons.exe"),
        Some("c:\\program files\\x.exe"),
        Some("C:\\Program Files (x86)\\x.exe"),
        Some("C:\\Program Fileſ\\x.exe"),
        Some("C:\\Temp\\a.exe"),
        Some("c:\\temp\\A.EXE"),
        Some("C:\\Temp\\a.exe\\"),
        Some("C:\\Temp\\a.ex"),
        Some("C:\\x\\äbc.exe"),
        Some("C:\\x\\abc.exe"),
        Some("C:\\Users\\😀\\scrcons.exe"),
    ];
    let users = [
        None,
        Some(""),
        Some("S-1-5-18"),
        Some("s-1-5-18"),
        Some("S-1-5-180"),
        Some("S-1-5-21-1-2-3-1001"),
    ];
    let mut fired = [false; 7];
    for pipe in ["\\spoolss", "\\filler3", "\\x\\filler0\\filler5"] {
        for image in images {
            for user in users {
                for id in check(&set, &bytes, pipe, image, user) {
                    if let Some(f) = fired.get_mut(id as usize) {
                        *f = true;
                    }
                }
            }
        }
    }
    assert_eq!(fired[1..], [true; 6], "every direct rule fired somewhere");
}
