//! The event-id table: every event the sensor writes, with its id, name,
//! level and fields in order. The JSON lines, the Event Log message file
//! (`service/messages.mc`, checked against this table by a test) and the
//! ETW events are all built from it; nothing else spells an id.
//!
//! Pipe events keep Sysmon's ids (17 created, 18 connected) and Sysmon's
//! field order (`RuleName`, `EventType`, `UtcTime`, `ProcessGuid`,
//! `ProcessId`, `PipeName`, `Image`, `User`), so the Event Log's insertion
//! strings `%1`..`%8` are where a Sysmon parser looks for them; the sensor's
//! own fields follow. Health events use ids from 100 on (Sysmon uses 1–29
//! and 255).

/// Event level (the Event Log's type, ETW's level).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// `EVENTLOG_INFORMATION_TYPE`, ETW level 4.
    Informational,
    /// `EVENTLOG_WARNING_TYPE`, ETW level 3.
    Warning,
    /// `EVENTLOG_ERROR_TYPE`, ETW level 2.
    Error,
}

impl Level {
    /// The `.mc` severity name.
    pub const fn mc_severity(self) -> &'static str {
        match self {
            Level::Informational => "Informational",
            Level::Warning => "Warning",
            Level::Error => "Error",
        }
    }
}

/// One event's definition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventDef {
    /// `EventID` (JSON), the message id (Event Log), the ETW event id.
    pub id: u16,
    /// The event's name (ETW event name; `EventType` of health events).
    pub name: &'static str,
    /// The first line of the Event Log message.
    pub title: &'static str,
    /// Default level (a pipe event that was denied is written as a warning).
    pub level: Level,
    /// Field names in order: JSON keys after `EventID`, the Event Log's
    /// insertion strings `%1`, `%2`, ...
    pub fields: &'static [&'static str],
}

/// Fields of both pipe events (Sysmon's eight, then the sensor's).
pub const PIPE_FIELDS: &[&str] = &[
    "RuleName",
    "EventType",
    "UtcTime",
    "ProcessGuid",
    "ProcessId",
    "PipeName",
    "Image",
    "User",
    "RuleId",
    "Decision",
    "Action",
    "Severity",
    "ContentSequence",
    "UserSid",
    "RecordId",
];

/// Sysmon 17: a pipe was created (`EventType` CreatePipe).
pub const PIPE_CREATED: EventDef = EventDef {
    id: 17,
    name: "PipeCreated",
    title: "Pipe Created:",
    level: Level::Informational,
    fields: PIPE_FIELDS,
};
/// Sysmon 18: a client connected to a pipe (`EventType` ConnectPipe).
pub const PIPE_CONNECTED: EventDef = EventDef {
    id: 18,
    name: "PipeConnected",
    title: "Pipe Connected:",
    level: Level::Informational,
    fields: PIPE_FIELDS,
};
/// The service started.
pub const SERVICE_STARTED: EventDef = EventDef {
    id: 100,
    name: "ServiceStarted",
    title: "Pipe sensor event service started:",
    level: Level::Informational,
    fields: &["EventType", "UtcTime", "Version", "JsonPath"],
};
/// The service stopped.
pub const SERVICE_STOPPED: EventDef = EventDef {
    id: 101,
    name: "ServiceStopped",
    title: "Pipe sensor event service stopped:",
    level: Level::Informational,
    fields: &[
        "EventType",
        "UtcTime",
        "Reason",
        "EventsWritten",
        "EventsLost",
    ],
};
/// The driver's control device answered (at start or after it was away).
pub const DRIVER_CONNECTED: EventDef = EventDef {
    id: 102,
    name: "DriverConnected",
    title: "Pipe sensor driver connected:",
    level: Level::Informational,
    fields: &["EventType", "UtcTime", "Device", "EventsInDriver"],
};
/// The driver's control device cannot be opened or stopped answering.
pub const DRIVER_UNAVAILABLE: EventDef = EventDef {
    id: 103,
    name: "DriverUnavailable",
    title: "Pipe sensor driver unavailable:",
    level: Level::Warning,
    fields: &["EventType", "UtcTime", "Device", "Error"],
};
/// New content became active.
pub const CONTENT_ADOPTED: EventDef = EventDef {
    id: 110,
    name: "ContentAdopted",
    title: "Pipe sensor content adopted:",
    level: Level::Informational,
    fields: &[
        "EventType",
        "UtcTime",
        "ContentSequence",
        "PreviousSequence",
        "Rules",
        "Origin",
        "Sha256",
    ],
};
/// Content was refused (the parser's or the loader's reason).
pub const CONTENT_REJECTED: EventDef = EventDef {
    id: 111,
    name: "ContentRejected",
    title: "Pipe sensor content rejected:",
    level: Level::Error,
    fields: &[
        "EventType",
        "UtcTime",
        "ContentSequence",
        "Origin",
        "Code",
        "Offset",
        "Reason",
    ],
};
/// Content was quarantined by the crash-loop guard.
pub const CONTENT_QUARANTINED: EventDef = EventDef {
    id: 112,
    name: "ContentQuarantined",
    title: "Pipe sensor content quarantined:",
    level: Level::Error,
    fields: &["EventType", "UtcTime", "ContentSequence"],
};
/// The rollout's verdict on a content file changed.
pub const ROLLOUT_VERDICT: EventDef = EventDef {
    id: 113,
    name: "RolloutVerdictChanged",
    title: "Pipe sensor rollout verdict changed:",
    level: Level::Informational,
    fields: &[
        "EventType",
        "UtcTime",
        "ContentSequence",
        "Verdict",
        "PreviousVerdict",
        "Why",
    ],
};
/// Events were overwritten in the driver's ring before they were read.
pub const EVENTS_LOST: EventDef = EventDef {
    id: 114,
    name: "EventsLost",
    title: "Pipe sensor events lost:",
    level: Level::Warning,
    fields: &[
        "EventType",
        "UtcTime",
        "Lost",
        "TotalLost",
        "EventsInDriver",
    ],
};
/// A rule was demoted (block → alert) by the sensor (issue 15's circuit
/// breaker); the id is reserved here so every sink already knows it.
pub const RULE_DEMOTED: EventDef = EventDef {
    id: 115,
    name: "RuleDemoted",
    title: "Pipe sensor rule demoted:",
    level: Level::Warning,
    fields: &[
        "EventType",
        "UtcTime",
        "RuleId",
        "ContentSequence",
        "Reason",
    ],
};

