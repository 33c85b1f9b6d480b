//! Sysmon `PipeEvent` semantics: include/exclude (exclude wins), empty
//! blocks, every documented condition, groups, and the merged corpus.

use std::path::PathBuf;

mod tables;

use pipe_compiler::import::{load_paths, sysmon, SysmonOptions};
use pipe_compiler::model::{Action, RuleSet, Severity};
use test_kit::reference::{matching_ids, RefEvent};

fn config(blocks: &[(&str, &str)]) -> String {
    let mut s = String::from("<Sysmon schemaversion=\"4.50\">\n  <EventFiltering>\n");
    for (onmatch, filters) in blocks {
        s.push_str(&format!(
            "    <RuleGroup name=\"\" groupRelation=\"or\">\n      <PipeEvent onmatch=\"{onmatch}\">\n{filters}\n      </PipeEvent>\n    </RuleGroup>\n"
        ));
    }
    s.push_str("  </EventFiltering>\n</Sysmon>\n");
    s
}

fn import(files: &[String]) -> RuleSet {
    let files: Vec<(PathBuf, String)> = files
        .iter()
        .enumerate()
        .map(|(i, t)| (PathBuf::from(format!("cfg{i}.xml")), t.clone()))
        .collect();
    match sysmon::import(&files, &SysmonOptions::default()) {
        Ok(rules) => RuleSet { rules },
        Err(e) => panic!("{e:?}"),
    }
}

struct Ev<'a> {
    name: &'a str,
    image: Option<&'a str>,
    pid: u32,
    kind: u32,
}

const fn ev(name: &str) -> Ev<'_> {
    Ev {
        name,
        image: None,
        pid: 100,
        kind: 1,
    }
}

fn reported(set: &RuleSet, e: &Ev<'_>) -> bool {
    !matching_ids(
        set,
        &RefEvent {
            pipe_name: e.name,
            image: e.image,
            pid: e.pid,
            kind: e.kind,
            user: None,
        },
    )
    .is_empty()
}

