//! The circuit breaker: a block rule that denies too often is demoted to an
//! alert, and so is every block rule when the machine as a whole denies too
//! often.
//!
//! A well-formed, signed block rule can still be wrong: if it matches a pipe
//! some service needs, it denies that service again and again, on every
//! machine of the ring, and nothing crashes for the crash-loop guard to
//! notice. The breaker bounds the damage on each machine without anyone
//! watching: a rule that denies more than `N` times within `M` seconds is
//! **demoted** — its matches are recorded as alerts with the decision
//! [`crate::decision::Decision::Demoted`] — until new content is adopted
//! ([`Breaker::clear`]) or an administrator resets it ([`Breaker::reset`],
//! `pipectl driver breaker reset [RULE]`). The machine-wide breaker does the
//! same for all denies together.
//!
//! # The window
//! Each limit counts denies in 16 buckets of `M/16` seconds. The count a new
//! deny is measured against covers the current bucket and the 15 before it,
//! so between `15/16·M` and `M` seconds. A deny that would be the
//! `(N+1)`-th in that span is not performed: the rule is demoted instead.
//! So at most `N` denies by one rule ever happen within any `15/16·M`
//! seconds, and `N+1` denies within `15/16·M` seconds always trip it; denies
//! spread more thinly than `N` per `M` seconds never do.
//!
//! # Fixed memory
//! [`Breaker`] is a fixed table of [`BREAKER_SLOTS`] rules; nothing is
//! allocated. A rule takes a slot on its first deny. A slot whose rule has
//! denied nothing for a whole window and is not demoted is free for reuse.
//! When every slot is held by a rule that denied within its window (or is
//! demoted), a deny by yet another rule is **not performed** and counted
//! ([`BreakerCounters::table_full`]): the breaker cannot bound what it cannot
//! count, and the machine comes first. With a 64-slot table that takes 64
//! different block rules denying within one window — by then the
//! machine-wide breaker has normally tripped anyway.
//!
//! Time is a monotonic millisecond clock supplied by the caller (the driver
//! uses the interrupt time); nothing here reads a clock. A clock that goes
//! backwards counts into the newest bucket.

/// Rules the breaker tracks at once.
pub const BREAKER_SLOTS: usize = 64;
/// Buckets per window.
pub const BUCKETS: usize = 16;
/// Demoted rules reported in status (the oldest first; the rest counted).
pub const REPORTED_DEMOTIONS: usize = 16;

/// One limit: more than `denies` denies within `window_secs` seconds trips.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    /// Denies allowed per window; 0 turns the limit off.
    pub denies: u32,
    /// The window, in seconds; 0 turns the limit off.
    pub window_secs: u32,
}

impl Limit {
    /// No limit.
    pub const OFF: Limit = Limit {
        denies: 0,
        window_secs: 0,
    };

    /// Whether the limit is off.
    pub const fn is_off(self) -> bool {
        self.denies == 0 || self.window_secs == 0
    }

    /// The bucket index of `now_ms`: buckets are `window/16` wide (at
    /// least 1 ms).
    const fn epoch(self, now_ms: u64) -> u64 {
        let w = match (self.window_secs as u64)
            .saturating_mul(1000)
            .checked_div(BUCKETS as u64)
        {
            Some(0) | None => 1,
            Some(w) => w,
        };
        match now_ms.checked_div(w) {
            Some(e) => e,
            None => 0,
        }
    }
}

impl core::fmt::Display for Limit {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        if self.is_off() {
            f.write_str("off")
        } else {
            write!(f, "{}/{}s", self.denies, self.window_secs)
        }
    }
}

/// Both limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerSettings {
    /// Per block rule.
    pub rule: Limit,
    /// All denies on the machine together.
    pub machine: Limit,
}

