//! `pipe-bench`: the non-criterion parts of the benchmark run (issue 5).
//!
//! ```text
//! pipe-bench stats <out-dir>            compile time, file size, section sizes,
//!                                       per-name latency distribution; writes
//!                                       <out-dir>/stats.txt and the channel files
//!                                       <out-dir>/<workload>.sys
//! pipe-bench callgrind <file.sys> <reps> evaluate every name <reps> times (run under
//!                                       valgrind --toggle-collect=*decide*)
//! pipe-bench callgrind-parse <file.sys> <reps>
//!                                       validate the file <reps> times (run under
//!                                       valgrind --toggle-collect=*validate_file*)
//! pipe-bench callgrind-dos <reps>       rewrite every event's image path from NT to
//!                                       DOS form <reps> times, as the driver does
//!                                       before matching (run under
//!                                       valgrind --toggle-collect=*dos_rewrite*)
//! pipe-bench callgrind-sid <reps>       format a local account's SID and Local
//!                                       System's as the driver supplies `User`
//!                                       (run under valgrind --toggle-collect=*format_sid*)
//! pipe-bench render <out-dir> <criterion-dir> <doc.md>
//!                                       writes the results table into the doc,
//!                                       between the `results` markers
//! ```
//!
//! `scripts/bench.sh` runs all of them in order.

use channel_parser::{ChannelFile, Event, Scratch, SectionKind, Verdict};
use pipe_bench::engines::{Ours, Prepared};
use pipe_bench::names::{events, sample};
use pipe_bench::workloads;
use pipe_compiler::model::{Atom, Cond, Matcher};
use pipe_compiler::{compile, AlignedBytes, CompileOptions};
use sensor_core::event::{Sid, SidText};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let r = match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["stats", out] => stats(Path::new(out)),
        ["callgrind", file, reps] => callgrind(Path::new(file), reps.parse().unwrap_or(1)),
        ["callgrind-parse", file, reps] => {
            callgrind_parse(Path::new(file), reps.parse().unwrap_or(1))
        }
        ["callgrind-dos", reps] => callgrind_dos(reps.parse().unwrap_or(1)),
        ["callgrind-sid", reps] => callgrind_sid(reps.parse().unwrap_or(1)),
        ["render", out, crit, doc] => render(Path::new(out), Path::new(crit), Path::new(doc)),
        _ => Err(
            "usage: pipe-bench stats OUT | callgrind FILE REPS | callgrind-parse FILE REPS | callgrind-dos REPS | callgrind-sid REPS | render OUT CRITERION DOC".into(),
        ),
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pipe-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

type Res = Result<(), String>;

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    if v.is_empty() {
        return 0.0;
    }
    v[v.len() / 2]
}

fn percentile(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    if v.is_empty() {
        return 0.0;
    }
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[i.min(v.len() - 1)]
}

/// Per-name latency of `evaluate`: each name is evaluated `REPS` times in a
/// row (after one warm-up call) and its time is the mean of those; returns
/// (median, p99) over names, in ns.
fn latency(ours: &Ours<'_>, p: &Prepared) -> (f64, f64) {
    let file = &ours.file;
    const REPS: u32 = 8;
    let mut scratch = Scratch::new();
    let mut per = Vec::with_capacity(p.utf16.len());
    for i in 0..p.utf16.len() {
        let ev = p.event16(i);
        std::hint::black_box(file.evaluate(&ev, &mut scratch));
        let t = Instant::now();
        for _ in 0..REPS {
            std::hint::black_box(file.evaluate(std::hint::black_box(&ev), &mut scratch));
        }
        per.push(t.elapsed().as_nanos() as f64 / f64::from(REPS));
    }
    let m = median(&mut per);
    (m, percentile(&mut per, 0.99))
}

