//! `pipectl rollout simulate`: the blast radius of a bad content release under
//! a staged rollout with a health gate, against an all-at-once release, with
//! and without the sensor's crash-loop guard; with `--bad-block-rule`, of a
//! block rule that denies what Windows needs, with and without the circuit
//! breaker and the monitor-first period ([`block`]).
//!
//! The model is deterministic (expected values, no randomness) and documented
//! in docs/rollout.md; every formula there is implemented by [`simulate`].

use serde_json::{json, Value};
use std::fmt::Write as _;
use std::path::PathBuf;

pub mod block;

/// `pipectl rollout ...`
#[derive(Debug, clap::Subcommand)]
pub enum RolloutCmd {
    /// Model a bad release: machines crashed, time to halt and machines needing
    /// manual repair, staged vs all at once, with and without the crash-loop
    /// guard; or (--bad-block-rule) a block rule that denies a pipe Windows
    /// needs: machines denied and services broken, with and without the
    /// circuit breaker and monitor-first (see docs/rollout.md).
    #[command(after_help = "Examples:
  pipectl rollout simulate
  pipectl rollout simulate --crash-prob 100% --detect 78m --svg blast.svg
  pipectl rollout simulate --rings canary:1%,early:10%,broad:100% --soak 30m --health-gate 0.5% --json
  pipectl rollout simulate --bad-block-rule --deny-rate 120 --breaker 20/60s --monitor-first canary:2h,early:4h,broad:24h")]
    Simulate(SimArgs),
    /// Print a machine's rollout bucket: the share of its ring (0-99.999 %)
    /// below which a staged file reaches it. The driver computes the same
    /// value from its `MachineId` service-key value or, without one, from
    /// HKLM\SOFTWARE\Microsoft\Cryptography\MachineGuid (ASCII letters
    /// lower-cased, surrounding blanks dropped).
    #[command(after_help = "Example:
  pipectl rollout bucket 1b4e28ba-2fa1-11d2-883f-0016d3cca427")]
    Bucket {
        /// The machine id (its MachineGuid, or the MachineId value).
        machine_id: String,
        /// The channel (the bucket differs per channel).
        #[arg(long, default_value_t = channel_format::CHANNEL_PIPES)]
        channel: u32,
    },
}

/// Parameters of the model.
#[derive(Debug, Clone, clap::Args)]
pub struct SimArgs {
    /// Machines in the fleet that run the sensor and are online.
    #[arg(long, default_value_t = 8_500_000)]
    pub fleet: u64,
    /// Rings as name:share, share = cumulative part of the fleet that has the
    /// release once the ring is delivered (the last is normally 100%).
    #[arg(long, default_value = "canary:0.1%,early:5%,broad:100%", value_parser = parse_rings)]
    pub rings: Rings,
    /// Soak time: how long each ring runs before the next ring starts
    /// (e.g. 2h, 90m, 1h30m).
    #[arg(long, default_value = "2h", value_parser = parse_minutes)]
    pub soak: Minutes,
    /// Part of the machines that load the release and crash (0.3 or 30%). A
    /// machine that crashes on it crashes again on every boot that loads it.
    #[arg(long, default_value = "0.3", value_parser = parse_fraction)]
    pub crash_prob: f64,
    /// Time from a crash to its being observed by the health gate (and, for an
    /// all-at-once release, by the people who pull the file).
    #[arg(long, default_value = "20m", value_parser = parse_minutes)]
    pub detect: Minutes,
    /// Health gate: halt the rollout once observed crashes reach this many
    /// machines (e.g. 50) or this part of the machines delivered so far
    /// (e.g. 0.5%).
    #[arg(long, default_value = "50", value_parser = parse_gate)]
    pub health_gate: Gate,
    /// Crash-loop guard: failed starts before the sensor quarantines the
    /// content and boots with the last-known-good file.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
    pub guard_starts: u32,
    /// Time one crash + reboot cycle takes.
    #[arg(long, default_value = "3m", value_parser = parse_minutes)]
    pub boot_time: Minutes,
    /// Write an SVG chart (cumulative machines crashed over time per strategy;
    /// not drawn for --bad-block-rule).
    #[arg(long)]
    pub svg: Option<PathBuf>,
    /// The bad-block-rule model's parameters.
    #[command(flatten)]
    pub block: block::BlockArgs,
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
}

/// A duration in minutes.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
pub struct Minutes(pub f64);

