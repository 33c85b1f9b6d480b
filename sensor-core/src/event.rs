//! The full pipe event, as analysts read it (Sysmon Event ID 17/18 plus the
//! sensor's own fields): who (user SID, process identity, pid, image), what
//! (create or connect, pipe name), when (UTC), and why (rule, decision,
//! action, severity, content sequence).
//!
//! [`PipeEvent`] is the record the driver's ring holds from issue 11 on; the
//! version-1 [`EventRecord`](crate::ring::EventRecord) (the old EVENTS IOCTL)
//! is a projection of it ([`PipeEvent::to_v1`]). Its wire form (the
//! EVENTS_V2 batch) is in [`crate::stream`].
//!
//! # Bounds
//! * Pipe name: [`NAME_CAP`] units (the normalized name the matcher saw is
//!   never longer); a longer raw name is cut and flagged [`FLAG_NAME_CUT`].
//! * Image path: [`IMAGE_UNITS`] units, the same bound as the driver's
//!   DOS-form rewrite and an EVAL request's image, so every path the matcher
//!   saw in DOS form is recorded in full. A longer path keeps its **last**
//!   [`IMAGE_UNITS`] units (the file name survives) and is flagged
//!   [`FLAG_IMAGE_CUT`]; the JSON line says `ImageTruncated: true`.
//! * User SID: [`SID_MAX`] bytes (`SECURITY_MAX_SID_SIZE`): every valid SID
//!   fits, so a SID is never cut; an invalid one is not recorded
//!   ([`FLAG_NO_SID`]).
//! * Rule name: [`RULE_NAME_LEN`] bytes of UTF-8, cut at a character boundary.
//!
//! # Process identity
//! [`process_guid`] derives a GUID-formatted identity from a boot identity,
//! the process's creation time and its pid. It is a pure function: the same
//! process always gets the same value, and a reused pid gets a different one
//! because its creation time differs (the three inputs are laid into the 128
//! bits without loss, so distinct inputs give distinct GUIDs).

use crate::codec::FixedText;
use crate::proto::RULE_NAME_LEN;
use crate::ring::{EventRecord, RingRecord};
use static_assertions::const_assert;

/// UTF-16 units of the pipe name kept per event (names are cut to this).
pub const NAME_CAP: usize = crate::name::MAX_NAME_UNITS;
/// UTF-16 units of the image path kept per event (a longer path keeps its end).
pub const IMAGE_UNITS: usize = crate::proto::MAX_EVAL_IMAGE_UNITS;
/// Largest SID in bytes (`SECURITY_MAX_SID_SIZE`: revision, count, authority
/// and 15 sub-authorities).
pub const SID_MAX: usize = 68;
/// Most sub-authorities a SID has (`SID_MAX_SUB_AUTHORITIES`).
pub const SID_MAX_SUB_AUTHORITIES: usize = 15;
const_assert!(8 + 4 * SID_MAX_SUB_AUTHORITIES == SID_MAX);

/// [`PipeEvent::flags`]: the raw pipe name was longer than [`NAME_CAP`] and was cut.
pub const FLAG_NAME_CUT: u32 = 1;
/// [`PipeEvent::flags`]: the image path was longer than [`IMAGE_UNITS`]; its end is kept.
pub const FLAG_IMAGE_CUT: u32 = 2;
/// [`PipeEvent::flags`]: no image path was known for the process.
pub const FLAG_NO_IMAGE: u32 = 4;
/// [`PipeEvent::flags`]: no user SID was captured (no token could be read).
pub const FLAG_NO_SID: u32 = 8;
/// [`PipeEvent::flags`]: the SID came from the process's primary token, not
/// from the create's security context (the fallback).
pub const FLAG_SID_FROM_PROCESS: u32 = 16;
/// [`PipeEvent::flags`]: the process creation time was not known; the
/// process GUID carries time 0 and is not unique across pid reuse.
pub const FLAG_NO_PROCESS_TIME: u32 = 32;
/// Every flag this version defines.
pub const KNOWN_FLAGS: u32 = FLAG_NAME_CUT
    | FLAG_IMAGE_CUT
    | FLAG_NO_IMAGE
    | FLAG_NO_SID
    | FLAG_SID_FROM_PROCESS
    | FLAG_NO_PROCESS_TIME;

