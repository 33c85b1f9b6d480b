//! CRT shims the precompiled `core` for x86_64-pc-windows-msvc references.

use super::*;

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
static MEM_ROUTINES: (MemCopy, MemCopy, MemFill, MemCompare) = (memcpy, memmove, memset, memcmp);

/// `memcpy` / `memmove`.
type MemCopy = unsafe extern "C" fn(*mut c_void, *const c_void, usize) -> *mut c_void;
/// `memset`.
type MemFill = unsafe extern "C" fn(*mut c_void, i32, usize) -> *mut c_void;
/// `memcmp`.
type MemCompare = unsafe extern "C" fn(*const c_void, *const c_void, usize) -> i32;

/// Never called: unwinding is disabled (`panic = "abort"`).
#[no_mangle]
extern "C" fn __CxxFrameHandler3() -> i32 {
    bug_check(BUGCHECK_PANIC, 0xC0DE, 0, 0, 0)
}
