//! Side by side, same rules, same names: our matcher (`evaluate_with` on
//! the validated view with the DFAs loaded once by `load_dfas`, UTF-16
//! names; `ours-unloaded`: plain `evaluate`, which re-runs `from_bytes` on
//! each regex candidate), `regex::RegexSet`, `aho-corasick` on the
//! literal-only subset, `sigma-rust` on the Sigma workload, and the naive
//! reference loop.
//!
//! Group `match/<workload>`: one iteration runs a batch of events through an
//! engine; criterion's throughput is events. An engine runs the whole 10k-name
//! set when that takes under ~40 ms, else an evenly spaced sample of it sized
//! to ~40 ms (at least 50 names; see `batch_for`), so that the slow engines
//! do not stretch the run. Before timing, each engine's match count on its
//! batch is checked against ours (correctness, not timing).
//!
//! Group `literal/<workload>`: the literal-only rules of the workload,
//! compiled on their own, ours versus aho-corasick.
//!
//! `scripts/bench.sh` runs this and renders `docs/performance.md`.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use pipe_bench::engines::{
    compile_aligned, naive_count, AcEngine, Ours, Prepared, RegexEngine, PID,
};
use pipe_bench::names::{events, sample};
use pipe_bench::{corpus, workloads};
use std::hint::black_box;
use std::time::{Duration, Instant};

/// About this much work per criterion iteration.
const ITER_BUDGET: Duration = Duration::from_millis(40);

/// How many of the 10k events one iteration of `run` should process: all of
/// them if that fits the budget, else an evenly spaced sample (>= 50).
fn batch_for(all: &Prepared, mut run: impl FnMut(&Prepared) -> u64) -> usize {
    let probe = Prepared::new(sample(&all.events, 50));
    let t = Instant::now();
    black_box(run(&probe));
    let per = t.elapsed().as_secs_f64() / 50.0;
    let n = (ITER_BUDGET.as_secs_f64() / per.max(1e-9)) as usize;
    n.clamp(50, all.events.len())
}

fn subset(all: &Prepared, n: usize) -> Prepared {
    if n >= all.events.len() {
        all.clone()
    } else {
        Prepared::new(sample(&all.events, n))
    }
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(400))
        .measurement_time(Duration::from_millis(1_500))
        .sample_size(10)
        .without_plots()
}

fn sigma_rust_rules() -> Vec<sigma_rust::Rule> {
    let mut files: Vec<_> =
        std::fs::read_dir(corpus("third_party/sigma/rules/windows/pipe_created"))
            .expect("third_party/sigma/rules/windows/pipe_created")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
    files.sort();
    files
        .iter()
        .map(|f| {
            let text = std::fs::read_to_string(f).expect("read rule");
            sigma_rust::rule_from_yaml(&text)
                .unwrap_or_else(|e| panic!("sigma-rust cannot read {}: {e}", f.display()))
        })
        .collect()
}

