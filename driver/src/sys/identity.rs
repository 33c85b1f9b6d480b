//! Who asked: the requester's user SID and its process's creation time,
//! for the event record (`sensor_core::event::PipeEvent`).
//!
//! * **User SID.** First from the create's security context
//!   (`Iopb->Parameters.Create.SecurityContext->AccessState->
//!   SubjectSecurityContext`: the client (impersonation) token when there is
//!   one, else the primary token), opened with `ObOpenObjectByPointer` and
//!   queried with `ZwQueryInformationToken(TokenUser)`. When the create
//!   carries no access state (the filter-manager double leaves it NULL), from
//!   the requesting process's primary token: `ZwOpenProcessTokenEx` on a
//!   kernel handle to the process, then the same query
//!   (`FLAG_SID_FROM_PROCESS`). `SeQueryInformationToken`,
//!   `PsReferencePrimaryToken` and `PsDereferencePrimaryToken` are not used:
//!   Wine 8 exports them as stubs that raise when called.
//! * **Process creation time.** `ZwQueryInformationProcess(ProcessTimes)` on
//!   the same process handle. `PsGetProcessCreateTimeQuadPart` gives the same
//!   value on Windows but is a raising stub in Wine 8's ntoskrnl, so the one
//!   path both kernels implement is used.
//!
//! Nothing here allocates or waits beyond the object-manager calls; it runs
//! at PASSIVE_LEVEL in a pre-create callback, only for events that are
//! recorded. A failed step leaves that part unknown (and flagged in the
//! record): an event is never dropped for want of its identity.

use super::types::*;
use super::{
    nt_success, FltGetRequestorProcess, ObOpenObjectByPointer, ZwClose, ZwOpenProcessTokenEx,
    ZwQueryInformationProcess, ZwQueryInformationToken,
};
use core::ffi::c_void;
use core::ptr::null_mut;
use sensor_core::event::{Sid, SID_MAX};

/// What the driver learned about the requester.
#[derive(Debug, Clone, Copy)]
pub struct Identity {
    /// The user SID, if one could be read.
    pub sid: Option<Sid>,
    /// The SID came from the process's primary token (the fallback).
    pub sid_from_process: bool,
    /// The process's creation time (100 ns since 1601, UTC); 0 unknown.
    pub create_time: u64,
}

/// Which step gave (or failed to give) the SID: counted in status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SidFrom {
    /// The create's security context.
    Context,
    /// The process's primary token.
    Process,
    /// Neither.
    Missing,
}

/// A kernel handle, closed on drop.
struct Handle(HANDLE);
impl Drop for Handle {
    fn drop(&mut self) {
        // SAFETY: PASSIVE_LEVEL; a kernel handle we opened, closed once.
        unsafe { ZwClose(self.0) };
    }
}

/// TOKEN_USER plus the largest SID: 16 + 68 bytes, 8-aligned words.
const TOKEN_WORDS: usize = (core::mem::size_of::<TOKEN_USER>() + SID_MAX).div_ceil(8);

/// `ZwQueryInformationToken(TokenUser)` on `h`, the SID validated.
fn token_user(h: &Handle) -> Option<Sid> {
    let mut words = [0u64; TOKEN_WORDS];
    let size = core::mem::size_of_val(&words);
    let mut returned = 0u32;
    // SAFETY: PASSIVE_LEVEL; h is a token handle opened with TOKEN_QUERY;
    // the buffer is `size` writable, 8-aligned bytes on our stack.
    let s = unsafe {
        ZwQueryInformationToken(
            h.0,
            TOKEN_USER_CLASS,
            words.as_mut_ptr().cast(),
            size as u32,
            &mut returned,
        )
    };
    if !nt_success(s) {
        return None;
    }
    // TOKEN_USER.User.Sid (layout checked in layout.rs) points into the
    // buffer; read it as an offset and check it before touching anything.
    let base = words.as_ptr() as usize;
    let sid_at = (*words.first()? as usize).checked_sub(base)?;
    let bytes: &[u8] = {
        // SAFETY: the u64 words reinterpreted as bytes: same memory, no
        // padding, the borrow ends with this function.
        unsafe { core::slice::from_raw_parts(words.as_ptr().cast::<u8>(), size) }
    };
    let head = bytes.get(sid_at..sid_at.checked_add(8)?)?;
    let count = usize::from(*head.get(1)?);
    let len = 8usize.checked_add(count.checked_mul(4)?)?;
    Sid::from_bytes(bytes.get(sid_at..sid_at.checked_add(len)?)?).ok()
}

