//! Health events: the sensor's own state changes, written to the same sinks
//! as pipe events, each with its own id ([`crate::ids`]).
//!
//! Most come from comparing two snapshots of the driver's STATUS and
//! ROLLOUT answers ([`diff`]); the service takes one when it connects and
//! then every few seconds. Lost events come from the EVENTS_V2 batches
//! ([`crate::pipeline`]); service start/stop and driver (un)availability
//! from the service itself.
//!
//! What the first snapshot after connecting reports: the active content
//! (`ContentAdopted` with `PreviousSequence` null), the last load failure
//! if any (`ContentRejected`), every quarantined sequence — so a SIEM knows
//! the state even when the service was down while it changed. Rollout
//! verdicts are reported only when they change.

use crate::ids::{self, EventDef};
use crate::record::{Out, Value};
use crate::utc::sysmon_utc;
use sensor_core::proto::{
    EnforcementStatus, LoadFailure, Origin, RolloutStatus, Status, ENFORCEMENT_FLAG_MACHINE_DEMOTED,
};

/// One health event.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Health {
    /// The service started.
    ServiceStarted {
        /// Its version.
        version: String,
        /// Where it writes JSON lines.
        json_path: String,
    },
    /// The service stopped.
    ServiceStopped {
        /// Why (stop request, shutdown, error).
        reason: String,
        /// Pipe events written since it started.
        written: u64,
        /// Pipe events the driver lost while it ran.
        lost: u64,
    },
    /// The driver's control device answered.
    DriverConnected {
        /// The device path.
        device: String,
        /// Events the driver recorded since it started.
        in_driver: u64,
    },
    /// The driver cannot be reached.
    DriverUnavailable {
        /// The device path.
        device: String,
        /// The error.
        error: String,
    },
    /// Content became active.
    ContentAdopted {
        /// Its sequence.
        sequence: u64,
        /// The sequence active before (`None`: first report after connecting).
        previous: Option<u64>,
        /// Rules in it.
        rules: u32,
        /// `disk` or `ioctl`.
        origin: &'static str,
        /// SHA-256, hex.
        sha256: String,
    },
    /// Content was refused.
    ContentRejected {
        /// Its sequence (0: unknown).
        sequence: u64,
        /// `disk` or `ioctl`.
        origin: &'static str,
        /// `proto::failure` code.
        code: u32,
        /// Byte offset of a parse error.
        offset: Option<u32>,
        /// The parser's or loader's reason.
        reason: String,
    },
    /// Content was quarantined.
    ContentQuarantined {
        /// Its sequence.
        sequence: u64,
    },
    /// The rollout verdict on a content file changed.
    RolloutVerdict {
        /// The file's sequence.
        sequence: u64,
        /// The verdict (`adopted`, `share`, `ring`, ...).
        verdict: &'static str,
        /// The verdict before (`None`: the file is new).
        previous: Option<&'static str>,
        /// Why, in words.
        why: String,
    },
    /// Events were overwritten in the driver's ring before they were read.
    EventsLost {
        /// Lost since the last report.
        lost: u64,
        /// Lost since the driver started.
        total_lost: u64,
        /// Recorded since the driver started.
        in_driver: u64,
    },
    /// A rule was demoted (issue 15's circuit breaker).
    RuleDemoted {
        /// The rule.
        rule_id: u32,
        /// The content it is in.
        sequence: u64,
        /// Why.
        reason: String,
    },
}

fn origin_name(o: Origin) -> &'static str {
    match o {
        Origin::None => "none",
        Origin::Disk => "disk",
        Origin::Ioctl => "ioctl",
    }
}

fn s(v: impl Into<String>) -> Value {
    Value::Str(v.into())
}

