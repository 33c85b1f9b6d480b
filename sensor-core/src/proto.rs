//! The control device's IOCTL protocol: versioned, little-endian, fixed layout.
//!
//! Every request and response starts with an 8-byte header: magic `PSIO`
//! (`u32`), [`PROTO_VERSION`] (`u16`, must match exactly), a reserved `u16`
//! (zero). All IOCTLs are `METHOD_BUFFERED`: the I/O manager copies the
//! caller's input into a kernel buffer, so the driver never touches a
//! user-mode address. Every decoder checks the exact length (and the length
//! fields inside the message against it) and rejects anything else; the
//! driver turns a [`ProtoError`] into an NTSTATUS with [`ProtoError::ntstatus`].
//!
//! Layouts (offsets after the header):
//!
//! | IOCTL | request | response |
//! |---|---|---|
//! | STATUS | — | [`Status`] ([`STATUS_LEN`]) |
//! | LOAD | flags u32, len u32, content\[len\] | [`LoadResponse`] |
//! | EVENTS | max u32, reserved u32 | count u32, reserved u32, overwritten u64, count × [`EVENT_WIRE_LEN`] |
//! | SET_MODE | mode u32, reserved u32 | previous u32, current u32 |
//! | EVAL | kind u32, pid u32, name_units u16, image_units u16, reserved u32, name, image (UTF-16LE) | [`EvalResponse`] |
//! | ROLLOUT | — | [`RolloutStatus`] ([`ROLLOUT_STATUS_LEN`]) |
//! | RESCAN | — | [`RolloutStatus`] after the rescan |
//! | ENFORCEMENT | — | [`EnforcementStatus`] ([`ENFORCEMENT_STATUS_LEN`]) |
//! | BREAKER_RESET | rule u32, flags u32 ([`RESET_ALL`]) | lifted u32, reserved u32 |

use crate::decision::{Decision, Mode};
use crate::guard::QUARANTINE_SLOTS;
use crate::name::MAX_NAME_UNITS;
use crate::ring::{EventKind, EventRecord, IMAGE_CAP, NAME_CAP};
use crate::rollout::{Control, Reason};
use channel_format::Ring;
use static_assertions::const_assert_eq;

pub use crate::codec::{
    exact, status, utf16le_into, FixedText, ProtoError, Reader, Writer, HEADER_LEN, PROTO_MAGIC,
    PROTO_VERSION,
};

/// NT name of the control device.
pub const DEVICE_NAME: &str = r"\Device\PipeSensor";
/// Its symbolic link.
pub const DOS_DEVICE_NAME: &str = r"\DosDevices\PipeSensor";
/// The path user mode opens.
pub const USER_PATH: &str = r"\\.\PipeSensor";

const FILE_DEVICE_UNKNOWN: u32 = 0x22;
const METHOD_BUFFERED: u32 = 0;
const FILE_READ_DATA: u32 = 1;
const FILE_WRITE_DATA: u32 = 2;

/// `CTL_CODE(DeviceType, Function, Method, Access)`.
pub const fn ctl_code(device: u32, function: u32, method: u32, access: u32) -> u32 {
    (device << 16) | (access << 14) | (function << 2) | method
}

/// Status (read access).
pub const IOCTL_STATUS: u32 = ctl_code(FILE_DEVICE_UNKNOWN, 0x900, METHOD_BUFFERED, FILE_READ_DATA);
/// Load content (write access).
pub const IOCTL_LOAD: u32 = ctl_code(FILE_DEVICE_UNKNOWN, 0x901, METHOD_BUFFERED, FILE_WRITE_DATA);
/// Read events (read access).
pub const IOCTL_EVENTS: u32 = ctl_code(FILE_DEVICE_UNKNOWN, 0x902, METHOD_BUFFERED, FILE_READ_DATA);
/// Set mode (write access).
pub const IOCTL_SET_MODE: u32 =
    ctl_code(FILE_DEVICE_UNKNOWN, 0x903, METHOD_BUFFERED, FILE_WRITE_DATA);
/// Evaluate a name (read access).
pub const IOCTL_EVAL: u32 = ctl_code(FILE_DEVICE_UNKNOWN, 0x904, METHOD_BUFFERED, FILE_READ_DATA);

/// Rollout state: this machine's ring, bucket and control, and why each
/// known content file was or was not adopted (read access).
pub const IOCTL_ROLLOUT: u32 =
    ctl_code(FILE_DEVICE_UNKNOWN, 0x905, METHOD_BUFFERED, FILE_READ_DATA);
/// Re-reads the rollout settings and the content directory and activates
/// what the policy now selects (write access).
pub const IOCTL_RESCAN: u32 =
    ctl_code(FILE_DEVICE_UNKNOWN, 0x906, METHOD_BUFFERED, FILE_WRITE_DATA);

/// A batch of full events, optionally waiting for them (read access; the
/// message is `crate::stream`'s).
pub const IOCTL_EVENTS_V2: u32 =
    ctl_code(FILE_DEVICE_UNKNOWN, 0x907, METHOD_BUFFERED, FILE_READ_DATA);
/// Soak, breaker and protected-set state and counters (read access).
pub const IOCTL_ENFORCEMENT: u32 =
    ctl_code(FILE_DEVICE_UNKNOWN, 0x908, METHOD_BUFFERED, FILE_READ_DATA);
/// Lifts the circuit breaker's demotion of one rule or of all (write access).
pub const IOCTL_BREAKER_RESET: u32 =
    ctl_code(FILE_DEVICE_UNKNOWN, 0x909, METHOD_BUFFERED, FILE_WRITE_DATA);

/// Every IOCTL code of the control device: the one list (the driver's
/// dispatch, the decoders and the tests take codes from here).
pub const IOCTL_CODES: [u32; 10] = [
    IOCTL_STATUS,
    IOCTL_LOAD,
    IOCTL_EVENTS,
    IOCTL_SET_MODE,
    IOCTL_EVAL,
    IOCTL_ROLLOUT,
    IOCTL_RESCAN,
    IOCTL_EVENTS_V2,
    IOCTL_ENFORCEMENT,
    IOCTL_BREAKER_RESET,
];

/// Whether no two codes are equal (checked at compile time below: two
/// messages under one code would be decoded as each other).
const fn all_distinct(codes: &[u32]) -> bool {
    match codes.split_first() {
        None => true,
        Some((first, rest)) => !contains(rest, *first) && all_distinct(rest),
    }
}