fn stats(out: &Path) -> Res {
    std::fs::create_dir_all(out).map_err(|e| e.to_string())?;
    let prepared = Prepared::new(events());
    // The latency distribution is taken over an evenly spaced 2,000-name sample.
    let lat_sample = Prepared::new(sample(&prepared.events, 2_000));
    let mut s = String::new();
    let n = prepared.events.len() as f64;
    let _ =
        writeln!(
        s,
        "names count={n} malicious={} mean_name_units={:.1} mean_image_units={:.1} with_image={}",
        prepared.events.iter().filter(|e| e.malicious).count(),
        prepared.utf16.iter().map(|(a, _)| a.len()).sum::<usize>() as f64 / n,
        prepared.utf16.iter().filter_map(|(_, i)| i.as_ref().map(Vec::len)).sum::<usize>() as f64
            / n,
        prepared.utf16.iter().filter(|(_, i)| i.is_some()).count(),
    );
    let mut sets = workloads::all()?;
    // The 10k synthetic rules without their 1,000 regex rules: what the
    // regex verification costs (stats and callgrind only).
    let mut noregex = workloads::synthetic(10_000);
    noregex.rules.retain(|r| !r.name.contains("(regex)"));
    sets.push(("synth-10000-noregex".into(), noregex));
    // The same 10k rules with ASCII digit classes (`[0-9]`) in place of the
    // Unicode `\d`: what the Unicode classes cost in DFA bytes.
    let mut ascii = workloads::synthetic(10_000);
    for r in &mut ascii.rules {
        if let Cond::Atom(Atom {
            matcher: Matcher::Regex { pattern, .. },
            ..
        }) = &mut r.condition
        {
            *pattern = pattern.replace(r"\d", "[0-9]");
        }
    }
    sets.push(("synth-10000-asciidigits".into(), ascii));
    for (label, set) in sets {
        // Compile time: median of 3 (the first also warms the allocator).
        let mut times = Vec::new();
        let mut bytes = Vec::new();
        for _ in 0..3 {
            let t = Instant::now();
            bytes = compile(&set, &CompileOptions::default()).map_err(|e| e.to_string())?;
            times.push(t.elapsed().as_secs_f64() * 1e3);
        }
        let compile_ms = median(&mut times);
        std::fs::write(out.join(format!("{label}.sys")), &bytes).map_err(|e| e.to_string())?;
        let aligned = AlignedBytes::new(&bytes);
        let ours = Ours::new(&aligned);
        let file = ours.file;
        let mut sect: BTreeMap<String, u64> = BTreeMap::new();
        for sec in file.sections() {
            *sect.entry(format!("{:?}", sec.kind)).or_default() += u64::from(sec.len);
        }
        let dfa_len = file
            .sections()
            .filter(|x| x.kind == SectionKind::DFAS)
            .map(|x| u64::from(x.len))
            .sum::<u64>();
        let states: u32 = file.prefilter_stats().map(|(_, s, _)| s).sum();
        let (med, p99) = latency(&ours, &lat_sample);
        let slot_bytes = 0usize;
        let matched: u64 = (0..prepared.utf16.len())
            .map(|i| {
                u64::from(
                    file.evaluate(&prepared.event16(i), &mut Scratch::new())
                        .matched,
                )
            })
            .sum();
        let _ = writeln!(
            s,
            "{label} rules={} atoms={} dfas={} always={} compile_ms={compile_ms:.1} file_bytes={} dfa_bytes={dfa_len} prefilter_states={states} slot_bytes={slot_bytes} lat_median_ns={med:.1} lat_p99_ns={p99:.1} matches={matched}",
            set.rules.len(),
            file.atom_count(),
            file.dfa_count(),
            file.always_count(),
            bytes.len(),
        );
        eprintln!("{}", s.lines().last().unwrap_or(""));
        for (k, v) in sect {
            eprintln!("  section {k}: {v} bytes");
        }
    }
    std::fs::write(out.join("stats.txt"), s).map_err(|e| e.to_string())
}

/// The decision path, as the driver callback calls it. Not inlined so that
/// callgrind can count exactly its instructions (`--toggle-collect`).
#[inline(never)]
fn decide<'a>(file: &ChannelFile<'a>, ev: &Event<'_>, scratch: &mut Scratch) -> Verdict<'a> {
    file.evaluate(ev, scratch)
}

fn callgrind(path: &Path, reps: u32) -> Res {
    let raw = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let aligned = AlignedBytes::new(&raw);
    let ours = Ours::new(&aligned);
    let p = Prepared::new(events());
    let mut scratch = Scratch::new();
    let mut calls = 0u64;
    let mut matched = 0u64;
    for _ in 0..reps {
        for i in 0..p.utf16.len() {
            let ev = p.event16(i);
            matched +=
                u64::from(std::hint::black_box(decide(&ours.file, &ev, &mut scratch)).matched);
            calls += 1;
        }
    }
    println!("calls={calls} matched={matched}");
    Ok(())
}

