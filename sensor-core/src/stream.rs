//! The event stream: the EVENTS_V2 IOCTL, which returns a batch of full
//! [`PipeEvent`]s and can wait for them.
//!
//! The version-1 EVENTS IOCTL ([`crate::proto`]) stays for old clients; this
//! module adds one request beside it, with its encoder and decoder side by
//! side. It uses the same 8-byte header, `METHOD_BUFFERED` and exact-length
//! rules as [`crate::proto`].
//!
//! # Request ([`STREAM_REQUEST_LEN`] bytes)
//! | offset | size | field |
//! |---:|---:|---|
//! | 0 | 8 | header |
//! | 8 | 4 | max: most events to return (≥ 1) |
//! | 12 | 4 | flags: bit 0 [`STREAM_FLAG_WAIT`]; other bits zero |
//!
//! Without WAIT the driver answers at once (possibly with 0 events). With
//! WAIT and an empty ring the driver pends the request and completes it
//! when events arrive (the wake-up, [`crate::waitq`]), when the reader
//! cancels it (`CancelIoEx`, the reader's handle closing, its process
//! exiting: `STATUS_CANCELLED`), or when the driver unloads (completed with
//! whatever the ring still holds).
//!
//! # Response
//! | offset | size | field |
//! |---:|---:|---|
//! | 0 | 8 | header |
//! | 8 | 4 | count |
//! | 12 | 4 | reserved, zero |
//! | 16 | 8 | lost: events overwritten before anyone read them, since the driver started |
//! | 24 | 8 | pushed: events recorded since the driver started (the last id) |
//! | 32 | … | `count` records, each [`record_len`] bytes |
//!
//! # Record ([`RECORD_FIXED_LEN`] bytes, then the variable part)
//! | offset | size | field |
//! |---:|---:|---|
//! | 0 | 4 | record length (multiple of 8) |
//! | 4 | 1 | kind (1 create, 2 connect) |
//! | 5 | 1 | decision (any value: a wire enum) |
//! | 6 | 1 | action |
//! | 7 | 1 | severity |
//! | 8 | 8 | id |
//! | 16 | 8 | time (UTC, 100 ns since 1601) |
//! | 24 | 8 | process creation time |
//! | 32 | 16 | process GUID |
//! | 48 | 8 | content sequence |
//! | 56 | 4 | pid |
//! | 60 | 4 | rule id |
//! | 64 | 4 | flags (`event::FLAG_*`; unknown bits are kept) |
//! | 68 | 2 | name units `n` (≤ 260) |
//! | 70 | 2 | image units `m` (≤ 1024) |
//! | 72 | 1 | SID bytes `s` (0 or a valid SID ≤ 68) |
//! | 73 | 7 | reserved, zero |
//! | 80 | 64 | rule name, UTF-8, zero-padded |
//! | 144 | 2n | pipe name, UTF-16LE |
//! | … | 2m | image path, UTF-16LE |
//! | … | s | SID |
//! | … | 0–7 | zero padding to 8 |

use crate::codec::{utf16le_into, FixedText, ProtoError, Reader, Writer, HEADER_LEN};
use crate::event::{PipeEvent, ProcessGuid, Sid, IMAGE_UNITS, NAME_CAP, SID_MAX};
pub use crate::proto::IOCTL_EVENTS_V2;
use crate::proto::{IOCTL_EVENTS, RULE_NAME_LEN};
use crate::ring::EventRing;
use static_assertions::const_assert_eq;

// EVENTS_V2 (defined with the other codes in `proto`) has EVENTS' device,
// access and method.
const_assert_eq!(IOCTL_EVENTS_V2 & 0xFFFF_C003, IOCTL_EVENTS & 0xFFFF_C003);

/// Request flag: pend until events arrive when the ring is empty.
pub const STREAM_FLAG_WAIT: u32 = 1;
/// Length of an EVENTS_V2 request.
pub const STREAM_REQUEST_LEN: usize = HEADER_LEN + 8;
/// Fixed part of an EVENTS_V2 response.
pub const BATCH_FIXED_LEN: usize = HEADER_LEN + 24;
/// Fixed part of one record.
pub const RECORD_FIXED_LEN: usize = 144;
const_assert_eq!(
    RECORD_FIXED_LEN,
    4 + 4 + 8 + 8 + 8 + 16 + 8 + 4 + 4 + 4 + 2 + 2 + 1 + 7 + RULE_NAME_LEN
);
/// The longest record: every bound at its maximum.
pub const RECORD_MAX_LEN: usize = pad8(RECORD_FIXED_LEN + 2 * NAME_CAP + 2 * IMAGE_UNITS + SID_MAX);
const_assert_eq!(RECORD_MAX_LEN, 2784);
/// The smallest output buffer EVENTS_V2 accepts: room for one longest record.
pub const BATCH_MIN_OUT: usize = BATCH_FIXED_LEN + RECORD_MAX_LEN;