const fn contains(codes: &[u32], code: u32) -> bool {
    match codes.split_first() {
        None => false,
        Some((first, rest)) => *first == code || contains(rest, code),
    }
}
static_assertions::const_assert!(all_distinct(&IOCTL_CODES));

#[path = "proto_enforce.rs"]
mod enforce;
pub use enforce::*;

/// Largest content accepted by LOAD (the parser's own limit may be lower).
pub const MAX_LOAD_LEN: usize = 16 << 20;
/// LOAD flag: accept a sequence not newer than the active one (rollback).
pub const LOAD_FLAG_FORCE: u32 = 1;

channel_format::wire_enum! {
    /// Where content came from.
    Origin: u32 (to_u32, from_u32) {
        /// Nothing (empty slot).
        None = 0 => "none",
        /// A file in the content directory.
        Disk = 1 => "disk",
        /// The LOAD IOCTL.
        Ioctl = 2 => "ioctl",
    }
}

/// Describes one content slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContentInfo {
    /// Channel-file sequence.
    pub sequence: u64,
    /// Rules in it.
    pub rule_count: u32,
    /// File length.
    pub len: u32,
    /// Where it came from.
    pub origin: Origin,
    /// SHA-256 of the file.
    pub digest: [u8; 32],
}

impl ContentInfo {
    /// The empty slot.
    pub const NONE: ContentInfo = ContentInfo {
        sequence: 0,
        rule_count: 0,
        len: 0,
        origin: Origin::None,
        digest: [0; 32],
    };
}

/// Wire length of [`ContentInfo`]: sequence 8, rules 4, len 4, origin 4, reserved 4, digest 32.
pub const CONTENT_INFO_LEN: usize = 56;
const_assert_eq!(CONTENT_INFO_LEN, 8 + 4 + 4 + 4 + 4 + 32);

/// Bytes of a load failure's message.
pub const MESSAGE_LEN: usize = 96;

/// Why content was not loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoadFailure {
    /// Where the content came from ([`Origin::None`]: no failure recorded).
    pub origin: Origin,
    /// Sequence from the file name (disk) or 0 when unknown.
    pub sequence: u64,
    /// A stable code: 1 parse error, 2 I/O error, 3 stale sequence, 4 out of memory, 5 too large,
    /// 6 unsigned, 7 bad signature block, 8 tampered, 9 wrong key, 10 unknown key.
    pub code: u32,
    /// Byte offset of a parse error (`u32::MAX`: none).
    pub offset: u32,
    /// The error, as text.
    pub message: FixedText<MESSAGE_LEN>,
}

/// Failure codes of [`LoadFailure::code`].
pub mod failure {
    /// The parser rejected the content.
    pub const PARSE: u32 = 1;
    /// Reading the file failed.
    pub const IO: u32 = 2;
    /// The sequence is not newer than the active content (LOAD without force).
    pub const STALE: u32 = 3;
    /// No memory for the content.
    pub const NO_MEMORY: u32 = 4;
    /// The content exceeds the size limit.
    pub const TOO_LARGE: u32 = 5;
    /// The file carries no signature (and `RequireSignature` is on).
    pub const UNSIGNED: u32 = 6;
    /// The signature block is malformed.
    pub const BAD_SIGNATURE_BLOCK: u32 = 7;
    /// A trusted key's signature does not verify: the file was modified.
    pub const TAMPERED: u32 = 8;
    /// Validly signed, but by a key the driver does not trust.
    pub const WRONG_KEY: u32 = 9;
    /// Names a key the driver does not know, and does not verify under it.
    pub const UNKNOWN_KEY: u32 = 10;
    /// Older than the highest sequence proven on this machine, and not a
    /// rollback instruction covering it (anti-rollback; force does not help).
    pub const ROLLBACK: u32 = 11;
}

impl LoadFailure {
    /// No failure.
    pub const fn none() -> Self {
        LoadFailure {
            origin: Origin::None,
            sequence: 0,
            code: 0,
            offset: u32::MAX,
            message: FixedText::empty(),
        }
    }
}

/// Wire length of [`LoadFailure`]: origin 4, reserved 4, sequence 8, code 4, offset 4, message.
pub const LOAD_FAILURE_LEN: usize = 24 + MESSAGE_LEN;
const_assert_eq!(LOAD_FAILURE_LEN, 4 + 4 + 8 + 4 + 4 + MESSAGE_LEN);

/// Counters in the status response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counters {
    /// Events evaluated (callbacks and EVAL).
    pub evaluated: u64,
    /// Events a rule matched.
    pub matched: u64,
    /// Operations denied.
    pub denied: u64,
    /// Events recorded in the ring.
    pub events_total: u64,
    /// Events overwritten before they were read.
    pub events_overwritten: u64,
    /// Names that could not be taken or normalized.
    pub name_errors: u64,
    /// Content loads that succeeded.
    pub loads_ok: u64,
    /// Content loads that failed.
    pub loads_failed: u64,
    /// Pool allocations the driver holds right now (content, buffers): it
    /// returns to its earlier value after content is replaced, and to 0 at
    /// unload (the unload log says so), which is the leak check.
    pub pool_live: u64,
    /// Pre-operation callbacks entered (pipe creates and opens, whether or
    /// not content was active).
    pub callbacks: u64,
    /// Opens of the named-pipe root itself (empty name): allowed, not
    /// evaluated (not a pipe).
    pub root_opens: u64,
    /// Operations denied without being evaluated (enforce mode: no working
    /// memory within the wait bound, or a name too long to normalize).
    pub unchecked_denied: u64,
    /// Operations allowed without being evaluated (the same causes in
    /// monitor mode).
    pub unchecked_allowed: u64,
    /// Evaluations that had to wait for working memory.
    pub work_waits: u64,
    /// Waits that ran out (each then decided unchecked).
    pub work_exhausted: u64,
    /// Evaluations waiting for working memory right now.
    pub work_waiting: u64,
    /// The wait bound in force (`WorkWaitMilliseconds`).
    pub work_wait_ms: u64,
    /// Requestor image paths from `SeLocateProcessImageName`.
    pub image_located: u64,
    /// Requestor image paths from the fallback
    /// (`ZwQueryInformationProcess(ProcessImageFileName)`).
    pub image_queried: u64,
    /// Callbacks without a requestor image path (both failed).
    pub image_missing: u64,
    /// Callbacks whose requester SID was read before matching because the
    /// active content reads `User` (the recorder reuses it: one read per
    /// operation).
    pub user_read: u64,
    /// Of those, callbacks whose SID could not be read: rules' `User`
    /// atoms were false for them, as `Image` atoms are without an image
    /// (docs/rules.md "User").
    pub user_missing: u64,
}

