//! The FFI shell: every `unsafe` block of the driver lives in this module.
//!
//! Imports are declared here, by hand, against the three kernel modules a
//! driver may import from (`ntoskrnl.exe`, `fltmgr.sys`, `hal.dll`), because
//! `windows-sys` links many kernel routines (`Zw*`, `Rtl*`) to `ntdll.dll`.
//! `windows-sys` supplies the structure types it gets right (see
//! `types.rs` and `../layout.rs`).
//!
//! What the rest of the driver gets from here are safe wrappers: pool
//! buffers and reference-counted pool objects, a spin lock, a write-once
//! cell, registry and file access, symbolic-link queries, the control
//! device, the filter registration, a system thread, logging, time, and the
//! bug-check hooks. IRQL rules are stated on
//! each wrapper; all of them are called at PASSIVE_LEVEL unless said
//! otherwise.
#![allow(non_snake_case, clippy::missing_safety_doc)]

pub mod clock;
pub mod identity;
pub mod pending;
pub mod requestor;
pub mod semaphore;
pub mod types;

pub use identity::{Identity, SidFrom};
pub use requestor::{ImageFrom, ImageQuery, Requestor};
pub use semaphore::Semaphore;

use crate::sys::types::*;
pub use crate::sys::types::{
    NTSTATUS, STATUS_DEVICE_BUSY, STATUS_FILE_TOO_LARGE, STATUS_OBJECT_NAME_NOT_FOUND,
    STATUS_SUCCESS,
};
use channel_parser::ChannelFile;
use core::cell::UnsafeCell;
use core::ffi::c_void;
use core::ptr::{self, null_mut, NonNull};
use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicU8, AtomicUsize, Ordering};

// ---------------------------------------------------------------------------
// Imports
// ---------------------------------------------------------------------------

use crate::sys::types::HANDLE;
use pipesensor_imports::*;
// ---------------------------------------------------------------------------
// Constants
// ---------------------------------------------------------------------------

pub fn nt_success(s: NTSTATUS) -> bool {
    s >= 0
}

/// Pool tag `PSen` (shows as "PSen" in `!poolused`).
pub const POOL_TAG: u32 = u32::from_le_bytes(*b"PSen");

/// Bug-check code of a Rust panic in the driver: "PSNC" (PipeSensor paNiC).
/// P1: address of the file name (not NUL-terminated), P2: its length,
/// P3: line, P4: column. See docs/windbg.md.
pub const BUGCHECK_PANIC: u32 = 0x5053_4E43;

// The FFI layer, split by concern (each file says what it holds).
mod bugcheck;
mod crt;
mod device;
mod entry;
mod file;
mod filter;
mod hooks;
mod log;
mod pool;
mod registry;
mod routines;
mod symlink;
mod sync;
mod thread;
mod wide;

pub use bugcheck::*;
pub use device::*;
pub use file::*;
pub use filter::*;
pub use hooks::*;

/// The one name the FFI layer knows of the crate above it: the hooks
/// table, data the crate root fills (see [`Hooks`]).
use crate::globals::HOOKS;
pub use log::*;
pub use pool::*;
pub use registry::*;
pub use routines::*;
pub use symlink::*;
pub use sync::*;
pub use thread::*;
pub use wide::*;
