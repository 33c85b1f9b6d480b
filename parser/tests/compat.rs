//! Frozen compatibility files (`tests/compat/`, see its README): channel
//! files written by the format-1 writer before the layout moved into
//! `channel-format`, read by today's parser. Every file must parse, and what
//! the parser reads from it — header, section table, rollout policy, every
//! rule, atom and program, and the verdict for every event of
//! `events.tsv` (UTF-8 and UTF-16, with and without loaded DFAs) — must equal
//! `expected.txt`, which the parser of that time produced.
//!
//! A change that alters how format 1 is read fails here even when the writer
//! changes with it (the writer side is `pipectl/tests/compat.rs`: today's
//! `pipectl compile` reproduces these files byte for byte).
//!
//! `COMPAT_BLESS=1 cargo test -p channel-parser --test compat` rewrites
//! `expected.txt`. Only do that for a new file added to the set, never to make
//! a format-1 file read differently.

use channel_parser::{
    parse, AtomKind, Capabilities, ChannelFile, DfaSlot, Event, EventKind, Scratch, Text,
};
use std::fmt::Write as _;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/compat")
}

/// The compatibility files, in name order.
fn files() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir())
        .expect("tests/compat")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "sys"))
        .collect();
    v.sort();
    v
}

struct Ev {
    kind: EventKind,
    pid: u32,
    name: String,
    image: Option<String>,
}

fn events() -> Vec<Ev> {
    let text = std::fs::read_to_string(dir().join("events.tsv")).expect("events.tsv");
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            assert_eq!(f.len(), 4, "events.tsv: {l:?}");
            Ev {
                kind: match f[0] {
                    "create" => EventKind::Create,
                    "connect" => EventKind::Connect,
                    k => panic!("events.tsv: kind {k:?}"),
                },
                pid: f[1].parse().expect("events.tsv: pid"),
                name: f[2].to_string(),
                image: (f[3] != "-").then(|| f[3].to_string()),
            }
        })
        .collect()
}

/// A copy of `bytes` at an 8-aligned address (DFAs are read in place):
/// the storage and the offset where the copy starts.
fn aligned(bytes: &[u8]) -> (Vec<u8>, usize) {
    let mut owned: Vec<u8> = Vec::with_capacity(bytes.len() + 8);
    let pad = owned.as_ptr().align_offset(8).min(8);
    owned.resize(pad, 0);
    owned.extend_from_slice(bytes);
    (owned, pad)
}

/// Matched rule ids and the best rule's id, asserting that every way of
/// asking (UTF-8 / UTF-16, DFAs loaded or not, `evaluate` / `for_each_match`)
/// agrees.
fn decide(f: &ChannelFile<'_>, slots: &[DfaSlot<'_>], ev: &Ev, scratch: &mut Scratch) -> String {
    let name16: Vec<u16> = ev.name.encode_utf16().collect();
    let image16: Option<Vec<u16>> = ev.image.as_ref().map(|i| i.encode_utf16().collect());
    let mut seen: Option<String> = None;
    for utf16 in [false, true] {
        for dfas in [&[][..], slots] {
            let e = Event {
                pipe_name: if utf16 {
                    Text::Utf16(&name16)
                } else {
                    Text::Utf8(&ev.name)
                },
                image: if utf16 {
                    image16.as_deref().map(Text::Utf16)
                } else {
                    ev.image.as_deref().map(Text::Utf8)
                },
                pid: ev.pid,
                kind: ev.kind,
                user: None,
            };
            let mut ids = Vec::new();
            f.for_each_match_with(&e, scratch, dfas, |r| {
                ids.push(r.id());
                ControlFlow::Continue(())
            });
            let v = f.evaluate_with(&e, scratch, dfas);
            assert_eq!(v.matched as usize, ids.len());
            let line = format!(
                "matched {ids:?} best {} blocks {}",
                v.best.map_or("-".to_string(), |r| r.id().to_string()),
                v.blocks()
            );
            match &seen {
                None => seen = Some(line),
                Some(s) => assert_eq!(
                    s,
                    &line,
                    "{:?}: utf16 {utf16}, dfas {}",
                    ev.name,
                    dfas.len()
                ),
            }
        }
    }
    seen.unwrap_or_default()
}