/// Number of counters in a STATUS response.
pub const COUNTERS: usize = 22;

impl Counters {
    /// The counters in wire order.
    pub const fn to_array(&self) -> [u64; COUNTERS] {
        [
            self.evaluated,
            self.matched,
            self.denied,
            self.events_total,
            self.events_overwritten,
            self.name_errors,
            self.loads_ok,
            self.loads_failed,
            self.pool_live,
            self.callbacks,
            self.root_opens,
            self.unchecked_denied,
            self.unchecked_allowed,
            self.work_waits,
            self.work_exhausted,
            self.work_waiting,
            self.work_wait_ms,
            self.image_located,
            self.image_queried,
            self.image_missing,
            self.user_read,
            self.user_missing,
        ]
    }
    /// From the wire order.
    pub const fn from_array(a: [u64; COUNTERS]) -> Counters {
        let [evaluated, matched, denied, events_total, events_overwritten, name_errors, loads_ok, loads_failed, pool_live, callbacks, root_opens, unchecked_denied, unchecked_allowed, work_waits, work_exhausted, work_waiting, work_wait_ms, image_located, image_queried, image_missing, user_read, user_missing] =
            a;
        Counters {
            evaluated,
            matched,
            denied,
            events_total,
            events_overwritten,
            name_errors,
            loads_ok,
            loads_failed,
            pool_live,
            callbacks,
            root_opens,
            unchecked_denied,
            unchecked_allowed,
            work_waits,
            work_exhausted,
            work_waiting,
            work_wait_ms,
            image_located,
            image_queried,
            image_missing,
            user_read,
            user_missing,
        }
    }
}

/// Status flag: the minifilter is registered.
pub const FLAG_FILTER_REGISTERED: u32 = 1;
/// Status flag: filtering started.
pub const FLAG_FILTERING: u32 = 2;
/// Status flag: the guard record in the registry was unreadable and reset.
pub const FLAG_GUARD_RESET: u32 = 4;

/// The STATUS response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Status {
    /// Current mode.
    pub mode: Mode,
    /// `FLAG_*` bits.
    pub flags: u32,
    /// Active content.
    pub active: ContentInfo,
    /// Last-known-good content.
    pub lkg: ContentInfo,
    /// Quarantined sequences (0: empty).
    pub quarantined: [u64; QUARANTINE_SLOTS],
    /// Pending (unproven) sequence, 0: none.
    pub pending: u64,
    /// Starts of the pending content.
    pub start_count: u32,
    /// Quarantine threshold.
    pub max_failed: u32,
    /// Newest proven sequence.
    pub proven: u64,
    /// Counters.
    pub counters: Counters,
    /// The last load failure.
    pub last_error: LoadFailure,
}

/// Length of a STATUS response (header included).
pub const STATUS_LEN: usize = HEADER_LEN
    + 8
    + 2 * CONTENT_INFO_LEN
    + 8 * QUARANTINE_SLOTS
    + 24
    + 8 * COUNTERS
    + LOAD_FAILURE_LEN;
const_assert_eq!(STATUS_LEN, 480);

fn put_info(w: &mut Writer<'_>, c: &ContentInfo) -> Result<(), ProtoError> {
    w.u64(c.sequence)?;
    w.u32(c.rule_count)?;
    w.u32(c.len)?;
    w.u32(c.origin.to_u32())?;
    w.u32(0)?;
    w.bytes(&c.digest)
}

fn get_info(r: &mut Reader<'_>) -> Result<ContentInfo, ProtoError> {
    let sequence = r.u64("content")?;
    let rule_count = r.u32("content")?;
    let len = r.u32("content")?;
    let origin =
        Origin::from_u32(r.u32("content")?).ok_or(ProtoError::BadValue { what: "origin" })?;
    let _ = r.u32("content")?;
    let mut digest = [0u8; 32];
    digest.copy_from_slice(r.take(32, "content")?);
    Ok(ContentInfo {
        sequence,
        rule_count,
        len,
        origin,
        digest,
    })
}

fn put_failure(w: &mut Writer<'_>, f: &LoadFailure) -> Result<(), ProtoError> {
    w.u32(f.origin.to_u32())?;
    w.u32(0)?;
    w.u64(f.sequence)?;
    w.u32(f.code)?;
    w.u32(f.offset)?;
    w.bytes(f.message.raw())
}

fn get_failure(r: &mut Reader<'_>) -> Result<LoadFailure, ProtoError> {
    let origin =
        Origin::from_u32(r.u32("failure")?).ok_or(ProtoError::BadValue { what: "origin" })?;
    let _ = r.u32("failure")?;
    let sequence = r.u64("failure")?;
    let code = r.u32("failure")?;
    let offset = r.u32("failure")?;
    let mut raw = [0u8; MESSAGE_LEN];
    raw.copy_from_slice(r.take(MESSAGE_LEN, "failure")?);
    Ok(LoadFailure {
        origin,
        sequence,
        code,
        offset,
        message: FixedText::from_raw(raw),
    })
}

impl Status {
    /// Writes the response into `out`, returning the bytes written.
    ///
    /// # Errors
    /// [`ProtoError::BufferTooSmall`] when `out` is shorter than [`STATUS_LEN`].
    pub fn encode(&self, out: &mut [u8]) -> Result<usize, ProtoError> {
        if out.len() < STATUS_LEN {
            return Err(ProtoError::BufferTooSmall { needed: STATUS_LEN });
        }
        let mut w = Writer::new(out);
        w.header()?;
        w.u32(self.mode.to_u32())?;
        w.u32(self.flags)?;
        put_info(&mut w, &self.active)?;
        put_info(&mut w, &self.lkg)?;
        for q in self.quarantined {
            w.u64(q)?;
        }
        w.u64(self.pending)?;
        w.u32(self.start_count)?;
        w.u32(self.max_failed)?;
        w.u64(self.proven)?;
        for v in self.counters.to_array() {
            w.u64(v)?;
        }
        put_failure(&mut w, &self.last_error)?;
        Ok(w.written())
    }