/// Ring plan: (name, cumulative share of the fleet).
#[derive(Debug, Clone, PartialEq)]
pub struct Rings(pub Vec<(String, f64)>);

/// Health gate threshold.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Gate {
    /// Observed crashed machines.
    Crashes(f64),
    /// Observed crashed machines / machines delivered so far.
    Share(f64),
}

/// Parses `2h`, `90m`, `1h30m`, `45s`, `0` (minutes when no unit).
pub fn parse_minutes(s: &str) -> Result<Minutes, String> {
    let t = s.trim();
    if t.is_empty() {
        return Err("empty duration".into());
    }
    let (mut total, mut num) = (0.0f64, String::new());
    for c in t.chars() {
        if c.is_ascii_digit() || c == '.' {
            num.push(c);
            continue;
        }
        let n: f64 = num
            .parse()
            .map_err(|_| format!("bad duration {s:?} (e.g. 2h, 90m, 1h30m, 45s)"))?;
        num.clear();
        total += match c {
            'h' => n * 60.0,
            'm' => n,
            's' => n / 60.0,
            'd' => n * 1440.0,
            _ => return Err(format!("bad duration unit {c:?} in {s:?} (d, h, m, s)")),
        };
    }
    if !num.is_empty() {
        total += num
            .parse::<f64>()
            .map_err(|_| format!("bad duration {s:?}"))?;
    }
    if !total.is_finite() {
        return Err(format!("bad duration {s:?}"));
    }
    Ok(Minutes(total))
}

/// Parses `0.3` or `30%` into a fraction in [0, 1].
pub fn parse_fraction(s: &str) -> Result<f64, String> {
    let t = s.trim();
    let v = match t.strip_suffix('%') {
        Some(p) => p.trim().parse::<f64>().map(|x| x / 100.0),
        None => t.parse::<f64>(),
    }
    .map_err(|_| format!("bad fraction {s:?} (e.g. 0.3 or 30%)"))?;
    if !(0.0..=1.0).contains(&v) {
        return Err(format!("{s:?} is not between 0 and 100%"));
    }
    Ok(v)
}

/// Parses `canary:0.1%,early:5%,broad:100%`.
pub fn parse_rings(s: &str) -> Result<Rings, String> {
    let mut out: Vec<(String, f64)> = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (name, share) = part
            .split_once(':')
            .ok_or_else(|| format!("ring {part:?} is not name:share (e.g. canary:0.1%)"))?;
        let share = parse_fraction(share)?;
        if let Some((prev, p)) = out.last() {
            if share < *p {
                return Err(format!(
                    "ring {name:?} ({}) is smaller than ring {prev:?} ({}): shares are cumulative",
                    pct(share),
                    pct(*p)
                ));
            }
        }
        out.push((name.trim().to_string(), share));
    }
    if out.is_empty() {
        return Err("no rings".into());
    }
    Ok(Rings(out))
}

/// Parses `50` (crashes) or `0.5%` (of delivered machines).
pub fn parse_gate(s: &str) -> Result<Gate, String> {
    let t = s.trim();
    if t.ends_with('%') {
        return parse_fraction(t).map(Gate::Share);
    }
    match t.parse::<f64>() {
        Ok(v) if v >= 0.0 && v.is_finite() => Ok(Gate::Crashes(v)),
        _ => Err(format!(
            "bad health gate {s:?}: a number of crashed machines (50) or a share of delivered machines (0.5%)"
        )),
    }
}

fn pct(f: f64) -> String {
    let p = f * 100.0;
    if p == p.round() {
        format!("{p:.0}%")
    } else {
        let s = format!("{p:.4}");
        format!("{}%", s.trim_end_matches('0').trim_end_matches('.'))
    }
}

/// One ring as delivered.
#[derive(Debug, Clone, PartialEq)]
pub struct RingOutcome {
    /// Ring name.
    pub name: String,
    /// Start time (minutes after release).
    pub start: f64,
    /// Machines that got the release in this ring.
    pub machines: f64,
    /// Machines that crashed in this ring.
    pub crashed: f64,
}

