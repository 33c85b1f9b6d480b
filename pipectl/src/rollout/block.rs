//! `pipectl rollout simulate --bad-block-rule`: the blast radius of a
//! well-formed block rule that denies a pipe Windows or an application
//! needs, with and without the sensor's circuit breaker and monitor-first
//! period (soak), staged and all at once.
//!
//! Nothing crashes, so the crash-loop guard does not help: the damage is
//! service failures for as long as the rule denies. The model (expected
//! values, deterministic) is documented in docs/rollout.md, "A bad block
//! rule"; every formula there is implemented by [`simulate`].

use serde_json::{json, Value};
use std::fmt::Write as _;

use super::{count, dur, gate_text, parse_fraction, parse_minutes, pct, Gate, Minutes, SimArgs};

/// The bad-block-rule parameters of `rollout simulate`.
#[derive(Debug, Clone, clap::Args)]
pub struct BlockArgs {
    /// Model a bad block rule (services denied) instead of a crashing
    /// release.
    #[arg(long)]
    pub bad_block_rule: bool,
    /// Share of the machines where the rule matches a pipe that Windows or an
    /// application needs (0.3 or 30%).
    #[arg(long, default_value = "100%", value_parser = parse_fraction)]
    pub hit_share: f64,
    /// Denies per minute on such a machine while the rule enforces (a service
    /// retrying, clients connecting).
    #[arg(long, default_value = "60", value_parser = parse_rate)]
    pub deny_rate: f64,
    /// Services broken per minute of denial on such a machine: failed
    /// logons, print jobs, service starts, remote management calls.
    #[arg(long, default_value = "1", value_parser = parse_rate)]
    pub failures_per_minute: f64,
    /// The sensor's per-rule circuit breaker, N/DURATION: demoted after N
    /// denies within DURATION (the driver's default is 20/60s).
    #[arg(long, default_value = "20/60s", value_parser = parse_breaker)]
    pub breaker: BreakerSpec,
    /// Monitor-first period (soak) per ring, as the content's policy sets it
    /// (`pipectl compile --monitor-first`): ring:DURATION,... or one
    /// DURATION for every ring. Block rules only alert for this long after a
    /// machine adopts the content.
    #[arg(long, default_value = "canary:2h,early:4h,broad:24h", value_parser = parse_monitor_first)]
    pub monitor_first: MonitorFirst,
    /// Time from the halt to fixed content (a new release or a signed
    /// rollback instruction) on every machine that has the bad rule.
    #[arg(long, default_value = "1h", value_parser = parse_minutes)]
    pub fix_time: Minutes,
}

/// A breaker limit for the model.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BreakerSpec {
    /// Denies allowed per window.
    pub denies: f64,
    /// The window, in minutes.
    pub window: f64,
}

/// Monitor-first period per ring name, or one for all.
#[derive(Debug, Clone, PartialEq)]
pub enum MonitorFirst {
    /// The same for every ring.
    All(Minutes),
    /// Per ring name.
    PerRing(Vec<(String, Minutes)>),
}

impl MonitorFirst {
    /// The period of ring `name`.
    pub fn of(&self, name: &str) -> Result<f64, String> {
        match self {
            MonitorFirst::All(m) => Ok(m.0),
            MonitorFirst::PerRing(v) => v
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, m)| m.0)
                .ok_or_else(|| {
                    format!("--monitor-first has no period for ring {name:?} (give ring:DURATION for every ring of --rings, or one DURATION)")
                }),
        }
    }
}

fn parse_rate(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if v >= 0.0 && v.is_finite() => Ok(v),
        _ => Err(format!("bad rate {s:?}: a number per minute, 0 or more")),
    }
}

/// Parses `20/60s`, `20/1m`.
pub fn parse_breaker(s: &str) -> Result<BreakerSpec, String> {
    let (n, w) = s
        .split_once('/')
        .ok_or_else(|| format!("bad breaker {s:?}: N/DURATION, e.g. 20/60s"))?;
    let denies = match n.trim().parse::<u32>() {
        Ok(v) if v > 0 => f64::from(v),
        _ => {
            return Err(format!(
                "bad breaker {s:?}: N must be a whole number above 0"
            ))
        }
    };
    let window = parse_minutes(w)?.0;
    if window <= 0.0 {
        return Err(format!(
            "bad breaker {s:?}: the window must be longer than 0"
        ));
    }
    Ok(BreakerSpec { denies, window })
}

