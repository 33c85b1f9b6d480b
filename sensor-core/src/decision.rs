//! Monitor/enforce mode and the verdict for one event.
//!
//! The parser's evaluation yields the best matching rule (if any); this
//! module alone decides what the sensor does with it, so the callback path
//! and the `eval` IOCTL cannot disagree.
//!
//! [`decide_guarded`] is the whole decision. A block rule's match is denied
//! only when every guard lets it through, checked in this order, each with
//! its own decision value so that the event says what stopped the deny:
//!
//! 1. the mode: in monitor mode nothing is denied ([`Decision::Alert`]);
//! 2. the protected set ([`crate::protect`]): pipes Windows needs and the
//!    processes it cannot run without ([`Decision::Protected`]);
//! 3. the soak after new content is adopted ([`crate::soak`],
//!    [`Decision::Soak`]);
//! 4. the circuit breaker ([`crate::breaker`], [`Decision::Demoted`]).
//!
//! Only a deny that passes all four is counted by the breaker. The driver
//! supplies the time, the requestor's image in DOS form, the system root and
//! its settings; nothing here reads a clock or the registry.

use channel_format::{Action, Severity};
use channel_parser::Text;

use crate::breaker::{DemotedBy, Gate};
use crate::protect::{Protection, Requestor, SystemRoot};
use crate::ring::EventKind;

channel_format::wire_enum! {
    /// What the sensor does with a block rule.
    #[derive(Default)]
    Mode: u32 (to_u32, from_u32) {
        /// Record matches; never deny. The default: a fresh install only observes.
        #[default]
        Monitor = 0 => "monitor",
        /// Record matches and deny operations a block rule matched.
        Enforce = 1 => "enforce",
    }
}

/// The rule that decided an event, copied out of the content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RuleHit {
    /// Rule id.
    pub id: u32,
    /// What the rule asks for.
    pub action: Action,
    /// Its severity.
    pub severity: Severity,
}

channel_format::wire_enum! {
    /// The outcome for one event.
    Decision: u8 (to_u8, from_u8) {
        /// No rule matched: let it through, record nothing.
        Allow = 0 => "allow",
        /// A rule matched: record an event, let it through.
        Alert = 1 => "alert",
        /// A block rule matched in enforce mode: record an event and deny
        /// (`STATUS_ACCESS_DENIED`).
        Deny = 2 => "deny",
        /// A block rule matched in enforce mode, but the operation is on a
        /// protected pipe or by a critical process ([`crate::protect`]): record
        /// an event, let it through.
        Protected = 3 => "protected",
        /// A block rule matched in enforce mode during the soak after its
        /// content was adopted ([`crate::soak`]): record an event, let it
        /// through.
        Soak = 4 => "soak",
        /// A block rule matched in enforce mode, but the circuit breaker has
        /// demoted it ([`crate::breaker`]): record an event, let it through.
        Demoted = 5 => "demoted",
    }
}

impl Decision {
    /// Whether the event is recorded in the ring.
    pub const fn records(self) -> bool {
        !matches!(self, Decision::Allow)
    }
}

/// Decides one event from the best matching rule.
///
/// Only a known `BLOCK` action denies, and only in enforce mode: an action
/// value this build does not know (from newer content) is treated as alert,
/// so new content can never make an old sensor deny more.
pub const fn decide(mode: Mode, best: Option<RuleHit>) -> Decision {
    match best {
        None => Decision::Allow,
        Some(hit) => match (mode, hit.action.0) {
            (Mode::Enforce, 1) => Decision::Deny,
            _ => Decision::Alert,
        },
    }
}

/// What the guards look at in one event.
#[derive(Debug, Clone, Copy)]
pub struct Facts<'a> {
    /// Create or connect.
    pub kind: EventKind,
    /// The normalized pipe name.
    pub name: Text<'a>,
    /// Who asks.
    pub requestor: Requestor<'a>,
    /// The system root, for critical-process paths.
    pub system_root: SystemRoot<'a>,
}

/// The sensor's state a decision depends on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Context {
    /// Monitor or enforce.
    pub mode: Mode,
    /// Now, on the driver's monotonic millisecond clock.
    pub now_ms: u64,
    /// Block rules enforce from this monotonic time on (the end of the
    /// soak, [`crate::soak::enforce_at_ms`]); 0: no soak.
    pub enforce_at_ms: u64,
}

/// The decision for one event and what produced it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    /// What to do.
    pub decision: Decision,
    /// Why it is protected ([`Decision::Protected`]).
    pub protection: Option<Protection>,
    /// Which breaker demoted the rule ([`Decision::Demoted`]) and whether
    /// this event tripped it (then the driver also records a demotion event).
    pub demoted: Option<(DemotedBy, bool)>,
}

impl Verdict {
    const fn of(decision: Decision) -> Verdict {
        Verdict {
            decision,
            protection: None,
            demoted: None,
        }
    }
}

