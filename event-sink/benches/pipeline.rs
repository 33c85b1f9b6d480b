//! The user-mode half of "callback to JSON line": events taken from a full
//! ring into an EVENTS_V2 batch, decoded, shaped as Sysmon 17/18 JSON and
//! appended to a size-rotated file, as the service does per batch.
//! `cargo bench -p event-sink --bench pipeline` (docs/performance.md,
//! "Event service").

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use event_sink::pipeline::{JsonFile, Pipeline};
use event_sink::rotate::Rotating;
use event_sink::sid::{NoLookup, SidCache};
use sensor_core::event::{PipeEvent, Sid};
use sensor_core::proto::FixedText;
use sensor_core::ring::EventRing;
use sensor_core::stream::{decode_batch, encode_batch, BATCH_MIN_OUT};
use std::time::Duration;

const RING: usize = 128;

fn fill(ring: &mut EventRing<RING, PipeEvent>, sid: Sid) {
    let name: Vec<u16> = r"\postex_1234".encode_utf16().collect();
    let image: Vec<u16> = r"C:\Users\bob\AppData\Local\Temp\beacon.exe"
        .encode_utf16()
        .collect();
    while ring.len() < RING {
        ring.push_with(|e| {
            e.time = 133_700_000_000_000_000;
            e.pid = 4242;
            e.kind = 1;
            e.decision = 1;
            e.action = 1;
            e.severity = 3;
            e.rule_id = 1001;
            e.sequence = 42;
            e.rule_name = FixedText::new("Cobalt Strike post-ex pipe");
            e.set_name(&name);
            e.set_image(Some(&image));
            e.set_sid(Some(sid), false);
            e.set_process(7, 133_600_000_000_000_000);
        });
    }
}

fn bench(c: &mut Criterion) {
    let mut sid = vec![1u8, 5, 0, 0, 0, 0, 0, 5];
    for x in [21u32, 1, 2, 3, 1001] {
        sid.extend_from_slice(&x.to_le_bytes());
    }
    let sid = Sid::from_bytes(&sid).unwrap();
    let dir = std::env::temp_dir().join(format!("event-sink-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let json = Rotating::open(&dir.join("pipe-events.jsonl"), 64 << 20, 2).unwrap();
    let mut p = Pipeline::new(
        vec![Box::new(JsonFile(json))],
        SidCache::new(NoLookup, 16, Duration::from_secs(60)),
    );
    let mut ring = Box::new(EventRing::<RING, PipeEvent>::new());
    let mut wire = vec![0u8; BATCH_MIN_OUT * 24];
    let mut g = c.benchmark_group("event service");
    g.throughput(Throughput::Elements(RING as u64));
    g.bench_function(
        "ring of 128 -> EVENTS_V2 batches -> JSON lines in a file",
        |b| {
            b.iter(|| {
                fill(&mut ring, sid);
                while !ring.is_empty() {
                    let (n, _) = encode_batch(&mut wire, 64, &mut ring).unwrap();
                    let mut got = Vec::with_capacity(64);
                    let info = decode_batch(&wire[..n], |e| got.push(e)).unwrap();
                    p.batch(&got, info);
                }
            })
        },
    );
    g.finish();
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, bench);
criterion_main!(benches);
