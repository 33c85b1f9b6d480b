//! Replays the inputs kept in `tests/fuzz_regressions/`: minimized crashes and
//! other findings of the fuzz targets (see `docs/fuzzing.md`), plus inputs
//! that exercise a fixed corner. Each file is what the `parse` target takes:
//! a channel file, optionally followed by a pipe name in UTF-16LE after the
//! header's total length. Every file must parse or be rejected without a
//! panic; a file that parses is matched against its trailing name and names
//! built from its own atoms, as UTF-16 and UTF-8, and both must agree.
//!
//! Under Miri this needs `-Zmiri-disable-isolation` (scripts/miri.sh sets it)
//! to list the directory.

use channel_parser::{parse, AtomKind, Capabilities, Event, EventKind, Scratch, Text};
use std::ops::ControlFlow;
use std::path::PathBuf;

fn split(data: &[u8]) -> (&[u8], Vec<u16>) {
    let total = channel_format::header::TOTAL_LEN
        .get(data)
        .map(|t| t as usize);
    match total {
        Some(t) if t >= channel_format::header::LEN && t <= data.len() => {
            let (file, tail) = data.split_at(t);
            let units = tail
                .chunks(2)
                .map(|c| u16::from_le_bytes([c[0], *c.get(1).unwrap_or(&0)]))
                .collect();
            (file, units)
        }
        _ => (data, Vec::new()),
    }
}

fn ids(file: &channel_parser::ChannelFile<'_>, ev: &Event<'_>, s: &mut Scratch) -> Vec<u32> {
    let mut out = Vec::new();
    file.for_each_match(ev, s, |r| {
        out.push(r.index());
        ControlFlow::Continue(())
    });
    out
}

fn replay(data: &[u8]) -> Result<u32, channel_parser::ParseError> {
    let (file_bytes, name) = split(data);
    // Parse at an odd address: nothing in format 2 needs alignment.
    let mut owned: Vec<u8> = Vec::with_capacity(file_bytes.len() + 9);
    let pad = owned.as_ptr().align_offset(8).min(8) + 1;
    owned.resize(pad, 0);
    owned.extend_from_slice(file_bytes);
    let bytes = &owned[pad..];
    let file = parse(bytes, &Capabilities::SENSOR)?;
    let mut names: Vec<Vec<u16>> = vec![name, Vec::new(), "\\".encode_utf16().collect()];
    // At most a dozen names: the replay also runs under Miri.
    for r in file.rules().take(6) {
        for a in r.atoms().take(2) {
            if a.kind() != AtomKind::NUM_EQ {
                let t: String = a
                    .text()
                    .chars()
                    .filter(|c| !matches!(c, '*' | '?' | '\\'))
                    .collect();
                names.push(format!("x{}", t.to_lowercase()).encode_utf16().collect());
            }
        }
    }
    let mut scratch = Scratch::new();
    for n in &names {
        for kind in [EventKind::Create, EventKind::Connect] {
            let ev = Event {
                pipe_name: Text::Utf16(n),
                image: Some(Text::Utf16(n)),
                pid: 1,
                kind,
                user: None,
            };
            let got = ids(&file, &ev, &mut scratch);
            assert!(got.windows(2).all(|w| w[0] < w[1]));
            let v = file.evaluate(&ev, &mut scratch);
            assert_eq!(v.matched as usize, got.len());
            if let Ok(s) = String::from_utf16(n) {
                let ev8 = Event {
                    pipe_name: Text::Utf8(&s),
                    image: Some(Text::Utf8(&s)),
                    pid: 1,
                    kind,
                    user: None,
                };
                assert_eq!(
                    ids(&file, &ev8, &mut scratch),
                    got,
                    "UTF-8 vs UTF-16 for {s:?}"
                );
            }
        }
    }
    Ok(file.rule_count())
}

#[test]
fn fuzz_regressions_replay() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz_regressions");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("tests/fuzz_regressions")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "bin"))
        .collect();
    files.sort();
    assert!(
        !files.is_empty(),
        "no regression inputs in {}",
        dir.display()
    );
    for f in &files {
        let data = std::fs::read(f).unwrap();
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        // The wide set (83 rules, two scratch windows) takes minutes under
        // Miri; it runs under plain `cargo test`.
        if cfg!(miri) && name.starts_with("ok-wide") {
            continue;
        }
        let res = replay(&data);
        // The file name says what is expected: `ok-*` parses, `err-<kind>-*`
        // is rejected with that ParseError::kind().
        if let Some(rest) = name.strip_prefix("err-") {
            let e = res.expect_err(&name);
            assert!(rest.starts_with(e.kind()), "{name}: rejected as {e:?}");
        } else if name.starts_with("ok-") {
            res.unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }
}
