//! Command line of `pipesensor-service.exe` (the SCM passes the binPath's
//! arguments to the process): plain Rust, tested on any host.

use clap::{Args, Parser, Subcommand};
use event_sink::pipeline::LoopConfig;
use std::path::PathBuf;
use std::time::Duration;

/// Windows service name (`sc create PipeSensorEvents ...`).
#[cfg_attr(not(windows), allow(dead_code))]
pub const SERVICE_NAME: &str = "PipeSensorEvents";
/// Event Log source (in the Application log) and ETW provider name.
pub const SOURCE_NAME: &str = "PipeSensor";
/// Default JSON lines path.
pub const DEFAULT_JSON: &str = r"C:\ProgramData\PipeSensor\pipe-events.jsonl";

/// `pipesensor-service.exe`.
#[derive(Debug, Parser)]
#[command(
    name = "pipesensor-service",
    version,
    about = "Streams pipe-sensor events to JSON lines (Sysmon 17/18 shape), the Event Log and ETW"
)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub cmd: Cmd,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Run as the Windows service (what `sc create ... binPath=` starts).
    Service(Options),
    /// Run in the foreground until the process is ended (debugging; events
    /// read but not yet written when it is killed are lost: use the service).
    Run(Options),
    /// Register the `PipeSensor` Event Log source (this executable holds its
    /// messages) and exit. The service also does this when it starts.
    Register,
    /// Remove the `PipeSensor` Event Log source and exit.
    Unregister,
    /// Print the Event Log message file source (`.mc`) and exit.
    Messages,
    /// Print the ETW provider name and GUID and exit.
    Provider,
}

/// Where and how events are written.
#[derive(Debug, Clone, Args, PartialEq, Eq)]
pub struct Options {
    /// JSON lines file (must end in .jsonl; rotated files are <stem>.1.jsonl, ...).
    #[arg(long, default_value = DEFAULT_JSON)]
    pub json: PathBuf,
    /// Rotate the JSON file before it would grow past this many bytes.
    #[arg(long, default_value_t = 64 << 20, value_parser = clap::value_parser!(u64).range(4096..))]
    pub max_bytes: u64,
    /// Rotated JSON files kept.
    #[arg(long, default_value_t = 8)]
    pub keep: u32,
    /// Do not write to the Event Log.
    #[arg(long)]
    pub no_eventlog: bool,
    /// Do not write ETW events.
    #[arg(long)]
    pub no_etw: bool,
    /// Events per read from the driver.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub batch: u32,
    /// Longest wait in the driver per read (the stop request is seen between reads).
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u64).range(10..=10_000))]
    pub wait_ms: u64,
    /// How often the driver's status is compared for health events.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..))]
    pub status_secs: u64,
}

impl Options {
    /// The read loop's timing.
    pub fn loop_config(&self) -> LoopConfig {
        LoopConfig {
            max: self.batch,
            wait: Duration::from_millis(self.wait_ms),
            status_every: Duration::from_secs(self.status_secs),
            reconnect_every: Duration::from_secs(1),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("pipesensor-service").chain(args.iter().copied()))
    }

    #[test]
    fn defaults_and_options() {
        let Cmd::Service(o) = parse(&["service"]).unwrap().cmd else {
            panic!("service")
        };
        assert_eq!(o.json, PathBuf::from(DEFAULT_JSON));
        assert_eq!(
            (o.max_bytes, o.keep, o.batch, o.wait_ms),
            (64 << 20, 8, 64, 500)
        );
        assert!(!o.no_eventlog && !o.no_etw);
        let c = o.loop_config();
        assert_eq!(
            (c.max, c.wait, c.status_every),
            (64, Duration::from_millis(500), Duration::from_secs(5))
        );
        let Cmd::Run(o) = parse(&[
            "run",
            "--json",
            r"C:\x\e.jsonl",
            "--max-bytes",
            "4096",
            "--keep",
            "0",
            "--no-etw",
            "--batch",
            "8",
        ])
        .unwrap()
        .cmd
        else {
            panic!("run")
        };
        assert_eq!((o.max_bytes, o.keep, o.batch, o.no_etw), (4096, 0, 8, true));
    }

    #[test]
    fn bad_values_are_refused_by_name() {
        for (args, what) in [
            (&["service", "--max-bytes", "10"][..], "--max-bytes"),
            (&["service", "--batch", "0"][..], "--batch"),
            (&["service", "--wait-ms", "5"][..], "--wait-ms"),
            (&["service", "--status-secs", "0"][..], "--status-secs"),
            (&["service", "--bogus"][..], "--bogus"),
        ] {
            let e = parse(args).unwrap_err().to_string();
            assert!(e.contains(what), "{args:?}: {e}");
        }
        assert!(parse(&[]).is_err());
    }
}
