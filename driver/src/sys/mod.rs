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
use channel_parser::{ChannelFile, DfaSlot};
use core::cell::UnsafeCell;
use core::ffi::c_void;
use core::ptr::{self, null_mut, NonNull};
use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicU8, AtomicUsize, Ordering};

// ---------------------------------------------------------------------------
// Imports
// ---------------------------------------------------------------------------

use crate::sys::types::HANDLE;
use pipesensor_imports::*;

// The precompiled `core` for x86_64-pc-windows-msvc references these; with
// panic = "abort" they are never called (FACTS.md, "Building a driver").
#[no_mangle]
#[used]
static _fltused: i32 = 0;

/// Forces the `__chkstk` import (referenced by compiler-generated probes,
/// which the import-library generation does not see).
#[used]
static CHKSTK: unsafe extern "C" fn() = __chkstk;

/// Same for the memory routines LLVM emits calls to (ntoskrnl exports them).
#[used]
static MEM_ROUTINES: (
    unsafe extern "C" fn(*mut c_void, *const c_void, usize) -> *mut c_void,
    unsafe extern "C" fn(*mut c_void, *const c_void, usize) -> *mut c_void,
    unsafe extern "C" fn(*mut c_void, i32, usize) -> *mut c_void,
    unsafe extern "C" fn(*const c_void, *const c_void, usize) -> i32,
) = (memcpy, memmove, memset, memcmp);

/// Never called: unwinding is disabled (`panic = "abort"`).
#[no_mangle]
extern "C" fn __CxxFrameHandler3() -> i32 {
    bug_check(BUGCHECK_PANIC, 0xC0DE, 0, 0, 0)
}

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

// ---------------------------------------------------------------------------
// Logging
// ---------------------------------------------------------------------------

/// `DbgPrintEx` levels used with `DPFLTR_IHVDRIVER_ID`.
#[derive(Debug, Clone, Copy)]
#[repr(u32)]
pub enum Level {
    Error = 0,
    Warning = 1,
    Trace = 2,
    Info = 3,
}

struct LineBuf {
    buf: [u8; 256],
    len: usize,
}

impl core::fmt::Write for LineBuf {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        for &b in s.as_bytes() {
            // Keep one byte for the NUL; drop the rest; never emit '%'.
            if self.len + 1 >= self.buf.len() {
                break;
            }
            if let Some(slot) = self.buf.get_mut(self.len) {
                *slot = if b == b'%' || b == 0 { b'?' } else { b };
                self.len += 1;
            }
        }
        Ok(())
    }
}

/// Prints one line to the kernel debugger (`DPFLTR_IHVDRIVER_ID`, `level`).
/// Callable at IRQL <= DIRQL; formats into a 256-byte stack buffer. Not
/// inlined, so that buffer is on the stack only while a line is printed.
#[inline(never)]
pub fn log(level: Level, args: core::fmt::Arguments<'_>) {
    let mut line = LineBuf {
        buf: [0; 256],
        len: 0,
    };
    let _ = core::fmt::write(&mut line, format_args!("PipeSensor: {args}\n"));
    // SAFETY: the format is a NUL-terminated literal with one %s, and its
    // argument is a NUL-terminated buffer without '%' (LineBuf keeps the last
    // byte 0 and replaces '%').
    unsafe {
        DbgPrintEx(
            DPFLTR_IHVDRIVER_ID,
            level as u32,
            c"%s".as_ptr().cast(),
            line.buf.as_ptr(),
        );
    }
}

// ---------------------------------------------------------------------------
// Dynamic routines and pool
// ---------------------------------------------------------------------------

/// A UTF-16 copy of an ASCII string, NUL-terminated, in a fixed buffer.
pub struct Wide<const N: usize> {
    buf: [u16; N],
    len: usize,
}

impl<const N: usize> Wide<N> {
    /// The empty string.
    pub const fn empty() -> Self {
        Wide {
            buf: [0; N],
            len: 0,
        }
    }
    /// Replaces the contents with `u` (cut to N-1), in place.
    pub fn set_units(&mut self, u: &[u16]) {
        self.buf = [0; N];
        self.len = 0;
        self.push_units(u);
    }
    /// Converts `s` (cut to N-1 units).
    pub fn new(s: &str) -> Self {
        let mut w = Wide {
            buf: [0; N],
            len: 0,
        };
        w.push_str(s);
        w
    }
    /// From UTF-16 units (cut to N-1).
    pub fn from_units(u: &[u16]) -> Self {
        let mut w = Wide {
            buf: [0; N],
            len: 0,
        };
        w.push_units(u);
        w
    }
    /// Appends `s`.
    pub fn push_str(&mut self, s: &str) {
        for u in s.encode_utf16() {
            self.push_units(&[u]);
        }
    }
    /// Appends units.
    pub fn push_units(&mut self, u: &[u16]) {
        for &x in u {
            if self.len + 1 >= N {
                return;
            }
            if let Some(slot) = self.buf.get_mut(self.len) {
                *slot = x;
                self.len += 1;
            }
        }
    }
    /// The units (without the NUL).
    pub fn units(&self) -> &[u16] {
        self.buf.get(..self.len).unwrap_or(&[])
    }
    /// A `UNICODE_STRING` describing the buffer; valid while `self` is.
    fn unicode(&self) -> UNICODE_STRING {
        let bytes = (self.len * 2) as u16;
        UNICODE_STRING {
            Length: bytes,
            MaximumLength: bytes,
            Buffer: self.buf.as_ptr() as *mut u16,
        }
    }
}

type ExAllocatePool2Fn =
    unsafe extern "system" fn(flags: u64, size: usize, tag: u32) -> *mut c_void;
type QuerySystemTimeFn = unsafe extern "system" fn(*mut i64);

static EX_ALLOCATE_POOL2: AtomicPtr<c_void> = AtomicPtr::new(null_mut());
static QUERY_TIME: AtomicPtr<c_void> = AtomicPtr::new(null_mut());

fn system_routine(name: &str) -> *mut c_void {
    let w = Wide::<64>::new(name);
    let us = w.unicode();
    // SAFETY: PASSIVE_LEVEL (DriverEntry); `us` points into `w`, alive for the call.
    unsafe { MmGetSystemRoutineAddress(&us) }
}

type QueryInterruptTimeFn = unsafe extern "system" fn() -> u64;
type QueryInterruptTimePreciseFn = unsafe extern "system" fn(*mut u64) -> u64;

/// The boot identity the process GUIDs carry (`sensor_core::event::process_guid`).
static BOOT_ID: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(0);
static BOOT_FROM_INTERRUPT_TIME: AtomicBool = AtomicBool::new(false);
static INTERRUPT_TIME: AtomicPtr<c_void> = AtomicPtr::new(null_mut());
static INTERRUPT_TIME_PRECISE: AtomicPtr<c_void> = AtomicPtr::new(null_mut());

/// Fixes the boot identity (DriverEntry, PASSIVE_LEVEL, after
/// [`resolve_dynamic_routines`]): the boot instant in whole seconds since
/// 1601, system time minus interrupt time (`KeQueryInterruptTimePrecise`
/// on Windows 10; else `KeQueryInterruptTime`, as in Wine, whose value
/// counts ticks and is scaled by `KeQueryTimeIncrement`),
/// so a driver restart within one boot keeps every process's GUID. Without
/// an interrupt-time routine it is the driver's start time (GUIDs then
/// change when the driver restarts; logged). The clock being set while the
/// machine runs moves the computed instant: GUIDs of processes seen after a
/// driver restart that follows a clock change differ (documented in
/// docs/events.md).
pub fn fix_boot_identity() {
    let now = system_time();
    INTERRUPT_TIME_PRECISE.store(
        system_routine("KeQueryInterruptTimePrecise"),
        Ordering::Release,
    );
    INTERRUPT_TIME.store(system_routine("KeQueryInterruptTime"), Ordering::Release);
    let precise = INTERRUPT_TIME_PRECISE.load(Ordering::Acquire);
    let plain = INTERRUPT_TIME.load(Ordering::Acquire);
    let interrupt = if !precise.is_null() {
        // SAFETY: the exported routine has this prototype
        // (ULONG64 fn(PULONG64 QpcTimeStamp)); any IRQL; qpc is a live local.
        let f =
            unsafe { core::mem::transmute::<*mut c_void, QueryInterruptTimePreciseFn>(precise) };
        let mut qpc = 0u64;
        // SAFETY: see above.
        Some(unsafe { f(&mut qpc) })
    } else if !plain.is_null() {
        // SAFETY: the exported routine has this prototype (ULONGLONG fn(void)); any IRQL.
        let f = unsafe { core::mem::transmute::<*mut c_void, QueryInterruptTimeFn>(plain) };
        // SAFETY: see above.
        let t = unsafe { f() };
        // Only reached where KeQueryInterruptTimePrecise is missing: Wine
        // (the driver needs Windows 10, which has it). Wine 8's
        // KeQueryInterruptTime returns KeQueryTickCount (ticks, not 100 ns
        // units): scale by the tick length.
        // SAFETY: no arguments; any IRQL.
        let inc = unsafe { KeQueryTimeIncrement() };
        Some(t.saturating_mul(u64::from(inc)))
    } else {
        None
    };
    let boot = match interrupt {
        Some(i) if now > i => {
            BOOT_FROM_INTERRUPT_TIME.store(true, Ordering::Release);
            (now - i) / 10_000_000
        }
        _ => now / 10_000_000,
    };
    BOOT_ID.store(boot, Ordering::Release);
    log(
        Level::Trace,
        format_args!(
            "boot identity {boot:#x} ({})",
            if BOOT_FROM_INTERRUPT_TIME.load(Ordering::Relaxed) {
                "boot instant"
            } else {
                "driver start: no interrupt-time routine"
            }
        ),
    );
}