    /// Parses a response.
    ///
    /// # Errors
    /// Wrong length, header or field values.
    pub fn decode(buf: &[u8]) -> Result<Status, ProtoError> {
        exact(buf, STATUS_LEN, "status response")?;
        let mut r = Reader::new(buf);
        r.header()?;
        let mode = Mode::from_u32(r.u32("mode")?).ok_or(ProtoError::BadValue { what: "mode" })?;
        let flags = r.u32("flags")?;
        let active = get_info(&mut r)?;
        let lkg = get_info(&mut r)?;
        let mut quarantined = [0u64; QUARANTINE_SLOTS];
        for q in &mut quarantined {
            *q = r.u64("quarantined")?;
        }
        let pending = r.u64("guard")?;
        let start_count = r.u32("guard")?;
        let max_failed = r.u32("guard")?;
        let proven = r.u64("guard")?;
        let mut c = [0u64; COUNTERS];
        for v in &mut c {
            *v = r.u64("counters")?;
        }
        let counters = Counters::from_array(c);
        let last_error = get_failure(&mut r)?;
        r.finish("status response")?;
        Ok(Status {
            mode,
            flags,
            active,
            lkg,
            quarantined,
            pending,
            start_count,
            max_failed,
            proven,
            counters,
            last_error,
        })
    }
}

/// A decoded request. Borrowed parts point into the (kernel) input buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request<'a> {
    /// STATUS.
    Status,
    /// LOAD.
    Load {
        /// [`LOAD_FLAG_FORCE`] given.
        force: bool,
        /// The channel file.
        content: &'a [u8],
    },
    /// EVENTS: return at most `max` records.
    Events {
        /// Upper bound on records (also bounded by the output buffer).
        max: u32,
    },
    /// SET_MODE.
    SetMode(Mode),
    /// EVAL.
    Eval(EvalRequest<'a>),
    /// ROLLOUT.
    Rollout,
    /// RESCAN.
    Rescan,
    /// ENFORCEMENT.
    Enforcement,
    /// BREAKER_RESET.
    BreakerReset(ResetTarget),
}

/// The EVAL request: an event to evaluate as the callback would.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EvalRequest<'a> {
    /// Create or connect.
    pub kind: EventKind,
    /// Process id to report.
    pub pid: u32,
    /// UTF-16LE bytes of the pipe name (any spelling; normalized by the driver).
    pub name: &'a [u8],
    /// UTF-16LE bytes of the image path (empty: none).
    pub image: &'a [u8],
    /// UTF-16LE bytes of the requester's SID in string form, the `User`
    /// field (empty: none, as a callback whose SID was not readable).
    /// ASCII, at most [`MAX_EVAL_USER_UNITS`] units (checked by decode).
    pub user: &'a [u8],
}

/// Longest image path an EVAL request may carry, in units.
pub const MAX_EVAL_IMAGE_UNITS: usize = 1024;
/// Longest `User` an EVAL request may carry, in units: a SID's longest
/// string form.
pub const MAX_EVAL_USER_UNITS: usize = crate::event::SID_TEXT_MAX;
/// Fixed part of an EVAL request (header included).
pub const EVAL_REQUEST_FIXED_LEN: usize = HEADER_LEN + 16;
/// Length of LOAD's fixed part (header included).
pub const LOAD_REQUEST_FIXED_LEN: usize = HEADER_LEN + 8;
/// Length of an EVENTS / SET_MODE / STATUS request.
pub const EVENTS_REQUEST_LEN: usize = HEADER_LEN + 8;
/// Length of a SET_MODE request.
pub const MODE_REQUEST_LEN: usize = HEADER_LEN + 8;
/// Length of a STATUS request.
pub const STATUS_REQUEST_LEN: usize = HEADER_LEN;

/// Decodes the input of IOCTL `code`: the header, then the message's own
/// decoder (each sits beside its encoder below), then no bytes may be left.
///
/// # Errors
/// [`ProtoError::UnknownIoctl`] for a code that is not ours; otherwise any
/// length, header or value error. Never panics for any input.
pub fn decode_request(code: u32, input: &[u8]) -> Result<Request<'_>, ProtoError> {
    let mut r = Reader::new(input);
    let req = match code {
        IOCTL_STATUS => {
            r.header()?;
            Request::Status
        }
        IOCTL_ROLLOUT => {
            r.header()?;
            Request::Rollout
        }
        IOCTL_RESCAN => {
            r.header()?;
            Request::Rescan
        }
        IOCTL_ENFORCEMENT => {
            r.header()?;
            Request::Enforcement
        }
        IOCTL_BREAKER_RESET => {
            return decode_breaker_reset_request(input).map(Request::BreakerReset)
        }
        IOCTL_LOAD => {
            r.header()?;
            decode_load_body(&mut r)?
        }
        IOCTL_EVENTS => {
            r.header()?;
            decode_events_body(&mut r)?
        }
        IOCTL_SET_MODE => {
            r.header()?;
            decode_mode_body(&mut r)?
        }
        IOCTL_EVAL => {
            r.header()?;
            decode_eval_body(&mut r)?
        }
        _ => return Err(ProtoError::UnknownIoctl),
    };
    r.finish("request")?;
    Ok(req)
}

/// Encodes a STATUS request (also the whole of a ROLLOUT, RESCAN or
/// ENFORCEMENT request).
///
/// # Errors
/// [`ProtoError::BufferTooSmall`].
pub fn encode_status_request(out: &mut [u8]) -> Result<usize, ProtoError> {
    let mut w = Writer::new(out);
    w.header()?;
    Ok(w.written())
}

/// Length of a LOAD request carrying `content_len` bytes.
pub const fn load_request_len(content_len: usize) -> usize {
    LOAD_REQUEST_FIXED_LEN.saturating_add(content_len)
}