/// Parses `canary:2h,early:4h,broad:24h` or `2h`.
pub fn parse_monitor_first(s: &str) -> Result<MonitorFirst, String> {
    if !s.contains(':') {
        return parse_minutes(s).map(MonitorFirst::All);
    }
    let mut out = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (ring, d) = part
            .split_once(':')
            .ok_or_else(|| format!("{part:?} is not ring:DURATION (e.g. canary:2h)"))?;
        out.push((ring.trim().to_string(), parse_minutes(d)?));
    }
    Ok(MonitorFirst::PerRing(out))
}

/// One group of machines (a ring) as the model sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    /// Ring name.
    pub name: String,
    /// When it got the content (minutes after release).
    pub delivered_at: f64,
    /// Machines in it that got the content.
    pub machines: f64,
    /// Of those, machines where the rule hits a needed pipe.
    pub hit: f64,
    /// When its block rules start enforcing.
    pub enforces_at: f64,
    /// Minutes a hit machine is denied (`None`: until someone fixes it by
    /// hand — never halted, no breaker).
    pub denial_minutes: Option<f64>,
}

/// The result of one strategy.
#[derive(Debug, Clone, PartialEq)]
pub struct BlockOutcome {
    /// Strategy name.
    pub name: String,
    /// Whether the breaker is on.
    pub breaker: bool,
    /// Whether monitor-first is on.
    pub monitor_first: bool,
    /// Groups delivered.
    pub groups: Vec<Group>,
    /// Machines that got the content.
    pub delivered: f64,
    /// Machines where the rule denied at least once.
    pub denied_machines: f64,
    /// Machine-minutes of denial (`None`: unbounded).
    pub denial_machine_minutes: Option<f64>,
    /// Denies in all (`None`: unbounded).
    pub denies: Option<f64>,
    /// Service failures in all (`None`: unbounded).
    pub failures: Option<f64>,
    /// Minutes from release to halt.
    pub halted_at: Option<f64>,
}

/// How long a hit machine is denied once its rule enforces at `start`, with
/// the fix at `fix_at` (`None`: never), with or without the breaker.
fn denial(b: &BlockArgs, start: f64, fix_at: Option<f64>, breaker: bool) -> Option<f64> {
    let until_fix = fix_at.map(|f| (f - start).max(0.0));
    if until_fix == Some(0.0) || b.deny_rate <= 0.0 {
        return Some(0.0);
    }
    // The breaker trips at the (N+1)-th deny if the N denies before it fall
    // within 15/16 of the window (docs/rollout.md): N / rate minutes.
    let trip = b.breaker.denies / b.deny_rate;
    let trips = breaker && trip < b.breaker.window * 15.0 / 16.0;
    match (until_fix, trips) {
        (Some(u), true) => Some(u.min(trip)),
        (None, true) => Some(trip),
        (u, false) => u,
    }
}

