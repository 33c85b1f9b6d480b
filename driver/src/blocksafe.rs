//! What keeps a block rule from breaking Windows, in the driver (issue 15):
//! the driver supplies the time, the requestor's image path in DOS form, the
//! system root and the settings; `sensor_core::decision::decide_guarded`
//! decides (mode, then the protected set, then the soak after adoption, then
//! the circuit breaker).
//!
//! State:
//! * the system root (`C:\Windows`), read once at start from
//!   `HKLM\SOFTWARE\Microsoft\Windows NT\CurrentVersion` value `SystemRoot`;
//!   when it cannot be read, `<any drive>:\Windows` counts
//!   (`sensor_core::protect::SystemRoot::Unknown`, flagged in ENFORCEMENT);
//! * the soak: when content with a new sequence becomes active, the time
//!   this machine adopted it is kept in the service key (`Adopted`,
//!   REG_BINARY, `sensor_core::soak::Adoption`) so a restart does not
//!   restart the soak, and block rules enforce from
//!   `sensor_core::soak::enforce_at_ms` on;
//! * the breaker: one fixed table (`sensor_core::breaker::Breaker`) under a
//!   spin lock, cleared when new content becomes active, limits from the
//!   service key (`BreakerRule`, `BreakerMachine`, REG_SZ `N/S` or `off`;
//!   `sensor_core::breaker::parse_setting`), else the content's ENFORCEMENT
//!   section, else the defaults (20 denies / 60 s per rule, 100 / 60 s
//!   machine-wide).
//!
//! The callbacks count (`protected`, `soak`, `demoted`) and feed the
//! breaker; EVAL asks the breaker without counting (`Breaker::peek`).

use crate::globals::blocksafe::*;
use crate::sys::{self, clock, log, Level, RegKey, Wide};
use channel_format::Ring;
use channel_parser::{EnforcementPolicy, Text};
use core::sync::atomic::Ordering;
use sensor_core::breaker::{
    self, DemotedBy, Effective, Limit, Source, DEFAULT_SETTINGS, REPORTED_DEMOTIONS,
};
use sensor_core::decision::{decide_guarded, Context, Decision, Facts, Mode, RuleHit, Verdict};
use sensor_core::protect::{Requestor, SystemRoot};
use sensor_core::proto::{
    EnforcementCounters, EnforcementStatus, ResetTarget, ENFORCEMENT_FLAG_BAD_SETTING,
    ENFORCEMENT_FLAG_MACHINE_DEMOTED, ENFORCEMENT_FLAG_ROOT_UNKNOWN,
};
use sensor_core::ring::EventKind;
use sensor_core::soak::{self, Adoption, SoakPolicy, ADOPTION_LEN};

/// The System process's id on every Windows NT since XP.
pub const SYSTEM_PID: u32 = 4;

const CURRENT_VERSION_KEY: &str = r"\Registry\Machine\SOFTWARE\Microsoft\Windows NT\CurrentVersion";
/// Longest system root kept, in UTF-16 units (MAX_PATH).
pub(crate) const ROOT_UNITS: usize = 260;

/// What ENFORCEMENT reports besides the breaker.
#[derive(Clone, Copy)]
pub(crate) struct Adopted {
    ring: Ring,
    soak_secs: u32,
    sequence: u64,
    adopted_unix: u64,
    rule: Effective,
    machine: Effective,
}

impl Adopted {
    /// Nothing adopted yet: the broad ring, no soak, the default limits.
    pub(crate) const INIT: Adopted = Adopted {
        ring: Ring::BROAD,
        soak_secs: 0,
        sequence: 0,
        adopted_unix: 0,
        rule: Effective {
            limit: DEFAULT_SETTINGS.rule,
            source: Source::Default,
        },
        machine: Effective {
            limit: DEFAULT_SETTINGS.machine,
            source: Source::Default,
        },
    };
}

/// Reads the system root. PASSIVE_LEVEL (DriverEntry, before the callbacks
/// start). Not inlined: its buffers stay off DriverEntry's stack.
#[inline(never)]
pub fn configure() {
    let mut buf = [0u16; ROOT_UNITS];
    let key = RegKey::open(Wide::<80>::new(CURRENT_VERSION_KEY).units());
    let root = key
        .as_ref()
        .ok()
        .and_then(|k| k.string("SystemRoot", &mut buf))
        .map(|r| match r.split_last() {
            Some((&b, rest)) if b == u16::from(b'\\') => rest,
            _ => r,
        })
        .filter(|r| !r.is_empty() && r.len() < ROOT_UNITS);
    match root {
        Some(r) if ROOT.init(|w| w.set_units(r)) => {
            log(
                Level::Info,
                format_args!(
                    "system root {} (critical processes under it)",
                    WideDisplay(r)
                ),
            );
        }
        _ => {
            FLAGS.fetch_or(ENFORCEMENT_FLAG_ROOT_UNKNOWN, Ordering::AcqRel);
            log(
                Level::Warning,
                format_args!(
                    "system root not readable: any <drive>:\\Windows\\System32 counts for critical processes"
                ),
            );
        }
    }
}

