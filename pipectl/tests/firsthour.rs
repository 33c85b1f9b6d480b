//! End-to-end tests of what a rule author hits in the first hour (issue 16,
//! items 1-8): key files that cannot be mixed up, signature status and the
//! default driver's verdict, one evaluation path for `match` / `test` / the
//! driver, output paths, embedded cases at compile time, rule-level diffs
//! and readable output.

use serde_json::Value;
use std::path::Path;
use std::process::Output;

mod common;
use common::{assert_no_panic, corpus, pipectl, root, text, tmp, SIGMA_PIPE};

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn ok(o: &Output) -> String {
    assert_no_panic(o);
    assert_eq!(
        o.status.code(),
        Some(0),
        "stdout: {}\nstderr: {}",
        text(&o.stdout),
        text(&o.stderr)
    );
    text(&o.stdout)
}

fn code(o: &Output, want: i32) -> (String, String) {
    assert_no_panic(o);
    assert_eq!(
        o.status.code(),
        Some(want),
        "stdout: {}\nstderr: {}",
        text(&o.stdout),
        text(&o.stderr)
    );
    (text(&o.stdout), text(&o.stderr))
}

fn json(o: &Output) -> Value {
    serde_json::from_str(&ok(o)).unwrap()
}

fn rules() -> String {
    root().join("rules").to_string_lossy().into_owned()
}

fn write(p: &Path, t: &str) {
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, t).unwrap();
}