/// Encodes a LOAD request.
///
/// # Errors
/// [`ProtoError::BufferTooSmall`], or `BadLength` for content over [`MAX_LOAD_LEN`].
pub fn encode_load_request(
    out: &mut [u8],
    force: bool,
    content: &[u8],
) -> Result<usize, ProtoError> {
    let len = u32::try_from(content.len())
        .ok()
        .filter(|_| content.len() <= MAX_LOAD_LEN)
        .ok_or(ProtoError::BadLength {
            what: "content length",
            expected: MAX_LOAD_LEN,
            found: content.len(),
        })?;
    let mut w = Writer::new(out);
    w.header()?;
    w.u32(if force { LOAD_FLAG_FORCE } else { 0 })?;
    w.u32(len)?;
    w.bytes(content)?;
    Ok(w.written())
}

/// Decodes a LOAD request after its header.
fn decode_load_body<'a>(r: &mut Reader<'a>) -> Result<Request<'a>, ProtoError> {
    let flags = r.u32("load flags")?;
    if flags & !LOAD_FLAG_FORCE != 0 {
        return Err(ProtoError::BadValue { what: "load flags" });
    }
    let len = usize::try_from(r.u32("load length")?).unwrap_or(usize::MAX);
    if len > MAX_LOAD_LEN {
        return Err(ProtoError::BadLength {
            what: "content length",
            expected: MAX_LOAD_LEN,
            found: len,
        });
    }
    if len != r.left() {
        return Err(ProtoError::BadLength {
            what: "content length",
            expected: r.left(),
            found: len,
        });
    }
    Ok(Request::Load {
        force: flags & LOAD_FLAG_FORCE != 0,
        content: r.take(len, "content")?,
    })
}

/// Encodes an EVENTS request.
///
/// # Errors
/// [`ProtoError::BufferTooSmall`].
pub fn encode_events_request(out: &mut [u8], max: u32) -> Result<usize, ProtoError> {
    let mut w = Writer::new(out);
    w.header()?;
    w.u32(max)?;
    w.u32(0)?;
    Ok(w.written())
}

/// Decodes an EVENTS request after its header.
fn decode_events_body<'a>(r: &mut Reader<'a>) -> Result<Request<'a>, ProtoError> {
    let max = r.u32("events max")?;
    if r.u32("reserved")? != 0 {
        return Err(ProtoError::BadValue { what: "reserved" });
    }
    Ok(Request::Events { max })
}

/// Encodes a SET_MODE request.
///
/// # Errors
/// [`ProtoError::BufferTooSmall`].
pub fn encode_mode_request(out: &mut [u8], mode: Mode) -> Result<usize, ProtoError> {
    let mut w = Writer::new(out);
    w.header()?;
    w.u32(mode.to_u32())?;
    w.u32(0)?;
    Ok(w.written())
}

/// Decodes a SET_MODE request after its header.
fn decode_mode_body<'a>(r: &mut Reader<'a>) -> Result<Request<'a>, ProtoError> {
    let mode = Mode::from_u32(r.u32("mode")?).ok_or(ProtoError::BadValue { what: "mode" })?;
    if r.u32("reserved")? != 0 {
        return Err(ProtoError::BadValue { what: "reserved" });
    }
    Ok(Request::SetMode(mode))
}

/// Length of an EVAL request.
pub const fn eval_request_len(name_units: usize, image_units: usize, user_units: usize) -> usize {
    EVAL_REQUEST_FIXED_LEN
        .saturating_add(name_units.saturating_mul(2))
        .saturating_add(image_units.saturating_mul(2))
        .saturating_add(user_units.saturating_mul(2))
}

/// Encodes an EVAL request. Layout after the header: kind u32, pid u32,
/// name length u16, image length u16, user length u16 (all in units),
/// reserved u16 (0), then the name, image and user units (UTF-16LE). A
/// request from before `User` (its reserved u32 zero) reads as one
/// without a user.
///
/// # Errors
/// [`ProtoError::BufferTooSmall`], or `BadLength` when a text is too long.
pub fn encode_eval_request(
    out: &mut [u8],
    kind: EventKind,
    pid: u32,
    name: &[u16],
    image: &[u16],
    user: &[u16],
) -> Result<usize, ProtoError> {
    let n = u16::try_from(name.len()).map_err(|_| ProtoError::BadLength {
        what: "name length",
        expected: MAX_NAME_UNITS * 2,
        found: name.len(),
    })?;
    let i = u16::try_from(image.len()).map_err(|_| ProtoError::BadLength {
        what: "image length",
        expected: MAX_EVAL_IMAGE_UNITS,
        found: image.len(),
    })?;
    let u = u16::try_from(user.len()).map_err(|_| ProtoError::BadLength {
        what: "user length",
        expected: MAX_EVAL_USER_UNITS,
        found: user.len(),
    })?;
    let mut w = Writer::new(out);
    w.header()?;
    w.u32(u32::from(kind.to_u8()))?;
    w.u32(pid)?;
    w.u16(n)?;
    w.u16(i)?;
    w.u16(u)?;
    w.u16(0)?;
    w.units(name)?;
    w.units(image)?;
    w.units(user)?;
    Ok(w.written())
}

/// Decodes an EVAL request after its header.
fn decode_eval_body<'a>(r: &mut Reader<'a>) -> Result<Request<'a>, ProtoError> {
    let kind = EventKind::from_u32(r.u32("event kind")?)
        .ok_or(ProtoError::BadValue { what: "event kind" })?;
    let pid = r.u32("pid")?;
    let name_units = usize::from(r.u16("name length")?);
    let image_units = usize::from(r.u16("image length")?);
    let user_units = usize::from(r.u16("user length")?);
    if r.u16("reserved")? != 0 {
        return Err(ProtoError::BadValue { what: "reserved" });
    }
    if name_units == 0 || name_units > MAX_NAME_UNITS * 2 {
        return Err(ProtoError::BadLength {
            what: "name length",
            expected: MAX_NAME_UNITS * 2,
            found: name_units,
        });
    }
    if image_units > MAX_EVAL_IMAGE_UNITS {
        return Err(ProtoError::BadLength {
            what: "image length",
            expected: MAX_EVAL_IMAGE_UNITS,
            found: image_units,
        });
    }
    if user_units > MAX_EVAL_USER_UNITS {
        return Err(ProtoError::BadLength {
            what: "user length",
            expected: MAX_EVAL_USER_UNITS,
            found: user_units,
        });
    }
    // Each is at most 1024 units, so these cannot overflow.
    let name_bytes = name_units.saturating_mul(2);
    let image_bytes = image_units.saturating_mul(2);
    let user_bytes = user_units.saturating_mul(2);
    let text_bytes = name_bytes
        .saturating_add(image_bytes)
        .saturating_add(user_bytes);
    if text_bytes != r.left() {
        return Err(ProtoError::BadLength {
            what: "eval text",
            expected: text_bytes,
            found: r.left(),
        });
    }
    let name = r.take(name_bytes, "name")?;
    let image = r.take(image_bytes, "image")?;
    let user = r.take(user_bytes, "user")?;
    // A SID's string form is ASCII; anything else is refused here, not
    // matched as something the sensor could never supply.
    if user
        .chunks_exact(2)
        .any(|u| !matches!(u, [lo, 0] if lo.is_ascii_graphic()))
    {
        return Err(ProtoError::BadValue {
            what: "user (a SID in string form: printable ASCII)",
        });
    }
    Ok(Request::Eval(EvalRequest {
        kind,
        pid,
        name,
        image,
        user,
    }))
}

