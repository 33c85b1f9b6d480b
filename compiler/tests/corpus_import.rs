//! The third-party corpus imports: all 17 Sigma `pipe_created` rules, every
//! Sysmon module, and the real Sysmon event matches the rule that targets it.

use std::path::PathBuf;

use pipe_compiler::import::load_paths;
use pipe_compiler::model::{Action, RuleSet, Severity};
use test_kit::reference::{eval_rule, matching_ids, RefEvent};

/// A path in the repository (third-party data under `third_party/`, the
/// project's own lists under `data/`).
fn corpus(rel: &str) -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../")).join(rel)
}

/// The 17 SigmaHQ `pipe_created` rules (third_party/sigma/README.md).
const SIGMA_PIPE: &str = "third_party/sigma/rules/windows/pipe_created";
/// The 30 sysmon-modular pipe-event modules.
const SYSMON_MODULAR: &str = "third_party/sysmon-modular/17_18_pipe_event";
/// SigmaHQ's mixed tree: the pipe rules and rules of other log sources.
const SIGMA_TREE: &str = "third_party/sigma";
/// Derived from the exclude modules (third_party/sysmon-modular/README.md).
const BENIGN_TSV: &str = "third_party/sysmon-modular/derived/benign_pipename_patterns.tsv";
/// SwiftOnSecurity's whole Sysmon configuration.
const SYSMON_CONFIG: &str = "third_party/sysmon-config/sysmonconfig-export.xml";
/// The real Sysmon Event ID 17 of SigmaHQ's regression data, as JSON.
const REDSUN_JSON: &str = "third_party/sigma/regression_data/rules-emerging-threats/2026/Exploits/RedSun/pipe_created_win_exploit_redsun_named_pipe/9b4e7c2a-3f6d-4a8b-b5e9-1c7d3f2e6a4b.json";

fn load(rel: &str) -> RuleSet {
    match load_paths(&[corpus(rel)]) {
        Ok(s) => s,
        Err(errs) => {
            for e in &errs {
                eprintln!("{e}");
            }
            panic!("{} import errors in {rel}", errs.len());
        }
    }
}

fn ev<'a>(name: &'a str, image: Option<&'a str>) -> RefEvent<'a> {
    RefEvent {
        pipe_name: name,
        image,
        pid: 4242,
        kind: 1,
        user: None,
    }
}

#[test]
fn all_17_sigma_rules_import() {
    let set = load(SIGMA_PIPE);
    assert_eq!(set.rules.len(), 17);
    let mut ids: Vec<u32> = set.rules.iter().map(|r| r.id).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 17, "ids are unique");
    for r in &set.rules {
        assert_eq!(r.action, Action::ALERT);
        assert!(r.source.line > 0, "{}: source has a line", r.name);
    }
    let cs = set
        .rules
        .iter()
        .find(|r| r.id == 0xd560_1f8c)
        .expect("CobaltStrike Named Pipe (d5601f8c-...)");
    assert_eq!(cs.name, "CobaltStrike Named Pipe");
    assert_eq!(cs.severity, Severity::CRITICAL);
}

fn rule<'a>(set: &'a RuleSet, title: &str) -> &'a pipe_compiler::model::Rule {
    set.rules
        .iter()
        .find(|r| r.name == title)
        .unwrap_or_else(|| panic!("no rule titled {title}"))
}

