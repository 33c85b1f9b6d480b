use super::*;
use std::vec;
use std::vec::Vec;

fn w(s: &str) -> Vec<u16> {
    s.encode_utf16().collect()
}

fn sample_status() -> Status {
    Status {
        mode: Mode::Enforce,
        flags: FLAG_FILTER_REGISTERED | FLAG_FILTERING,
        active: ContentInfo {
            sequence: 7,
            rule_count: 12,
            len: 4096,
            origin: Origin::Disk,
            digest: [0xAB; 32],
        },
        lkg: ContentInfo {
            sequence: 6,
            rule_count: 11,
            len: 4000,
            origin: Origin::Ioctl,
            digest: [0xCD; 32],
        },
        quarantined: [8, 0, 0, 0],
        pending: 7,
        start_count: 2,
        max_failed: 3,
        proven: 6,
        counters: Counters {
            evaluated: 1,
            matched: 2,
            denied: 3,
            events_total: 4,
            events_overwritten: 5,
            name_errors: 6,
            loads_ok: 7,
            loads_failed: 8,
            pool_live: 9,
            callbacks: 10,
            root_opens: 11,
            unchecked_denied: 12,
            unchecked_allowed: 13,
            work_waits: 14,
            work_exhausted: 15,
            work_waiting: 16,
            work_wait_ms: 17,
            image_located: 18,
            image_queried: 19,
            image_missing: 20,
            user_read: 21,
            user_missing: 22,
        },
        last_error: LoadFailure {
            origin: Origin::Disk,
            sequence: 9,
            code: failure::PARSE,
            offset: 40,
            message: FixedText::new("bad magic"),
        },
    }
}

#[test]
fn ioctl_codes_are_buffered_and_distinct() {
    let codes = IOCTL_CODES;
    for (i, a) in codes.iter().enumerate() {
        assert_eq!(a & 3, 0, "METHOD_BUFFERED");
        assert_eq!(a >> 16, 0x22);
        for b in &codes[i + 1..] {
            assert_ne!(a, b);
        }
    }
    assert_eq!(IOCTL_STATUS, 0x0022_6400);
    assert_eq!(IOCTL_LOAD, 0x0022_A404);
    assert_eq!(IOCTL_ROLLOUT, 0x0022_6414, "read access");
    assert_eq!(IOCTL_RESCAN, 0x0022_A418, "write access");
    assert_eq!(IOCTL_EVENTS_V2, 0x0022_641C, "read access");
    assert_eq!(IOCTL_ENFORCEMENT, 0x0022_6420, "read access");
    assert_eq!(IOCTL_BREAKER_RESET, 0x0022_A424, "write access");
    assert!(!super::all_distinct(&[
        IOCTL_STATUS,
        IOCTL_LOAD,
        IOCTL_STATUS
    ]));
}

fn sample_enforcement() -> EnforcementStatus {
    use crate::breaker::{Demotion, Effective, Limit, Source};
    let mut s = EnforcementStatus {
        flags: ENFORCEMENT_FLAG_MACHINE_DEMOTED,
        ring: Ring::EARLY,
        soak_secs: 7_200,
        sequence: 42,
        adopted_unix: 1_900_000_000,
        now_ms: 5_000,
        enforce_at_ms: 65_000,
        machine_demoted_at_ms: 4_000,
        rule: Effective {
            limit: Limit {
                denies: 20,
                window_secs: 60,
            },
            source: Source::Content,
        },
        machine: Effective {
            limit: Limit::OFF,
            source: Source::ServiceKey,
        },
        counters: EnforcementCounters {
            protected: 1,
            soak: 2,
            demoted: 3,
            rule_trips: 4,
            machine_trips: 5,
            table_full: 6,
            resets: 7,
        },
        demoted_count: 2,
        ..EnforcementStatus::EMPTY
    };
    s.demotions[0] = Demotion {
        rule_id: 9,
        at_ms: 3_000,
        denies: 20,
    };
    s.demotions[1] = Demotion {
        rule_id: 11,
        at_ms: 3_500,
        denies: 20,
    };
    s
}

