//! The compiler refuses block rules that can match what the sensor never
//! denies (sensor_core::protect), naming the rule and an example; alert
//! rules and block rules that cannot match there compile.

use std::path::Path;

use pipe_compiler::import::{load_paths, load_yaml};
use pipe_compiler::model::RuleSet;
use pipe_compiler::protect::{check_file, Case};
use pipe_compiler::{compile, compile_unchecked, AlignedBytes, CompileErrorKind, CompileOptions};

fn rules(body: &str) -> RuleSet {
    let yaml = format!(
        "- id: 7\n  name: the rule\n  severity: high\n  action: block\n  detection:\n{body}"
    );
    RuleSet {
        rules: load_yaml(Path::new("t.yml"), &yaml).unwrap_or_else(|e| panic!("{e:?}\n{yaml}")),
    }
}

/// The message of the refusal, or `None` when the rule compiles.
fn refusal(body: &str) -> Option<String> {
    match compile(&rules(body), &CompileOptions::default()) {
        Ok(_) => None,
        Err(e) => {
            assert_eq!(e.kind, CompileErrorKind::Protected, "{e}");
            assert_eq!(e.rule.as_ref().map(|r| r.0), Some(7));
            assert!(e.to_string().contains("t.yml:"), "names the source: {e}");
            Some(e.to_string())
        }
    }
}

#[test]
fn refused_with_an_example() {
    for (body, want) in [
        // The name itself, in another case, as a glob, as a regex.
        (
            "    s:\n      PipeName: '\\lsass'\n    condition: s\n",
            "protected pipe \\lsass, e.g. \\lsass created by",
        ),
        (
            "    s:\n      PipeName: '\\SAMR'\n    condition: s\n",
            "protected pipe \\samr",
        ),
        (
            "    s:\n      PipeName|glob: '*ls*'\n    condition: s\n",
            "protected pipe \\lsass",
        ),
        (
            "    s:\n      PipeName|re: '^\\\\(spool|print)ss$'\n    condition: s\n",
            "protected pipe \\spoolss",
        ),
        // No condition on the name: it denies protected pipes too.
        (
            "    s:\n      Image|endswith: '\\svchost.exe'\n    condition: s\n",
            "protected pipe \\lsass, e.g. \\lsass created by C:\\Windows\\System32\\svchost.exe",
        ),
        // A critical process's ordinary pipes.
        (
            "    n:\n      PipeName|startswith: '\\Winsock2\\'\n    i:\n      Image|endswith: '\\lsass.exe'\n    condition: n and i\n",
            "critical process <SystemRoot>\\System32\\lsass.exe, e.g. \\Winsock2\\CatalogChangeListener-1f4-0 created by C:\\Windows\\System32\\lsass.exe",
        ),
        // The System process creating a pipe.
        (
            "    n:\n      PipeName|startswith: '\\Winsock2\\'\n    p:\n      ProcessId: 4\n    condition: n and p\n",
            "the System process creating a pipe, e.g. \\Winsock2\\CatalogChangeListener-1f4-0 created by the System process",
        ),
    ] {
        let msg = refusal(body).unwrap_or_else(|| panic!("compiled: {body}"));
        assert!(msg.contains(want), "{msg}\n  wanted: {want}");
        assert!(msg.contains("rule 7 (the rule): this block rule matches"), "{msg}");
    }
}

#[test]
fn found_only_by_the_symbolic_check() {
    // A case-sensitive regex in a letter case none of the examples uses.
    let msg = refusal("    s:\n      PipeName|re: '^\\\\LsAsS$'\n    condition: s\n").unwrap();
    assert!(
        msg.contains("\\lsass") && msg.contains("symbolic check"),
        "{msg}"
    );
    // A name together with a condition on an image no example has.
    let msg = refusal(
        "    n:\n      PipeName: '\\netlogon'\n    i:\n      Image|contains: 'evil'\n    condition: n and i\n",
    )
    .unwrap();
    assert!(
        msg.contains("\\netlogon") && msg.contains("symbolic"),
        "{msg}"
    );
    // A critical process singled out by its image, Windows on another drive.
    let msg = refusal(
        "    n:\n      PipeName|startswith: '\\postex_'\n    i:\n      Image: 'E:\\Windows\\System32\\services.exe'\n    condition: n and i\n",
    )
    .unwrap();
    assert!(
        msg.contains("services.exe") && msg.contains("symbolic"),
        "{msg}"
    );
    // The System process singled out by its process id.
    let msg = refusal(
        "    n:\n      PipeName|startswith: '\\postex_'\n    p:\n      ProcessId: 4\n    condition: n and p\n",
    )
    .unwrap();
    assert!(
        msg.contains("System process") && msg.contains("symbolic"),
        "{msg}"
    );
}

