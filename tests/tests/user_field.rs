//! `User` as a content field, end to end on the host: Sigma and native
//! rules on `User` compile (names mapped to SIDs), load on a sensor that
//! supplies `User` and match its SID through the one evaluation path; the
//! same file is refused by name on a sensor without `User`; older content
//! loads on both.

use channel_parser::{parse, Capabilities, FieldId, ParseError};
use pipe_compiler::import::load_yaml;
use pipe_compiler::model::RuleSet;
use pipe_compiler::{compile, AlignedBytes, CompileErrorKind, CompileOptions};
use sensor_core::dospath::DeviceMap;
use sensor_core::eval::{self, RawEvent, Work, DEFAULT_KIND};
use std::path::Path;

const SIGMA: &str = r"
title: Pipe created by SYSTEM
id: 0f0e1d2c-3b4a-4596-a7b8-c9d0e1f2a3b4
status: test
logsource:
  product: windows
  category: pipe_created
detection:
  selection:
    PipeName|startswith: '\sys_'
    User: 'NT AUTHORITY\SYSTEM'
  condition: selection
level: high
";

const SIGMA_LOCALIZED: &str = r"
title: Pipe created by a service account (any language)
id: 1f0e1d2c-3b4a-4596-a7b8-c9d0e1f2a3b4
status: test
logsource:
  product: windows
  category: pipe_created
detection:
  selection:
    PipeName: '\svc_pipe'
    User|contains:
      - 'AUTHORI'
      - 'AUTORI'
  condition: selection
level: medium
";

const NATIVE: &str = r"
- id: 7
  name: pipe of one user
  severity: high
  detection:
    s:
      PipeName: '\user_pipe'
      User: 'S-1-5-21-1-2-3-1001'
    condition: s
  tests:
    match:
      - {name: '\user_pipe', user: 'S-1-5-21-1-2-3-1001'}
    no_match:
      - {name: '\user_pipe', user: 'S-1-5-21-1-2-3-1002'}
      - '\user_pipe'
";

fn compile_all(sources: &[&str]) -> Vec<u8> {
    let mut rules = Vec::new();
    for (i, s) in sources.iter().enumerate() {
        rules.extend(load_yaml(Path::new(&format!("r{i}.yml")), s).unwrap());
    }
    compile(&RuleSet { rules }, &CompileOptions::default()).unwrap()
}

fn ids(bytes: &[u8], name: &str, user: Option<&str>) -> Vec<u32> {
    let aligned = AlignedBytes::new(bytes);
    let f = parse(aligned.as_slice(), &Capabilities::SENSOR).unwrap();
    assert!(f.reads_field(FieldId::USER));
    let n: Vec<u16> = name.encode_utf16().collect();
    let raw = RawEvent {
        kind: DEFAULT_KIND,
        pid: 0,
        name: &n,
        image: None,
        user,
    };
    let mut work = Box::new(Work::new());
    let p = eval::prepare(&DeviceMap::new(), &raw, &mut work.buffers).unwrap();
    let mut out = Vec::new();
    f.for_each_match(&p.event(), &mut work.scratch, |r| {
        out.push(r.id());
        std::ops::ControlFlow::Continue(())
    });
    out
}

#[test]
fn user_rules_load_where_user_is_supplied_and_match_the_sid() {
    let bytes = compile_all(&[SIGMA, SIGMA_LOCALIZED, NATIVE]);
    let aligned = AlignedBytes::new(&bytes);
    let f = parse(aligned.as_slice(), &Capabilities::SENSOR).unwrap();
    let by_name = |n: &str| f.rules().find(|r| r.name() == n).unwrap().id();
    let system = by_name("Pipe created by SYSTEM");
    let service = by_name("Pipe created by a service account (any language)");
    // NT AUTHORITY\SYSTEM was compiled to S-1-5-18, case-insensitively.
    assert_eq!(ids(&bytes, r"\sys_x", Some("S-1-5-18")), vec![system]);
    assert_eq!(ids(&bytes, r"\sys_x", Some("s-1-5-18")), vec![system]);
    assert!(ids(&bytes, r"\sys_x", Some("S-1-5-19")).is_empty());
    assert!(ids(&bytes, r"\sys_x", Some("S-1-5-180")).is_empty());
    // No user known: rules on User do not match (as on a missing image).
    assert!(ids(&bytes, r"\sys_x", None).is_empty());
    assert!(ids(&bytes, r"\sys_x", Some("")).is_empty());
    // contains AUTHORI / AUTORI: the NT AUTHORITY accounts.
    for sid in ["S-1-5-18", "S-1-5-19", "S-1-5-20"] {
        assert_eq!(ids(&bytes, r"\svc_pipe", Some(sid)), vec![service], "{sid}");
    }
    assert!(ids(&bytes, r"\svc_pipe", Some("S-1-5-21-1-2-3-1001")).is_empty());
    // Both values map to the same three SIDs: three User atoms, not six.
    let users: Vec<&str> = f
        .rule_by_id(service)
        .unwrap()
        .atoms()
        .filter(|a| a.field() == FieldId::USER)
        .map(|a| a.text())
        .collect();
    assert_eq!(users, ["S-1-5-18", "S-1-5-19", "S-1-5-20"]);
    let program = f.rule_by_id(service).unwrap().program();
    let mut refs: Vec<u32> = channel_format::program::instructions(program)
        .filter_map(|i| match i {
            Ok((_, channel_format::program::Instr::Atom(a))) => Some(a),
            _ => None,
        })
        .collect();
    let n = refs.len();
    refs.sort_unstable();
    refs.dedup();
    assert_eq!(refs.len(), n, "an atom tested twice in {program:02x?}");
    // A SID written directly.
    assert_eq!(
        ids(&bytes, r"\user_pipe", Some("S-1-5-21-1-2-3-1001")),
        vec![7]
    );
    assert!(ids(&bytes, r"\user_pipe", Some("S-1-5-21-1-2-3-1002")).is_empty());
}

