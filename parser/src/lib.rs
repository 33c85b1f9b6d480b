//! The one parser of pipe-sensor channel files, shared by the kernel driver,
//! `pipectl` and the fuzzers.
//!
//! [`parse`] validates the whole file before it returns a [`ChannelFile`]:
//! header, section table, every record, every string, every reference, every
//! condition program, the prefilter automata and the DFAs. Once it has
//! returned `Ok`, reading the view and matching events on it cannot fail and
//! cannot panic: every index the matcher follows was checked to be in range,
//! every automaton was checked to terminate, every condition program was
//! checked to evaluate on a bounded stack.
//!
//! The file is read in place: the view borrows the input and nothing is
//! copied or allocated. The crate is `no_std` without `alloc`, and has no
//! `unsafe` code.
//!
//! # Alignment
//! Any buffer alignment is accepted: every record, automaton and DFA is read
//! with bounds-checked little-endian loads.
//!
//! # Sensor capabilities
//! The caller says which event fields it supplies ([`Capabilities`]). A file
//! whose rules read any other field is rejected with
//! [`ParseError::FieldNotSupplied`], naming the rule and the field: a sensor
//! never evaluates a rule against a field it does not have (the Channel File
//! 291 failure).
#![cfg_attr(not(test), no_std)]
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

mod dfa;
mod error;
mod matcher;
mod text;
mod validate;
mod view;
mod wire;

pub use channel_format::{
    Action, AtomKind, EventKind, FieldId, FieldType, Limits, Ring, SectionKind, Severity,
};
pub use error::ParseError;
pub use matcher::{Event, Scratch, Verdict, SCRATCH_HITS};
pub use text::{fold_char, is_folded, Chars, Text};
pub use validate::{parse, parse_frame, parse_with_limits, Frame};
pub use view::{AtomView, ChannelFile, Header, RuleView, SectionInfo};

/// Where and when a file may be adopted (the ROLLOUT section).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RolloutPolicy {
    /// Ring, share and start time; `None`: every machine, any time.
    pub staged: Option<Staging>,
    /// A signed rollback instruction: the file may be adopted on machines
    /// whose highest proven sequence is at most this, although its own
    /// sequence is lower.
    pub rollback_ceiling: Option<u64>,
}

/// The staged part of a [`RolloutPolicy`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Staging {
    /// The ring the file is released to (and every earlier ring).
    pub ring: Ring,
    /// Share of that ring's machines, in thousandths of a percent.
    pub percent_milli: u32,
    /// Not before this time (Unix seconds, UTC); 0 for none.
    pub not_before: u64,
}

/// What the sensor does with the block rules of a file once a machine adopts
/// it (the ENFORCEMENT section). Each part is `None` when the file does not
/// set it (the sensor's defaults apply).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EnforcementPolicy {
    /// Monitor-first period per ring (canary, early, broad), in seconds:
    /// block rules only alert for this long after adoption.
    pub monitor_first: Option<[u32; 3]>,
    /// The per-rule circuit breaker.
    pub rule_breaker: Option<BreakerLimit>,
    /// The machine-wide circuit breaker.
    pub machine_breaker: Option<BreakerLimit>,
}

/// A circuit-breaker limit: more than `denies` denies within `window_secs`
/// seconds trips it. Both are at least 1 in a valid file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerLimit {
    /// Denies allowed per window.
    pub denies: u32,
    /// The window, in seconds.
    pub window_secs: u32,
}

/// The event fields a sensor supplies to rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capabilities {
    mask: u64,
}

impl Capabilities {
    /// What this driver supplies: [`Capabilities::SENSOR_V1`] plus the
    /// requester's user SID ([`FieldId::USER`]). Tools that check content
    /// for the shipped driver (`pipectl`, the compiler's default) use this.
    pub const SENSOR: Capabilities = Capabilities::from_fields(&[
        FieldId::PIPE_NAME,
        FieldId::IMAGE,
        FieldId::PROCESS_ID,
        FieldId::EVENT_KIND,
        FieldId::USER,
    ]);

    /// What drivers before the `User` field supplied: pipe name, image
    /// path, process id and event kind. Content whose rules read `User` is
    /// refused on such a sensor with [`ParseError::FieldNotSupplied`].
    pub const SENSOR_V1: Capabilities = Capabilities::from_fields(&[
        FieldId::PIPE_NAME,
        FieldId::IMAGE,
        FieldId::PROCESS_ID,
        FieldId::EVENT_KIND,
    ]);

    /// A sensor supplying exactly `fields`. Only known fields (ids below 64
    /// with a defined type) can be supplied; others are ignored.
    pub const fn from_fields(mut fields: &[FieldId]) -> Capabilities {
        let mut mask = 0u64;
        while let [f, rest @ ..] = fields {
            if f.0 < 64 && f.field_type().is_some() {
                mask |= 1u64 << f.0;
            }
            fields = rest;
        }
        Capabilities { mask }
    }

    /// Whether the sensor supplies `field`.
    pub const fn supplies(&self, field: FieldId) -> bool {
        field.0 < 64 && (self.mask >> field.0) & 1 == 1
    }
}

impl Default for Capabilities {
    fn default() -> Self {
        Capabilities::SENSOR
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capabilities() {
        let c = Capabilities::SENSOR_V1;
        assert!(c.supplies(FieldId::PIPE_NAME));
        assert!(c.supplies(FieldId::EVENT_KIND));
        assert!(!c.supplies(FieldId(21)));
        assert!(!c.supplies(FieldId::USER));
        assert!(Capabilities::SENSOR.supplies(FieldId::USER));
        assert!(Capabilities::SENSOR.supplies(FieldId::IMAGE));
        let p = Capabilities::from_fields(&[FieldId::PIPE_NAME, FieldId(21), FieldId(200)]);
        assert!(p.supplies(FieldId::PIPE_NAME));
        assert!(!p.supplies(FieldId::IMAGE));
        assert!(!p.supplies(FieldId(21)));
    }
}
