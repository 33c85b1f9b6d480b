//! One event as every sink writes it ([`Out`]), and the Sysmon 17/18 shape
//! of a pipe event ([`pipe_event`]).
//!
//! JSON line (keys in this order; `ImageTruncated` only when the image was
//! cut; `Image`, `User`, `UserSid` are `null` when unknown):
//!
//! ```text
//! {"EventID":17,"RuleName":"…","EventType":"CreatePipe","UtcTime":"2026-12-02 13:01:02.345",
//!  "ProcessGuid":"{…}","ProcessId":4242,"PipeName":"\\postex_1234","Image":"C:\\x.exe",
//!  "User":"DOMAIN\\name","RuleId":1001,"Decision":"alert","Action":"alert","Severity":"high",
//!  "ContentSequence":42,"UserSid":"S-1-5-21-…","RecordId":7}
//! ```
//!
//! `pipectl replay` reads these lines as they are (the flat Sysmon shape:
//! `EventID`, `PipeName`, `Image`, `ProcessId`, `UtcTime`).

use crate::ids::{self, EventDef, Level};
use crate::utc::sysmon_utc;
use sensor_core::decision::Decision;
use sensor_core::event::{PipeEvent, FLAG_IMAGE_CUT, FLAG_NO_IMAGE};
use serde_json::Value as Json;

/// A field value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// Text.
    Str(String),
    /// An unsigned number (JSON number; decimal in the Event Log).
    Num(u64),
    /// Unknown (JSON `null`; `-` in the Event Log, as Sysmon writes).
    Null,
    /// A flag (JSON `true`/`false`).
    Bool(bool),
}

impl Value {
    fn json(&self) -> Json {
        match self {
            Value::Str(s) => Json::String(s.clone()),
            Value::Num(n) => Json::from(*n),
            Value::Null => Json::Null,
            Value::Bool(b) => Json::Bool(*b),
        }
    }

    /// The Event Log insertion string.
    pub fn text(&self) -> String {
        match self {
            Value::Str(s) => s.clone(),
            Value::Num(n) => n.to_string(),
            Value::Null => "-".to_string(),
            Value::Bool(b) => b.to_string(),
        }
    }
}

/// One event for every sink: its definition, its level and one value per
/// field of the definition, in order; `extra` goes to JSON only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Out {
    /// What it is.
    pub def: &'static EventDef,
    /// Its level (may be raised above the definition's default).
    pub level: Level,
    /// One value per `def.fields` entry.
    pub values: Vec<Value>,
    /// JSON-only fields, after the others.
    pub extra: Vec<(&'static str, Value)>,
}

impl Out {
    /// An event of `def` whose values are given by name; every field of the
    /// definition must be given exactly once (checked: a missing field
    /// is written as `null`, and tests catch it).
    pub fn new(def: &'static EventDef, named: Vec<(&'static str, Value)>) -> Out {
        let values = def
            .fields
            .iter()
            .map(|f| {
                named
                    .iter()
                    .find(|(k, _)| k == f)
                    .map_or(Value::Null, |(_, v)| v.clone())
            })
            .collect();
        debug_assert!(named.iter().all(|(k, _)| def.fields.contains(k)));
        Out {
            def,
            level: def.level,
            values,
            extra: Vec::new(),
        }
    }

    /// The value of `field`.
    pub fn get(&self, field: &str) -> Option<&Value> {
        self.def
            .fields
            .iter()
            .position(|f| *f == field)
            .and_then(|i| self.values.get(i))
            .or_else(|| self.extra.iter().find(|(k, _)| *k == field).map(|(_, v)| v))
    }

    /// The JSON line (no newline): `EventID`, then the fields in order,
    /// then the extras.
    pub fn json_line(&self) -> String {
        let mut s = String::with_capacity(512);
        s.push_str("{\"EventID\":");
        s.push_str(&self.def.id.to_string());
        let fields = self.def.fields.iter().copied().zip(self.values.iter());
        let extra = self.extra.iter().map(|(k, v)| (*k, v));
        for (k, v) in fields.chain(extra) {
            s.push(',');
            s.push_str(&Json::String(k.to_string()).to_string());
            s.push(':');
            s.push_str(&v.json().to_string());
        }
        s.push('}');
        s
    }

    /// The Event Log insertion strings (`%1`..), one per field.
    pub fn strings(&self) -> Vec<String> {
        self.values.iter().map(Value::text).collect()
    }
}

