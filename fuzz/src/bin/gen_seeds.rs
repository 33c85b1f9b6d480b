//! Writes the seed corpora of every fuzz target (run by `fuzz/seeds.sh`):
//!
//! * `parse`: channel files compiled from the vendored Sigma rules, from each
//!   vendored Sysmon config (`third_party/`), from the documented native example and from generated rule
//!   sets, each followed by a pipe name (UTF-16LE) after `total_len`;
//! * `parse_framed`: the same files in the framed encoding (section
//!   descriptors + bodies, see `pipe_sensor_fuzz::frame`);
//! * `structured`, `differential`, `roundtrip`: deterministic pseudo-random
//!   byte strings (they decode to rule sets through `arbitrary`);
//! * `import_native`, `import_sigma`, `import_sysmon`: the rule sources;
//! * `ioctl`: one encoded request of each kind.
//!
//! Usage: `gen-seeds <out dir> <repository root> <docs/rules.md>`.
//! Deterministic: the same inputs produce the same files.

use pipe_compiler::import::load_paths;
use pipe_compiler::{compile, CompileOptions};
use sensor_core::proto;
use std::fs;
use std::path::{Path, PathBuf};

/// xorshift64*: deterministic bytes without a dependency.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

fn write(dir: &Path, name: &str, bytes: &[u8]) {
    fs::create_dir_all(dir).expect("create dir");
    fs::write(dir.join(name), bytes).expect("write seed");
}

fn with_name(file: &[u8], name: &str) -> Vec<u8> {
    let mut v = file.to_vec();
    for u in name.encode_utf16() {
        v.extend_from_slice(&u.to_le_bytes());
    }
    v
}

/// The framed encoding of a file whose sections are all shorter than 64 KiB.
fn framed(file: &[u8]) -> Option<Vec<u8>> {
    let l = pipe_sensor_fuzz::mutate::Layout::split(file)?;
    let n = l.sections.len();
    if n > 12 {
        return None;
    }
    let mut out = vec![n as u8];
    for (kind, flags, body) in &l.sections {
        out.push(u8::try_from(*kind).ok()?);
        out.push(u8::try_from(*flags).ok()?);
        out.extend_from_slice(&u16::try_from(body.len()).ok()?.to_le_bytes());
    }
    for (_, _, body) in &l.sections {
        out.extend_from_slice(body);
    }
    Some(out)
}

fn documented_example(rules_md: &Path) -> Option<String> {
    let doc = fs::read_to_string(rules_md).ok()?;
    let start = doc.find("### Complete example")?;
    let fence = start + doc[start..].find("```yaml\n")? + "```yaml\n".len();
    let end = fence + doc[fence..].find("```")?;
    Some(doc[fence..end].to_string())
}

