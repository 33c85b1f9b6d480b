//! `pipectl compile --monitor-first ... --breaker ...`: the enforcement
//! policy a channel file carries (its ENFORCEMENT section): how long its
//! block rules only alert after a machine adopts it, per ring, and the
//! circuit-breaker limits. What the sensor does with them:
//! docs/rules.md, "What keeps a block rule from breaking Windows".

use channel_format::{
    Ring, MAX_BREAKER_WINDOW_SECS as MAX_WINDOW_SECS,
    MAX_MACHINE_BREAKER_DENIES as MAX_MACHINE_DENIES, MAX_MONITOR_FIRST_SECS,
    MAX_RULE_BREAKER_DENIES as MAX_RULE_DENIES,
};
use channel_parser::{BreakerLimit as Limit, EnforcementPolicy};

/// The policy arguments of `pipectl compile`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct EnforcementArgs {
    /// Monitor first: after a machine adopts this file, its block rules only
    /// alert for this long, per ring: `canary:2h,early:4h,broad:24h`, or one
    /// duration for every ring (`2h`). Durations: d, h, m, s (`1h30m`); a
    /// ring left out has none.
    #[arg(long, value_name = "RING:DURATION,...")]
    pub monitor_first: Option<String>,
    /// Circuit breaker: demote a block rule after N denies within DURATION
    /// on one machine, `N/DURATION`, and optionally the machine-wide limit:
    /// `20/60s,machine:100/60s`. The driver's service key overrides these.
    #[arg(long, value_name = "N/DURATION[,machine:N/DURATION]")]
    pub breaker: Option<String>,
}

/// Parses `2h`, `90m`, `1h30m`, `45s`, `1d`, `0` into whole seconds.
pub fn parse_seconds(s: &str) -> Result<u32, String> {
    let t = s.trim();
    if t.is_empty() {
        return Err("empty duration".into());
    }
    let (mut total, mut num) = (0u64, String::new());
    let bad = || format!("bad duration {s:?} (e.g. 2h, 90m, 1h30m, 45s, 1d)");
    for c in t.chars() {
        if c.is_ascii_digit() {
            num.push(c);
            continue;
        }
        let n: u64 = num.parse().map_err(|_| bad())?;
        num.clear();
        let unit = match c {
            'd' => 86_400,
            'h' => 3_600,
            'm' => 60,
            's' => 1,
            _ => return Err(bad()),
        };
        total = n
            .checked_mul(unit)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(bad)?;
    }
    if !num.is_empty() {
        if total != 0 || num != "0" {
            return Err(format!("{} (a unit is required)", bad()));
        }
        num.clear();
    }
    u32::try_from(total).map_err(|_| bad())
}

fn ring_index(name: &str) -> Result<usize, String> {
    sensor_core::rollout::parse_ring(name)
        .map(|r: Ring| usize::from(r.0))
        .ok_or_else(|| format!("unknown ring {name:?} (canary, early, broad)"))
}

/// Parses `--monitor-first`.
pub fn parse_monitor_first(s: &str) -> Result<[u32; 3], String> {
    let check = |secs: u32, what: &str| {
        if secs > MAX_MONITOR_FIRST_SECS {
            Err(format!(
                "--monitor-first {what}: {secs} s is longer than the {MAX_MONITOR_FIRST_SECS} s (30 days) a file may set"
            ))
        } else {
            Ok(secs)
        }
    };
    if !s.contains(':') {
        let secs = check(parse_seconds(s)?, "every ring")?;
        return Ok([secs; 3]);
    }
    let mut out = [0u32; 3];
    let mut seen = [false; 3];
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (ring, d) = part.split_once(':').ok_or_else(|| {
            format!("--monitor-first: {part:?} is not ring:DURATION (e.g. canary:2h)")
        })?;
        let i = ring_index(ring.trim()).map_err(|e| format!("--monitor-first: {e}"))?;
        if seen[i] {
            return Err(format!(
                "--monitor-first: ring {:?} given twice",
                ring.trim()
            ));
        }
        seen[i] = true;
        out[i] = check(parse_seconds(d)?, ring.trim())?;
    }
    Ok(out)
}