/// The defaults: a rule is demoted after 20 denies within a minute, every
/// block rule after 100 denies on the machine within a minute.
///
/// Why these numbers: a block rule aimed at an attack tool sees a handful of
/// operations per attack (a tool creates its pipe once, or a few times when
/// it retries); 20 in a minute is already a tool stuck in a loop or a rule
/// that hits something legitimate. A Windows service whose pipe a wrong rule
/// denies retries continuously and many processes connect to common pipes,
/// so a runaway rule reaches 20 within seconds: the service is broken for
/// seconds instead of until someone ships new content. 100 machine-wide
/// leaves room for several rules doing their job at once.
pub const DEFAULT_SETTINGS: BreakerSettings = BreakerSettings {
    rule: Limit {
        denies: 20,
        window_secs: 60,
    },
    machine: Limit {
        denies: 100,
        window_secs: 60,
    },
};

channel_format::wire_enum! {
    /// Where a limit in effect came from.
    Source: u8 (to_u8, from_u8) {
        /// The built-in default ([`DEFAULT_SETTINGS`]).
        Default = 0 => "default",
        /// The active content's policy.
        Content = 1 => "content",
        /// The service key (an administrator's setting wins over content).
        ServiceKey = 2 => "service-key",
    }
}

/// One limit in effect and where it came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Effective {
    /// The limit.
    pub limit: Limit,
    /// Its source.
    pub source: Source,
}

impl From<channel_parser::BreakerLimit> for Limit {
    fn from(l: channel_parser::BreakerLimit) -> Limit {
        Limit {
            denies: l.denies,
            window_secs: l.window_secs,
        }
    }
}

/// The limits in effect: per limit, the service key's value if it has one
/// (an administrator may also turn a limit off there), else the content's
/// ENFORCEMENT policy (content cannot turn a limit off: the parser rejects
/// a zero), else the default.
pub fn effective(
    service_key: (Option<Limit>, Option<Limit>),
    content: Option<channel_parser::EnforcementPolicy>,
) -> (Effective, Effective) {
    let pick = |key: Option<Limit>, content: Option<Limit>, default: Limit| match (key, content) {
        (Some(limit), _) => Effective {
            limit,
            source: Source::ServiceKey,
        },
        (None, Some(limit)) => Effective {
            limit,
            source: Source::Content,
        },
        (None, None) => Effective {
            limit: default,
            source: Source::Default,
        },
    };
    let c = content.unwrap_or_default();
    (
        pick(
            service_key.0,
            c.rule_breaker.map(Limit::from),
            DEFAULT_SETTINGS.rule,
        ),
        pick(
            service_key.1,
            c.machine_breaker.map(Limit::from),
            DEFAULT_SETTINGS.machine,
        ),
    )
}

/// The settings of a pair of effective limits.
pub const fn settings_of(rule: Effective, machine: Effective) -> BreakerSettings {
    BreakerSettings {
        rule: rule.limit,
        machine: machine.limit,
    }
}

/// Deny counts in [`BUCKETS`] buckets; `newest` is the index (time / bucket
/// width) of the newest bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Window {
    counts: [u32; BUCKETS],
    newest: u64,
}

impl Window {
    const EMPTY: Window = Window {
        counts: [0; BUCKETS],
        newest: 0,
    };

    fn slot(epoch: u64) -> usize {
        // BUCKETS is 16: the remainder always fits.
        usize::try_from(epoch.checked_rem(BUCKETS as u64).unwrap_or(0)).unwrap_or(0)
    }

    /// Denies in the buckets that a deny at `epoch` is measured against:
    /// `(epoch - BUCKETS, epoch]`, of those still held.
    fn sum_at(&self, epoch: u64) -> u64 {
        let epoch = epoch.max(self.newest);
        const SPAN: u64 = BUCKETS as u64 - 1;
        let held_from = self.newest.saturating_sub(SPAN);
        let wanted_from = epoch.saturating_sub(SPAN);
        let from = held_from.max(wanted_from);
        let mut sum = 0u64;
        let mut e = from;
        while e <= self.newest {
            sum = sum.saturating_add(u64::from(
                self.counts.get(Self::slot(e)).copied().unwrap_or(0),
            ));
            e = e.saturating_add(1);
            if e == 0 {
                break;
            }
        }
        sum
    }