/// `n` rounded up to a multiple of 8 (saturating: lengths here are ≤ 2,784).
const fn pad8(n: usize) -> usize {
    n.saturating_add(7) & !7
}

/// A decoded EVENTS_V2 request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamRequest {
    /// Most events to return (≥ 1; also bounded by the output buffer).
    pub max: u32,
    /// Pend while the ring is empty.
    pub wait: bool,
}

/// Decodes an EVENTS_V2 request.
///
/// # Errors
/// [`ProtoError::UnknownIoctl`] for another code; length, header, `max` of
/// 0 or unknown flag bits otherwise. Never panics.
pub fn decode_stream_request(code: u32, input: &[u8]) -> Result<StreamRequest, ProtoError> {
    if code != IOCTL_EVENTS_V2 {
        return Err(ProtoError::UnknownIoctl);
    }
    if input.len() != STREAM_REQUEST_LEN {
        return Err(ProtoError::BadLength {
            what: "events v2 request",
            expected: STREAM_REQUEST_LEN,
            found: input.len(),
        });
    }
    let mut r = Reader::new(input);
    r.header()?;
    let max = r.u32("events max")?;
    if max == 0 {
        return Err(ProtoError::BadValue { what: "events max" });
    }
    let flags = r.u32("events flags")?;
    if flags & !STREAM_FLAG_WAIT != 0 {
        return Err(ProtoError::BadValue {
            what: "events flags",
        });
    }
    r.finish("events v2 request")?;
    Ok(StreamRequest {
        max,
        wait: flags & STREAM_FLAG_WAIT != 0,
    })
}

/// Encodes an EVENTS_V2 request.
///
/// # Errors
/// [`ProtoError::BufferTooSmall`].
pub fn encode_stream_request(out: &mut [u8], req: StreamRequest) -> Result<usize, ProtoError> {
    let mut w = Writer::new(out);
    w.header()?;
    w.u32(req.max)?;
    w.u32(if req.wait { STREAM_FLAG_WAIT } else { 0 })?;
    Ok(w.written())
}

/// Wire length of `e`'s record.
pub fn record_len(e: &PipeEvent) -> usize {
    pad8(
        RECORD_FIXED_LEN
            .saturating_add(e.name().len().saturating_mul(2))
            .saturating_add(e.image().len().saturating_mul(2))
            .saturating_add(e.sid.as_bytes().len()),
    )
}

/// Writes one record. Returns the bytes written.
///
/// # Errors
/// [`ProtoError::BufferTooSmall`] when it does not fit (nothing useful written).
pub fn encode_record(out: &mut [u8], e: &PipeEvent) -> Result<usize, ProtoError> {
    let len = record_len(e);
    let dst = out
        .get_mut(..len)
        .ok_or(ProtoError::BufferTooSmall { needed: len })?;
    let mut w = Writer::new(dst);
    w.u32(u32::try_from(len).unwrap_or(u32::MAX))?;
    w.bytes(&[e.kind, e.decision, e.action, e.severity])?;
    w.u64(e.id)?;
    w.u64(e.time)?;
    w.u64(e.process_time)?;
    w.bytes(&e.process_guid.0)?;
    w.u64(e.sequence)?;
    w.u32(e.pid)?;
    w.u32(e.rule_id)?;
    w.u32(e.flags)?;
    w.u16(u16::try_from(e.name().len()).unwrap_or(0))?;
    w.u16(u16::try_from(e.image().len()).unwrap_or(0))?;
    w.u8(u8::try_from(e.sid.as_bytes().len()).unwrap_or(0))?;
    w.zeros(7)?;
    w.bytes(e.rule_name.raw())?;
    w.units(e.name())?;
    w.units(e.image())?;
    w.bytes(e.sid.as_bytes())?;
    let pad = len.saturating_sub(w.written());
    w.zeros(pad)?;
    Ok(w.written())
}

