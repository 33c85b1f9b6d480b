//! The event stream to the service (issue 11 phase B): EVENTS_V2
//! (`sensor_core::stream`) answered from the ring of full records, and the
//! wake-up of pended readers after each push.
//!
//! What a request gets:
//! * without `STREAM_FLAG_WAIT`, or with it while events wait: a batch at
//!   once (possibly empty without WAIT);
//! * with WAIT on an empty ring: the IRP is pended in the wait queue
//!   (`sys::pending`, the state machine of `sensor_core::waitq`) and
//!   completed by the next push ([`pushed`]), by its cancel routine
//!   (`STATUS_CANCELLED`), by the handle's `IRP_MJ_CLEANUP`, or at unload
//!   (with what the ring still holds).
//!
//! The ring is never waited on by the pipe path: a push takes the ring's
//! spin lock for the copy, then hands at most one batch per waiting reader
//! to the completion; when no reader keeps up, the oldest records are
//! overwritten and counted (`lost` in every batch, `events_overwritten` in
//! status).

use crate::sensor;
use crate::sys::{pending, BufferedIo, NTSTATUS};
use sensor_core::event::PipeEvent;
use sensor_core::proto::ProtoError;
use sensor_core::ring::EventRing;
use sensor_core::stream::{decode_stream_request, encode_batch, BATCH_MIN_OUT, IOCTL_EVENTS_V2};

/// Answers an EVENTS_V2 request from `ring` into `io` (the request is
/// decoded again from the system buffer's input, which is intact until the
/// answer is written). Returns the bytes written.
///
/// # Errors
/// The request's decoding error, or the output buffer is too small.
pub fn answer<const N: usize>(
    io: &mut BufferedIo,
    ring: &mut EventRing<N, PipeEvent>,
) -> Result<usize, ProtoError> {
    let req = decode_stream_request(IOCTL_EVENTS_V2, io.input())?;
    encode_batch(io.output(), req.max, ring).map(|(n, _)| n)
}

/// Whether an EVENTS_V2 request asks to wait and could be answered later
/// (a request that does not decode, or whose output buffer cannot hold one
/// record, is answered with its error at once and never pended).
pub fn wants_wait(io: &BufferedIo) -> bool {
    io.out_len() >= BATCH_MIN_OUT
        && decode_stream_request(IOCTL_EVENTS_V2, io.input()).is_ok_and(|r| r.wait)
}

/// EVENTS_V2 without waiting (or a request that does not decode).
pub fn answer_now(io: &mut BufferedIo) -> Result<usize, NTSTATUS> {
    sensor::with_ring(|ring| answer(io, ring)).map_err(|e| e.ntstatus())
}

/// Called after every push: completes waiting readers while events wait.
pub fn pushed() {
    pending::wake();
}