/// The SID of the token the create's security context names, if any.
fn context_sid(data: *const FLT_CALLBACK_DATA) -> Option<Sid> {
    // Validity: PASSIVE_LEVEL pre-create callback; data, its Iopb and the
    // security context the I/O manager passes with the create (and its
    // access state and tokens, referenced by the access state) are valid
    // until the callback returns. Layouts are checked in layout.rs.
    // SAFETY: see above.
    let iopb = unsafe { (*data).Iopb };
    if iopb.is_null() {
        return None;
    }
    // Parameters.Create.SecurityContext and Parameters.CreatePipe.
    // SecurityContext share offset 24 (layout.rs).
    // SAFETY: see above; Iopb is non-null.
    let params = unsafe { &(*iopb).Parameters };
    // SAFETY: Create is the member for both create operations.
    let ctx = unsafe { params.Create.SecurityContext }.cast::<IO_SECURITY_CONTEXT>();
    if ctx.is_null() {
        return None;
    }
    // SAFETY: see above; ctx is non-null.
    let access = unsafe { (*ctx).AccessState };
    if access.is_null() {
        return None;
    }
    // SAFETY: see above; the access state is non-null.
    let subject = unsafe { (*access).SubjectSecurityContext };
    let token = if subject.ClientToken.is_null() {
        subject.PrimaryToken
    } else {
        subject.ClientToken
    };
    if token.is_null() {
        return None;
    }
    let h = open_object(token, TOKEN_QUERY)?;
    token_user(&h)
}

/// A kernel handle to `object` (no type check, kernel mode).
fn open_object(object: *mut c_void, access: u32) -> Option<Handle> {
    let mut h: HANDLE = null_mut();
    // SAFETY: PASSIVE_LEVEL; object is a referenced kernel object valid for
    // the callback (see the callers); h is a live local.
    let s = unsafe {
        ObOpenObjectByPointer(
            object,
            OBJ_KERNEL_HANDLE,
            null_mut(),
            access,
            null_mut(),
            KERNEL_MODE,
            &mut h,
        )
    };
    nt_success(s).then_some(Handle(h))
}

/// The SID of the process's primary token.
fn process_sid(process: &Handle) -> Option<Sid> {
    let mut t: HANDLE = null_mut();
    // SAFETY: PASSIVE_LEVEL; process is a process handle we opened; t is a
    // live local.
    let s = unsafe { ZwOpenProcessTokenEx(process.0, TOKEN_QUERY, OBJ_KERNEL_HANDLE, &mut t) };
    if !nt_success(s) {
        return None;
    }
    token_user(&Handle(t))
}

/// The process's creation time (0 when it cannot be read).
fn create_time(process: &Handle) -> u64 {
    let mut times = KERNEL_USER_TIMES::default();
    let mut returned = 0u32;
    // SAFETY: PASSIVE_LEVEL; a process handle we opened; times is a live
    // local of the documented size.
    let s = unsafe {
        ZwQueryInformationProcess(
            process.0,
            PROCESS_TIMES,
            (&mut times as *mut KERNEL_USER_TIMES).cast(),
            core::mem::size_of::<KERNEL_USER_TIMES>() as u32,
            &mut returned,
        )
    };
    if nt_success(s) {
        u64::try_from(times.CreateTime).unwrap_or(0)
    } else {
        0
    }
}

impl super::Requestor<'_> {
    /// The requester's identity (user SID, process creation time).
    pub fn identity(&self) -> (Identity, SidFrom) {
        let data = self.data();
        let mut id = Identity {
            sid: context_sid(data),
            sid_from_process: false,
            create_time: 0,
        };
        let mut from = if id.sid.is_some() {
            SidFrom::Context
        } else {
            SidFrom::Missing
        };
        // SAFETY: PASSIVE_LEVEL pre-create callback; data is valid; the
        // process is valid (not referenced for us) while the operation is
        // in progress, and is only opened, never kept.
        let process = unsafe { FltGetRequestorProcess(data) };
        if process.is_null() {
            return (id, from);
        }
        let Some(h) = open_object(
            process,
            PROCESS_QUERY_INFORMATION | PROCESS_QUERY_LIMITED_INFORMATION,
        ) else {
            return (id, from);
        };
        id.create_time = create_time(&h);
        if id.sid.is_none() {
            id.sid = process_sid(&h);
            if id.sid.is_some() {
                id.sid_from_process = true;
                from = SidFrom::Process;
            }
        }
        (id, from)
    }
}