#[test]
fn accepted() {
    for body in [
        // Near misses of protected names.
        "    s:\n      PipeName: '\\lsass2'\n    condition: s\n",
        "    s:\n      PipeName|startswith: '\\lsass\\'\n    condition: s\n",
        "    s:\n      PipeName|glob: '\\x\\pipe\\spoolss'\n    condition: s\n",
        // A protected name excluded explicitly.
        "    s:\n      PipeName|startswith: '\\s'\n    p:\n      PipeName: ['\\samr', '\\spoolss', '\\srvsvc', '\\scerpc', '\\svcctl']\n    condition: s and not p\n",
        // Images that are not critical, or many programs (Windows binaries
        // used by attackers), with a pipe name that is not protected.
        "    n:\n      PipeName|startswith: '\\postex_'\n    i:\n      Image|endswith: '\\svchost.exe'\n    condition: n and i\n",
        "    n:\n      PipeName|startswith: '\\postex_'\n    i:\n      Image|contains: '\\Windows\\'\n    condition: n and i\n",
        "    n:\n      PipeName|startswith: '\\postex_'\n    i:\n      Image|endswith: '\\syswow64\\lsass.exe'\n    condition: n and i\n",
        "    n:\n      PipeName|startswith: '\\postex_'\n    i:\n      Image|contains: '\\Downloads\\'\n    condition: n and i\n",
        // Excluding the critical processes by name.
        "    n:\n      PipeName|startswith: '\\postex_'\n    i:\n      Image|endswith: ['\\lsass.exe', '\\services.exe']\n    condition: n and not i\n",
        // Connections by the System process (the SMB server's remote clients).
        "    s:\n      PipeName|startswith: '\\msagent_'\n    k:\n      EventKind: connect\n    condition: s and k\n",
        // The regex of the Wine test's content 2.
        "    s:\n      PipeName|re: '^\\\\v2re_[0-9]{3}$'\n    condition: s\n",
    ] {
        assert_eq!(refusal(body), None, "{body}");
    }
    // An alert rule on \lsass compiles.
    let mut set = rules("    s:\n      PipeName: '\\lsass'\n    condition: s\n");
    set.rules[0].action = pipe_compiler::model::Action::ALERT;
    assert!(compile(&set, &CompileOptions::default()).is_ok());
}

#[test]
fn the_repositorys_rules_and_corpus_compile() {
    // rules/ (two block rules) and the Sigma corpus (alert rules).
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let set = load_paths(&[root.join("rules"), root.join("../shared/corpus/sigma")]).unwrap();
    compile(&set, &CompileOptions::default()).unwrap();
}

#[test]
fn the_low_level_writer_does_not_check_and_the_check_reads_any_file() {
    let set = rules("    s:\n      PipeName: '\\lsass'\n    condition: s\n");
    let bytes = compile_unchecked(&set, &CompileOptions::default()).unwrap();
    let aligned = AlignedBytes::new(&bytes);
    let file = channel_parser::parse(aligned.as_slice(), &Default::default()).unwrap();
    let found = check_file(&file);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].rule_id, 7);
    assert!(matches!(found[0].case, Case::Name(p) if p.name == "\\lsass"));
    assert!(found[0].example.is_some());
}

#[test]
fn docs_list_every_protected_entry_with_its_reason() {
    let doc =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/rules.md"))
            .unwrap();
    for p in sensor_core::protect::PROTECTED_PIPES {
        let row = format!("| `{}` | {} |", p.name, p.reason);
        assert!(doc.contains(&row), "docs/rules.md lacks the row {row}");
    }
    for c in sensor_core::protect::CRITICAL_IMAGES {
        let row = format!("| `{}` | {} |", c.file, c.reason);
        assert!(doc.contains(&row), "docs/rules.md lacks the row {row}");
    }
}
