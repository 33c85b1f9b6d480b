//! The process that requested an operation: its id and its image path.
//!
//! The image path comes from `SeLocateProcessImageName`, the documented
//! routine; where it fails (Wine 8 answers STATUS_NOT_IMPLEMENTED), from
//! `ZwQueryInformationProcess(ProcessImageFileName)` on a kernel handle
//! opened with `ObOpenObjectByPointer`, which Windows offers as well. Both
//! give the NT form (`\Device\HarddiskVolume3\...`); the caller rewrites it
//! to DOS form. Which one answered is counted in status.

use super::types::*;
use super::{
    nt_success, ExFreePool, FltGetRequestorProcess, FltGetRequestorProcessId,
    ObOpenObjectByPointer, SeLocateProcessImageName, ZwClose, ZwQueryInformationProcess,
};
use core::marker::PhantomData;
use core::ptr::null_mut;

/// Longest image path kept, in UTF-16 units.
pub const IMAGE_QUERY_UNITS: usize = 2048;
/// A `UNICODE_STRING` header, then the characters: 8-aligned words.
const WORDS: usize = (core::mem::size_of::<UNICODE_STRING>() + 2 * IMAGE_QUERY_UNITS) / 8;

/// The buffer an image path is queried into (part of the working memory:
/// never on the stack).
pub struct ImageQuery {
    words: [u64; WORDS],
}

impl ImageQuery {
    /// Zeroed.
    pub const fn new() -> Self {
        ImageQuery { words: [0; WORDS] }
    }
    fn units(&self) -> &[u16] {
        // SAFETY: u64 words reinterpreted as u16 units: same memory, no
        // padding, u16 needs less alignment; the lifetime is self's.
        unsafe {
            core::slice::from_raw_parts(
                self.words.as_ptr().cast::<u16>(),
                core::mem::size_of_val(&self.words) / 2,
            )
        }
    }
    fn units_mut(&mut self) -> &mut [u16] {
        // SAFETY: as above, and &mut self makes it exclusive.
        unsafe {
            core::slice::from_raw_parts_mut(
                self.words.as_mut_ptr().cast::<u16>(),
                core::mem::size_of_val(&self.words) / 2,
            )
        }
    }
}

/// Where a requestor's image path came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageFrom {
    /// `SeLocateProcessImageName`.
    Located,
    /// `ZwQueryInformationProcess(ProcessImageFileName)`.
    Queried,
    /// Neither (no process, both failed, or longer than the buffer).
    Missing,
}

/// The requestor of the operation a pre-operation callback is looking at;
/// valid while the callback runs (`'d`).
#[derive(Debug, Clone, Copy)]
pub struct Requestor<'d> {
    data: *const FLT_CALLBACK_DATA,
    _callback: PhantomData<&'d FLT_CALLBACK_DATA>,
}

/// An image path from SeLocateProcessImageName, freed on drop.
struct LocatedName(*mut UNICODE_STRING);

impl LocatedName {
    fn units(&self) -> &[u16] {
        // SAFETY: SeLocateProcessImageName returned a pool UNICODE_STRING
        // whose Buffer holds Length bytes, owned by us until ExFreePool.
        let s = unsafe { &*self.0 };
        if s.Buffer.is_null() {
            return &[];
        }
        // SAFETY: as above: Buffer holds Length bytes while self lives.
        unsafe { core::slice::from_raw_parts(s.Buffer, usize::from(s.Length) / 2) }
    }
}

impl Drop for LocatedName {
    fn drop(&mut self) {
        // SAFETY: the documented way to free SeLocateProcessImageName's result.
        unsafe { ExFreePool(self.0.cast()) };
    }
}

