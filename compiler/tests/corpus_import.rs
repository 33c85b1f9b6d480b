//! The third-party corpus imports: all 17 Sigma `pipe_created` rules, every
//! Sysmon module, and the real Sysmon event matches the rule that targets it.

use std::path::PathBuf;

use pipe_compiler::import::load_paths;
use pipe_compiler::model::{Action, RuleSet, Severity};
use test_kit::reference::{eval_rule, matching_ids, RefEvent};

fn corpus(rel: &str) -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/corpus/")).join(rel)
}

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
    }
}

#[test]
fn all_17_sigma_rules_import() {
    let set = load("sigma");
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
    let set = load("sigma");
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
    let json = std::fs::read_to_string(corpus("events/sysmon_eid17_redsun.json")).expect("event");
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
    };

    let set = load("sigma");
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
    let dir = corpus("sysmon");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("dir")
        .map(|e| e.expect("entry").path())
        .collect();
    files.sort();
    assert_eq!(files.len(), 31);
    for f in &files {
        if let Err(errs) = load_paths(std::slice::from_ref(f)) {
            for e in &errs {
                eprintln!("{e}");
            }
            panic!("{} errors in {}", errs.len(), f.display());
        }
    }
}