/// The name of a decision wire value; values this build does not know
/// (newer drivers) are written as `decision-N`.
pub fn decision_name(v: u8) -> String {
    Decision::from_u8(v).map_or_else(|| format!("decision-{v}"), |d| d.name().to_string())
}

fn known_or(name: Option<&'static str>, what: &str, v: u8) -> String {
    name.map_or_else(|| format!("{what}-{v}"), str::to_string)
}

/// The Sysmon 17/18 shape of a pipe event. `user` is the resolved
/// `DOMAIN\name` (or the SID string when it did not resolve); `None` when
/// the event carries no SID.
pub fn pipe_event(e: &PipeEvent, user: Option<&str>) -> Out {
    let (def, event_type) = match e.kind {
        2 => (&ids::PIPE_CONNECTED, "ConnectPipe".to_string()),
        1 => (&ids::PIPE_CREATED, "CreatePipe".to_string()),
        k => (&ids::PIPE_CREATED, format!("kind-{k}")),
    };
    let image = if e.flags & FLAG_NO_IMAGE != 0 {
        Value::Null
    } else {
        Value::Str(String::from_utf16_lossy(e.image()))
    };
    let (user, sid) = if e.sid.is_none() {
        (Value::Null, Value::Null)
    } else {
        let sid = e.sid.to_string();
        (
            Value::Str(user.map_or_else(|| sid.clone(), str::to_string)),
            Value::Str(sid),
        )
    };
    let mut out = Out::new(
        def,
        vec![
            ("RuleName", Value::Str(e.rule_name.as_str().to_string())),
            ("EventType", Value::Str(event_type)),
            ("UtcTime", Value::Str(sysmon_utc(e.time))),
            ("ProcessGuid", Value::Str(e.process_guid.to_string())),
            ("ProcessId", Value::Num(e.pid.into())),
            ("PipeName", Value::Str(String::from_utf16_lossy(e.name()))),
            ("Image", image),
            ("User", user),
            ("RuleId", Value::Num(e.rule_id.into())),
            ("Decision", Value::Str(decision_name(e.decision))),
            (
                "Action",
                Value::Str(known_or(
                    channel_format::Action(e.action).name(),
                    "action",
                    e.action,
                )),
            ),
            (
                "Severity",
                Value::Str(known_or(
                    channel_format::Severity(e.severity).name(),
                    "severity",
                    e.severity,
                )),
            ),
            ("ContentSequence", Value::Num(e.sequence)),
            ("UserSid", sid),
            ("RecordId", Value::Num(e.id)),
        ],
    );
    if Decision::from_u8(e.decision) == Some(Decision::Deny) {
        out.level = Level::Warning;
    }
    if e.flags & FLAG_IMAGE_CUT != 0 {
        out.extra.push(("ImageTruncated", Value::Bool(true)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use sensor_core::event::Sid;
    use sensor_core::proto::FixedText;

    fn w(s: &str) -> Vec<u16> {
        s.encode_utf16().collect()
    }

    pub(crate) fn sample(kind: u8, decision: u8) -> PipeEvent {
        let mut e = PipeEvent::EMPTY;
        e.id = 7;
        e.time = crate::utc::filetime_from_unix(1_721_362_140, 345_000_000);
        e.pid = 4242;
        e.kind = kind;
        e.decision = decision;
        e.action = 1;
        e.severity = 3;
        e.rule_id = 1001;
        e.sequence = 42;
        e.rule_name = FixedText::new("CobaltStrike \"postex\" pipe");
        e.set_name(&w(r"\postex_1234"));
        e.set_image(Some(&w(r"C:\Users\bob\x.exe")));
        let mut sid = vec![1u8, 5, 0, 0, 0, 0, 0, 5];
        for s in [21u32, 1, 2, 3, 1001] {
            sid.extend_from_slice(&s.to_le_bytes());
        }
        e.set_sid(Some(Sid::from_bytes(&sid).unwrap()), false);
        e.set_process(0, 0x01d9_0000_0000_0001);
        e
    }

    #[test]
    fn sysmon_shape_of_a_created_pipe() {
        let out = pipe_event(&sample(1, 1), Some(r"CORP\bob"));
        let line = out.json_line();
        assert_eq!(
            line,
            r#"{"EventID":17,"RuleName":"CobaltStrike \"postex\" pipe","EventType":"CreatePipe","UtcTime":"2024-07-19 04:09:00.345","ProcessGuid":"{00000000-01d9-0000-0000-000100001092}","ProcessId":4242,"PipeName":"\\postex_1234","Image":"C:\\Users\\bob\\x.exe","User":"CORP\\bob","RuleId":1001,"Decision":"alert","Action":"block","Severity":"high","ContentSequence":42,"UserSid":"S-1-5-21-1-2-3-1001","RecordId":7}"#
        );
        // It is one valid JSON object whatever the text holds.
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["PipeName"], r"\postex_1234");
        assert_eq!(out.level, Level::Informational);
        assert_eq!(
            out.strings()[..2],
            ["CobaltStrike \"postex\" pipe", "CreatePipe"]
        );
    }

    #[test]
    fn connect_deny_unknown_values_and_missing_parts() {
        let mut e = sample(2, 2);
        e.set_image(None);
        e.set_sid(None, false);
        let out = pipe_event(&e, Some("ignored"));
        let v: serde_json::Value = serde_json::from_str(&out.json_line()).unwrap();
        assert_eq!(v["EventID"], 18);
        assert_eq!(v["EventType"], "ConnectPipe");
        assert_eq!(v["Decision"], "deny");
        assert!(v["Image"].is_null() && v["User"].is_null() && v["UserSid"].is_null());
        assert_eq!(out.level, Level::Warning);
        assert_eq!(out.get("Image").map(Value::text).as_deref(), Some("-"));
        // Issue 15's guard decisions are named; a decision value from a
        // newer driver and unknown action/severity values are carried, not
        // dropped.
        for (v, name) in [(3, "protected"), (4, "soak"), (5, "demoted")] {
            let j: serde_json::Value =
                serde_json::from_str(&pipe_event(&sample(1, v), None).json_line()).unwrap();
            assert_eq!(j["Decision"], name);
        }
        let mut e = sample(1, 9);
        e.action = 9;
        e.severity = 8;
        let v: serde_json::Value = serde_json::from_str(&pipe_event(&e, None).json_line()).unwrap();
        assert_eq!(v["Decision"], "decision-9");
        assert_eq!(v["Action"], "action-9");
        assert_eq!(v["Severity"], "severity-8");
        // No resolved name: the SID string stands in.
        assert_eq!(v["User"], "S-1-5-21-1-2-3-1001");
    }

    #[test]
    fn cut_image_is_flagged() {
        let mut e = sample(1, 1);
        let long: Vec<u16> =
            std::iter::repeat_n(0x61, sensor_core::event::IMAGE_UNITS + 1).collect();
        e.set_image(Some(&long));
        let v: serde_json::Value = serde_json::from_str(&pipe_event(&e, None).json_line()).unwrap();
        assert_eq!(v["ImageTruncated"], true);
        assert_eq!(
            v["Image"].as_str().map(str::len),
            Some(sensor_core::event::IMAGE_UNITS)
        );
    }

    #[test]
    fn every_field_of_the_definition_is_written() {
        let out = pipe_event(&sample(1, 1), None);
        assert_eq!(out.values.len(), out.def.fields.len());
        assert!(out.values.iter().all(|v| *v != Value::Null));
    }
}