/// What a batch says besides its records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BatchInfo {
    /// Records in the batch.
    pub count: u32,
    /// Events overwritten before anyone read them, since the driver started.
    pub lost: u64,
    /// Events recorded since the driver started.
    pub pushed: u64,
}

/// Writes an EVENTS_V2 response, moving up to `max` events out of `ring`
/// (oldest first) while they fit; an event that does not fit stays in the
/// ring. Returns (bytes written, events written).
///
/// # Errors
/// [`ProtoError::BufferTooSmall`] when `out` is shorter than [`BATCH_MIN_OUT`]
/// (nothing is taken from the ring).
pub fn encode_batch<const N: usize>(
    out: &mut [u8],
    max: u32,
    ring: &mut EventRing<N, PipeEvent>,
) -> Result<(usize, u32), ProtoError> {
    if out.len() < BATCH_MIN_OUT {
        return Err(ProtoError::BufferTooSmall {
            needed: BATCH_MIN_OUT,
        });
    }
    let (head, body) =
        out.split_at_mut_checked(BATCH_FIXED_LEN)
            .ok_or(ProtoError::BufferTooSmall {
                needed: BATCH_MIN_OUT,
            })?;
    let mut pos = 0usize;
    let mut count = 0u32;
    while count < max {
        let room = body.get_mut(pos..).unwrap_or(&mut []);
        let Some(n) = ring.pop_if(|e| encode_record(room, e).ok()) else {
            break;
        };
        pos = pos.saturating_add(n);
        count = count.saturating_add(1);
    }
    let mut h = Writer::new(head);
    h.header()?;
    h.u32(count)?;
    h.u32(0)?;
    h.u64(ring.overwritten())?;
    h.u64(ring.total())?;
    Ok((BATCH_FIXED_LEN.saturating_add(pos), count))
}

fn zero(b: &[u8], what: &'static str) -> Result<(), ProtoError> {
    if b.iter().all(|&x| x == 0) {
        Ok(())
    } else {
        Err(ProtoError::BadValue { what })
    }
}

/// Decodes one record from the start of `buf`; returns it and its length.
///
/// # Errors
/// Any length, bound, SID or padding error, naming the field. Never panics.
pub fn decode_record(buf: &[u8]) -> Result<(PipeEvent, usize), ProtoError> {
    let mut r = Reader::new(buf);
    let len = usize::try_from(r.u32("record length")?).unwrap_or(usize::MAX);
    if len < RECORD_FIXED_LEN || len % 8 != 0 || len > buf.len() || len > RECORD_MAX_LEN {
        return Err(ProtoError::BadLength {
            what: "record length",
            expected: RECORD_FIXED_LEN,
            found: len,
        });
    }
    let mut r = Reader::new(buf.get(4..len).unwrap_or(&[]));
    let mut e = PipeEvent::EMPTY;
    e.kind = r.u8("record kind")?;
    e.decision = r.u8("record decision")?;
    e.action = r.u8("record action")?;
    e.severity = r.u8("record severity")?;
    e.id = r.u64("record id")?;
    e.time = r.u64("record time")?;
    e.process_time = r.u64("record process time")?;
    let mut guid = [0u8; 16];
    guid.copy_from_slice(r.take(16, "record process guid")?);
    e.process_guid = ProcessGuid(guid);
    e.sequence = r.u64("record sequence")?;
    e.pid = r.u32("record pid")?;
    e.rule_id = r.u32("record rule id")?;
    let flags = r.u32("record flags")?;
    let name_units = usize::from(r.u16("record name length")?);
    let image_units = usize::from(r.u16("record image length")?);
    let sid_len = usize::from(r.u8("record SID length")?);
    zero(r.take(7, "record reserved")?, "record reserved")?;
    if name_units > NAME_CAP {
        return Err(ProtoError::BadLength {
            what: "record name length",
            expected: NAME_CAP,
            found: name_units,
        });
    }
    if image_units > IMAGE_UNITS {
        return Err(ProtoError::BadLength {
            what: "record image length",
            expected: IMAGE_UNITS,
            found: image_units,
        });
    }
    let mut raw = [0u8; RULE_NAME_LEN];
    raw.copy_from_slice(r.take(RULE_NAME_LEN, "record rule name")?);
    e.rule_name = FixedText::from_raw(raw);
    // Bounded above (≤ 2784), so these sums cannot overflow.
    let body = RECORD_FIXED_LEN
        .saturating_add(name_units.saturating_mul(2))
        .saturating_add(image_units.saturating_mul(2))
        .saturating_add(sid_len);
    if pad8(body) != len {
        return Err(ProtoError::BadLength {
            what: "record length",
            expected: pad8(body),
            found: len,
        });
    }
    let mut units = [0u16; IMAGE_UNITS];
    let name = utf16le_into(
        r.take(name_units.saturating_mul(2), "record name")?,
        &mut units,
    )?;
    e.set_name(name);
    let image = utf16le_into(
        r.take(image_units.saturating_mul(2), "record image")?,
        &mut units,
    )?;
    e.set_image(Some(image));
    let sid = r.take(sid_len, "record SID")?;
    if sid_len > 0 {
        let s = Sid::from_bytes(sid).map_err(|_| ProtoError::BadValue { what: "record SID" })?;
        e.sid = s;
    }
    zero(r.take(r.left(), "record padding")?, "record padding")?;
    // The wire flags are the truth (set_name/set_image derived their own).
    e.flags = flags;
    Ok((e, len))
}

