//! From driver batches to sinks: the part of the service that is the same
//! on every platform (the Windows calls are behind [`Driver`], [`Sink`] and
//! [`crate::sid::Resolve`]).
//!
//! [`run`] keeps a connection to the driver, reads batches (waiting in the
//! driver when the ring is empty), writes every event to every sink, turns
//! STATUS/ROLLOUT changes into health events, reconnects when the driver
//! goes away (stopped, restarted, not installed yet) and counts what the
//! driver lost. It returns when `stop` says so, after writing what it has
//! read; events still in the driver's ring stay there for the next reader.

use crate::health::{self, Health, Snapshot};
use crate::record::{pipe_event, Out};
use crate::rotate::Rotating;
use crate::sid::{Resolve, SidCache};
use sensor_core::event::PipeEvent;
use sensor_core::stream::BatchInfo;
use std::time::{Duration, Instant};

/// Where events go.
pub trait Sink {
    /// Writes one event.
    ///
    /// # Errors
    /// The sink failed; the pipeline counts it and goes on with the others.
    fn write(&mut self, out: &Out) -> std::io::Result<()>;
}

/// JSON lines in a size-rotated file.
#[derive(Debug)]
pub struct JsonFile(pub Rotating);

impl Sink for JsonFile {
    fn write(&mut self, out: &Out) -> std::io::Result<()> {
        self.0.write_line(&out.json_line())
    }
}

/// JSON lines to a stream (`pipectl driver events --follow --json`: stdout).
#[derive(Debug)]
pub struct JsonLines<W>(pub W);

impl<W: std::io::Write> Sink for JsonLines<W> {
    fn write(&mut self, out: &Out) -> std::io::Result<()> {
        let mut line = out.json_line();
        line.push('\n');
        self.0.write_all(line.as_bytes())?;
        self.0.flush()
    }
}

/// Collects events in memory (tests).
#[derive(Debug, Default, Clone)]
pub struct Memory(pub std::sync::Arc<std::sync::Mutex<Vec<Out>>>);

impl Sink for Memory {
    fn write(&mut self, out: &Out) -> std::io::Result<()> {
        self.0
            .lock()
            .map_err(|_| std::io::Error::other("poisoned"))?
            .push(out.clone());
        Ok(())
    }
}

/// The sinks, the user cache and the bookkeeping of one reader.
pub struct Pipeline<R> {
    sinks: Vec<Box<dyn Sink>>,
    users: SidCache<R>,
    snapshot: Option<Snapshot>,
    /// (lost, pushed) of the last batch of this driver instance.
    cursor: Option<(u64, u64)>,
    clock: fn() -> u64,
    /// Pipe events written.
    pub written: u64,
    /// Events the driver reported lost while this pipeline read.
    pub lost: u64,
    /// Writes a sink refused.
    pub sink_errors: u64,
}

impl<R> std::fmt::Debug for Pipeline<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipeline")
            .field("sinks", &self.sinks.len())
            .field("written", &self.written)
            .field("lost", &self.lost)
            .field("sink_errors", &self.sink_errors)
            .finish_non_exhaustive()
    }
}

impl<R: Resolve> Pipeline<R> {
    /// A pipeline writing to `sinks`, resolving users through `users`.
    pub fn new(sinks: Vec<Box<dyn Sink>>, users: SidCache<R>) -> Self {
        Pipeline {
            sinks,
            users,
            snapshot: None,
            cursor: None,
            clock: crate::utc::now_filetime,
            written: 0,
            lost: 0,
            sink_errors: 0,
        }
    }

    /// Uses `clock` (FILETIME) for health events' times (tests).
    pub fn with_clock(mut self, clock: fn() -> u64) -> Self {
        self.clock = clock;
        self
    }

    /// Writes `out` to every sink.
    pub fn emit(&mut self, out: &Out) {
        for s in &mut self.sinks {
            if s.write(out).is_err() {
                self.sink_errors += 1;
            }
        }
    }

