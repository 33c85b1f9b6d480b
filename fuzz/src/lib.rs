//! Fuzz harnesses for pipe-sensor. Each `pub fn` here is one cargo-fuzz
//! target (`fuzz_targets/<name>.rs` is a one-line wrapper), and returns
//! whether libFuzzer should keep the input in its corpus (`false`:
//! `Corpus::Reject`, for inputs that do not decode to anything the target
//! tests). Panics are the findings.
//!
//! The same functions replay regression inputs (`cargo test` in
//! `parser/tests/fuzz_regressions.rs` replays the raw-file ones without this
//! crate).

pub mod check;
pub mod gen;
pub mod mutate;
pub mod roundtrip;

use arbitrary::Unstructured;
use channel_format as fmt;
use channel_parser::{Capabilities, EventKind, Scratch};
use pipe_compiler::{compile, AlignedBytes, CompileErrorKind, CompileOptions};

/// Splits raw fuzzer input into a channel file and a trailing name: the file
/// is the first `total_len` bytes (header offset 32) when that fits, the rest
/// is the pipe name as UTF-16LE units.
pub fn split_file_and_name(data: &[u8]) -> (&[u8], Vec<u16>) {
    let total = fmt::header::TOTAL_LEN.get(data).map(|t| t as usize);
    match total {
        Some(t) if t >= fmt::header::LEN && t <= data.len() => {
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

/// Parses `file` at an aligned address and, if it is valid, runs the
/// matcher invariants on `extra` names and on names drawn from the file.
/// Returns whether the file parsed.
pub fn parse_and_match(file: &[u8], extra: &[Vec<u16>]) -> bool {
    let aligned = AlignedBytes::new(file);
    let bytes = aligned.as_slice();
    let res = channel_parser::parse(bytes, &Capabilities::SENSOR);
    // The same bytes at an odd address: the identical result (every value
    // is read byte by byte; format 2 has no alignment requirement).
    let mut shifted = vec![0u8; file.len() + 1];
    shifted[1..].copy_from_slice(file);
    let res_odd = channel_parser::parse(&shifted[1..], &Capabilities::SENSOR);
    match (&res, &res_odd) {
        (Ok(_), Ok(_)) => {}
        (Err(a), Err(b)) => assert_eq!(
            (a.kind(), a.offset()),
            (b.kind(), b.offset()),
            "odd address: another error"
        ),
        (Ok(_), Err(e)) => panic!("accepted aligned but rejected at an odd address: {e:?}"),
        (Err(e), Ok(_)) => panic!("rejected aligned ({e:?}) but accepted at an odd address"),
    }
    // The Channel File 291 case: a sensor supplying fewer fields, and
    // stricter limits derived from the input (exact-limit and limit+1 paths).
    let narrow = channel_parser::Capabilities::from_fields(&[channel_parser::FieldId::PIPE_NAME]);
    if let Err(e) = channel_parser::parse(bytes, &narrow) {
        let _ = (e.to_string(), e.offset(), e.kind());
    }
    let k = |i: usize| u32::from(*file.get(i).unwrap_or(&0));
    let tight = channel_parser::Limits {
        max_file_len: u32::try_from(file.len())
            .unwrap_or(u32::MAX)
            .saturating_sub(k(1) % 2),
        max_sections: k(36).min(12),
        max_rules: k(2) % 16,
        max_atoms_per_rule: k(3) % 8,
        max_atoms: k(4) % 32,
        max_program_len: k(5) % 64,
        max_stack_depth: k(6) % 8,
        max_string_len: k(7) % 64,
        max_dfas: k(8) % 4,
        max_dfa_len: k(9) << 8,
        max_dfa_total: k(13) << 9,
        max_states: k(10) % 64,
        max_literal_len: k(11) % 32,
        max_fields_per_rule: k(12) % 4,
    };
    if let Err(e) = channel_parser::parse_with_limits(bytes, &Capabilities::SENSOR, &tight) {
        let _ = (e.to_string(), e.offset(), e.kind());
    }
    let Ok(cf) = res else { return false };
    let _ = (
        cf.header(),
        cf.sequence(),
        cf.bytes().len(),
        cf.atom_count(),
        cf.dfa_count(),
    );
    let _ = (cf.always_count(), cf.prefilter_stats().count());
    for s in cf.sections() {
        let _ = (s.kind, s.flags, s.offset, s.len);
    }
    assert!(cf.rule(cf.rule_count()).is_none());
    // Every error path must be Display-able without panicking; Ok files:
    // accessors must not panic either.
    for r in cf.rules() {
        let _ = (r.id(), r.name(), r.severity(), r.action(), r.program());
        let _ = r.fields().count();
        for a in r.atoms() {
            let _ = (a.kind(), a.text(), a.arg(), a.flags(), a.rule_index());
        }
        assert_eq!(cf.rule_by_id(r.id()).map(|x| x.index()), Some(r.index()));
    }
    let _ = cf.sections().count();
    let mut scratch = Scratch::new();
    let mut names: Vec<Vec<u16>> = extra.to_vec();
    names.extend(check::names_from_file(&cf, 12));
    names.push("\\".encode_utf16().collect());
    names.push(Vec::new());
    for (i, n) in names.iter().enumerate() {
        let image = names.get(names.len() - 1 - i).map(Vec::as_slice);
        for kind in [EventKind::Create, EventKind::Connect] {
            check::matcher_invariants(&cf, n, image, i as u32 % 4, kind, &mut scratch);
        }
    }
    // The file read from the odd address decides every name the same.
    if let Ok(odd) = &res_odd {
        for n in &names {
            let ev = channel_parser::Event {
                pipe_name: channel_parser::Text::Utf16(n),
                image: None,
                pid: 0,
                kind: EventKind::Create,
                user: None,
            };
            assert_eq!(
                check::kernel_indices(odd, &ev, &mut scratch),
                check::kernel_indices(&cf, &ev, &mut scratch),
                "odd address: another verdict"
            );
        }
    }
    true
}

/// `parse`: raw bytes. Keeps every input (rejections are code paths too).
pub fn parse(data: &[u8]) -> bool {
    let (file, name) = split_file_and_name(data);
    if let Err(e) = channel_parser::parse(file, &Capabilities::SENSOR) {
        let _ = (e.to_string(), e.offset(), e.kind());
    }
    let extra = if name.is_empty() { vec![] } else { vec![name] };
    parse_and_match(file, &extra);
    true
}

/// Builds a header (magic, version, channel 291, lengths) in front of a
/// section table described compactly by the input, so that the fuzzer's
/// bytes land in section bodies.
///
/// Input: `n` (one byte, mod 13), then `n` descriptors of 4 bytes (kind u8,
/// flags u8, length u16), then the bodies, each cut from the remaining
/// input in turn (zero-filled when the input runs out).
pub fn frame(data: &[u8]) -> Vec<u8> {
    let n = data.first().map_or(0, |b| (b % 13) as usize);
    let desc_end = (1 + 4 * n).min(data.len());
    let desc = &data[1.min(data.len())..desc_end];
    let mut rest = &data[desc_end..];
    let mut layout = mutate::Layout {
        header: header_bytes(),
        sections: Vec::new(),
        order: Vec::new(),
    };
    for (i, d) in desc.chunks(4).enumerate() {
        let kind = u32::from(d[0] % 16);
        let flags = u32::from(*d.get(1).unwrap_or(&0) % 4);
        let len = u16::from_le_bytes([*d.get(2).unwrap_or(&0), *d.get(3).unwrap_or(&0)]) as usize;
        let take = len.min(rest.len());
        let mut body = rest[..take].to_vec();
        body.resize(len.min(1 << 16), 0);
        rest = &rest[take..];
        layout.sections.push((kind, flags, body));
        layout.order.push(i);
    }
    layout.join()
}

/// A valid version-1 header (lengths filled in by the layout).
pub fn header_bytes() -> Vec<u8> {
    fmt::HeaderRecord {
        magic: fmt::MAGIC,
        endian: fmt::ENDIAN_MARKER,
        header_len: fmt::HEADER_LEN,
        format_major: fmt::FORMAT_VERSION,
        format_minor: 0,
        channel: fmt::CHANNEL_PIPES,
        required_flags: 0,
        sequence: 1,
        total_len: 0,
        section_count: 0,
        optional_flags: 0,
        reserved: [0; 20],
    }
    .to_bytes()
    .to_vec()
}

/// `parse_framed`: see [`frame`].
pub fn parse_framed(data: &[u8]) -> bool {
    let file = frame(data);
    parse_and_match(&file, &[]);
    true
}

/// Generates and compiles a rule set (with the low-level writer, see
/// below); `None` when the bytes run out or the compiler refuses the set for
/// a documented reason. A compiler `Internal` error (its output failed the
/// parser) is a finding.
pub fn compiled(
    u: &mut Unstructured<'_>,
    o: &gen::GenOptions,
) -> Option<(pipe_compiler::model::RuleSet, Vec<u8>)> {
    let set = gen::gen_ruleset(u, o).ok()?;
    let mut opts = CompileOptions::default();
    if u.ratio(1, 4).ok()? {
        opts.rollout = Some(gen_rollout(u).ok()?);
    }
    if u.ratio(1, 4).ok()? {
        opts.enforcement = Some(gen_enforcement(u).ok()?);
    }
    // The low-level writer: generated block rules often match a protected
    // pipe, which `compile` refuses; the writer and the parser are what is
    // fuzzed here. The protected-set analysis runs on some of the files.
    let analyse = u.ratio(1, 8).ok()?;
    match pipe_compiler::compile_unchecked(&set, &opts) {
        Ok(bytes) => {
            if analyse {
                let aligned = AlignedBytes::new(&bytes);
                if let Ok(f) = channel_parser::parse(aligned.as_slice(), &Capabilities::SENSOR) {
                    let _ = pipe_compiler::protect::check_file(&f);
                }
            }
            // The policy reads back as written.
            let aligned = AlignedBytes::new(&bytes);
            if let Ok(f) = channel_parser::parse(aligned.as_slice(), &Capabilities::SENSOR) {
                // A policy with neither part is no policy.
                let want = opts
                    .rollout
                    .filter(|p| p.staged.is_some() || p.rollback_ceiling.is_some());
                assert_eq!(f.rollout(), want, "rollout policy round trip");
                // So does the enforcement policy (none when nothing is set).
                let want = opts
                    .enforcement
                    .filter(|e| *e != channel_parser::EnforcementPolicy::default());
                assert_eq!(f.enforcement(), want, "enforcement policy round trip");
            }
            Some((set, bytes))
        }
        Err(e) => {
            assert_ne!(
                e.kind,
                CompileErrorKind::Internal,
                "compiler bug: {e}\n{set:#?}"
            );
            None
        }
    }
}

/// A staged-rollout policy and/or rollback ceiling within the format's ranges.
fn gen_rollout(u: &mut Unstructured<'_>) -> arbitrary::Result<channel_parser::RolloutPolicy> {
    let staged = if u.arbitrary()? {
        Some(channel_parser::Staging {
            ring: channel_parser::Ring(u.int_in_range(0..=2)?),
            percent_milli: u.int_in_range(0..=100_000)?,
            not_before: u.arbitrary()?,
        })
    } else {
        None
    };
    let rollback_ceiling = if u.arbitrary()? {
        Some(u.arbitrary()?)
    } else {
        None
    };
    Ok(channel_parser::RolloutPolicy {
        staged,
        rollback_ceiling,
    })
}

fn gen_enforcement(
    u: &mut Unstructured<'_>,
) -> arbitrary::Result<channel_parser::EnforcementPolicy> {
    use channel_format as fmt;
    let limit = |u: &mut Unstructured<'_>, max: u32| -> arbitrary::Result<_> {
        Ok(if u.arbitrary()? {
            Some(channel_parser::BreakerLimit {
                denies: u.int_in_range(1..=max)?,
                window_secs: u.int_in_range(1..=fmt::MAX_BREAKER_WINDOW_SECS)?,
            })
        } else {
            None
        })
    };
    let monitor_first = if u.arbitrary()? {
        let mut p = [0u32; 3];
        for s in &mut p {
            *s = u.int_in_range(0..=fmt::MAX_MONITOR_FIRST_SECS)?;
        }
        Some(p)
    } else {
        None
    };
    Ok(channel_parser::EnforcementPolicy {
        monitor_first,
        rule_breaker: limit(u, fmt::MAX_RULE_BREAKER_DENIES)?,
        machine_breaker: limit(u, fmt::MAX_MACHINE_BREAKER_DENIES)?,
    })
}

/// `structured`: an arbitrary rule set, compiled, mutated with the framing
/// kept consistent, parsed and matched.
pub fn structured(data: &[u8]) -> bool {
    let mut u = Unstructured::new(data);
    let o = gen::GenOptions {
        chars: gen::Chars::Any,
        max_rules: 8,
        regex: u.ratio(1, 4).unwrap_or(false),
    };
    let Some((set, bytes)) = compiled(&mut u, &o) else {
        return false;
    };
    let Some(mut layout) = mutate::Layout::split(&bytes) else {
        panic!("compiler output has unreadable framing");
    };
    let Ok(mutated) = mutate::mutate(&mut u, &mut layout) else {
        return false;
    };
    let mut names = Vec::new();
    for _ in 0..3 {
        match gen::gen_name(&mut u, &set, gen::Chars::Any) {
            Ok(n) => names.push(n),
            Err(_) => break,
        }
    }
    parse_and_match(&mutated, &names);
    true
}

/// `differential`: kernel matcher vs the `regex`-based reference on random
/// rule sets and names: verdicts must agree.
pub fn differential(data: &[u8]) -> bool {
    let mut u = Unstructured::new(data);
    let o = gen::GenOptions {
        chars: gen::Chars::Small,
        max_rules: 12,
        regex: u.ratio(1, 3).unwrap_or(false),
    };
    let Some((set, bytes)) = compiled(&mut u, &o) else {
        return false;
    };
    let aligned = AlignedBytes::new(&bytes);
    let file = match channel_parser::parse(aligned.as_slice(), &Capabilities::SENSOR) {
        Ok(f) => f,
        Err(e) => panic!("compiled file rejected: {e}"),
    };
    let mut scratch = Scratch::new();
    // Hits every literal of the wide sets (see gen::gen_wide) at once.
    let all: Vec<u16> = "\\aabbaab".encode_utf16().collect();
    check::compare_with_reference(
        &set,
        &file,
        &all,
        Some(&all),
        1,
        EventKind::Create,
        &mut scratch,
    );
    for _ in 0..8 {
        let Ok(name) = gen::gen_name(&mut u, &set, gen::Chars::Small) else {
            break;
        };
        let image = match u.int_in_range(0..=2u8) {
            Ok(0) => None,
            Ok(1) => Some(name.clone()),
            _ => gen::gen_name(&mut u, &set, gen::Chars::Small).ok(),
        };
        let pid = u.int_in_range(0..=3).unwrap_or(0);
        let kind = if u.arbitrary().unwrap_or(false) {
            EventKind::Connect
        } else {
            EventKind::Create
        };
        check::compare_with_reference(
            &set,
            &file,
            &name,
            image.as_deref(),
            pid,
            kind,
            &mut scratch,
        );
    }
    true
}

/// `roundtrip`: see [`roundtrip::check`].
pub fn roundtrip(data: &[u8]) -> bool {
    let mut u = Unstructured::new(data);
    let o = gen::GenOptions {
        chars: gen::Chars::Any,
        max_rules: 16,
        regex: u.ratio(1, 4).unwrap_or(false),
    };
    let Some((set, bytes)) = compiled(&mut u, &o) else {
        return false;
    };
    roundtrip::check(&set, &bytes);
    true
}

/// Compiles what an importer produced and, when it compiles, checks the
/// rules' embedded test cases on the kernel matcher against the reference.
fn compile_imported(rules: Vec<pipe_compiler::model::Rule>) {
    let set = pipe_compiler::model::RuleSet { rules };
    let Ok(bytes) = compile(&set, &CompileOptions::default()).map_err(|e| {
        assert_ne!(e.kind, CompileErrorKind::Internal, "compiler bug: {e}");
    }) else {
        return;
    };
    let aligned = AlignedBytes::new(&bytes);
    let file = channel_parser::parse(aligned.as_slice(), &Capabilities::SENSOR)
        .unwrap_or_else(|e| panic!("compiled file rejected: {e}"));
    let mut scratch = Scratch::new();
    for rule in &set.rules {
        for case in rule.tests.iter().take(8) {
            let ev = test_kit::cases::CaseEvent::of(case);
            check::compare_with_reference(
                &set,
                &file,
                ev.name(),
                ev.image(),
                0,
                ev.kind,
                &mut scratch,
            );
        }
    }
}

fn import_yaml(data: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(data) else {
        return false;
    };
    match pipe_compiler::import::load_yaml(std::path::Path::new("fuzz.yml"), text) {
        Ok(rules) => compile_imported(rules),
        Err(errors) => {
            for e in errors {
                let _ = e.to_string();
            }
        }
    }
    true
}

/// `import_native`: any text through the YAML importer (native unless it
/// has Sigma's `logsource:` and `detection:`); no panic, and what imports
/// compiles or fails with a documented error.
pub fn import_native(data: &[u8]) -> bool {
    import_yaml(data)
}

/// `import_sigma`: as [`import_native`], seeded with the Sigma corpus.
pub fn import_sigma(data: &[u8]) -> bool {
    import_yaml(data)
}

/// `import_sysmon`: any text through the Sysmon config importer.
pub fn import_sysmon(data: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(data) else {
        return false;
    };
    let files = [(std::path::PathBuf::from("fuzz.xml"), text.to_string())];
    match pipe_compiler::import::sysmon::import(&files, &Default::default()) {
        Ok(rules) => compile_imported(rules),
        Err(errors) => {
            for e in errors {
                let _ = e.to_string();
            }
        }
    }
    true
}

/// `ioctl`: the control device's request decoder (sensor-core) and the
/// response decoders `pipectl` uses; whatever decodes re-encodes to bytes
/// that decode to the same value.
pub fn ioctl(data: &[u8]) -> bool {
    ioctl_impl::run(data);
    true
}

mod ioctl_impl;