fn parse_limit(s: &str, max_denies: u32, what: &str) -> Result<Limit, String> {
    let (n, w) = s
        .split_once('/')
        .ok_or_else(|| format!("--breaker {what}: {s:?} is not N/DURATION (e.g. 20/60s)"))?;
    let denies = n
        .trim()
        .parse::<u32>()
        .map_err(|_| format!("--breaker {what}: {n:?} is not a number of denies"))?;
    if denies == 0 || denies > max_denies {
        return Err(format!(
            "--breaker {what}: {denies} denies; a file may set 1 to {max_denies} (only the service key can turn a breaker off)"
        ));
    }
    let window_secs = parse_seconds(w)?;
    if window_secs == 0 || window_secs > MAX_WINDOW_SECS {
        return Err(format!(
            "--breaker {what}: a window of {window_secs} s; a file may set 1 s to {MAX_WINDOW_SECS} s (1 day)"
        ));
    }
    Ok(Limit {
        denies,
        window_secs,
    })
}

/// Parses `--breaker`: `N/DURATION`, `machine:N/DURATION`, or both
/// (comma-separated; `rule:` may prefix the first).
pub fn parse_breaker(s: &str) -> Result<(Option<Limit>, Option<Limit>), String> {
    let (mut rule, mut machine) = (None, None);
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (slot, spec, max, what) = match part.split_once(':') {
            Some((k, v)) if k.trim().eq_ignore_ascii_case("machine") => {
                (&mut machine, v, MAX_MACHINE_DENIES, "machine")
            }
            Some((k, v)) if k.trim().eq_ignore_ascii_case("rule") => {
                (&mut rule, v, MAX_RULE_DENIES, "rule")
            }
            Some((k, _)) => {
                return Err(format!("--breaker: unknown limit {k:?} (rule or machine)"))
            }
            None => (&mut rule, part, MAX_RULE_DENIES, "rule"),
        };
        if slot.is_some() {
            return Err(format!("--breaker: the {what} limit is given twice"));
        }
        *slot = Some(parse_limit(spec, max, what)?);
    }
    if rule.is_none() && machine.is_none() {
        return Err("--breaker: no limit given (e.g. 20/60s)".into());
    }
    Ok((rule, machine))
}

impl EnforcementArgs {
    /// The policy the arguments describe (`None`: nothing set, the file
    /// carries no ENFORCEMENT section). The bounds are the format's
    /// (FORMAT.md §15), checked here so a bad value fails with a message.
    pub fn policy(&self) -> Result<Option<EnforcementPolicy>, String> {
        let monitor_first = self
            .monitor_first
            .as_deref()
            .map(parse_monitor_first)
            .transpose()?;
        let (rule, machine) = match self.breaker.as_deref() {
            Some(b) => parse_breaker(b)?,
            None => (None, None),
        };
        let p = EnforcementPolicy {
            monitor_first,
            rule_breaker: rule,
            machine_breaker: machine,
        };
        Ok((p != EnforcementPolicy::default()).then_some(p))
    }
}

fn dur(secs: u32) -> String {
    let (d, h, m, s) = (secs / 86_400, secs / 3_600 % 24, secs / 60 % 60, secs % 60);
    let mut out = String::new();
    for (v, u) in [(d, "d"), (h, "h"), (m, "m"), (s, "s")] {
        if v > 0 {
            out.push_str(&format!("{v}{u}"));
        }
    }
    if out.is_empty() {
        out.push('0');
    }
    out
}

/// `pipectl inspect`'s line: the policy in the flags' own syntax.
pub fn describe(p: &EnforcementPolicy) -> String {
    let mut parts = Vec::new();
    if let Some([c, e, b]) = p.monitor_first {
        parts.push(format!(
            "monitor first canary:{},early:{},broad:{}",
            dur(c),
            dur(e),
            dur(b)
        ));
    }
    let lim = |l: Limit| format!("{}/{}", l.denies, dur(l.window_secs));
    match (p.rule_breaker, p.machine_breaker) {
        (Some(r), Some(m)) => parts.push(format!("breaker {},machine:{}", lim(r), lim(m))),
        (Some(r), None) => parts.push(format!("breaker {}", lim(r))),
        (None, Some(m)) => parts.push(format!("breaker machine:{}", lim(m))),
        (None, None) => {}
    }
    parts.join("   ")
}

