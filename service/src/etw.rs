//! ETW in real time: every event as a TraceLogging event of the provider
//! `PipeSensor` (GUID [`provider_guid`], derived from the name as ETW's
//! EventSource convention does; `docs/events.md` lists it). Event names and
//! field names are those of the event-id table; all fields are strings.
//! Listen with `logman start t -p PipeSensor -ets -rt` or any ETW consumer
//! (`tracerpt`, WPR, `xperf`, KrabsETW). Off Windows the provider does
//! nothing.

use event_sink::ids::{self, Level};
use event_sink::pipeline::Sink;
use event_sink::record::Out;
use tracelogging as tlg;

tlg::define_provider!(PROVIDER, "PipeSensor");

/// The provider's GUID (ETW's name hash of `PipeSensor`), lower-case.
pub fn provider_guid() -> String {
    format!("{:?}", PROVIDER.id())
}

/// Writes one ETW event per [`Out`]: the macro below spells each event's
/// TraceLogging name, level and fields (compile-time metadata), and
/// [`ETW_EVENTS`] lists what it spelled so a test holds it to the table.
macro_rules! etw_events {
    ($($def:path => $name:tt, $level:ident, [$($f:tt),* $(,)?];)*) => {
        /// (id, event name, level, fields) as written to ETW (held to the table by a test).
        #[cfg_attr(not(test), allow(dead_code))]
        pub const ETW_EVENTS: &[(u16, &str, Level, &[&str])] =
            &[$(($def.id, $name, Level::$level, &[$($f),*])),*];

        fn write(out: &Out) {
            let v = out.strings();
            $(
                if out.def.id == $def.id {
                    let mut it = v.iter().map(String::as_str);
                    tlg::write_event!(
                        PROVIDER,
                        $name,
                        level($level),
                        $(str8($f, it.next().unwrap_or("")),)*
                    );
                    return;
                }
            )*
        }
    };
}

etw_events! {
    ids::PIPE_CREATED => "PipeCreated", Informational, ["RuleName", "EventType", "UtcTime", "ProcessGuid", "ProcessId", "PipeName", "Image", "User", "RuleId", "Decision", "Action", "Severity", "ContentSequence", "UserSid", "RecordId"];
    ids::PIPE_CONNECTED => "PipeConnected", Informational, ["RuleName", "EventType", "UtcTime", "ProcessGuid", "ProcessId", "PipeName", "Image", "User", "RuleId", "Decision", "Action", "Severity", "ContentSequence", "UserSid", "RecordId"];
    ids::SERVICE_STARTED => "ServiceStarted", Informational, ["EventType", "UtcTime", "Version", "JsonPath"];
    ids::SERVICE_STOPPED => "ServiceStopped", Informational, ["EventType", "UtcTime", "Reason", "EventsWritten", "EventsLost"];
    ids::DRIVER_CONNECTED => "DriverConnected", Informational, ["EventType", "UtcTime", "Device", "EventsInDriver"];
    ids::DRIVER_UNAVAILABLE => "DriverUnavailable", Warning, ["EventType", "UtcTime", "Device", "Error"];
    ids::CONTENT_ADOPTED => "ContentAdopted", Informational, ["EventType", "UtcTime", "ContentSequence", "PreviousSequence", "Rules", "Origin", "Sha256"];
    ids::CONTENT_REJECTED => "ContentRejected", Error, ["EventType", "UtcTime", "ContentSequence", "Origin", "Code", "Offset", "Reason"];
    ids::CONTENT_QUARANTINED => "ContentQuarantined", Error, ["EventType", "UtcTime", "ContentSequence"];
    ids::ROLLOUT_VERDICT => "RolloutVerdictChanged", Informational, ["EventType", "UtcTime", "ContentSequence", "Verdict", "PreviousVerdict", "Why"];
    ids::EVENTS_LOST => "EventsLost", Warning, ["EventType", "UtcTime", "Lost", "TotalLost", "EventsInDriver"];
    ids::RULE_DEMOTED => "RuleDemoted", Warning, ["EventType", "UtcTime", "RuleId", "ContentSequence", "Reason"];
}

/// The ETW sink (registers the provider; unregisters when dropped).
#[derive(Debug)]
pub struct Etw(());

impl Etw {
    /// Registers the provider.
    pub fn new() -> Etw {
        // SAFETY: PROVIDER is a static of this executable (never unloaded
        // before the process ends); Drop unregisters it.
        unsafe {
            PROVIDER.register();
        }
        Etw(())
    }
}

impl Drop for Etw {
    fn drop(&mut self) {
        PROVIDER.unregister();
    }
}

impl Sink for Etw {
    fn write(&mut self, out: &Out) -> std::io::Result<()> {
        write(out);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etw_events_are_the_table() {
        assert_eq!(ETW_EVENTS.len(), ids::ALL.len());
        for (d, (id, name, level, fields)) in ids::ALL.iter().zip(ETW_EVENTS) {
            assert_eq!(
                (d.id, d.name, d.level, d.fields),
                (*id, *name, *level, *fields)
            );
        }
    }

    #[test]
    fn provider_guid_is_the_documented_one() {
        // docs/events.md states this GUID: ETW EventSource name hash of
        // "PipeSensor" (SHA-1 over the EventSource namespace and the
        // upper-cased UTF-16BE name, version 5), checked independently.
        assert_eq!(provider_guid(), "efd917c6-3f8f-5740-bb2a-d37fe101d176");
        assert_eq!(
            format!("{:?}", tlg::Guid::from_name(crate::config::SOURCE_NAME)),
            provider_guid(),
            "the provider's id is the name hash"
        );
        assert_eq!(PROVIDER.name(), crate::config::SOURCE_NAME);
    }

    #[test]
    fn writing_without_a_listener_is_harmless() {
        let mut e = Etw::new();
        let out = event_sink::health::Health::ServiceStarted {
            version: "x".into(),
            json_path: "y".into(),
        }
        .out(0);
        e.write(&out).unwrap();
    }
}
