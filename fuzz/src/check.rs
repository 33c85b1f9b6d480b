//! Properties checked on parsed files: the matcher's own consistency on any
//! valid file, and agreement with the reference evaluator on compiled ones.

use channel_parser::{AtomKind, ChannelFile, Event, EventKind, Scratch, Text};
use pipe_compiler::model::RuleSet;
use std::ops::ControlFlow;
use test_kit::reference::{matching_ids, RefEvent};

/// Rule indices `for_each_match` reports for `ev`.
pub fn kernel_indices(file: &ChannelFile<'_>, ev: &Event<'_>, scratch: &mut Scratch) -> Vec<u32> {
    let mut out = Vec::new();
    file.for_each_match(ev, scratch, |r| {
        out.push(r.index());
        ControlFlow::Continue(())
    });
    out
}

/// Matches `units` (and the same name as UTF-8 when it is valid UTF-16) on a
/// validated file and checks what must hold for any valid file:
/// indices strictly ascending and in range, `evaluate` agreeing with
/// `for_each_match`, UTF-16 and UTF-8 spellings agreeing, early break
/// stopping after one rule.
pub fn matcher_invariants(
    file: &ChannelFile<'_>,
    units: &[u16],
    image: Option<&[u16]>,
    pid: u32,
    kind: EventKind,
    scratch: &mut Scratch,
) {
    let ev = Event {
        pipe_name: Text::Utf16(units),
        image: image.map(Text::Utf16),
        pid,
        kind,
        user: None,
    };
    let got = kernel_indices(file, &ev, scratch);
    assert!(
        got.windows(2).all(|w| w[0] < w[1]),
        "for_each_match: indices not strictly ascending: {got:?}"
    );
    assert!(got.iter().all(|&i| i < file.rule_count()));
    let v = file.evaluate(&ev, scratch);
    let _ = (v.blocks(), scratch.passes());
    assert_eq!(v.matched as usize, got.len(), "evaluate vs for_each_match");
    assert_eq!(v.best.is_some(), !got.is_empty());
    if let Some(best) = v.best {
        assert!(got.contains(&best.index()));
        let prio = |i: u32| {
            let r = file.rule(i).expect("rule in range");
            (r.action().0, r.severity().0)
        };
        let top = got.iter().map(|&i| prio(i)).max().expect("non-empty");
        assert_eq!(prio(best.index()), top, "best is not the highest priority");
    }
    let mut first = Vec::new();
    file.for_each_match(&ev, scratch, |r| {
        first.push(r.index());
        ControlFlow::Break(())
    });
    assert_eq!(first.as_slice(), got.get(..1).unwrap_or(&[]), "break");
    // The same text as UTF-8, when it is valid.
    let name8 = String::from_utf16(units).ok();
    let image8 = image.map(|i| String::from_utf16(i).ok());
    if let (Some(n), Some(img)) = (name8, image8.clone().unwrap_or(Some(String::new()))) {
        let ev8 = Event {
            pipe_name: Text::Utf8(&n),
            image: image.map(|_| Text::Utf8(&img)),
            pid,
            kind,
            user: None,
        };
        assert_eq!(
            kernel_indices(file, &ev8, scratch),
            got,
            "UTF-8 and UTF-16 spellings of {n:?} disagree"
        );
    }
}

/// Names built from a validated file's own atoms (literals; globs with the
/// wildcards filled in), so that matching reaches the rules.
pub fn names_from_file(file: &ChannelFile<'_>, max: usize) -> Vec<Vec<u16>> {
    let mut out = Vec::new();
    for rule in file.rules() {
        for atom in rule.atoms() {
            if out.len() >= max {
                return out;
            }
            let text = atom.text();
            let s = match atom.kind() {
                AtomKind::GLOB => {
                    let mut s = String::new();
                    let mut esc = false;
                    for c in text.chars() {
                        match (esc, c) {
                            (false, '\\') => esc = true,
                            (false, '*') => s.push_str("zz"),
                            (false, '?') => s.push('q'),
                            _ => {
                                s.push(c);
                                esc = false;
                            }
                        }
                    }
                    s
                }
                AtomKind::NUM_EQ => continue,
                AtomKind::REGEX => text.chars().filter(|c| c.is_alphanumeric()).collect(),
                _ => format!("x{}", text.to_lowercase()),
            };
            out.push(s.encode_utf16().collect());
        }
    }
    out
}

/// Kernel ids vs reference ids for one event, as UTF-16 (with the lossy
/// UTF-8 spelling given to the reference) and as UTF-8.
pub fn compare_with_reference(
    set: &RuleSet,
    file: &ChannelFile<'_>,
    units: &[u16],
    image: Option<&[u16]>,
    pid: u32,
    kind: EventKind,
    scratch: &mut Scratch,
) {
    // The documented treatment of unpaired surrogates: each becomes one
    // U+FFFD, exactly what from_utf16_lossy does.
    let name = String::from_utf16_lossy(units);
    let img = image.map(String::from_utf16_lossy);
    let mut want = matching_ids(
        set,
        &RefEvent {
            pipe_name: &name,
            image: img.as_deref(),
            pid,
            kind: kind.value(),
            // The image text doubles as the user (a string field that may be
            // missing), so fuzzed rules on User are compared too.
            user: img.as_deref(),
        },
    );
    want.sort_unstable();
    let ids = |ev: &Event<'_>, scratch: &mut Scratch| -> Vec<u32> {
        let mut ids = Vec::new();
        file.for_each_match(ev, scratch, |r| {
            ids.push(r.id());
            ControlFlow::Continue(())
        });
        ids
    };
    let ev16 = Event {
        pipe_name: Text::Utf16(units),
        image: image.map(Text::Utf16),
        pid,
        kind,
        user: image.map(Text::Utf16),
    };
    let got = ids(&ev16, scratch);
    assert_eq!(
        got, want,
        "kernel (UTF-16) vs reference: name {name:?} image {img:?} pid {pid} kind {kind:?}\nrules: {set:#?}"
    );
    let ev8 = Event {
        pipe_name: Text::Utf8(&name),
        image: img.as_deref().map(Text::Utf8),
        pid,
        kind,
        user: img.as_deref().map(Text::Utf8),
    };
    assert_eq!(
        ids(&ev8, scratch),
        want,
        "kernel (UTF-8) vs reference: name {name:?} image {img:?}\nrules: {set:#?}"
    );
}