/// Why bytes are not a SID.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SidError {
    /// Fewer than 8 bytes, or longer than [`SID_MAX`].
    Length {
        /// Bytes given.
        found: usize,
    },
    /// The revision byte is not 1.
    Revision {
        /// The revision found.
        found: u8,
    },
    /// More than 15 sub-authorities.
    SubAuthorityCount {
        /// The count found.
        found: u8,
    },
    /// The length is not 8 + 4 × the sub-authority count.
    CountMismatch {
        /// The count the SID states.
        count: u8,
        /// Bytes given.
        len: usize,
    },
}

impl core::fmt::Display for SidError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match *self {
            SidError::Length { found } => {
                write!(f, "SID length {found} is outside 8..={SID_MAX} bytes")
            }
            SidError::Revision { found } => write!(f, "SID revision {found}, expected 1"),
            SidError::SubAuthorityCount { found } => {
                write!(f, "SID has {found} sub-authorities, at most 15 allowed")
            }
            SidError::CountMismatch { count, len } => write!(
                f,
                "SID states {count} sub-authorities but is {len} bytes long"
            ),
        }
    }
}

/// A security identifier in its binary form (`SID` structure), validated,
/// stored in a fixed [`SID_MAX`]-byte buffer. The empty SID means "none".
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Sid {
    len: u8,
    bytes: [u8; SID_MAX],
}

impl core::fmt::Debug for Sid {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Sid({self})")
    }
}

impl Sid {
    /// No SID.
    pub const NONE: Sid = Sid {
        len: 0,
        bytes: [0; SID_MAX],
    };

    /// Validates and copies a binary SID: revision 1, at most 15
    /// sub-authorities, length exactly 8 + 4 × count.
    ///
    /// # Errors
    /// [`SidError`] naming what is wrong. Never panics.
    pub fn from_bytes(b: &[u8]) -> Result<Sid, SidError> {
        if b.len() < 8 || b.len() > SID_MAX {
            return Err(SidError::Length { found: b.len() });
        }
        let revision = b.first().copied().unwrap_or(0);
        if revision != 1 {
            return Err(SidError::Revision { found: revision });
        }
        let count = b.get(1).copied().unwrap_or(0);
        if usize::from(count) > SID_MAX_SUB_AUTHORITIES {
            return Err(SidError::SubAuthorityCount { found: count });
        }
        // count ≤ 15, so this is at most 68.
        let expected = 8usize.saturating_add(usize::from(count).saturating_mul(4));
        if b.len() != expected {
            return Err(SidError::CountMismatch {
                count,
                len: b.len(),
            });
        }
        let mut s = Sid::NONE;
        if let Some(d) = s.bytes.get_mut(..b.len()) {
            d.copy_from_slice(b);
        }
        s.len = u8::try_from(b.len()).unwrap_or(0);
        Ok(s)
    }

    /// Whether no SID is stored.
    pub const fn is_none(&self) -> bool {
        self.len == 0
    }

    /// The binary SID (empty when none).
    pub fn as_bytes(&self) -> &[u8] {
        self.bytes.get(..usize::from(self.len)).unwrap_or(&[])
    }

    /// The 48-bit identifier authority.
    pub fn authority(&self) -> u64 {
        self.as_bytes().get(2..8).map_or(0, |a| {
            a.iter().fold(0u64, |acc, &x| (acc << 8) | u64::from(x))
        })
    }

    /// The sub-authorities, in order.
    pub fn sub_authorities(&self) -> impl Iterator<Item = u32> + '_ {
        self.as_bytes()
            .get(8..)
            .unwrap_or(&[])
            .chunks_exact(4)
            .map(|c| {
                let mut a = [0u8; 4];
                a.copy_from_slice(c);
                u32::from_le_bytes(a)
            })
    }
}