#[test]
fn user_rules_are_refused_by_name_where_user_is_not_supplied() {
    let bytes = compile_all(&[NATIVE]);
    let aligned = AlignedBytes::new(&bytes);
    let err = parse(aligned.as_slice(), &Capabilities::SENSOR_V1).unwrap_err();
    match err {
        ParseError::FieldNotSupplied { rule_id, field, .. } => {
            assert_eq!((rule_id, field), (7, FieldId::USER));
        }
        other => panic!("expected FieldNotSupplied, got {other:?}"),
    }
    let text = err.to_string();
    assert!(
        text.contains("rule 7") && text.contains("User") && text.contains("does not supply"),
        "{text}"
    );
    // The compiler refuses the same for a sensor without User.
    let rules = load_yaml(Path::new("n.yml"), NATIVE).unwrap();
    let opts = CompileOptions {
        capabilities: Capabilities::SENSOR_V1,
        ..CompileOptions::default()
    };
    let e = compile(&RuleSet { rules }, &opts).unwrap_err();
    assert_eq!(e.kind, CompileErrorKind::FieldNotSupplied);
    assert!(e.to_string().contains("User"), "{e}");
}

#[test]
fn content_without_user_loads_on_both_sensors_and_reads_no_user() {
    let rules = load_yaml(
        Path::new("old.yml"),
        "- id: 1\n  name: x\n  severity: high\n  detection:\n    s:\n      PipeName: '\\postex_1'\n    condition: s\n",
    )
    .unwrap();
    let bytes = compile(&RuleSet { rules }, &CompileOptions::default()).unwrap();
    let aligned = AlignedBytes::new(&bytes);
    for caps in [Capabilities::SENSOR, Capabilities::SENSOR_V1] {
        let f = parse(aligned.as_slice(), &caps).unwrap();
        // The driver reads no SID before matching for such content.
        assert!(!f.reads_field(FieldId::USER));
        assert!(f.reads_field(FieldId::PIPE_NAME));
    }
}

#[test]
fn unmappable_names_are_refused_with_the_rule_value_and_advice() {
    let sigma = SIGMA.replace(r"NT AUTHORITY\SYSTEM", r"CONTOSO\alice");
    let errs = load_yaml(Path::new("alice.yml"), &sigma).unwrap_err();
    let text = errs
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        text.contains(r"`CONTOSO\alice`")
            && text.contains("write the account's SID")
            && text.contains("alice.yml:"),
        "{text}"
    );
}

#[test]
fn embedded_user_cases_pass_in_the_kernel_path_and_the_reference() {
    let mut rules = Vec::new();
    for (i, s) in [SIGMA, NATIVE].iter().enumerate() {
        rules.extend(load_yaml(Path::new(&format!("r{i}.yml")), s).unwrap());
    }
    let set = RuleSet { rules };
    let bytes = compile(&set, &CompileOptions::default()).unwrap();
    let aligned = AlignedBytes::new(&bytes);
    let f = parse(aligned.as_slice(), &Capabilities::SENSOR).unwrap();
    let out = test_kit::cases::run(&set, &f, &mut channel_parser::Scratch::new());
    assert_eq!(out.len(), 3);
    for o in &out {
        assert!(o.passed(), "{}", o.failure());
    }
    for r in &set.rules {
        assert!(test_kit::reference::failing_cases(r).is_empty());
    }
}
