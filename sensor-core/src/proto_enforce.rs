//! The ENFORCEMENT and BREAKER_RESET messages: what stops a block rule from
//! denying on this machine (the soak, the breaker, the protected set), and an
//! administrator's reset of the breaker.
//!
//! | IOCTL | request | response |
//! |---|---|---|
//! | ENFORCEMENT | — | [`EnforcementStatus`] ([`ENFORCEMENT_STATUS_LEN`]) |
//! | BREAKER_RESET | rule u32, flags u32 ([`RESET_ALL`]) | lifted u32, reserved u32 |

use crate::breaker::{Demotion, Effective, Limit, Source, REPORTED_DEMOTIONS};
use crate::codec::{exact, ProtoError, Reader, Writer, HEADER_LEN};
use channel_format::Ring;
use static_assertions::const_assert_eq;

/// [`EnforcementStatus::flags`]: the system root could not be read; any
/// `...\System32\<file>` counts as a critical process.
pub const ENFORCEMENT_FLAG_ROOT_UNKNOWN: u32 = 1;
/// [`EnforcementStatus::flags`]: the machine-wide breaker has tripped.
pub const ENFORCEMENT_FLAG_MACHINE_DEMOTED: u32 = 2;
/// [`EnforcementStatus::flags`]: a breaker value in the service key was not
/// understood (the driver uses the content's or the default).
pub const ENFORCEMENT_FLAG_BAD_SETTING: u32 = 4;

/// Counters of denies that did not happen, and of the breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EnforcementCounters {
    /// Block-rule matches let through by the protected set.
    pub protected: u64,
    /// Block-rule matches let through during a soak.
    pub soak: u64,
    /// Block-rule matches let through because the breaker demoted the rule
    /// (or had no slot for it).
    pub demoted: u64,
    /// Rules demoted by their own breaker.
    pub rule_trips: u64,
    /// Trips of the machine-wide breaker.
    pub machine_trips: u64,
    /// Denies not performed because the breaker's table was full.
    pub table_full: u64,
    /// Demotions lifted by an administrator.
    pub resets: u64,
}

/// The ENFORCEMENT response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EnforcementStatus {
    /// `ENFORCEMENT_FLAG_*` bits.
    pub flags: u32,
    /// This machine's ring (selects the soak).
    pub ring: Ring,
    /// The soak of the active content for this ring, in seconds.
    pub soak_secs: u32,
    /// The active content (0: none).
    pub sequence: u64,
    /// When this machine adopted it (Unix seconds, UTC).
    pub adopted_unix: u64,
    /// The driver's monotonic clock now (ms).
    pub now_ms: u64,
    /// Block rules enforce from this monotonic time on (ms).
    pub enforce_at_ms: u64,
    /// When the machine-wide breaker tripped (monotonic ms; 0: it has not).
    pub machine_demoted_at_ms: u64,
    /// The per-rule limit in effect.
    pub rule: Effective,
    /// The machine-wide limit in effect.
    pub machine: Effective,
    /// Counters.
    pub counters: EnforcementCounters,
    /// Rules demoted now (may exceed [`REPORTED_DEMOTIONS`]).
    pub demoted_count: u32,
    /// The first `min(demoted_count, REPORTED_DEMOTIONS)` are used.
    pub demotions: [Demotion; REPORTED_DEMOTIONS],
}

/// Wire length of one [`Demotion`]: rule 4, reserved 4, at 8, denies 8.
pub const DEMOTION_WIRE_LEN: usize = 24;
/// Wire length of one [`Effective`] limit: denies 4, window 4, source 4, reserved 4.
pub const LIMIT_WIRE_LEN: usize = 16;
/// Length of an ENFORCEMENT response (header included).
pub const ENFORCEMENT_STATUS_LEN: usize = HEADER_LEN
    + 16
    + 8 * 5
    + 2 * LIMIT_WIRE_LEN
    + 8 * 7
    + 8
    + REPORTED_DEMOTIONS * DEMOTION_WIRE_LEN;
const_assert_eq!(ENFORCEMENT_STATUS_LEN, 544);

/// BREAKER_RESET flag: lift every demotion, including the machine-wide one
/// (the rule id must then be 0).
pub const RESET_ALL: u32 = 1;
/// Length of a BREAKER_RESET request.
pub const BREAKER_RESET_REQUEST_LEN: usize = HEADER_LEN + 8;
/// Length of a BREAKER_RESET response.
pub const BREAKER_RESET_RESPONSE_LEN: usize = HEADER_LEN + 8;

