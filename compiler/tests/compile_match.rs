//! End to end: import the real corpus, compile, parse with the kernel's
//! parser, match names as UTF-8 and as UTF-16, and compare every verdict with
//! the independent reference evaluator.

use channel_parser::{parse, Capabilities, Event, EventKind, Scratch, Text};
use pipe_compiler::import::load_paths;
use pipe_compiler::model::RuleSet;
use pipe_compiler::{compile, AlignedBytes, CompileOptions};
use std::ops::ControlFlow;
use std::path::PathBuf;
use test_kit::reference::{matching_ids, RefEvent};

/// A path in the repository (third-party data under `third_party/`, the
/// project's own lists under `data/`).
fn corpus(rel: &str) -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../")).join(rel)
}

/// The 17 SigmaHQ `pipe_created` rules (third_party/sigma/README.md).
const SIGMA_PIPE: &str = "third_party/sigma/rules/windows/pipe_created";
/// The 30 sysmon-modular pipe-event modules.
const SYSMON_MODULAR: &str = "third_party/sysmon-modular/17_18_pipe_event";
/// SwiftOnSecurity's whole Sysmon configuration.
const SYSMON_CONFIG: &str = "third_party/sysmon-config/sysmonconfig-export.xml";

fn kernel_ids(
    file: &channel_parser::ChannelFile<'_>,
    ev: &Event<'_>,
    scratch: &mut Scratch,
) -> Vec<u32> {
    let mut ids = Vec::new();
    file.for_each_match(ev, scratch, |r| {
        ids.push(r.id());
        ControlFlow::Continue(())
    });
    ids
}

/// Names built from the corpus: the suspicious patterns with wildcards filled
/// in, the benign patterns, RMM names, and hand-written variants.
fn corpus_names() -> Vec<String> {
    let mut names = Vec::new();
    let text = std::fs::read_to_string(corpus("data/pipe-names/suspicious.csv")).unwrap();
    for (i, line) in text.lines().skip(1).enumerate() {
        let pat = line.split(',').next().unwrap_or("");
        for fill in ["", "1234", "a\\b", "postex_ssh_abcd"] {
            let n = pat.replace('*', fill).replace('?', "x");
            names.push(if i % 3 == 0 { n.to_uppercase() } else { n });
        }
    }
    let benign = std::fs::read_to_string(corpus(
        "third_party/sysmon-modular/derived/benign_pipename_patterns.tsv",
    ))
    .unwrap();
    for line in benign.lines() {
        if let Some(p) = line.split('\t').nth(1) {
            names.push(p.to_string());
            names.push(format!("{p}x"));
        }
    }
    for extra in [
        "\\postex_1234",
        "\\postex_ssh_1234",
        "\\MSSE-1234-server",
        "\\status_ab",
        "\\msagent_ab",
        "\\mojo.5688.8052.183894939787088877ab",
        "\\wkssvc_1f",
        "\\wkssvc1f",
        "\\ntsvcs_a1",
        "\\f53fab",
        "\\f53fabc",
        "\\Winsock2\\CatalogChangeListener-abc-0,",
        "\\PSHost.1234.DefaultAppDomain.powershell",
        "\\MICROSOFT##WID\\tsql\\query",
        "\\lsadump",
        "\\cachedump",
        "\\wceservicepipe",
        "\\jaccdpqnvbrrxlaf",
        "\\ShellIconCache",
        "",
        "\\",
        "\\\u{FFFD}",
        "\\ÄÖÜ",
        "\\äöü",
        "\\ß",
        "\\ı",
        "\\K",
        "\\\u{212A}",
    ] {
        names.push(extra.to_string());
    }
    names
}