/// LOAD result values.
pub mod load_result {
    /// Loaded and active.
    pub const LOADED: u32 = 0;
    /// Rejected: see the failure.
    pub const REJECTED: u32 = 1;
}

/// The LOAD response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoadResponse {
    /// [`load_result`] value.
    pub result: u32,
    /// The sequence now active (0: none).
    pub active_sequence: u64,
    /// Why it was rejected (origin None when loaded).
    pub failure: LoadFailure,
}

/// Length of a LOAD response.
pub const LOAD_RESPONSE_LEN: usize = HEADER_LEN + 16 + LOAD_FAILURE_LEN;

impl LoadResponse {
    /// Writes the response.
    ///
    /// # Errors
    /// [`ProtoError::BufferTooSmall`].
    pub fn encode(&self, out: &mut [u8]) -> Result<usize, ProtoError> {
        if out.len() < LOAD_RESPONSE_LEN {
            return Err(ProtoError::BufferTooSmall {
                needed: LOAD_RESPONSE_LEN,
            });
        }
        let mut w = Writer::new(out);
        w.header()?;
        w.u32(self.result)?;
        w.u32(0)?;
        w.u64(self.active_sequence)?;
        put_failure(&mut w, &self.failure)?;
        Ok(w.written())
    }
    /// Parses a response.
    ///
    /// # Errors
    /// Wrong length, header or values.
    pub fn decode(buf: &[u8]) -> Result<Self, ProtoError> {
        exact(buf, LOAD_RESPONSE_LEN, "load response")?;
        let mut r = Reader::new(buf);
        r.header()?;
        let result = r.u32("result")?;
        let _ = r.u32("reserved")?;
        let active_sequence = r.u64("sequence")?;
        let failure = get_failure(&mut r)?;
        r.finish("load response")?;
        Ok(LoadResponse {
            result,
            active_sequence,
            failure,
        })
    }
}

/// Length of a SET_MODE response.
pub const MODE_RESPONSE_LEN: usize = HEADER_LEN + 8;

/// Writes a SET_MODE response.
///
/// # Errors
/// [`ProtoError::BufferTooSmall`].
pub fn encode_mode_response(
    out: &mut [u8],
    previous: Mode,
    current: Mode,
) -> Result<usize, ProtoError> {
    if out.len() < MODE_RESPONSE_LEN {
        return Err(ProtoError::BufferTooSmall {
            needed: MODE_RESPONSE_LEN,
        });
    }
    let mut w = Writer::new(out);
    w.header()?;
    w.u32(previous.to_u32())?;
    w.u32(current.to_u32())?;
    Ok(w.written())
}

/// Parses a SET_MODE response into (previous, current).
///
/// # Errors
/// Wrong length, header or values.
pub fn decode_mode_response(buf: &[u8]) -> Result<(Mode, Mode), ProtoError> {
    exact(buf, MODE_RESPONSE_LEN, "mode response")?;
    let mut r = Reader::new(buf);
    r.header()?;
    let p = Mode::from_u32(r.u32("mode")?).ok_or(ProtoError::BadValue { what: "mode" })?;
    let c = Mode::from_u32(r.u32("mode")?).ok_or(ProtoError::BadValue { what: "mode" })?;
    r.finish("mode response")?;
    Ok((p, c))
}

/// Wire length of one event record.
pub const EVENT_WIRE_LEN: usize = 32 + 2 * NAME_CAP + 2 * IMAGE_CAP;
const_assert_eq!(
    EVENT_WIRE_LEN,
    8 + 8 + 4 + 4 + 4 + 2 + 2 + 2 * NAME_CAP + 2 * IMAGE_CAP
);
/// Fixed part of an EVENTS response.
pub const EVENTS_RESPONSE_FIXED_LEN: usize = HEADER_LEN + 16;

/// Writes an EVENTS response from records popped by `next` until `max`
/// records or the buffer is full. Returns (bytes written, records written).
///
/// # Errors
/// [`ProtoError::BufferTooSmall`] when not even one record fits.
pub fn encode_events_response(
    out: &mut [u8],
    max: u32,
    overwritten: u64,
    mut next: impl FnMut() -> Option<EventRecord>,
) -> Result<(usize, u32), ProtoError> {
    let needed = EVENTS_RESPONSE_FIXED_LEN.saturating_add(EVENT_WIRE_LEN);
    if out.len() < needed {
        return Err(ProtoError::BufferTooSmall { needed });
    }
    let room = out
        .len()
        .saturating_sub(EVENTS_RESPONSE_FIXED_LEN)
        .checked_div(EVENT_WIRE_LEN)
        .unwrap_or(0);
    let limit = room.min(usize::try_from(max).unwrap_or(usize::MAX));
    let (head, body) = out
        .split_at_mut_checked(EVENTS_RESPONSE_FIXED_LEN)
        .ok_or(ProtoError::BufferTooSmall { needed })?;
    let mut w = Writer::new(body);
    let mut count = 0u32;
    while usize::try_from(count).unwrap_or(usize::MAX) < limit {
        let Some(e) = next() else { break };
        w.u64(e.id)?;
        w.u64(e.time)?;
        w.u32(e.pid)?;
        w.u32(e.rule_id)?;
        w.bytes(&[e.kind, e.decision, e.action, e.severity])?;
        w.u16(e.name_len)?;
        w.u16(e.image_len)?;
        w.units(&e.name)?;
        w.units(&e.image)?;
        count = count.saturating_add(1);
    }
    let body_len = w.written();
    let mut h = Writer::new(head);
    h.header()?;
    h.u32(count)?;
    h.u32(0)?;
    h.u64(overwritten)?;
    Ok((EVENTS_RESPONSE_FIXED_LEN.saturating_add(body_len), count))
}