/// What BREAKER_RESET lifts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResetTarget {
    /// One rule's demotion.
    Rule(u32),
    /// Every demotion, and the machine-wide breaker.
    All,
}

impl ResetTarget {
    /// As [`crate::breaker::Breaker::reset`] takes it.
    pub const fn rule(self) -> Option<u32> {
        match self {
            ResetTarget::Rule(r) => Some(r),
            ResetTarget::All => None,
        }
    }
}

impl EnforcementStatus {
    /// Nothing known yet.
    pub const EMPTY: EnforcementStatus = EnforcementStatus {
        flags: 0,
        ring: Ring::BROAD,
        soak_secs: 0,
        sequence: 0,
        adopted_unix: 0,
        now_ms: 0,
        enforce_at_ms: 0,
        machine_demoted_at_ms: 0,
        rule: Effective {
            limit: Limit::OFF,
            source: Source::Default,
        },
        machine: Effective {
            limit: Limit::OFF,
            source: Source::Default,
        },
        counters: EnforcementCounters {
            protected: 0,
            soak: 0,
            demoted: 0,
            rule_trips: 0,
            machine_trips: 0,
            table_full: 0,
            resets: 0,
        },
        demoted_count: 0,
        demotions: [Demotion {
            rule_id: 0,
            at_ms: 0,
            denies: 0,
        }; REPORTED_DEMOTIONS],
    };

    /// The reported demotions.
    pub fn demotions(&self) -> &[Demotion] {
        let n = usize::try_from(self.demoted_count)
            .unwrap_or(usize::MAX)
            .min(REPORTED_DEMOTIONS);
        self.demotions.get(..n).unwrap_or(&[])
    }

    /// Milliseconds of soak left (0: block rules enforce).
    pub const fn soak_left_ms(&self) -> u64 {
        self.enforce_at_ms.saturating_sub(self.now_ms)
    }

    /// Writes the response into `out`, returning the bytes written.
    ///
    /// # Errors
    /// [`ProtoError::BufferTooSmall`] when `out` is shorter than
    /// [`ENFORCEMENT_STATUS_LEN`].
    pub fn encode(&self, out: &mut [u8]) -> Result<usize, ProtoError> {
        if out.len() < ENFORCEMENT_STATUS_LEN {
            return Err(ProtoError::BufferTooSmall {
                needed: ENFORCEMENT_STATUS_LEN,
            });
        }
        let mut w = Writer::new(out);
        w.header()?;
        w.u32(self.flags)?;
        w.u32(u32::from(self.ring.0))?;
        w.u32(self.soak_secs)?;
        w.u32(0)?;
        for v in [
            self.sequence,
            self.adopted_unix,
            self.now_ms,
            self.enforce_at_ms,
            self.machine_demoted_at_ms,
        ] {
            w.u64(v)?;
        }
        for e in [self.rule, self.machine] {
            w.u32(e.limit.denies)?;
            w.u32(e.limit.window_secs)?;
            w.u32(u32::from(e.source.to_u8()))?;
            w.u32(0)?;
        }
        let c = &self.counters;
        for v in [
            c.protected,
            c.soak,
            c.demoted,
            c.rule_trips,
            c.machine_trips,
            c.table_full,
            c.resets,
        ] {
            w.u64(v)?;
        }
        w.u32(self.demoted_count)?;
        w.u32(0)?;
        for d in &self.demotions {
            w.u32(d.rule_id)?;
            w.u32(0)?;
            w.u64(d.at_ms)?;
            w.u64(d.denies)?;
        }
        Ok(w.written())
    }