/// Full validation, as the driver runs it on a new channel file. Not inlined
/// so that callgrind can count exactly its instructions (`--toggle-collect`).
#[inline(never)]
fn validate_file(bytes: &[u8]) -> Result<ChannelFile<'_>, channel_parser::ParseError> {
    channel_parser::parse(bytes, &channel_parser::Capabilities::SENSOR)
}

/// Validates the file `reps` times; prints the calls and the file's length,
/// from which `render` derives instructions per byte of validation.
fn callgrind_parse(path: &Path, reps: u32) -> Res {
    let raw = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let aligned = AlignedBytes::new(&raw);
    let bytes = aligned.as_slice();
    let mut calls = 0u64;
    for _ in 0..reps {
        let f = validate_file(std::hint::black_box(bytes)).map_err(|e| e.to_string())?;
        std::hint::black_box(f.rule_count());
        calls += 1;
    }
    println!("calls={calls} bytes={}", bytes.len());
    Ok(())
}

/// The image-path part of the driver's decision path: `drives::image_to_dos`
/// is `sensor_core::dospath::to_dos` on the drive table read at start. Not
/// inlined so that callgrind counts exactly its instructions.
#[inline(never)]
fn dos_rewrite<'a>(
    map: &sensor_core::dospath::DeviceMap,
    nt: &'a [u16],
    buf: &'a mut [u16],
) -> &'a [u16] {
    sensor_core::dospath::to_dos(map, nt, buf).path()
}

/// Every event's image (DOS form in the event set) turned into the NT form
/// the kernel reports (`C:` → `\Device\HarddiskVolume3`), then rewritten
/// back by `dos_rewrite` with a drive table like a workstation's (C:, D:, a
/// network drive Z:), into a buffer of the driver's size.
fn callgrind_dos(reps: u32) -> Res {
    use sensor_core::dospath::DeviceMap;
    let u = |s: &str| s.encode_utf16().collect::<Vec<u16>>();
    let mut map = DeviceMap::new();
    for (l, t) in [
        (b'C', r"\Device\HarddiskVolume3"),
        (b'D', r"\Device\HarddiskVolume4"),
        (
            b'Z',
            r"\Device\LanmanRedirector\;Z:0000000000012345\server\share",
        ),
    ] {
        map.insert(l, &u(t)).map_err(|e| format!("{e:?}"))?;
    }
    let nt: Vec<Vec<u16>> = events()
        .iter()
        .filter_map(|e| e.image.as_deref())
        .map(|i| match i.strip_prefix("C:") {
            Some(rest) => u(&format!(r"\Device\HarddiskVolume3{rest}")),
            None => u(i),
        })
        .collect();
    let mut buf = [0u16; sensor_core::proto::MAX_EVAL_IMAGE_UNITS];
    let (mut calls, mut units) = (0u64, 0u64);
    for _ in 0..reps {
        for p in &nt {
            let d = std::hint::black_box(dos_rewrite(&map, std::hint::black_box(p), &mut buf));
            units += d.len() as u64;
            calls += 1;
        }
    }
    println!("calls={calls} units={units}");
    Ok(())
}

/// The driver's extra work per operation when content reads `User`, past
/// the token query: the SID in string form, written into the working-memory
/// slot (`sensor_core::event::Sid::text_into`). Not inlined so that
/// callgrind counts exactly it.
#[inline(never)]
fn format_sid(sid: &Sid, out: &mut SidText) -> usize {
    sid.text_into(out);
    out.as_str().len()
}

fn callgrind_sid(reps: u32) -> Res {
    let mut local = vec![1u8, 5, 0, 0, 0, 0, 0, 5];
    for sub in [21u32, 3_623_811_015, 3_361_044_348, 30_300_820, 1001] {
        local.extend_from_slice(&sub.to_le_bytes());
    }
    let mut system = vec![1u8, 1, 0, 0, 0, 0, 0, 5];
    system.extend_from_slice(&18u32.to_le_bytes());
    let sids = [
        Sid::from_bytes(&local).map_err(|e| e.to_string())?,
        Sid::from_bytes(&system).map_err(|e| e.to_string())?,
    ];
    let mut out = SidText::EMPTY;
    let (mut calls, mut bytes) = (0u64, 0usize);
    for _ in 0..reps {
        for s in &sids {
            bytes += std::hint::black_box(format_sid(std::hint::black_box(s), &mut out));
            calls += 1;
        }
    }
    println!("calls={calls} bytes={bytes}");
    Ok(())
}

