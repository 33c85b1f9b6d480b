//! The `User` field's values: the sensor supplies the requester's user SID
//! in string form (`S-1-5-18`); Sysmon and SigmaHQ write `User` as
//! `DOMAIN\name` (`NT AUTHORITY\SYSTEM`, localized on non-English
//! Windows). This module is the one table between the two, shared by the
//! compiler (rule values → SIDs) and `pipectl replay` (a recorded event's
//! `User` → SID). docs/rules.md "User" states the mapping.
//!
//! Only principals whose SID is the same on every Windows machine are in
//! the table; a domain or local account (`CONTOSO\alice`) has a SID only
//! its machine or domain knows, so a rule naming one is refused with the
//! advice to write the SID, and a recorded event naming one cannot be
//! decided for rules on `User`.

/// Well-known principals: (`DOMAIN\name` spellings, SID). Spellings are
/// compared case-insensitively (Unicode lower case), the English one
/// first; the others are the localized spellings Sysmon writes on French,
/// German, Spanish, Italian and Portuguese Windows.
pub const WELL_KNOWN: &[(&[&str], &str)] = &[
    (
        &[
            r"NT AUTHORITY\SYSTEM",
            r"AUTORITE NT\SYSTEM",
            r"AUTORITE NT\Système",
            r"NT-AUTORITÄT\SYSTEM",
            r"NT AUTHORITY\SISTEMA",
            r"AUTORIDADE NT\SISTEMA",
        ],
        "S-1-5-18",
    ),
    (
        &[
            r"NT AUTHORITY\LOCAL SERVICE",
            r"AUTORITE NT\SERVICE LOCAL",
            r"NT-AUTORITÄT\LOKALER DIENST",
            r"NT AUTHORITY\SERVICIO LOCAL",
            r"AUTORIDADE NT\SERVIÇO LOCAL",
        ],
        "S-1-5-19",
    ),
    (
        &[
            r"NT AUTHORITY\NETWORK SERVICE",
            r"AUTORITE NT\SERVICE RÉSEAU",
            r"NT-AUTORITÄT\NETZWERKDIENST",
            r"NT AUTHORITY\SERVICIO DE RED",
            r"AUTORIDADE NT\SERVIÇO DE REDE",
        ],
        "S-1-5-20",
    ),
    (
        &[
            r"BUILTIN\Administrators",
            r"BUILTIN\Administrateurs",
            r"VORDEFINIERT\Administratoren",
            r"BUILTIN\Administradores",
            r"BUILTIN\Administratori",
        ],
        "S-1-5-32-544",
    ),
];

/// The spellings of the `NT AUTHORITY` domain (the accounts a service
/// process runs as: SYSTEM, LOCAL SERVICE, NETWORK SERVICE).
pub const NT_AUTHORITY: &[&str] = &[
    "NT AUTHORITY",
    "AUTORITE NT",
    "NT-AUTORITÄT",
    "AUTORIDADE NT",
];

/// The SIDs of the `NT AUTHORITY` accounts in [`WELL_KNOWN`].
pub const NT_AUTHORITY_SIDS: &[&str] = &["S-1-5-18", "S-1-5-19", "S-1-5-20"];

/// Whether `s` is a SID in string form as the sensor supplies it:
/// `S-1-<authority>(-<sub-authority>){0,15}`, the authority decimal below
/// 2³² or `0x` + 12 hex digits, each sub-authority a decimal `u32`. The
/// leading `S` may be lower case.
pub fn is_sid(s: &str) -> bool {
    let Some(rest) = s.strip_prefix("S-1-").or_else(|| s.strip_prefix("s-1-")) else {
        return false;
    };
    let mut parts = rest.split('-');
    let auth = parts.next().unwrap_or_default();
    let auth_ok = if let Some(hex) = auth.strip_prefix("0x") {
        hex.len() == 12 && hex.bytes().all(|b| b.is_ascii_hexdigit())
    } else {
        decimal_u32(auth)
    };
    let mut n = 0usize;
    for p in parts {
        if !decimal_u32(p) {
            return false;
        }
        n += 1;
    }
    auth_ok && n <= 15
}

fn decimal_u32(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && s.parse::<u32>().is_ok()
}

/// The SID of a well-known `DOMAIN\name` (any spelling in [`WELL_KNOWN`],
/// case-insensitive), or `None`.
pub fn well_known_sid(name: &str) -> Option<&'static str> {
    let want = name.trim().to_lowercase();
    WELL_KNOWN
        .iter()
        .find(|(names, _)| names.iter().any(|n| n.to_lowercase() == want))
        .map(|(_, sid)| *sid)
}

/// A recorded event's `User` (replay): a SID as is (upper-case `S`), a
/// well-known name as its SID, `None` for a name only its machine could
/// resolve.
pub fn event_user_sid(user: &str) -> Option<String> {
    let u = user.trim();
    if is_sid(u) {
        let mut s = u.to_string();
        s.replace_range(0..1, "S");
        return Some(s);
    }
    well_known_sid(u).map(str::to_string)
}

/// How a rule's `User` value compiles.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuleValue {
    /// The value is (a pattern over) a SID: matched as written.
    Sid,
    /// The value names well-known principals: matched as these SIDs (any).
    Sids(Vec<&'static str>),
}

/// How the value is applied: the whole field, or a part of it (the
/// importers' one anchor type).
pub use crate::import::detection::Anchor;