/// The whole decision for one event (see the module documentation for the
/// order of the guards). `gate` is asked only for a deny that passed the
/// mode, the protected set and the soak; it is the circuit breaker's
/// [`crate::breaker::Breaker::on_deny`] in the callbacks (under the
/// driver's lock) and [`crate::breaker::Breaker::peek`] for EVAL, which
/// evaluates without denying.
///
/// # Panics
/// Never. Allocates nothing. Cost: a scan of the protected set (linear in
/// the name and image lengths) only for a block rule's match in enforce mode.
pub fn decide_guarded(
    ctx: &Context,
    facts: &Facts<'_>,
    best: Option<RuleHit>,
    gate: impl FnOnce(u32, u64) -> Gate,
) -> Verdict {
    let hit = match decide(ctx.mode, best) {
        Decision::Deny => match best {
            Some(h) => h,
            None => return Verdict::of(Decision::Allow),
        },
        other => return Verdict::of(other),
    };
    if let Some(p) =
        crate::protect::check(facts.kind, facts.name, &facts.requestor, facts.system_root)
    {
        return Verdict {
            decision: Decision::Protected,
            protection: Some(p),
            demoted: None,
        };
    }
    if ctx.now_ms < ctx.enforce_at_ms {
        return Verdict::of(Decision::Soak);
    }
    match gate(hit.id, ctx.now_ms) {
        Gate::Deny => Verdict::of(Decision::Deny),
        Gate::Demoted { by, tripped_now } => Verdict {
            decision: Decision::Demoted,
            protection: None,
            demoted: Some((by, tripped_now)),
        },
    }
}

