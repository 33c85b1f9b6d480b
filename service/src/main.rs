//! `pipesensor-service.exe`: the pipe-sensor event service.
//!
//! Reads the driver's events as they arrive (the EVENTS_V2 IOCTL waits in
//! the driver; a version-1 driver is polled) and writes each to:
//! * JSON lines in the Sysmon 17/18 shape, rotated by size
//!   (`event_sink::record`, `event_sink::rotate`);
//! * the Application Event Log, source `PipeSensor`, with message
//!   resources built from the event-id table (`build.rs`);
//! * ETW, TraceLogging provider `PipeSensor` ([`etw`]).
//!
//! Health events (service start/stop, driver (un)available, content
//! adopted/rejected/quarantined, rollout verdicts, lost events) go to the
//! same sinks. Install: docs/install.md ("The event service").
//!
//! Everything but the Windows calls in `win` is plain Rust tested on Linux.

mod config;
mod etw;
#[cfg(test)]
mod msgtable;
#[cfg(windows)]
mod win;

use clap::Parser;
use config::{Cli, Cmd, Options};
use event_sink::health::Health;
use event_sink::pipeline::{self, JsonFile, Pipeline, Sink};
use event_sink::rotate::Rotating;
use event_sink::sid::{Resolve, SidCache};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Builds the sinks the options ask for.
fn sinks(o: &Options) -> Result<Vec<Box<dyn Sink>>, String> {
    let json = Rotating::open(&o.json, o.max_bytes, o.keep)
        .map_err(|e| format!("{}: {e}", o.json.display()))?;
    let mut s: Vec<Box<dyn Sink>> = vec![Box::new(JsonFile(json))];
    if !o.no_eventlog {
        #[cfg(windows)]
        s.push(Box::new(win::EventLog::open()?));
    }
    if !o.no_etw {
        s.push(Box::new(etw::Etw::new()));
    }
    Ok(s)
}

/// Runs the read loop until `stop`; returns (events written, events lost).
pub fn serve<R: Resolve>(
    o: &Options,
    resolver: R,
    driver: &mut impl pipeline::Driver,
    stop: &AtomicBool,
    reason: &dyn Fn() -> String,
) -> Result<(u64, u64), String> {
    let users = SidCache::new(resolver, 4096, Duration::from_secs(300));
    let mut p = Pipeline::new(sinks(o)?, users);
    p.health(&Health::ServiceStarted {
        version: env!("CARGO_PKG_VERSION").to_string(),
        json_path: o.json.display().to_string(),
    });
    let done = || stop.load(Ordering::Acquire);
    let sleep = |d: Duration| {
        let step = Duration::from_millis(50);
        let mut left = d;
        while !done() && !left.is_zero() {
            std::thread::sleep(step.min(left));
            left = left.saturating_sub(step);
        }
    };
    pipeline::run(driver, &mut p, &o.loop_config(), &done, &sleep);
    p.health(&Health::ServiceStopped {
        reason: reason(),
        written: p.written,
        lost: p.lost,
    });
    Ok((p.written, p.lost))
}

fn main() {
    let cli = Cli::parse();
    let code = match cli.cmd {
        Cmd::Messages => {
            print!("{}", event_sink::ids::mc_file());
            0
        }
        Cmd::Provider => {
            println!("name={}", config::SOURCE_NAME);
            println!("guid={}", etw::provider_guid());
            0
        }
        other => platform(other),
    };
    std::process::exit(code);
}

#[cfg(windows)]
fn platform(cmd: Cmd) -> i32 {
    win::main(cmd)
}

#[cfg(not(windows))]
fn platform(_cmd: Cmd) -> i32 {
    eprintln!("pipesensor-service: this command needs Windows");
    2
}

#[cfg(test)]
mod tests {
    use super::*;
    use event_sink::pipeline::{Batch, Driver, DriverError};
    use event_sink::sid::NoLookup;
    use sensor_core::event::PipeEvent;
    use sensor_core::stream::BatchInfo;

    /// A driver that hands out one batch, then asks the service to stop.
    struct OneBatch<'a>(&'a AtomicBool, bool);

    impl Driver for OneBatch<'_> {
        fn device(&self) -> String {
            "test".into()
        }
        fn connect(&mut self) -> Result<(), DriverError> {
            Ok(())
        }
        fn read(&mut self, _max: u32, _wait: Duration) -> Result<Batch, DriverError> {
            if self.1 {
                self.0.store(true, Ordering::Release);
                return Ok(Batch::default());
            }
            self.1 = true;
            let mut e = PipeEvent::EMPTY;
            e.id = 1;
            e.kind = 2;
            e.decision = 1;
            e.set_name(&"\\x".encode_utf16().collect::<Vec<_>>());
            Ok(Batch {
                events: vec![e],
                info: BatchInfo {
                    count: 1,
                    lost: 0,
                    pushed: 1,
                },
            })
        }
        fn snapshot(&mut self) -> Result<event_sink::health::Snapshot, DriverError> {
            Err(DriverError::Failed("no status".into()))
        }
        fn disconnect(&mut self) {}
    }

    #[test]
    fn serve_writes_start_events_and_stop_to_the_json_file() {
        let dir = std::env::temp_dir().join(format!("svc-serve-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let o = Options {
            json: dir.join("ev.jsonl"),
            max_bytes: 1 << 20,
            keep: 2,
            no_eventlog: true,
            no_etw: false,
            batch: 8,
            wait_ms: 10,
            status_secs: 60,
        };
        let stop = AtomicBool::new(false);
        let r = serve(&o, NoLookup, &mut OneBatch(&stop, false), &stop, &|| {
            "stop".into()
        });
        assert_eq!(r, Ok((1, 0)));
        let text = std::fs::read_to_string(&o.json).unwrap();
        let ids: Vec<u64> = text.lines().map(serde_json_id).collect();
        assert_eq!(ids, [100, 102, 18, 101]);
        assert!(text
            .lines()
            .last()
            .unwrap()
            .contains(r#""Reason":"stop","EventsWritten":1"#));
    }

    fn serde_json_id(line: &str) -> u64 {
        let rest = line.strip_prefix("{\"EventID\":").unwrap();
        rest[..rest.find(',').unwrap()].parse().unwrap()
    }
}