/// The result of one strategy.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// Strategy name.
    pub name: String,
    /// Whether the sensors have the crash-loop guard.
    pub guard: bool,
    /// Rings delivered (one ring "all" for the all-at-once release).
    pub rings: Vec<RingOutcome>,
    /// Machines that received the release.
    pub delivered: f64,
    /// Machines that crashed (at least once).
    pub crashed: f64,
    /// Minutes from release to halt, when the release was halted.
    pub halted_at: Option<f64>,
    /// Minutes from release to the last delivery when not halted.
    pub completed_at: Option<f64>,
    /// Machines that need hands-on repair.
    pub manual_repair: f64,
    /// Reboots caused (bounded only with the guard).
    pub reboots: Option<f64>,
    /// Minutes a crashed machine is down before it is back on its own (guard).
    pub self_recovery: Option<f64>,
}

/// Runs the model for one strategy. `rings` are cumulative shares.
pub fn simulate(p: &SimArgs, rings: &[(String, f64)], guard: bool, name: &str) -> Outcome {
    let n = p.fleet as f64;
    let d = p.detect.0;
    let mut halted_at: Option<f64> = None;
    let mut out = Vec::new();
    let mut prev_share = 0.0;
    let (mut delivered, mut crashed) = (0.0f64, 0.0f64);
    for (k, (ring, share)) in rings.iter().enumerate() {
        let start = k as f64 * p.soak.0;
        // A ring due at or after the halt never starts.
        if halted_at.is_some_and(|h| start >= h) {
            break;
        }
        let machines = (share - prev_share).max(0.0) * n;
        prev_share = prev_share.max(*share);
        let c = p.crash_prob * machines;
        delivered += machines;
        crashed += c;
        out.push(RingOutcome {
            name: ring.clone(),
            start,
            machines,
            crashed: c,
        });
        // The crashes of this ring are observed at start + detect; the gate
        // halts then if the crashes so far reach the threshold.
        let tripped = match p.health_gate {
            Gate::Crashes(t) => crashed > 0.0 && crashed >= t,
            Gate::Share(s) => crashed > 0.0 && delivered > 0.0 && crashed / delivered >= s,
        };
        if tripped && halted_at.is_none() {
            halted_at = Some(start + d);
        }
    }
    let completed_at = if halted_at.is_none() {
        out.last().map(|r| r.start)
    } else {
        None
    };
    let k = f64::from(p.guard_starts);
    Outcome {
        name: name.to_string(),
        guard,
        rings: out,
        delivered,
        crashed,
        halted_at,
        completed_at,
        manual_repair: if guard { 0.0 } else { crashed },
        reboots: guard.then_some(crashed * k),
        self_recovery: guard.then_some(k * p.boot_time.0),
    }
}

/// The four strategies: all at once and staged, each without and with the guard.
pub fn strategies(p: &SimArgs) -> Vec<Outcome> {
    let all = [("all".to_string(), 1.0)];
    // All at once: no gate can act before everything is delivered; the people
    // watching pull the file `detect` after the crashes begin.
    let mut once = p.clone();
    once.health_gate = Gate::Crashes(0.0);
    vec![
        simulate(&once, &all, false, "all at once, no guard (July 2024)"),
        simulate(&once, &all, true, "all at once, crash-loop guard"),
        simulate(p, &p.rings.0, false, "staged + health gate, no guard"),
        simulate(
            p,
            &p.rings.0,
            true,
            "staged + health gate, crash-loop guard",
        ),
    ]
}