/// `key=value` pairs of one stats line, keyed by workload.
fn read_stats(out: &Path) -> Result<BTreeMap<String, BTreeMap<String, f64>>, String> {
    let text =
        std::fs::read_to_string(out.join("stats.txt")).map_err(|e| format!("stats.txt: {e}"))?;
    let mut m = BTreeMap::new();
    for line in text.lines() {
        let mut it = line.split_whitespace();
        let Some(label) = it.next() else { continue };
        let kv = it
            .filter_map(|t| t.split_once('='))
            .filter_map(|(k, v)| Some((k.to_string(), v.parse::<f64>().ok()?)))
            .collect();
        m.insert(label.to_string(), kv);
    }
    Ok(m)
}

/// The number after `"key":` at or after `from` in a JSON text.
fn json_num(text: &str, key: &str, from: usize) -> Option<f64> {
    let pat = format!("\"{key}\":");
    let at = text.get(from..)?.find(&pat)? + from + pat.len();
    let rest = text.get(at..)?.trim_start();
    let end = rest
        .find(|c: char| !(c.is_ascii_digit() || matches!(c, '.' | '-' | 'e' | 'E' | '+')))
        .unwrap_or(rest.len());
    rest.get(..end)?.parse().ok()
}

/// Criterion's median for one benchmark, per element (ns) or as bytes/s.
struct Crit {
    median_ns: f64,
    elements: Option<f64>,
    bytes: Option<f64>,
}

fn crit(dir: &Path, group: &str, func: &str) -> Option<Crit> {
    let base = dir.join(group.replace('/', "_")).join(func).join("new");
    let est = std::fs::read_to_string(base.join("estimates.json")).ok()?;
    let bench = std::fs::read_to_string(base.join("benchmark.json")).ok()?;
    let med_at = est.find("\"median\"")?;
    Some(Crit {
        median_ns: json_num(&est, "point_estimate", med_at)?,
        elements: json_num(&bench, "Elements", 0),
        bytes: json_num(&bench, "Bytes", 0),
    })
}

fn per_elem(c: &Option<Crit>) -> Option<f64> {
    c.as_ref().and_then(|c| Some(c.median_ns / c.elements?))
}

fn fmt_ns(v: Option<f64>) -> String {
    match v {
        None => "—".into(),
        Some(v) if v >= 1e6 => format!("{:.2} ms", v / 1e6),
        Some(v) if v >= 1e4 => format!("{:.1} µs", v / 1e3),
        Some(v) if v >= 1e3 => format!("{:.2} µs", v / 1e3),
        Some(v) => format!("{v:.0} ns"),
    }
}

/// Instructions per call from a callgrind output file and the call count.
fn callgrind_per_call(out: &Path, label: &str) -> Option<(f64, f64)> {
    let cg = std::fs::read_to_string(out.join(format!("cg-{label}.out"))).ok()?;
    let calls_txt = std::fs::read_to_string(out.join(format!("cg-{label}.calls"))).ok()?;
    let calls: f64 = calls_txt
        .split_whitespace()
        .find_map(|t| t.strip_prefix("calls="))?
        .parse()
        .ok()?;
    let total: f64 = cg
        .lines()
        .find_map(|l| {
            l.strip_prefix("totals:")
                .or_else(|| l.strip_prefix("summary:"))
        })?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    Some((total / calls, calls))
}

fn yes(ok: bool) -> &'static str {
    if ok {
        "**met**"
    } else {
        "**missed**"
    }
}