/// The boot identity fixed by [`fix_boot_identity`].
pub fn boot_identity() -> u64 {
    BOOT_ID.load(Ordering::Acquire)
}

/// Resolves routines that are missing on older kernels or under Wine
/// (`ExAllocatePool2` since Windows 10 2004; `KeQuerySystemTimePrecise`
/// since Windows 8). Call once from DriverEntry (PASSIVE_LEVEL).
pub fn resolve_dynamic_routines() {
    EX_ALLOCATE_POOL2.store(system_routine("ExAllocatePool2"), Ordering::Release);
    let mut t = system_routine("KeQuerySystemTimePrecise");
    if t.is_null() {
        // x64 Windows has only the Precise export; Wine has only this one.
        t = system_routine("KeQuerySystemTime");
    }
    QUERY_TIME.store(t, Ordering::Release);
    clock::resolve();
    log(
        Level::Trace,
        format_args!(
            "ExAllocatePool2 {}, time source {}",
            if EX_ALLOCATE_POOL2.load(Ordering::Relaxed).is_null() {
                "absent (ExAllocatePoolWithTag)"
            } else {
                "present"
            },
            if QUERY_TIME.load(Ordering::Relaxed).is_null() {
                "none"
            } else {
                "present"
            }
        ),
    );
}

/// System time in 100 ns units since 1601, 0 when no routine is available.
/// Any IRQL.
pub fn system_time() -> u64 {
    let p = QUERY_TIME.load(Ordering::Acquire);
    if p.is_null() {
        return 0;
    }
    // SAFETY: p came from MmGetSystemRoutineAddress for a routine with this
    // exact prototype (VOID fn(PLARGE_INTEGER)).
    let f: QuerySystemTimeFn = unsafe { core::mem::transmute::<*mut c_void, QuerySystemTimeFn>(p) };
    let mut t = 0i64;
    // SAFETY: writes one LARGE_INTEGER to a valid local; callable at any IRQL.
    unsafe { f(&mut t) };
    t as u64
}

static POOL_LIVE: AtomicUsize = AtomicUsize::new(0);

/// Pool allocations made by the driver and not yet freed.
pub fn pool_live() -> usize {
    POOL_LIVE.load(Ordering::Relaxed)
}

/// Zeroed nonpaged, non-executable pool, tagged [`POOL_TAG`]. IRQL <= DISPATCH_LEVEL.
fn pool_alloc(size: usize) -> Option<NonNull<u8>> {
    let p = pool_alloc_raw(size);
    if p.is_some() {
        POOL_LIVE.fetch_add(1, Ordering::Relaxed);
    }
    p
}

fn pool_alloc_raw(size: usize) -> Option<NonNull<u8>> {
    if size == 0 {
        return None;
    }
    let f = EX_ALLOCATE_POOL2.load(Ordering::Acquire);
    let p = if f.is_null() {
        // SAFETY: documented routine, nonpaged NX pool, IRQL <= DISPATCH_LEVEL.
        let p = unsafe { ExAllocatePoolWithTag(NON_PAGED_POOL_NX, size, POOL_TAG) }.cast::<u8>();
        if !p.is_null() {
            // SAFETY: p is a fresh allocation of `size` bytes.
            unsafe { ptr::write_bytes(p, 0, size) };
        }
        p
    } else {
        // SAFETY: f is ExAllocatePool2 (resolved by name), same prototype;
        // POOL_FLAG_NON_PAGED memory is zeroed and NX.
        let g: ExAllocatePool2Fn =
            unsafe { core::mem::transmute::<*mut c_void, ExAllocatePool2Fn>(f) };
        // SAFETY: see above; IRQL <= DISPATCH_LEVEL.
        unsafe { g(POOL_FLAG_NON_PAGED, size, POOL_TAG) }.cast::<u8>()
    };
    NonNull::new(p)
}

fn pool_free(p: NonNull<u8>) {
    POOL_LIVE.fetch_sub(1, Ordering::Relaxed);
    // SAFETY: p came from pool_alloc with the same tag and is freed once.
    unsafe { ExFreePoolWithTag(p.as_ptr().cast(), POOL_TAG) }
}

/// An owned, zero-initialised byte buffer in nonpaged pool.
pub struct PoolBuf {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: PoolBuf owns its memory exclusively, like Box<[u8]>.
unsafe impl Send for PoolBuf {}
// SAFETY: shared access only reads.
unsafe impl Sync for PoolBuf {}

impl PoolBuf {
    /// Allocates `len` zeroed bytes (None when out of memory or `len` is 0).
    pub fn zeroed(len: usize) -> Option<PoolBuf> {
        pool_alloc(len).map(|ptr| PoolBuf { ptr, len })
    }
    /// A copy of `data`.
    pub fn copy_of(data: &[u8]) -> Option<PoolBuf> {
        let mut b = PoolBuf::zeroed(data.len())?;
        b.as_mut_slice().copy_from_slice(data);
        Some(b)
    }
    pub fn as_slice(&self) -> &[u8] {
        // SAFETY: ptr is a live allocation of len initialised (zeroed) bytes
        // owned by self.
        unsafe { core::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: as above, and &mut self gives exclusive access.
        unsafe { core::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
    pub fn len(&self) -> usize {
        self.len
    }
}

impl Drop for PoolBuf {
    fn drop(&mut self) {
        pool_free(self.ptr);
    }
}

/// A reference-counted object in nonpaged pool (an `Arc` without `alloc`).
/// Dropping the last reference frees it, at the IRQL of that drop
/// (<= DISPATCH_LEVEL; nonpaged pool may be freed there).
pub struct PoolArc<T> {
    ptr: NonNull<ArcInner<T>>,
}

struct ArcInner<T> {
    refs: AtomicUsize,
    value: T,
}

// SAFETY: like Arc<T>: shared references to T cross threads.
unsafe impl<T: Send + Sync> Send for PoolArc<T> {}
// SAFETY: as above.
unsafe impl<T: Send + Sync> Sync for PoolArc<T> {}

impl<T> PoolArc<T> {
    /// Moves `value` into pool (None when out of memory; `value` is dropped).
    pub fn try_new(value: T) -> Option<PoolArc<T>> {
        let size = core::mem::size_of::<ArcInner<T>>();
        const {
            assert!(
                core::mem::align_of::<ArcInner<T>>() <= 16,
                "pool allocations are 16-byte aligned"
            )
        };
        let p = pool_alloc(size)?.cast::<ArcInner<T>>();
        // SAFETY: p is a fresh, suitably aligned (pool blocks are 16-aligned
        // on x64) allocation of size_of::<ArcInner<T>>() bytes.
        unsafe {
            p.as_ptr().write(ArcInner {
                refs: AtomicUsize::new(1),
                value,
            })
        };
        Some(PoolArc { ptr: p })
    }
    fn inner(&self) -> &ArcInner<T> {
        // SAFETY: the allocation lives while any PoolArc to it exists.
        unsafe { self.ptr.as_ref() }
    }
    /// Live references (diagnostics only).
    pub fn refs(&self) -> usize {
        self.inner().refs.load(Ordering::Relaxed)
    }
}

impl<T> Clone for PoolArc<T> {
    fn clone(&self) -> Self {
        self.inner().refs.fetch_add(1, Ordering::Relaxed);
        PoolArc { ptr: self.ptr }
    }
}

impl<T> core::ops::Deref for PoolArc<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.inner().value
    }
}

impl<T> Drop for PoolArc<T> {
    fn drop(&mut self) {
        if self.inner().refs.fetch_sub(1, Ordering::Release) != 1 {
            return;
        }
        core::sync::atomic::fence(Ordering::Acquire);
        // SAFETY: this was the last reference: nobody else can reach the
        // value; drop it in place, then free the block.
        let inner = unsafe { &mut *self.ptr.as_ptr() };
        // SAFETY: as above: the value is dropped exactly once, here.
        unsafe { ptr::drop_in_place(&mut inner.value) };
        pool_free(self.ptr.cast());
    }
}

impl<T> core::fmt::Debug for PoolArc<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("PoolArc")
            .field("refs", &self.refs())
            .finish_non_exhaustive()
    }
}

/// The regex DFAs of a channel file, deserialized once into nonpaged pool
/// (`ChannelFile::load_dfas`) so the matcher does not re-run
/// `DFA::from_bytes` on every candidate (`ChannelFile::evaluate_with`).
struct DfaSlots {
    ptr: NonNull<DfaSlot<'static>>,
    len: usize,
}

// SAFETY: DfaSlots owns its array exclusively, like Box<[DfaSlot]>; a
// DfaSlot only holds shared references to immutable pool bytes.
unsafe impl Send for DfaSlots {}
// SAFETY: shared access only reads.
unsafe impl Sync for DfaSlots {}