impl Health {
    /// The definition it is written under.
    pub fn def(&self) -> &'static EventDef {
        match self {
            Health::ServiceStarted { .. } => &ids::SERVICE_STARTED,
            Health::ServiceStopped { .. } => &ids::SERVICE_STOPPED,
            Health::DriverConnected { .. } => &ids::DRIVER_CONNECTED,
            Health::DriverUnavailable { .. } => &ids::DRIVER_UNAVAILABLE,
            Health::ContentAdopted { .. } => &ids::CONTENT_ADOPTED,
            Health::ContentRejected { .. } => &ids::CONTENT_REJECTED,
            Health::ContentQuarantined { .. } => &ids::CONTENT_QUARANTINED,
            Health::RolloutVerdict { .. } => &ids::ROLLOUT_VERDICT,
            Health::EventsLost { .. } => &ids::EVENTS_LOST,
            Health::RuleDemoted { .. } => &ids::RULE_DEMOTED,
        }
    }

    /// The event, stamped `now` (FILETIME).
    pub fn out(&self, now: u64) -> Out {
        let def = self.def();
        let mut v = vec![("EventType", s(def.name)), ("UtcTime", s(sysmon_utc(now)))];
        match self {
            Health::ServiceStarted { version, json_path } => {
                v.push(("Version", s(version.clone())));
                v.push(("JsonPath", s(json_path.clone())));
            }
            Health::ServiceStopped {
                reason,
                written,
                lost,
            } => {
                v.push(("Reason", s(reason.clone())));
                v.push(("EventsWritten", Value::Num(*written)));
                v.push(("EventsLost", Value::Num(*lost)));
            }
            Health::DriverConnected { device, in_driver } => {
                v.push(("Device", s(device.clone())));
                v.push(("EventsInDriver", Value::Num(*in_driver)));
            }
            Health::DriverUnavailable { device, error } => {
                v.push(("Device", s(device.clone())));
                v.push(("Error", s(error.clone())));
            }
            Health::ContentAdopted {
                sequence,
                previous,
                rules,
                origin,
                sha256,
            } => {
                v.push(("ContentSequence", Value::Num(*sequence)));
                v.push(("PreviousSequence", previous.map_or(Value::Null, Value::Num)));
                v.push(("Rules", Value::Num(u64::from(*rules))));
                v.push(("Origin", s(*origin)));
                v.push(("Sha256", s(sha256.clone())));
            }
            Health::ContentRejected {
                sequence,
                origin,
                code,
                offset,
                reason,
            } => {
                v.push(("ContentSequence", Value::Num(*sequence)));
                v.push(("Origin", s(*origin)));
                v.push(("Code", Value::Num(u64::from(*code))));
                v.push((
                    "Offset",
                    offset.map_or(Value::Null, |o| Value::Num(u64::from(o))),
                ));
                v.push(("Reason", s(reason.clone())));
            }
            Health::ContentQuarantined { sequence } => {
                v.push(("ContentSequence", Value::Num(*sequence)));
            }
            Health::RolloutVerdict {
                sequence,
                verdict,
                previous,
                why,
            } => {
                v.push(("ContentSequence", Value::Num(*sequence)));
                v.push(("Verdict", s(*verdict)));
                v.push(("PreviousVerdict", previous.map_or(Value::Null, s)));
                v.push(("Why", s(why.clone())));
            }
            Health::EventsLost {
                lost,
                total_lost,
                in_driver,
            } => {
                v.push(("Lost", Value::Num(*lost)));
                v.push(("TotalLost", Value::Num(*total_lost)));
                v.push(("EventsInDriver", Value::Num(*in_driver)));
            }
            Health::RuleDemoted {
                rule_id,
                sequence,
                reason,
            } => {
                v.push(("RuleId", Value::Num(u64::from(*rule_id))));
                v.push(("ContentSequence", Value::Num(*sequence)));
                v.push(("Reason", s(reason.clone())));
            }
        }
        Out::new(def, v)
    }
}

/// What the service knows of the driver at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// STATUS.
    pub status: Status,
    /// ROLLOUT (`None`: a driver without it).
    pub rollout: Option<RolloutStatus>,
    /// ENFORCEMENT (`None`: a driver without it; issue 15).
    pub enforcement: Option<EnforcementStatus>,
}

