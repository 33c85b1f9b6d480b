//! Issue 13, step 3 measurement: what regex-automata DFAs for the regex
//! atoms of each workload would cost in a channel file, per build choice.
//!
//!   cargo run --release -p pipe-bench --example dfa_sizes
//!
//! For every regex atom: regex-automata 0.4 dense DFA (unanchored, as
//! format 1 built it: Unicode, not minimized), then minimized, then its
//! sparse form; and the same with Unicode off where the pattern is ASCII
//! (a semantic change for `\d`, `\w`, `.`, negated classes and `(?i)` with
//! k/s: reported, not assumed safe). Sparse `from_bytes` (the checked
//! deserialization a parser would run once) is timed over all blobs.

use pipe_bench::workloads;
use pipe_compiler::model::{Cond, Matcher};
use regex_automata::dfa::{dense, sparse, Automaton, StartKind};
use regex_automata::util::syntax;
use regex_automata::{Anchored, Input};
use std::time::Instant;

fn regexes(c: &Cond, out: &mut Vec<(String, bool)>) {
    match c {
        Cond::Atom(a) => {
            if let Matcher::Regex {
                pattern,
                case_insensitive,
            } = &a.matcher
            {
                out.push((pattern.clone(), *case_insensitive));
            }
        }
        Cond::And(v) | Cond::Or(v) => v.iter().for_each(|c| regexes(c, out)),
        Cond::Not(c) => regexes(c, out),
        Cond::Const(_) => {}
    }
}

fn ascii_digits(c: &mut Cond) {
    match c {
        Cond::Atom(a) => {
            if let Matcher::Regex { pattern, .. } = &mut a.matcher {
                *pattern = pattern.replace(r"\d", "[0-9]");
            }
        }
        Cond::And(v) | Cond::Or(v) => v.iter_mut().for_each(ascii_digits),
        Cond::Not(c) => ascii_digits(c),
        Cond::Const(_) => {}
    }
}

fn build(p: &str, ci: bool, unicode: bool, minimize: bool) -> Option<dense::DFA<Vec<u32>>> {
    dense::Builder::new()
        .syntax(
            syntax::Config::new()
                .case_insensitive(ci)
                .unicode(unicode)
                .utf8(unicode),
        )
        .configure(
            dense::Config::new()
                .start_kind(StartKind::Unanchored)
                .minimize(minimize)
                .dfa_size_limit(Some(64 << 20)),
        )
        .build(p)
        .ok()
}

#[derive(Default)]
struct Totals {
    dense: usize,
    dense_min: usize,
    sparse_min: usize,
    largest_sparse: usize,
}

fn main() {
    let Ok(mut all) = workloads::all() else {
        eprintln!("workloads failed");
        return;
    };
    // As pipe-bench's synth-10000-asciidigits: `[0-9]` for `\d`.
    let mut ascii = workloads::synthetic(10_000);
    for r in &mut ascii.rules {
        ascii_digits(&mut r.condition);
    }
    all.push(("synth-10000-asciidigits".into(), ascii));
    println!("| workload | regexes | dense (format 1) | dense minimized | sparse minimized | largest sparse | ASCII, Unicode off: sparse | Unicode-off changes semantics | sparse from_bytes | from_bytes MB/s | is_match ns (ASCII name, 24 B) |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    for (label, set) in all {
        let mut res = Vec::new();
        for r in &set.rules {
            regexes(&r.condition, &mut res);
        }
        if res.is_empty() {
            continue;
        }
        let mut t = Totals::default();
        let (mut ascii_off, mut changed) = (0usize, 0usize);
        let mut blobs = Vec::new();
        for (p, ci) in &res {
            let Some(d) = build(p, *ci, true, false) else {
                continue;
            };
            t.dense += d.to_bytes_little_endian().0.len();
            let Some(m) = build(p, *ci, true, true) else {
                continue;
            };
            t.dense_min += m.to_bytes_little_endian().0.len();
            let Ok(s) = m.to_sparse() else { continue };
            let b = s.to_bytes_little_endian();
            t.sparse_min += b.len();
            t.largest_sparse = t.largest_sparse.max(b.len());
            let off = if p.is_ascii() {
                build(p, *ci, false, true).and_then(|o| o.to_sparse().ok())
            } else {
                None
            };
            match off {
                Some(o) => {
                    let ob = o.to_bytes_little_endian();
                    ascii_off += ob.len();
                    if ob.len() != b.len() {
                        changed += 1;
                    }
                }
                None => ascii_off += b.len(),
            }
            blobs.push(b);
        }
        let total: usize = blobs.iter().map(Vec::len).sum();
        let t0 = Instant::now();
        let mut ok = 0usize;
        for _ in 0..10 {
            for b in &blobs {
                if sparse::DFA::from_bytes(b).is_ok() {
                    ok += 1;
                }
            }
        }
        let secs = t0.elapsed().as_secs_f64() / 10.0;
        let dfas: Vec<_> = blobs
            .iter()
            .filter_map(|b| sparse::DFA::from_bytes(b).ok().map(|x| x.0))
            .collect();
        let name = b"\\some_pipe_name_12345678";
        let t1 = Instant::now();
        let mut hits = 0usize;
        let rounds = 200;
        for _ in 0..rounds {
            for d in &dfas {
                let input = Input::new(&name[..]).anchored(Anchored::No).earliest(true);
                if matches!(d.try_search_fwd(&input), Ok(Some(_))) {
                    hits += 1;
                }
            }
        }
        let ns = t1.elapsed().as_nanos() as f64 / (rounds * dfas.len().max(1)) as f64;
        println!(
            "| {label} | {} | {} | {} | {} | {} | {} | {} of {} | {:.1} ms | {:.0} | {:.0} |",
            res.len(),
            t.dense,
            t.dense_min,
            t.sparse_min,
            t.largest_sparse,
            ascii_off,
            changed,
            res.len(),
            secs * 1e3,
            total as f64 / secs / 1e6,
            ns
        );
        let _ = (ok, hits);
    }
}