impl DfaSlots {
    /// `n` empty slots (None when out of memory, `n` is 0, or the size overflows).
    fn new(n: usize) -> Option<DfaSlots> {
        const {
            assert!(
                !core::mem::needs_drop::<DfaSlot<'static>>(),
                "slots are freed without dropping their elements"
            );
            assert!(
                core::mem::align_of::<DfaSlot<'static>>() <= 16,
                "pool allocations are 16-byte aligned"
            );
        };
        let size = n.checked_mul(core::mem::size_of::<DfaSlot<'static>>())?;
        let p = pool_alloc(size)?.cast::<DfaSlot<'static>>();
        for i in 0..n {
            // SAFETY: p is a fresh allocation of n slots; i < n stays inside it.
            let slot = unsafe { p.as_ptr().add(i) };
            // SAFETY: `slot` is in bounds and suitably aligned (pool blocks
            // are 16-aligned, asserted above); it is written once, uninitialised
            // before.
            unsafe { slot.write(DfaSlot::EMPTY) };
        }
        Some(DfaSlots { ptr: p, len: n })
    }
    fn as_slice(&self) -> &[DfaSlot<'static>] {
        // SAFETY: ptr is a live allocation of len initialised slots owned by self.
        unsafe { core::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
    fn as_mut_slice(&mut self) -> &mut [DfaSlot<'static>] {
        // SAFETY: as above, and &mut self gives exclusive access.
        unsafe { core::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

impl Drop for DfaSlots {
    fn drop(&mut self) {
        // The slots need no drop (asserted in `new`): just free the block.
        pool_free(self.ptr.cast());
    }
}

/// A parsed channel file together with the pool buffer it borrows from,
/// and its DFAs loaded once.
pub struct OwnedChannel {
    // Declared first: dropped before `buf`, whose bytes they borrow.
    file: ChannelFile<'static>,
    dfas: Option<DfaSlots>,
    buf: PoolBuf,
}

impl OwnedChannel {
    /// Parses `buf` with `parse`, keeping both together, then loads the
    /// file's DFAs into pool slots (without memory for them the matcher
    /// deserializes a DFA each time it needs it: slower, same verdicts).
    ///
    /// # Errors
    /// The parser's error (the buffer is freed).
    pub fn try_new<E>(
        buf: PoolBuf,
        parse: impl FnOnce(&'static [u8]) -> Result<ChannelFile<'static>, E>,
    ) -> Result<Self, E> {
        // SAFETY: the slice points into pool memory owned by `buf`, which
        // never moves (PoolBuf holds a pointer) and is freed only when this
        // OwnedChannel drops, after `file` and `dfas` (field order). `file()`
        // and `dfas()` hand them out only with the lifetime of &self, so no
        // 'static borrow escapes.
        let bytes: &'static [u8] =
            unsafe { core::slice::from_raw_parts(buf.ptr.as_ptr(), buf.len) };
        let file = parse(bytes)?;
        let dfas = match file.dfa_count() as usize {
            0 => None,
            n => DfaSlots::new(n).map(|mut slots| {
                file.load_dfas(slots.as_mut_slice());
                slots
            }),
        };
        Ok(OwnedChannel { file, dfas, buf })
    }
    /// The parsed view, borrowing `self`.
    pub fn file<'s>(&'s self) -> &'s ChannelFile<'s> {
        &self.file
    }
    /// The loaded DFAs (empty when the file has none or there was no
    /// memory for them), for `ChannelFile::evaluate_with`.
    pub fn dfas<'s>(&'s self) -> &'s [DfaSlot<'s>] {
        self.dfas.as_ref().map_or(&[], DfaSlots::as_slice)
    }
    /// The raw bytes.
    pub fn bytes(&self) -> &[u8] {
        self.buf.as_slice()
    }
}

// ---------------------------------------------------------------------------
// Synchronisation
// ---------------------------------------------------------------------------

/// Data behind a `KSPIN_LOCK`. `with` raises to DISPATCH_LEVEL for the
/// closure: keep it short, touch only nonpaged memory, never wait.
pub struct SpinLock<T> {
    lock: UnsafeCell<usize>,
    data: UnsafeCell<T>,
}

// SAFETY: access to `data` is serialised by the kernel spin lock.
unsafe impl<T: Send> Sync for SpinLock<T> {}

impl<T> SpinLock<T> {
    /// A released lock (`KeInitializeSpinLock` stores 0).
    pub const fn new(v: T) -> Self {
        SpinLock {
            lock: UnsafeCell::new(0),
            data: UnsafeCell::new(v),
        }
    }
    /// Runs `f` with the lock held. IRQL <= DISPATCH_LEVEL.
    pub fn with<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        // SAFETY: the lock word lives as long as self (a static in practice);
        // callers are at IRQL <= DISPATCH_LEVEL.
        let old = unsafe { KeAcquireSpinLockRaiseToDpc(self.lock.get()) };
        // SAFETY: the spin lock gives exclusive access to data until release.
        let r = f(unsafe { &mut *self.data.get() });
        // SAFETY: releases the lock acquired above, restoring the old IRQL.
        unsafe { KeReleaseSpinLock(self.lock.get(), old) };
        r
    }
}

/// A try-lock slot for preallocated matcher scratch.
pub struct Slot<T> {
    busy: AtomicBool,
    data: UnsafeCell<T>,
}

// SAFETY: `busy` grants exclusive access to `data`.
unsafe impl<T: Send> Sync for Slot<T> {}

impl<T> Slot<T> {
    pub const fn new(v: T) -> Self {
        Slot {
            busy: AtomicBool::new(false),
            data: UnsafeCell::new(v),
        }
    }
    /// Runs `f` with exclusive access, or returns None at once when busy. Never waits.
    pub fn try_with<R>(&self, f: impl FnOnce(&mut T) -> R) -> Option<R> {
        if self
            .busy
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            return None;
        }
        // SAFETY: we won the compare-exchange: exclusive until the store below.
        let r = f(unsafe { &mut *self.data.get() });
        self.busy.store(false, Ordering::Release);
        Some(r)
    }
}

/// A value written once, at PASSIVE_LEVEL before any reader runs (e.g. in
/// DriverEntry), then only read, at any IRQL, without a lock.
pub struct InitOnce<T> {
    /// 0 empty, 1 being written, 2 ready.
    state: AtomicU8,
    data: UnsafeCell<T>,
}

// SAFETY: `data` is written only by the one caller that moved `state` from
// 0 to 1, and read only after `state` is 2 (Release/Acquire), never both.
unsafe impl<T: Send + Sync> Sync for InitOnce<T> {}

impl<T> InitOnce<T> {
    /// Not yet initialised; `v` is the (unpublished) starting value.
    pub const fn new(v: T) -> Self {
        InitOnce {
            state: AtomicU8::new(0),
            data: UnsafeCell::new(v),
        }
    }
    /// Runs `f` on the value in place and publishes it. Only the first call
    /// does anything; returns whether this call did.
    pub fn init(&self, f: impl FnOnce(&mut T)) -> bool {
        if self
            .state
            .compare_exchange(0, 1, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            return false;
        }
        // SAFETY: we moved state 0 -> 1: no reader sees the value before the
        // store of 2 below, and no other writer can get here.
        f(unsafe { &mut *self.data.get() });
        self.state.store(2, Ordering::Release);
        true
    }
    /// The value, once published.
    pub fn get(&self) -> Option<&T> {
        if self.state.load(Ordering::Acquire) != 2 {
            return None;
        }
        // SAFETY: state 2: the value is published and never written again.
        Some(unsafe { &*self.data.get() })
    }
}

// ---------------------------------------------------------------------------
// Registry
// ---------------------------------------------------------------------------

/// An open registry key (kernel handle).
pub struct RegKey(HANDLE);

impl RegKey {
    /// Opens `path` (a full NT registry path, e.g. the service key) for read+write.
    pub fn open(path: &[u16]) -> Result<RegKey, NTSTATUS> {
        let w = Wide::<512>::from_units(path);
        let name = w.unicode();
        let oa = object_attributes(&name);
        let mut h: HANDLE = null_mut();
        // SAFETY: PASSIVE_LEVEL; all pointers are to live locals.
        let s = unsafe { ZwOpenKey(&mut h, KEY_READ | KEY_WRITE, &oa) };
        if nt_success(s) {
            Ok(RegKey(h))
        } else {
            Err(s)
        }
    }

    fn query(&self, name: &str, out: &mut [u8]) -> Result<(u32, usize), NTSTATUS> {
        let w = Wide::<64>::new(name);
        let us = w.unicode();
        // KEY_VALUE_PARTIAL_INFORMATION header (12 bytes) + up to 1 KiB of data.
        let mut info = [0u64; 130];
        let mut got = 0u32;
        // SAFETY: PASSIVE_LEVEL; info is a live, 8-aligned local of the stated length.
        let s = unsafe {
            ZwQueryValueKey(
                self.0,
                &us,
                KEY_VALUE_PARTIAL_INFORMATION_CLASS,
                info.as_mut_ptr().cast(),
                1040,
                &mut got,
            )
        };
        if !nt_success(s) {
            return Err(s);
        }
        let bytes: &[u8] = bytemuck_u64(&info);
        let ty = u32::from_le_bytes(
            bytes
                .get(4..8)
                .and_then(|b| b.try_into().ok())
                .unwrap_or([0; 4]),
        );
        let len = u32::from_le_bytes(
            bytes
                .get(8..12)
                .and_then(|b| b.try_into().ok())
                .unwrap_or([0; 4]),
        ) as usize;
        let data = bytes.get(12..12 + len).ok_or(STATUS_BUFFER_OVERFLOW)?;
        let n = data.len().min(out.len());
        if let (Some(d), Some(s)) = (out.get_mut(..n), data.get(..n)) {
            d.copy_from_slice(s);
        }
        Ok((ty, data.len()))
    }

    /// A REG_DWORD value.
    pub fn dword(&self, name: &str) -> Option<u32> {
        let mut b = [0u8; 4];
        match self.query(name, &mut b) {
            Ok((REG_DWORD, 4)) => Some(u32::from_le_bytes(b)),
            _ => None,
        }
    }

    /// A REG_BINARY value copied into `out`; returns its full length.
    pub fn binary(&self, name: &str, out: &mut [u8]) -> Option<usize> {
        match self.query(name, out) {
            Ok((REG_BINARY, n)) => Some(n),
            _ => None,
        }
    }

    /// A REG_SZ / REG_EXPAND_SZ value as UTF-16 (without the NUL) into `out`.
    pub fn string<'o>(&self, name: &str, out: &'o mut [u16]) -> Option<&'o [u16]> {
        let mut b = [0u8; 1024];
        let (ty, n) = self.query(name, &mut b).ok()?;
        if ty != REG_SZ && ty != REG_EXPAND_SZ {
            return None;
        }
        let units = n.min(b.len()) / 2;
        let mut k = 0usize;
        for (i, c) in b.chunks_exact(2).take(units).enumerate() {
            let u = u16::from_le_bytes([c[0], c[1]]);
            if u == 0 {
                break;
            }
            *out.get_mut(i)? = u;
            k = i + 1;
        }
        out.get(..k)
    }

