//! Frozen compatibility files (`tests/compat/`, see its README).
//!
//! - Format 1 (`tests/compat/*.sys`, written before the layout moved into
//!   `channel-format`): today's parser reads format 2 only and must refuse
//!   every format-1 file with `UnsupportedVersion` naming version 1 — never
//!   misread it.
//! - Format 2 (`tests/compat/format2/*.sys`, the same rules and options):
//!   every file must parse, and what the parser reads from it — header,
//!   section table, rollout policy, every rule, atom and program, and the
//!   verdict for every event of `events.tsv` (UTF-8 and UTF-16, aligned and
//!   not) — must equal `format2/expected.txt`.
//! - User (field 5, added with format 2 on the merged branch):
//!   `format2/C-00000291-00000005.sys`, compiled from `rules-user/`, holds
//!   all three prefilter automata (User eager, Image lazy) and is read with
//!   the events of `events-user.tsv` (a fifth column: the user SID). It has
//!   no format-1 counterpart. `format2/C-00000291-00000006.sys` is the same
//!   rules written by a later compiler (a field test's values without
//!   repeats); both are read.
//! - Across the formats: every event's verdict read from a format-2 file
//!   equals the verdict the format-1 parser read from the format-1 file of
//!   the same sequence (`expected.txt`, frozen): the format changed, the
//!   meaning of the rules did not.
//!
//! A change that alters how format 2 is read fails here even when the writer
//! changes with it (the writer side is `pipectl/tests/compat.rs`: today's
//! `pipectl compile` reproduces the format-2 files byte for byte).
//!
//! `COMPAT_BLESS=1 cargo test -p channel-parser --test compat` rewrites
//! `format2/expected.txt`. Only do that for a new file added to the set,
//! never to make a frozen file read differently.

use channel_parser::{
    parse, AtomKind, Capabilities, ChannelFile, Event, EventKind, ParseError, Scratch, Text,
};
use std::fmt::Write as _;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/compat")
}

fn dir2() -> PathBuf {
    dir().join("format2")
}

/// The compatibility files of `dir`, in name order.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
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
    /// The user SID; `None` in event lists without a user column (which
    /// give no event a user and render as they always did).
    user: Option<Option<String>>,
}

/// The events of `events.tsv` (every file compiled from `rules/`).
fn events() -> Vec<Ev> {
    events_in("events.tsv", 4)
}

/// The format-2 files compiled from `rules-user/` (User, field 5), which
/// have no format-1 counterpart and are read with `events-user.tsv`.
const USER_FILES: &[&str] = &["C-00000291-00000005.sys", "C-00000291-00000006.sys"];

fn is_user_file(p: &Path) -> bool {
    USER_FILES
        .iter()
        .any(|n| p.file_name().is_some_and(|f| f == *n))
}

/// The events a frozen format-2 file is read with.
fn events_for(p: &Path) -> Vec<Ev> {
    if is_user_file(p) {
        events_in("events-user.tsv", 5)
    } else {
        events()
    }
}

/// Tab-separated events: kind, pid, name, image (`-` none) and, with 5
/// columns, the user SID (`-` none).
fn events_in(file: &str, columns: usize) -> Vec<Ev> {
    let text = std::fs::read_to_string(dir().join(file)).expect(file);
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            assert_eq!(f.len(), columns, "{file}: {l:?}");
            Ev {
                kind: match f[0] {
                    "create" => EventKind::Create,
                    "connect" => EventKind::Connect,
                    k => panic!("{file}: kind {k:?}"),
                },
                pid: f[1].parse().expect("pid"),
                name: f[2].to_string(),
                image: (f[3] != "-").then(|| f[3].to_string()),
                user: f.get(4).map(|u| (*u != "-").then(|| u.to_string())),
            }
        })
        .collect()
}

/// A copy of `bytes` at an address `8k + skew`: the storage and the offset
/// where the copy starts. The parser reads every value byte by byte, so the
/// skew must change nothing.
fn placed(bytes: &[u8], skew: usize) -> (Vec<u8>, usize) {
    let mut owned: Vec<u8> = Vec::with_capacity(bytes.len() + 16);
    let pad = owned.as_ptr().align_offset(8).min(8) + skew;
    owned.resize(pad, 0);
    owned.extend_from_slice(bytes);
    (owned, pad)
}

/// Matched rule ids and the best rule's id, asserting that every way of
/// asking (UTF-8 / UTF-16, `evaluate` / `for_each_match`) agrees.
fn decide(f: &ChannelFile<'_>, ev: &Ev, scratch: &mut Scratch) -> String {
    let name16: Vec<u16> = ev.name.encode_utf16().collect();
    let image16: Option<Vec<u16>> = ev.image.as_ref().map(|i| i.encode_utf16().collect());
    let mut seen: Option<String> = None;
    for utf16 in [false, true] {
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
            user: ev.user.as_ref().and_then(|u| u.as_deref()).map(Text::Utf8),
        };
        let mut ids = Vec::new();
        f.for_each_match(&e, scratch, |r| {
            ids.push(r.id());
            ControlFlow::Continue(())
        });
        let v = f.evaluate(&e, scratch);
        assert_eq!(v.matched as usize, ids.len());
        let line = format!(
            "matched {ids:?} best {} blocks {}",
            v.best.map_or("-".to_string(), |r| r.id().to_string()),
            v.blocks()
        );
        match &seen {
            None => seen = Some(line),
            Some(s) => assert_eq!(s, &line, "{:?}: utf16 {utf16}", ev.name),
        }
    }
    seen.unwrap_or_default()
}