/// Runs the model for one strategy: `rings` (name, cumulative share,
/// delivery time); `gate` decides the halt as in the crash model, counting
/// machines where the rule was seen to hit (denied, soaking or demoted: the
/// event is the same signal).
pub fn simulate(
    p: &SimArgs,
    rings: &[(String, f64, f64)],
    gate: Option<Gate>,
    breaker: bool,
    monitor_first: bool,
    name: &str,
) -> Result<BlockOutcome, String> {
    let b = &p.block;
    let n = p.fleet as f64;
    let mut halted_at: Option<f64> = None;
    let mut groups = Vec::new();
    let (mut prev, mut delivered, mut hits) = (0.0f64, 0.0f64, 0.0f64);
    for (ring, share, at) in rings {
        if halted_at.is_some_and(|h| *at >= h) {
            break;
        }
        let machines = (share - prev).max(0.0) * n;
        prev = prev.max(*share);
        let hit = b.hit_share * machines;
        delivered += machines;
        hits += hit;
        let soak = if monitor_first {
            b.monitor_first.of(ring)?
        } else {
            0.0
        };
        groups.push(Group {
            name: ring.clone(),
            delivered_at: *at,
            machines,
            hit,
            enforces_at: at + soak,
            denial_minutes: None,
        });
        let tripped = match gate {
            None => hits > 0.0,
            Some(Gate::Crashes(t)) => hits > 0.0 && hits >= t,
            Some(Gate::Share(s)) => hits > 0.0 && delivered > 0.0 && hits / delivered >= s,
        };
        if tripped && halted_at.is_none() {
            halted_at = Some(at + p.detect.0);
        }
    }
    let fix_at = halted_at.map(|h| h + b.fix_time.0);
    let (mut denied, mut mm) = (0.0f64, Some(0.0f64));
    for g in &mut groups {
        g.denial_minutes = denial(b, g.enforces_at, fix_at, breaker);
        let d = g.denial_minutes;
        if d != Some(0.0) && g.hit > 0.0 {
            denied += g.hit;
        }
        mm = match (mm, d) {
            (Some(acc), Some(d)) => Some(acc + g.hit * d),
            (acc, None) if g.hit == 0.0 => acc,
            _ => None,
        };
    }
    Ok(BlockOutcome {
        name: name.to_string(),
        breaker,
        monitor_first,
        groups,
        delivered,
        denied_machines: denied,
        denial_machine_minutes: mm,
        denies: mm.map(|m| m * b.deny_rate),
        failures: mm.map(|m| m * b.failures_per_minute),
        halted_at,
    })
}

/// The strategies: all at once and staged, each without guards, with the
/// breaker, with monitor-first, and with both.
pub fn strategies(p: &SimArgs) -> Result<Vec<BlockOutcome>, String> {
    // All at once: every ring's machines get the file at 0; monitor-first
    // still staggers enforcement by ring. People pull the file `detect`
    // after the first hits are seen.
    let once: Vec<(String, f64, f64)> = p
        .rings
        .0
        .iter()
        .map(|(n, s)| (n.clone(), *s, 0.0))
        .collect();
    let staged: Vec<(String, f64, f64)> = p
        .rings
        .0
        .iter()
        .enumerate()
        .map(|(k, (n, s))| (n.clone(), *s, k as f64 * p.soak.0))
        .collect();
    let g = Some(p.health_gate);
    Ok(vec![
        simulate(p, &once, None, false, false, "all at once, no guards")?,
        simulate(p, &once, None, true, false, "all at once, breaker")?,
        simulate(
            p,
            &once,
            None,
            true,
            true,
            "all at once, monitor-first + breaker",
        )?,
        simulate(
            p,
            &staged,
            g,
            false,
            false,
            "staged + health gate, no guards",
        )?,
        simulate(p, &staged, g, true, false, "staged + health gate, breaker")?,
        simulate(
            p,
            &staged,
            g,
            false,
            true,
            "staged + health gate, monitor-first",
        )?,
        simulate(
            p,
            &staged,
            g,
            true,
            true,
            "staged + health gate, monitor-first + breaker",
        )?,
    ])
}

fn opt_count(v: Option<f64>) -> String {
    v.map_or_else(|| "until fixed".into(), count)
}