#[test]
fn enforcement_status_and_breaker_reset() {
    let s = sample_enforcement();
    let mut buf = vec![0u8; ENFORCEMENT_STATUS_LEN + 3];
    assert_eq!(
        s.encode(&mut buf[..ENFORCEMENT_STATUS_LEN - 1]),
        Err(ProtoError::BufferTooSmall {
            needed: ENFORCEMENT_STATUS_LEN
        })
    );
    let n = s.encode(&mut buf).unwrap();
    assert_eq!(n, ENFORCEMENT_STATUS_LEN);
    let d = EnforcementStatus::decode(&buf[..n]).unwrap();
    assert_eq!(d, s);
    assert_eq!(d.demotions().len(), 2);
    assert_eq!(d.soak_left_ms(), 60_000);
    assert!(EnforcementStatus::decode(&buf[..n - 1]).is_err());
    assert!(EnforcementStatus::decode(&buf[..n + 1]).is_err());
    // A bad ring or limit source is refused.
    let mut bad = buf[..n].to_vec();
    bad[12] = 9;
    assert_eq!(
        EnforcementStatus::decode(&bad),
        Err(ProtoError::BadValue { what: "ring" })
    );
    let mut bad = buf[..n].to_vec();
    bad[HEADER_LEN + 16 + 40 + 8] = 3;
    assert_eq!(
        EnforcementStatus::decode(&bad),
        Err(ProtoError::BadValue {
            what: "limit source"
        })
    );

    // Reset requests.
    let mut req = [0u8; BREAKER_RESET_REQUEST_LEN];
    for t in [ResetTarget::Rule(9), ResetTarget::Rule(0), ResetTarget::All] {
        let n = encode_breaker_reset_request(&mut req, t).unwrap();
        assert_eq!(n, BREAKER_RESET_REQUEST_LEN);
        assert_eq!(decode_breaker_reset_request(&req), Ok(t));
        assert_eq!(
            decode_request(IOCTL_BREAKER_RESET, &req),
            Ok(Request::BreakerReset(t))
        );
    }
    assert_eq!(ResetTarget::All.rule(), None);
    assert_eq!(ResetTarget::Rule(3).rule(), Some(3));
    let mut bad = req;
    bad[8] = 1; // rule 1 with the all flag
    assert!(decode_breaker_reset_request(&bad).is_err());
    let mut bad = req;
    bad[12] = 2;
    assert!(decode_breaker_reset_request(&bad).is_err());
    assert!(decode_breaker_reset_request(&req[..15]).is_err());
    let mut long = req.to_vec();
    long.push(0);
    assert!(decode_breaker_reset_request(&long).is_err());
    let mut resp = [0u8; BREAKER_RESET_RESPONSE_LEN];
    assert_eq!(encode_breaker_reset_response(&mut resp, 3), Ok(16));
    assert_eq!(decode_breaker_reset_response(&resp), Ok(3));
    assert!(decode_breaker_reset_response(&resp[..15]).is_err());
}

fn sample_rollout() -> RolloutStatus {
    let mut s = RolloutStatus {
        ring: Ring::EARLY,
        bucket_milli: 42_123,
        control: Control::Pin(41),
        flags: ROLLOUT_FLAG_BAD_RING,
        id_source: MachineIdSource::ServiceKey,
        count: 17,
        now: 1_790_000_000,
        highest_proven: 40,
        files: [RolloutFile::NONE; ROLLOUT_FILES],
    };
    s.files[0] = RolloutFile {
        sequence: 41,
        reason: Reason::Adopted,
    };
    s.files[1] = RolloutFile {
        sequence: 40,
        reason: Reason::Share {
            bucket_milli: 42_123,
            percent_milli: 5_000,
        },
    };
    s.files[15] = RolloutFile {
        sequence: 2,
        reason: Reason::Invalid { code: 8 },
    };
    s
}