/// Parses an EVENTS response, calling `each` per record; returns `overwritten`.
///
/// # Errors
/// Wrong length (the count must match the bytes exactly), header or values.
pub fn decode_events_response(
    buf: &[u8],
    mut each: impl FnMut(EventRecord),
) -> Result<u64, ProtoError> {
    let mut r = Reader::new(buf);
    r.header()?;
    let count = usize::try_from(r.u32("event count")?).unwrap_or(usize::MAX);
    let _ = r.u32("reserved")?;
    let overwritten = r.u64("overwritten")?;
    let body = count
        .checked_mul(EVENT_WIRE_LEN)
        .ok_or(ProtoError::BadLength {
            what: "events",
            expected: r.left(),
            found: usize::MAX,
        })?;
    if body != r.left() {
        return Err(ProtoError::BadLength {
            what: "events",
            expected: body,
            found: r.left(),
        });
    }
    for _ in 0..count {
        let mut e = EventRecord::EMPTY;
        e.id = r.u64("event")?;
        e.time = r.u64("event")?;
        e.pid = r.u32("event")?;
        e.rule_id = r.u32("event")?;
        e.kind = r.u8("event")?;
        e.decision = r.u8("event")?;
        e.action = r.u8("event")?;
        e.severity = r.u8("event")?;
        e.name_len = r.u16("event")?;
        e.image_len = r.u16("event")?;
        if usize::from(e.name_len) > NAME_CAP || usize::from(e.image_len) > IMAGE_CAP {
            return Err(ProtoError::BadValue {
                what: "event text length",
            });
        }
        for u in &mut e.name {
            *u = r.u16("event")?;
        }
        for u in &mut e.image {
            *u = r.u16("event")?;
        }
        each(e);
    }
    r.finish("events response")?;
    Ok(overwritten)
}

/// Bytes of the rule name in an EVAL response.
pub const RULE_NAME_LEN: usize = 64;

/// The EVAL response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EvalResponse {
    /// The decision under the current mode.
    pub decision: Decision,
    /// Best rule's action (0 when none).
    pub action: u8,
    /// Best rule's severity (0 when none).
    pub severity: u8,
    /// Whether a rule matched.
    pub has_rule: bool,
    /// Best rule id.
    pub rule_id: u32,
    /// Rules that matched.
    pub matched: u32,
    /// The content sequence evaluated against (0: none active).
    pub sequence: u64,
    /// Best rule's name, cut.
    pub rule_name: FixedText<RULE_NAME_LEN>,
    /// Units used in `name`.
    pub name_len: u16,
    /// The normalized name that was evaluated.
    pub name: [u16; MAX_NAME_UNITS],
}

/// Length of an EVAL response.
pub const EVAL_RESPONSE_LEN: usize =
    HEADER_LEN + 4 + 4 + 4 + 4 + 8 + RULE_NAME_LEN + 8 + 2 * MAX_NAME_UNITS;

impl EvalResponse {
    /// The normalized name units.
    pub fn name(&self) -> &[u16] {
        self.name.get(..usize::from(self.name_len)).unwrap_or(&[])
    }
    /// Writes the response.
    ///
    /// # Errors
    /// [`ProtoError::BufferTooSmall`].
    pub fn encode(&self, out: &mut [u8]) -> Result<usize, ProtoError> {
        if out.len() < EVAL_RESPONSE_LEN {
            return Err(ProtoError::BufferTooSmall {
                needed: EVAL_RESPONSE_LEN,
            });
        }
        let mut w = Writer::new(out);
        w.header()?;
        w.bytes(&[
            self.decision.to_u8(),
            self.action,
            self.severity,
            u8::from(self.has_rule),
        ])?;
        w.u32(self.rule_id)?;
        w.u32(self.matched)?;
        w.u32(0)?;
        w.u64(self.sequence)?;
        w.bytes(self.rule_name.raw())?;
        w.u16(self.name_len)?;
        w.zeros(6)?;
        w.units(&self.name)?;
        Ok(w.written())
    }
    /// Parses a response.
    ///
    /// # Errors
    /// Wrong length, header or values.
    pub fn decode(buf: &[u8]) -> Result<Self, ProtoError> {
        exact(buf, EVAL_RESPONSE_LEN, "eval response")?;
        let mut r = Reader::new(buf);
        r.header()?;
        let decision = Decision::from_u8(r.u8("decision")?)
            .ok_or(ProtoError::BadValue { what: "decision" })?;
        let action = r.u8("action")?;
        let severity = r.u8("severity")?;
        let has_rule = match r.u8("has rule")? {
            0 => false,
            1 => true,
            _ => return Err(ProtoError::BadValue { what: "has rule" }),
        };
        let rule_id = r.u32("rule id")?;
        let matched = r.u32("matched")?;
        let _ = r.u32("reserved")?;
        let sequence = r.u64("sequence")?;
        let mut raw = [0u8; RULE_NAME_LEN];
        raw.copy_from_slice(r.take(RULE_NAME_LEN, "rule name")?);
        let name_len = r.u16("name length")?;
        if usize::from(name_len) > MAX_NAME_UNITS {
            return Err(ProtoError::BadValue {
                what: "name length",
            });
        }
        let _ = r.take(6, "padding")?;
        let mut name = [0u16; MAX_NAME_UNITS];
        for u in &mut name {
            *u = r.u16("name")?;
        }
        r.finish("eval response")?;
        Ok(EvalResponse {
            decision,
            action,
            severity,
            has_rule,
            rule_id,
            matched,
            sequence,
            rule_name: FixedText::from_raw(raw),
            name_len,
            name,
        })
    }
}

/// Known files a [`RolloutStatus`] describes (the newest).
pub const ROLLOUT_FILES: usize = 16;
/// Wire length of one [`RolloutFile`]: sequence 8, reason code 4, reserved 4, values 2 × 8.
pub const ROLLOUT_FILE_LEN: usize = 32;
/// Length of a ROLLOUT / RESCAN response (header included).
pub const ROLLOUT_STATUS_LEN: usize = HEADER_LEN + 48 + ROLLOUT_FILES * ROLLOUT_FILE_LEN;
const_assert_eq!(ROLLOUT_FILE_LEN, 8 + 4 + 4 + 8 + 8);
const_assert_eq!(ROLLOUT_STATUS_LEN, 568);