#[test]
fn sigma_corpus_semantics() {
    let set = load(SIGMA_PIPE);
    // The issue's acceptance example.
    let hits = matching_ids(&set, &ev(r"\postex_1234", Some(r"C:\x\beacon.exe")));
    assert!(hits.contains(&0xd560_1f8c), "{hits:x?}");

    let cs = rule(&set, "CobaltStrike Named Pipe");
    assert!(eval_rule(cs, &ev(r"\MSSE-1234-server", None)));
    assert!(
        eval_rule(cs, &ev(r"\msse-1234-SERVER", None)),
        "case-insensitive"
    );
    assert!(
        !eval_rule(cs, &ev(r"\MSSE-1234", None)),
        "contains|all needs both"
    );
    assert!(!eval_rule(cs, &ev(r"\xpostex_1", None)));

    // `\Posh*`: wildcard in a plain value.
    let mal = rule(&set, "Malicious Named Pipe Created");
    assert!(eval_rule(mal, &ev(r"\PoshC2_x", None)));
    assert!(eval_rule(mal, &ev(r"\posh", None)));
    assert!(!eval_rule(mal, &ev(r"\xPosh", None)));
    assert!(eval_rule(mal, &ev(r"\ADSCHEMERPC", None)));
    assert!(
        !eval_rule(mal, &ev(r"\adschemerpc2", None)),
        "plain value is whole-field equality"
    );

    // Backslashes before normal characters stay literal.
    let adfs = rule(&set, "ADFS Database Named Pipe Connection By Uncommon Tool");
    assert!(eval_rule(
        adfs,
        &ev(r"\MICROSOFT##WID\tsql\query", Some(r"C:\tools\evil.exe"))
    ));
    assert!(
        !eval_rule(
            adfs,
            &ev(
                r"\MICROSOFT##WID\tsql\query",
                Some(r"C:\Windows\System32\mmc.exe")
            )
        ),
        "filter_main"
    );
    // Missing image: the filter's atoms are false, so `not filter` holds.
    assert!(eval_rule(adfs, &ev(r"\microsoft##wid\TSQL\QUERY", None)));

    // `Image: null` filter: a pipe from an unknown image is filtered out.
    let alt = rule(&set, "Alternate PowerShell Hosts Pipe");
    assert!(eval_rule(
        alt,
        &ev(r"\PSHost.1.2.evil", Some(r"C:\evil\host.exe"))
    ));
    assert!(
        !eval_rule(alt, &ev(r"\PSHost.1.2.evil", None)),
        "filter_main_null"
    );
    assert!(
        !eval_rule(alt, &ev(r"\PSHost.1.2.evil", Some(""))),
        "empty image is null too"
    );
    assert!(!eval_rule(
        alt,
        &ev(
            r"\PSHost.x",
            Some(r"C:\Windows\System32\WindowsPowerShell\v1.0\powershell.exe")
        )
    ));
    assert!(!eval_rule(
        alt,
        &ev(
            r"\PSHost.x",
            Some(r"C:\Program Files (x86)\Microsoft SQL Server\130\Tools\Binn\SQLPS.exe")
        )
    ));
    assert!(
        eval_rule(
            alt,
            &ev(
                r"\PSHost.x",
                Some(r"D:\Microsoft SQL Server\130\Tools\Binn\SQLPS.exe")
            )
        ),
        "all three sqlserver fields needed"
    );

    // Regex rule: unanchored, case-sensitive.
    let re = rule(&set, "CobaltStrike Named Pipe Pattern Regex");
    assert!(eval_rule(
        re,
        &ev(r"\mojo.5688.8052.183894939787088877ab", None)
    ));
    assert!(eval_rule(re, &ev(r"\x\wkssvc_0f-tail", None)), "unanchored");
    assert!(
        !eval_rule(re, &ev(r"\WKSSVC_0F", None)),
        "re is case-sensitive"
    );
    assert!(eval_rule(re, &ev(r"\f53fab", None)));
    assert!(
        !eval_rule(re, &ev(r"\f53fabc", None)),
        "self-anchored with $"
    );

    // EfsPotato: `selection and not 1 of filter_optional_*`.
    let efs = rule(&set, "HackTool - EfsPotato Named Pipe Creation");
    assert!(eval_rule(efs, &ev(r"\x\pipe\srvsvc", None)));
    assert!(
        !eval_rule(efs, &ev(r"\pipe\srvsvc", None)),
        "startswith filter"
    );
    assert!(
        !eval_rule(efs, &ev(r"\x\pipe\CtxShare", None)),
        "contains filter"
    );
}

