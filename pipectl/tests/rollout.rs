//! End-to-end tests of `pipectl rollout simulate`: the numbers follow the
//! formulas of docs/rollout.md.

use serde_json::Value;

mod common;
use common::{pipectl, text};

fn simulate(extra: &[&str]) -> Value {
    let mut args = vec!["rollout", "simulate", "--json"];
    args.extend_from_slice(extra);
    let o = pipectl(&args);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    serde_json::from_slice(&o.stdout).unwrap()
}

fn strategy<'v>(r: &'v Value, prefix: &str) -> &'v Value {
    r["strategies"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"].as_str().unwrap().starts_with(prefix))
        .unwrap_or_else(|| panic!("{prefix}"))
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

#[test]
fn defaults_follow_the_documented_formulas() {
    let r = simulate(&[]);
    let (n, p, d) = (8_500_000.0, 0.3, 20.0);
    let once = strategy(&r, "all at once, no guard");
    // All at once: crashed = p x fleet, all of them need manual repair, halt at detect.
    assert_eq!(f(&once["delivered"]), n);
    assert_eq!(f(&once["crashed"]), (p * n).round());
    assert_eq!(f(&once["manual_repair"]), (p * n).round());
    assert_eq!(f(&once["halted_at_minutes"]), d);
    assert!(once["reboots"].is_null());
    let once_guard = strategy(&r, "all at once, crash-loop guard");
    assert_eq!(f(&once_guard["manual_repair"]), 0.0);
    assert_eq!(f(&once_guard["reboots"]), (3.0 * p * n).round());
    assert_eq!(f(&once_guard["self_recovery_minutes"]), 9.0);
    // Staged: the canary (0.1%) crashes p x 8,500 = 2,550 >= 50, observed at
    // 0 + 20m < soak 2h: halted before early and broad.
    let st = strategy(&r, "staged + health gate, no guard");
    assert_eq!(f(&st["halted_at_minutes"]), d);
    assert_eq!(st["rings"].as_array().unwrap().len(), 1);
    assert_eq!(f(&st["delivered"]), 8_500.0);
    assert_eq!(f(&st["crashed"]), 2_550.0);
    assert_eq!(f(&st["manual_repair"]), 2_550.0);
    let sg = strategy(&r, "staged + health gate, crash-loop guard");
    assert_eq!(f(&sg["manual_repair"]), 0.0);
    assert_eq!(f(&sg["reboots"]), 7_650.0);
}

#[test]
fn slow_detection_lets_later_rings_start() {
    // Detect 150m > soak 60m: early starts at 60m and broad at 120m before the
    // halt at 0 + 150m: every machine gets the release.
    let r = simulate(&["--soak", "60m", "--detect", "150m", "--crash-prob", "100%"]);
    let st = strategy(&r, "staged + health gate, no guard");
    assert_eq!(f(&st["halted_at_minutes"]), 150.0);
    assert_eq!(st["rings"].as_array().unwrap().len(), 3);
    assert_eq!(f(&st["crashed"]), 8_500_000.0);
    // Detect 90m: early (60m) starts, broad (120m) does not.
    let r = simulate(&["--soak", "60m", "--detect", "90m", "--crash-prob", "100%"]);
    let st = strategy(&r, "staged + health gate, no guard");
    assert_eq!(st["rings"].as_array().unwrap().len(), 2);
    assert_eq!(f(&st["crashed"]), 0.05 * 8_500_000.0);
}

#[test]
fn a_rare_crash_passes_a_relative_gate_but_not_an_absolute_one() {
    // p = 0.2%: a 0.5% gate never trips (the release completes at 2 x soak);
    // a 10-crash gate trips on the canary (17 crashes).
    let r = simulate(&["--crash-prob", "0.2%", "--health-gate", "0.5%"]);
    let st = strategy(&r, "staged + health gate, no guard");
    assert!(st["halted_at_minutes"].is_null());
    assert_eq!(f(&st["completed_at_minutes"]), 240.0);
    assert_eq!(f(&st["crashed"]), 17_000.0);
    let r = simulate(&[
        "--crash-prob",
        "0.2%",
        "--health-gate",
        "10",
        "--fleet",
        "1000000",
    ]);
    let st = strategy(&r, "staged + health gate, no guard");
    // Canary: 1,000 machines x 0.2% = 2 < 10, so early starts at 2h: 50,000
    // machines, 100 crashes >= 10, halt at 2h20m, broad never starts.
    assert_eq!(st["rings"].as_array().unwrap().len(), 2);
    assert_eq!(f(&st["crashed"]), 100.0);
    assert_eq!(f(&st["halted_at_minutes"]), 140.0);
    assert_eq!(f(&r["parameters"]["fleet"]), 1_000_000.0);
}

#[test]
fn table_and_svg() {
    let dir = std::env::temp_dir().join(format!("pipectl-rollout-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let svg = dir.join("blast.svg");
    let o = pipectl(&["rollout", "simulate", "--svg", svg.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let t = text(&o.stdout);
    assert!(t.contains("all at once, no guard (July 2024)"), "{t}");
    assert!(
        t.contains("2,550,000") && t.contains("never started (halted): early, broad"),
        "{t}"
    );
    let s = std::fs::read_to_string(&svg).unwrap();
    assert!(s.starts_with("<svg") && s.trim_end().ends_with("</svg>"));
    assert!(s.contains("need manual repair"));
    // Bad parameters: a usage error naming the problem.
    for (args, expect) in [
        (&["--crash-prob", "2"][..], "between 0 and 100%"),
        (&["--rings", "a:5%,b:1%"][..], "cumulative"),
        (&["--soak", "2 weeks"][..], "duration"),
        (&["--health-gate", "x"][..], "health gate"),
    ] {
        let mut a = vec!["rollout", "simulate"];
        a.extend_from_slice(args);
        let o = pipectl(&a);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        assert!(
            text(&o.stderr).contains(expect),
            "{args:?}: {}",
            text(&o.stderr)
        );
    }
}

#[test]
fn bucket_is_the_documented_hash_and_ignores_case() {
    use sha2::{Digest, Sha256};
    let id = "1b4e28ba-2fa1-11d2-883f-0016d3cca427";
    // docs/rollout.md: SHA-256(id || channel as u32 LE), first 8 bytes as a
    // u64 LE, modulo 100,000.
    let mut h = Sha256::new();
    h.update(id.as_bytes());
    h.update(291u32.to_le_bytes());
    let d = h.finalize();
    let want = u64::from_le_bytes(d[..8].try_into().unwrap()) % 100_000;
    for spelling in [
        id,
        "1B4E28BA-2FA1-11D2-883F-0016D3CCA427",
        " 1b4e28ba-2fa1-11d2-883f-0016d3cca427 ",
    ] {
        let o = pipectl(&["rollout", "bucket", spelling]);
        assert!(o.status.success(), "{}", text(&o.stderr));
        let out = text(&o.stdout);
        assert!(
            out.contains(&format!("bucket_milli={want}\n")),
            "{spelling:?}: {out}"
        );
        assert!(out.contains(&format!("bucket={}.{:03}%", want / 1000, want % 1000)));
    }
    let other = text(&pipectl(&["rollout", "bucket", id, "--channel", "292"]).stdout);
    assert!(
        !other.contains(&format!("bucket_milli={want}\n")),
        "the channel changes the bucket"
    );
}

#[test]
fn a_bad_block_rule_with_and_without_the_guards() {
    let r = simulate(&["--bad-block-rule"]);
    let n = 8_500_000.0;
    // No guards: every machine denied from delivery until detect (20m) +
    // fix (1h); one service broken per minute of denial.
    let o = strategy(&r, "all at once, no guards");
    assert_eq!(f(&o["denied_machines"]), n);
    assert_eq!(f(&o["broken_services"]), n * 80.0);
    // The breaker (20/60s) demotes the rule after 20 denies at 60/min.
    let o = strategy(&r, "all at once, breaker");
    assert_eq!(f(&o["denied_machines"]), n);
    assert_eq!(f(&o["broken_services"]), (n * 20.0 / 60.0).round());
    // Monitor-first (canary 2h) outlasts detection + fix: nothing denied.
    for s in [
        "all at once, monitor-first + breaker",
        "staged + health gate, monitor-first",
    ] {
        let o = strategy(&r, s);
        assert_eq!(f(&o["denied_machines"]), 0.0, "{s}");
        assert_eq!(f(&o["broken_services"]), 0.0, "{s}");
    }
    let o = strategy(&r, "staged + health gate, no guards");
    assert_eq!(f(&o["denied_machines"]), 8_500.0);
    // A ring without a monitor-first period is a usage error naming it.
    let o = pipectl(&[
        "rollout",
        "simulate",
        "--bad-block-rule",
        "--monitor-first",
        "canary:1h",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o.stderr).contains("\"early\""), "{}", text(&o.stderr));
}