/// `pipectl inspect --json`'s `enforcement` object.
pub fn to_json(p: &EnforcementPolicy) -> serde_json::Value {
    let lim = |l: Option<Limit>| {
        l.map(|l| serde_json::json!({"denies": l.denies, "window_seconds": l.window_secs}))
    };
    serde_json::json!({
        "monitor_first_seconds": p.monitor_first.map(|[c, e, b]| serde_json::json!({
            "canary": c, "early": e, "broad": b,
        })),
        "rule_breaker": lim(p.rule_breaker),
        "machine_breaker": lim(p.machine_breaker),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lim(denies: u32, window_secs: u32) -> Limit {
        Limit {
            denies,
            window_secs,
        }
    }

    #[test]
    fn describe_round_trips_through_the_flags() {
        let a = EnforcementArgs {
            monitor_first: Some("canary:1h30m,early:4h,broad:1d".into()),
            breaker: Some("20/60s,machine:100/1h".into()),
        };
        let p = a.policy().unwrap().unwrap();
        let d = describe(&p);
        assert_eq!(
            d,
            "monitor first canary:1h30m,early:4h,broad:1d   breaker 20/1m,machine:100/1h"
        );
        let mf = d
            .split("monitor first ")
            .nth(1)
            .unwrap()
            .split(' ')
            .next()
            .unwrap();
        assert_eq!(parse_monitor_first(mf), Ok(p.monitor_first.unwrap()));
        assert_eq!(EnforcementArgs::default().policy(), Ok(None));
        assert_eq!(to_json(&p)["rule_breaker"]["window_seconds"], 60);
    }

    #[test]
    fn durations() {
        assert_eq!(parse_seconds("2h"), Ok(7_200));
        assert_eq!(parse_seconds("1h30m"), Ok(5_400));
        assert_eq!(parse_seconds("1d"), Ok(86_400));
        assert_eq!(parse_seconds("45s"), Ok(45));
        assert_eq!(parse_seconds("0"), Ok(0));
        for bad in ["", "2", "2x", "h", "99999999999999d"] {
            assert!(parse_seconds(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn monitor_first() {
        assert_eq!(
            parse_monitor_first("canary:2h,early:4h,broad:1d"),
            Ok([7_200, 14_400, 86_400])
        );
        assert_eq!(parse_monitor_first("broad:1h"), Ok([0, 0, 3_600]));
        assert_eq!(parse_monitor_first("30m"), Ok([1_800; 3]));
        let e = parse_monitor_first("wide:1h").unwrap_err();
        assert!(e.contains("\"wide\""), "{e}");
        assert!(parse_monitor_first("canary:1h,canary:2h").is_err());
        assert!(parse_monitor_first("31d").unwrap_err().contains("30 days"));
        assert_eq!(parse_monitor_first("30d"), Ok([MAX_MONITOR_FIRST_SECS; 3]));
    }

    #[test]
    fn breaker() {
        assert_eq!(parse_breaker("20/60s"), Ok((Some(lim(20, 60)), None)));
        assert_eq!(
            parse_breaker("20/1m, machine:100/1m"),
            Ok((Some(lim(20, 60)), Some(lim(100, 60))))
        );
        assert_eq!(
            parse_breaker("machine:50/30s"),
            Ok((None, Some(lim(50, 30))))
        );
        assert_eq!(parse_breaker("rule:1/1s"), Ok((Some(lim(1, 1)), None)));
        for (bad, why) in [
            ("0/60s", "only the service key"),
            ("1001/60s", "1 to 1000"),
            ("machine:10001/60s", "1 to 10000"),
            ("20/0s", "1 s to 86400"),
            ("20/2d", "1 s to 86400"),
            ("20", "N/DURATION"),
            ("x/60s", "number of denies"),
            ("20/60s,30/60s", "twice"),
            ("disk:1/1s", "unknown limit"),
            ("", "no limit"),
        ] {
            let e = parse_breaker(bad).unwrap_err();
            assert!(e.contains(why), "{bad:?}: {e}");
        }
    }
}