fn bench_matchers(c: &mut Criterion) {
    let all = Prepared::new(events());
    let n_all = all.events.len();
    for (label, set) in workloads::all().expect("workloads") {
        let bytes = compile_aligned(&set);
        let ours = Ours::new(&bytes);
        let mut scratch = channel_parser::Scratch::new();
        let mut g = c.benchmark_group(format!("match/{label}"));

        let n = batch_for(&all, |p| ours.count(p, &mut scratch));
        let batch = subset(&all, n);
        g.throughput(Throughput::Elements(n as u64));
        g.bench_function("ours", |b| {
            b.iter(|| ours.count(black_box(&batch), &mut scratch))
        });

        if ours.file.dfa_count() > 0 {
            let n = batch_for(&all, |p| ours.count_unloaded(p, &mut scratch));
            let batch = subset(&all, n);
            assert_eq!(
                ours.count_unloaded(&batch, &mut scratch),
                ours.count(&batch, &mut scratch)
            );
            g.throughput(Throughput::Elements(n as u64));
            g.bench_function("ours-unloaded", |b| {
                b.iter(|| ours.count_unloaded(black_box(&batch), &mut scratch))
            });
        }

        let re = RegexEngine::new(&set).expect("RegexSet builds");
        let n = batch_for(&all, |p| re.count(p));
        let batch = subset(&all, n);
        let expect = ours.count(&batch, &mut scratch);
        assert_eq!(re.count(&batch), expect, "{label}: RegexSet disagrees");
        g.throughput(Throughput::Elements(n as u64));
        g.bench_function("regexset", |b| b.iter(|| re.count(black_box(&batch))));
        drop(re);

        let n = batch_for(&all, |p| naive_count(&set, p));
        let batch = subset(&all, n);
        let expect = ours.count(&batch, &mut scratch);
        assert_eq!(
            naive_count(&set, &batch),
            expect,
            "{label}: naive disagrees"
        );
        g.throughput(Throughput::Elements(n as u64));
        g.bench_function("naive", |b| b.iter(|| naive_count(&set, black_box(&batch))));

        if label == "sigma" {
            let rules = sigma_rust_rules();
            let to_events = |p: &Prepared| -> Vec<sigma_rust::Event> {
                p.events
                    .iter()
                    .map(|e| {
                        let mut ev = sigma_rust::Event::new();
                        ev.insert("PipeName", e.name.as_str());
                        // An unknown image is a null field (Sigma `Image: null`
                        // matches it, as in our importer); sigma-rust treats an
                        // absent key differently, so it is inserted as null.
                        match &e.image {
                            Some(i) => ev.insert("Image", i.as_str()),
                            None => ev.insert("Image", None::<i32>),
                        }
                        ev.insert("ProcessId", PID as i64);
                        ev
                    })
                    .collect()
            };
            let count = |evs: &[sigma_rust::Event]| -> u64 {
                evs.iter()
                    .map(|ev| rules.iter().filter(|r| r.is_match(ev)).count() as u64)
                    .sum()
            };
            let n = batch_for(&all, |p| count(&to_events(p)));
            let sb = subset(&all, n);
            let evs = to_events(&sb);
            let theirs = count(&evs);
            let ours = ours.count(&sb, &mut scratch);
            // Reported by the render step; a difference is a semantic gap,
            // not a benchmark failure.
            eprintln!(
                "sigma-rust agreement: sigma-rust {theirs} matches, ours {ours}, on {n} events"
            );
            std::fs::write(
                std::env::var_os("PIPE_BENCH_OUT")
                    .map_or_else(std::env::temp_dir, std::path::PathBuf::from)
                    .join("sigma-rust-agreement.txt"),
                format!("{theirs} {ours} {n}\n"),
            )
            .ok();
            g.throughput(Throughput::Elements(n as u64));
            g.bench_function("sigma-rust", |b| b.iter(|| count(black_box(&evs))));
        }
        g.finish();

        let lit = workloads::literal_subset(&set);
        if lit.rules.is_empty() {
            continue;
        }
        let lbytes = compile_aligned(&lit);
        let lours = Ours::new(&lbytes);
        let ac = AcEngine::new(&lit);
        let mut seen = Vec::new();
        let expect = lours.count(&all, &mut scratch);
        assert_eq!(
            ac.count(&all, &mut seen),
            expect,
            "{label}: aho-corasick disagrees"
        );
        let mut g = c.benchmark_group(format!("literal/{label}"));
        g.throughput(Throughput::Elements(n_all as u64));
        g.bench_function("ours", |b| {
            b.iter(|| lours.count(black_box(&all), &mut scratch))
        });
        g.bench_function("aho-corasick", |b| {
            b.iter(|| ac.count(black_box(&all), &mut seen))
        });
        g.finish();
    }
}

criterion_group! {
    name = benches;
    config = config();
    targets = bench_matchers
}
criterion_main!(benches);
