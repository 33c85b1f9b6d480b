//! Monitor/enforce mode and the verdict for one event.
//!
//! The parser's evaluation yields the best matching rule (if any); this
//! module alone decides what the sensor does with it, so the callback path
//! and the `eval` IOCTL cannot disagree.

use channel_format::{Action, Severity};

/// What the sensor does with a block rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// Record matches; never deny. The default: a fresh install only observes.
    #[default]
    Monitor,
    /// Record matches and deny operations a block rule matched.
    Enforce,
}

impl Mode {
    /// Wire value (IOCTL and registry `Mode` value).
    pub const fn to_u32(self) -> u32 {
        match self {
            Mode::Monitor => 0,
            Mode::Enforce => 1,
        }
    }
    /// From a wire value; unknown values are `None`.
    pub const fn from_u32(v: u32) -> Option<Mode> {
        match v {
            0 => Some(Mode::Monitor),
            1 => Some(Mode::Enforce),
            _ => None,
        }
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

/// The outcome for one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// No rule matched: let it through, record nothing.
    Allow,
    /// A rule matched: record an event, let it through.
    Alert,
    /// A block rule matched in enforce mode: record an event and deny
    /// (`STATUS_ACCESS_DENIED`).
    Deny,
}

impl Decision {
    /// Wire value.
    pub const fn to_u8(self) -> u8 {
        match self {
            Decision::Allow => 0,
            Decision::Alert => 1,
            Decision::Deny => 2,
        }
    }
    /// From a wire value.
    pub const fn from_u8(v: u8) -> Option<Decision> {
        match v {
            0 => Some(Decision::Allow),
            1 => Some(Decision::Alert),
            2 => Some(Decision::Deny),
            _ => None,
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(Decision::from_u8(3), None);
        assert!(
            !Decision::Allow.records() && Decision::Alert.records() && Decision::Deny.records()
        );
        assert_eq!(Mode::default(), Mode::Monitor);
    }
}