/// [`RolloutStatus::flags`]: the `ContentControl` value was not understood
/// (the driver follows `latest`).
pub const ROLLOUT_FLAG_BAD_CONTROL: u32 = 1;
/// [`RolloutStatus::flags`]: the `Ring` value was not understood (the
/// driver uses `broad`).
pub const ROLLOUT_FLAG_BAD_RING: u32 = 2;
/// [`RolloutStatus::flags`]: no machine id was found; the bucket is the
/// last one (99.999 %), so this machine adopts staged content last.
pub const ROLLOUT_FLAG_NO_MACHINE_ID: u32 = 4;

channel_format::wire_enum! {
    /// Where the machine id behind the bucket came from.
    MachineIdSource: u32 (to_u32, from_u32) {
        /// None found.
        None = 0 => "none",
        /// The service key's `MachineId` value.
        ServiceKey = 1 => "service-key",
        /// `HKLM\SOFTWARE\Microsoft\Cryptography\MachineGuid`.
        MachineGuid = 2 => "machine-guid",
    }
}

/// One known content file and why it was or was not adopted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RolloutFile {
    /// Its sequence.
    pub sequence: u64,
    /// The verdict.
    pub reason: Reason,
}

impl RolloutFile {
    /// An unused slot.
    pub const NONE: RolloutFile = RolloutFile {
        sequence: 0,
        reason: Reason::Unknown,
    };
}

/// The ROLLOUT response: this machine's rollout inputs and the last
/// selection's verdict on each known file (newest first).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RolloutStatus {
    /// This machine's ring.
    pub ring: Ring,
    /// Its bucket (thousandths of a percent).
    pub bucket_milli: u32,
    /// The customer's control setting.
    pub control: Control,
    /// `ROLLOUT_FLAG_*` bits.
    pub flags: u32,
    /// Where the machine id came from.
    pub id_source: MachineIdSource,
    /// Files known at the last selection (may exceed [`ROLLOUT_FILES`]).
    pub count: u32,
    /// The time of the last selection (Unix seconds, UTC).
    pub now: u64,
    /// The highest sequence proven on this machine.
    pub highest_proven: u64,
    /// The first `min(count, ROLLOUT_FILES)` are used.
    pub files: [RolloutFile; ROLLOUT_FILES],
}

impl RolloutStatus {
    /// Nothing selected yet.
    pub const EMPTY: RolloutStatus = RolloutStatus {
        ring: Ring::BROAD,
        bucket_milli: 0,
        control: Control::Latest,
        flags: 0,
        id_source: MachineIdSource::None,
        count: 0,
        now: 0,
        highest_proven: 0,
        files: [RolloutFile::NONE; ROLLOUT_FILES],
    };

    /// The described files.
    pub fn files(&self) -> &[RolloutFile] {
        let n = usize::try_from(self.count)
            .unwrap_or(usize::MAX)
            .min(ROLLOUT_FILES);
        self.files.get(..n).unwrap_or(&[])
    }

    /// Writes the response into `out`, returning the bytes written.
    ///
    /// # Errors
    /// [`ProtoError::BufferTooSmall`] when `out` is shorter than [`ROLLOUT_STATUS_LEN`].
    pub fn encode(&self, out: &mut [u8]) -> Result<usize, ProtoError> {
        if out.len() < ROLLOUT_STATUS_LEN {
            return Err(ProtoError::BufferTooSmall {
                needed: ROLLOUT_STATUS_LEN,
            });
        }
        let mut w = Writer::new(out);
        w.header()?;
        let (kind, pin) = self.control.to_wire();
        w.u32(u32::from(self.ring.0))?;
        w.u32(self.bucket_milli)?;
        w.u32(kind)?;
        w.u32(self.flags)?;
        w.u64(pin)?;
        w.u32(self.id_source.to_u32())?;
        w.u32(self.count)?;
        w.u64(self.now)?;
        w.u64(self.highest_proven)?;
        for f in &self.files {
            let (code, a, b) = f.reason.to_wire();
            w.u64(f.sequence)?;
            w.u32(code)?;
            w.u32(0)?;
            w.u64(a)?;
            w.u64(b)?;
        }
        Ok(w.written())
    }

    /// Parses a response.
    ///
    /// # Errors
    /// Wrong length, header or field values.
    pub fn decode(buf: &[u8]) -> Result<RolloutStatus, ProtoError> {
        exact(buf, ROLLOUT_STATUS_LEN, "rollout response")?;
        let mut r = Reader::new(buf);
        r.header()?;
        let ring = u8::try_from(r.u32("ring")?)
            .ok()
            .map(Ring)
            .filter(|r| r.is_known())
            .ok_or(ProtoError::BadValue { what: "ring" })?;
        let bucket_milli = r.u32("bucket")?;
        let kind = r.u32("control")?;
        let flags = r.u32("flags")?;
        let pin = r.u64("control")?;
        let control =
            Control::from_wire(kind, pin).ok_or(ProtoError::BadValue { what: "control" })?;
        let id_source =
            MachineIdSource::from_u32(r.u32("machine id source")?).ok_or(ProtoError::BadValue {
                what: "machine id source",
            })?;
        let count = r.u32("count")?;
        let now = r.u64("now")?;
        let highest_proven = r.u64("highest proven")?;
        let mut files = [RolloutFile::NONE; ROLLOUT_FILES];
        for f in &mut files {
            let sequence = r.u64("file")?;
            let code = r.u32("file")?;
            let _ = r.u32("file")?;
            let a = r.u64("file")?;
            let b = r.u64("file")?;
            *f = RolloutFile {
                sequence,
                reason: Reason::from_wire(code, a, b)
                    .ok_or(ProtoError::BadValue { what: "reason" })?,
            };
        }
        r.finish("rollout response")?;
        Ok(RolloutStatus {
            ring,
            bucket_milli,
            control,
            flags,
            id_source,
            count,
            now,
            highest_proven,
            files,
        })
    }
}

#[cfg(test)]
#[path = "proto_test.rs"]
mod tests;