/// `RuleDemoted` for every demotion in `cur` that `prev` did not have (by
/// rule and moment), and for the machine-wide breaker when it tripped
/// (rule id 0).
fn demotions(prev: Option<&EnforcementStatus>, cur: &EnforcementStatus, out: &mut Vec<Health>) {
    for d in cur.demotions() {
        if prev.is_none_or(|p| !p.demotions().contains(d)) {
            out.push(Health::RuleDemoted {
                rule_id: d.rule_id,
                sequence: cur.sequence,
                reason: format!(
                    "per-rule circuit breaker: more than {} denies within {} s ({} performed); block rule alerts until new content or pipectl driver breaker reset {}",
                    cur.rule.limit.denies, cur.rule.limit.window_secs, d.denies, d.rule_id
                ),
            });
        }
    }
    let tripped = |e: &EnforcementStatus| {
        (e.flags & ENFORCEMENT_FLAG_MACHINE_DEMOTED != 0).then_some(e.machine_demoted_at_ms)
    };
    if let Some(at) = tripped(cur) {
        if prev.is_none_or(|p| tripped(p) != Some(at)) {
            out.push(Health::RuleDemoted {
                rule_id: 0,
                sequence: cur.sequence,
                reason: format!(
                    "machine-wide circuit breaker: more than {} denies within {} s; every block rule alerts until new content or pipectl driver breaker reset",
                    cur.machine.limit.denies, cur.machine.limit.window_secs
                ),
            });
        }
    }
}

fn rejected(f: &LoadFailure) -> Health {
    Health::ContentRejected {
        sequence: f.sequence,
        origin: origin_name(f.origin),
        code: f.code,
        offset: (f.offset != u32::MAX).then_some(f.offset),
        reason: f.message.as_str().to_string(),
    }
}

