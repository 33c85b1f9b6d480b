//! `pipectl compile --monitor-first ... --breaker ...` writes the
//! ENFORCEMENT section; `inspect` shows it; bad values are usage errors
//! naming the problem.

use serde_json::Value;

mod common;
use common::{assert_no_panic, pipectl, root, text, tmp};

fn compile(out: &str, extra: &[&str]) -> std::process::Output {
    let rules = root().join("rules").to_string_lossy().into_owned();
    let mut args = vec!["compile", rules.as_str(), "-o", out, "--sequence", "5"];
    args.extend_from_slice(extra);
    let o = pipectl(&args);
    assert_no_panic(&o);
    o
}

#[test]
fn written_verified_and_inspected() {
    let d = tmp("enforcement", "ok");
    let out = d.join("c.sys").to_string_lossy().into_owned();
    let o = compile(
        &out,
        &[
            "--monitor-first",
            "canary:2h,early:4h,broad:1d",
            "--breaker",
            "10/30s,machine:50/1m",
        ],
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    let o = pipectl(&["verify", &out]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let o = pipectl(&["inspect", &out]);
    let s = text(&o.stdout);
    assert!(
        s.contains(
            "enforce   monitor first canary:2h,early:4h,broad:1d   breaker 10/30s,machine:50/1m"
        ),
        "{s}"
    );
    assert!(s.contains("enforcement"), "section listed: {s}");
    let o = pipectl(&["inspect", &out, "--json"]);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    let e = &v["enforcement"];
    assert_eq!(e["monitor_first_seconds"]["canary"], 7_200);
    assert_eq!(e["monitor_first_seconds"]["broad"], 86_400);
    assert_eq!(e["rule_breaker"]["denies"], 10);
    assert_eq!(e["machine_breaker"]["window_seconds"], 60);
    // Without the flags (over the same file): no section.
    let o = compile(&out, &["--force"]);
    assert!(o.status.success());
    let o = pipectl(&["inspect", &out, "--json"]);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(v["enforcement"].is_null());
    assert!(!text(&pipectl(&["inspect", &out]).stdout).contains("enforce "));
}

#[test]
fn bad_values_are_usage_errors() {
    let d = tmp("enforcement", "bad");
    let out = d.join("c.sys").to_string_lossy().into_owned();
    for (flag, value, want) in [
        ("--monitor-first", "canary:31d", "30 days"),
        ("--monitor-first", "wide:1h", "unknown ring \"wide\""),
        (
            "--breaker",
            "0/60s",
            "only the service key can turn a breaker off",
        ),
        ("--breaker", "20/2d", "1 s to 86400 s"),
        ("--breaker", "machine:20000/1m", "1 to 10000"),
    ] {
        let o = compile(&out, &[flag, value]);
        assert_eq!(o.status.code(), Some(2), "{flag} {value}");
        assert!(
            text(&o.stderr).contains(want),
            "{flag} {value}: {}",
            text(&o.stderr)
        );
    }
}