    /// Moves the newest bucket to `epoch`, emptying the buckets it passes.
    fn advance(&mut self, epoch: u64) {
        if epoch <= self.newest {
            return;
        }
        let gap = epoch.saturating_sub(self.newest);
        if gap >= BUCKETS as u64 {
            self.counts = [0; BUCKETS];
        } else {
            let mut e = self.newest;
            while e < epoch {
                e = e.saturating_add(1);
                if let Some(c) = self.counts.get_mut(Self::slot(e)) {
                    *c = 0;
                }
            }
        }
        self.newest = epoch;
    }

    fn add(&mut self) {
        if let Some(c) = self.counts.get_mut(Self::slot(self.newest)) {
            *c = c.saturating_add(1);
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Slot {
    used: bool,
    rule_id: u32,
    window: Window,
    /// When the rule was demoted (monotonic ms), if it is.
    demoted_at: Option<u64>,
    /// Denies performed for this rule since the slot was taken.
    denies: u64,
}

impl Slot {
    const EMPTY: Slot = Slot {
        used: false,
        rule_id: 0,
        window: Window::EMPTY,
        demoted_at: None,
        denies: 0,
    };
}

channel_format::wire_enum! {
    /// Which breaker stopped a deny.
    DemotedBy: u8 (to_u8, from_u8) {
        /// The rule's own breaker.
        Rule = 1 => "rule",
        /// The machine-wide breaker.
        Machine = 2 => "machine",
        /// No slot was free to track the rule ([`BreakerCounters::table_full`]).
        TableFull = 3 => "table-full",
    }
}

/// What the breaker says about one deny.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    /// Deny (counted).
    Deny,
    /// Do not deny: record an alert.
    Demoted {
        /// Which breaker.
        by: DemotedBy,
        /// This deny tripped it (the moment of demotion: an event).
        tripped_now: bool,
    },
}

/// Breaker counters (since the driver started; [`Breaker::clear`] keeps them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BreakerCounters {
    /// Rules demoted by their own breaker.
    pub rule_trips: u64,
    /// Times the machine-wide breaker tripped.
    pub machine_trips: u64,
    /// Denies not performed because no slot was free.
    pub table_full: u64,
    /// Demotions lifted by an administrator's reset.
    pub resets: u64,
}

/// A demoted rule, as status reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Demotion {
    /// The rule.
    pub rule_id: u32,
    /// When (monotonic ms).
    pub at_ms: u64,
    /// Denies it performed before.
    pub denies: u64,
}

/// The breaker state: fixed size, no allocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Breaker {
    rule: Limit,
    machine: Limit,
    slots: [Slot; BREAKER_SLOTS],
    machine_window: Window,
    machine_demoted_at: Option<u64>,
    counters: BreakerCounters,
}

impl Default for Breaker {
    fn default() -> Self {
        Self::new(DEFAULT_SETTINGS)
    }
}

impl Breaker {
    /// A breaker with `settings` and nothing counted.
    pub const fn new(settings: BreakerSettings) -> Self {
        Breaker {
            rule: settings.rule,
            machine: settings.machine,
            slots: [Slot::EMPTY; BREAKER_SLOTS],
            machine_window: Window::EMPTY,
            machine_demoted_at: None,
            counters: BreakerCounters {
                rule_trips: 0,
                machine_trips: 0,
                table_full: 0,
                resets: 0,
            },
        }
    }

    /// The limits in effect.
    pub const fn settings(&self) -> BreakerSettings {
        BreakerSettings {
            rule: self.rule,
            machine: self.machine,
        }
    }

    /// Counters.
    pub const fn counters(&self) -> BreakerCounters {
        self.counters
    }

