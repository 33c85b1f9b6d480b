//! The control device's IOCTLs (`sensor_core::proto`). Every request is
//! decoded (lengths checked) before anything happens; the input is copied
//! out of the system buffer before the response overwrites it.
//!
//! Stack: RESCAN and LOAD run the signature check and the parser below
//! [`handle`], so the requests with large buffers (EVAL, STATUS, EVENTS,
//! ROLLOUT) are answered in functions of their own that are not inlined:
//! their buffers are on the stack only while they run
//! (`scripts/stack-usage.sh` checks the bound).

use crate::content;
use crate::globals::control::*;
use crate::sensor;
use crate::sys::{BufferedIo, NTSTATUS};
use sensor_core::name::MAX_NAME_UNITS;
use sensor_core::proto::{
    decode_request, encode_breaker_reset_response, encode_events_response, encode_mode_response,
    utf16le_into, EvalRequest, EvalResponse, ProtoError, Request, IOCTL_EVAL, MAX_EVAL_IMAGE_UNITS,
    MAX_EVAL_USER_UNITS,
};

pub fn handle(code: u32, io: &mut BufferedIo) -> Result<usize, NTSTATUS> {
    if code == IOCTL_EVAL {
        return eval(code, io);
    }
    let req = decode_request(code, io.input()).map_err(|e| e.ntstatus())?;
    let r = match req {
        Request::Status => status(io),
        Request::Rollout => rollout(io),
        Request::Rescan => {
            if !content::rescan() {
                return Err(crate::sys::STATUS_DEVICE_BUSY);
            }
            rollout(io)
        }
        Request::Load { force, content } => {
            let resp = content::hot_load(content, force);
            resp.encode(io.output())
        }
        Request::Events { max } => events(max, io),
        Request::SetMode(m) => {
            let prev = sensor::set_mode(m);
            content::persist_mode(m);
            encode_mode_response(io.output(), prev, m)
        }
        Request::Enforcement => enforcement(io),
        Request::BreakerReset(t) => {
            let lifted = crate::blocksafe::reset(t);
            encode_breaker_reset_response(io.output(), lifted)
        }
        // Decoded (and answered) by `eval` above.
        Request::Eval(_) => return eval(code, io),
    };
    r.map_err(|e| e.ntstatus())
}

#[inline(never)]
fn status(io: &mut BufferedIo) -> Result<usize, ProtoError> {
    sensor::status().encode(io.output())
}

#[inline(never)]
fn enforcement(io: &mut BufferedIo) -> Result<usize, ProtoError> {
    crate::blocksafe::status().encode(io.output())
}

#[inline(never)]
fn rollout(io: &mut BufferedIo) -> Result<usize, ProtoError> {
    content::rollout_status().encode(io.output())
}

#[inline(never)]
fn events(max: u32, io: &mut BufferedIo) -> Result<usize, ProtoError> {
    sensor::with_ring(|ring| {
        let overwritten = ring.overwritten();
        // Version 1: each full record's projection (built per record, not
        // a copy of the full record).
        encode_events_response(io.output(), max, overwritten, || {
            ring.pop_with(|e| e.to_v1())
        })
        .map(|(n, _)| n)
    })
}

/// EVAL's copies of the request's name, image and user: kept off the stack
/// (EVAL runs the whole decision path below it), one EVAL at a time; a
/// concurrent one gets STATUS_DEVICE_BUSY.
pub(crate) struct EvalBufs {
    name: [u16; MAX_NAME_UNITS * 2],
    image: [u16; MAX_EVAL_IMAGE_UNITS],
    user: [u16; MAX_EVAL_USER_UNITS],
}

impl EvalBufs {
    /// Zeroed buffers.
    pub(crate) const INIT: EvalBufs = EvalBufs {
        name: [0; MAX_NAME_UNITS * 2],
        image: [0; MAX_EVAL_IMAGE_UNITS],
        user: [0; MAX_EVAL_USER_UNITS],
    };
}

/// EVAL: decodes the request itself (its name and image are copied out of
/// the system buffer before the response is written into it).
#[inline(never)]
fn eval(code: u32, io: &mut BufferedIo) -> Result<usize, NTSTATUS> {
    let e: EvalRequest<'_> = match decode_request(code, io.input()) {
        Ok(Request::Eval(e)) => e,
        Ok(_) => return Err(ProtoError::BadValue { what: "request" }.ntstatus()),
        Err(e) => return Err(e.ntstatus()),
    };
    let o = EVAL_BUFS
        .try_with(|b| {
            let name = utf16le_into(e.name, &mut b.name).map_err(|e| e.ntstatus())?;
            let image = utf16le_into(e.image, &mut b.image).map_err(|e| e.ntstatus())?;
            let user = utf16le_into(e.user, &mut b.user).map_err(|e| e.ntstatus())?;
            let image = if image.is_empty() {
                sensor::ImageArg::Absent
            } else {
                sensor::ImageArg::Given(image)
            };
            let target = sensor::Target { related: &[], name };
            let user = (!user.is_empty()).then_some(user);
            Ok::<_, NTSTATUS>(sensor::evaluate(e.kind, e.pid, target, image, user, true))
        })
        .ok_or(crate::sys::STATUS_DEVICE_BUSY)??;
    let mut resp = EvalResponse {
        decision: o.decision,
        action: o.hit.map_or(0, |h| h.action.0),
        severity: o.hit.map_or(0, |h| h.severity.0),
        has_rule: o.hit.is_some(),
        rule_id: o.hit.map_or(0, |h| h.id),
        matched: o.matched,
        sequence: o.sequence,
        rule_name: o.rule_name,
        name_len: o.name_len as u16,
        name: [0u16; MAX_NAME_UNITS],
    };
    if let (Some(d), Some(s)) = (resp.name.get_mut(..o.name_len), o.name.get(..o.name_len)) {
        d.copy_from_slice(s);
    }
    resp.encode(io.output()).map_err(|e| e.ntstatus())
}