/// The string form `S-1-5-21-…` (as `ConvertSidToStringSidW`: an authority
/// of 2³² or more in hex, `0x…`); empty when no SID is stored.
impl core::fmt::Display for Sid {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        if self.is_none() {
            return Ok(());
        }
        let auth = self.authority();
        if auth >> 32 == 0 {
            write!(f, "S-1-{auth}")?;
        } else {
            write!(f, "S-1-0x{auth:012X}")?;
        }
        for s in self.sub_authorities() {
            write!(f, "-{s}")?;
        }
        Ok(())
    }
}

/// Longest string form of a SID: `S-1-` (4), an authority of 2³² or more as
/// `0x` + 12 hex digits (14), 15 × (`-` + up to 10 digits) (165) = 183.
pub const SID_TEXT_MAX: usize = 184;
const_assert!(4 + 14 + SID_MAX_SUB_AUTHORITIES * 11 < SID_TEXT_MAX);

/// A SID's string form in a fixed buffer (no allocation): what the driver
/// supplies to rules as the `User` field.
#[derive(Clone, Copy)]
pub struct SidText {
    len: u8,
    buf: [u8; SID_TEXT_MAX],
}

impl core::fmt::Debug for SidText {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "SidText({})", self.as_str())
    }
}

impl SidText {
    /// The empty text.
    pub const EMPTY: SidText = SidText {
        len: 0,
        buf: [0; SID_TEXT_MAX],
    };

    /// Stores `units` (a SID's string form as EVAL gives it) when each is
    /// printable ASCII and they fit; otherwise stores nothing (empty: no
    /// user) and returns false. Never panics.
    pub fn set_units(&mut self, units: &[u16]) -> bool {
        self.len = 0;
        let Some(dst) = self.buf.get_mut(..units.len()) else {
            return false;
        };
        for (d, &u) in dst.iter_mut().zip(units) {
            match u8::try_from(u) {
                Ok(b) if b.is_ascii_graphic() => *d = b,
                _ => return false,
            }
        }
        match u8::try_from(units.len()) {
            Ok(n) => {
                self.len = n;
                true
            }
            Err(_) => false,
        }
    }

    /// The text (ASCII; empty when no SID was stored).
    pub fn as_str(&self) -> &str {
        self.buf
            .get(..usize::from(self.len))
            .and_then(|b| core::str::from_utf8(b).ok())
            .unwrap_or("")
    }
}

impl core::fmt::Write for SidText {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        let at = usize::from(self.len);
        let end = at.checked_add(s.len()).ok_or(core::fmt::Error)?;
        let dst = self.buf.get_mut(at..end).ok_or(core::fmt::Error)?;
        dst.copy_from_slice(s.as_bytes());
        self.len = u8::try_from(end).map_err(|_| core::fmt::Error)?;
        Ok(())
    }
}

impl Sid {
    /// The string form ([`Sid`]'s `Display`) in a fixed buffer, without
    /// allocating: at most [`SID_TEXT_MAX`] bytes, which every valid SID
    /// fits. Empty when no SID is stored. Never panics.
    pub fn text(&self) -> SidText {
        let mut t = SidText::EMPTY;
        self.text_into(&mut t);
        t
    }

    /// [`Sid::text`] written in place (the driver's working-memory slot:
    /// nothing on the kernel stack).
    pub fn text_into(&self, t: &mut SidText) {
        t.len = 0;
        if core::fmt::Write::write_fmt(t, format_args!("{self}")).is_err() {
            // Unreachable for a validated SID (see SID_TEXT_MAX); an empty
            // text is "no user", never a cut SID.
            t.len = 0;
        }
    }
}

/// A process identity in GUID form (16 bytes in the `GUID` structure's
/// memory layout: `Data1` u32 LE, `Data2` u16 LE, `Data3` u16 LE, `Data4`
/// 8 bytes). Printed as Sysmon prints `ProcessGuid`:
/// `{xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx}`, lower-case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ProcessGuid(pub [u8; 16]);

