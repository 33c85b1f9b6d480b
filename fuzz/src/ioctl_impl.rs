//! The `ioctl` harness: sensor-core's request decoder (what the driver runs
//! on `SystemBuffer`), the name normalization it feeds, and the response
//! decoders used by `pipectl` and the event service (EVENTS_V2 batches).

use sensor_core::guard::GuardState;
use sensor_core::name::normalize_into;
use sensor_core::proto::{self, Request};

const CODES: [u32; 9] = [
    proto::IOCTL_STATUS,
    proto::IOCTL_LOAD,
    proto::IOCTL_EVENTS,
    proto::IOCTL_SET_MODE,
    proto::IOCTL_EVAL,
    proto::IOCTL_ROLLOUT,
    proto::IOCTL_RESCAN,
    proto::IOCTL_ENFORCEMENT,
    proto::IOCTL_BREAKER_RESET,
];

/// Input: one selector byte (an IOCTL code, or four raw code bytes when
/// the selector is 0xFF), then the request bytes.
pub fn run(data: &[u8]) {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let (code, input) = match CODES.get(usize::from(sel % 16)) {
        Some(&c) => (c, rest),
        None if sel == 0xFF && rest.len() >= 4 => (
            u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]),
            &rest[4..],
        ),
        None => (proto::IOCTL_STATUS ^ u32::from(sel), rest),
    };
    match proto::decode_request(code, input) {
        Ok(req) => check_request(code, input, req),
        Err(e) => {
            let _ = (e.ntstatus(), format!("{e:?}"));
            assert!(
                CODES.contains(&code) || e.ntstatus() != 0,
                "unknown code without an error status"
            );
        }
    }
    stream(input);
    responses(input);
}

/// The EVENTS_V2 request decoder (driver side) and batch decoder (service
/// side): a decoded request re-encodes to one that decodes the same (the
/// header's reserved half-word is not read, as everywhere in `proto`); a
/// decoded record re-encodes to the same bytes.
fn stream(input: &[u8]) {
    use sensor_core::stream;
    if let Ok(req) = stream::decode_stream_request(stream::IOCTL_EVENTS_V2, input) {
        let mut out = vec![0u8; stream::STREAM_REQUEST_LEN];
        let n = stream::encode_stream_request(&mut out, req).expect("stream request re-encodes");
        assert_eq!(
            stream::decode_stream_request(stream::IOCTL_EVENTS_V2, &out[..n]),
            Ok(req),
            "stream request round trip"
        );
    }
    let mut records = Vec::new();
    if stream::decode_batch(input, |e| records.push(e)).is_ok() {
        let mut rest = input.get(stream::BATCH_FIXED_LEN..).unwrap_or(&[]);
        for e in &records {
            let mut out = vec![0u8; stream::RECORD_MAX_LEN];
            let n = stream::encode_record(&mut out, e).expect("record re-encodes");
            assert_eq!(&out[..n], &rest[..n], "record round trip");
            rest = &rest[n..];
        }
    }
}

fn check_request(code: u32, input: &[u8], req: Request<'_>) {
    assert!(CODES.contains(&code), "decoded an unknown IOCTL {code:#x}");
    let mut out = vec![0u8; input.len() + 64];
    let n = match req {
        Request::Status | Request::Rollout | Request::Rescan | Request::Enforcement => {
            proto::encode_status_request(&mut out)
        }
        Request::BreakerReset(t) => proto::encode_breaker_reset_request(&mut out, t),
        Request::Load { force, content } => proto::encode_load_request(&mut out, force, content),
        Request::Events { max } => proto::encode_events_request(&mut out, max),
        Request::SetMode(m) => proto::encode_mode_request(&mut out, m),
        Request::Eval(e) => {
            let units = |b: &[u8]| -> Vec<u16> {
                b.chunks_exact(2)
                    .map(|p| u16::from_le_bytes([p[0], p[1]]))
                    .collect()
            };
            let (name, image, user) = (units(e.name), units(e.image), units(e.user));
            // What the driver does next with the name.
            let mut buf = vec![0u16; name.len() + 1];
            if let Ok(got) = proto::utf16le_into(e.name, &mut buf) {
                assert_eq!(got, name.as_slice());
            }
            let mut norm = vec![0u16; name.len() + 1];
            let _ = normalize_into(&name, &mut norm);
            proto::encode_eval_request(&mut out, e.kind, e.pid, &name, &image, &user)
        }
    }
    .unwrap_or_else(|e| panic!("re-encoding a decoded request failed: {e:?}"));
    let again = proto::decode_request(code, &out[..n])
        .unwrap_or_else(|e| panic!("re-encoded request does not decode: {e:?}"));
    assert_eq!(again, req, "request round trip");
}

fn responses(buf: &[u8]) {
    if let Ok(s) = proto::Status::decode(buf) {
        let mut out = vec![0u8; buf.len() + 64];
        let n = s.encode(&mut out).expect("status re-encodes");
        assert_eq!(proto::Status::decode(&out[..n]), Ok(s));
    }
    if let Ok(r) = proto::LoadResponse::decode(buf) {
        let mut out = vec![0u8; buf.len() + 64];
        let n = r.encode(&mut out).expect("load response re-encodes");
        assert_eq!(proto::LoadResponse::decode(&out[..n]), Ok(r));
    }
    if let Ok(r) = proto::EvalResponse::decode(buf) {
        let mut out = vec![0u8; buf.len() + 64];
        let n = r.encode(&mut out).expect("eval response re-encodes");
        assert_eq!(proto::EvalResponse::decode(&out[..n]), Ok(r));
    }
    if let Ok(r) = proto::RolloutStatus::decode(buf) {
        let mut out = vec![0u8; buf.len() + 64];
        let n = r.encode(&mut out).expect("rollout status re-encodes");
        assert_eq!(proto::RolloutStatus::decode(&out[..n]), Ok(r));
    }
    let _ = proto::decode_mode_response(buf);
    let mut records = 0usize;
    let _ = proto::decode_events_response(buf, |_| records += 1);
    if let Ok(g) = GuardState::decode(buf) {
        assert_eq!(GuardState::decode(&g.encode()), Ok(g));
    }
    // Name normalization on arbitrary units.
    let units: Vec<u16> = buf
        .chunks_exact(2)
        .map(|p| u16::from_le_bytes([p[0], p[1]]))
        .collect();
    let mut out = vec![0u16; units.len()];
    let _ = normalize_into(&units, &mut out);
    let _ = sensor_core::name::strip_prefix(&units);
}