fn hex(d: &[u8]) -> String {
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// The health events between `prev` (`None`: the first snapshot after
/// connecting) and `cur`.
pub fn diff(prev: Option<&Snapshot>, cur: &Snapshot) -> Vec<Health> {
    let mut out = Vec::new();
    let (s, p) = (&cur.status, prev.map(|p| &p.status));
    let a = &s.active;
    if a.sequence != 0 && p.is_none_or(|p| p.active != *a) {
        out.push(Health::ContentAdopted {
            sequence: a.sequence,
            previous: p.map(|p| p.active.sequence),
            rules: a.rule_count,
            origin: origin_name(a.origin),
            sha256: hex(&a.digest),
        });
    }
    let failed = match p {
        None => s.last_error.origin != Origin::None,
        Some(p) => {
            s.counters.loads_failed != p.counters.loads_failed || s.last_error != p.last_error
        }
    };
    if failed && s.last_error.origin != Origin::None {
        out.push(rejected(&s.last_error));
    }
    for &q in s.quarantined.iter().filter(|&&q| q != 0) {
        if p.is_none_or(|p| !p.quarantined.contains(&q)) {
            out.push(Health::ContentQuarantined { sequence: q });
        }
    }
    if let Some(e) = &cur.enforcement {
        demotions(prev.and_then(|p| p.enforcement.as_ref()), e, &mut out);
    }
    if let (Some(r), Some(pr)) = (&cur.rollout, prev.and_then(|p| p.rollout.as_ref())) {
        for f in r.files() {
            let before = pr.files().iter().find(|x| x.sequence == f.sequence);
            if before.is_none_or(|b| b.reason.name() != f.reason.name()) {
                out.push(Health::RolloutVerdict {
                    sequence: f.sequence,
                    verdict: f.reason.name(),
                    previous: before.map(|b| b.reason.name()),
                    why: f.reason.to_string(),
                });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use sensor_core::decision::Mode;
    use sensor_core::proto::{failure, ContentInfo, Counters, FixedText, RolloutFile};
    use sensor_core::rollout::Reason;

    fn status(active: u64) -> Status {
        Status {
            mode: Mode::Monitor,
            flags: 0,
            active: ContentInfo {
                sequence: active,
                rule_count: 3,
                len: 100,
                origin: Origin::Disk,
                digest: [0xab; 32],
            },
            lkg: ContentInfo::NONE,
            quarantined: [0; 4],
            pending: 0,
            start_count: 0,
            max_failed: 3,
            proven: 0,
            counters: Counters::default(),
            last_error: LoadFailure::none(),
        }
    }

    fn snap(s: Status) -> Snapshot {
        Snapshot {
            status: s,
            rollout: None,
            enforcement: None,
        }
    }

    #[test]
    fn first_snapshot_reports_the_state() {
        let mut s = status(5);
        s.quarantined = [7, 0, 0, 0];
        s.last_error = LoadFailure {
            origin: Origin::Ioctl,
            sequence: 9,
            code: failure::PARSE,
            offset: 40,
            message: FixedText::new("rule 3 reads field 21, which the sensor does not supply"),
        };
        let h = diff(None, &snap(s));
        assert_eq!(h.len(), 3, "{h:?}");
        assert!(matches!(
            h[0],
            Health::ContentAdopted {
                sequence: 5,
                previous: None,
                rules: 3,
                ..
            }
        ));
        assert!(
            matches!(&h[1], Health::ContentRejected { sequence: 9, code: 1, offset: Some(40), reason, .. } if reason.contains("field 21"))
        );
        assert_eq!(h[2], Health::ContentQuarantined { sequence: 7 });
        // Nothing changed: nothing reported.
        assert!(diff(Some(&snap(s)), &snap(s)).is_empty());
    }

    #[test]
    fn changes_are_reported_once() {
        let a = status(5);
        let mut b = status(6);
        b.counters.loads_failed = 1;
        b.last_error = LoadFailure {
            origin: Origin::Disk,
            sequence: 8,
            code: failure::TAMPERED,
            offset: u32::MAX,
            message: FixedText::new("signature does not verify"),
        };
        b.quarantined = [4, 0, 0, 0];
        let h = diff(Some(&snap(a)), &snap(b));
        assert!(matches!(
            h[0],
            Health::ContentAdopted {
                sequence: 6,
                previous: Some(5),
                ..
            }
        ));
        assert!(matches!(
            h[1],
            Health::ContentRejected {
                sequence: 8,
                offset: None,
                ..
            }
        ));
        assert_eq!(h[2], Health::ContentQuarantined { sequence: 4 });
        // The same failure again (same text, counter moved): reported again.
        let mut c = b;
        c.counters.loads_failed = 2;
        assert_eq!(diff(Some(&snap(b)), &snap(c)).len(), 1);
    }

    #[test]
    fn demotions_are_reported_once() {
        use sensor_core::breaker::Demotion;
        let with = |e: Option<EnforcementStatus>| Snapshot {
            status: status(8),
            rollout: None,
            enforcement: e,
        };
        let mut e1 = EnforcementStatus::EMPTY;
        e1.sequence = 8;
        e1.rule.limit.denies = 20;
        e1.rule.limit.window_secs = 60;
        let a = with(Some(e1));
        assert!(diff(Some(&a), &a).is_empty());
        let mut e2 = e1;
        e2.demoted_count = 1;
        e2.demotions[0] = Demotion {
            rule_id: 1001,
            at_ms: 5_000,
            denies: 20,
        };
        let b = with(Some(e2));
        let h = diff(Some(&a), &b);
        assert_eq!(h.len(), 1, "{h:?}");
        let Health::RuleDemoted {
            rule_id,
            sequence,
            reason,
        } = &h[0]
        else {
            panic!("{h:?}")
        };
        assert_eq!((*rule_id, *sequence), (1001, 8));
        assert!(
            reason.contains("more than 20 denies within 60 s"),
            "{reason}"
        );
        let j = h[0].out(0).json_line();
        assert!(
            j.contains("\"EventID\":115") && j.contains("\"RuleId\":1001"),
            "{j}"
        );
        // Still demoted: not reported again; reset and demoted again later: reported.
        assert!(diff(Some(&b), &b).is_empty());
        let mut e3 = e2;
        e3.demotions[0].at_ms = 9_000;
        assert_eq!(diff(Some(&b), &with(Some(e3))).len(), 1);
        // The machine-wide breaker: rule id 0, once.
        let mut e4 = e2;
        e4.flags |= ENFORCEMENT_FLAG_MACHINE_DEMOTED;
        e4.machine_demoted_at_ms = 7_000;
        let c = with(Some(e4));
        let h = diff(Some(&b), &c);
        assert!(
            matches!(&h[..], [Health::RuleDemoted { rule_id: 0, reason, .. }] if reason.contains("machine-wide")),
            "{h:?}"
        );
        assert!(diff(Some(&c), &c).is_empty());
        // A driver without ENFORCEMENT: nothing.
        assert!(diff(Some(&a), &with(None)).is_empty());
    }

    #[test]
    fn rollout_verdict_changes() {
        let mut r1 = RolloutStatus::EMPTY;
        r1.count = 2;
        r1.files[0] = RolloutFile {
            sequence: 9,
            reason: Reason::Share {
                bucket_milli: 50_000,
                percent_milli: 5_000,
            },
        };
        r1.files[1] = RolloutFile {
            sequence: 8,
            reason: Reason::Adopted,
        };
        let mut r2 = r1;
        r2.files[0].reason = Reason::Adopted;
        r2.files[1].reason = Reason::Kept;
        let a = Snapshot {
            status: status(8),
            rollout: Some(r1),
            enforcement: None,
        };
        let b = Snapshot {
            status: status(8),
            rollout: Some(r2),
            enforcement: None,
        };
        let h = diff(Some(&a), &b);
        assert_eq!(h.len(), 2, "{h:?}");
        assert!(matches!(
            h[0],
            Health::RolloutVerdict {
                sequence: 9,
                verdict: "adopted",
                previous: Some("share"),
                ..
            }
        ));
        assert!(diff(None, &b)
            .iter()
            .all(|h| !matches!(h, Health::RolloutVerdict { .. })));
    }

    #[test]
    fn every_health_event_fills_its_definition() {
        let all = [
            Health::ServiceStarted {
                version: "1".into(),
                json_path: "x".into(),
            },
            Health::ServiceStopped {
                reason: "stop".into(),
                written: 1,
                lost: 2,
            },
            Health::DriverConnected {
                device: "d".into(),
                in_driver: 3,
            },
            Health::DriverUnavailable {
                device: "d".into(),
                error: "e".into(),
            },
            Health::ContentAdopted {
                sequence: 1,
                previous: Some(0),
                rules: 2,
                origin: "disk",
                sha256: "ab".into(),
            },
            Health::ContentRejected {
                sequence: 1,
                origin: "disk",
                code: 1,
                offset: Some(3),
                reason: "r".into(),
            },
            Health::ContentQuarantined { sequence: 1 },
            Health::RolloutVerdict {
                sequence: 1,
                verdict: "adopted",
                previous: Some("share"),
                why: "w".into(),
            },
            Health::EventsLost {
                lost: 1,
                total_lost: 2,
                in_driver: 3,
            },
            Health::RuleDemoted {
                rule_id: 1,
                sequence: 2,
                reason: "r".into(),
            },
        ];
        let mut ids: Vec<u16> = all.iter().map(|h| h.def().id).collect();
        ids.dedup();
        assert_eq!(ids.len(), all.len());
        assert_eq!(
            ids.len() + 2,
            crate::ids::ALL.len(),
            "every health id has a variant"
        );
        for h in &all {
            let o = h.out(crate::utc::FILETIME_UNIX_EPOCH);
            assert!(o.values.iter().all(|v| *v != Value::Null), "{h:?}");
            let v: serde_json::Value = serde_json::from_str(&o.json_line()).unwrap();
            assert_eq!(v["EventType"], o.def.name);
            assert_eq!(v["UtcTime"], "1970-01-01 00:00:00.000");
        }
    }
}