    /// Writes a health event.
    pub fn health(&mut self, h: &Health) {
        let out = h.out((self.clock)());
        self.emit(&out);
    }

    /// Writes a batch: first what the driver lost before it (if anything
    /// new), then the events in order.
    pub fn batch(&mut self, events: &[PipeEvent], info: BatchInfo) {
        if events.is_empty() && info == BatchInfo::default() {
            // A wait that ended without an answer: no counters to compare.
            return;
        }
        let base = match self.cursor {
            // A new driver instance counts from 0 again.
            Some((lost, pushed)) if info.pushed >= pushed => lost,
            _ => 0,
        };
        if info.lost > base {
            let lost = info.lost - base;
            self.lost += lost;
            self.health(&Health::EventsLost {
                lost,
                total_lost: info.lost,
                in_driver: info.pushed,
            });
        }
        self.cursor = Some((info.lost.max(base), info.pushed));
        let now = Instant::now();
        for e in events {
            let user = (!e.sid.is_none()).then(|| self.users.user(&e.sid, now));
            let out = pipe_event(e, user.as_deref());
            self.emit(&out);
            self.written += 1;
        }
    }

    /// Compares a new driver snapshot with the last one and writes the
    /// health events between them.
    pub fn snapshot(&mut self, s: Snapshot) {
        for h in health::diff(self.snapshot.as_ref(), &s) {
            self.health(&h);
        }
        self.snapshot = Some(s);
    }

    /// The driver went away: the next snapshot is a first one again.
    pub fn disconnected(&mut self) {
        self.snapshot = None;
    }
}

/// A batch read from the driver.
#[derive(Debug, Clone, Default)]
pub struct Batch {
    /// The events, oldest first.
    pub events: Vec<PipeEvent>,
    /// Counters.
    pub info: BatchInfo,
}

/// Why a driver call failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DriverError {
    /// The device is gone (driver stopped or not installed): reconnect.
    Gone(String),
    /// The call failed; the connection stays.
    Failed(String),
}

impl std::fmt::Display for DriverError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DriverError::Gone(e) | DriverError::Failed(e) => f.write_str(e),
        }
    }
}

/// The driver, as the loop sees it.
pub trait Driver {
    /// The device path, for health events.
    fn device(&self) -> String;
    /// Opens the control device.
    ///
    /// # Errors
    /// It cannot be opened.
    fn connect(&mut self) -> Result<(), DriverError>;
    /// Reads up to `max` events, waiting up to `wait` when there are none
    /// (the wait ends as soon as one arrives).
    ///
    /// # Errors
    /// The device failed or went away.
    fn read(&mut self, max: u32, wait: Duration) -> Result<Batch, DriverError>;
    /// STATUS and ROLLOUT.
    ///
    /// # Errors
    /// The device failed or went away.
    fn snapshot(&mut self) -> Result<Snapshot, DriverError>;
    /// Closes the device (nothing stays pending in the driver).
    fn disconnect(&mut self);
}

/// Timing of [`run`].
#[derive(Debug, Clone, Copy)]
pub struct LoopConfig {
    /// Events per read.
    pub max: u32,
    /// Longest wait in one read (the loop checks `stop` between reads).
    pub wait: Duration,
    /// How often STATUS/ROLLOUT are compared.
    pub status_every: Duration,
    /// Pause between attempts to reach an absent driver.
    pub reconnect_every: Duration,
}

impl Default for LoopConfig {
    fn default() -> Self {
        LoopConfig {
            max: 64,
            wait: Duration::from_millis(500),
            status_every: Duration::from_secs(5),
            reconnect_every: Duration::from_secs(1),
        }
    }
}