#[test]
fn rollout_requests_and_response() {
    let mut req = [0u8; 8];
    assert_eq!(encode_status_request(&mut req), Ok(8));
    assert_eq!(decode_request(IOCTL_ROLLOUT, &req), Ok(Request::Rollout));
    assert_eq!(decode_request(IOCTL_RESCAN, &req), Ok(Request::Rescan));
    assert_eq!(
        decode_request(IOCTL_ENFORCEMENT, &req),
        Ok(Request::Enforcement)
    );
    assert!(decode_request(IOCTL_RESCAN, &[&req[..], &[0][..]].concat()).is_err());
    assert!(decode_request(IOCTL_ROLLOUT, &req[..7]).is_err());

    let s = sample_rollout();
    let mut out = vec![0u8; ROLLOUT_STATUS_LEN];
    assert_eq!(s.encode(&mut out), Ok(ROLLOUT_STATUS_LEN));
    assert_eq!(RolloutStatus::decode(&out), Ok(s));
    assert_eq!(s.files().len(), 16, "count 17 is capped at the 16 slots");
    let mut few = s;
    few.count = 2;
    assert_eq!(few.files().len(), 2);
    assert_eq!(
        s.encode(&mut out[..ROLLOUT_STATUS_LEN - 1]),
        Err(ProtoError::BufferTooSmall {
            needed: ROLLOUT_STATUS_LEN
        })
    );
    assert!(RolloutStatus::decode(&out[..ROLLOUT_STATUS_LEN - 1]).is_err());
    // Field offsets: ring at 8, pin at 24, highest proven at 48, files at 56.
    assert_eq!(out[8], 1);
    assert_eq!(&out[24..32], &41u64.to_le_bytes());
    assert_eq!(&out[48..56], &40u64.to_le_bytes());
    assert_eq!(&out[56..64], &41u64.to_le_bytes());
    // Bad values are rejected, not guessed.
    for (at, v, what) in [
        (8usize, 7u8, "ring"),
        (16, 9, "control"),
        (32, 5, "id source"),
        (64, 99, "reason"),
    ] {
        let mut bad = out.clone();
        bad[at] = v;
        assert!(RolloutStatus::decode(&bad).is_err(), "{what}");
    }
    assert_eq!(RolloutStatus::EMPTY.files(), &[]);
}

#[test]
fn status_round_trip_and_exact_length() {
    let s = sample_status();
    let mut buf = vec![0u8; STATUS_LEN + 10];
    let n = s.encode(&mut buf).unwrap();
    assert_eq!(n, STATUS_LEN);
    assert_eq!(Status::decode(&buf[..n]), Ok(s));
    assert!(matches!(
        Status::decode(&buf[..n - 1]),
        Err(ProtoError::BadLength { .. })
    ));
    assert!(matches!(
        Status::decode(&buf[..n + 1]),
        Err(ProtoError::BadLength { .. })
    ));
    assert_eq!(
        s.encode(&mut buf[..STATUS_LEN - 1]),
        Err(ProtoError::BufferTooSmall { needed: STATUS_LEN })
    );
    // Fixed offsets of a few fields (the layout is the contract).
    assert_eq!(&buf[0..4], b"PSIO");
    assert_eq!(&buf[8..12], &1u32.to_le_bytes()); // mode
    assert_eq!(&buf[16..24], &7u64.to_le_bytes()); // active.sequence
    let mut bad = buf[..n].to_vec();
    bad[8] = 5;
    assert_eq!(
        Status::decode(&bad),
        Err(ProtoError::BadValue { what: "mode" })
    );
}

#[test]
fn header_is_checked() {
    let mut buf = [0u8; 8];
    encode_status_request(&mut buf).unwrap();
    assert_eq!(decode_request(IOCTL_STATUS, &buf), Ok(Request::Status));
    let mut bad = buf;
    bad[0] ^= 1;
    assert_eq!(
        decode_request(IOCTL_STATUS, &bad),
        Err(ProtoError::BadMagic)
    );
    let mut bad = buf;
    bad[4] = 2;
    assert_eq!(
        decode_request(IOCTL_STATUS, &bad),
        Err(ProtoError::BadVersion { found: 2 })
    );
    assert_eq!(
        ProtoError::BadVersion { found: 2 }.ntstatus(),
        status::REVISION_MISMATCH
    );
    for n in 0..8 {
        assert!(
            matches!(
                decode_request(IOCTL_STATUS, &buf[..n]),
                Err(ProtoError::BadLength { .. })
            ),
            "{n}"
        );
    }
    let mut long = buf.to_vec();
    long.push(0);
    assert!(matches!(
        decode_request(IOCTL_STATUS, &long),
        Err(ProtoError::BadLength { .. })
    ));
    assert_eq!(
        decode_request(0x0022_0000, &buf),
        Err(ProtoError::UnknownIoctl)
    );
    assert_eq!(
        ProtoError::UnknownIoctl.ntstatus(),
        status::INVALID_DEVICE_REQUEST
    );
}