/// The real Sysmon event (pipe `\REDSUN`, from SigmaHQ's regression data) is
/// the regression case of SigmaHQ's emerging-threats rule "RedSun - REDSUN
/// Exploit Named Pipe Created" (id 9b4e7c2a-...), which is not one of the 17
/// `rules/windows/pipe_created` rules in the corpus: none of those match it.
/// A Sigma rule with that rule's detection (written here) does.
#[test]
fn real_sysmon_event_matches_its_sigma_rule() {
    let json = std::fs::read_to_string(corpus(REDSUN_JSON)).expect("event");
    let field = |name: &str| -> String {
        let key = format!("\"{name}\": \"");
        let start = json.find(&key).unwrap_or_else(|| panic!("{name} in event")) + key.len();
        let rest = &json[start..];
        let end = rest.find('"').expect("closing quote");
        rest[..end].replace("\\\\", "\\")
    };
    let pipe = field("PipeName");
    let image = field("Image");
    assert_eq!(pipe, r"\REDSUN");
    assert_eq!(image, r"C:\Users\xodih\Downloads\RedSun.exe");
    let e = RefEvent {
        pipe_name: &pipe,
        image: Some(&image),
        pid: 15596,
        kind: 1,
        user: None,
    };

    let set = load(SIGMA_PIPE);
    let hits: Vec<&str> = set
        .rules
        .iter()
        .filter(|r| eval_rule(r, &e))
        .map(|r| r.name.as_str())
        .collect();
    assert!(hits.is_empty(), "no corpus rule targets REDSUN: {hits:?}");

    let dir = std::env::temp_dir().join(format!("pipe-redsun-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp");
    let rule = dir.join("redsun.yml");
    std::fs::write(
        &rule,
        "title: REDSUN exploit pipe\nid: 9b4e7c2a-3f6d-4a8b-b5e9-1c7d3f2e6a4b\n\
         logsource:\n  category: pipe_created\n  product: windows\n\
         detection:\n  selection:\n    PipeName: '\\REDSUN'\n  condition: selection\nlevel: critical\n",
    )
    .expect("write");
    let set = load_paths(&[rule]).expect("imports");
    std::fs::remove_dir_all(&dir).ok();
    assert_eq!(set.rules[0].id, 0x9b4e_7c2a);
    assert!(eval_rule(&set.rules[0], &e));
    assert!(
        eval_rule(
            &set.rules[0],
            &RefEvent {
                pipe_name: r"\redsun",
                ..e
            }
        ),
        "case-insensitive"
    );
    assert!(!eval_rule(
        &set.rules[0],
        &RefEvent {
            pipe_name: r"\REDSUN2",
            ..e
        }
    ));
}

#[test]
fn every_sysmon_file_imports_alone() {
    let mut files: Vec<PathBuf> = std::fs::read_dir(corpus(SYSMON_MODULAR))
        .expect("dir")
        .map(|e| e.expect("entry").path())
        .collect();
    files.sort();
    assert_eq!(files.len(), 30);
    files.push(corpus(SYSMON_CONFIG));
    for f in &files {
        if let Err(errs) = load_paths(std::slice::from_ref(f)) {
            for e in &errs {
                eprintln!("{e}");
            }
            panic!("{} errors in {}", errs.len(), f.display());
        }
    }
}

/// The vendored benign-pattern table is exactly what its README says: one
/// row (condition, value, module) per `<PipeName>` filter of the
/// `exclude_*.xml` modules, in file order.
#[test]
fn benign_patterns_are_derived_from_the_modules() {
    let mut files: Vec<PathBuf> = std::fs::read_dir(corpus(SYSMON_MODULAR))
        .expect("dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("exclude_") && n.ends_with(".xml"))
        })
        .collect();
    files.sort();
    let mut rebuilt = String::new();
    for f in &files {
        let text = std::fs::read_to_string(f).expect("read");
        let doc = roxmltree::Document::parse(&text).expect("xml");
        let module = f.file_name().and_then(|n| n.to_str()).expect("name");
        for n in doc.descendants().filter(|n| n.has_tag_name("PipeName")) {
            let cond = n.attribute("condition").unwrap_or("is");
            let value = n.text().unwrap_or("");
            rebuilt.push_str(&format!("{cond}\t{value}\t{module}\n"));
        }
    }
    let committed = std::fs::read_to_string(corpus(BENIGN_TSV)).expect("tsv");
    assert!(rebuilt.lines().count() > 30);
    assert_eq!(committed, rebuilt);
}

/// A whole Sigma tree: the pipe rules imported, the others counted per log
/// source; a rule of another log source named explicitly is an error.
#[test]
fn sigma_tree_keeps_the_pipe_rules_and_counts_the_others() {
    use pipe_compiler::import::{load_tree, ImportOptions};
    let opts = ImportOptions {
        skip_other_log_sources: true,
        ..ImportOptions::default()
    };
    let t = load_tree(&[corpus(SIGMA_TREE)], &opts);
    assert!(t.errors.is_empty() && t.unsupported.is_empty(), "{t:?}");
    assert_eq!(t.set.rules.len(), 20);
    assert_eq!(t.sigma_ids.len(), 20);
    let others: Vec<(&str, usize)> = t
        .other_log_sources
        .iter()
        .map(|(k, v)| (k.as_str(), *v))
        .collect();
    assert_eq!(
        others,
        [
            ("file_event", 1),
            ("network_connection", 1),
            ("process_creation", 1),
            ("registry_set", 1),
            ("service:security", 2),
            ("service:system", 1)
        ]
    );
    // Without skipping (the default, and `--strict`): errors, as before.
    let strict = load_tree(&[corpus(SIGMA_TREE)], &ImportOptions::default());
    assert!(strict.other_log_sources.is_empty());
    assert!(strict.unsupported.is_empty());
    assert!(strict.errors.iter().any(|e| e
        .message
        .contains("logsource category `registry_set` is not supported")));
    assert!(load_paths(&[corpus(SIGMA_TREE)]).is_err());
    // Named explicitly: an error even when skipping.
    let f = corpus(
        "third_party/sigma/rules/windows/network_connection/net_connection_win_remote_access_tools_anydesk_incoming_connection.yml",
    );
    let t = load_tree(&[f], &opts);
    assert_eq!(t.other_total(), 0);
    assert!(t.errors.iter().any(|e| e
        .message
        .contains("logsource category `network_connection` is not supported")));
}