/// Reads until `stop()` is true (see the module docs). `sleep` pauses
/// between reconnect attempts (the service waits on its stop event there).
pub fn run<D: Driver, R: Resolve>(
    d: &mut D,
    p: &mut Pipeline<R>,
    cfg: &LoopConfig,
    stop: &dyn Fn() -> bool,
    sleep: &dyn Fn(Duration),
) {
    let mut connected = false;
    let mut said_unavailable = false;
    let mut last_status: Option<Instant> = None;
    while !stop() {
        if !connected {
            match d.connect() {
                Ok(()) => {
                    connected = true;
                    said_unavailable = false;
                    p.disconnected();
                    last_status = None;
                    let in_driver = match d.snapshot() {
                        Ok(s) => {
                            let n = s.status.counters.events_total;
                            p.snapshot(s);
                            last_status = Some(Instant::now());
                            n
                        }
                        Err(_) => 0,
                    };
                    p.health(&Health::DriverConnected {
                        device: d.device(),
                        in_driver,
                    });
                }
                Err(e) => {
                    if !said_unavailable {
                        p.health(&Health::DriverUnavailable {
                            device: d.device(),
                            error: e.to_string(),
                        });
                        said_unavailable = true;
                    }
                    sleep(cfg.reconnect_every);
                    continue;
                }
            }
        }
        match d.read(cfg.max, cfg.wait) {
            Ok(b) => p.batch(&b.events, b.info),
            Err(DriverError::Gone(e)) => {
                d.disconnect();
                connected = false;
                p.health(&Health::DriverUnavailable {
                    device: d.device(),
                    error: e,
                });
                said_unavailable = true;
                continue;
            }
            Err(DriverError::Failed(_)) => sleep(cfg.reconnect_every),
        }
        if last_status.is_none_or(|t| t.elapsed() >= cfg.status_every) {
            match d.snapshot() {
                Ok(s) => p.snapshot(s),
                Err(DriverError::Gone(_)) => {}
                Err(DriverError::Failed(_)) => {}
            }
            last_status = Some(Instant::now());
        }
    }
    if connected {
        d.disconnect();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sid::NoLookup;
    use sensor_core::event::PipeEvent;
    use sensor_core::proto::{Counters, LoadFailure, Status};
    use std::cell::Cell;
    use std::collections::VecDeque;

    fn ev(id: u64) -> PipeEvent {
        let mut e = PipeEvent::EMPTY;
        e.id = id;
        e.kind = 1;
        e.decision = 1;
        e.pid = id as u32;
        e.set_name(&"\\p".encode_utf16().collect::<Vec<_>>());
        e
    }

    fn status(seq: u64) -> Status {
        Status {
            mode: sensor_core::decision::Mode::Monitor,
            flags: 0,
            active: sensor_core::proto::ContentInfo {
                sequence: seq,
                ..sensor_core::proto::ContentInfo::NONE
            },
            lkg: sensor_core::proto::ContentInfo::NONE,
            quarantined: [0; 4],
            pending: 0,
            start_count: 0,
            max_failed: 3,
            proven: 0,
            counters: Counters::default(),
            last_error: LoadFailure::none(),
        }
    }

    /// A scripted driver: each step is what the next call returns.
    #[derive(Default)]
    struct Script {
        connects: VecDeque<Result<(), DriverError>>,
        reads: VecDeque<Result<Batch, DriverError>>,
        seq: u64,
        disconnects: u32,
    }

    impl Driver for Script {
        fn device(&self) -> String {
            r"\\.\PipeSensor".into()
        }
        fn connect(&mut self) -> Result<(), DriverError> {
            self.connects.pop_front().unwrap_or(Ok(()))
        }
        fn read(&mut self, _max: u32, _wait: Duration) -> Result<Batch, DriverError> {
            self.reads
                .pop_front()
                .unwrap_or_else(|| Ok(Batch::default()))
        }
        fn snapshot(&mut self) -> Result<Snapshot, DriverError> {
            Ok(Snapshot {
                status: status(self.seq),
                rollout: None,
                enforcement: None,
            })
        }
        fn disconnect(&mut self) {
            self.disconnects += 1;
        }
    }

    fn batch(ids: std::ops::RangeInclusive<u64>, lost: u64) -> Result<Batch, DriverError> {
        let events: Vec<PipeEvent> = ids.clone().map(ev).collect();
        Ok(Batch {
            info: BatchInfo {
                count: events.len() as u32,
                lost,
                pushed: *ids.end(),
            },
            events,
        })
    }

    fn names(mem: &Memory) -> Vec<String> {
        mem.0
            .lock()
            .unwrap()
            .iter()
            .map(|o| match o.get("RecordId") {
                Some(crate::record::Value::Num(n)) => format!("{}#{n}", o.def.id),
                _ => o.def.name.to_string(),
            })
            .collect()
    }

    fn run_script(s: &mut Script, rounds: u32) -> (Memory, Pipeline<NoLookup>) {
        let mem = Memory::default();
        let mut p = Pipeline::new(
            vec![Box::new(mem.clone())],
            SidCache::new(NoLookup, 16, Duration::from_secs(1)),
        )
        .with_clock(|| crate::utc::FILETIME_UNIX_EPOCH);
        let left = Cell::new(rounds);
        let stop = || {
            let n = left.get();
            left.set(n.saturating_sub(1));
            n == 0
        };
        let cfg = LoopConfig {
            status_every: Duration::from_secs(3600),
            ..LoopConfig::default()
        };
        run(s, &mut p, &cfg, &stop, &|_| {});
        (mem, p)
    }

    #[test]
    fn reconnects_counts_losses_and_survives_a_driver_restart() {
        let mut s = Script {
            seq: 4,
            ..Script::default()
        };
        s.connects
            .push_back(Err(DriverError::Gone("not found".into())));
        s.connects
            .push_back(Err(DriverError::Gone("not found".into())));
        s.reads.push_back(batch(1..=2, 0));
        s.reads.push_back(batch(6..=7, 3)); // 3 overwritten before this read
        s.reads
            .push_back(Err(DriverError::Gone("driver stopped".into())));
        // The driver restarted: ids and counters begin again.
        s.reads.push_back(batch(1..=1, 1));
        let (mem, p) = run_script(&mut s, 9);
        assert_eq!(
            names(&mem),
            [
                "DriverUnavailable", // said once for two failed attempts
                "ContentAdopted",
                "DriverConnected",
                "17#1",
                "17#2",
                "EventsLost",
                "17#6",
                "17#7",
                "DriverUnavailable",
                "ContentAdopted",
                "DriverConnected",
                "EventsLost",
                "17#1",
            ]
        );
        assert_eq!((p.written, p.lost, p.sink_errors), (5, 4, 0));
        assert_eq!(s.disconnects, 2, "closed when it went away and at the end");
        let lost: Vec<_> = mem
            .0
            .lock()
            .unwrap()
            .iter()
            .filter(|o| o.def.id == crate::ids::EVENTS_LOST.id)
            .map(|o| o.json_line())
            .collect();
        assert!(
            lost[0].contains(r#""Lost":3,"TotalLost":3,"EventsInDriver":7"#),
            "{}",
            lost[0]
        );
        assert!(
            lost[1].contains(r#""Lost":1,"TotalLost":1,"EventsInDriver":1"#),
            "{}",
            lost[1]
        );
    }

    struct Failing;
    impl Sink for Failing {
        fn write(&mut self, _: &Out) -> std::io::Result<()> {
            Err(std::io::Error::other("disk full"))
        }
    }

    #[test]
    fn a_failing_sink_does_not_stop_the_others() {
        let mem = Memory::default();
        let mut p = Pipeline::new(
            vec![Box::new(Failing), Box::new(mem.clone())],
            SidCache::new(NoLookup, 16, Duration::from_secs(1)),
        );
        p.batch(
            &[ev(1), ev(2)],
            BatchInfo {
                count: 2,
                lost: 0,
                pushed: 2,
            },
        );
        assert_eq!((p.written, p.sink_errors), (2, 2));
        assert_eq!(mem.0.lock().unwrap().len(), 2);
        // Repeated counters do not report the same loss twice.
        p.batch(
            &[],
            BatchInfo {
                count: 0,
                lost: 0,
                pushed: 2,
            },
        );
        assert_eq!(mem.0.lock().unwrap().len(), 2);
    }
}