#[test]
fn load_request_lengths() {
    let content = b"PIPECHN\0 some bytes";
    let mut buf = vec![0u8; load_request_len(content.len())];
    let n = encode_load_request(&mut buf, true, content).unwrap();
    assert_eq!(n, buf.len());
    assert_eq!(
        decode_request(IOCTL_LOAD, &buf),
        Ok(Request::Load {
            force: true,
            content
        })
    );
    // One byte short / long: the length field no longer matches.
    assert!(matches!(
        decode_request(IOCTL_LOAD, &buf[..n - 1]),
        Err(ProtoError::BadLength {
            what: "content length",
            ..
        })
    ));
    let mut long = buf.clone();
    long.push(0);
    assert!(matches!(
        decode_request(IOCTL_LOAD, &long),
        Err(ProtoError::BadLength { .. })
    ));
    // A huge length field.
    let mut huge = buf.clone();
    huge[12..16].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(matches!(
        decode_request(IOCTL_LOAD, &huge),
        Err(ProtoError::BadLength { .. })
    ));
    let mut flags = buf.clone();
    flags[8] = 2;
    assert_eq!(
        decode_request(IOCTL_LOAD, &flags),
        Err(ProtoError::BadValue { what: "load flags" })
    );
    // Empty content is a valid request (the parser rejects it).
    let mut e = [0u8; LOAD_REQUEST_FIXED_LEN];
    encode_load_request(&mut e, false, &[]).unwrap();
    assert_eq!(
        decode_request(IOCTL_LOAD, &e),
        Ok(Request::Load {
            force: false,
            content: &[]
        })
    );
    assert!(matches!(
        encode_load_request(&mut buf[..5], false, content),
        Err(ProtoError::BufferTooSmall { .. })
    ));
}

#[test]
fn events_and_mode_requests() {
    let mut b = [0u8; EVENTS_REQUEST_LEN];
    encode_events_request(&mut b, 17).unwrap();
    assert_eq!(
        decode_request(IOCTL_EVENTS, &b),
        Ok(Request::Events { max: 17 })
    );
    let mut r = b;
    r[12] = 1;
    assert_eq!(
        decode_request(IOCTL_EVENTS, &r),
        Err(ProtoError::BadValue { what: "reserved" })
    );
    assert!(decode_request(IOCTL_EVENTS, &b[..15]).is_err());
    let mut m = [0u8; MODE_REQUEST_LEN];
    encode_mode_request(&mut m, Mode::Enforce).unwrap();
    assert_eq!(
        decode_request(IOCTL_SET_MODE, &m),
        Ok(Request::SetMode(Mode::Enforce))
    );
    m[8] = 9;
    assert_eq!(
        decode_request(IOCTL_SET_MODE, &m),
        Err(ProtoError::BadValue { what: "mode" })
    );
    let mut out = [0u8; MODE_RESPONSE_LEN];
    encode_mode_response(&mut out, Mode::Monitor, Mode::Enforce).unwrap();
    assert_eq!(
        decode_mode_response(&out),
        Ok((Mode::Monitor, Mode::Enforce))
    );
    assert!(decode_mode_response(&out[..15]).is_err());
    assert!(encode_mode_response(&mut out[..15], Mode::Monitor, Mode::Enforce).is_err());
}

#[test]
fn eval_request_lengths() {
    let name = w(r"\\.\pipe\msagent_12");
    let image = w(r"C:\x\evil.exe");
    let mut buf = vec![0u8; eval_request_len(name.len(), image.len(), 0)];
    let n = encode_eval_request(&mut buf, EventKind::Connect, 42, &name, &image, &[]).unwrap();
    assert_eq!(n, buf.len());
    let Ok(Request::Eval(e)) = decode_request(IOCTL_EVAL, &buf) else {
        panic!()
    };
    assert_eq!((e.kind, e.pid), (EventKind::Connect, 42));
    let mut units = [0u16; 64];
    assert_eq!(utf16le_into(e.name, &mut units).unwrap(), &name[..]);
    assert_eq!(utf16le_into(e.image, &mut units).unwrap(), &image[..]);
    assert!(utf16le_into(&[1, 2, 3], &mut units).is_err(), "odd length");
    assert!(
        utf16le_into(e.name, &mut units[..3]).is_err(),
        "does not fit"
    );
    // Truncated, extended, zero-length name, bad kind.
    assert!(decode_request(IOCTL_EVAL, &buf[..n - 1]).is_err());
    let mut long = buf.clone();
    long.extend_from_slice(&[0, 0]);
    assert!(decode_request(IOCTL_EVAL, &long).is_err());
    let mut zero = buf.clone();
    zero[16..18].copy_from_slice(&0u16.to_le_bytes());
    assert!(decode_request(IOCTL_EVAL, &zero).is_err());
    let mut kind = buf.clone();
    kind[8] = 3;
    assert_eq!(
        decode_request(IOCTL_EVAL, &kind),
        Err(ProtoError::BadValue { what: "event kind" })
    );
    let mut huge = buf.clone();
    huge[18..20].copy_from_slice(&u16::MAX.to_le_bytes());
    assert!(matches!(
        decode_request(IOCTL_EVAL, &huge),
        Err(ProtoError::BadLength {
            what: "image length",
            ..
        })
    ));
    // Image may be empty.
    let mut b2 = vec![0u8; eval_request_len(name.len(), 0, 0)];
    encode_eval_request(&mut b2, EventKind::Create, 1, &name, &[], &[]).unwrap();
    assert!(matches!(
        decode_request(IOCTL_EVAL, &b2),
        Ok(Request::Eval(EvalRequest {
            image: &[],
            user: &[],
            ..
        }))
    ));
}