fn main() {
    let args: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    let [out, root, rules_md] = args.as_slice() else {
        eprintln!("usage: gen-seeds <out dir> <repository root> <docs/rules.md>");
        std::process::exit(2);
    };
    let d = |t: &str| out.join(t);
    let mut files: Vec<(String, Vec<u8>)> = Vec::new();

    // The vendored third-party rules (third_party/README.md).
    let sigma_dir = root.join("third_party/sigma/rules/windows/pipe_created");
    let sigma = load_paths(std::slice::from_ref(&sigma_dir)).expect("sigma rules import");
    files.push((
        "sigma".into(),
        compile(&sigma, &CompileOptions::default()).expect("sigma compiles"),
    ));
    let mut sysmon_paths: Vec<PathBuf> =
        fs::read_dir(root.join("third_party/sysmon-modular/17_18_pipe_event"))
            .expect("sysmon-modular modules")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
    sysmon_paths.push(root.join("third_party/sysmon-config/sysmonconfig-export.xml"));
    sysmon_paths.sort();
    for p in &sysmon_paths {
        let Ok(set) = load_paths(std::slice::from_ref(p)) else {
            continue;
        };
        if let Ok(bytes) = compile(&set, &CompileOptions::default()) {
            let stem = p.file_stem().unwrap_or_default().to_string_lossy();
            files.push((format!("sysmon-{stem}"), bytes));
        }
    }
    // Rules on `User` (the frozen compatibility set: exact, prefix,
    // contains and glob tests on SIDs, mapped well-known names): content
    // with the third prefilter slot.
    let user =
        load_paths(&[root.join("parser/tests/compat/rules-user")]).expect("user rules import");
    files.push((
        "user-rules".into(),
        compile(&user, &CompileOptions::default()).expect("user rules compile"),
    ));
    let example = documented_example(rules_md).expect("docs/rules.md complete example");
    let native = pipe_compiler::import::load_yaml(Path::new("rules.md"), &example)
        .expect("documented example imports");
    files.push((
        "native-example".into(),
        compile(
            &pipe_compiler::model::RuleSet { rules: native },
            &CompileOptions::default(),
        )
        .expect("documented example compiles"),
    ));
    // Small generated sets (the same generator as the structured targets).
    let mut rng = Rng(0x5eed_0291);
    let mut generated = 0;
    while generated < 24 {
        let bytes = rng.bytes(256);
        let mut u = arbitrary::Unstructured::new(&bytes);
        let o = pipe_sensor_fuzz::gen::GenOptions {
            chars: pipe_sensor_fuzz::gen::Chars::Small,
            max_rules: 4,
            regex: generated % 4 == 0,
        };
        if let Some((_, file)) = pipe_sensor_fuzz::compiled(&mut u, &o) {
            files.push((format!("generated-{generated:02}"), file));
            generated += 1;
        }
    }

    // A set whose literals one name hits more than the matcher's scratch
    // holds (256 distinct atoms): matching runs in rule windows.
    let wide_bytes = rng.bytes(4096);
    let mut wide = pipe_sensor_fuzz::gen::gen_wide(&mut arbitrary::Unstructured::new(&wide_bytes))
        .expect("wide set");
    // Its block rules on one-letter literals would match protected pipes
    // (`\lsass`), which the compiler refuses; the seed needs only the width.
    for r in &mut wide.rules {
        r.action = channel_format::Action::ALERT;
    }
    let wide_file = compile(&wide, &CompileOptions::default()).expect("wide set compiles");
    {
        use channel_parser::{Capabilities, Event, EventKind, Scratch, Text};
        let aligned = pipe_compiler::AlignedBytes::new(&wide_file);
        let f =
            channel_parser::parse(aligned.as_slice(), &Capabilities::SENSOR).expect("wide parses");
        let units: Vec<u16> = "\\aabbaab".encode_utf16().collect();
        let mut scratch = Scratch::new();
        let v = f.evaluate(
            &Event {
                pipe_name: Text::Utf16(&units),
                image: None,
                pid: 0,
                kind: EventKind::Create,
                user: None,
            },
            &mut scratch,
        );
        eprintln!(
            "gen-seeds: wide set: {} rules, {} atoms, {} matched in {} passes",
            f.rule_count(),
            f.atom_count(),
            v.matched,
            scratch.passes()
        );
        assert!(
            scratch.passes() >= 2,
            "the wide set must overflow the scratch"
        );
    }
    write(
        &d("parse"),
        "wide-scratch-overflow",
        &with_name(&wide_file, "\\aabbaab"),
    );

    for (name, file) in &files {
        write(&d("parse"), name, &with_name(file, "\\postex_1234"));
        if let Some(f) = framed(file) {
            write(&d("parse_framed"), name, &f);
        }
    }
    // The bare minimum valid file, and one with every section empty.
    let empty = compile(&Default::default(), &CompileOptions::default()).expect("empty set");
    write(&d("parse"), "empty-set", &empty);
    if let Some(f) = framed(&empty) {
        write(&d("parse_framed"), "empty-set", &f);
    }

    for t in ["structured", "differential", "roundtrip"] {
        for i in 0..16 {
            let n = 64 + 32 * i;
            write(&d(t), &format!("random-{i:02}"), &rng.bytes(n));
        }
    }

    for e in fs::read_dir(&sigma_dir).expect("sigma dir").flatten() {
        let text = fs::read(e.path()).expect("read sigma rule");
        write(&d("import_sigma"), &e.file_name().to_string_lossy(), &text);
    }
    write(
        &d("import_native"),
        "rules-md-example.yml",
        example.as_bytes(),
    );
    write(
        &d("import_native"),
        "minimal.yml",
        b"- id: 1\n  name: x\n  severity: low\n  detection:\n    s:\n      PipeName|re|i: '^\\\\a.c$'\n    condition: s\n",
    );
    for p in &sysmon_paths {
        let text = fs::read(p).expect("read sysmon config");
        // The big export config would dominate max_len: keep seeds small.
        if text.len() <= 16 << 10 {
            write(
                &d("import_sysmon"),
                &p.file_name().unwrap_or_default().to_string_lossy(),
                &text,
            );
        }
    }

    let units: Vec<u16> = "\\Device\\NamedPipe\\postex_1234".encode_utf16().collect();
    let image: Vec<u16> = "C:\\x.exe".encode_utf16().collect();
    let user: Vec<u16> = "S-1-5-18".encode_utf16().collect();
    for sel in [0u8, 2, 3, 4] {
        let mut b = vec![0u8; 4096];
        let n = match sel {
            0 => proto::encode_status_request(&mut b),
            2 => proto::encode_events_request(&mut b, 16),
            3 => proto::encode_mode_request(&mut b, sensor_core::decision::Mode::Enforce),
            _ => proto::encode_eval_request(
                &mut b,
                sensor_core::ring::EventKind::Create,
                4,
                &units,
                &image,
                &user,
            ),
        }
        .expect("encode request");
        let mut seed = vec![sel];
        seed.extend_from_slice(&b[..n]);
        write(&d("ioctl"), &format!("request-{sel}"), &seed);
    }
    let mut b = vec![0u8; 4096];
    let n = proto::encode_load_request(&mut b, false, &empty).expect("encode load");
    let mut seed = vec![1u8];
    seed.extend_from_slice(&b[..n]);
    write(&d("ioctl"), "request-1", &seed);
    // ENFORCEMENT (selector 7) and BREAKER_RESET of rule 1001 (selector 8).
    let mut b = vec![0u8; 64];
    let n = proto::encode_status_request(&mut b).expect("encode enforcement request");
    let mut seed = vec![7u8];
    seed.extend_from_slice(&b[..n]);
    write(&d("ioctl"), "request-7", &seed);
    let n = proto::encode_breaker_reset_request(&mut b, proto::ResetTarget::Rule(1001))
        .expect("encode breaker reset request");
    let mut seed = vec![8u8];
    seed.extend_from_slice(&b[..n]);
    write(&d("ioctl"), "request-8", &seed);
    // EVENTS_V2: a waiting request, and a batch of two full events.
    let mut b = vec![0u8; 64];
    let n = sensor_core::stream::encode_stream_request(
        &mut b,
        sensor_core::stream::StreamRequest {
            max: 64,
            wait: true,
        },
    )
    .expect("encode stream request");
    let mut seed = vec![0u8];
    seed.extend_from_slice(&b[..n]);
    write(&d("ioctl"), "events-v2-request", &seed);
    let mut ring = Box::new(sensor_core::ring::EventRing::<
        4,
        sensor_core::event::PipeEvent,
    >::new());
    let sid = [1u8, 2, 0, 0, 0, 0, 0, 5, 21, 0, 0, 0, 0xe9, 3, 0, 0];
    for kind in [1u8, 2] {
        ring.push_with(|e| {
            e.kind = kind;
            e.decision = 1;
            e.pid = 4242;
            e.rule_id = 1001;
            e.rule_name = sensor_core::proto::FixedText::new("post-ex");
            e.set_name(&units[17..]);
            e.set_image(Some(&image));
            e.set_sid(sensor_core::event::Sid::from_bytes(&sid).ok(), false);
            e.set_process(7, 133_600_000_000_000_000);
        });
    }
    let mut b = vec![0u8; sensor_core::stream::BATCH_MIN_OUT * 2];
    let (n, _) = sensor_core::stream::encode_batch(&mut b, 4, &mut ring).expect("encode batch");
    let mut seed = vec![0u8];
    seed.extend_from_slice(&b[..n]);
    write(&d("ioctl"), "events-v2-batch", &seed);
    eprintln!(
        "gen-seeds: {} channel files, seeds in {}",
        files.len(),
        out.display()
    );
}