fn count(x: f64) -> String {
    let v = x.round() as u64;
    let s = v.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn dur(m: f64) -> String {
    let total = m.round() as u64;
    let (h, mm) = (total / 60, total % 60);
    match (h, mm) {
        (0, m) => format!("{m}m"),
        (h, 0) => format!("{h}h"),
        (h, m) => format!("{h}h{m:02}m"),
    }
}

fn gate_text(g: Gate) -> String {
    match g {
        Gate::Crashes(c) => format!("{} crashed machines", count(c)),
        Gate::Share(s) => format!("{} of delivered machines crashed", pct(s)),
    }
}

/// Runs `pipectl rollout ...`.
pub fn run(cmd: RolloutCmd) -> Result<u8, String> {
    match cmd {
        RolloutCmd::Bucket {
            machine_id,
            channel,
        } => {
            let units: Vec<u16> = machine_id.encode_utf16().collect();
            let b = sensor_core::rollout::machine_bucket(&units, channel);
            println!("bucket_milli={b}");
            println!("bucket={}.{:03}%", b / 1000, b % 1000);
            Ok(0)
        }
        RolloutCmd::Simulate(p) if p.block.bad_block_rule => {
            if p.svg.is_some() {
                return Err(
                    "--svg draws the crash model; it is not drawn for --bad-block-rule".into(),
                );
            }
            let res = block::strategies(&p)?;
            let text = if p.json {
                serde_json::to_string_pretty(&block::to_json(&p, &res)).unwrap_or_default() + "\n"
            } else {
                block::table(&p, &res)
            };
            use std::io::Write as _;
            let _ = std::io::stdout().lock().write_all(text.as_bytes());
            Ok(0)
        }
        RolloutCmd::Simulate(p) => {
            let res = strategies(&p);
            if let Some(path) = &p.svg {
                std::fs::write(path, svg(&p, &res))
                    .map_err(|e| format!("{}: {e}", path.display()))?;
            }
            let text = if p.json {
                serde_json::to_string_pretty(&to_json(&p, &res)).unwrap_or_default() + "\n"
            } else {
                table(&p, &res)
            };
            use std::io::Write as _;
            let _ = std::io::stdout().lock().write_all(text.as_bytes());
            Ok(0)
        }
    }
}

fn params_json(p: &SimArgs) -> Value {
    json!({
        "fleet": p.fleet,
        "rings": p.rings.0.iter().map(|(n, s)| json!({"name": n, "cumulative_share": s})).collect::<Vec<_>>(),
        "soak_minutes": p.soak.0,
        "crash_prob": p.crash_prob,
        "detect_minutes": p.detect.0,
        "health_gate": match p.health_gate {
            Gate::Crashes(c) => json!({"crashes": c}),
            Gate::Share(s) => json!({"share": s}),
        },
        "guard_starts": p.guard_starts,
        "boot_minutes": p.boot_time.0,
    })
}

/// The JSON report.
pub fn to_json(p: &SimArgs, res: &[Outcome]) -> Value {
    json!({
        "model": "expected values; see docs/rollout.md",
        "parameters": params_json(p),
        "strategies": res.iter().map(|o| json!({
            "name": o.name,
            "crash_loop_guard": o.guard,
            "delivered": o.delivered.round(),
            "crashed": o.crashed.round(),
            "halted_at_minutes": o.halted_at,
            "completed_at_minutes": o.completed_at,
            "manual_repair": o.manual_repair.round(),
            "reboots": o.reboots.map(f64::round),
            "self_recovery_minutes": o.self_recovery,
            "rings": o.rings.iter().map(|r| json!({
                "name": r.name, "start_minutes": r.start,
                "machines": r.machines.round(), "crashed": r.crashed.round(),
            })).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
    })
}

/// The table report.
pub fn table(p: &SimArgs, res: &[Outcome]) -> String {
    let mut s = String::new();
    let rings: Vec<String> = p
        .rings
        .0
        .iter()
        .map(|(n, x)| format!("{n} {}", pct(*x)))
        .collect();
    let _ = writeln!(
        s,
        "fleet {} machines; bad release: {} of the machines that load it crash (and crash again on every boot that loads it)",
        count(p.fleet as f64),
        pct(p.crash_prob)
    );
    let _ = writeln!(
        s,
        "rings (cumulative) {}; soak {}; crashes observed {} after they happen; health gate: halt at {}",
        rings.join(" -> "),
        dur(p.soak.0),
        dur(p.detect.0),
        gate_text(p.health_gate)
    );
    let _ = writeln!(
        s,
        "crash-loop guard: content quarantined after {} failed starts, last-known-good booted ({} per start)\n",
        p.guard_starts,
        dur(p.boot_time.0)
    );
    let _ = writeln!(
        s,
        "{:<40} {:>11} {:>11} {:>16} {:>14} {:>16}",
        "strategy", "delivered", "crashed", "halted", "manual repair", "reboots"
    );
    for o in res {
        let halted = match (o.halted_at, o.completed_at) {
            (Some(h), _) => format!("after {}", dur(h)),
            (None, Some(c)) => format!("no (done {})", dur(c)),
            (None, None) => "-".into(),
        };
        let reboots = match o.reboots {
            Some(r) => count(r),
            None => "until repaired".into(),
        };
        let _ = writeln!(
            s,
            "{:<40} {:>11} {:>11} {:>16} {:>14} {:>16}",
            o.name,
            count(o.delivered),
            count(o.crashed),
            halted,
            count(o.manual_repair),
            reboots
        );
    }
    let _ = writeln!(s, "\nrings delivered by the staged plan:");
    if let Some(st) = res.iter().find(|o| o.name.starts_with("staged")) {
        for r in &st.rings {
            let _ = writeln!(
                s,
                "  {:<10} starts {:>7}  {:>11} machines  {:>11} crashed",
                r.name,
                format!("+{}", dur(r.start)),
                count(r.machines),
                count(r.crashed)
            );
        }
        let skipped: Vec<&str> = p
            .rings
            .0
            .iter()
            .skip(st.rings.len())
            .map(|(n, _)| n.as_str())
            .collect();
        if !skipped.is_empty() {
            let _ = writeln!(s, "  never started (halted): {}", skipped.join(", "));
        }
    }
    if let Some(r) = res.iter().find_map(|o| o.self_recovery) {
        let _ = writeln!(
            s,
            "\nwith the guard each crashed machine is back on last-known-good on its own after {} starts (~{} down); without it, it boot-loops until someone repairs it by hand",
            p.guard_starts,
            dur(r)
        );
    }
    s
}

/// Machines down at time `t`: crashed at their ring's start and, with the
/// guard, back after `recover` minutes.
fn down_at(o: &Outcome, t: f64, recover: Option<f64>) -> f64 {
    o.rings
        .iter()
        .filter(|r| r.start <= t && recover.is_none_or(|rb| t < r.start + rb))
        .map(|r| r.crashed)
        .sum()
}

/// The SVG chart: machines down (log scale) over time per strategy (all at
/// once / staged, without / with the guard), halt markers, repair counts.
pub fn svg(p: &SimArgs, res: &[Outcome]) -> String {
    let (w, h) = (900.0f64, 520.0f64);
    let (l, r, t, b) = (90.0, 30.0, 60.0, 170.0);
    let (pw, ph) = (w - l - r, h - t - b);
    let end = res
        .iter()
        .map(|o| o.halted_at.or(o.completed_at).unwrap_or(0.0) + p.detect.0.max(p.soak.0))
        .fold(60.0f64, f64::max);
    let ymax = (p.fleet.max(10) as f64).log10().ceil();
    let x = |m: f64| l + pw * (m / end).clamp(0.0, 1.0);
    let y = |v: f64| {
        let lv = if v < 1.0 { 0.0 } else { v.log10() };
        t + ph - ph * (lv / ymax)
    };
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r#"<rect width="{w}" height="{h}" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="{l}" y="24" font-size="16" font-weight="bold">Bad content release: machines down over time ({} fleet, {} crash on load)</text>"#,
        count(p.fleet as f64),
        pct(p.crash_prob)
    );
    let _ = writeln!(
        s,
        r##"<text x="{l}" y="44" fill="#444">rings {} | soak {} | detect {} | gate {}</text>"##,
        p.rings
            .0
            .iter()
            .map(|(n, x)| format!("{n} {}", pct(*x)))
            .collect::<Vec<_>>()
            .join(", "),
        dur(p.soak.0),
        dur(p.detect.0),
        xml_escape(&gate_text(p.health_gate))
    );
    // Axes and grid.
    for e in 0..=ymax as u32 {
        let yy = y(10f64.powi(e as i32));
        let _ = writeln!(
            s,
            r##"<line x1="{l}" y1="{yy:.1}" x2="{:.1}" y2="{yy:.1}" stroke="#ddd"/><text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"##,
            l + pw,
            l - 6.0,
            yy + 4.0,
            count(10f64.powi(e as i32))
        );
    }
    let step = nice_step(end);
    let mut m = 0.0;
    while m <= end + 1e-9 {
        let xx = x(m);
        let _ = writeln!(
            s,
            r##"<line x1="{xx:.1}" y1="{t}" x2="{xx:.1}" y2="{:.1}" stroke="#eee"/><text x="{xx:.1}" y="{:.1}" text-anchor="middle">{}</text>"##,
            t + ph,
            t + ph + 16.0,
            dur(m)
        );
        m += step;
    }
    let _ = writeln!(
        s,
        r##"<rect x="{l}" y="{t}" width="{pw}" height="{ph}" fill="none" stroke="#333"/>"##
    );
    let _ = writeln!(
        s,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">time since release</text>"#,
        l + pw / 2.0,
        t + ph + 34.0
    );
    let _ = writeln!(
        s,
        r#"<text transform="translate(20,{:.1}) rotate(-90)" text-anchor="middle">machines down (log scale)</text>"#,
        t + ph / 2.0
    );
    // One line per strategy: machines down. Without the guard a crashed
    // machine stays down (boot loop) until repaired by hand; with it, it is
    // back after guard_starts x boot_time.
    for (i, o) in res.iter().enumerate() {
        let color = if i < 2 { "#d62728" } else { "#1f77b4" };
        let recover = o.self_recovery;
        let mut times = vec![0.0, end];
        for r in &o.rings {
            times.push(r.start);
            if let Some(rb) = recover {
                times.push(r.start + rb);
            }
        }
        times.sort_by(f64::total_cmp);
        times.dedup();
        let mut pts = vec![(x(0.0), y(0.0))];
        for &tm in &times {
            pts.push((x(tm), y(down_at(o, tm - 1e-9, recover))));
            pts.push((x(tm), y(down_at(o, tm, recover))));
        }
        let d: Vec<String> = pts.iter().map(|(a, b)| format!("{a:.1},{b:.1}")).collect();
        let dash = if o.guard {
            r#" stroke-dasharray="2,3""#
        } else {
            ""
        };
        let _ = writeln!(
            s,
            r#"<polyline fill="none" stroke="{color}" stroke-width="2.5"{dash} points="{}"/>"#,
            d.join(" ")
        );
        if let (Some(hh), false) = (o.halted_at, o.guard) {
            let xx = x(hh);
            let _ = writeln!(
                s,
                r#"<line x1="{xx:.1}" y1="{t}" x2="{xx:.1}" y2="{:.1}" stroke="{color}" stroke-dasharray="5,4"/><text x="{:.1}" y="{:.1}" fill="{color}">halt {}</text>"#,
                t + ph,
                xx + 4.0,
                t + 14.0 + 9.0 * i as f64,
                dur(hh)
            );
        }
    }
    // Legend with the repair numbers.
    let _ = writeln!(
        s,
        r##"<text x="{l}" y="{:.1}" fill="#444">solid: no guard (boot loop until repaired by hand); dotted: crash-loop guard (last-known-good after {} starts, {})</text>"##,
        t + ph + 52.0,
        p.guard_starts,
        dur(f64::from(p.guard_starts) * p.boot_time.0)
    );
    let mut ly = t + ph + 76.0;
    for (i, o) in res.iter().enumerate() {
        let color = if i < 2 { "#d62728" } else { "#1f77b4" };
        let dash = if o.guard {
            r#" stroke-dasharray="2,3""#
        } else {
            ""
        };
        let _ = writeln!(
            s,
            r#"<line x1="{l}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="{color}" stroke-width="2.5"{dash}/><text x="{:.1}" y="{:.1}">{}: {} crashed, {} need manual repair{}</text>"#,
            ly - 4.0,
            l + 30.0,
            ly - 4.0,
            l + 38.0,
            ly,
            xml_escape(&o.name),
            count(o.crashed),
            count(o.manual_repair),
            match o.reboots {
                Some(rb) => format!(", {} reboots (bounded)", count(rb)),
                None => ", boot loop until repaired".into(),
            }
        );
        ly += 18.0;
    }
    s.push_str("</svg>\n");
    s
}

fn nice_step(end: f64) -> f64 {
    for st in [10.0, 15.0, 30.0, 60.0, 120.0, 240.0, 480.0, 720.0, 1440.0] {
        if end / st <= 10.0 {
            return st;
        }
    }
    (end / 10.0).ceil()
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
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
        let mut v = vec!["t"];
        v.extend_from_slice(extra);
        T::try_parse_from(v).expect("args").a
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-6 * b.abs().max(1.0)
    }

    #[test]
    fn all_at_once_hits_p_times_fleet() {
        let res = strategies(&args(&[]));
        assert!(close(res[0].crashed, 0.3 * 8_500_000.0));
        assert!(close(res[0].delivered, 8_500_000.0));
        assert!(close(res[0].manual_repair, res[0].crashed));
        assert_eq!(res[0].halted_at, Some(20.0));
        assert!(close(res[1].manual_repair, 0.0));
        assert!(close(res[1].reboots.unwrap(), 3.0 * 0.3 * 8_500_000.0));
    }

    #[test]
    fn canary_that_detects_halts_before_broad() {
        let res = strategies(&args(&[]));
        let st = &res[2];
        assert_eq!(st.rings.len(), 1, "{st:?}");
        assert_eq!(st.halted_at, Some(20.0));
        assert!(close(st.delivered, 8_500.0));
        assert!(close(st.crashed, 0.3 * 8_500.0));
        assert!(close(st.manual_repair, 2_550.0));
        assert!(close(res[3].manual_repair, 0.0));
    }

    #[test]
    fn detection_slower_than_soak_lets_the_next_ring_start() {
        // detect 3h > soak 2h: early starts at 2h, halt at 0 + 3h, broad (4h) never.
        let st = simulate(
            &args(&["--detect", "3h"]),
            &parse_rings("canary:0.1%,early:5%,broad:100%").unwrap().0,
            false,
            "s",
        );
        assert_eq!(st.rings.len(), 2);
        assert_eq!(st.halted_at, Some(180.0));
        assert!(close(st.delivered, 0.05 * 8_500_000.0));
        assert!(close(st.crashed, 0.3 * 0.05 * 8_500_000.0));
    }

    #[test]
    fn a_gate_above_the_canary_crashes_waits_for_the_next_ring() {
        // p = 0.1%: canary crashes 8.5 < 50, early adds 416.5 -> halt at 2h + 20m.
        let p = args(&["--crash-prob", "0.1%"]);
        let st = &strategies(&p)[2];
        assert_eq!(st.rings.len(), 2);
        assert_eq!(st.halted_at, Some(140.0));
        assert!(close(st.crashed, 0.001 * 0.05 * 8_500_000.0));
        // A relative gate above p never trips: the release reaches everyone.
        let p = args(&["--crash-prob", "0.1%", "--health-gate", "0.5%"]);
        let st = &strategies(&p)[2];
        assert_eq!((st.halted_at, st.completed_at), (None, Some(240.0)));
        assert!(close(st.crashed, 0.001 * 8_500_000.0));
    }

    #[test]
    fn a_ring_due_at_the_halt_instant_does_not_start() {
        let st = &strategies(&args(&["--soak", "20m", "--detect", "20m"]))[2];
        assert_eq!(st.halted_at, Some(20.0));
        assert_eq!(st.rings.len(), 1);
        let st = &strategies(&args(&["--soak", "19m", "--detect", "20m"]))[2];
        assert_eq!(st.rings.len(), 2);
    }

    #[test]
    fn guard_never_needs_manual_repair() {
        for p in ["0", "0.001", "0.3", "1"] {
            for o in strategies(&args(&["--crash-prob", p])) {
                if o.guard {
                    assert_eq!(o.manual_repair, 0.0);
                    assert!(close(o.reboots.unwrap(), 3.0 * o.crashed));
                } else {
                    assert!(close(o.manual_repair, o.crashed));
                }
            }
        }
    }

    #[test]
    fn zero_crash_probability_completes() {
        let st = &strategies(&args(&["--crash-prob", "0"]))[2];
        assert_eq!((st.halted_at, st.completed_at), (None, Some(240.0)));
        assert_eq!(st.crashed, 0.0);
    }

    #[test]
    fn parsers() {
        assert_eq!(parse_minutes("1h30m").unwrap(), Minutes(90.0));
        assert_eq!(parse_minutes("45").unwrap(), Minutes(45.0));
        assert_eq!(parse_minutes("90s").unwrap(), Minutes(1.5));
        assert!(parse_minutes("2x").is_err());
        assert!(parse_minutes("").is_err());
        assert_eq!(parse_fraction("30%").unwrap(), 0.3);
        assert!(parse_fraction("130%").is_err());
        assert!(parse_rings("a:5%,b:1%").is_err());
        assert!(parse_rings("a").is_err());
        assert_eq!(parse_gate("0.5%").unwrap(), Gate::Share(0.005));
        assert_eq!(parse_gate("10").unwrap(), Gate::Crashes(10.0));
        assert!(parse_gate("-1").is_err());
        assert_eq!(pct(0.001), "0.1%");
        assert_eq!(count(2_550_000.0), "2,550,000");
    }

    #[test]
    fn svg_is_well_formed_enough() {
        let p = args(&[]);
        let s = svg(&p, &strategies(&p));
        assert!(s.starts_with("<svg") && s.trim_end().ends_with("</svg>"));
        assert_eq!(s.matches("<polyline").count(), 4);
        assert!(s.contains("2,550,000 crashed"));
    }
}
