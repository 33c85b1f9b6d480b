//! Validation throughput of the 10k-rule channel file (`channel_parser::parse`,
//! the whole file: header, sections, records, strings, programs, prefilter
//! automata, DFAs) against `memcpy` of the same bytes.

use channel_parser::{parse, Capabilities};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use pipe_bench::engines::compile_aligned;
use pipe_bench::workloads::synthetic;
use std::hint::black_box;
use std::time::Duration;

fn bench_validate(c: &mut Criterion) {
    let bytes = compile_aligned(&synthetic(10_000));
    let src = bytes.as_slice();
    let mut dst = vec![0u8; src.len()];
    let mut g = c.benchmark_group("validate/synth-10000");
    g.throughput(Throughput::Bytes(src.len() as u64));
    g.bench_function("parse", |b| {
        b.iter(|| {
            parse(black_box(src), &Capabilities::SENSOR)
                .map(|f| f.rule_count())
                .unwrap_or(0)
        })
    });
    g.bench_function("memcpy", |b| {
        b.iter(|| {
            dst.copy_from_slice(black_box(src));
            black_box(&mut dst);
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(400))
        .measurement_time(Duration::from_millis(1_500))
        .sample_size(20)
        .without_plots();
    targets = bench_validate
}
criterion_main!(benches);