/// The identity of a process for the life of the process.
///
/// Layout (the GUID's fields):
/// * `Data1` = the boot identity folded to 32 bits (high half XOR low half):
///   tells boots and machines apart;
/// * `Data2`, `Data3` = bits 63..48 and 47..32 of the creation time;
/// * `Data4[0..4]` = bits 31..0 of the creation time (big-endian);
/// * `Data4[4..8]` = the pid (big-endian).
///
/// For one boot identity the map (creation time, pid) → GUID is injective,
/// so a reused pid (a later creation time) always gets a new GUID, and the
/// same process always gets the same one. [`ProcessGuid::parts`] reads the
/// inputs back. `boot` is whatever the driver fixes once per boot (it
/// documents its source); `create_time` is the process's creation time in
/// 100 ns units since 1601 (`PsGetProcessCreateTimeQuadPart`).
pub const fn process_guid(boot: u64, create_time: u64, pid: u32) -> ProcessGuid {
    let d1 = ((boot >> 32) as u32) ^ (boot as u32);
    let d2 = (create_time >> 48) as u16;
    let d3 = (create_time >> 32) as u16;
    let lo = (create_time as u32).to_be_bytes();
    let p = pid.to_be_bytes();
    let a = d1.to_le_bytes();
    let b = d2.to_le_bytes();
    let c = d3.to_le_bytes();
    ProcessGuid([
        a[0], a[1], a[2], a[3], b[0], b[1], c[0], c[1], lo[0], lo[1], lo[2], lo[3], p[0], p[1],
        p[2], p[3],
    ])
}

impl ProcessGuid {
    /// `Data1` (the folded boot identity), the creation time and the pid.
    pub const fn parts(&self) -> (u32, u64, u32) {
        let g = &self.0;
        let d1 = u32::from_le_bytes([g[0], g[1], g[2], g[3]]);
        let d2 = u16::from_le_bytes([g[4], g[5]]) as u64;
        let d3 = u16::from_le_bytes([g[6], g[7]]) as u64;
        let lo = u32::from_be_bytes([g[8], g[9], g[10], g[11]]) as u64;
        let pid = u32::from_be_bytes([g[12], g[13], g[14], g[15]]);
        (d1, (d2 << 48) | (d3 << 32) | lo, pid)
    }
}

impl core::fmt::Display for ProcessGuid {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let g = &self.0;
        let d1 = u32::from_le_bytes([g[0], g[1], g[2], g[3]]);
        let d2 = u16::from_le_bytes([g[4], g[5]]);
        let d3 = u16::from_le_bytes([g[6], g[7]]);
        write!(f, "{{{d1:08x}-{d2:04x}-{d3:04x}-")?;
        for b in g.get(8..10).unwrap_or(&[]) {
            write!(f, "{b:02x}")?;
        }
        f.write_str("-")?;
        for b in g.get(10..16).unwrap_or(&[]) {
            write!(f, "{b:02x}")?;
        }
        f.write_str("}")
    }
}

/// One recorded pipe event with everything the Sysmon 17/18 shape needs.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PipeEvent {
    /// Consecutive id assigned by the ring (first is 1).
    pub id: u64,
    /// When the callback saw the operation: UTC, 100 ns since 1601 (0: unknown).
    pub time: u64,
    /// The process's creation time, UTC, 100 ns since 1601 (0: unknown,
    /// [`FLAG_NO_PROCESS_TIME`]).
    pub process_time: u64,
    /// The process identity ([`process_guid`]).
    pub process_guid: ProcessGuid,
    /// Sequence of the content that decided the event.
    pub sequence: u64,
    /// Requestor process id.
    pub pid: u32,
    /// Matched rule id.
    pub rule_id: u32,
    /// [`crate::ring::EventKind`] wire value (1 create, 2 connect).
    pub kind: u8,
    /// [`crate::decision::Decision`] wire value; values this build does not
    /// know are carried as they are.
    pub decision: u8,
    /// Rule action wire value.
    pub action: u8,
    /// Rule severity wire value.
    pub severity: u8,
    /// `FLAG_*` bits.
    pub flags: u32,
    /// The matched rule's name (Sysmon's `RuleName`), cut to [`RULE_NAME_LEN`] bytes.
    pub rule_name: FixedText<RULE_NAME_LEN>,
    /// The requester's user SID ([`Sid::NONE`] with [`FLAG_NO_SID`]).
    pub sid: Sid,
    name_len: u16,
    image_len: u16,
    name: [u16; NAME_CAP],
    image: [u16; IMAGE_UNITS],
}