/// The table report.
pub fn table(p: &SimArgs, res: &[BlockOutcome]) -> String {
    let b = &p.block;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "fleet {} machines; bad block rule: hits a needed pipe on {} of the machines, {} denies/min there while it enforces, {} services broken per minute of denial",
        count(p.fleet as f64),
        pct(b.hit_share),
        b.deny_rate,
        b.failures_per_minute
    );
    let rings: Vec<String> = p
        .rings
        .0
        .iter()
        .map(|(n, x)| format!("{n} {}", pct(*x)))
        .collect();
    let _ = writeln!(
        s,
        "rings (cumulative) {}; soak between rings {}; hits observed {} after delivery; health gate: halt at {}; fixed content {} after the halt",
        rings.join(" -> "),
        dur(p.soak.0),
        dur(p.detect.0),
        gate_text(p.health_gate).replace("crashed", "hit"),
        dur(b.fix_time.0)
    );
    let mf: Vec<String> = p
        .rings
        .0
        .iter()
        .map(|(n, _)| match b.monitor_first.of(n) {
            Ok(m) => format!("{n} {}", dur(m)),
            Err(_) => format!("{n} ?"),
        })
        .collect();
    let _ = writeln!(
        s,
        "breaker: demoted after {} denies within {}; monitor-first (block rules alert only): {}\n",
        b.breaker.denies,
        dur(b.breaker.window),
        mf.join(", ")
    );
    let _ = writeln!(
        s,
        "{:<46} {:>11} {:>15} {:>16} {:>16} {:>16}",
        "strategy", "delivered", "machines denied", "denial min/mach", "broken services", "halted"
    );
    for o in res {
        let per_machine = o
            .groups
            .iter()
            .filter(|g| g.hit > 0.0)
            .map(|g| g.denial_minutes)
            .try_fold(0.0f64, |acc, d| d.map(|d| acc.max(d)));
        let halted = o
            .halted_at
            .map_or_else(|| "no".into(), |h| format!("after {}", dur(h)));
        let _ = writeln!(
            s,
            "{:<46} {:>11} {:>15} {:>16} {:>16} {:>16}",
            o.name,
            count(o.delivered),
            count(o.denied_machines),
            per_machine.map_or_else(|| "until fixed".into(), |m| format!("{m:.1}")),
            opt_count(o.failures),
            halted
        );
    }
    let _ = writeln!(
        s,
        "\n\"denial min/mach\" is the longest a hit machine is denied; \"broken services\" = machine-minutes of denial x {} per minute",
        b.failures_per_minute
    );
    s
}