    /// Parses a response.
    ///
    /// # Errors
    /// Wrong length, header or field values.
    pub fn decode(buf: &[u8]) -> Result<EnforcementStatus, ProtoError> {
        exact(buf, ENFORCEMENT_STATUS_LEN, "enforcement response")?;
        let mut r = Reader::new(buf);
        r.header()?;
        let flags = r.u32("flags")?;
        let ring = u8::try_from(r.u32("ring")?)
            .ok()
            .map(Ring)
            .filter(|r| r.is_known())
            .ok_or(ProtoError::BadValue { what: "ring" })?;
        let soak_secs = r.u32("soak")?;
        let _ = r.u32("reserved")?;
        let sequence = r.u64("sequence")?;
        let adopted_unix = r.u64("adopted")?;
        let now_ms = r.u64("now")?;
        let enforce_at_ms = r.u64("enforce at")?;
        let machine_demoted_at_ms = r.u64("machine demoted at")?;
        let limit = |r: &mut Reader<'_>| -> Result<Effective, ProtoError> {
            let denies = r.u32("limit")?;
            let window_secs = r.u32("limit")?;
            let source = u8::try_from(r.u32("limit source")?)
                .ok()
                .and_then(Source::from_u8)
                .ok_or(ProtoError::BadValue {
                    what: "limit source",
                })?;
            let _ = r.u32("limit")?;
            Ok(Effective {
                limit: Limit {
                    denies,
                    window_secs,
                },
                source,
            })
        };
        let rule = limit(&mut r)?;
        let machine = limit(&mut r)?;
        let counters = EnforcementCounters {
            protected: r.u64("counters")?,
            soak: r.u64("counters")?,
            demoted: r.u64("counters")?,
            rule_trips: r.u64("counters")?,
            machine_trips: r.u64("counters")?,
            table_full: r.u64("counters")?,
            resets: r.u64("counters")?,
        };
        let demoted_count = r.u32("demoted count")?;
        let _ = r.u32("reserved")?;
        let mut demotions = EnforcementStatus::EMPTY.demotions;
        for d in &mut demotions {
            d.rule_id = r.u32("demotion")?;
            let _ = r.u32("demotion")?;
            d.at_ms = r.u64("demotion")?;
            d.denies = r.u64("demotion")?;
        }
        r.finish("enforcement response")?;
        Ok(EnforcementStatus {
            flags,
            ring,
            soak_secs,
            sequence,
            adopted_unix,
            now_ms,
            enforce_at_ms,
            machine_demoted_at_ms,
            rule,
            machine,
            counters,
            demoted_count,
            demotions,
        })
    }
}

/// Encodes a BREAKER_RESET request.
///
/// # Errors
/// [`ProtoError::BufferTooSmall`].
pub fn encode_breaker_reset_request(
    out: &mut [u8],
    target: ResetTarget,
) -> Result<usize, ProtoError> {
    let mut w = Writer::new(out);
    w.header()?;
    match target {
        ResetTarget::Rule(r) => {
            w.u32(r)?;
            w.u32(0)?;
        }
        ResetTarget::All => {
            w.u32(0)?;
            w.u32(RESET_ALL)?;
        }
    }
    Ok(w.written())
}

/// Decodes a BREAKER_RESET request.
///
/// # Errors
/// Wrong length, header, flags, or a rule id together with [`RESET_ALL`].
/// Never panics for any input.
pub fn decode_breaker_reset_request(input: &[u8]) -> Result<ResetTarget, ProtoError> {
    let mut r = Reader::new(input);
    r.header()?;
    let rule = r.u32("rule")?;
    let flags = r.u32("reset flags")?;
    r.finish("request")?;
    match flags {
        0 => Ok(ResetTarget::Rule(rule)),
        RESET_ALL if rule == 0 => Ok(ResetTarget::All),
        RESET_ALL => Err(ProtoError::BadValue {
            what: "reset: rule id with the all flag",
        }),
        _ => Err(ProtoError::BadValue {
            what: "reset flags",
        }),
    }
}

/// Writes a BREAKER_RESET response: how many demotions were lifted.
///
/// # Errors
/// [`ProtoError::BufferTooSmall`].
pub fn encode_breaker_reset_response(out: &mut [u8], lifted: u32) -> Result<usize, ProtoError> {
    if out.len() < BREAKER_RESET_RESPONSE_LEN {
        return Err(ProtoError::BufferTooSmall {
            needed: BREAKER_RESET_RESPONSE_LEN,
        });
    }
    let mut w = Writer::new(out);
    w.header()?;
    w.u32(lifted)?;
    w.u32(0)?;
    Ok(w.written())
}

/// Parses a BREAKER_RESET response into the number of demotions lifted.
///
/// # Errors
/// Wrong length or header.
pub fn decode_breaker_reset_response(buf: &[u8]) -> Result<u32, ProtoError> {
    exact(buf, BREAKER_RESET_RESPONSE_LEN, "breaker reset response")?;
    let mut r = Reader::new(buf);
    r.header()?;
    let lifted = r.u32("lifted")?;
    let _ = r.u32("reserved")?;
    r.finish("breaker reset response")?;
    Ok(lifted)
}