    fn set(&self, name: &str, ty: u32, data: &[u8]) -> Result<(), NTSTATUS> {
        let w = Wide::<64>::new(name);
        let us = w.unicode();
        // SAFETY: PASSIVE_LEVEL; data and us are live for the call.
        let s =
            unsafe { ZwSetValueKey(self.0, &us, 0, ty, data.as_ptr().cast(), data.len() as u32) };
        if nt_success(s) {
            // SAFETY: PASSIVE_LEVEL; flushing our own open key.
            unsafe { ZwFlushKey(self.0) };
            Ok(())
        } else {
            Err(s)
        }
    }
    /// Writes (and flushes) a REG_BINARY value.
    pub fn set_binary(&self, name: &str, data: &[u8]) -> Result<(), NTSTATUS> {
        self.set(name, REG_BINARY, data)
    }
    /// Writes (and flushes) a REG_DWORD value.
    pub fn set_dword(&self, name: &str, v: u32) -> Result<(), NTSTATUS> {
        self.set(name, REG_DWORD, &v.to_le_bytes())
    }
}

impl Drop for RegKey {
    fn drop(&mut self) {
        // SAFETY: closing the kernel handle we opened, once.
        unsafe { ZwClose(self.0) };
    }
}

fn bytemuck_u64(v: &[u64]) -> &[u8] {
    // SAFETY: u64 has no padding and u8 has alignment 1; same memory, same lifetime.
    unsafe { core::slice::from_raw_parts(v.as_ptr().cast::<u8>(), core::mem::size_of_val(v)) }
}

fn object_attributes(name: &UNICODE_STRING) -> OBJECT_ATTRIBUTES {
    OBJECT_ATTRIBUTES {
        Length: core::mem::size_of::<OBJECT_ATTRIBUTES>() as u32,
        RootDirectory: null_mut(),
        ObjectName: name,
        Attributes: OBJ_KERNEL_HANDLE | OBJ_CASE_INSENSITIVE,
        SecurityDescriptor: null_mut(),
        SecurityQualityOfService: null_mut(),
    }
}

// ---------------------------------------------------------------------------
// Files
// ---------------------------------------------------------------------------

struct KHandle(HANDLE);

impl Drop for KHandle {
    fn drop(&mut self) {
        // SAFETY: closing a kernel handle we opened, once.
        unsafe { ZwClose(self.0) };
    }
}

fn open(path: &[u16], access: u32, options: u32) -> Result<KHandle, NTSTATUS> {
    let w = Wide::<600>::from_units(path);
    let name = w.unicode();
    let oa = object_attributes(&name);
    let mut iosb = IO_STATUS_BLOCK {
        Anonymous: unsafe_zeroed_status(),
        Information: 0,
    };
    let mut h: HANDLE = null_mut();
    // SAFETY: PASSIVE_LEVEL; every pointer is to a live local.
    let s = unsafe {
        ZwCreateFile(
            &mut h,
            access | SYNCHRONIZE,
            &oa,
            &mut iosb,
            ptr::null(),
            FILE_ATTRIBUTE_NORMAL,
            FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE,
            FILE_OPEN,
            options | FILE_SYNCHRONOUS_IO_NONALERT,
            ptr::null(),
            0,
        )
    };
    if nt_success(s) {
        Ok(KHandle(h))
    } else {
        Err(s)
    }
}

fn unsafe_zeroed_status() -> windows_sys::Win32::System::IO::IO_STATUS_BLOCK_0 {
    windows_sys::Win32::System::IO::IO_STATUS_BLOCK_0 { Status: 0 }
}

/// Reads a whole file into nonpaged pool. Fails with STATUS_FILE_TOO_LARGE
/// above `max_len`.
pub fn read_file(path: &[u16], max_len: usize) -> Result<PoolBuf, NTSTATUS> {
    let h = open(path, GENERIC_READ, FILE_NON_DIRECTORY_FILE)?;
    let mut info = FILE_STANDARD_INFORMATION::default();
    let mut iosb = IO_STATUS_BLOCK {
        Anonymous: unsafe_zeroed_status(),
        Information: 0,
    };
    // SAFETY: PASSIVE_LEVEL; info is a live local of the stated size.
    let s = unsafe {
        ZwQueryInformationFile(
            h.0,
            &mut iosb,
            (&mut info as *mut FILE_STANDARD_INFORMATION).cast(),
            core::mem::size_of::<FILE_STANDARD_INFORMATION>() as u32,
            FILE_STANDARD_INFORMATION_CLASS,
        )
    };
    if !nt_success(s) {
        return Err(s);
    }
    let len = usize::try_from(info.EndOfFile).map_err(|_| STATUS_FILE_TOO_LARGE)?;
    if len > max_len {
        return Err(STATUS_FILE_TOO_LARGE);
    }
    // A zero-length file still gets a (1-byte, unused) buffer so the parser
    // sees an empty slice and reports it.
    let mut buf = PoolBuf::zeroed(len.max(1)).ok_or(STATUS_INSUFFICIENT_RESOURCES)?;
    let mut done = 0usize;
    while done < len {
        let dst = buf
            .as_mut_slice()
            .get_mut(done..len)
            .ok_or(STATUS_UNSUCCESSFUL)?;
        let offset = done as i64;
        let mut iosb = IO_STATUS_BLOCK {
            Anonymous: unsafe_zeroed_status(),
            Information: 0,
        };
        // SAFETY: PASSIVE_LEVEL; dst is a live pool buffer of dst.len() bytes.
        let s = unsafe {
            ZwReadFile(
                h.0,
                null_mut(),
                ptr::null(),
                ptr::null(),
                &mut iosb,
                dst.as_mut_ptr().cast(),
                dst.len() as u32,
                &offset,
                ptr::null(),
            )
        };
        if !nt_success(s) {
            return Err(s);
        }
        if iosb.Information == 0 {
            break;
        }
        done += iosb.Information;
    }
    if done != len {
        return Err(STATUS_UNSUCCESSFUL);
    }
    if len == 0 {
        return PoolBuf::zeroed(1)
            .ok_or(STATUS_INSUFFICIENT_RESOURCES)
            .map(|mut b| {
                b.len = 0;
                b
            });
    }
    Ok(buf)
}

/// Calls `f` with the name of every entry of directory `path`. Not
/// inlined: its name buffer stays off the caller's stack afterwards.
#[inline(never)]
pub fn list_dir(path: &[u16], mut f: impl FnMut(&[u16])) -> Result<(), NTSTATUS> {
    let h = open(path, FILE_LIST_DIRECTORY, FILE_DIRECTORY_FILE)?;
    let mut buf = PoolBuf::zeroed(8192).ok_or(STATUS_INSUFFICIENT_RESOURCES)?;
    let mut restart = 1u8;
    loop {
        let mut iosb = IO_STATUS_BLOCK {
            Anonymous: unsafe_zeroed_status(),
            Information: 0,
        };
        let b = buf.as_mut_slice();
        // SAFETY: PASSIVE_LEVEL; b is a live pool buffer of b.len() bytes (8-aligned).
        let s = unsafe {
            ZwQueryDirectoryFile(
                h.0,
                null_mut(),
                ptr::null(),
                ptr::null(),
                &mut iosb,
                b.as_mut_ptr().cast(),
                b.len() as u32,
                FILE_NAMES_INFORMATION_CLASS,
                0,
                ptr::null(),
                restart,
            )
        };
        restart = 0;
        if s == STATUS_NO_MORE_FILES {
            return Ok(());
        }
        if !nt_success(s) {
            return Err(s);
        }
        // Walk FILE_NAMES_INFORMATION records by reading fields from bytes.
        let data = buf.as_slice();
        let mut at = 0usize;
        loop {
            let rd = |o: usize| {
                data.get(at + o..at + o + 4)
                    .and_then(|x| x.try_into().ok())
                    .map(u32::from_le_bytes)
            };
            let (Some(next), Some(name_len)) = (rd(0), rd(8)) else {
                break;
            };
            let name = data
                .get(at + 12..at + 12 + name_len as usize)
                .unwrap_or(&[]);
            let mut units = [0u16; 256];
            let mut n = 0;
            for (u, c) in units.iter_mut().zip(name.chunks_exact(2)) {
                *u = u16::from_le_bytes([c[0], c[1]]);
                n += 1;
            }
            f(units.get(..n).unwrap_or(&[]));
            if next == 0 {
                break;
            }
            at += next as usize;
        }
    }
}

