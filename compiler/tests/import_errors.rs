//! Every rejected construct is reported at its file:line:column, naming the
//! construct.

use std::path::{Path, PathBuf};

use pipe_compiler::import::{load_paths, load_yaml, sysmon, SysmonOptions};
use pipe_compiler::model::SourceError;

const HEAD: &str = "title: t\nid: 01234567-89ab-cdef-0123-456789abcdef\nlogsource:\n  category: pipe_created\n  product: windows\n";

fn sigma_errors(body: &str) -> Vec<SourceError> {
    let text = format!("{HEAD}{body}");
    match load_yaml(Path::new("r.yml"), &text) {
        Ok(r) => panic!("expected an error for:\n{text}\ngot {r:?}"),
        Err(e) => e,
    }
}

/// Asserts that one of `errs` is at `line:col` and mentions `needle`.
#[track_caller]
fn expect(errs: &[SourceError], line: usize, col: usize, needle: &str) {
    assert!(
        errs.iter()
            .any(|e| e.loc.line == line && e.loc.col == col && e.message.contains(needle)),
        "expected an error at {line}:{col} containing {needle:?}, got:\n{}",
        errs.iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn sigma_unsupported_modifiers() {
    // Line 7 is the first selection field (HEAD has 5 lines, then `detection:`, `  sel:`).
    for m in [
        "base64",
        "base64offset",
        "windash",
        "cidr",
        "wide",
        "utf16le",
    ] {
        let errs = sigma_errors(&format!(
            "detection:\n  sel:\n    PipeName|{m}: 'x'\n  condition: sel\n"
        ));
        expect(&errs, 8, 14, &format!("unsupported modifier `{m}`"));
    }
    // Refused with their reason (docs/rules.md).
    let errs = sigma_errors("detection:\n  sel:\n    PipeName|fieldref: Image\n  condition: sel\n");
    expect(&errs, 8, 14, "modifier `fieldref` in `PipeName|fieldref` is not supported: a pipe event's only string fields are PipeName, Image and User");
    for m in ["gt", "gte", "lt", "lte"] {
        let errs = sigma_errors(&format!(
            "detection:\n  sel:\n    PipeName|{m}: 5\n  condition: sel\n"
        ));
        expect(
            &errs,
            8,
            14,
            &format!("modifier `{m}` in `PipeName|{m}` compares numbers"),
        );
    }
    // `expand` without placeholder values, `expand` with `re`, `exists` with more.
    let errs =
        sigma_errors("detection:\n  sel:\n    PipeName|expand: '%Servers%'\n  condition: sel\n");
    expect(&errs, 8, 22, "placeholder `%Servers%` has no values");
    let errs =
        sigma_errors("detection:\n  sel:\n    PipeName|re|expand: '%Servers%'\n  condition: sel\n");
    expect(&errs, 8, 5, "`expand` with `re` is not supported");
    let errs = sigma_errors("detection:\n  sel:\n    Image|exists|neq: true\n  condition: sel\n");
    expect(&errs, 8, 5, "`exists` cannot be combined");
    // The column points at the offending modifier, not the first one.
    let errs =
        sigma_errors("detection:\n  sel:\n    PipeName|contains|base64: 'x'\n  condition: sel\n");
    expect(
        &errs,
        8,
        23,
        "unsupported modifier `base64` in `PipeName|contains|base64`",
    );
    let errs = sigma_errors("detection:\n  sel:\n    PipeName|i: 'x'\n  condition: sel\n");
    expect(&errs, 8, 14, "only valid after `re`");
    let errs = sigma_errors(
        "detection:\n  sel:\n    PipeName|startswith|endswith: 'x'\n  condition: sel\n",
    );
    expect(&errs, 8, 25, "conflicts");
    let errs =
        sigma_errors("detection:\n  sel:\n    PipeName|re|contains: 'x'\n  condition: sel\n");
    expect(&errs, 8, 5, "cannot be combined");
}

#[test]
fn sigma_unsupported_fields_and_shapes() {
    let errs = sigma_errors("detection:\n  sel:\n    CommandLine: 'x'\n  condition: sel\n");
    expect(&errs, 8, 5, "unsupported field `CommandLine`");
    let errs = sigma_errors("detection:\n  sel:\n    - 'keyword'\n  condition: sel\n");
    expect(&errs, 8, 5, "keyword search");
    let errs = sigma_errors("detection:\n  sel:\n    PipeName: {a: b}\n  condition: sel\n");
    expect(&errs, 8, 15, "found a mapping");
    let errs = sigma_errors("detection:\n  sel:\n    PipeName|re: '(unclosed'\n  condition: sel\n");
    expect(&errs, 8, 18, "invalid regular expression `(unclosed`");
    let errs = sigma_errors("detection:\n  sel:\n    PipeName: []\n  condition: sel\n");
    expect(&errs, 8, 15, "empty list of values");
    let errs =
        sigma_errors("detection:\n  sel:\n    PipeName: 'x'\n  condition: sel\n  timeframe: 5m\n");
    expect(&errs, 10, 3, "`timeframe`");
    let errs =
        sigma_errors("detection:\n  sel:\n    PipeName|contains|all: 'x'\n  condition: sel\n");
    expect(
        &errs,
        8,
        28,
        "`all` in `PipeName|contains|all` needs a list of values",
    );
    let errs = sigma_errors("detection:\n  sel:\n    PipeName|contains: null\n  condition: sel\n");
    expect(&errs, 8, 24, "`null` cannot be combined");
}

#[test]
fn sigma_condition_errors_point_into_the_condition() {
    let sel = "detection:\n  sel:\n    PipeName: 'x'\n  filter:\n    PipeName: 'y'\n";
    // `  condition: ` is 13 characters: the condition text starts at column 14
    // (plain) or 15 (quoted).
    let errs = sigma_errors(&format!("{sel}  condition: sel and not nope\n"));
    expect(&errs, 11, 26, "unknown selection `nope`");
    let errs = sigma_errors(&format!("{sel}  condition: 'sel | count() by Image > 5'\n"));
    expect(&errs, 11, 19, "aggregation");
    let errs = sigma_errors(&format!("{sel}  condition: sel near filter\n"));
    expect(&errs, 11, 18, "unexpected `near`");
    let errs = sigma_errors(&format!("{sel}  condition: near filter\n"));
    expect(&errs, 11, 14, "`near` is not supported");
    let errs = sigma_errors(&format!("{sel}  condition: 2 of filter*\n"));
    expect(
        &errs,
        11,
        14,
        "`2 of filter*`: asks for 2 selections but the pattern matches only 1",
    );
    let errs = sigma_errors(&format!("{sel}  condition: many of filter*\n"));
    expect(&errs, 11, 14, "`many of` is not supported");
    let errs = sigma_errors(&format!("{sel}  condition: 1 of nomatch*\n"));
    expect(&errs, 11, 19, "`nomatch*` matches no selection");
    let errs = sigma_errors(&format!("{sel}  condition: (sel or filter\n"));
    expect(&errs, 11, 28, "unclosed `(`");
    let errs = sigma_errors(&format!("{sel}  condition: sel and\n"));
    expect(&errs, 11, 21, "condition ends");
    let errs = sigma_errors(&format!("{sel}  condition: sel*\n"));
    expect(&errs, 11, 14, "only allowed after `N of`");
    let errs = sigma_errors(&format!("{sel}  condition: sel filter\n"));
    expect(&errs, 11, 18, "unexpected `filter`");
    let errs = sigma_errors(sel);
    expect(&errs, 7, 3, "no `condition`");
}

#[test]
fn sigma_rule_level_errors() {
    let errs =
        sigma_errors("level: severe\ndetection:\n  sel:\n    PipeName: 'x'\n  condition: sel\n");
    expect(&errs, 6, 8, "unknown `level` `severe`");
    let text = "title: t\nid: not-a-uuid\nlogsource:\n  category: process_creation\n  product: windows\ndetection:\n  sel:\n    PipeName: 'x'\n  condition: sel\n";
    let errs = load_yaml(Path::new("r.yml"), text).unwrap_err();
    expect(&errs, 2, 5, "`id` must be a UUID");
    expect(&errs, 4, 13, "logsource category `process_creation`");
    let text =
        format!("{HEAD}detection:\n  sel:\n    PipeName: 'x'\n  condition: sel\n---\n{HEAD}");
    let errs = load_yaml(Path::new("r.yml"), &text).unwrap_err();
    expect(&errs, 11, 1, "multiple YAML documents");
    let errs = load_yaml(
        Path::new("r.yml"),
        "correlation:\n  type: event_count\nlogsource: {}\ndetection: {}\n",
    )
    .unwrap_err();
    expect(&errs, 1, 1, "correlation rules are not supported");
}

#[test]
fn yaml_syntax_errors_have_positions() {
    let errs = load_yaml(Path::new("r.yml"), "- id: 1\n  name: [unclosed\n").unwrap_err();
    assert_eq!(errs.len(), 1);
    assert!(errs[0].message.contains("YAML syntax error"), "{}", errs[0]);
    assert!(errs[0].loc.line >= 2, "{}", errs[0]);
    assert_eq!(errs[0].loc.file, PathBuf::from("r.yml"));
}

fn native_errors(text: &str) -> Vec<SourceError> {
    match load_yaml(Path::new("n.yml"), text) {
        Ok(r) => panic!("expected an error for:\n{text}\ngot {r:?}"),
        Err(e) => e,
    }
}

#[test]
fn native_errors_have_positions() {
    let ok = "- id: 7\n  name: n\n  severity: low\n  detection:\n    sel:\n      PipeName: 'x'\n    condition: sel\n";
    assert!(load_yaml(Path::new("n.yml"), ok).is_ok());
    let errs = native_errors("- id: -3\n  name: n\n  severity: low\n  detection:\n    sel:\n      PipeName: 'x'\n    condition: sel\n");
    expect(&errs, 1, 7, "`id` must be an unsigned 32-bit integer");
    let errs = native_errors("- id: 1\n  name: n\n  severity: low\n  colour: red\n  detection:\n    sel:\n      PipeName: 'x'\n    condition: sel\n");
    expect(&errs, 4, 3, "unknown rule key `colour`");
    let errs = native_errors("- id: 1\n  name: n\n  severity: low\n  action: kill\n  detection:\n    sel:\n      PipeName: 'x'\n    condition: sel\n");
    expect(&errs, 4, 11, "unknown `action` `kill`");
    let errs = native_errors("- id: 1\n  name: n\n  detection:\n    sel:\n      ProcessId|contains: '4'\n    condition: sel\n");
    expect(&errs, 1, 3, "no `severity`");
    expect(&errs, 5, 7, "numeric");
    let errs = native_errors("- id: 1\n  name: n\n  severity: low\n  detection:\n    sel:\n      EventKind: open\n    condition: sel\n");
    expect(&errs, 6, 18, "`EventKind` is `create` (1) or `connect` (2)");
    let errs = native_errors("- id: 1\n  name: n\n  severity: low\n  detection:\n    sel:\n      PipeName|cased: 'x'\n    condition: sel\n");
    expect(&errs, 6, 16, "unsupported modifier `cased`");
    let errs = native_errors(&format!(
        "{ok}  tests:\n    match:\n      - {{name: x, kind: open}}\n    maybe: []\n"
    ));
    expect(&errs, 10, 25, "`kind` is `create` or `connect`");
    expect(&errs, 11, 5, "unknown `tests` key `maybe`");
    let errs = native_errors(&format!("{ok}  tests:\n    match:\n      - {{image: x}}\n"));
    expect(&errs, 10, 9, "test case has no `name`");
    let errs = native_errors("id: 1\n");
    expect(&errs, 1, 1, "a native rule file is a list of rules");
}

#[test]
fn duplicate_ids_name_both_files() {
    let dir = std::env::temp_dir().join(format!("pipe-dupids-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp");
    let body = "logsource:\n  category: pipe_created\n  product: windows\ndetection:\n  sel:\n    PipeName: 'x'\n  condition: sel\n";
    std::fs::write(
        dir.join("a.yml"),
        format!("title: a\nid: deadbeef-0000-4000-8000-000000000001\n{body}"),
    )
    .expect("w");
    std::fs::write(
        dir.join("b.yml"),
        format!("title: b\nid: deadbeef-ffff-4000-8000-000000000002\n{body}"),
    )
    .expect("w");
    let errs = load_paths(std::slice::from_ref(&dir)).unwrap_err();
    std::fs::remove_dir_all(&dir).ok();
    assert_eq!(errs.len(), 1, "{errs:?}");
    let e = &errs[0];
    assert!(
        e.loc.file.ends_with("b.yml") && e.loc.line == 1 && e.loc.col == 1,
        "{e}"
    );
    assert!(
        e.message.contains("0xdeadbeef") && e.message.contains("a.yml:1:1"),
        "{e}"
    );
}

#[test]
fn unknown_file_kinds() {
    let errs = load_paths(&[PathBuf::from("/nonexistent/rules.yml")]).unwrap_err();
    assert!(errs[0].message.contains("cannot read"), "{}", errs[0]);
    let errs = load_paths(&[PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/Cargo.toml"
    ))])
    .unwrap_err();
    assert!(errs[0].message.contains("not a rule source"), "{}", errs[0]);
}

fn sysmon_errors(xml: &str) -> Vec<SourceError> {
    match sysmon::import(
        &[(PathBuf::from("s.xml"), xml.to_string())],
        &SysmonOptions::default(),
    ) {
        Ok(r) => panic!("expected an error for:\n{xml}\ngot {r:?}"),
        Err(e) => e,
    }
}

fn sysmon_doc(filters: &str) -> String {
    format!("<Sysmon schemaversion=\"4.50\">\n<EventFiltering>\n<RuleGroup groupRelation=\"or\">\n<PipeEvent onmatch=\"include\">\n{filters}</PipeEvent>\n</RuleGroup>\n</EventFiltering>\n</Sysmon>\n")
}

#[test]
fn sysmon_errors_have_positions() {
    let errs = sysmon_errors(&sysmon_doc(
        "  <PipeName condition=\"sounds like\">x</PipeName>\n",
    ));
    expect(
        &errs,
        5,
        13,
        "unknown Sysmon condition `sounds like` on <PipeName>",
    );
    let errs = sysmon_errors(&sysmon_doc(
        "  <PipeName condition=\"less than\">x</PipeName>\n",
    ));
    expect(&errs, 5, 13, "`less than`");
    let errs = sysmon_errors(&sysmon_doc(
        "  <ProcessId condition=\"more than\">4</ProcessId>\n",
    ));
    expect(&errs, 5, 14, "`more than`");
    let errs = sysmon_errors(&sysmon_doc(
        "  <ProcessId condition=\"contains\">4</ProcessId>\n",
    ));
    expect(&errs, 5, 14, "does not apply to <ProcessId>");
    let errs = sysmon_errors(&sysmon_doc("  <ProcessId>four</ProcessId>\n"));
    expect(&errs, 5, 3, "not an unsigned 32-bit integer");
    let errs = sysmon_errors(&sysmon_doc("  <CommandLine>x</CommandLine>\n"));
    expect(&errs, 5, 3, "unknown PipeEvent field <CommandLine>");
    let errs = sysmon_errors(&sysmon_doc("  <ProcessGuid>x</ProcessGuid>\n"));
    expect(&errs, 5, 3, "not supplied by the pipe sensor");
    let errs = sysmon_errors(&sysmon_doc("  <User>CORP\\alice</User>\n"));
    expect(
        &errs,
        5,
        3,
        "`User` value `CORP\\alice` cannot be mapped to a SID",
    );
    expect(&errs, 5, 3, "write the account's SID instead");
    let errs = sysmon_errors(&sysmon_doc("  <User condition=\"image\">S-1-5-18</User>\n"));
    expect(&errs, 5, 9, "does not apply to <User>");
    let errs = sysmon_errors(&sysmon_doc("  <EventType>OpenPipe</EventType>\n"));
    expect(&errs, 5, 3, "CreatePipe or ConnectPipe");
    let errs = sysmon_errors(&sysmon_doc(
        "  <PipeName condition=\"contains any\">a;;b</PipeName>\n",
    ));
    expect(&errs, 5, 3, "empty value");
    let errs = sysmon_errors(&sysmon_doc(
        "  <Rule groupRelation=\"xor\"><PipeName>a</PipeName></Rule>\n",
    ));
    expect(&errs, 5, 9, "groupRelation `xor`");
    let errs = sysmon_errors(&sysmon_doc("  <Rule groupRelation=\"and\"></Rule>\n"));
    expect(&errs, 5, 3, "<Rule> has no field filter");
    let errs = sysmon_errors("<Sysmon>\n<EventFiltering>\n<PipeEvent onmatch=\"maybe\"/>\n</EventFiltering>\n</Sysmon>\n");
    expect(&errs, 3, 12, "onmatch `maybe`");
    let errs = sysmon_errors("<Sysmon>\n<EventFiltering>\n<ProcessCreate onmatch=\"include\"/>\n</EventFiltering>\n</Sysmon>\n");
    expect(&errs, 1, 1, "no <PipeEvent> filter");
    let errs = sysmon_errors("<Sysmon>\n<EventFiltering>\n<PipeEvent onmatch=\"include\">\n  <Rule><PipeName>x</PipeName></Rule>\n</PipeEvent>\n</EventFiltering>\n</Sysmon>\n");
    expect(&errs, 4, 3, "<Rule> needs an enclosing <RuleGroup>");
    let errs = sysmon_errors("<Config/>\n");
    expect(&errs, 1, 1, "root element <Sysmon>");
    let errs = sysmon_errors("<Sysmon>\n<EventFiltering>\n</Sysmon>\n");
    assert!(
        errs[0].message.starts_with("XML error") && errs[0].loc.line == 3,
        "{}",
        errs[0]
    );
}