impl<'d> Requestor<'d> {
    /// From the callback data a pre-operation callback received.
    ///
    /// # Safety
    /// `data` is the callback data of the running pre-operation callback
    /// (valid until it returns, which `'d` must not outlive).
    pub unsafe fn new(data: *const FLT_CALLBACK_DATA) -> Requestor<'d> {
        Requestor {
            data,
            _callback: PhantomData,
        }
    }

    /// The callback data (for `identity.rs`).
    pub(super) fn data(&self) -> *const FLT_CALLBACK_DATA {
        self.data
    }

    /// `FltGetRequestorProcessId`.
    pub fn pid(&self) -> u32 {
        // SAFETY: PASSIVE_LEVEL pre-create callback; data is valid (new).
        unsafe { FltGetRequestorProcessId(self.data) }
    }

    /// The requesting process's image path (NT form) in `q`.
    pub fn image<'q>(&self, q: &'q mut ImageQuery) -> (Option<&'q [u16]>, ImageFrom) {
        // SAFETY: as in pid(). The process is not referenced for us: it is
        // valid while the operation is in progress (the callback), and we
        // neither keep nor dereference it.
        let process = unsafe { FltGetRequestorProcess(self.data) };
        if process.is_null() {
            return (None, ImageFrom::Missing);
        }
        let mut img: *mut UNICODE_STRING = null_mut();
        // SAFETY: PASSIVE_LEVEL; process is valid for the callback; img is
        // a live local the routine fills.
        let s = unsafe { SeLocateProcessImageName(process, &mut img) };
        if nt_success(s) && !img.is_null() {
            let located = LocatedName(img);
            let src = located.units();
            let n = src.len();
            let copied = match q.units_mut().get_mut(..n) {
                Some(dst) => {
                    dst.copy_from_slice(src);
                    true
                }
                None => false,
            };
            drop(located);
            return if copied {
                (q.units().get(..n), ImageFrom::Located)
            } else {
                (None, ImageFrom::Missing)
            };
        }
        match query_image(process, q) {
            Some((start, len)) => (
                q.units().get(start..start.saturating_add(len)),
                ImageFrom::Queried,
            ),
            None => (None, ImageFrom::Missing),
        }
    }
}

/// `ZwQueryInformationProcess(ProcessImageFileName)` into `q`: the path's
/// position in `q`'s units (start, length), checked to lie inside `q`.
fn query_image(process: *mut core::ffi::c_void, q: &mut ImageQuery) -> Option<(usize, usize)> {
    let mut h: HANDLE = null_mut();
    // SAFETY: PASSIVE_LEVEL; process is valid for the callback; a kernel
    // handle (OBJ_KERNEL_HANDLE, KernelMode), no type check (NULL type:
    // the object came from the filter manager as a process).
    let s = unsafe {
        ObOpenObjectByPointer(
            process,
            OBJ_KERNEL_HANDLE,
            null_mut(),
            PROCESS_QUERY_LIMITED_INFORMATION,
            null_mut(),
            KERNEL_MODE,
            &mut h,
        )
    };
    if !nt_success(s) {
        return None;
    }
    let base = q.words.as_ptr() as usize;
    let size = core::mem::size_of_val(&q.words);
    let mut returned = 0u32;
    // SAFETY: PASSIVE_LEVEL; h is the handle opened above; the buffer is
    // `size` writable, 8-aligned bytes owned by q.
    let s = unsafe {
        ZwQueryInformationProcess(
            h,
            PROCESS_IMAGE_FILE_NAME,
            q.words.as_mut_ptr().cast(),
            size as u32,
            &mut returned,
        )
    };
    // SAFETY: closing the handle opened above, once.
    unsafe { ZwClose(h) };
    if !nt_success(s) {
        return None;
    }
    // The UNICODE_STRING at the start (layout checked in layout.rs):
    // Length (u16) at 0, Buffer (pointer) at 8. Read as plain words.
    let w0 = *q.words.first()?;
    let buffer = *q.words.get(1)? as usize;
    let len_bytes = (w0 & 0xFFFF) as usize;
    let header = core::mem::size_of::<UNICODE_STRING>();
    let off = buffer.checked_sub(base)?;
    let end = off.checked_add(len_bytes)?;
    if off < header || end > size || off % 2 != 0 {
        return None;
    }
    Some((off / 2, len_bytes / 2))
}