// ---------------------------------------------------------------------------
// Object manager: symbolic links
// ---------------------------------------------------------------------------

/// The target of the symbolic link `name` (e.g. `\??\C:`) into `out`.
/// PASSIVE_LEVEL.
///
/// # Errors
/// `ZwOpenSymbolicLinkObject`'s status (STATUS_OBJECT_NAME_NOT_FOUND when
/// there is no such link) or `ZwQuerySymbolicLinkObject`'s
/// (STATUS_BUFFER_TOO_SMALL when the target does not fit `out`).
pub fn query_symbolic_link<'o>(name: &str, out: &'o mut [u16]) -> Result<&'o [u16], NTSTATUS> {
    let w = Wide::<64>::new(name);
    let un = w.unicode();
    let oa = object_attributes(&un);
    let mut h: HANDLE = null_mut();
    // SAFETY: PASSIVE_LEVEL; every pointer is to a live local (layouts of
    // OBJECT_ATTRIBUTES and UNICODE_STRING checked in layout.rs).
    let s = unsafe { ZwOpenSymbolicLinkObject(&mut h, SYMBOLIC_LINK_QUERY, &oa) };
    if !nt_success(s) {
        return Err(s);
    }
    let h = KHandle(h);
    // MaximumLength in bytes, even, at most what `out` holds.
    let max_bytes = out.len().saturating_mul(2).min(0xFFFE) as u16;
    let mut target = UNICODE_STRING {
        Length: 0,
        MaximumLength: max_bytes,
        Buffer: out.as_mut_ptr(),
    };
    let mut returned = 0u32;
    // SAFETY: PASSIVE_LEVEL; h is our open link handle; target describes
    // `out` (MaximumLength <= its size in bytes), alive for the call.
    let s = unsafe { ZwQuerySymbolicLinkObject(h.0, &mut target, &mut returned) };
    drop(h);
    if !nt_success(s) {
        return Err(s);
    }
    let units = usize::from(target.Length.min(max_bytes)) / 2;
    out.get(..units).ok_or(STATUS_BUFFER_TOO_SMALL)
}

// ---------------------------------------------------------------------------
// Bug check
// ---------------------------------------------------------------------------

/// Stops the machine with `code`. Never returns.
pub fn bug_check(code: u32, p1: usize, p2: usize, p3: usize, p4: usize) -> ! {
    // SAFETY: KeBugCheckEx is callable at any IRQL and does not return.
    unsafe { KeBugCheckEx(code, p1, p2, p3, p4) }
}

#[cfg(not(test))]
#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    let (file, line, col) = match info.location() {
        Some(l) => (l.file(), l.line(), l.column()),
        None => ("?", 0, 0),
    };
    log(Level::Error, format_args!("panic at {file}:{line}:{col}"));
    bug_check(
        BUGCHECK_PANIC,
        file.as_ptr() as usize,
        file.len(),
        line as usize,
        col as usize,
    )
}

/// Secondary dump data handed to the bug-check reason callback: a fixed
/// buffer in the image (nonpaged), updated by `crate::dump` under its lock.
pub struct DumpArea(UnsafeCell<[u8; crate::dump::DUMP_LEN]>);
// SAFETY: writers hold crate::dump's spin lock; the bug-check callback reads
// it with the system halted (a torn read only garbles diagnostics).
unsafe impl Sync for DumpArea {}

impl DumpArea {
    pub const fn new() -> Self {
        DumpArea(UnsafeCell::new([0; crate::dump::DUMP_LEN]))
    }
    /// Writes the area. Callers serialise (crate::dump's lock).
    pub fn write(&self, f: impl FnOnce(&mut [u8; crate::dump::DUMP_LEN])) {
        // SAFETY: writers are serialised by the caller's lock; the only other
        // access is the bug-check callback (system halted).
        f(unsafe { &mut *self.0.get() })
    }
}

struct BugRecord(UnsafeCell<KBUGCHECK_REASON_CALLBACK_RECORD>);
// SAFETY: the record is written only by the kernel (registration) and by
// register/deregister in DriverEntry/unload, which do not overlap.
unsafe impl Sync for BugRecord {}

static BUG_RECORD: BugRecord = BugRecord(UnsafeCell::new(KBUGCHECK_REASON_CALLBACK_RECORD {
    Entry: LIST_ENTRY {
        Flink: null_mut(),
        Blink: null_mut(),
    },
    CallbackRoutine: null_mut(),
    Component: null_mut(),
    Checksum: 0,
    Reason: 0,
    State: 0,
}));
static BUG_REGISTERED: AtomicBool = AtomicBool::new(false);

/// The service-key value `BugCheckCallback` (REG_DWORD, default 1): 0 leaves
/// the bug-check reason callback unregistered. A test setting: Wine 8's
/// `KeRegisterBugCheckReasonCallback` is a stub that raises when called, so
/// the Wine tests set it (scripts/wine-lib.sh); the driver itself never asks
/// what kernel it runs on.
static BUGCHECK_CALLBACK: AtomicBool = AtomicBool::new(true);

/// Sets [`BUGCHECK_CALLBACK`] (from the service key, before
/// [`register_bugcheck_callback`]).
pub fn set_bugcheck_callback(on: bool) {
    BUGCHECK_CALLBACK.store(on, Ordering::Release);
}

/// GUID tagging our secondary dump data: {5053454e-0291-4e50-9f1b-7069706573ff}.
pub const DUMP_GUID: GUID = GUID {
    Data1: 0x5053_454e,
    Data2: 0x0291,
    Data3: 0x4e50,
    Data4: [0x9f, 0x1b, 0x70, 0x69, 0x70, 0x65, 0x73, 0xff],
};

unsafe extern "system" fn bugcheck_secondary(
    reason: i32,
    _rec: *mut c_void,
    data: *mut c_void,
    len: u32,
) {
    if reason != KB_CALLBACK_SECONDARY_DUMP_DATA
        || data.is_null()
        || (len as usize) < core::mem::size_of::<KBUGCHECK_SECONDARY_DUMP_DATA>()
    {
        return;
    }
    let d = data.cast::<KBUGCHECK_SECONDARY_DUMP_DATA>();
    // SAFETY: HIGH_LEVEL during a bug check; the kernel passes a valid
    // KBUGCHECK_SECONDARY_DUMP_DATA of `len` bytes (checked above).
    let d = unsafe { &mut *d };
    if (d.MaximumAllowed as usize) < crate::dump::DUMP_LEN {
        return;
    }
    d.OutBuffer = crate::dump::DUMP.0.get().cast();
    d.OutBufferLength = crate::dump::DUMP_LEN as u32;
    d.Guid = DUMP_GUID;
}

/// Registers the secondary-dump callback (PASSIVE_LEVEL, DriverEntry).
pub fn register_bugcheck_callback() -> bool {
    if !BUGCHECK_CALLBACK.load(Ordering::Acquire) {
        log(
            Level::Warning,
            format_args!("BugCheckCallback is 0 in the service key (a test setting): the bug-check reason callback is not registered"),
        );
        return false;
    }
    // SAFETY: the record and component name are statics that outlive the
    // registration (deregistered in unload before the image goes away).
    let ok = unsafe {
        KeRegisterBugCheckReasonCallback(
            BUG_RECORD.0.get().cast(),
            bugcheck_secondary,
            KB_CALLBACK_SECONDARY_DUMP_DATA,
            c"PipeSensor".as_ptr().cast(),
        )
    } != 0;
    BUG_REGISTERED.store(ok, Ordering::Release);
    ok
}

/// Deregisters it (unload).
pub fn deregister_bugcheck_callback() {
    if BUG_REGISTERED.swap(false, Ordering::AcqRel) {
        // SAFETY: the record was registered above and is deregistered once.
        unsafe { KeDeregisterBugCheckReasonCallback(BUG_RECORD.0.get().cast()) };
    }
}

// ---------------------------------------------------------------------------
// System threads: the "proven after a clean run" timer and the periodic
// content rescan
// ---------------------------------------------------------------------------

struct ThreadState {
    stop: UnsafeCell<KEVENT>,
    thread: AtomicPtr<c_void>,
    func: AtomicPtr<c_void>,
    seconds: AtomicUsize,
}
// SAFETY: the KEVENT is only touched through Ke* routines, which synchronise.
unsafe impl Sync for ThreadState {}

impl ThreadState {
    const fn new() -> Self {
        ThreadState {
            stop: UnsafeCell::new(KEVENT { opaque: [0; 24] }),
            thread: AtomicPtr::new(null_mut()),
            func: AtomicPtr::new(null_mut()),
            seconds: AtomicUsize::new(0),
        }
    }