fn check_set(set: &RuleSet, names: &[String], images: &[Option<&str>]) -> usize {
    let bytes = compile(set, &CompileOptions::default()).unwrap_or_else(|e| panic!("compile: {e}"));
    let aligned = AlignedBytes::new(&bytes);
    let file = parse(aligned.as_slice(), &Capabilities::SENSOR).unwrap();
    assert_eq!(file.rule_count() as usize, set.rules.len());
    let mut scratch = Scratch::new();
    let mut matched = 0;
    for name in names {
        for &image in images {
            for kind in [EventKind::Create, EventKind::Connect] {
                let mut want = matching_ids(
                    set,
                    &RefEvent {
                        pipe_name: name,
                        image,
                        pid: 4,
                        kind: kind.value(),
                        user: None,
                    },
                );
                want.sort_unstable();
                let ev = Event {
                    pipe_name: Text::Utf8(name),
                    image: image.map(Text::Utf8),
                    pid: 4,
                    kind,
                    user: None,
                };
                let got = kernel_ids(&file, &ev, &mut scratch);
                assert_eq!(got, want, "name {name:?} image {image:?} kind {kind:?}");
                let units: Vec<u16> = name.encode_utf16().collect();
                let img16: Option<Vec<u16>> = image.map(|i| i.encode_utf16().collect());
                let ev16 = Event {
                    pipe_name: Text::Utf16(&units),
                    image: img16.as_deref().map(Text::Utf16),
                    pid: 4,
                    kind,
                    user: None,
                };
                assert_eq!(
                    kernel_ids(&file, &ev16, &mut scratch),
                    want,
                    "UTF-16 name {name:?}"
                );
                if !want.is_empty() {
                    matched += 1;
                }
            }
        }
    }
    matched
}

#[test]
fn sigma_corpus_agrees_with_reference() {
    let set = load_paths(&[corpus(SIGMA_PIPE)]).unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(set.rules.len(), 17);
    let images = [
        None,
        Some("C:\\Windows\\System32\\mmc.exe"),
        Some("C:\\Temp\\evil.exe"),
        Some("C:\\Windows\\System32\\wbem\\scrcons.exe"),
    ];
    let matched = check_set(&set, &corpus_names(), &images);
    assert!(
        matched > 100,
        "only {matched} matching events: the test names do not exercise the rules"
    );
}

#[test]
fn sysmon_corpus_agrees_with_reference() {
    let set = load_paths(&[corpus(SYSMON_MODULAR), corpus(SYSMON_CONFIG)])
        .unwrap_or_else(|e| panic!("{e:?}"));
    assert!(!set.rules.is_empty());
    let images = [
        None,
        Some("C:\\Program Files\\Google\\Chrome\\Application\\chrome.exe"),
        Some("C:\\Temp\\x.exe"),
    ];
    let matched = check_set(&set, &corpus_names(), &images);
    assert!(matched > 10);
}

#[test]
fn postex_matches_cobaltstrike_rule() {
    let set = load_paths(&[corpus(SIGMA_PIPE)]).unwrap();
    let bytes = compile(&set, &CompileOptions::default()).unwrap();
    let aligned = AlignedBytes::new(&bytes);
    let file = parse(aligned.as_slice(), &Capabilities::SENSOR).unwrap();
    let mut scratch = Scratch::new();
    let units: Vec<u16> = "\\postex_1234".encode_utf16().collect();
    let v = file.evaluate(
        &Event {
            pipe_name: Text::Utf16(&units),
            image: None,
            pid: 1,
            kind: EventKind::Create,
            user: None,
        },
        &mut scratch,
    );
    assert!(v.matched >= 1);
    assert!(
        v.best.unwrap().name().contains("CobaltStrike"),
        "{}",
        v.best.unwrap().name()
    );
    let benign: Vec<u16> = "\\ShellIconCache".encode_utf16().collect();
    let v = file.evaluate(
        &Event {
            pipe_name: Text::Utf16(&benign),
            image: None,
            pid: 1,
            kind: EventKind::Create,
            user: None,
        },
        &mut scratch,
    );
    assert_eq!(v.matched, 0);
}