/// Decodes an EVENTS_V2 response, calling `each` per record in order.
///
/// # Errors
/// Header, length or record errors; the count must match the records
/// exactly and nothing may follow them. Never panics.
pub fn decode_batch(buf: &[u8], mut each: impl FnMut(PipeEvent)) -> Result<BatchInfo, ProtoError> {
    let mut r = Reader::new(buf);
    r.header()?;
    let count = r.u32("batch count")?;
    if r.u32("batch reserved")? != 0 {
        return Err(ProtoError::BadValue {
            what: "batch reserved",
        });
    }
    let lost = r.u64("batch lost")?;
    let pushed = r.u64("batch pushed")?;
    let mut rest = buf.get(BATCH_FIXED_LEN..).unwrap_or(&[]);
    for _ in 0..count {
        let (e, n) = decode_record(rest)?;
        rest = rest.get(n..).unwrap_or(&[]);
        each(e);
    }
    if !rest.is_empty() {
        return Err(ProtoError::BadLength {
            what: "batch",
            expected: 0,
            found: rest.len(),
        });
    }
    Ok(BatchInfo {
        count,
        lost,
        pushed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{process_guid, FLAG_IMAGE_CUT, FLAG_SID_FROM_PROCESS};
    use crate::proto::{PROTO_MAGIC, PROTO_VERSION};
    use std::vec;
    use std::vec::Vec;

    fn w(s: &str) -> Vec<u16> {
        s.encode_utf16().collect()
    }

    fn sid() -> Sid {
        let mut b = vec![1u8, 5, 0, 0, 0, 0, 0, 5];
        for s in [21u32, 10, 20, 30, 1001] {
            b.extend_from_slice(&s.to_le_bytes());
        }
        Sid::from_bytes(&b).unwrap()
    }

    fn event(pid: u32, image_units: usize) -> PipeEvent {
        let mut e = PipeEvent::EMPTY;
        e.time = 133_700_000_000_000_000;
        e.pid = pid;
        e.rule_id = 1001;
        e.kind = 1;
        e.decision = 1;
        e.action = 1;
        e.severity = 3;
        e.sequence = 42;
        e.rule_name = FixedText::new("CobaltStrike default pipe");
        e.set_name(&w(r"\postex_1234"));
        let img: Vec<u16> = w(r"C:\Tools\")
            .into_iter()
            .cycle()
            .take(image_units)
            .collect();
        e.set_image(Some(&img));
        e.set_sid(Some(sid()), true);
        e.set_process(0xfeed, 133_600_000_000_000_000);
        e
    }

    #[test]
    fn request_round_trip_and_rejections() {
        let mut b = [0u8; STREAM_REQUEST_LEN];
        for req in [
            StreamRequest {
                max: 1,
                wait: false,
            },
            StreamRequest {
                max: 64,
                wait: true,
            },
        ] {
            assert_eq!(encode_stream_request(&mut b, req), Ok(STREAM_REQUEST_LEN));
            assert_eq!(decode_stream_request(IOCTL_EVENTS_V2, &b), Ok(req));
        }
        assert_eq!(
            decode_stream_request(IOCTL_EVENTS, &b),
            Err(ProtoError::UnknownIoctl)
        );
        assert!(matches!(
            decode_stream_request(IOCTL_EVENTS_V2, &b[..12]),
            Err(ProtoError::BadLength { .. })
        ));
        let mut bad = b;
        bad[12] = 2;
        assert_eq!(
            decode_stream_request(IOCTL_EVENTS_V2, &bad),
            Err(ProtoError::BadValue {
                what: "events flags"
            })
        );
        let mut zero_max = b;
        zero_max[8..12].copy_from_slice(&0u32.to_le_bytes());
        assert_eq!(
            decode_stream_request(IOCTL_EVENTS_V2, &zero_max),
            Err(ProtoError::BadValue { what: "events max" })
        );
        let mut ver = b;
        ver[4] = PROTO_VERSION as u8 + 1;
        assert!(matches!(
            decode_stream_request(IOCTL_EVENTS_V2, &ver),
            Err(ProtoError::BadVersion { .. })
        ));
        assert_eq!(u32::from_le_bytes(b[..4].try_into().unwrap()), PROTO_MAGIC);
    }

    #[test]
    fn the_code_is_buffered_read_access_and_new() {
        assert_eq!(IOCTL_EVENTS_V2 & 3, 0);
        assert_eq!((IOCTL_EVENTS_V2 >> 14) & 3, 1);
        for c in [
            crate::proto::IOCTL_STATUS,
            crate::proto::IOCTL_LOAD,
            IOCTL_EVENTS,
            crate::proto::IOCTL_SET_MODE,
            crate::proto::IOCTL_EVAL,
            crate::proto::IOCTL_ROLLOUT,
            crate::proto::IOCTL_RESCAN,
        ] {
            assert_ne!(c, IOCTL_EVENTS_V2);
        }
    }

    #[test]
    fn batch_round_trip_keeps_every_field() {
        let mut ring = EventRing::<8, PipeEvent>::new();
        let mut sent = Vec::new();
        for (pid, img) in [(10, 0), (11, 30), (12, IMAGE_UNITS), (13, 5)] {
            let mut e = event(pid, img);
            if img == 0 {
                e.set_image(None);
                e.set_sid(None, false);
            }
            e.decision = 7; // a value this build does not know
            let id = ring.push(e);
            e.id = id;
            sent.push(e);
        }
        let mut out = vec![0u8; BATCH_MIN_OUT * 4];
        let (n, count) = encode_batch(&mut out, 16, &mut ring).unwrap();
        assert_eq!(count, 4);
        assert!(ring.is_empty());
        let mut got = Vec::new();
        let info = decode_batch(&out[..n], |e| got.push(e)).unwrap();
        assert_eq!(
            info,
            BatchInfo {
                count: 4,
                lost: 0,
                pushed: 4
            }
        );
        assert_eq!(got, sent);
        assert_eq!(got[2].image().len(), IMAGE_UNITS);
        assert_eq!(got[1].sid, sid());
        assert_ne!(got[1].flags & FLAG_SID_FROM_PROCESS, 0);
        assert_eq!(
            got[1].process_guid,
            process_guid(0xfeed, 133_600_000_000_000_000, 11)
        );
        assert_eq!(got[0].rule_name.as_str(), "CobaltStrike default pipe");
    }

    #[test]
    fn a_full_buffer_leaves_the_rest_in_the_ring() {
        let mut ring = EventRing::<8, PipeEvent>::new();
        for pid in 0..5 {
            ring.push(event(pid, IMAGE_UNITS));
        }
        let mut out = vec![0u8; BATCH_MIN_OUT + RECORD_MAX_LEN];
        let (n, count) = encode_batch(&mut out, 16, &mut ring).unwrap();
        assert_eq!(count, 2);
        assert_eq!(ring.len(), 3);
        let mut ids = Vec::new();
        decode_batch(&out[..n], |e| ids.push(e.id)).unwrap();
        assert_eq!(ids, [1, 2]);
        // max bounds it too.
        let (_, count) = encode_batch(&mut out, 1, &mut ring).unwrap();
        assert_eq!((count, ring.len()), (1, 2));
        // Too small a buffer takes nothing.
        assert_eq!(
            encode_batch(&mut out[..BATCH_MIN_OUT - 1], 16, &mut ring),
            Err(ProtoError::BufferTooSmall {
                needed: BATCH_MIN_OUT
            })
        );
        assert_eq!(ring.len(), 2);
    }

    #[test]
    fn lost_and_pushed_report_the_overflow() {
        let mut ring = EventRing::<2, PipeEvent>::new();
        for pid in 0..5 {
            ring.push(event(pid, 3));
        }
        let mut out = vec![0u8; BATCH_MIN_OUT];
        let (n, _) = encode_batch(&mut out, 16, &mut ring).unwrap();
        let mut ids = Vec::new();
        let info = decode_batch(&out[..n], |e| ids.push(e.id)).unwrap();
        assert_eq!((info.lost, info.pushed, ids), (3, 5, vec![4, 5]));
    }

    #[test]
    fn longest_record_is_the_bound() {
        let e = event(1, IMAGE_UNITS);
        let mut e = e;
        e.set_name(&vec![0x41; NAME_CAP]);
        let mut max_sid = vec![1u8, 15, 0, 0, 0, 0, 0, 5];
        max_sid.resize(SID_MAX, 1);
        e.set_sid(Some(Sid::from_bytes(&max_sid).unwrap()), false);
        assert_eq!(record_len(&e), RECORD_MAX_LEN);
        let mut b = vec![0u8; RECORD_MAX_LEN];
        assert_eq!(encode_record(&mut b, &e), Ok(RECORD_MAX_LEN));
        assert_eq!(
            decode_record(&b).map(|(d, n)| (d == e, n)),
            Ok((true, RECORD_MAX_LEN))
        );
        assert_eq!(
            encode_record(&mut b[..RECORD_MAX_LEN - 1], &e),
            Err(ProtoError::BufferTooSmall {
                needed: RECORD_MAX_LEN
            })
        );
    }

    #[test]
    fn corrupt_records_are_rejected_by_name() {
        let mut e = event(1, 4);
        e.flags |= FLAG_IMAGE_CUT | 0x8000_0000; // unknown bits are carried
        let mut b = vec![0u8; RECORD_MAX_LEN];
        let n = encode_record(&mut b, &e).unwrap();
        let rec = &b[..n];
        assert_eq!(decode_record(rec).unwrap().0.flags, e.flags);
        let with = |at: usize, bytes: &[u8]| {
            let mut c = rec.to_vec();
            c[at..at + bytes.len()].copy_from_slice(bytes);
            decode_record(&c)
        };
        let what = |r: Result<(PipeEvent, usize), ProtoError>| match r {
            Err(ProtoError::BadLength { what, .. }) | Err(ProtoError::BadValue { what }) => what,
            other => panic!("expected an error, got {other:?}"),
        };
        assert_eq!(what(with(0, &7u32.to_le_bytes())), "record length");
        assert_eq!(
            what(with(0, &(n as u32 + 8).to_le_bytes())),
            "record length"
        );
        assert_eq!(
            what(with(68, &(NAME_CAP as u16 + 1).to_le_bytes())),
            "record name length"
        );
        assert_eq!(
            what(with(70, &(IMAGE_UNITS as u16 + 1).to_le_bytes())),
            "record image length"
        );
        assert_eq!(what(with(70, &8u16.to_le_bytes())), "record length");
        assert_eq!(what(with(74, &[1])), "record reserved");
        // A SID whose count disagrees with its length.
        let sid_at = RECORD_FIXED_LEN + 2 * e.name().len() + 2 * e.image().len();
        assert_eq!(what(with(sid_at + 1, &[4])), "record SID");
        assert_eq!(what(with(n - 1, &[1])), "record padding");
        assert!(decode_record(&rec[..n - 8]).is_err());
        // Every truncation of a batch is an error, never a panic.
        let mut ring = EventRing::<4, PipeEvent>::new();
        ring.push(e);
        ring.push(event(2, 0));
        let mut out = vec![0u8; BATCH_MIN_OUT * 2];
        let (len, _) = encode_batch(&mut out, 4, &mut ring).unwrap();
        for cut in 0..len {
            assert!(decode_batch(&out[..cut], |_| {}).is_err(), "cut at {cut}");
        }
        let mut extra = out[..len].to_vec();
        extra.extend_from_slice(&[0; 8]);
        assert!(decode_batch(&extra, |_| {}).is_err());
    }
}