fn render(out: &Path, crit_dir: &Path, doc: &Path) -> Res {
    let stats = read_stats(out)?;
    let labels = [
        "sigma",
        "mthcht",
        "synth-10",
        "synth-100",
        "synth-1000",
        "synth-10000",
        "synth-10000-noregex",
        "synth-10000-asciidigits",
    ];
    let st = |l: &str, k: &str| stats.get(l).and_then(|m| m.get(k)).copied();
    let mut t = String::new();
    let date = std::process::Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_default();
    let _ = writeln!(t, "Generated by `scripts/bench.sh` on {date}; {cpu}, {} CPUs; load average at render time: {}.\n", std::thread::available_parallelism().map_or(0, |n| n.get()), load.split_whitespace().take(3).collect::<Vec<_>>().join(" "));

    let _ = writeln!(
        t,
        "### Matching: time per event (criterion median ÷ batch size)\n"
    );
    let _ = writeln!(t, "Same rules, same names (the ~10k corpus-derived events; slow engines run an evenly spaced sample). Ours: `evaluate` on the validated view (format 2: DFAs and automata read in place, nothing loaded), UTF-16 names. \"vs RegexSet\" is ours ÷ RegexSet (below 1.0: we are faster). \"per-name median / p99\" is the distribution over names of our matcher's time for one name (`pipe-bench stats`).\n");
    let _ = writeln!(t, "| workload | rules | ours | RegexSet | vs RegexSet | naive loop | sigma-rust | ours: per-name median / p99 | matches (10k events) |");
    let _ = writeln!(t, "|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for l in labels {
        let g = format!("match/{l}");
        let _ = writeln!(
            t,
            "| {l} | {} | {} | {} | {} | {} | {} | {} / {} | {} |",
            st(l, "rules").map_or("—".into(), |v| format!("{v:.0}")),
            fmt_ns(per_elem(&crit(crit_dir, &g, "ours"))),
            fmt_ns(per_elem(&crit(crit_dir, &g, "regexset"))),
            per_elem(&crit(crit_dir, &g, "ours"))
                .zip(per_elem(&crit(crit_dir, &g, "regexset")))
                .map_or("—".into(), |(a, b)| format!("{:.2}×", a / b)),
            fmt_ns(per_elem(&crit(crit_dir, &g, "naive"))),
            if l == "sigma" {
                fmt_ns(per_elem(&crit(crit_dir, &g, "sigma-rust")))
            } else {
                "n/a".into()
            },
            fmt_ns(st(l, "lat_median_ns")),
            fmt_ns(st(l, "lat_p99_ns")),
            st(l, "matches").map_or("—".into(), |v| format!("{v:.0}")),
        );
    }
    if let Some(m) = stats.get("names") {
        let g = |k: &str| m.get(k).copied().unwrap_or(f64::NAN);
        let _ = writeln!(t, "\nEvents: {:.0} names ({:.0} generated from suspicious patterns), {:.1} UTF-16 units per name on average; {:.0} carry an image path ({:.1} units on average over all events).", g("count"), g("malicious"), g("mean_name_units"), g("with_image"), g("mean_image_units"));
    }
    if let Ok(a) = std::fs::read_to_string(out.join("sigma-rust-agreement.txt")) {
        let v: Vec<&str> = a.split_whitespace().collect();
        if let [theirs, ours, n] = v.as_slice() {
            let _ = writeln!(t, "\nsigma-rust on its batch of {n} Sigma events: {theirs} (event, rule) matches; ours: {ours}.");
        }
    }

    let _ = writeln!(
        t,
        "\n### Literal-only subset: ours vs aho-corasick (time per event, all 10k events)\n"
    );
    let _ = writeln!(
        t,
        "| workload | ours | aho-corasick | ours ÷ aho-corasick |"
    );
    let _ = writeln!(t, "|---|---:|---:|---:|");
    for l in labels {
        let g = format!("literal/{l}");
        let (a, b) = (
            crit(crit_dir, &g, "ours"),
            crit(crit_dir, &g, "aho-corasick"),
        );
        if a.is_none() && b.is_none() {
            continue;
        }
        let _ = writeln!(
            t,
            "| {l} | {} | {} | {} |",
            fmt_ns(per_elem(&a)),
            fmt_ns(per_elem(&b)),
            per_elem(&a)
                .zip(per_elem(&b))
                .map_or("—".into(), |(a, b)| format!("{:.2}×", a / b))
        );
    }

    let _ = writeln!(t, "\n### Validation of the 10k-rule file\n");
    let gbps = |c: &Option<Crit>| c.as_ref().and_then(|c| Some(c.bytes? / c.median_ns));
    let parse_c = crit(crit_dir, "validate/synth-10000", "parse");
    let memcpy_c = crit(crit_dir, "validate/synth-10000", "memcpy");
    // Instructions per byte of validation: callgrind on `validate_file`
    // (`pipe-bench callgrind-parse`), per call, over the file's length.
    let parse_ipb = callgrind_per_call(out, "parse").and_then(|(per, _)| {
        let calls = std::fs::read_to_string(out.join("cg-parse.calls")).ok()?;
        let bytes: f64 = calls
            .split_whitespace()
            .find_map(|t| t.strip_prefix("bytes="))?
            .parse()
            .ok()?;
        Some((per, per / bytes))
    });
    let _ = writeln!(
        t,
        "| | bytes | median | GB/s | instructions per byte (callgrind) |"
    );
    let _ = writeln!(t, "|---|---:|---:|---:|---:|");
    for (name, c, ipb) in [
        ("`parse` (full validation)", &parse_c, parse_ipb),
        ("`memcpy` of the same bytes", &memcpy_c, None),
    ] {
        let _ = writeln!(
            t,
            "| {name} | {} | {} | {} | {} |",
            c.as_ref()
                .and_then(|c| c.bytes)
                .map_or("—".into(), |b| format!("{b:.0}")),
            fmt_ns(c.as_ref().map(|c| c.median_ns)),
            gbps(c).map_or("—".into(), |g| format!("{g:.2}")),
            ipb.map_or("—".into(), |(_, i)| format!("{i:.2}")),
        );
    }
    if let Some((per, ipb)) = parse_ipb {
        let _ = writeln!(t, "\n`parse` executes **{:.2} M instructions** per validation of this file ({ipb:.2} per byte; `pipe-bench callgrind-parse`, callgrind on the `validate_file` wrapper).", per / 1e6);
    }

    let _ = writeln!(t, "\n### Instructions per decision (callgrind, `evaluate` only, averaged over all 10k events)\n");
    let _ = writeln!(
        t,
        "| workload | instructions per `evaluate` | calls counted |"
    );
    let _ = writeln!(t, "|---|---:|---:|");
    let mut ins = BTreeMap::new();
    for l in labels {
        if let Some((per, calls)) = callgrind_per_call(out, l) {
            ins.insert(l, per);
            let _ = writeln!(t, "| {l} | {per:.0} | {calls:.0} |");
        }
    }

    if let Some((per, calls)) = callgrind_per_call(out, "dos") {
        let _ = writeln!(t, "\nBeside the matcher, the image-path part of the driver's decision path: the NT → DOS rewrite of the image (`sensor_core::dospath::to_dos`, what `drives::image_to_dos` runs before `evaluate`; `pipe-bench callgrind-dos`, drive table C:, D:, Z:) costs **{per:.0} instructions per event with an image** ({calls:.0} calls counted).");
    }

    let _ = writeln!(t, "\n### Compile time and file size\n");
    let _ = writeln!(t, "| workload | rules | atoms | DFAs | compile (median of 3) | file size | of which DFAs | prefilter states |");
    let _ = writeln!(t, "|---|---:|---:|---:|---:|---:|---:|---:|");
    for l in labels {
        let f = |k: &str| st(l, k).unwrap_or(f64::NAN);
        let _ = writeln!(
            t,
            "| {l} | {:.0} | {:.0} | {:.0} | {:.1} ms | {:.1} KiB | {:.1} KiB | {:.0} |",
            f("rules"),
            f("atoms"),
            f("dfas"),
            f("compile_ms"),
            f("file_bytes") / 1024.0,
            f("dfa_bytes") / 1024.0,
            f("prefilter_states")
        );
    }

    // Targets.
    let ours10 = per_elem(&crit(crit_dir, "match/synth-10", "ours"));
    let ours10k = per_elem(&crit(crit_dir, "match/synth-10000", "ours"));
    let med10k = st("synth-10000", "lat_median_ns");
    let parse_gbps = gbps(&parse_c);
    let ins10k = ins.get("synth-10000").copied();
    let compile10k = st("synth-10000", "compile_ms");
    let size10k = st("synth-10000", "file_bytes");
    let mut vs_re = Vec::new();
    for l in labels {
        let g = format!("match/{l}");
        if let (Some(a), Some(b)) = (
            per_elem(&crit(crit_dir, &g, "ours")),
            per_elem(&crit(crit_dir, &g, "regexset")),
        ) {
            vs_re.push((l, a, b));
        }
    }
    let _ = writeln!(t, "\n### Targets (issue 13)\n");
    let _ = writeln!(t, "| target | measured | met |");
    let _ = writeln!(t, "|---|---|---|");
    let opt = |v: Option<f64>, f: &dyn Fn(f64) -> String| v.map_or("—".to_string(), f);
    for (l, limit) in [
        ("sigma", 1500.0),
        ("synth-10", 1000.0),
        ("synth-10000", 3000.0),
    ] {
        let v = ins.get(l).copied();
        let _ = writeln!(
            t,
            "| instructions per decision ≤ {limit:.0} on {l} | {} | {} |",
            opt(v, &|v| format!("{v:.0}")),
            yes(v.is_some_and(|v| v <= limit))
        );
    }
    let ratio = ours10k.zip(ours10).map(|(a, b)| a / b);
    let med_ratio = med10k
        .zip(st("synth-10", "lat_median_ns"))
        .map(|(a, b)| a / b);
    let ins_ratio = ins10k.zip(ins.get("synth-10").copied()).map(|(a, b)| a / b);
    let _ = writeln!(
        t,
        "| 10 → 10k rules within 2× (instructions and per-name median) | instructions {} → {} = {}; per-name median {} → {} = {}; (mean per event {} → {} = {}) | {} |",
        opt(ins.get("synth-10").copied(), &|v| format!("{v:.0}")),
        opt(ins10k, &|v| format!("{v:.0}")),
        opt(ins_ratio, &|r| format!("{r:.1}×")),
        fmt_ns(st("synth-10", "lat_median_ns")),
        fmt_ns(med10k),
        opt(med_ratio, &|r| format!("{r:.1}×")),
        fmt_ns(ours10),
        fmt_ns(ours10k),
        opt(ratio, &|r| format!("{r:.1}×")),
        yes(ins_ratio.is_some_and(|r| r <= 2.0) && med_ratio.is_some_and(|r| r <= 2.0))
    );
    for (l, limit) in [("sigma", 0.8), ("synth-10", 1.0), ("synth-100", 1.0)] {
        let r = vs_re
            .iter()
            .find(|(x, _, _)| *x == l)
            .map(|(_, a, b)| a / b);
        let _ = writeln!(
            t,
            "| {l}: ≤ {limit:.1}× RegexSet's time per event | {} | {} |",
            opt(r, &|r| format!("{r:.2}×")),
            yes(r.is_some_and(|r| r <= limit))
        );
    }
    let mut lit = Vec::new();
    for l in labels {
        let g = format!("literal/{l}");
        if let (Some(a), Some(b)) = (
            per_elem(&crit(crit_dir, &g, "ours")),
            per_elem(&crit(crit_dir, &g, "aho-corasick")),
        ) {
            lit.push((l, a / b));
        }
    }
    let _ = writeln!(
        t,
        "| literal-only subsets ≤ 1.0× aho-corasick | {} | {} |",
        lit.iter()
            .map(|(l, r)| format!("{l} {r:.2}×"))
            .collect::<Vec<_>>()
            .join(", "),
        yes(!lit.is_empty() && lit.iter().all(|(_, r)| *r <= 1.0))
    );
    let _ = writeln!(
        t,
        "| validation ≥ 1 GB/s | {} GB/s (memcpy {} GB/s) | {} |",
        opt(parse_gbps, &|g| format!("{g:.2}")),
        opt(gbps(&memcpy_c), &|g| format!("{g:.2}")),
        yes(parse_gbps.is_some_and(|g| g >= 1.0))
    );
    let _ = writeln!(
        t,
        "| compile 10k rules ≤ 5 s | {} | {} |",
        opt(compile10k, &|v| format!("{:.2} s", v / 1e3)),
        yes(compile10k.is_some_and(|v| v <= 5000.0))
    );
    let _ = writeln!(t, "| content memory for 10k rules ≤ 2 MiB | {} (format 2: the view reads the file in place, DFAs included, nothing loaded; plus a {}-byte `Scratch`) | {} |", opt(size10k, &|v| format!("{:.2} MiB file", v / 1048576.0)), std::mem::size_of::<Scratch>(), yes(size10k.is_some_and(|v| v <= 2.0 * 1048576.0)));

    let start = "<!-- results:start -->";
    let end = "<!-- results:end -->";
    let old = std::fs::read_to_string(doc)
        .unwrap_or_else(|_| format!("# Performance\n\n{start}\n{end}\n"));
    let (Some(a), Some(b)) = (old.find(start), old.find(end)) else {
        return Err(format!("{}: no {start} / {end} markers", doc.display()));
    };
    let new = format!("{}{start}\n{t}\n{}", &old[..a], &old[b..]);
    std::fs::write(doc, new).map_err(|e| e.to_string())?;
    eprintln!("wrote {}", doc.display());
    Ok(())
}
