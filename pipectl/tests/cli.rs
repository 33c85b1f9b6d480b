//! End-to-end tests of the `pipectl` binary.

use std::path::Path;

mod common;
use common::{assert_no_panic, corpus, pipectl, root, text, tmp, SIGMA_PIPE};

#[test]
fn done_when_sigma_compile_verify_match() {
    let dir = tmp("cli", "done");
    let out = dir.join("X.sys");
    let o = pipectl(&["compile", &corpus(SIGMA_PIPE), "-o", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let o = pipectl(&["verify", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(text(&o.stdout).contains("17 rules"));
    let o = pipectl(&["match", out.to_str().unwrap(), "\\postex_1234"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert!(
        text(&o.stdout).contains("CobaltStrike"),
        "{}",
        text(&o.stdout)
    );
    let o = pipectl(&["match", out.to_str().unwrap(), "\\ShellIconCache"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o.stdout).contains("no match"));
}

#[test]
fn compile_into_directory_uses_the_channel_file_name() {
    let dir = tmp("cli", "named");
    let o = pipectl(&[
        "compile",
        &root().join("rules").to_string_lossy(),
        "-o",
        dir.to_str().unwrap(),
        "--sequence",
        "42",
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(dir.join("C-00000291-00000042.sys").exists());
}

#[test]
fn verify_rejects_every_malformed_file_with_its_expected_error_and_never_panics() {
    let dir = tmp("cli", "malformed");
    let o = pipectl(&["gen-malformed", dir.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let manifest = std::fs::read_to_string(dir.join("MANIFEST.tsv")).unwrap();
    let mut checked = 0;
    for line in manifest.lines() {
        let (file, expect) = line.split_once('\t').unwrap();
        let o = pipectl(&["verify", dir.join(file).to_str().unwrap()]);
        assert_no_panic(&o);
        if expect == "valid" {
            assert_eq!(o.status.code(), Some(0), "{file}: {}", text(&o.stderr));
        } else {
            assert_eq!(o.status.code(), Some(1), "{file}");
            let err = text(&o.stderr);
            assert!(
                expect.split('|').any(|k| err.contains(&format!("[{k}]"))),
                "{file}: expected {expect}, got {err}"
            );
            assert!(
                err.contains("offset") || err.contains("missing"),
                "{file}: error must say where: {err}"
            );
        }
        checked += 1;
    }
    assert!(checked > 150, "{checked}");
}

#[test]
fn verify_survives_arbitrary_bytes() {
    let dir = tmp("cli", "garbage");
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    for i in 0..40 {
        let len = (i * 37) % 300;
        let bytes: Vec<u8> = (0..len)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                seed as u8
            })
            .collect();
        let p = dir.join(format!("g{i}.sys"));
        std::fs::write(&p, &bytes).unwrap();
        let o = pipectl(&["verify", p.to_str().unwrap()]);
        assert_no_panic(&o);
        assert_eq!(o.status.code(), Some(1));
    }
    let o = pipectl(&["verify", "/nonexistent/file.sys"]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn sensor_without_a_field_refuses_rules_that_read_it() {
    let dir = tmp("cli", "caps");
    let out = dir.join("a.sys");
    // The Sigma corpus has Image conditions (ADFS, PsExec, scrcons ...).
    let o = pipectl(&[
        "compile",
        &corpus(SIGMA_PIPE),
        "-o",
        out.to_str().unwrap(),
        "--sensor-fields",
        "PipeName",
    ]);
    assert_eq!(o.status.code(), Some(1));
    let err = text(&o.stderr);
    assert!(
        err.contains("reads field Image")
            && err.contains("does not supply")
            && err.contains(".yml:"),
        "{err}"
    );
    // A file compiled for the full sensor is rejected by a sensor without Image.
    let o = pipectl(&["compile", &corpus(SIGMA_PIPE), "-o", out.to_str().unwrap()]);
    assert!(o.status.success());
    let o = pipectl(&[
        "verify",
        out.to_str().unwrap(),
        "--sensor-fields",
        "PipeName,ProcessId,EventKind",
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o.stderr).contains("[field-not-supplied]"),
        "{}",
        text(&o.stderr)
    );
}

#[test]
fn test_command_reports_failures_with_file_and_line() {
    let dir = tmp("cli", "cases");
    let o = pipectl(&["test", &root().join("rules").to_string_lossy()]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}{}",
        text(&o.stdout),
        text(&o.stderr)
    );
    assert!(text(&o.stdout).contains(" passed, 0 failed"));
    let bad = dir.join("bad.yml");
    std::fs::write(
        &bad,
        "- id: 1\n  name: postex\n  severity: high\n  detection:\n    s:\n      PipeName|startswith: '\\postex_'\n    condition: s\n  tests:\n    match:\n      - '\\postex_1'\n      - '\\other'\n    no_match:\n      - '\\POSTEX_2'\n",
    )
    .unwrap();
    let o = pipectl(&["test", bad.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let err = text(&o.stderr);
    assert!(
        err.contains("bad.yml:11:") && err.contains("should match but does not"),
        "{err}"
    );
    assert!(
        err.contains("bad.yml:13:") && err.contains("should not match but does"),
        "{err}"
    );
    assert!(text(&o.stdout).contains("1 passed, 2 failed"));
}

#[test]
fn rule_source_errors_carry_file_line_column() {
    let dir = tmp("cli", "srcerr");
    let bad = dir.join("bad.yml");
    std::fs::write(&bad, "- id: 1\n  name: x\n  severity: high\n  detection:\n    s:\n      PipeName|base64: 'abc'\n    condition: s\n").unwrap();
    let o = pipectl(&[
        "compile",
        bad.to_str().unwrap(),
        "-o",
        dir.join("o.sys").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    let err = text(&o.stderr);
    assert!(err.contains("bad.yml:6:"), "{err}");
    assert!(
        !Path::new(&dir.join("o.sys")).exists(),
        "no output on error"
    );
}

#[test]
fn inspect_json_lists_rules_and_digest() {
    let dir = tmp("cli", "inspect");
    let out = dir.join("X.sys");
    assert!(
        pipectl(&["compile", &corpus(SIGMA_PIPE), "-o", out.to_str().unwrap()])
            .status
            .success()
    );
    let o = pipectl(&["inspect", out.to_str().unwrap(), "--json"]);
    assert!(o.status.success());
    let s = text(&o.stdout);
    assert_eq!(s.matches("\"program\"").count(), 17);
    assert!(s.contains("\"sha256\""));
    let o = pipectl(&[
        "match",
        out.to_str().unwrap(),
        "\\MICROSOFT##WID\\tsql\\query",
        "--image",
        "C:\\evil.exe",
        "--json",
    ]);
    assert_eq!(o.status.code(), Some(0));
    assert!(text(&o.stdout).contains("ADFS"), "{}", text(&o.stdout));
    let o = pipectl(&[
        "match",
        out.to_str().unwrap(),
        "\\MICROSOFT##WID\\tsql\\query",
        "--image",
        "C:\\Windows\\System32\\mmc.exe",
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stdout));
}

#[test]
fn keygen_sign_and_verify_with_keys() {
    let dir = tmp("cli", "sign");
    let key = dir.join("rel");
    let other = dir.join("other");
    assert!(pipectl(&["keygen", key.to_str().unwrap()]).status.success());
    assert!(pipectl(&["keygen", other.to_str().unwrap()])
        .status
        .success());
    // Never overwrite a secret key.
    assert_eq!(
        pipectl(&["keygen", key.to_str().unwrap()]).status.code(),
        Some(2)
    );
    let signed = dir.join("s.sys");
    let rules = root().join("rules");
    let o = pipectl(&[
        "compile",
        rules.to_str().unwrap(),
        "-o",
        signed.to_str().unwrap(),
        "--sign",
        dir.join("rel.key").to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let verify = |file: &Path, key: &str| {
        pipectl(&[
            "verify",
            file.to_str().unwrap(),
            "--key",
            dir.join(key).to_str().unwrap(),
        ])
    };
    let o = verify(&signed, "rel.pub");
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert!(text(&o.stdout).contains("signature: valid"));
    let o = verify(&signed, "other.pub");
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o.stderr).contains("[wrong-key]"),
        "{}",
        text(&o.stderr)
    );
    let unsigned = dir.join("u.sys");
    assert!(pipectl(&[
        "compile",
        rules.to_str().unwrap(),
        "-o",
        unsigned.to_str().unwrap()
    ])
    .status
    .success());
    let o = verify(&unsigned, "rel.pub");
    assert!(
        text(&o.stderr).contains("[unsigned]"),
        "{}",
        text(&o.stderr)
    );
    let mut bytes = std::fs::read(&signed).unwrap();
    bytes[300] ^= 1;
    let tampered = dir.join("t.sys");
    std::fs::write(&tampered, &bytes).unwrap();
    let o = verify(&tampered, "rel.pub");
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o.stderr).contains("[tampered]"),
        "{}",
        text(&o.stderr)
    );
    // The signed file is still an ordinary valid channel file.
    assert!(pipectl(&["verify", signed.to_str().unwrap()])
        .status
        .success());
}

#[test]
fn user_rules_compile_for_a_sensor_that_supplies_user_and_match_with_user() {
    let dir = tmp("cli", "user");
    let src = dir.join("u.yml");
    std::fs::write(
        &src,
        "- id: 5\n  name: pipe of system\n  severity: high\n  detection:\n    s:\n      PipeName: '\\u_pipe'\n      User: 'NT AUTHORITY\\SYSTEM'\n    condition: s\n",
    )
    .unwrap();
    let out = dir.join("U.sys");
    let (s, o) = (src.to_str().unwrap(), out.to_str().unwrap());
    let c = pipectl(&["compile", s, "-o", o, "--sensor-fields", "PipeName,User"]);
    assert!(c.status.success(), "{}", text(&c.stderr));
    // A sensor without User: refused by name, nothing written.
    let v1 = dir.join("V1.sys");
    let c = pipectl(&[
        "compile",
        s,
        "-o",
        v1.to_str().unwrap(),
        "--sensor-fields",
        "PipeName,Image,ProcessId,EventKind",
    ]);
    assert_ne!(c.status.code(), Some(0));
    assert!(text(&c.stderr).contains("User"), "{}", text(&c.stderr));
    assert!(!v1.exists());
    let m = pipectl(&["match", o, "\\u_pipe", "--user", "S-1-5-18"]);
    assert_eq!(m.status.code(), Some(0), "{}", text(&m.stderr));
    assert!(
        text(&m.stdout).contains("user S-1-5-18"),
        "{}",
        text(&m.stdout)
    );
    let m = pipectl(&["match", o, "\\u_pipe", "--user", "NT AUTHORITY\\SYSTEM"]);
    assert_eq!(m.status.code(), Some(0), "{}", text(&m.stderr));
    for other in [&["--user", "S-1-5-19"][..], &[][..]] {
        let mut args = vec!["match", o, "\\u_pipe"];
        args.extend_from_slice(other);
        let m = pipectl(&args);
        assert_eq!(m.status.code(), Some(1), "{other:?}: {}", text(&m.stdout));
    }
    let m = pipectl(&["match", o, "\\u_pipe", "--user", "CORP\\alice"]);
    assert_ne!(m.status.code(), Some(0));
    assert!(
        text(&m.stderr).contains("give the SID"),
        "{}",
        text(&m.stderr)
    );
}