/// The decision for an event the sensor could not evaluate
/// ([`crate::work::decide_unchecked`]: deny in enforce mode, allow in
/// monitor mode), with the protected pipe names applied when the name is
/// known (`name`: the normalized name, `None` when it could not be
/// normalized): a protected pipe is never denied, not even unchecked
/// ([`Decision::Protected`]). The requestor's image is not consulted (its
/// query needs the working memory that was missing).
///
/// # Panics
/// Never. Allocates nothing.
pub fn decide_unchecked_guarded(
    mode: Mode,
    why: crate::work::Unchecked,
    name: Option<Text<'_>>,
) -> Decision {
    match crate::work::decide_unchecked(mode, why) {
        Decision::Deny if name.is_some_and(|n| crate::protect::protected_name(n).is_some()) => {
            Decision::Protected
        }
        d => d,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::breaker::{Breaker, BreakerSettings, Limit};

    #[test]
    fn unchecked_never_denies_a_protected_pipe() {
        use crate::work::Unchecked;
        let u = |mode, name: Option<&'static str>| {
            decide_unchecked_guarded(mode, Unchecked::WorkExhausted, name.map(Text::Utf8))
        };
        assert_eq!(u(Mode::Enforce, Some(r"\LSASS")), Decision::Protected);
        assert_eq!(u(Mode::Enforce, Some(r"\lsass_x")), Decision::Deny);
        assert_eq!(u(Mode::Enforce, None), Decision::Deny);
        assert_eq!(u(Mode::Monitor, Some(r"\lsass")), Decision::Allow);
        assert_eq!(u(Mode::Monitor, Some(r"\other")), Decision::Allow);
    }

    fn hit(action: Action) -> Option<RuleHit> {
        Some(RuleHit {
            id: 7,
            action,
            severity: Severity::HIGH,
        })
    }

    #[test]
    fn table() {
        assert_eq!(decide(Mode::Monitor, None), Decision::Allow);
        assert_eq!(decide(Mode::Enforce, None), Decision::Allow);
        assert_eq!(decide(Mode::Monitor, hit(Action::ALERT)), Decision::Alert);
        assert_eq!(decide(Mode::Monitor, hit(Action::BLOCK)), Decision::Alert);
        assert_eq!(decide(Mode::Enforce, hit(Action::ALERT)), Decision::Alert);
        assert_eq!(decide(Mode::Enforce, hit(Action::BLOCK)), Decision::Deny);
        assert_eq!(decide(Mode::Enforce, hit(Action(9))), Decision::Alert);
    }

    #[test]
    fn wire_values() {
        for m in [Mode::Monitor, Mode::Enforce] {
            assert_eq!(Mode::from_u32(m.to_u32()), Some(m));
        }
        assert_eq!(Mode::from_u32(2), None);
        for d in [Decision::Allow, Decision::Alert, Decision::Deny] {
            assert_eq!(Decision::from_u8(d.to_u8()), Some(d));
        }
        let all = [
            Decision::Allow,
            Decision::Alert,
            Decision::Deny,
            Decision::Protected,
            Decision::Soak,
            Decision::Demoted,
        ];
        let mut names = std::collections::BTreeSet::new();
        for d in all {
            assert_eq!(Decision::from_u8(d.to_u8()), Some(d));
            assert!(names.insert(d.name()));
            assert_eq!(d.records(), d != Decision::Allow);
        }
        assert_eq!(Decision::from_u8(6), None);
        assert_eq!(Mode::default(), Mode::Monitor);
    }

    const ROOT: SystemRoot<'static> = SystemRoot::Known(Text::Utf8(r"C:\Windows"));

    fn facts<'a>(name: &'a str, image: &'a str) -> Facts<'a> {
        Facts {
            kind: EventKind::Create,
            name: Text::Utf8(name),
            requestor: Requestor {
                image: Some(Text::Utf8(image)),
                system_process: false,
            },
            system_root: ROOT,
        }
    }

    fn ctx(mode: Mode, now_ms: u64, enforce_at_ms: u64) -> Context {
        Context {
            mode,
            now_ms,
            enforce_at_ms,
        }
    }

    const TOOL: &str = r"C:\Users\u\tool.exe";

    #[test]
    fn guards_in_order() {
        let never = |_: u32, _: u64| -> Gate { panic!("the breaker must not be asked") };
        let deny = |_: u32, _: u64| Gate::Deny;
        let block = hit(Action::BLOCK);
        let e = ctx(Mode::Enforce, 10, 0);
        // No match, alert rule, monitor mode: the breaker is not involved.
        let f = facts(r"\postex_1", TOOL);
        assert_eq!(
            decide_guarded(&e, &f, None, never).decision,
            Decision::Allow
        );
        assert_eq!(
            decide_guarded(&e, &f, hit(Action::ALERT), never).decision,
            Decision::Alert
        );
        assert_eq!(
            decide_guarded(&ctx(Mode::Monitor, 10, 0), &f, block, never).decision,
            Decision::Alert
        );
        // An unknown action never denies.
        assert_eq!(
            decide_guarded(&e, &f, hit(Action(9)), never).decision,
            Decision::Alert
        );
        assert_eq!(decide_guarded(&e, &f, block, deny).decision, Decision::Deny);
        // A protected name, even during the soak and with the breaker open.
        let v = decide_guarded(
            &ctx(Mode::Enforce, 10, 100),
            &facts(r"\LSASS", TOOL),
            block,
            never,
        );
        assert_eq!(v.decision, Decision::Protected);
        assert!(matches!(v.protection, Some(Protection::Name(p)) if p.name == r"\lsass"));
        // A critical process.
        let v = decide_guarded(
            &e,
            &facts(r"\postex_1", r"c:\windows\system32\services.exe"),
            block,
            never,
        );
        assert_eq!(v.decision, Decision::Protected);
        assert!(matches!(v.protection, Some(Protection::Image(c)) if c.file == "services.exe"));
        // The soak: alert until enforce_at, then deny.
        let s = |now| decide_guarded(&ctx(Mode::Enforce, now, 5_000), &f, block, deny).decision;
        assert_eq!(s(0), Decision::Soak);
        assert_eq!(s(4_999), Decision::Soak);
        assert_eq!(s(5_000), Decision::Deny);
        // The breaker.
        let v = decide_guarded(&e, &f, block, |id, now| {
            assert_eq!((id, now), (7, 10));
            Gate::Demoted {
                by: DemotedBy::Rule,
                tripped_now: true,
            }
        });
        assert_eq!(v.decision, Decision::Demoted);
        assert_eq!(v.demoted, Some((DemotedBy::Rule, true)));
    }

    #[test]
    fn a_runaway_rule_is_demoted_by_itself() {
        // 3 denies per minute: the 4th event within the minute is demoted
        // and so is everything after it, until reset.
        let mut b = Breaker::new(BreakerSettings {
            rule: Limit {
                denies: 3,
                window_secs: 60,
            },
            machine: Limit::OFF,
        });
        let f = facts(r"\svc_pipe", r"C:\Windows\System32\svchost.exe");
        let block = hit(Action::BLOCK);
        let mut got = std::vec::Vec::new();
        for i in 0..6u64 {
            let v = decide_guarded(&ctx(Mode::Enforce, i * 1_000, 0), &f, block, |id, now| {
                b.on_deny(id, now)
            });
            got.push(v.decision);
        }
        use Decision::{Demoted, Deny};
        assert_eq!(got, [Deny, Deny, Deny, Demoted, Demoted, Demoted]);
        // Protected and soaked matches do not count toward the breaker.
        let mut b = Breaker::new(BreakerSettings {
            rule: Limit {
                denies: 1,
                window_secs: 60,
            },
            machine: Limit::OFF,
        });
        for _ in 0..10 {
            decide_guarded(
                &ctx(Mode::Enforce, 0, 0),
                &facts(r"\samr", TOOL),
                block,
                |id, now| b.on_deny(id, now),
            );
            decide_guarded(&ctx(Mode::Enforce, 0, 1), &f, block, |id, now| {
                b.on_deny(id, now)
            });
        }
        assert!(!b.is_demoted(7));
    }
}
