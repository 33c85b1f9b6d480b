//! The control device's IOCTLs (`sensor_core::proto`). Every request is
//! decoded (lengths checked) before anything happens; the input is copied
//! out of the system buffer before the response overwrites it.

use crate::content;
use crate::sensor;
use crate::sys::{BufferedIo, NTSTATUS};
use sensor_core::name::MAX_NAME_UNITS;
use sensor_core::proto::{
    decode_request, encode_events_response, encode_mode_response, utf16le_into, EvalResponse,
    Request, MAX_EVAL_IMAGE_UNITS,
};

pub fn handle(code: u32, io: &mut BufferedIo) -> Result<usize, NTSTATUS> {
    let req = decode_request(code, io.input()).map_err(|e| e.ntstatus())?;
    let r = match req {
        Request::Status => sensor::status().encode(io.output()),
        Request::Rollout => content::rollout_status().encode(io.output()),
        Request::Rescan => match content::rescan() {
            Some(r) => r.encode(io.output()),
            None => return Err(crate::sys::STATUS_DEVICE_BUSY),
        },
        Request::Load { force, content } => {
            let resp = content::hot_load(content, force);
            resp.encode(io.output())
        }
        Request::Events { max } => sensor::with_ring(|ring| {
            let overwritten = ring.overwritten();
            encode_events_response(io.output(), max, overwritten, || ring.pop()).map(|(n, _)| n)
        }),
        Request::SetMode(m) => {
            let prev = sensor::set_mode(m);
            content::persist_mode(m);
            encode_mode_response(io.output(), prev, m)
        }
        Request::Eval(e) => {
            let mut name = [0u16; MAX_NAME_UNITS * 2];
            let mut image = [0u16; MAX_EVAL_IMAGE_UNITS];
            let name = utf16le_into(e.name, &mut name).map_err(|e| e.ntstatus())?;
            let image = utf16le_into(e.image, &mut image).map_err(|e| e.ntstatus())?;
            let image = (!image.is_empty()).then_some(image);
            let o = sensor::evaluate(e.kind, e.pid, name, image, true);
            let mut resp_name = [0u16; MAX_NAME_UNITS];
            if let (Some(d), Some(s)) = (resp_name.get_mut(..o.name_len), o.name.get(..o.name_len))
            {
                d.copy_from_slice(s);
            }
            let resp = EvalResponse {
                decision: o.decision,
                action: o.hit.map_or(0, |h| h.action.0),
                severity: o.hit.map_or(0, |h| h.severity.0),
                has_rule: o.hit.is_some(),
                rule_id: o.hit.map_or(0, |h| h.id),
                matched: o.matched,
                sequence: o.sequence,
                rule_name: o.rule_name,
                name_len: o.name_len as u16,
                name: resp_name,
            };
            resp.encode(io.output())
        }
    };
    r.map_err(|e| e.ntstatus())
}