/// Maps a rule's `User` value (`text`, under `anchor`; `wildcards` when it
/// holds Sigma wildcards) to what the sensor compares.
///
/// * a value starting with `S-1-` is a SID (or a pattern over one): kept;
///   without anchor or wildcards it must be a valid SID;
/// * a whole `DOMAIN\name` of [`WELL_KNOWN`] → its SID;
/// * `contains`/`startswith` of a part of an `NT AUTHORITY` spelling
///   (SigmaHQ's `User|contains: ['AUTHORI', 'AUTORI']`) → the NT
///   AUTHORITY accounts' SIDs ([`NT_AUTHORITY_SIDS`]).
///
/// # Errors
/// Anything else, with what to write instead (a SID).
pub fn rule_value(text: &str, anchor: Anchor, wildcards: bool) -> Result<RuleValue, String> {
    let t = text.trim();
    if t.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("S-1-")) {
        if anchor == Anchor::Whole && !wildcards && !is_sid(t) {
            return Err(format!(
                "`User` value `{text}` is not a SID (S-1-<authority>-<sub-authority>…, each a decimal number)"
            ));
        }
        return Ok(RuleValue::Sid);
    }
    if anchor == Anchor::Whole && !wildcards {
        if let Some(sid) = well_known_sid(t) {
            return Ok(RuleValue::Sids(vec![sid]));
        }
    }
    if matches!(anchor, Anchor::Contains | Anchor::Start) && !wildcards && !t.is_empty() {
        let low = t.trim_end_matches('\\').to_lowercase();
        let in_domain = NT_AUTHORITY.iter().any(|d| {
            let d = d.to_lowercase();
            match anchor {
                Anchor::Start => d.starts_with(&low),
                _ => d.contains(&low),
            }
        });
        if in_domain && !low.is_empty() {
            return Ok(RuleValue::Sids(NT_AUTHORITY_SIDS.to_vec()));
        }
    }
    Err(format!(
        "`User` value `{text}` cannot be mapped to a SID without the machine it names: the sensor supplies User as the requester's SID; write the account's SID instead (`User: S-1-5-21-…-1001`; `wmic useraccount where name='alice' get sid` or `Get-LocalUser alice | Select SID` prints it). Mapped without a machine: NT AUTHORITY\\SYSTEM, LOCAL SERVICE, NETWORK SERVICE, BUILTIN\\Administrators (and their localized spellings), and `contains`/`startswith` of `NT AUTHORITY` (docs/rules.md \"User\")"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sids_are_recognised() {
        for s in [
            "S-1-5-18",
            "s-1-5-18",
            "S-1-5-21-1-2-3-1001",
            "S-1-0x123456789ABC",
            "S-1-1",
        ] {
            assert!(is_sid(s), "{s}");
        }
        for s in [
            "S-1-",
            "S-1-5-",
            "S-1-5-x",
            "S-2-5-18",
            "S-1-5-99999999999",
            "NT AUTHORITY\\SYSTEM",
        ] {
            assert!(!is_sid(s), "{s}");
        }
        let long = format!("S-1-5{}", "-1".repeat(16));
        assert!(!is_sid(&long));
    }

    #[test]
    fn well_known_names_map_in_every_spelling_and_case() {
        assert_eq!(well_known_sid(r"NT AUTHORITY\SYSTEM"), Some("S-1-5-18"));
        assert_eq!(well_known_sid(r"nt authority\system"), Some("S-1-5-18"));
        assert_eq!(well_known_sid(r"NT-AUTORITÄT\SYSTEM"), Some("S-1-5-18"));
        assert_eq!(well_known_sid(r"nt-autorität\system"), Some("S-1-5-18"));
        assert_eq!(well_known_sid(r"AUTORITE NT\Système"), Some("S-1-5-18"));
        assert_eq!(
            well_known_sid(r"NT AUTHORITY\LOCAL SERVICE"),
            Some("S-1-5-19")
        );
        assert_eq!(
            well_known_sid(r"AUTORITE NT\SERVICE RÉSEAU"),
            Some("S-1-5-20")
        );
        assert_eq!(
            well_known_sid(r"BUILTIN\Administrators"),
            Some("S-1-5-32-544")
        );
        assert_eq!(well_known_sid(r"CONTOSO\alice"), None);
    }

    #[test]
    fn rule_values() {
        assert_eq!(
            rule_value("S-1-5-18", Anchor::Whole, false),
            Ok(RuleValue::Sid)
        );
        assert_eq!(
            rule_value("S-1-5-21-*", Anchor::Whole, true),
            Ok(RuleValue::Sid)
        );
        assert_eq!(
            rule_value("S-1-5-21-", Anchor::Start, false),
            Ok(RuleValue::Sid)
        );
        assert!(rule_value("S-1-5-x", Anchor::Whole, false).is_err());
        assert_eq!(
            rule_value(r"NT AUTHORITY\SYSTEM", Anchor::Whole, false),
            Ok(RuleValue::Sids(vec!["S-1-5-18"]))
        );
        for part in ["AUTHORI", "AUTORI", "nt authority\\", "NT-AUTORITÄT"] {
            assert_eq!(
                rule_value(part, Anchor::Contains, false),
                Ok(RuleValue::Sids(NT_AUTHORITY_SIDS.to_vec())),
                "{part}"
            );
        }
        let e = rule_value(r"CONTOSO\alice", Anchor::Whole, false).unwrap_err();
        assert!(
            e.contains(r"`CONTOSO\alice`") && e.contains("write the account's SID"),
            "{e}"
        );
        assert!(rule_value("SYSTEM", Anchor::Contains, false).is_err());
        assert!(rule_value(r"NT AUTHORITY\*", Anchor::Whole, true).is_err());
    }

    #[test]
    fn event_users() {
        assert_eq!(event_user_sid("s-1-5-18").as_deref(), Some("S-1-5-18"));
        assert_eq!(
            event_user_sid(r"NT AUTHORITY\SYSTEM").as_deref(),
            Some("S-1-5-18")
        );
        assert_eq!(event_user_sid(r"CONTOSO\alice"), None);
    }
}