    /// New content was adopted: every demotion and count is dropped and
    /// `settings` take effect. Counters are kept.
    pub fn clear(&mut self, settings: BreakerSettings) {
        self.rule = settings.rule;
        self.machine = settings.machine;
        self.slots = [Slot::EMPTY; BREAKER_SLOTS];
        self.machine_window = Window::EMPTY;
        self.machine_demoted_at = None;
    }

    /// An administrator's reset: lifts the demotion of `rule` (its counts
    /// start again), or with `None` of every rule and of the machine-wide
    /// breaker. Returns how many demotions were lifted.
    pub fn reset(&mut self, rule: Option<u32>) -> u32 {
        let mut lifted = 0u32;
        for s in self.slots.iter_mut().filter(|s| s.used) {
            if rule.is_none_or(|r| r == s.rule_id) {
                if s.demoted_at.is_some() {
                    lifted = lifted.saturating_add(1);
                }
                *s = Slot::EMPTY;
            }
        }
        if rule.is_none() {
            if self.machine_demoted_at.is_some() {
                lifted = lifted.saturating_add(1);
            }
            self.machine_demoted_at = None;
            self.machine_window = Window::EMPTY;
        }
        self.counters.resets = self.counters.resets.saturating_add(u64::from(lifted));
        lifted
    }

    fn find(&self, rule_id: u32) -> Option<usize> {
        self.slots
            .iter()
            .position(|s| s.used && s.rule_id == rule_id)
    }

    /// A slot to take for a new rule at `now_ms`: a free one, else the
    /// least recently used idle one (no deny within its window, not
    /// demoted).
    fn free_slot(&self, now_ms: u64) -> Option<usize> {
        if let Some(i) = self.slots.iter().position(|s| !s.used) {
            return Some(i);
        }
        let epoch = self.rule.epoch(now_ms);
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.demoted_at.is_none() && s.window.sum_at(epoch) == 0)
            .min_by_key(|(_, s)| s.window.newest)
            .map(|(i, _)| i)
    }

    /// What a deny by `rule_id` at `now_ms` would get, without counting it
    /// (the EVAL IOCTL asks this: evaluating a name denies nothing).
    pub fn peek(&self, rule_id: u32, now_ms: u64) -> Gate {
        let demoted = |by| Gate::Demoted {
            by,
            tripped_now: false,
        };
        if self.machine_demoted_at.is_some() {
            return demoted(DemotedBy::Machine);
        }
        let slot = self.find(rule_id).and_then(|i| self.slots.get(i));
        if slot.is_some_and(|s| s.demoted_at.is_some()) {
            return demoted(DemotedBy::Rule);
        }
        if !self.rule.is_off() {
            let epoch = self.rule.epoch(now_ms);
            match slot {
                Some(s) if s.window.sum_at(epoch) >= u64::from(self.rule.denies) => {
                    return demoted(DemotedBy::Rule);
                }
                Some(_) => {}
                None if self.free_slot(now_ms).is_none() => {
                    return demoted(DemotedBy::TableFull);
                }
                None => {}
            }
        }
        if !self.machine.is_off() {
            let epoch = self.machine.epoch(now_ms);
            if self.machine_window.sum_at(epoch) >= u64::from(self.machine.denies) {
                return demoted(DemotedBy::Machine);
            }
        }
        Gate::Deny
    }

    /// A block rule `rule_id` is about to deny at `now_ms`: decides whether
    /// it may, and counts it if so.
    ///
    /// # Panics
    /// Never. Allocates nothing. Linear in [`BREAKER_SLOTS`].
    pub fn on_deny(&mut self, rule_id: u32, now_ms: u64) -> Gate {
        let demoted = |by, tripped_now| Gate::Demoted { by, tripped_now };
        if self.machine_demoted_at.is_some() {
            return demoted(DemotedBy::Machine, false);
        }
        let found = self.find(rule_id);
        if found
            .and_then(|i| self.slots.get(i))
            .is_some_and(|s| s.demoted_at.is_some())
        {
            return demoted(DemotedBy::Rule, false);
        }
        // The rule's slot (none needed when the rule limit is off).
        let slot = if self.rule.is_off() {
            None
        } else {
            match found.or_else(|| self.free_slot(now_ms)) {
                Some(i) => Some(i),
                None => {
                    self.counters.table_full = self.counters.table_full.saturating_add(1);
                    return demoted(DemotedBy::TableFull, false);
                }
            }
        };
        if let Some(s) = slot.and_then(|i| self.slots.get_mut(i)) {
            if !s.used || s.rule_id != rule_id {
                *s = Slot {
                    used: true,
                    rule_id,
                    ..Slot::EMPTY
                };
            }
            let epoch = self.rule.epoch(now_ms);
            s.window.advance(epoch);
            if s.window.sum_at(epoch) >= u64::from(self.rule.denies) {
                s.demoted_at = Some(now_ms);
                self.counters.rule_trips = self.counters.rule_trips.saturating_add(1);
                return demoted(DemotedBy::Rule, true);
            }
        }
        if !self.machine.is_off() {
            let epoch = self.machine.epoch(now_ms);
            self.machine_window.advance(epoch);
            if self.machine_window.sum_at(epoch) >= u64::from(self.machine.denies) {
                self.machine_demoted_at = Some(now_ms);
                self.counters.machine_trips = self.counters.machine_trips.saturating_add(1);
                return demoted(DemotedBy::Machine, true);
            }
            self.machine_window.add();
        }
        if let Some(s) = slot.and_then(|i| self.slots.get_mut(i)) {
            s.window.add();
            s.denies = s.denies.saturating_add(1);
        }
        Gate::Deny
    }

    /// Whether `rule_id` is demoted (by its own breaker or the machine's).
    pub fn is_demoted(&self, rule_id: u32) -> bool {
        self.machine_demoted_at.is_some()
            || self
                .find(rule_id)
                .and_then(|i| self.slots.get(i))
                .is_some_and(|s| s.demoted_at.is_some())
    }

    /// When the machine-wide breaker tripped (monotonic ms), if it has.
    pub const fn machine_demoted_at(&self) -> Option<u64> {
        self.machine_demoted_at
    }

    /// The demoted rules, in slot order.
    pub fn demotions(&self) -> impl Iterator<Item = Demotion> + '_ {
        self.slots.iter().filter(|s| s.used).filter_map(|s| {
            s.demoted_at.map(|at_ms| Demotion {
                rule_id: s.rule_id,
                at_ms,
                denies: s.denies,
            })
        })
    }
}

