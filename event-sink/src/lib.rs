//! Pipe-sensor events where analysts read them.
//!
//! Shared by the Windows service (`service/`) and `pipectl driver events
//! --follow`, so both print the same JSON:
//!
//! * [`ids`]: the event-id table (pipe events 17/18 as Sysmon; health events).
//! * [`record`]: one event for every sink, and the Sysmon 17/18 shape of a
//!   pipe event (JSON line, Event Log insertion strings).
//! * [`health`]: health events and the STATUS/ROLLOUT comparison behind them.
//! * [`sid`]: user SID → `DOMAIN\name`, with a bounded cache.
//! * [`rotate`]: JSON lines rotated by size without losing a line.
//! * [`utc`]: Sysmon's `UtcTime`.
//! * [`pipeline`]: batches → sinks, reconnects, losses, the read loop.
//! * [`device`]: the driver's control device (Windows; elsewhere every call
//!   fails with "needs Windows").
//!
//! Everything but [`device`] and the resolver behind [`sid::Resolve`] is
//! plain Rust and tested on Linux.

pub mod device;
pub mod health;
pub mod ids;
pub mod pipeline;
pub mod record;
pub mod rotate;
pub mod sid;
pub mod utc;
