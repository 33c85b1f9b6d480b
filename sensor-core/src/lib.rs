//! The pipe sensor's logic, free of FFI, so it builds and tests on the host.
//!
//! The kernel driver (`driver/`) is a thin shell around this crate: it turns
//! IRPs, registry values and files into the plain values these modules take,
//! and performs the side effects they decide on.
//!
//! * [`name`]: pipe-name normalization (`\Device\NamedPipe\x` → `\x`, as Sysmon).
//! * [`dospath`]: image paths in DOS form (`\Device\HarddiskVolume3\x` → `C:\x`, as Sysmon).
//! * [`eval`]: the one evaluation path (normalized name, DOS image, default pid/kind, verdict)
//!   shared by the driver and `pipectl`.
//! * [`decision`]: monitor/enforce mode and the verdict for one event, under
//!   the guards below.
//! * [`protect`]: pipes and processes no block rule may deny.
//! * [`breaker`]: the per-rule and machine-wide circuit breaker.
//! * [`soak`]: monitor first — block rules of new content alert before they enforce.
//! * [`store`]: which content is active, last-known-good, quarantined.
//! * [`guard`]: the crash-loop guard persisted in the service key.
//! * [`ring`]: the bounded event ring (overflow counted, never blocks).
//! * [`event`]: the full pipe event (user SID, process identity, full image
//!   path, rule, decision, content sequence), as analysts read it.
//! * [`proto`]: the control device's IOCTL protocol (shared with `pipectl`).
//! * [`stream`]: the EVENTS_V2 IOCTL (a batch of full events; waits for them).
//! * [`waitq`]: pended waits for events, as a cancel-safe queue state machine.
//! * [`digest`]: SHA-256 of content files (reported in status).
//! * [`rollout`]: staged rollout, customer control (N-1, pin, freeze) and anti-rollback.
//! * [`rundown`]: rundown protection for callbacks (unload waits for them).
//! * [`scan`]: the content scan's decisions (start and RESCAN) behind a
//!   small platform trait: validation passes, guard persistence, rescan, timer.
//! * [`work`]: working memory for evaluations: bounded wait for a slot, and
//!   the fail-closed policy when none comes.
//!
//! Nothing here allocates, panics on untrusted input, or uses `unsafe`.
#![no_std]
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(
    not(test),
    deny(
        clippy::indexing_slicing,
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::arithmetic_side_effects
    )
)]

#[cfg(test)]
extern crate std;

pub mod breaker;
pub mod decision;
pub mod digest;
pub mod dospath;
pub mod eval;
pub mod event;
pub mod guard;
pub mod name;
pub mod protect;
pub mod proto;
pub mod ring;
pub mod rollout;
pub mod rundown;
pub mod scan;
pub mod soak;
pub mod store;
pub mod stream;
pub mod waitq;
pub mod work;

pub use channel_format::{Action, Severity};