    /// Waits `seconds` on the stop event: true when the time ran out, false
    /// when the thread was told to stop. PASSIVE_LEVEL, from the thread.
    fn wait(&self) -> bool {
        let secs = self.seconds.load(Ordering::Acquire) as i64;
        let timeout: i64 = -(secs.saturating_mul(10_000_000)); // relative, 100 ns units
                                                               // SAFETY: PASSIVE_LEVEL system thread; the event was initialised
                                                               // before the thread was created and outlives it (a static).
        let s = unsafe { KeWaitForSingleObject(self.stop.get().cast(), 0, 0, 0, &timeout) };
        s == STATUS_TIMEOUT
    }

    /// Creates the system thread running `entry`, tracked in `thread`.
    /// PASSIVE_LEVEL.
    fn spawn(
        &'static self,
        seconds: u32,
        entry: unsafe extern "system" fn(*mut c_void),
    ) -> Result<(), NTSTATUS> {
        self.seconds.store(seconds as usize, Ordering::Release);
        // SAFETY: initialising a static KEVENT (NotificationEvent=0, not
        // signalled) before any thread waits on it.
        unsafe { KeInitializeEvent(self.stop.get().cast(), 0, 0) };
        let mut h: HANDLE = null_mut();
        let oa = OBJECT_ATTRIBUTES {
            Length: core::mem::size_of::<OBJECT_ATTRIBUTES>() as u32,
            RootDirectory: null_mut(),
            ObjectName: ptr::null(),
            Attributes: OBJ_KERNEL_HANDLE,
            SecurityDescriptor: null_mut(),
            SecurityQualityOfService: null_mut(),
        };
        // SAFETY: PASSIVE_LEVEL; entry has the PKSTART_ROUTINE prototype.
        let s = unsafe {
            PsCreateSystemThread(
                &mut h,
                0x1F_FFFF,
                &oa,
                null_mut(),
                null_mut(),
                entry,
                null_mut(),
            )
        };
        if !nt_success(s) {
            return Err(s);
        }
        let mut obj: *mut c_void = null_mut();
        // SAFETY: h is the kernel handle just returned; KernelMode access; no type check.
        let r = unsafe {
            ObReferenceObjectByHandle(h, SYNCHRONIZE, null_mut(), 0, &mut obj, null_mut())
        };
        // SAFETY: closing our handle; the referenced object keeps the thread alive.
        unsafe { ZwClose(h) };
        if nt_success(r) {
            self.thread.store(obj, Ordering::Release);
        }
        Ok(())
    }

    /// Tells the thread to stop and waits for it to exit. PASSIVE_LEVEL,
    /// never from the thread itself.
    fn stop(&self) {
        let t = self.thread.swap(null_mut(), Ordering::AcqRel);
        if t.is_null() {
            return;
        }
        // SAFETY: the event was initialised in spawn (t non-null implies it ran).
        unsafe { KeSetEvent(self.stop.get().cast(), 0, 0) };
        // SAFETY: t is a referenced thread object; waiting at PASSIVE_LEVEL.
        unsafe { KeWaitForSingleObject(t, 0, 0, 0, ptr::null()) };
        // SAFETY: dropping the reference taken in spawn.
        unsafe { ObfDereferenceObject(t) };
    }
}

static TIMER: ThreadState = ThreadState::new();
static RESCANNER: ThreadState = ThreadState::new();

unsafe extern "system" fn timer_thread(_ctx: *mut c_void) {
    if TIMER.wait() {
        let f = TIMER.func.load(Ordering::Acquire);
        if !f.is_null() {
            // SAFETY: func was stored from a `fn()` in start_timer.
            let f: fn() = unsafe { core::mem::transmute::<*mut c_void, fn()>(f) };
            f();
        }
    }
    // SAFETY: terminating the current system thread.
    unsafe { PsTerminateSystemThread(STATUS_SUCCESS) };
}

/// Starts a system thread that calls `f` after `seconds`, unless
/// [`stop_timer`] runs first. PASSIVE_LEVEL.
pub fn start_timer(seconds: u32, f: fn()) -> Result<(), NTSTATUS> {
    TIMER.func.store(f as *mut c_void, Ordering::Release);
    TIMER.spawn(seconds, timer_thread)
}

/// Stops the timer thread and waits for it to exit (PASSIVE_LEVEL).
pub fn stop_timer() {
    TIMER.stop();
}

unsafe extern "system" fn rescan_thread(_ctx: *mut c_void) {
    while RESCANNER.wait() {
        crate::content::periodic_rescan();
    }
    // SAFETY: terminating the current system thread.
    unsafe { PsTerminateSystemThread(STATUS_SUCCESS) };
}

/// Starts the system thread that rescans the content directory every
/// `seconds` (`content::periodic_rescan`) until [`stop_rescan_thread`].
/// PASSIVE_LEVEL.
pub fn start_rescan_thread(seconds: u32) -> Result<(), NTSTATUS> {
    RESCANNER.spawn(seconds, rescan_thread)
}

/// Stops the rescan thread and waits for it to exit (unload, PASSIVE_LEVEL).
pub fn stop_rescan_thread() {
    RESCANNER.stop();
}

// ---------------------------------------------------------------------------
// The control device and IRP dispatch
// ---------------------------------------------------------------------------

static CONTROL_DEVICE: AtomicPtr<DEVICE_OBJECT> = AtomicPtr::new(null_mut());
static SYMLINK_CREATED: AtomicBool = AtomicBool::new(false);

/// The driver object handed to DriverEntry (kept for teardown).
pub struct Driver(*mut DRIVER_OBJECT);

/// Builds the device's DACL: GENERIC_ALL for SYSTEM (S-1-5-18) and
/// Administrators (S-1-5-32-544), nobody else; applies it with
/// `ObOpenObjectByPointer` + `ZwSetSecurityObject`. `IoCreateDeviceSecure` lives in the static
/// library wdmsec.lib, not in ntoskrnl.exe, so it is not used.
fn secure_device(dev: *mut DEVICE_OBJECT) -> NTSTATUS {
    const SYSTEM_SID: [u8; 12] = [1, 1, 0, 0, 0, 0, 0, 5, 18, 0, 0, 0];
    const ADMINS_SID: [u8; 16] = [1, 2, 0, 0, 0, 0, 0, 5, 32, 0, 0, 0, 0x20, 2, 0, 0];
    // ACL header 8 + 2 ACEs (8 + SID each).
    let mut acl_buf = [0u64; 8];
    let acl = acl_buf.as_mut_ptr().cast::<ACL>();
    let mut sd = SECURITY_DESCRIPTOR {
        Revision: 0,
        Sbz1: 0,
        Control: 0,
        Owner: null_mut(),
        Group: null_mut(),
        Sacl: null_mut(),
        Dacl: null_mut(),
    };
    // Each call below runs at PASSIVE_LEVEL (DriverEntry). acl_buf (64
    // bytes, 8-aligned) holds the ACL (8 + 20 + 24 = 52 bytes); the SIDs are
    // valid constant SIDs; sd is a live absolute security descriptor;
    // ZwSetSecurityObject copies the descriptor into the object's own.
    // SAFETY: see above; acl points at 64 writable bytes.
    let mut s = unsafe { RtlCreateAcl(acl.cast(), 64, ACL_REVISION) };
    if nt_success(s) {
        // SAFETY: acl was initialised above; SYSTEM_SID is a valid SID.
        s = unsafe {
            RtlAddAccessAllowedAce(
                acl.cast(),
                ACL_REVISION,
                GENERIC_ALL,
                SYSTEM_SID.as_ptr().cast(),
            )
        };
    }
    if nt_success(s) {
        // SAFETY: as above; ADMINS_SID is a valid SID and fits in the ACL.
        s = unsafe {
            RtlAddAccessAllowedAce(
                acl.cast(),
                ACL_REVISION,
                GENERIC_ALL,
                ADMINS_SID.as_ptr().cast(),
            )
        };
    }
    if nt_success(s) {
        // SAFETY: sd is a live local of the absolute descriptor's size.
        s = unsafe { RtlCreateSecurityDescriptor((&mut sd as *mut SECURITY_DESCRIPTOR).cast(), 1) };
    }
    if nt_success(s) {
        // SAFETY: sd initialised above; acl outlives every use of sd.
        s = unsafe {
            RtlSetDaclSecurityDescriptor(
                (&mut sd as *mut SECURITY_DESCRIPTOR).cast(),
                1,
                acl.cast(),
                0,
            )
        };
    }
    let mut h: HANDLE = null_mut();
    if nt_success(s) {
        // SAFETY: dev is the device object we just created; kernel handle.
        s = unsafe {
            ObOpenObjectByPointer(
                dev.cast(),
                OBJ_KERNEL_HANDLE,
                null_mut(),
                WRITE_DAC,
                null_mut(),
                0,
                &mut h,
            )
        };
    }
    if nt_success(s) {
        // SAFETY: h is the handle opened above with WRITE_DAC; sd is valid.
        s = unsafe {
            ZwSetSecurityObject(
                h,
                DACL_SECURITY_INFORMATION,
                (&sd as *const SECURITY_DESCRIPTOR).cast(),
            )
        };
        // SAFETY: closing the handle opened above, once.
        unsafe { ZwClose(h) };
    }
    s
}