/// Every event, ascending ids.
pub const ALL: &[EventDef] = &[
    PIPE_CREATED,
    PIPE_CONNECTED,
    SERVICE_STARTED,
    SERVICE_STOPPED,
    DRIVER_CONNECTED,
    DRIVER_UNAVAILABLE,
    CONTENT_ADOPTED,
    CONTENT_REJECTED,
    CONTENT_QUARANTINED,
    ROLLOUT_VERDICT,
    EVENTS_LOST,
    RULE_DEMOTED,
];

/// The definition of `id`.
pub fn by_id(id: u16) -> Option<&'static EventDef> {
    ALL.iter().find(|d| d.id == id)
}

/// The message text of `def` in `.mc` form: the title, then one
/// `Field: %n` line per field (Sysmon's message layout).
pub fn mc_message(def: &EventDef) -> String {
    let mut s = String::from(def.title);
    for (i, f) in def.fields.iter().enumerate() {
        s.push_str(&format!("\r\n{f}: %{}", i + 1));
    }
    s
}

/// The Event Log message file source (`windmc` input) for every event:
/// message id = event id (no severity or facility bits, so `ReportEventW`
/// passes the plain id and Event Viewer shows it as the Event ID), US
/// English. `service/build.rs` compiles it into the service executable,
/// which the `PipeSensor` event source names as its `EventMessageFile`.
pub fn mc_file() -> String {
    let mut s = String::from(
        "; Generated from event-sink/src/ids.rs by service/build.rs. DO NOT EDIT.\r\n\
         MessageIdTypedef=DWORD\r\n\
         LanguageNames=(English=0x409:MSG00409)\r\n",
    );
    for d in ALL {
        s.push_str(&format!(
            "\r\nMessageId={}\r\nSymbolicName=MSG_{}\r\nLanguage=English\r\n{}\r\n.\r\n",
            d.id,
            d.name.to_ascii_uppercase(),
            mc_message(d)
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_ascending_and_names_distinct() {
        for w in ALL.windows(2) {
            assert!(w[0].id < w[1].id, "{} then {}", w[0].id, w[1].id);
        }
        let mut names: Vec<_> = ALL.iter().map(|d| d.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), ALL.len());
        for d in ALL {
            assert_eq!(by_id(d.id), Some(d));
            assert!(d.fields.contains(&"EventType") && d.fields.contains(&"UtcTime"));
            // ReportEventW takes at most 256 insertion strings; the .mc
            // format numbers them %1..%99.
            assert!(d.fields.len() < 100);
        }
        assert_eq!(by_id(1), None);
    }

    #[test]
    fn pipe_events_keep_sysmons_field_order() {
        assert_eq!(
            &PIPE_FIELDS[..8],
            &[
                "RuleName",
                "EventType",
                "UtcTime",
                "ProcessGuid",
                "ProcessId",
                "PipeName",
                "Image",
                "User"
            ]
        );
        assert_eq!((PIPE_CREATED.id, PIPE_CONNECTED.id), (17, 18));
        assert!(
            mc_message(&PIPE_CREATED).starts_with("Pipe Created:\r\nRuleName: %1\r\nEventType: %2")
        );
    }
}