/// Everything the parser reads from one file, as text.
fn render(path: &Path, evs: &[Ev], skew: usize) -> String {
    let raw = std::fs::read(path).expect("compat file");
    let (owned, pad) = placed(&raw, skew);
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
        "counts rules {} atoms {} dfas {} range tables {} always {}",
        f.rule_count(),
        f.atom_count(),
        f.dfa_count(),
        f.dfa_range_table_count(),
        f.always_count()
    )
    .unwrap();
    for ((field, states, outputs), (_, _, dense, classes, lazy)) in
        f.prefilter_stats().zip(f.prefilter_shape())
    {
        writeln!(
            o,
            "prefilter {field} states {states} outputs {outputs} dense {dense} classes {classes} lazy {lazy}"
        )
        .unwrap();
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
                "  atom {} rule {} field {} kind {} flags {:#x} prefiltered {} gate {} arg {} text {:?}",
                a.index(),
                a.rule_index(),
                a.field(),
                a.kind(),
                a.flags(),
                a.prefiltered(),
                a.gate(),
                a.arg(),
                a.text()
            )
            .unwrap();
            assert!(a.kind() != AtomKind::NUM_EQ || a.text().is_empty());
        }
        assert_eq!(f.rule_by_id(r.id()).map(|x| x.index()), Some(r.index()));
    }
    let mut scratch = Scratch::new();
    for (i, ev) in evs.iter().enumerate() {
        let user = match &ev.user {
            Some(u) => format!(" user {u:?}"),
            None => String::new(),
        };
        writeln!(
            o,
            "event {i} {:?} pid {} {:?} image {:?}{user}: {}",
            ev.kind,
            ev.pid,
            ev.name,
            ev.image,
            decide(&f, ev, &mut scratch)
        )
        .unwrap();
    }
    o
}

/// The `event` lines of a rendering, per file.
fn event_lines(rendering: &str) -> Vec<Vec<&str>> {
    let mut files: Vec<Vec<&str>> = Vec::new();
    for l in rendering.lines() {
        if l.starts_with("file ") {
            files.push(Vec::new());
        } else if l.starts_with("event ") {
            if let Some(f) = files.last_mut() {
                f.push(l);
            }
        }
    }
    files
}

#[test]
fn format_1_files_are_refused_naming_their_version() {
    let files = files(&dir());
    assert!(
        files.len() >= 4,
        "format-1 files missing from {}",
        dir().display()
    );
    for p in &files {
        let raw = std::fs::read(p).expect("compat file");
        let (owned, pad) = placed(&raw, 0);
        match parse(&owned[pad..], &Capabilities::SENSOR_V1) {
            Err(e @ ParseError::UnsupportedVersion { found: 1, .. }) => {
                let msg = e.to_string();
                assert!(
                    msg.contains("unsupported format version 1 (this sensor reads version 2)"),
                    "{}: {msg}",
                    p.display()
                );
                assert_eq!(e.kind(), "unsupported-version");
            }
            other => panic!("{}: {other:?}", p.display()),
        }
    }
}

#[test]
fn frozen_format_2_files_read_as_they_always_did() {
    let files = files(&dir2());
    assert!(
        files.len() >= 4 + USER_FILES.len(),
        "compat files missing from {}",
        dir2().display()
    );
    assert!(files.iter().filter(|p| is_user_file(p)).count() == USER_FILES.len());
    // Under Miri one file and a few events (the full set takes many minutes).
    let files = if cfg!(miri) { &files[..1] } else { &files[..] };
    let read = |skew: usize| -> String {
        files
            .iter()
            .map(|p| {
                let evs = events_for(p);
                let evs = if cfg!(miri) { &evs[..2] } else { &evs[..] };
                render(p, evs, skew)
            })
            .collect()
    };
    let got = read(0);
    // Not 4-aligned: the same reading.
    if !cfg!(miri) {
        let skewed = read(1);
        assert!(
            got == skewed,
            "a file reads differently from an odd address"
        );
    }
    let expected_path = dir2().join("expected.txt");
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
            "a frozen format-2 file reads differently ({} vs {} lines):\n{}",
            got.lines().count(),
            want.lines().count(),
            diff.join("\n")
        );
    }
}

#[test]
#[cfg_attr(miri, ignore = "every event of every file: minutes under Miri")]
fn format_2_decides_every_event_as_format_1_did() {
    let evs = events();
    let got: String = files(&dir2())
        .iter()
        .filter(|p| !is_user_file(p))
        .map(|p| render(p, &evs, 0))
        .collect();
    let v1 = std::fs::read_to_string(dir().join("expected.txt")).expect("expected.txt");
    let (got, want) = (event_lines(&got), event_lines(&v1));
    assert_eq!(got.len(), want.len(), "one format-2 file per format-1 file");
    assert!(want.iter().all(|f| f.len() == evs.len()));
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        for (g, w) in g.iter().zip(w) {
            assert_eq!(g, w, "file {i}: format 2 decides differently");
        }
    }
}