impl core::fmt::Debug for PipeEvent {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("PipeEvent")
            .field("id", &self.id)
            .field("pid", &self.pid)
            .field("kind", &self.kind)
            .field("rule_id", &self.rule_id)
            .field("decision", &self.decision)
            .field("name_len", &self.name_len)
            .field("image_len", &self.image_len)
            .field("sid", &self.sid)
            .finish_non_exhaustive()
    }
}

impl PipeEvent {
    /// An all-zero event.
    pub const EMPTY: PipeEvent = PipeEvent {
        id: 0,
        time: 0,
        process_time: 0,
        process_guid: ProcessGuid([0; 16]),
        sequence: 0,
        pid: 0,
        rule_id: 0,
        kind: 0,
        decision: 0,
        action: 0,
        severity: 0,
        flags: 0,
        rule_name: FixedText::empty(),
        sid: Sid::NONE,
        name_len: 0,
        image_len: 0,
        name: [0; NAME_CAP],
        image: [0; IMAGE_UNITS],
    };

    /// Copies `name`, cut to [`NAME_CAP`] units ([`FLAG_NAME_CUT`] when cut).
    pub fn set_name(&mut self, name: &[u16]) {
        let n = name.len().min(NAME_CAP);
        if let (Some(dst), Some(src)) = (self.name.get_mut(..n), name.get(..n)) {
            dst.copy_from_slice(src);
        }
        self.name_len = u16::try_from(n).unwrap_or(0);
        self.set_flag(FLAG_NAME_CUT, name.len() > NAME_CAP);
    }

    /// Copies the image path: all of it up to [`IMAGE_UNITS`] units,
    /// otherwise its last [`IMAGE_UNITS`] units with [`FLAG_IMAGE_CUT`].
    /// `None` records no image and sets [`FLAG_NO_IMAGE`].
    pub fn set_image(&mut self, image: Option<&[u16]>) {
        let image = match image {
            Some(i) => i,
            None => {
                self.image_len = 0;
                self.set_flag(FLAG_NO_IMAGE, true);
                self.set_flag(FLAG_IMAGE_CUT, false);
                return;
            }
        };
        let n = image.len().min(IMAGE_UNITS);
        let start = image.len().saturating_sub(n);
        if let (Some(dst), Some(src)) = (self.image.get_mut(..n), image.get(start..)) {
            dst.copy_from_slice(src);
        }
        self.image_len = u16::try_from(n).unwrap_or(0);
        self.set_flag(FLAG_NO_IMAGE, false);
        self.set_flag(FLAG_IMAGE_CUT, start > 0);
    }

    /// Stores the requester's SID (`None`: [`FLAG_NO_SID`]); `from_process`
    /// says it came from the primary token ([`FLAG_SID_FROM_PROCESS`]).
    pub fn set_sid(&mut self, sid: Option<Sid>, from_process: bool) {
        match sid {
            Some(s) if !s.is_none() => {
                self.sid = s;
                self.set_flag(FLAG_NO_SID, false);
                self.set_flag(FLAG_SID_FROM_PROCESS, from_process);
            }
            _ => {
                self.sid = Sid::NONE;
                self.set_flag(FLAG_NO_SID, true);
                self.set_flag(FLAG_SID_FROM_PROCESS, false);
            }
        }
    }

    /// Stores the process identity: its creation time (0: unknown,
    /// [`FLAG_NO_PROCESS_TIME`]) and the GUID [`process_guid`] derives from
    /// `boot`, that time and the event's `pid` (set the pid first).
    pub fn set_process(&mut self, boot: u64, create_time: u64) {
        self.process_time = create_time;
        self.process_guid = process_guid(boot, create_time, self.pid);
        self.set_flag(FLAG_NO_PROCESS_TIME, create_time == 0);
    }

    fn set_flag(&mut self, flag: u32, on: bool) {
        if on {
            self.flags |= flag;
        } else {
            self.flags &= !flag;
        }
    }

    /// The pipe name units in use.
    pub fn name(&self) -> &[u16] {
        self.name.get(..usize::from(self.name_len)).unwrap_or(&[])
    }