#[test]
fn exclude_wins_over_include() {
    let set = import(&[config(&[
        (
            "include",
            r#"<PipeName condition="begin with">\postex_</PipeName>"#,
        ),
        ("exclude", r#"<Image condition="is">C:\ok.exe</Image>"#),
    ])]);
    assert_eq!(set.rules.len(), 1);
    assert!(reported(
        &set,
        &Ev {
            image: Some(r"C:\evil.exe"),
            ..ev(r"\postex_1")
        }
    ));
    assert!(
        reported(&set, &ev(r"\postex_1")),
        "no image: the exclude atom is false"
    );
    assert!(
        !reported(
            &set,
            &Ev {
                image: Some(r"c:\OK.EXE"),
                ..ev(r"\postex_1")
            }
        ),
        "exclude wins, case-insensitive"
    );
    assert!(!reported(&set, &ev(r"\other")));
}

#[test]
fn empty_blocks() {
    // `onmatch="include"` with no filters includes nothing.
    let set = import(&[config(&[("include", "")])]);
    assert!(set.rules.is_empty());
    assert!(!reported(&set, &ev(r"\anything")));
    // `onmatch="exclude"` with no filters excludes nothing: everything is reported.
    let set = import(&[config(&[("exclude", "")])]);
    assert_eq!(set.rules.len(), 1);
    assert!(reported(&set, &ev(r"\anything")));
    // Only exclude filters: everything not excluded.
    let set = import(&[config(&[(
        "exclude",
        r#"<PipeName condition="is">\srvsvc</PipeName>"#,
    )])]);
    assert!(reported(&set, &ev(r"\anything")));
    assert!(!reported(&set, &ev(r"\SRVSVC")));
    // An empty include block next to an exclude-only file still means
    // "include nothing" for the merged config.
    let set = import(&[
        config(&[("include", "")]),
        config(&[("exclude", r#"<PipeName>\x</PipeName>"#)]),
    ]);
    assert!(!reported(&set, &ev(r"\anything")));
}

#[test]
fn every_condition() {
    // (field element, value, pipe name, image, expected)
    let table = tables::SYSMON_TABLE;
    let mut failures = Vec::new();
    for (filter, _, name, image, expected) in table {
        let set = import(&[config(&[("include", filter)])]);
        let got = reported(
            &set,
            &Ev {
                image: *image,
                ..ev(name)
            },
        );
        if got != *expected {
            failures.push(format!(
                "{filter} on {name:?} image {image:?}: expected {expected}, got {got}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn groups() {
    // <Rule groupRelation="and">: all fields.
    let and = import(&[config(&[(
        "include",
        r#"<Rule groupRelation="and"><PipeName condition="begin with">\a</PipeName><Image condition="end with">\x.exe</Image></Rule>"#,
    )])]);
    assert!(reported(
        &and,
        &Ev {
            image: Some(r"C:\x.exe"),
            ..ev(r"\ab")
        }
    ));
    assert!(!reported(
        &and,
        &Ev {
            image: Some(r"C:\y.exe"),
            ..ev(r"\ab")
        }
    ));
    assert!(!reported(&and, &ev(r"\ab")));
    // <Rule groupRelation="or">: any field.
    let or = import(&[config(&[(
        "include",
        r#"<Rule groupRelation="or"><PipeName condition="begin with">\a</PipeName><Image condition="end with">\x.exe</Image></Rule>"#,
    )])]);
    assert!(reported(&or, &ev(r"\ab")));
    assert!(reported(
        &or,
        &Ev {
            image: Some(r"C:\x.exe"),
            ..ev(r"\zz")
        }
    ));
    // <RuleGroup groupRelation="and">: all filters of the event element.
    let xml = "<Sysmon><EventFiltering><RuleGroup groupRelation=\"and\"><PipeEvent onmatch=\"include\">\
               <PipeName condition=\"begin with\">\\a</PipeName><PipeName condition=\"end with\">z</PipeName>\
               </PipeEvent></RuleGroup></EventFiltering></Sysmon>";
    let grp = import(&[xml.to_string()]);
    assert_eq!(grp.rules.len(), 1);
    assert!(reported(&grp, &ev(r"\abz")));
    assert!(!reported(&grp, &ev(r"\ab")));
    // Old schema: PipeEvent directly under EventFiltering; same field OR,
    // different fields AND.
    let old = import(&["<Sysmon><EventFiltering><PipeEvent onmatch=\"include\">\
        <PipeName>\\x</PipeName><PipeName condition=\"begin with\">\\y</PipeName>\
        <Image condition=\"end with\">\\a.exe</Image></PipeEvent></EventFiltering></Sysmon>"
        .to_string()]);
    assert_eq!(old.rules.len(), 1);
    assert!(reported(
        &old,
        &Ev {
            image: Some(r"C:\A.EXE"),
            ..ev(r"\X")
        }
    ));
    assert!(reported(
        &old,
        &Ev {
            image: Some(r"C:\a.exe"),
            ..ev(r"\y2")
        }
    ));
    assert!(!reported(&old, &ev(r"\X")), "different fields AND");
    assert!(!reported(
        &old,
        &Ev {
            image: Some(r"C:\a.exe"),
            ..ev(r"\z")
        }
    ));
    // Default groupRelation of RuleGroup and Rule is AND.
    let dflt = import(&["<Sysmon><EventFiltering><RuleGroup><PipeEvent onmatch=\"include\">\
        <PipeName condition=\"begin with\">\\a</PipeName>\
        <Rule><PipeName condition=\"end with\">z</PipeName><PipeName condition=\"contains\">m</PipeName></Rule>\
        </PipeEvent></RuleGroup></EventFiltering></Sysmon>"
        .to_string()]);
    assert_eq!(dflt.rules.len(), 1);
    assert!(reported(&dflt, &ev(r"\amz")));
    assert!(!reported(&dflt, &ev(r"\az")));
    assert!(!reported(&dflt, &ev(r"\mz")));
}

#[test]
fn options_and_ids() {
    let text = config(&[(
        "include",
        "<PipeName>\\a</PipeName>\n<PipeName name=\"tech=T1\">\\b</PipeName>",
    )]);
    let files = vec![(PathBuf::from("dir1/x.xml"), text.clone())];
    let opts = SysmonOptions {
        severity: Severity::HIGH,
        action: Action::BLOCK,
    };
    let rules = sysmon::import(&files, &opts).expect("imports");
    assert_eq!(rules.len(), 2);
    assert!(rules
        .iter()
        .all(|r| r.severity == Severity::HIGH && r.action == Action::BLOCK));
    assert_eq!(rules[1].name, "Sysmon: tech=T1");
    assert_eq!((rules[1].source.line, rules[1].source.col), (6, 1));
    assert_ne!(rules[0].id, rules[1].id);
    // Ids depend on the file name and position, not the directory.
    let again = sysmon::import(
        &[(PathBuf::from("elsewhere/x.xml"), text)],
        &SysmonOptions::default(),
    )
    .expect("imports");
    assert_eq!(
        rules.iter().map(|r| r.id).collect::<Vec<_>>(),
        again.iter().map(|r| r.id).collect::<Vec<_>>()
    );
    assert_eq!(again[0].severity, Severity::INFORMATIONAL);
    assert_eq!(again[0].action, Action::ALERT);
}

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

#[test]
fn merged_sysmon_modular_corpus() {
    let set = match load_paths(&[corpus(SYSMON_MODULAR), corpus(SYSMON_CONFIG)]) {
        Ok(s) => s,
        Err(e) => panic!("{e:?}"),
    };
    assert!(set.rules.len() > 20, "{}", set.rules.len());
    let chrome = Some(r"C:\Program Files\Google\Chrome\Application\chrome.exe");
    let evil = Some(r"C:\Users\bob\Downloads\x.exe");
    // include_cobaltstrike / SwiftOnSecurity.
    assert!(reported(
        &set,
        &Ev {
            image: evil,
            ..ev(r"\postex_1234")
        }
    ));
    assert!(reported(
        &set,
        &Ev {
            image: evil,
            ..ev(r"\MSSE-1234-server")
        }
    ));
    // include_srvsvc includes `\srvsvc*`, but exclude_windows_generic
    // excludes exactly `\srvsvc`: exclude wins.
    assert!(!reported(
        &set,
        &Ev {
            image: evil,
            ..ev(r"\srvsvc")
        }
    ));
    assert!(reported(
        &set,
        &Ev {
            image: evil,
            ..ev(r"\srvsvc_x")
        }
    ));
    // include_all reports every created pipe not excluded.
    assert!(reported(
        &set,
        &Ev {
            image: evil,
            ..ev(r"\some.random.pipe")
        }
    ));
    assert!(
        !reported(
            &set,
            &Ev {
                image: evil,
                kind: 2,
                ..ev(r"\some.random.pipe")
            }
        ),
        "include_all is CreatePipe only"
    );
    // exclude_google_chrome: chrome's mojo pipes are not reported.
    assert!(!reported(
        &set,
        &Ev {
            image: chrome,
            ..ev(r"\mojo.1234.5678.1")
        }
    ));
    assert!(reported(
        &set,
        &Ev {
            image: evil,
            ..ev(r"\mojo.1234.5678.1")
        }
    ));
    // exclude_windows_generic: `Anonymous Pipe`.
    assert!(!reported(
        &set,
        &Ev {
            image: evil,
            ..ev(r"\Win32Pipes.1.Anonymous Pipe")
        }
    ));
}

#[test]
fn sigma_and_sysmon_load_together() {
    let set = load_paths(&[
        corpus(SIGMA_PIPE),
        corpus(SYSMON_MODULAR),
        corpus(SYSMON_CONFIG),
    ])
    .expect("no id collisions");
    assert!(set.rules.len() > 17);
}