#[test]
fn eval_request_carries_a_user() {
    let name = w(r"\svc_pipe");
    let user = w("S-1-5-21-0-0-0-1000");
    let mut buf = vec![0u8; eval_request_len(name.len(), 0, user.len())];
    let n = encode_eval_request(&mut buf, EventKind::Create, 7, &name, &[], &user).unwrap();
    assert_eq!(n, buf.len());
    let Ok(Request::Eval(e)) = decode_request(IOCTL_EVAL, &buf) else {
        panic!()
    };
    let mut units = [0u16; MAX_EVAL_USER_UNITS];
    assert_eq!(utf16le_into(e.user, &mut units).unwrap(), &user[..]);
    assert_eq!(e.image, &[] as &[u8]);
    // A user that is not printable ASCII is refused by name.
    for bad in ["S-1-5-18\u{e9}", "S-1 5", "S-1-5-\u{0}"] {
        let u = w(bad);
        let mut b = vec![0u8; eval_request_len(name.len(), 0, u.len())];
        encode_eval_request(&mut b, EventKind::Create, 7, &name, &[], &u).unwrap();
        assert_eq!(
            decode_request(IOCTL_EVAL, &b),
            Err(ProtoError::BadValue {
                what: "user (a SID in string form: printable ASCII)"
            }),
            "{bad:?}"
        );
    }
    // Longer than a SID's longest string form.
    let long = vec![u16::from(b'1'); MAX_EVAL_USER_UNITS + 1];
    let mut b = vec![0u8; eval_request_len(name.len(), 0, long.len())];
    encode_eval_request(&mut b, EventKind::Create, 7, &name, &[], &long).unwrap();
    assert!(matches!(
        decode_request(IOCTL_EVAL, &b),
        Err(ProtoError::BadLength {
            what: "user length",
            ..
        })
    ));
    // The user's units are part of the length check: one unit cut off.
    assert!(decode_request(IOCTL_EVAL, &buf[..n - 2]).is_err());
}

#[test]
fn eval_response_round_trip() {
    let mut name = [0u16; MAX_NAME_UNITS];
    let n = w(r"\msagent_12");
    name[..n.len()].copy_from_slice(&n);
    let r = EvalResponse {
        decision: Decision::Deny,
        action: 1,
        severity: 3,
        has_rule: true,
        rule_id: 1001,
        matched: 2,
        sequence: 7,
        rule_name: FixedText::new("Cobalt Strike default pipe"),
        name_len: n.len() as u16,
        name,
    };
    let mut buf = vec![0u8; EVAL_RESPONSE_LEN];
    assert_eq!(r.encode(&mut buf), Ok(EVAL_RESPONSE_LEN));
    let d = EvalResponse::decode(&buf).unwrap();
    assert_eq!(d, r);
    assert_eq!(d.name(), &n[..]);
    assert_eq!(d.rule_name.as_str(), "Cobalt Strike default pipe");
    assert!(EvalResponse::decode(&buf[..EVAL_RESPONSE_LEN - 1]).is_err());
    let mut bad = buf.clone();
    bad[11] = 2;
    assert_eq!(
        EvalResponse::decode(&bad),
        Err(ProtoError::BadValue { what: "has rule" })
    );
    let mut bad = buf.clone();
    bad[8] = 7;
    assert_eq!(
        EvalResponse::decode(&bad),
        Err(ProtoError::BadValue { what: "decision" })
    );
    assert!(r.encode(&mut buf[..100]).is_err());
}