struct WideDisplay<'a>(&'a [u16]);

impl core::fmt::Display for WideDisplay<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        for c in char::decode_utf16(self.0.iter().copied()) {
            core::fmt::Write::write_char(f, c.unwrap_or(char::REPLACEMENT_CHARACTER))?;
        }
        Ok(())
    }
}

fn system_root() -> SystemRoot<'static> {
    match ROOT.get() {
        Some(r) if !r.units().is_empty() => SystemRoot::Known(Text::Utf16(r.units())),
        _ => SystemRoot::Unknown,
    }
}

/// The guarded decision for one evaluated event. `live`: a callback (the
/// breaker counts the deny and the guard counters move); else EVAL (the
/// breaker is only asked, and the pid is not taken as the System
/// process's). `image` is the requestor's path in DOS form.
/// Any IRQL up to DISPATCH_LEVEL; allocates nothing.
pub fn decide(
    kind: EventKind,
    name: &[u16],
    image: Option<&[u16]>,
    pid: u32,
    mode: Mode,
    hit: Option<RuleHit>,
    live: bool,
) -> Verdict {
    let ctx = Context {
        mode,
        now_ms: clock::monotonic_ms(),
        enforce_at_ms: ENFORCE_AT_MS.load(Ordering::Acquire),
    };
    let facts = Facts {
        kind,
        name: Text::Utf16(name),
        requestor: Requestor {
            image: image.map(Text::Utf16),
            // Only a callback knows its requestor: the pid of an EVAL
            // request is whatever the caller wrote (pipectl's default is 4).
            system_process: live && pid == SYSTEM_PID,
        },
        system_root: system_root(),
    };
    let v = decide_guarded(&ctx, &facts, hit, |rule, now| {
        BREAKER.with(|b| {
            if live {
                b.on_deny(rule, now)
            } else {
                b.peek(rule, now)
            }
        })
    });
    if !live {
        return v;
    }
    match v.decision {
        Decision::Protected => {
            PROTECTED.fetch_add(1, Ordering::Relaxed);
        }
        Decision::Soak => {
            SOAKED.fetch_add(1, Ordering::Relaxed);
        }
        Decision::Demoted => {
            DEMOTED.fetch_add(1, Ordering::Relaxed);
        }
        _ => {}
    }
    if let (Some((by, true)), Some(h)) = (v.demoted, hit) {
        demoted_now(by, h.id);
    }
    v
}

/// Counts a protected decision made without evaluation
/// (`sensor_core::decision::decide_unchecked_guarded`).
pub fn count_protected() {
    PROTECTED.fetch_add(1, Ordering::Relaxed);
}

/// The moment a breaker trips: the log line (the pipe event of the same
/// operation carries the decision `demoted`). Out of line: a breakpoint
/// target (docs/windbg.md).
#[cold]
#[inline(never)]
fn demoted_now(by: DemotedBy, rule: u32) {
    let s = BREAKER.with(|b| b.settings());
    match by {
        DemotedBy::Machine => log(
            Level::Warning,
            format_args!(
                "machine-wide breaker tripped (limit {}): every block rule alerts until new content or a reset",
                s.machine
            ),
        ),
        _ => log(
            Level::Warning,
            format_args!(
                "rule {rule} demoted to alert by its breaker (limit {}) until new content or a reset",
                s.rule
            ),
        ),
    }
}

/// Unix seconds (UTC) now; 0 when the kernel has no time routine.
fn unix_now() -> u64 {
    const UNIX_EPOCH_IN_FILETIME_SECONDS: u64 = 11_644_473_600;
    (sys::system_time() / 10_000_000).saturating_sub(UNIX_EPOCH_IN_FILETIME_SECONDS)
}

/// The service key's breaker limits, and whether one was not understood.
fn key_limits(key: Option<&RegKey>) -> ((Option<Limit>, Option<Limit>), bool) {
    let mut bad = false;
    let mut read = |name: &str| {
        let mut text = [0u16; 64];
        let mut ascii = [0u8; 64];
        let v = key?.string(name, &mut text)?;
        let mut n = 0usize;
        for &u in v {
            match (u8::try_from(u).ok().filter(u8::is_ascii), ascii.get_mut(n)) {
                (Some(b), Some(d)) => *d = b,
                _ => {
                    bad = true;
                    return None;
                }
            }
            n += 1;
        }
        let parsed = ascii
            .get(..n)
            .and_then(|a| core::str::from_utf8(a).ok())
            .and_then(breaker::parse_setting);
        if parsed.is_none() {
            bad = true;
        }
        parsed
    };
    let limits = (read("BreakerRule"), read("BreakerMachine"));
    (limits, bad)
}