/// Everything the parser reads from one file, as text.
fn render(path: &Path, evs: &[Ev]) -> String {
    let raw = std::fs::read(path).expect("compat file");
    let (owned, pad) = aligned(&raw);
    let f = parse(&owned[pad..], &Capabilities::SENSOR)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut o = String::new();
    let name = path.file_name().unwrap().to_string_lossy();
    let h = f.header();
    writeln!(o, "file {name}").unwrap();
    writeln!(
        o,
        "header format {}.{} channel {} required {:#x} optional {:#x} sequence {} total {} sections {}",
        h.format_major,
        h.format_minor,
        h.channel,
        h.required_flags,
        h.optional_flags,
        h.sequence,
        h.total_len,
        h.section_count
    )
    .unwrap();
    for s in f.sections() {
        writeln!(
            o,
            "section {} flags {:#x} offset {} len {}",
            s.kind, s.flags, s.offset, s.len
        )
        .unwrap();
    }
    writeln!(o, "rollout {:?}", f.rollout()).unwrap();
    writeln!(
        o,
        "counts rules {} atoms {} dfas {} always {}",
        f.rule_count(),
        f.atom_count(),
        f.dfa_count(),
        f.always_count()
    )
    .unwrap();
    for (field, states, outputs) in f.prefilter_stats() {
        writeln!(o, "prefilter {field} states {states} outputs {outputs}").unwrap();
    }
    for r in f.rules() {
        let fields: Vec<String> = r.fields().map(|x| x.to_string()).collect();
        let prog: String = r.program().iter().map(|b| format!("{b:02x}")).collect();
        writeln!(
            o,
            "rule {} id {} {:?} severity {} action {} always {} fields {fields:?} program {prog}",
            r.index(),
            r.id(),
            r.name(),
            r.severity(),
            r.action(),
            r.always_evaluated()
        )
        .unwrap();
        for a in r.atoms() {
            writeln!(
                o,
                "  atom {} rule {} field {} kind {} flags {:#x} prefiltered {} arg {} text {:?}",
                a.index(),
                a.rule_index(),
                a.field(),
                a.kind(),
                a.flags(),
                a.prefiltered(),
                a.arg(),
                a.text()
            )
            .unwrap();
            assert!(a.kind() != AtomKind::NUM_EQ || a.text().is_empty());
        }
        assert_eq!(f.rule_by_id(r.id()).map(|x| x.index()), Some(r.index()));
    }
    let mut slots = vec![DfaSlot::EMPTY; f.dfa_count() as usize];
    let loaded = f.load_dfas(&mut slots);
    writeln!(o, "dfas loaded {loaded}").unwrap();
    let mut scratch = Scratch::new();
    for (i, ev) in evs.iter().enumerate() {
        writeln!(
            o,
            "event {i} {:?} pid {} {:?} image {:?}: {}",
            ev.kind,
            ev.pid,
            ev.name,
            ev.image,
            decide(&f, &slots, ev, &mut scratch)
        )
        .unwrap();
    }
    o
}

#[test]
fn frozen_format_1_files_read_as_they_always_did() {
    let evs = events();
    let files = files();
    assert!(
        files.len() >= 4,
        "compat files missing from {}",
        dir().display()
    );
    // Under Miri one file and a few events (the full set takes many minutes).
    let (files, evs) = if cfg!(miri) {
        (&files[..1], &evs[..2])
    } else {
        (&files[..], &evs[..])
    };
    let got: String = files.iter().map(|p| render(p, evs)).collect();
    let expected_path = dir().join("expected.txt");
    if std::env::var_os("COMPAT_BLESS").is_some() && !cfg!(miri) {
        std::fs::write(&expected_path, &got).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&expected_path).expect("expected.txt");
    // Under Miri the rendering of the first file with the first events is a
    // prefix of the full expectation.
    let want: String = if cfg!(miri) {
        want.split_inclusive('\n')
            .take(got.lines().count())
            .collect()
    } else {
        want
    };
    if got != want {
        let diff: Vec<String> = got
            .lines()
            .zip(want.lines())
            .filter(|(g, w)| g != w)
            .take(10)
            .map(|(g, w)| format!("  got:      {g}\n  expected: {w}"))
            .collect();
        panic!(
            "a frozen format-1 file reads differently ({} vs {} lines):\n{}",
            got.lines().count(),
            want.lines().count(),
            diff.join("\n")
        );
    }
}