/// Key id printed by `keygen`.
fn keygen(prefix: &Path) -> String {
    let out = ok(&pipectl(&["keygen", s(prefix)]));
    out.split("key id ")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

// --- 1. keys ---------------------------------------------------------------

#[test]
fn sign_refuses_a_public_key_and_compile_names_the_signing_key() {
    let dir = tmp("firsthour", "keys");
    // The directory of the prefix does not exist yet: it is created.
    let prefix = dir.join("keys/release");
    let id = keygen(&prefix);
    let (sec, publ) = (dir.join("keys/release.key"), dir.join("keys/release.pub"));
    let sec_text = std::fs::read_to_string(&sec).unwrap();
    let pub_text = std::fs::read_to_string(&publ).unwrap();
    assert!(
        sec_text.starts_with("PIPE-SENSOR SECRET KEY\n"),
        "{sec_text}"
    );
    assert!(
        pub_text.starts_with("PIPE-SENSOR PUBLIC KEY\n"),
        "{pub_text}"
    );
    assert!(sec_text.contains(&format!("id {id}")) && pub_text.contains(&format!("id {id}")));
    // Neither half is overwritten by a second keygen.
    std::fs::remove_file(&sec).unwrap();
    let (_, err) = code(&pipectl(&["keygen", s(&prefix)]), 2);
    assert!(err.contains("release.pub exists"), "{err}");
    std::fs::write(&sec, &sec_text).unwrap();

    let out = dir.join("out/");
    let (_, err) = code(
        &pipectl(&["compile", &rules(), "-o", s(&out), "--sign", s(&publ)]),
        2,
    );
    assert!(
        err.contains("release.pub: this is a public key file; a secret key is needed here to sign"),
        "{err}"
    );
    assert!(
        !out.join("C-00000291-00000001.sys").exists(),
        "nothing written"
    );

    let o = ok(&pipectl(&[
        "compile",
        &rules(),
        "-o",
        s(&out),
        "--sign",
        s(&sec),
    ]));
    assert!(
        o.contains(&format!("signature: signed with key id {id} (")),
        "{o}"
    );
    let o = ok(&pipectl(&[
        "verify",
        s(&out.join("C-00000291-00000001.sys")),
        "--key",
        s(&publ),
    ]));
    assert!(o.contains(&format!("signature: valid, key id {id}")), "{o}");
    // A secret key is no verification key either.
    let (_, err) = code(
        &pipectl(&[
            "verify",
            s(&out.join("C-00000291-00000001.sys")),
            "--key",
            s(&sec),
        ]),
        2,
    );
    assert!(
        err.contains("this is a secret key file; a public key is needed"),
        "{err}"
    );
}

#[test]
fn mixed_up_pairs_and_old_key_files_are_refused_with_a_way_out() {
    let dir = tmp("firsthour", "legacy");
    let a = dir.join("a");
    let b = dir.join("b");
    keygen(&a);
    keygen(&b);
    // a.key beside a .pub of another key: refused, nothing signed.
    std::fs::copy(dir.join("b.pub"), dir.join("a.pub")).unwrap();
    let (_, err) = code(
        &pipectl(&[
            "compile",
            &rules(),
            "-o",
            s(&dir.join("x.sys")),
            "--sign",
            s(&dir.join("a.key")),
        ]),
        2,
    );
    assert!(err.contains("the pair is mixed up"), "{err}");

    // Files of the old format (64 hex digits, no header).
    let seed = "11".repeat(32);
    write(&dir.join("old.key"), &format!("{seed}\n"));
    let (_, err) = code(
        &pipectl(&[
            "compile",
            &rules(),
            "-o",
            s(&dir.join("y.sys")),
            "--sign",
            s(&dir.join("old.key")),
        ]),
        2,
    );
    let old = dir.join("old");
    assert!(
        err.contains("cannot be told whether this is a secret or a public key")
            && err.contains(&format!("pipectl keygen --upgrade {}", old.display())),
        "{err}"
    );
    // A .pub that is not the .key's public half is not upgraded.
    write(&dir.join("old.pub"), &format!("{}\n", "22".repeat(32)));
    let (_, err) = code(&pipectl(&["keygen", "--upgrade", s(&old)]), 2);
    assert!(err.contains("is not the public half of"), "{err}");
    // Without the wrong .pub, the .key is upgraded and its .pub written.
    std::fs::remove_file(dir.join("old.pub")).unwrap();
    let o = ok(&pipectl(&["keygen", "--upgrade", s(&old)]));
    assert!(
        o.contains("old.key (secret key file)") && o.contains("old.pub (public key file)"),
        "{o}"
    );
    let o = ok(&pipectl(&[
        "compile",
        &rules(),
        "-o",
        s(&dir.join("z.sys")),
        "--sign",
        s(&dir.join("old.key")),
    ]));
    assert!(o.contains("signed with key id"), "{o}");
    ok(&pipectl(&[
        "verify",
        s(&dir.join("z.sys")),
        "--key",
        s(&dir.join("old.pub")),
    ]));
    // Upgrading twice says so.
    let (_, err) = code(&pipectl(&["keygen", "--upgrade", s(&old)]), 2);
    assert!(err.contains("already a secret key file"), "{err}");
}

// --- 2. signature status and the default driver ---------------------------

#[test]
fn verify_and_inspect_report_unsigned_signed_and_tampered() {
    let dir = tmp("firsthour", "status");
    let id = keygen(&dir.join("k"));
    let unsigned = dir.join("u.sys");
    let signed = dir.join("s.sys");
    ok(&pipectl(&["compile", &rules(), "-o", s(&unsigned)]));
    ok(&pipectl(&[
        "compile",
        &rules(),
        "-o",
        s(&signed),
        "--sign",
        s(&dir.join("k.key")),
    ]));
    // One byte of a rule name changed after signing: still a valid format.
    let mut bytes = std::fs::read(&signed).unwrap();
    let i = bytes
        .windows(10)
        .position(|w| w == b"Credential")
        .expect("rule name in the strings");
    bytes[i] ^= 0x01;
    let tampered = dir.join("t.sys");
    std::fs::write(&tampered, &bytes).unwrap();

    let o = ok(&pipectl(&["verify", s(&unsigned)]));
    assert!(o.contains("signature: unsigned"), "{o}");
    assert!(
        o.contains("a default driver (RequireSignature 1")
            && o.contains("refuses it: the file is not signed [unsigned]"),
        "{o}"
    );
    let o = ok(&pipectl(&["verify", s(&signed)]));
    assert!(
        o.contains(&format!("signature: signed by key id {id} (intact)")),
        "{o}"
    );
    // The fresh key is not built into a driver from this tree.
    assert!(o.contains("refuses it") && o.contains("[wrong-key]"), "{o}");
    let (_, err) = code(&pipectl(&["verify", s(&tampered)]), 1);
    assert!(
        err.contains(&format!(
            "TAMPERED: the signature by key id {id} does not verify"
        )),
        "{err}"
    );
    // With the key: the driver trusting it loads the intact file only.
    let o = ok(&pipectl(&[
        "verify",
        s(&signed),
        "--key",
        s(&dir.join("k.pub")),
    ]));
    assert!(
        o.contains(&format!("loads it (signed by trusted key {id})")),
        "{o}"
    );
    let (_, err) = code(
        &pipectl(&["verify", s(&tampered), "--key", s(&dir.join("k.pub"))]),
        1,
    );
    assert!(err.contains("[tampered]"), "{err}");

    // inspect, text and JSON.
    let t = ok(&pipectl(&["inspect", s(&unsigned)]));
    assert!(
        t.contains("signature unsigned") && t.contains("[unsigned]"),
        "{t}"
    );
    let t = ok(&pipectl(&["inspect", s(&tampered)]));
    assert!(t.contains("signature TAMPERED"), "{t}");
    let v = json(&pipectl(&["inspect", s(&unsigned), "--json"]));
    assert_eq!(v["signature"]["status"], "unsigned");
    assert_eq!(v["default_driver"]["loads"], false);
    assert_eq!(v["default_driver"]["refusal"]["kind"], "unsigned");
    let v = json(&pipectl(&["inspect", s(&signed), "--json"]));
    assert_eq!(v["signature"]["status"], "signed");
    assert_eq!(v["signature"]["signatures"][0]["key_id"], id.as_str());
    assert_eq!(v["signature"]["signatures"][0]["intact"], true);
    assert_eq!(v["default_driver"]["require_signature"], true);
    assert_eq!(v["default_driver"]["refusal"]["kind"], "wrong-key");
    let v = json(&pipectl(&["inspect", s(&tampered), "--json"]));
    assert_eq!(v["signature"]["status"], "tampered");
    assert_eq!(v["signature"]["signatures"][0]["intact"], false);
    assert_eq!(v["default_driver"]["loads"], false);
}

// --- 3/4. one evaluation path ------------------------------------------------

#[test]
fn docs_example_case_matches_with_match_too_and_names_normalize() {
    let dir = tmp("firsthour", "eval");
    let f = dir.join("r.sys");
    ok(&pipectl(&["compile", &rules(), "-o", s(&f)]));
    // docs/rules.md: rule 0x2001's case {name: '\rpc_0f', image: 'C:\x.exe'}.
    let o = ok(&pipectl(&[
        "match",
        s(&f),
        r"\rpc_0f",
        "--image",
        r"C:\x.exe",
    ]));
    assert!(o.contains("rule 0x00002001 (8193)"), "{o}");
    assert!(o.contains("pid 0, kind create"), "{o}");
    // Every spelling the driver normalizes matches the same rules.
    let want = json(&pipectl(&["match", s(&f), r"\postex_1234", "--json"]))["matched"].clone();
    assert!(want.as_array().is_some_and(|a| !a.is_empty()));
    for n in [
        r"\\.\pipe\postex_1234",
        "postex_1234",
        r"\Device\NamedPipe\postex_1234",
        r"\??\pipe\postex_1234",
    ] {
        let v = json(&pipectl(&["match", s(&f), n, "--json"]));
        assert_eq!(v["matched"], want, "{n}");
        assert_eq!(v["normalized_name"], r"\postex_1234", "{n}");
    }
    let o = ok(&pipectl(&["match", s(&f), r"\\.\pipe\postex_1234"]));
    assert!(
        o.contains(r"'\postex_1234' (normalized from '\\.\pipe\postex_1234')"),
        "{o}"
    );
    // An empty name is an error, not a silent no-match.
    let (_, err) = code(&pipectl(&["match", s(&f), ""]), 2);
    assert!(err.contains("empty pipe name"), "{err}");
}

struct Case {
    rule: u32,
    name: String,
    image: Option<String>,
    pid: Option<u32>,
    kind: Option<u32>,
    expect: bool,
}

fn cases(set: &pipe_compiler::model::RuleSet) -> Vec<Case> {
    set.rules
        .iter()
        .flat_map(|r| {
            r.tests.iter().map(|c| Case {
                rule: r.id,
                name: c.pipe_name.clone(),
                image: c.image.clone(),
                pid: c.pid,
                kind: c.kind.map(|k| k.value()),
                expect: c.expect_match,
            })
        })
        .collect()
}

#[test]
fn match_test_and_driver_path_agree() {
    use channel_parser::Capabilities;
    use sensor_core::dospath::DeviceMap;
    use sensor_core::eval::{self, RawEvent, Work, DEFAULT_KIND, DEFAULT_PID};
    use sensor_core::ring::EventKind;

    let dir = tmp("firsthour", "agree");
    let fixture = root().join("pipectl/tests/fixtures/cases/equivalence.yml");
    let sources = [fixture.clone(), root().join("rules")];
    let f = dir.join("e.sys");
    let mut args = vec!["compile"];
    args.extend(sources.iter().map(|p| s(p)));
    args.extend(["-o", s(&f)]);
    ok(&pipectl(&args));
    // `pipectl test` passes every case (what it claims for each is below).
    let mut targs = vec!["test"];
    targs.extend(sources.iter().map(|p| s(p)));
    let t = ok(&pipectl(&targs));
    let set = pipe_compiler::import::load_paths(&sources).unwrap();
    let cases = cases(&set);
    assert!(
        t.contains(&format!("{} passed, 0 failed", cases.len())),
        "{t}"
    );
    assert!(cases.iter().any(|c| c.pid.is_some()) && cases.iter().any(|c| c.kind == Some(2)));

    // The driver's path: sensor_core::eval::evaluate (DFAs read in place).
    let bytes = std::fs::read(&f).unwrap();
    let aligned = pipe_compiler::AlignedBytes::new(&bytes);
    let file = channel_parser::parse(aligned.as_slice(), &Capabilities::SENSOR).unwrap();
    let mut work = Box::new(Work::new());
    let mut buffers = Box::new(eval::Buffers::new());
    let mut scratch = Box::new(channel_parser::Scratch::new());
    let root_handle: Vec<u16> = r"\Device\NamedPipe\".encode_utf16().collect();
    let drives = DeviceMap::new();

    for c in &cases {
        let mut margs: Vec<String> = vec![
            "match".into(),
            s(&f).into(),
            c.name.clone(),
            "--json".into(),
        ];
        if let Some(i) = &c.image {
            margs.extend(["--image".into(), i.clone()]);
        }
        // Unset pid/kind are left to pipectl's defaults: they must be the
        // driver-path defaults.
        if let Some(p) = c.pid {
            margs.extend(["--pid".into(), p.to_string()]);
        }
        if let Some(k) = c.kind {
            margs.extend([
                "--kind".into(),
                if k == 2 { "connect" } else { "create" }.into(),
            ]);
        }
        let o = pipectl(&margs.iter().map(String::as_str).collect::<Vec<_>>());
        assert_no_panic(&o);
        let v: Value = serde_json::from_str(&text(&o.stdout)).unwrap();
        let matched: Vec<u64> = v["matched"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_u64().unwrap())
            .collect();
        let what = format!("rule {:#x} case {:?}", c.rule, c.name);
        // match = test
        assert_eq!(
            matched.contains(&u64::from(c.rule)),
            c.expect,
            "{what}: {v}"
        );
        assert_eq!(
            o.status.code(),
            Some(if matched.is_empty() { 1 } else { 0 })
        );
        // match = the driver's path
        let name: Vec<u16> = c.name.encode_utf16().collect();
        let image: Option<Vec<u16>> = c.image.as_ref().map(|i| i.encode_utf16().collect());
        let raw = RawEvent {
            kind: c.kind.and_then(EventKind::from_u32).unwrap_or(DEFAULT_KIND),
            pid: c.pid.unwrap_or(DEFAULT_PID),
            name: &name,
            image: image.as_deref(),
            user: None,
        };
        let (p, verdict) = eval::evaluate(&file, &drives, &raw, &mut work).unwrap();
        assert_eq!(verdict.matched as usize, matched.len(), "{what}");
        assert_eq!(
            verdict.best.map(|r| u64::from(r.id())),
            v["best"]["id"].as_u64(),
            "{what}"
        );
        // ... and as a filter callback sees the same pipe opened relative
        // to an NPFS root handle (the driver's eval::prepare_target).
        let normalized = p.name.to_vec();
        let leaf = &normalized[1..];
        let raw = RawEvent { name: leaf, ..raw };
        let q = eval::prepare_target(&drives, &root_handle, &raw, &mut buffers).unwrap();
        assert_eq!(q.name, &normalized[..], "{what}");
        let v2 = file.evaluate(&q.event(), &mut scratch);
        assert_eq!(v2.matched, verdict.matched, "{what}");
        assert_eq!(
            v2.best.map(|r| r.id()),
            verdict.best.map(|r| r.id()),
            "{what}"
        );
    }
}

#[test]
fn test_cases_take_pid_and_refuse_a_bad_one() {
    let dir = tmp("firsthour", "pid");
    let y = dir.join("p.yml");
    write(
        &y,
        "- id: 1\n  name: p\n  severity: low\n  detection:\n    s:\n      ProcessId: 4\n    condition: s\n  tests:\n    match:\n      - {name: '\\a', pid: 4}\n    no_match:\n      - '\\a'\n      - {name: '\\a', pid: 5}\n",
    );
    let o = ok(&pipectl(&["test", s(&y)]));
    assert!(o.contains("3 passed, 0 failed"), "{o}");
    write(
        &y,
        "- id: 1\n  name: p\n  severity: low\n  detection:\n    s:\n      ProcessId: 4\n    condition: s\n  tests:\n    match:\n      - {name: '\\a', pid: four}\n",
    );
    let (_, err) = code(&pipectl(&["test", s(&y)]), 1);
    assert!(
        err.contains("p.yml:10:") && err.contains("test case `pid` is a process id"),
        "{err}"
    );
}

// --- 5. output paths -----------------------------------------------------------

#[test]
fn output_directories_are_created_and_releases_not_overwritten() {
    let dir = tmp("firsthour", "paths");
    let out = dir.join("a/b/out/");
    let o = ok(&pipectl(&[
        "compile",
        &rules(),
        "-o",
        &format!("{}/", out.display()),
        "--sequence",
        "43",
    ]));
    let file = out.join("C-00000291-00000043.sys");
    assert!(file.exists(), "{o}");
    let before = std::fs::read(&file).unwrap();
    // A second compile to the same release does not overwrite it...
    let (_, err) = code(
        &pipectl(&[
            "compile",
            &rules(),
            &corpus(SIGMA_PIPE),
            "-o",
            s(&out),
            "--sequence",
            "43",
        ]),
        2,
    );
    assert!(
        err.contains("exists: not overwriting a channel file (--force replaces it)"),
        "{err}"
    );
    assert_eq!(std::fs::read(&file).unwrap(), before);
    // ...unless asked to.
    ok(&pipectl(&[
        "compile",
        &rules(),
        &corpus(SIGMA_PIPE),
        "-o",
        s(&out),
        "--sequence",
        "43",
        "--force",
    ]));
    assert_ne!(std::fs::read(&file).unwrap(), before);
    assert!(!Path::new(&format!("{}.partial", file.display())).exists());
    // A file path in a missing directory.
    let f = dir.join("x/y/z.sys");
    ok(&pipectl(&["compile", &rules(), "-o", s(&f)]));
    assert!(f.exists());
}

// --- 6. embedded cases at compile time; rules without cases ---------------------

#[test]
fn compile_refuses_a_release_whose_cases_fail() {
    let dir = tmp("firsthour", "compiletest");
    let y = dir.join("r.yml");
    write(
        &y,
        "- id: 1\n  name: postex\n  severity: high\n  detection:\n    s:\n      PipeName|startswith: '\\postex_'\n    condition: s\n  tests:\n    match:\n      - '\\postex_1'\n      - '\\other'\n",
    );
    let out = dir.join("out/");
    let (_, err) = code(&pipectl(&["compile", s(&y), "-o", s(&out)]), 1);
    assert!(
        err.contains("r.yml:11:") && err.contains("should match but does not"),
        "{err}"
    );
    assert!(err.contains("rule 0x00000001 (1) 'postex'"), "{err}");
    assert!(
        err.contains("1 embedded test case(s) fail: not writing") && err.contains("--no-test"),
        "{err}"
    );
    assert!(!out.join("C-00000291-00000001.sys").exists());
    let o = ok(&pipectl(&["compile", s(&y), "-o", s(&out), "--no-test"]));
    assert!(o.contains("tests:     skipped (--no-test)"), "{o}");
    assert!(out.join("C-00000291-00000001.sys").exists());
    let o = ok(&pipectl(&[
        "compile",
        &rules(),
        "-o",
        s(&dir.join("ok.sys")),
    ]));
    assert!(o.contains("embedded case(s) passed"), "{o}");
}

#[test]
fn test_reports_rules_without_cases_and_can_require_them() {
    let o = ok(&pipectl(&["test", &corpus(SIGMA_PIPE)]));
    assert!(
        o.contains("0 passed, 0 failed; 17 rule(s) without test cases"),
        "{o}"
    );
    let (out, err) = code(
        &pipectl(&["test", &corpus(SIGMA_PIPE), "--require-cases"]),
        1,
    );
    assert!(
        err.contains("17 rule(s) have no test cases (--require-cases)"),
        "{err}"
    );
    // Listed with their id in hex, the Sigma UUID it comes from, and where
    // they are written.
    assert!(
        out.contains("no cases: rule 0xd5601f8c (3579846540) [Sigma id d5601f8c-b26f-4ab0-9035-69e11a8d4ad2] 'CobaltStrike Named Pipe'"),
        "{out}"
    );
    assert!(out.contains(".yml:"), "{out}");
    let o = ok(&pipectl(&["test", &rules(), "--require-cases"]));
    assert!(o.contains(" passed, 0 failed"), "{o}");
}

// --- 7. diff ------------------------------------------------------------------

#[test]
fn diff_shows_rule_changes_without_events() {
    let dir = tmp("firsthour", "diff");
    let v1 = dir.join("v1.yml");
    let v2 = dir.join("v2.yml");
    let rule = |id: u32, pattern: &str, extra: &str, sev: &str, action: &str| {
        format!(
            "- id: {id}\n  name: r{id}\n  severity: {sev}\n  action: {action}\n  detection:\n    s:\n      PipeName|startswith: '{pattern}'\n{extra}    condition: s{}\n",
            if extra.is_empty() { "" } else { " and not f" }
        )
    };
    let filt = "    f:\n      Image|endswith: '\\ok.exe'\n";
    write(
        &v1,
        &(rule(1, "\\postex_", "", "high", "alert")
            + &rule(2, "\\a_", "", "low", "alert")
            + &rule(3, "\\gone_", "", "low", "alert")
            + &rule(5, "\\same_", "", "low", "alert")),
    );
    write(
        &v2,
        &(rule(1, "\\postexx_", "", "high", "alert")
            + &rule(2, "\\a_", filt, "critical", "block")
            + &rule(4, "\\new_", "", "low", "alert")
            + &rule(5, "\\same_", "", "low", "alert")),
    );
    let (a, b) = (dir.join("a.sys"), dir.join("b.sys"));
    ok(&pipectl(&["compile", s(&v1), "-o", s(&a)]));
    ok(&pipectl(&["compile", s(&v2), "-o", s(&b)]));
    let o = ok(&pipectl(&["diff", s(&a), s(&b)]));
    assert!(
        o.contains("rules     1 added, 1 removed, 2 changed (by rule id)"),
        "{o}"
    );
    assert!(o.contains("  + 0x00000004 (4) 'r4' low alert"), "{o}");
    assert!(o.contains("  - 0x00000003 (3) 'r3' low alert"), "{o}");
    assert!(
        o.contains("- PipeName prefix '\\POSTEX_'") && o.contains("+ PipeName prefix '\\POSTEXX_'"),
        "{o}"
    );
    assert!(
        o.contains("severity: low -> critical") && o.contains("action: alert -> block"),
        "{o}"
    );
    assert!(o.contains("fields: PipeName -> PipeName, Image"), "{o}");
    assert!(
        o.contains("now: PipeName prefix '\\A_' and not Image suffix '\\OK.EXE'"),
        "{o}"
    );
    assert!(!o.contains("'r5'"), "unchanged rule listed: {o}");
    assert!(o.contains("verdicts  not computed: give --events"), "{o}");
    let v = json(&pipectl(&["diff", s(&a), s(&b), "--json"]));
    let changed = v["rules"]["changed"].as_array().unwrap();
    let whats = |id: u64| -> Vec<String> {
        changed.iter().find(|c| c["id"] == id).unwrap()["changes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["what"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(whats(1), ["patterns"]);
    assert_eq!(
        whats(2),
        ["severity", "action", "fields", "patterns", "condition"]
    );
    // --fail-on-* need events.
    let (_, err) = code(&pipectl(&["diff", s(&a), s(&b), "--fail-on-new-block"]), 2);
    assert!(err.contains("--events"), "{err}");
}

// --- 8. readable output -------------------------------------------------------

#[test]
fn output_is_readable() {
    let dir = tmp("firsthour", "readable");
    let f = dir.join("r.sys");
    ok(&pipectl(&[
        "compile",
        &rules(),
        &corpus(SIGMA_PIPE),
        "-o",
        s(&f),
        "--ring",
        "canary",
        "--not-before",
        "2026-12-01T06:00:00Z",
    ]));
    let t = ok(&pipectl(&["inspect", s(&f)]));
    assert!(t.contains("not before 2026-12-01T06:00:00Z"), "{t}");
    assert!(!t.contains("1796104800"), "{t}");
    // Sigma id d5601f8c-b26f-4ab0-9035-69e11a8d4ad2 → 0xd5601f8c.
    assert!(t.contains("0xd5601f8c (3579846540)  critical"), "{t}");
    // Conditions in infix with the atoms written out (format 2: a regex's
    // literal start is a piece ANDed before it).
    assert!(
        t.contains("condition: PipeName prefix '\\RPC_' and PipeName regex '^\\\\rpc_[0-9a-f]{2}$' and EventKind = 1 (create) and not (Image suffix '\\SQLSERVR.EXE' or ProcessId = 4)"),
        "{t}"
    );
    assert!(!t.contains(" and or") && !t.contains("atom0 atom1"), "{t}");
    let v = json(&pipectl(&["inspect", s(&f), "--json"]));
    assert_eq!(v["rollout"]["not_before_utc"], "2026-12-01T06:00:00Z");
    let r = v["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == 1001)
        .unwrap();
    assert_eq!(r["id_hex"], "0x000003e9");
    assert!(r["condition"].as_str().unwrap().contains(" or "), "{r}");

    // --not-before says which format it wants.
    let (_, err) = code(
        &pipectl(&[
            "compile",
            &rules(),
            "-o",
            s(&dir.join("n.sys")),
            "--ring",
            "canary",
            "--not-before",
            "2026-12-01",
        ]),
        2,
    );
    assert!(
        err.contains("e.g. 2026-12-01T06:00:00Z, or Unix seconds"),
        "{err}"
    );

    // A failed case from a double-quoted YAML value: no Rust escapes, a hint.
    let y = dir.join("q.yml");
    write(
        &y,
        "- id: 7\n  name: evil\n  severity: low\n  detection:\n    s:\n      PipeName|startswith: '\\evil_'\n    condition: s\n  tests:\n    match:\n      - \"\\evil_1\"\n",
    );
    let (_, err) = code(&pipectl(&["test", s(&y)]), 1);
    assert!(
        err.contains("rule 0x00000007 (7) 'evil': '\\u{1b}vil_1' should match but does not"),
        "{err}"
    );
    assert!(
        err.contains("U+001B (from \"\\e\")") && err.contains("single quotes"),
        "{err}"
    );
    assert!(
        err.contains("pid 0 (default), kind create (default)"),
        "{err}"
    );
}

#[test]
fn native_hex_ids_are_shown_as_written() {
    let dir = tmp("firsthour", "hexid");
    let y = dir.join("h.yml");
    write(
        &y,
        "- id: 0x2001\n  name: h\n  severity: low\n  detection:\n    s:\n      PipeName: '\\a'\n    condition: s\n  tests:\n    match: ['\\b']\n",
    );
    let (_, err) = code(&pipectl(&["test", s(&y)]), 1);
    assert!(
        err.contains("rule 0x00002001 (8193) [id 0x2001] 'h'"),
        "{err}"
    );
}