/// Parses a breaker value of the service key (`BreakerRule`,
/// `BreakerMachine`, REG_SZ): `N/S` (more than `N` denies within `S`
/// seconds trips; both 1 to 4294967295) or `off` (case-insensitive; an
/// administrator may turn a limit off, content cannot). `None` for anything
/// else: the driver then flags the setting as not understood and uses the
/// content's limit or the default, never "off".
///
/// # Panics
/// Never. Allocates nothing.
pub fn parse_setting(s: &str) -> Option<Limit> {
    let s = s.trim();
    if s.eq_ignore_ascii_case("off") {
        return Some(Limit::OFF);
    }
    let (n, w) = s.split_once('/')?;
    let num = |t: &str| {
        let t = t.trim();
        let t = t.strip_suffix('s').unwrap_or(t);
        if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        t.parse::<u32>().ok().filter(|&v| v != 0)
    };
    Some(Limit {
        denies: num(n)?,
        window_secs: num(w)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;

    #[test]
    fn service_key_setting() {
        let l = |denies, window_secs| Limit {
            denies,
            window_secs,
        };
        assert_eq!(parse_setting("20/60"), Some(l(20, 60)));
        assert_eq!(parse_setting(" 5/10s "), Some(l(5, 10)));
        assert_eq!(parse_setting("OFF"), Some(Limit::OFF));
        assert_eq!(parse_setting("4294967295/1"), Some(l(u32::MAX, 1)));
        for bad in [
            "",
            "20",
            "/60",
            "20/",
            "0/60",
            "20/0",
            "-1/60",
            "20/60m",
            "4294967296/1",
            "x/y",
            "20/60/1",
            "+5/10",
        ] {
            assert_eq!(parse_setting(bad), None, "{bad:?}");
        }
    }

    const MIN: u64 = 60_000;

    fn settings(rule: (u32, u32), machine: (u32, u32)) -> BreakerSettings {
        BreakerSettings {
            rule: Limit {
                denies: rule.0,
                window_secs: rule.1,
            },
            machine: Limit {
                denies: machine.0,
                window_secs: machine.1,
            },
        }
    }

    fn demoted(by: DemotedBy, tripped_now: bool) -> Gate {
        Gate::Demoted { by, tripped_now }
    }

    #[test]
    fn n_denies_pass_the_next_one_trips_and_stays_demoted() {
        let mut b = Breaker::new(settings((20, 60), (0, 0)));
        let t0 = 1_000_000;
        for i in 0..20u64 {
            assert_eq!(b.on_deny(7, t0 + i * 100), Gate::Deny, "deny {i}");
        }
        assert_eq!(b.peek(7, t0 + 2_000), demoted(DemotedBy::Rule, false));
        assert_eq!(b.on_deny(7, t0 + 2_000), demoted(DemotedBy::Rule, true));
        assert!(b.is_demoted(7));
        // Demoted until reset: even an hour later, with no denies since.
        assert_eq!(b.on_deny(7, t0 + 60 * MIN), demoted(DemotedBy::Rule, false));
        // Other rules are not affected.
        assert_eq!(b.on_deny(8, t0 + 2_000), Gate::Deny);
        let d: Vec<Demotion> = b.demotions().collect();
        assert_eq!(
            d,
            [Demotion {
                rule_id: 7,
                at_ms: t0 + 2_000,
                denies: 20
            }]
        );
        assert_eq!(b.counters().rule_trips, 1);
    }

    #[test]
    fn denies_spread_thinner_than_the_limit_never_trip() {
        // 20 per 60 s: one deny every 3.1 s, for an hour.
        let mut b = Breaker::new(settings((20, 60), (0, 0)));
        let mut t = 0u64;
        for _ in 0..1_200 {
            assert_eq!(b.on_deny(1, t), Gate::Deny, "at {t}");
            t += 3_100;
        }
        assert_eq!(b.counters().rule_trips, 0);
    }

    #[test]
    fn the_window_covers_between_15_16_and_all_of_m() {
        // N = 2 per 16 s: buckets of 1 s.
        let s = settings((2, 16), (0, 0));
        // Two denies in bucket 0; the third at 15.999 s (bucket 15: a deny
        // there is measured against buckets 0-15): trips.
        let mut b = Breaker::new(s);
        assert_eq!(b.on_deny(1, 0), Gate::Deny);
        assert_eq!(b.on_deny(1, 500), Gate::Deny);
        assert_eq!(b.on_deny(1, 15_999), demoted(DemotedBy::Rule, true));
        // The third at 16.0 s: bucket 0 has left the window.
        let mut b = Breaker::new(s);
        assert_eq!(b.on_deny(1, 0), Gate::Deny);
        assert_eq!(b.on_deny(1, 999), Gate::Deny);
        assert_eq!(b.on_deny(1, 16_000), Gate::Deny);
        // ...but the first deny of bucket 1 is still in it for a deny at 16 s.
        let mut b = Breaker::new(s);
        assert_eq!(b.on_deny(1, 1_000), Gate::Deny);
        assert_eq!(b.on_deny(1, 1_001), Gate::Deny);
        assert_eq!(b.on_deny(1, 16_999), demoted(DemotedBy::Rule, true));
    }

    #[test]
    fn machine_breaker_caps_all_rules_together() {
        let mut b = Breaker::new(settings((20, 60), (30, 60)));
        let mut n = 0;
        for rule in 0..10u32 {
            for _ in 0..3 {
                assert_eq!(b.on_deny(rule, 1_000), Gate::Deny);
                n += 1;
            }
        }
        assert_eq!(n, 30);
        assert_eq!(b.on_deny(99, 1_000), demoted(DemotedBy::Machine, true));
        assert_eq!(b.on_deny(0, 90 * MIN), demoted(DemotedBy::Machine, false));
        assert!(b.is_demoted(12345));
        assert_eq!(b.counters().machine_trips, 1);
        // Reset of one rule does not lift the machine-wide demotion...
        assert_eq!(b.reset(Some(0)), 0);
        assert!(b.is_demoted(0));
        // ...a full reset does.
        assert_eq!(b.reset(None), 1);
        assert_eq!(b.on_deny(0, 90 * MIN), Gate::Deny);
    }

    #[test]
    fn reset_lifts_one_rule_and_counting_starts_again() {
        let mut b = Breaker::new(settings((2, 60), (0, 0)));
        for r in [1, 2] {
            b.on_deny(r, 0);
            b.on_deny(r, 0);
            assert_eq!(b.on_deny(r, 0), demoted(DemotedBy::Rule, true));
        }
        assert_eq!(b.reset(Some(1)), 1);
        assert_eq!(b.reset(Some(1)), 0, "nothing left to lift");
        assert!(!b.is_demoted(1) && b.is_demoted(2));
        assert_eq!(b.on_deny(1, 10), Gate::Deny);
        assert_eq!(b.on_deny(1, 10), Gate::Deny);
        assert_eq!(b.on_deny(1, 10), demoted(DemotedBy::Rule, true));
        assert_eq!(b.counters().resets, 1);
        assert_eq!(b.reset(None), 2);
        assert_eq!(b.demotions().count(), 0);
    }

    #[test]
    fn new_content_clears_demotions_and_applies_settings() {
        let mut b = Breaker::new(settings((1, 60), (0, 0)));
        b.on_deny(1, 0);
        assert_eq!(b.on_deny(1, 0), demoted(DemotedBy::Rule, true));
        b.clear(settings((3, 60), (0, 0)));
        assert!(!b.is_demoted(1));
        for _ in 0..3 {
            assert_eq!(b.on_deny(1, 5), Gate::Deny);
        }
        assert_eq!(b.on_deny(1, 5), demoted(DemotedBy::Rule, true));
        assert_eq!(b.counters().rule_trips, 2, "counters survive clear");
    }

    #[test]
    fn limits_off() {
        let mut b = Breaker::new(settings((0, 60), (0, 0)));
        for i in 0..10_000u32 {
            assert_eq!(b.on_deny(i, u64::from(i)), Gate::Deny);
        }
        let mut b = Breaker::new(settings((5, 0), (3, 60)));
        for _ in 0..3 {
            assert_eq!(b.on_deny(1, 0), Gate::Deny);
        }
        assert_eq!(b.on_deny(1, 0), demoted(DemotedBy::Machine, true));
    }

    #[test]
    fn full_table_does_not_deny_and_idle_slots_are_reused() {
        let mut b = Breaker::new(settings((5, 60), (0, 0)));
        for r in 0..BREAKER_SLOTS as u32 {
            assert_eq!(b.on_deny(r, 0), Gate::Deny);
        }
        // Every slot denied within the window: a new rule is not tracked and
        // does not deny.
        assert_eq!(b.peek(1_000, 1), demoted(DemotedBy::TableFull, false));
        assert_eq!(b.on_deny(1_000, 1), demoted(DemotedBy::TableFull, false));
        assert_eq!(b.counters().table_full, 1);
        // Known rules still deny.
        assert_eq!(b.on_deny(3, 1), Gate::Deny);
        // A minute later the idle slots are free again.
        assert_eq!(b.on_deny(1_000, MIN + 1), Gate::Deny);
        // A demoted rule keeps its slot however idle it is.
        let mut b = Breaker::new(settings((1, 1), (0, 0)));
        b.on_deny(0, 0);
        assert_eq!(b.on_deny(0, 0), demoted(DemotedBy::Rule, true));
        for r in 1..BREAKER_SLOTS as u32 {
            assert_eq!(b.on_deny(r, 10 * MIN), Gate::Deny);
        }
        assert_eq!(
            b.on_deny(500, 10 * MIN),
            demoted(DemotedBy::TableFull, false)
        );
        assert_eq!(b.on_deny(500, 20 * MIN), Gate::Deny, "reuses an idle slot");
        assert!(b.is_demoted(0), "the demoted rule kept its slot");
    }

    #[test]
    fn peek_counts_nothing() {
        let mut b = Breaker::new(settings((2, 60), (0, 0)));
        for _ in 0..100 {
            assert_eq!(b.peek(1, 0), Gate::Deny);
        }
        assert_eq!(b.on_deny(1, 0), Gate::Deny);
        assert_eq!(b.on_deny(1, 0), Gate::Deny);
        assert_eq!(b.peek(1, 0), demoted(DemotedBy::Rule, false));
        assert!(!b.is_demoted(1), "peek does not trip");
    }

    #[test]
    fn clock_going_back_counts_in_the_newest_bucket() {
        let mut b = Breaker::new(settings((2, 60), (0, 0)));
        assert_eq!(b.on_deny(1, 50_000), Gate::Deny);
        assert_eq!(b.on_deny(1, 0), Gate::Deny);
        assert_eq!(b.on_deny(1, 10), demoted(DemotedBy::Rule, true));
        // Extreme times.
        let mut b = Breaker::default();
        assert_eq!(b.on_deny(1, u64::MAX), Gate::Deny);
        assert_eq!(b.on_deny(1, 0), Gate::Deny);
        assert_eq!(b.peek(1, u64::MAX), Gate::Deny);
    }

    #[test]
    fn effective_settings_precedence() {
        let s = settings((5, 10), (50, 10));
        let c = channel_parser::EnforcementPolicy {
            monitor_first: None,
            rule_breaker: Some(channel_parser::BreakerLimit {
                denies: 5,
                window_secs: 10,
            }),
            machine_breaker: Some(channel_parser::BreakerLimit {
                denies: 50,
                window_secs: 10,
            }),
        };
        let off = Some(Limit::OFF);
        let (r, m) = effective((None, None), None);
        assert_eq!(
            (r.limit, r.source),
            (DEFAULT_SETTINGS.rule, Source::Default)
        );
        assert_eq!(
            (m.limit, m.source),
            (DEFAULT_SETTINGS.machine, Source::Default)
        );
        let (r, m) = effective((None, None), Some(c));
        assert_eq!((r.limit, r.source), (s.rule, Source::Content));
        assert_eq!((m.limit, m.source), (s.machine, Source::Content));
        assert_eq!(settings_of(r, m), s);
        let (r, m) = effective((off, None), Some(c));
        assert_eq!((r.limit, r.source), (Limit::OFF, Source::ServiceKey));
        assert_eq!(m.source, Source::Content);
        // A policy with only monitor-first periods leaves the defaults.
        let only_soak = channel_parser::EnforcementPolicy {
            monitor_first: Some([1, 2, 3]),
            ..Default::default()
        };
        assert_eq!(
            effective((None, None), Some(only_soak)).0.source,
            Source::Default
        );
        for s in [Source::Default, Source::Content, Source::ServiceKey] {
            assert_eq!(Source::from_u8(s.to_u8()), Some(s));
        }
        for d in [DemotedBy::Rule, DemotedBy::Machine, DemotedBy::TableFull] {
            assert_eq!(DemotedBy::from_u8(d.to_u8()), Some(d));
        }
        assert_eq!(std::format!("{}", DEFAULT_SETTINGS.rule), "20/60s");
        assert_eq!(std::format!("{}", Limit::OFF), "off");
    }
}