/// The JSON report.
pub fn to_json(p: &SimArgs, res: &[BlockOutcome]) -> Value {
    let b = &p.block;
    json!({
        "model": "bad block rule; expected values; see docs/rollout.md",
        "parameters": {
            "fleet": p.fleet,
            "rings": p.rings.0.iter().map(|(n, s)| json!({
                "name": n,
                "cumulative_share": s,
                "monitor_first_minutes": b.monitor_first.of(n).ok(),
            })).collect::<Vec<_>>(),
            "soak_minutes": p.soak.0,
            "detect_minutes": p.detect.0,
            "health_gate": match p.health_gate {
                Gate::Crashes(c) => json!({"machines": c}),
                Gate::Share(s) => json!({"share": s}),
            },
            "hit_share": b.hit_share,
            "deny_rate_per_minute": b.deny_rate,
            "failures_per_minute": b.failures_per_minute,
            "breaker": {"denies": b.breaker.denies, "window_minutes": b.breaker.window},
            "fix_minutes": b.fix_time.0,
        },
        "strategies": res.iter().map(|o| json!({
            "name": o.name,
            "breaker": o.breaker,
            "monitor_first": o.monitor_first,
            "delivered": o.delivered.round(),
            "denied_machines": o.denied_machines.round(),
            "denial_machine_minutes": o.denial_machine_minutes,
            "denies": o.denies.map(f64::round),
            "broken_services": o.failures.map(f64::round),
            "halted_at_minutes": o.halted_at,
            "rings": o.groups.iter().map(|g| json!({
                "name": g.name,
                "delivered_minutes": g.delivered_at,
                "machines": g.machines.round(),
                "hit": g.hit.round(),
                "enforces_minutes": g.enforces_at,
                "denial_minutes": g.denial_minutes,
            })).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct T {
        #[command(flatten)]
        a: SimArgs,
    }

    fn args(extra: &[&str]) -> SimArgs {
        let mut v = vec!["t", "--bad-block-rule"];
        v.extend_from_slice(extra);
        T::try_parse_from(v).expect("args").a
    }

    fn by<'a>(r: &'a [BlockOutcome], name: &str) -> &'a BlockOutcome {
        r.iter().find(|o| o.name == name).expect(name)
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-6 * b.abs().max(1.0)
    }

    #[test]
    fn defaults() {
        let r = strategies(&args(&[])).unwrap();
        let n = 8_500_000.0;
        // All at once, no guards: everyone hit, denied from 0 until the fix
        // at detect (20m) + fix (60m).
        let o = by(&r, "all at once, no guards");
        assert!(close(o.denied_machines, n));
        assert_eq!(o.halted_at, Some(20.0));
        assert!(close(o.denial_machine_minutes.unwrap(), n * 80.0));
        assert!(close(o.failures.unwrap(), n * 80.0));
        // The breaker: 20 denies at 60/min trip after 20/60 min.
        let o = by(&r, "all at once, breaker");
        assert!(close(o.denied_machines, n));
        assert!(close(o.denial_machine_minutes.unwrap(), n * 20.0 / 60.0));
        // Monitor-first: the fix (80m) comes before the canary's 2h soak ends.
        let o = by(&r, "all at once, monitor-first + breaker");
        assert_eq!(o.denied_machines, 0.0);
        assert_eq!(o.failures, Some(0.0));
        // Staged: the canary (8,500) is halted at 20m; denied until 80m.
        let o = by(&r, "staged + health gate, no guards");
        assert!(close(o.delivered, 8_500.0));
        assert!(close(o.denied_machines, 8_500.0));
        assert!(close(o.denial_machine_minutes.unwrap(), 8_500.0 * 80.0));
        let o = by(&r, "staged + health gate, monitor-first");
        assert_eq!(o.denied_machines, 0.0);
    }

    #[test]
    fn a_short_soak_lets_the_canary_deny_until_the_fix() {
        let r = strategies(&args(&["--monitor-first", "30m"])).unwrap();
        // Canary enforces at 30m, fix at 80m: 50 minutes.
        let o = by(&r, "staged + health gate, monitor-first");
        assert!(close(o.denied_machines, 8_500.0));
        assert_eq!(o.groups[0].denial_minutes, Some(50.0));
        // With the breaker: 20/60 min.
        let o = by(&r, "staged + health gate, monitor-first + breaker");
        assert!(close(o.groups[0].denial_minutes.unwrap(), 20.0 / 60.0));
    }

    #[test]
    fn a_slow_rule_never_trips_the_breaker() {
        // 10 denies/min against 20 per minute: never trips.
        let r = strategies(&args(&["--deny-rate", "10"])).unwrap();
        let a = by(&r, "all at once, no guards");
        let b = by(&r, "all at once, breaker");
        assert_eq!(a.denial_machine_minutes, b.denial_machine_minutes);
        // 22/min: 20 denies in 54.5 s < 56.25 s (15/16 of a minute): trips.
        let r = strategies(&args(&["--deny-rate", "22"])).unwrap();
        let b = by(&r, "all at once, breaker");
        assert!(close(b.groups[0].denial_minutes.unwrap(), 20.0 / 22.0));
    }

    #[test]
    fn never_halted_is_unbounded_without_the_breaker() {
        // A gate above any possible count: the staged release completes and
        // nobody halts it.
        let r = strategies(&args(&["--health-gate", "1e12", "--hit-share", "1%"])).unwrap();
        let o = by(&r, "staged + health gate, no guards");
        assert_eq!(o.halted_at, None);
        assert_eq!(o.failures, None);
        let o = by(&r, "staged + health gate, breaker");
        assert!(close(
            o.denial_machine_minutes.unwrap(),
            85_000.0 * 20.0 / 60.0
        ));
        // Monitor-first alone only delays it.
        let o = by(&r, "staged + health gate, monitor-first");
        assert_eq!(o.failures, None);
    }

    #[test]
    fn parsers_and_errors() {
        assert_eq!(
            parse_breaker("20/60s").unwrap(),
            BreakerSpec {
                denies: 20.0,
                window: 1.0
            }
        );
        assert!(parse_breaker("0/60s").is_err());
        assert!(parse_breaker("20").is_err());
        assert!(parse_breaker("20/0").is_err());
        assert_eq!(
            parse_monitor_first("2h").unwrap(),
            MonitorFirst::All(Minutes(120.0))
        );
        let m = parse_monitor_first("canary:1h, broad:1d").unwrap();
        assert_eq!(m.of("CANARY").unwrap(), 60.0);
        assert_eq!(m.of("broad").unwrap(), 1440.0);
        let e = m.of("early").unwrap_err();
        assert!(e.contains("\"early\""), "{e}");
        assert!(strategies(&args(&["--monitor-first", "canary:1h"])).is_err());
        assert!(parse_rate("-1").is_err());
    }
}