impl Driver {
    /// Creates `\Device\PipeSensor` (secure open, SYSTEM+Administrators only)
    /// and `\DosDevices\PipeSensor`, and installs the dispatch routines.
    pub fn create_control_device(&self) -> Result<(), NTSTATUS> {
        let name = Wide::<64>::new(sensor_core::proto::DEVICE_NAME);
        let link = Wide::<64>::new(sensor_core::proto::DOS_DEVICE_NAME);
        let (un, ul) = (name.unicode(), link.unicode());
        let mut dev: *mut DEVICE_OBJECT = null_mut();
        // SAFETY: PASSIVE_LEVEL in DriverEntry; self.0 is our driver object.
        let s = unsafe {
            IoCreateDevice(
                self.0,
                0,
                &un,
                FILE_DEVICE_UNKNOWN,
                FILE_DEVICE_SECURE_OPEN,
                0,
                &mut dev,
            )
        };
        if !nt_success(s) {
            return Err(s);
        }
        let sec = secure_device(dev);
        if !nt_success(sec) {
            log(
                Level::Error,
                format_args!("securing the control device failed: {sec:#x}"),
            );
            // SAFETY: deleting the device we just created.
            unsafe { IoDeleteDevice(dev) };
            return Err(sec);
        }
        // SAFETY: PASSIVE_LEVEL; both strings are live.
        let s = unsafe { IoCreateSymbolicLink(&ul, &un) };
        if !nt_success(s) {
            // SAFETY: deleting the device we just created.
            unsafe { IoDeleteDevice(dev) };
            return Err(s);
        }
        SYMLINK_CREATED.store(true, Ordering::Release);
        // SAFETY: DriverEntry owns the driver object; the table has 28 entries.
        unsafe {
            let mf = &mut (*self.0).MajorFunction;
            mf[IRP_MJ_CREATE as usize] = Some(dispatch_create_close);
            mf[IRP_MJ_CLOSE as usize] = Some(dispatch_create_close);
            mf[IRP_MJ_CLEANUP as usize] = Some(dispatch_cleanup);
            mf[IRP_MJ_DEVICE_CONTROL as usize] = Some(dispatch_device_control);
        }
        // SAFETY: clearing DO_DEVICE_INITIALIZING on our new device.
        unsafe { (*dev).Flags &= !DO_DEVICE_INITIALIZING };
        CONTROL_DEVICE.store(dev, Ordering::Release);
        Ok(())
    }

    /// Installs `unload` as DriverUnload unless the filter manager already
    /// installed its own (under Wine's stub FltRegisterFilter it does not,
    /// and without an unload routine `sc stop` cannot stop the driver).
    pub fn ensure_unload(&self) {
        // SAFETY: DriverEntry owns the driver object; nothing else touches it now.
        let d = unsafe { &mut *self.0 };
        if d.DriverUnload.is_none() {
            d.DriverUnload = Some(driver_unload);
        }
    }
}

/// Deletes the symbolic link and the control device (unload / failed start).
pub fn delete_control_device() {
    if SYMLINK_CREATED.swap(false, Ordering::AcqRel) {
        let link = Wide::<64>::new(sensor_core::proto::DOS_DEVICE_NAME);
        let ul = link.unicode();
        // SAFETY: PASSIVE_LEVEL; deleting the link we created.
        unsafe { IoDeleteSymbolicLink(&ul) };
    }
    let dev = CONTROL_DEVICE.swap(null_mut(), Ordering::AcqRel);
    if !dev.is_null() {
        // SAFETY: deleting the device we created, once.
        unsafe { IoDeleteDevice(dev) };
    }
}

unsafe extern "system" fn driver_unload(_driver: *const DRIVER_OBJECT) {
    crate::teardown();
}

fn complete(irp: *mut IRP, status: NTSTATUS, information: usize) -> NTSTATUS {
    {
        // SAFETY: irp is the IRP our dispatch routine received and still owns.
        let r = unsafe { &mut *irp };
        r.IoStatus.Anonymous.Status = status;
        r.IoStatus.Information = information;
    }
    // SAFETY: completing our own IRP once; we do not touch it afterwards.
    unsafe { IofCompleteRequest(irp, 0) };
    status
}

unsafe extern "system" fn dispatch_create_close(
    _dev: *const DEVICE_OBJECT,
    irp: *mut IRP,
) -> NTSTATUS {
    complete(irp, STATUS_SUCCESS, 0)
}

/// `IRP_MJ_CLEANUP`: the handle's last user reference is gone; its pended
/// EVENTS_V2 requests are completed (with any events the ring holds).
unsafe extern "system" fn dispatch_cleanup(_dev: *const DEVICE_OBJECT, irp: *mut IRP) -> NTSTATUS {
    pending::cleanup(irp);
    complete(irp, STATUS_SUCCESS, 0)
}

/// A METHOD_BUFFERED IOCTL's system buffer. The I/O manager copied the
/// caller's input into it; the output is written into the same memory, so
/// the input must be decoded (and copied out) before the output is written —
/// `input()` borrows `&self`, `output()` `&mut self`.
pub struct BufferedIo {
    buf: *mut u8,
    in_len: usize,
    out_len: usize,
}

impl BufferedIo {
    /// The output buffer's length.
    pub fn out_len(&self) -> usize {
        if self.buf.is_null() {
            0
        } else {
            self.out_len
        }
    }
    pub fn input(&self) -> &[u8] {
        if self.buf.is_null() || self.in_len == 0 {
            return &[];
        }
        // SAFETY: the system buffer is max(in, out) bytes of nonpaged pool,
        // valid until the IRP completes; the first in_len bytes are the input.
        unsafe { core::slice::from_raw_parts(self.buf, self.in_len) }
    }
    pub fn output(&mut self) -> &mut [u8] {
        if self.buf.is_null() || self.out_len == 0 {
            return &mut [];
        }
        // SAFETY: as above, out_len bytes; &mut self makes it exclusive.
        unsafe { core::slice::from_raw_parts_mut(self.buf, self.out_len) }
    }
}

unsafe extern "system" fn dispatch_device_control(
    _dev: *const DEVICE_OBJECT,
    irp: *mut IRP,
) -> NTSTATUS {
    // SAFETY: PASSIVE_LEVEL dispatch; the current stack location of our own
    // IRP is valid (its layout is checked by layout.rs and the probe).
    let r = unsafe { &*irp };
    // SAFETY: Tail.Overlay is the active member of Tail for an IRP being dispatched.
    let overlay = unsafe { &r.Tail.Overlay };
    // SAFETY: ...and CurrentStackLocation the active member of its union.
    let sl =
        unsafe { overlay.Anonymous2.Anonymous.CurrentStackLocation }.cast::<IO_STACK_LOCATION>();
    // SAFETY: SystemBuffer is the AssociatedIrp member for METHOD_BUFFERED.
    let buf = unsafe { r.AssociatedIrp.SystemBuffer }.cast::<u8>();
    // SAFETY: sl points at our stack location.
    let sl = unsafe { &*sl };
    // SAFETY: DeviceIoControl is the Parameters member for IRP_MJ_DEVICE_CONTROL.
    let p = unsafe { sl.Parameters.DeviceIoControl };
    let (code, in_len, out_len) = (
        p.IoControlCode,
        p.InputBufferLength as usize,
        p.OutputBufferLength as usize,
    );
    // Only METHOD_BUFFERED codes are ours; anything else never gets its
    // buffers touched.
    if code & 3 != 0 {
        return complete(irp, STATUS_INVALID_DEVICE_REQUEST, 0);
    }
    let mut io = BufferedIo {
        buf,
        in_len,
        out_len,
    };
    if code == sensor_core::stream::IOCTL_EVENTS_V2 {
        if crate::events::wants_wait(&io) {
            return pending::submit_wait(irp);
        }
        return match crate::events::answer_now(&mut io) {
            Ok(n) => complete(irp, STATUS_SUCCESS, n.min(out_len)),
            Err(s) => complete(irp, s, 0),
        };
    }
    match crate::control::handle(code, &mut io) {
        Ok(n) => complete(irp, STATUS_SUCCESS, n.min(out_len)),
        Err(s) => complete(irp, s, 0),
    }
}

// ---------------------------------------------------------------------------
// The minifilter
// ---------------------------------------------------------------------------

struct Registration(FLT_REGISTRATION);
// SAFETY: an immutable table of function pointers and nulls.
unsafe impl Sync for Registration {}
struct Operations([FLT_OPERATION_REGISTRATION; 3]);
// SAFETY: as above.
unsafe impl Sync for Operations {}

/// Operations observed: pipe created, pipe opened (connect). Pre-operation
/// only; no post-operation callbacks, no contexts.
static OPERATIONS: Operations = Operations([
    FLT_OPERATION_REGISTRATION {
        MajorFunction: IRP_MJ_CREATE_NAMED_PIPE,
        Flags: 0,
        PreOperation: Some(pre_create_named_pipe),
        PostOperation: None,
        Reserved1: null_mut(),
    },
    FLT_OPERATION_REGISTRATION {
        MajorFunction: IRP_MJ_CREATE,
        Flags: 0,
        PreOperation: Some(pre_create),
        PostOperation: None,
        Reserved1: null_mut(),
    },
    FLT_OPERATION_REGISTRATION {
        MajorFunction: IRP_MJ_OPERATION_END,
        Flags: 0,
        PreOperation: None,
        PostOperation: None,
        Reserved1: null_mut(),
    },
]);