#[test]
fn load_response_round_trip() {
    let r = LoadResponse {
        result: load_result::REJECTED,
        active_sequence: 5,
        failure: sample_status().last_error,
    };
    let mut buf = [0u8; LOAD_RESPONSE_LEN];
    r.encode(&mut buf).unwrap();
    assert_eq!(LoadResponse::decode(&buf), Ok(r));
    assert!(LoadResponse::decode(&buf[..LOAD_RESPONSE_LEN - 1]).is_err());
}

#[test]
fn events_response_bounded_by_buffer_and_max() {
    let mut recs: Vec<EventRecord> = (1..=5u32)
        .map(|i| {
            let mut e = EventRecord {
                id: u64::from(i),
                pid: i,
                rule_id: 100 + i,
                decision: 1,
                ..EventRecord::EMPTY
            };
            e.set_name(&w(r"\x"));
            e
        })
        .collect();
    recs.reverse();
    // Room for exactly 3.
    let mut buf = vec![0u8; EVENTS_RESPONSE_FIXED_LEN + 3 * EVENT_WIRE_LEN + 5];
    let mut src = recs.clone();
    let (n, count) = encode_events_response(&mut buf, 100, 9, || src.pop()).unwrap();
    assert_eq!(
        (n, count),
        (EVENTS_RESPONSE_FIXED_LEN + 3 * EVENT_WIRE_LEN, 3)
    );
    assert_eq!(src.len(), 2, "only as many popped as fit");
    let mut got = Vec::new();
    assert_eq!(decode_events_response(&buf[..n], |e| got.push(e)), Ok(9));
    assert_eq!(got.iter().map(|e| e.pid).collect::<Vec<_>>(), [1, 2, 3]);
    assert_eq!(got[0].name(), &w(r"\x")[..]);
    // Too small for one record.
    assert!(matches!(
        encode_events_response(&mut buf[..EVENTS_RESPONSE_FIXED_LEN + 10], 1, 0, || None),
        Err(ProtoError::BufferTooSmall { .. })
    ));
    // Count and length must agree.
    assert!(decode_events_response(&buf[..n - 1], |_| ()).is_err());
    let mut bad = buf[..n].to_vec();
    bad[8] = 4;
    assert!(decode_events_response(&bad, |_| ()).is_err());
    let mut bad = buf[..n].to_vec();
    bad[EVENTS_RESPONSE_FIXED_LEN + 28] = 0xFF; // name_len
    bad[EVENTS_RESPONSE_FIXED_LEN + 29] = 0xFF;
    assert_eq!(
        decode_events_response(&bad, |_| ()),
        Err(ProtoError::BadValue {
            what: "event text length"
        })
    );
    // max bounds it too.
    let mut src = recs.clone();
    let (_, count) = encode_events_response(&mut buf, 1, 0, || src.pop()).unwrap();
    assert_eq!(count, 1);
}

#[test]
fn fixed_text_cuts_at_char_boundary() {
    let t = FixedText::<5>::new("ab€cd");
    assert_eq!(t.as_str(), "ab€");
    let mut raw = [0u8; 5];
    raw[0] = 0xFF;
    assert_eq!(FixedText::from_raw(raw).as_str(), "");
    assert_eq!(FixedText::<4>::from_raw(*b"abcd").as_str(), "abcd");
}

#[test]
fn decode_never_panics_on_noise() {
    // A cheap deterministic sweep: every prefix of a few byte patterns, every IOCTL.
    let mut seed = 0x1234_5678u32;
    let mut noise = vec![0u8; 700];
    for b in &mut noise {
        seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
        *b = (seed >> 16) as u8;
    }
    noise[..8].copy_from_slice(&[0x50, 0x53, 0x49, 0x4F, 1, 0, 0, 0]);
    for code in [
        IOCTL_STATUS,
        IOCTL_LOAD,
        IOCTL_EVENTS,
        IOCTL_SET_MODE,
        IOCTL_EVAL,
        IOCTL_ROLLOUT,
        IOCTL_RESCAN,
        IOCTL_ENFORCEMENT,
        IOCTL_BREAKER_RESET,
        0,
    ] {
        for n in 0..noise.len() {
            let _ = decode_request(code, &noise[..n]);
        }
    }
    for n in 0..noise.len() {
        let _ = Status::decode(&noise[..n]);
        let _ = EvalResponse::decode(&noise[..n]);
        let _ = RolloutStatus::decode(&noise[..n]);
        let _ = EnforcementStatus::decode(&noise[..n]);
        let _ = decode_breaker_reset_response(&noise[..n]);
        let _ = decode_breaker_reset_request(&noise[..n]);
        let _ = decode_events_response(&noise[..n], |_| ());
    }
}