    /// The image units in use.
    pub fn image(&self) -> &[u16] {
        self.image.get(..usize::from(self.image_len)).unwrap_or(&[])
    }

    /// The version-1 record the old EVENTS IOCTL returns (image: its last
    /// 128 units, as version 1 always kept).
    pub fn to_v1(&self) -> EventRecord {
        let mut r = EventRecord::EMPTY;
        r.id = self.id;
        r.time = self.time;
        r.pid = self.pid;
        r.rule_id = self.rule_id;
        r.kind = self.kind;
        r.decision = self.decision;
        r.action = self.action;
        r.severity = self.severity;
        r.set_name(self.name());
        r.set_image(self.image());
        r
    }
}

impl PipeEvent {
    /// The full event as far as a version-1 record tells it (an old driver
    /// answering only EVENTS): no SID ([`FLAG_NO_SID`]), no creation time
    /// ([`FLAG_NO_PROCESS_TIME`], GUID from boot 0), no rule name or
    /// sequence; an image of exactly 128 units may have been cut
    /// ([`FLAG_IMAGE_CUT`]), an empty one is taken as unknown.
    pub fn from_v1(r: &EventRecord) -> PipeEvent {
        let mut e = PipeEvent::EMPTY;
        e.id = r.id;
        e.time = r.time;
        e.pid = r.pid;
        e.rule_id = r.rule_id;
        e.kind = r.kind;
        e.decision = r.decision;
        e.action = r.action;
        e.severity = r.severity;
        e.set_name(r.name());
        e.set_image((!r.image().is_empty()).then_some(r.image()));
        e.set_flag(FLAG_IMAGE_CUT, r.image().len() == crate::ring::IMAGE_CAP);
        e.set_sid(None, false);
        e.set_process(0, 0);
        e
    }
}