/// Content `sequence` (0: none) with ENFORCEMENT policy `policy` is now the
/// active content. For a new sequence: keep or record when this machine
/// adopted it, place the soak for this machine's ring, clear the breaker
/// and apply the limits in effect. Nothing for the same sequence.
/// PASSIVE_LEVEL (the content scan and hot loads).
#[inline(never)]
pub fn on_active(sequence: u64, policy: Option<EnforcementPolicy>, ring: Ring) {
    if ADOPTED.with(|a| a.sequence) == sequence {
        return;
    }
    let key = crate::content::open_service_key().ok();
    let (limits, bad) = key_limits(key.as_ref());
    if bad {
        FLAGS.fetch_or(ENFORCEMENT_FLAG_BAD_SETTING, Ordering::AcqRel);
        log(
            Level::Warning,
            format_args!(
                "service key value BreakerRule or BreakerMachine is not N/S or off: ignored"
            ),
        );
    } else {
        FLAGS.fetch_and(!ENFORCEMENT_FLAG_BAD_SETTING, Ordering::AcqRel);
    }
    let (rule, machine) = breaker::effective(limits, policy);
    BREAKER.with(|b| b.clear(breaker::settings_of(rule, machine)));
    if sequence == 0 {
        ENFORCE_AT_MS.store(0, Ordering::Release);
        ADOPTED.with(|a| {
            *a = Adopted {
                ring,
                soak_secs: 0,
                sequence: 0,
                adopted_unix: 0,
                rule,
                machine,
            }
        });
        return;
    }
    let now_unix = unix_now();
    let mut raw = [0u8; ADOPTION_LEN];
    let stored = key
        .as_ref()
        .and_then(|k| k.binary("Adopted", &mut raw))
        .filter(|&n| n == ADOPTION_LEN)
        .and_then(|_| Adoption::decode(&raw));
    let adoption = Adoption::on_activate(stored, sequence, now_unix);
    if stored != Some(adoption) {
        let written = key
            .as_ref()
            .map(|k| k.set_binary("Adopted", &adoption.encode()));
        if !matches!(written, Some(Ok(()))) {
            log(
                Level::Warning,
                format_args!("cannot persist the adoption time: a restart restarts the soak"),
            );
        }
    }
    let soak_secs = SoakPolicy::of(policy).for_ring(ring);
    let now_ms = clock::monotonic_ms();
    let at = soak::enforce_at_ms(adoption.at_unix, soak_secs, now_unix, now_ms);
    ENFORCE_AT_MS.store(at, Ordering::Release);
    ADOPTED.with(|a| {
        *a = Adopted {
            ring,
            soak_secs,
            sequence,
            adopted_unix: adoption.at_unix,
            rule,
            machine,
        }
    });
    log(
        Level::Info,
        format_args!(
            "content {sequence}: block rules enforce in {} s (ring {}, soak {soak_secs} s); breaker rule {} ({}), machine {} ({})",
            at.saturating_sub(now_ms) / 1000,
            ring.name().unwrap_or("?"),
            rule.limit,
            rule.source.name(),
            machine.limit,
            machine.source.name(),
        ),
    );
}

/// BREAKER_RESET: lifts demotions; returns how many.
pub fn reset(target: ResetTarget) -> u32 {
    let lifted = BREAKER.with(|b| b.reset(target.rule()));
    match target {
        ResetTarget::Rule(r) => log(
            Level::Info,
            format_args!("breaker reset for rule {r}: {lifted} demotion(s) lifted"),
        ),
        ResetTarget::All => log(
            Level::Info,
            format_args!("breaker reset for all rules: {lifted} demotion(s) lifted"),
        ),
    }
    lifted
}

/// The ENFORCEMENT snapshot.
pub fn status() -> EnforcementStatus {
    let a = ADOPTED.with(|a| *a);
    let mut s = EnforcementStatus::EMPTY;
    s.ring = a.ring;
    s.soak_secs = a.soak_secs;
    s.sequence = a.sequence;
    s.adopted_unix = a.adopted_unix;
    s.now_ms = clock::monotonic_ms();
    s.enforce_at_ms = ENFORCE_AT_MS.load(Ordering::Acquire);
    s.rule = a.rule;
    s.machine = a.machine;
    let (counters, machine_at, count) = BREAKER.with(|b| {
        let mut n = 0u32;
        for (d, src) in s.demotions.iter_mut().zip(b.demotions()) {
            *d = src;
        }
        for _ in b.demotions() {
            n = n.saturating_add(1);
        }
        (b.counters(), b.machine_demoted_at(), n)
    });
    s.demoted_count = count;
    s.flags = FLAGS.load(Ordering::Acquire);
    if let Some(at) = machine_at {
        s.flags |= ENFORCEMENT_FLAG_MACHINE_DEMOTED;
        s.machine_demoted_at_ms = at;
    }
    s.counters = EnforcementCounters {
        protected: PROTECTED.load(Ordering::Relaxed),
        soak: SOAKED.load(Ordering::Relaxed),
        demoted: DEMOTED.load(Ordering::Relaxed),
        rule_trips: counters.rule_trips,
        machine_trips: counters.machine_trips,
        table_full: counters.table_full,
        resets: counters.resets,
    };
    const _: () = assert!(REPORTED_DEMOTIONS > 0);
    s
}