static REGISTRATION: Registration = Registration(FLT_REGISTRATION {
    Size: core::mem::size_of::<FLT_REGISTRATION>() as u16, // Size
    Version: FLT_REGISTRATION_VERSION,                     // Version 2.3 (Windows 10+)
    Flags: FLTFL_REGISTRATION_SUPPORT_NPFS_MSFS,           // attach to NPFS
    ContextRegistration: ptr::null(),                      // no contexts
    OperationRegistration: OPERATIONS.0.as_ptr(),          // callbacks above
    FilterUnloadCallback: Some(filter_unload),             // fltmc unload / sc stop
    InstanceSetupCallback: Some(instance_setup),           // NPFS only
    InstanceQueryTeardownCallback: Some(instance_query_teardown), // allow manual detach
    InstanceTeardownStartCallback: None,                   // nothing per instance
    InstanceTeardownCompleteCallback: None,                // nothing per instance
    GenerateFileNameCallback: None,                        // not a name provider
    NormalizeNameComponentCallback: None,                  // not a name provider
    NormalizeContextCleanupCallback: None,                 // not a name provider
    TransactionNotificationCallback: None,                 // no transactions
    NormalizeNameComponentExCallback: None,                // not a name provider
    SectionNotificationCallback: None,                     // no sections
});

static FILTER: AtomicPtr<c_void> = AtomicPtr::new(null_mut());

/// Unload protection for callbacks: teardown waits for in-flight callbacks.
/// (sensor_core::rundown, because Wine 8 stubs the EX_RUNDOWN_REF routines.)
static RUNDOWN: sensor_core::rundown::Rundown = sensor_core::rundown::Rundown::new();

/// Blocks new callbacks and waits (sleeping 10 ms between checks) for
/// running ones to finish. PASSIVE_LEVEL (teardown).
pub fn wait_rundown() {
    RUNDOWN.begin();
    let interval: i64 = -100_000; // 10 ms, relative
    while !RUNDOWN.drained() {
        // SAFETY: PASSIVE_LEVEL; interval is a live local.
        unsafe { KeDelayExecutionThread(0, 0, &interval) };
    }
}

struct RundownGuard;
impl RundownGuard {
    fn acquire() -> Option<RundownGuard> {
        RUNDOWN.try_acquire().then_some(RundownGuard)
    }
}
impl Drop for RundownGuard {
    fn drop(&mut self) {
        RUNDOWN.release();
    }
}

impl Driver {
    /// Registers the minifilter (does not start filtering).
    pub fn register_filter(&self) -> Result<(), NTSTATUS> {
        let mut f: *mut c_void = null_mut();
        // SAFETY: PASSIVE_LEVEL in DriverEntry; REGISTRATION is a static.
        let s = unsafe { FltRegisterFilter(self.0, &REGISTRATION.0, &mut f) };
        if nt_success(s) {
            FILTER.store(f, Ordering::Release);
            Ok(())
        } else {
            Err(s)
        }
    }
}

/// The filter handle FltRegisterFilter returned (0 when not registered),
/// for the log.
pub fn filter_handle() -> usize {
    FILTER.load(Ordering::Acquire) as usize
}

/// Starts filtering.
pub fn start_filtering() -> Result<(), NTSTATUS> {
    let f = FILTER.load(Ordering::Acquire);
    if f.is_null() {
        return Err(STATUS_UNSUCCESSFUL);
    }
    // SAFETY: f is our registered filter; PASSIVE_LEVEL.
    let s = unsafe { FltStartFiltering(f) };
    if nt_success(s) {
        Ok(())
    } else {
        Err(s)
    }
}

/// Unregisters the filter (waits for callbacks to drain; teardown).
pub fn unregister_filter() {
    let f = FILTER.swap(null_mut(), Ordering::AcqRel);
    if !f.is_null() {
        // SAFETY: f is our registered filter, unregistered once, PASSIVE_LEVEL.
        unsafe { FltUnregisterFilter(f) };
    }
}

unsafe extern "system" fn filter_unload(_flags: u32) -> NTSTATUS {
    crate::teardown();
    STATUS_SUCCESS
}

unsafe extern "system" fn instance_setup(
    _objs: *const FLT_RELATED_OBJECTS,
    _flags: u32,
    _dev_type: u32,
    fs_type: i32,
) -> NTSTATUS {
    if fs_type as u32 == FLT_FSTYPE_NPFS {
        STATUS_SUCCESS
    } else {
        STATUS_FLT_DO_NOT_ATTACH
    }
}

unsafe extern "system" fn instance_query_teardown(
    _objs: *const FLT_RELATED_OBJECTS,
    _flags: u32,
) -> NTSTATUS {
    STATUS_SUCCESS
}

unsafe extern "system" fn pre_create_named_pipe(
    data: *mut FLT_CALLBACK_DATA,
    _o: *const FLT_RELATED_OBJECTS,
    _c: *mut *mut c_void,
) -> i32 {
    pre_op(data, sensor_core::ring::EventKind::Create)
}

unsafe extern "system" fn pre_create(
    data: *mut FLT_CALLBACK_DATA,
    _o: *const FLT_RELATED_OBJECTS,
    _c: *mut *mut c_void,
) -> i32 {
    pre_op(data, sensor_core::ring::EventKind::Connect)
}

/// The names a create callback looks at: `Iopb->TargetFileObject->FileName`
/// and, for a relative open, `RelatedFileObject->FileName` (empty when
/// there is none). On NPFS the target name is relative to the NPFS root
/// (`\name`), or `name` relative to a root handle;
/// `sensor_core::name::normalize_target` gives Sysmon's `\name` either way.
/// An odd `Length` loses its last byte (NPFS rejects such a name).
fn target_names<'d>(data: *const FLT_CALLBACK_DATA) -> (&'d [u16], &'d [u16]) {
    // Validity for all blocks below: PASSIVE_LEVEL pre-create callback:
    // data, its Iopb, the target file object and its related file object
    // (referenced by the I/O manager for the create) are valid until we
    // return, and their FileName is not changed by anyone below us before
    // then. FILE_OBJECT's layout is checked by layout.rs and the probe. The
    // slices do not outlive the callback (callers use them before
    // returning).
    // SAFETY: see above.
    let data = unsafe { &*data };
    if data.Iopb.is_null() {
        return (&[], &[]);
    }
    // SAFETY: see above; Iopb is non-null.
    let iopb = unsafe { &*data.Iopb };
    let file = iopb.TargetFileObject;
    if file.is_null() {
        return (&[], &[]);
    }
    // SAFETY: see above; the file object is non-null.
    let related = unsafe { (*file).RelatedFileObject };
    // SAFETY: see above; the target file object is non-null and valid.
    let name = unsafe { file_name(file) };
    let related = if related.is_null() {
        &[][..]
    } else {
        // SAFETY: see above; the related file object is non-null and valid.
        unsafe { file_name(related) }
    };
    (related, name)
}

/// The units of a file object's `FileName`.
///
/// # Safety
/// `f` is a valid file object whose `FileName.Buffer` holds
/// `FileName.Length` bytes for `'d`.
unsafe fn file_name<'d>(f: *const FILE_OBJECT) -> &'d [u16] {
    // SAFETY: the caller's contract: f is valid.
    let n = unsafe { &(*f).FileName };
    if n.Buffer.is_null() || n.Length < 2 {
        return &[];
    }
    // SAFETY: the caller's contract: Buffer holds Length bytes.
    unsafe { core::slice::from_raw_parts(n.Buffer, usize::from(n.Length) / 2) }
}

fn pre_op(data: *mut FLT_CALLBACK_DATA, kind: sensor_core::ring::EventKind) -> i32 {
    let Some(_guard) = RundownGuard::acquire() else {
        return FLT_PREOP_SUCCESS_NO_CALLBACK;
    };
    crate::sensor::count_callback();
    // Cheap checks first: no content active → nothing can match.
    if !crate::sensor::has_content() {
        return FLT_PREOP_SUCCESS_NO_CALLBACK;
    }
    let (related, name) = target_names(data);
    // SAFETY: data is this callback's data; the requestor does not outlive
    // the call below.
    let requestor = unsafe { Requestor::new(data) };
    let decision = crate::sensor::on_callback(kind, requestor, related, name);
    if decision == sensor_core::decision::Decision::Deny {
        // SAFETY: data is our callback data; completing the operation here.
        let d = unsafe { &mut *data };
        d.IoStatus.Anonymous.Status = STATUS_ACCESS_DENIED;
        d.IoStatus.Information = 0;
        return FLT_PREOP_COMPLETE;
    }
    FLT_PREOP_SUCCESS_NO_CALLBACK
}

// ---------------------------------------------------------------------------
// DriverEntry
// ---------------------------------------------------------------------------

/// The entry point (`/ENTRY:DriverEntry`).
///
/// # Safety
/// Called once by the I/O manager at PASSIVE_LEVEL with a valid driver object
/// and registry path.
#[no_mangle]
pub unsafe extern "system" fn DriverEntry(
    driver: *mut DRIVER_OBJECT,
    registry_path: *const UNICODE_STRING,
) -> NTSTATUS {
    // SAFETY: registry_path is a valid UNICODE_STRING for the duration of
    // DriverEntry; driver_entry uses the slice only during the call
    // (content::configure copies it).
    let path: &[u16] = match unsafe { registry_path.as_ref() } {
        Some(rp) if !rp.Buffer.is_null() => {
            // SAFETY: as above: Buffer holds Length bytes during DriverEntry.
            unsafe { core::slice::from_raw_parts(rp.Buffer, usize::from(rp.Length) / 2) }
        }
        _ => &[],
    };
    crate::driver_entry(&Driver(driver), path)
}