impl RingRecord for PipeEvent {
    const EMPTY: Self = PipeEvent::EMPTY;
    fn set_id(&mut self, id: u64) {
        self.id = id;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::string::ToString;
    use std::vec::Vec;

    fn sid(bytes: &[u8]) -> Sid {
        Sid::from_bytes(bytes).unwrap()
    }

    /// S-1-5-21-1-2-3-1001 in binary.
    fn user_sid() -> Vec<u8> {
        let mut b = std::vec![1u8, 5, 0, 0, 0, 0, 0, 5];
        for s in [21u32, 1, 2, 3, 1001] {
            b.extend_from_slice(&s.to_le_bytes());
        }
        b
    }

    #[test]
    fn sid_text_set_units_takes_printable_ascii_that_fits() {
        let w = |t: &str| t.encode_utf16().collect::<Vec<u16>>();
        let mut t = SidText::EMPTY;
        assert!(t.set_units(&w("S-1-5-21-0-0-0-1000")));
        assert_eq!(t.as_str(), "S-1-5-21-0-0-0-1000");
        // Refused: non-ASCII, a space, a control unit, too long; each
        // leaves no user rather than a part of one.
        for bad in [
            w("S-1-5-18\u{e9}"),
            w("S-1 5"),
            w("S\u{0}"),
            std::vec![u16::from(b'1'); SID_TEXT_MAX + 1],
        ] {
            t.set_units(&w("S-1-5-18"));
            assert!(!t.set_units(&bad));
            assert_eq!(t.as_str(), "");
        }
        assert!(t.set_units(&std::vec![u16::from(b'1'); SID_TEXT_MAX]));
        assert_eq!(t.as_str().len(), SID_TEXT_MAX);
        assert!(t.set_units(&[]));
        assert_eq!(t.as_str(), "");
    }

    #[test]
    fn sid_strings() {
        assert_eq!(sid(&user_sid()).to_string(), "S-1-5-21-1-2-3-1001");
        // Local System: S-1-5-18.
        let mut system = std::vec![1u8, 1, 0, 0, 0, 0, 0, 5];
        system.extend_from_slice(&18u32.to_le_bytes());
        assert_eq!(sid(&system).to_string(), "S-1-5-18");
        // Everyone: S-1-1-0.
        assert_eq!(
            sid(&[1, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0]).to_string(),
            "S-1-1-0"
        );
        // A 48-bit authority prints in hex, as ConvertSidToStringSid does.
        assert_eq!(
            sid(&[1, 0, 0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc]).to_string(),
            "S-1-0x123456789ABC"
        );
        assert_eq!(Sid::NONE.to_string(), "");
    }

    #[test]
    fn sid_text_is_display_without_allocation_and_fits_the_longest_sid() {
        assert_eq!(sid(&user_sid()).text().as_str(), "S-1-5-21-1-2-3-1001");
        assert_eq!(Sid::NONE.text().as_str(), "");
        // The longest string form: a 48-bit authority and 15 sub-authorities
        // of u32::MAX (183 characters), never cut.
        let mut b = std::vec![1u8, 15, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff];
        for _ in 0..15 {
            b.extend_from_slice(&u32::MAX.to_le_bytes());
        }
        let s = sid(&b);
        assert_eq!(s.text().as_str(), s.to_string());
        assert_eq!(s.text().as_str().len(), 183);
        // Reused in place (the driver's slot): a shorter SID replaces it whole.
        let mut t = s.text();
        sid(&user_sid()).text_into(&mut t);
        assert_eq!(t.as_str(), "S-1-5-21-1-2-3-1001");
        Sid::NONE.text_into(&mut t);
        assert_eq!(t.as_str(), "");
    }

    #[test]
    fn sid_validation_names_what_is_wrong() {
        assert_eq!(
            Sid::from_bytes(&[1, 0, 0]),
            Err(SidError::Length { found: 3 })
        );
        assert_eq!(
            Sid::from_bytes(&[0u8; 69]),
            Err(SidError::Length { found: 69 })
        );
        assert_eq!(
            Sid::from_bytes(&[2, 0, 0, 0, 0, 0, 0, 5]),
            Err(SidError::Revision { found: 2 })
        );
        let mut b = std::vec![1u8, 16, 0, 0, 0, 0, 0, 5];
        b.resize(68, 0);
        assert_eq!(
            Sid::from_bytes(&b),
            Err(SidError::SubAuthorityCount { found: 16 })
        );
        assert_eq!(
            Sid::from_bytes(&[1, 1, 0, 0, 0, 0, 0, 5]),
            Err(SidError::CountMismatch { count: 1, len: 8 })
        );
        // The largest SID fits exactly.
        let mut max = std::vec![1u8, 15, 0, 0, 0, 0, 0, 5];
        max.resize(SID_MAX, 7);
        let s = sid(&max);
        assert_eq!(s.as_bytes(), &max[..]);
        assert_eq!(s.sub_authorities().count(), 15);
        for e in [
            SidError::Length { found: 3 },
            SidError::Revision { found: 2 },
            SidError::SubAuthorityCount { found: 16 },
            SidError::CountMismatch { count: 1, len: 8 },
        ] {
            assert!(!e.to_string().is_empty());
        }
    }

    #[test]
    fn process_guid_is_stable_and_distinguishes_pid_reuse() {
        let boot = 0x0123_4567_89ab_cdef;
        let t = 133_000_000_000_000_000u64;
        let a = process_guid(boot, t, 4242);
        // The same process, asked twice: the same identity.
        assert_eq!(a, process_guid(boot, t, 4242));
        // The pid reused by a later process: a different identity.
        assert_ne!(a, process_guid(boot, t + 1, 4242));
        assert_ne!(a, process_guid(boot, t + (1 << 32), 4242));
        assert_ne!(a, process_guid(boot, t + (1 << 48), 4242));
        // Another pid at the same instant, another boot: different.
        assert_ne!(a, process_guid(boot, t, 4243));
        assert_ne!(a, process_guid(boot ^ 1, t, 4242));
        // The inputs read back (the map is injective).
        assert_eq!(a.parts(), (0x0123_4567 ^ 0x89ab_cdef, t, 4242));
        for (time, pid) in [(0, 0), (u64::MAX, u32::MAX), (1, 2), (t, 7)] {
            let g = process_guid(boot, time, pid);
            assert_eq!((g.parts().1, g.parts().2), (time, pid));
        }
    }

    #[test]
    fn process_guid_text_is_sysmon_shaped() {
        let g = process_guid(0x1111_1111_0000_0000, 0x01d9_2345_6789_abcd, 0x1234);
        let s = g.to_string();
        assert_eq!(s, "{11111111-01d9-2345-6789-abcd00001234}");
        assert_eq!(s.len(), 38);
    }

    #[test]
    fn image_keeps_full_path_up_to_the_bound_and_its_end_beyond() {
        let mut e = PipeEvent::EMPTY;
        let full: Vec<u16> = (0..IMAGE_UNITS as u16).collect();
        e.set_image(Some(&full));
        assert_eq!(e.image(), &full[..]);
        assert_eq!(e.flags & FLAG_IMAGE_CUT, 0);
        let long: Vec<u16> = (0..(IMAGE_UNITS as u16 + 7)).collect();
        e.set_image(Some(&long));
        assert_eq!(e.image().len(), IMAGE_UNITS);
        assert_eq!(e.image()[0], 7);
        assert_ne!(e.flags & FLAG_IMAGE_CUT, 0);
        e.set_image(None);
        assert!(e.image().is_empty());
        assert_eq!(e.flags & (FLAG_IMAGE_CUT | FLAG_NO_IMAGE), FLAG_NO_IMAGE);
        let name: Vec<u16> = (0..(NAME_CAP as u16 + 1)).collect();
        e.set_name(&name);
        assert_eq!(e.name().len(), NAME_CAP);
        assert_ne!(e.flags & FLAG_NAME_CUT, 0);
        e.set_name(&[0x5c, 0x61]);
        assert_eq!(e.flags & FLAG_NAME_CUT, 0);
    }

    #[test]
    fn sid_and_process_flags() {
        let mut e = PipeEvent::EMPTY;
        e.pid = 9;
        e.set_sid(Some(sid(&user_sid())), true);
        assert_eq!(
            e.flags & (FLAG_NO_SID | FLAG_SID_FROM_PROCESS),
            FLAG_SID_FROM_PROCESS
        );
        e.set_sid(None, true);
        assert_eq!(e.flags & (FLAG_NO_SID | FLAG_SID_FROM_PROCESS), FLAG_NO_SID);
        assert!(e.sid.is_none());
        e.set_process(5, 0);
        assert_ne!(e.flags & FLAG_NO_PROCESS_TIME, 0);
        e.set_process(5, 77);
        assert_eq!(e.flags & FLAG_NO_PROCESS_TIME, 0);
        assert_eq!(e.process_guid, process_guid(5, 77, 9));
        assert_eq!(e.flags & !KNOWN_FLAGS, 0);
    }

    #[test]
    fn v1_projection_keeps_the_old_fields() {
        let mut e = PipeEvent::EMPTY;
        e.id = 3;
        e.time = 4;
        e.pid = 5;
        e.rule_id = 6;
        e.kind = 2;
        e.decision = 9; // a decision value this build does not know
        e.action = 1;
        e.severity = 3;
        e.set_name(&[0x5c, 0x78]);
        let img: Vec<u16> = (0..300u16).collect();
        e.set_image(Some(&img));
        let v1 = e.to_v1();
        assert_eq!(
            (
                v1.id,
                v1.time,
                v1.pid,
                v1.rule_id,
                v1.kind,
                v1.decision,
                v1.action,
                v1.severity
            ),
            (3, 4, 5, 6, 2, 9, 1, 3)
        );
        assert_eq!(v1.name(), &[0x5c, 0x78]);
        assert_eq!(v1.image(), &img[300 - crate::ring::IMAGE_CAP..]);
        let back = PipeEvent::from_v1(&v1);
        assert_eq!((back.id, back.pid, back.kind, back.decision), (3, 5, 2, 9));
        assert_eq!(back.name(), e.name());
        assert_eq!(back.image(), v1.image());
        let want = FLAG_IMAGE_CUT | FLAG_NO_SID | FLAG_NO_PROCESS_TIME;
        assert_eq!(back.flags, want);
        let mut short = v1;
        short.set_image(&[]);
        assert_eq!(
            PipeEvent::from_v1(&short).flags,
            FLAG_NO_IMAGE | FLAG_NO_SID | FLAG_NO_PROCESS_TIME
        );
    }
}
