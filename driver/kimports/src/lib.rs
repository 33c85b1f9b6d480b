//! The driver's imports, declared by hand against the three kernel modules
//! a driver may import from.
//!
//! Why a crate of its own: `windows-sys` (with the `Wdk_*` features the
//! driver uses for types) declares many of the same routines against
//! `ntdll.dll` (`Zw*`, `Rtl*`, `DbgPrintEx`). Import symbols are global
//! (`__imp_ZwClose`), and the linker binds the first import library that
//! defines one. This crate depends on `windows-sys`, so rustc places it
//! (and its import libraries) before `windows-sys` on the link line, and
//! every routine binds to ntoskrnl.exe / fltmgr.sys. The image check
//! (`scripts/check-image.py`) verifies the result.
#![no_std]
#![allow(non_snake_case, clippy::missing_safety_doc, missing_docs)]

use core::ffi::c_void;
pub use windows_sys as _windows_sys_first;
use windows_sys::Wdk::Foundation::{DEVICE_OBJECT, DRIVER_OBJECT, IRP, OBJECT_ATTRIBUTES};
use windows_sys::Wdk::Storage::FileSystem::Minifilters::{FLT_CALLBACK_DATA, FLT_REGISTRATION};
use windows_sys::Win32::Foundation::UNICODE_STRING;
use windows_sys::Win32::System::IO::IO_STATUS_BLOCK;

pub type NTSTATUS = i32;
pub type HANDLE = *mut c_void;

// KEVENT, SECURITY_DESCRIPTOR, ACL and KBUGCHECK_* are passed as
// `*mut c_void` here; their layouts live in the driver's `sys::types`.

#[link(name = "ntoskrnl.exe", kind = "raw-dylib", modifiers = "+verbatim")]
extern "system" {
    pub fn IoCreateDevice(
        DriverObject: *mut DRIVER_OBJECT,
        DeviceExtensionSize: u32,
        DeviceName: *const UNICODE_STRING,
        DeviceType: u32,
        DeviceCharacteristics: u32,
        Exclusive: u8,
        DeviceObject: *mut *mut DEVICE_OBJECT,
    ) -> NTSTATUS;
    pub fn IoDeleteDevice(DeviceObject: *mut DEVICE_OBJECT);
    pub fn IoCreateSymbolicLink(
        SymbolicLinkName: *const UNICODE_STRING,
        DeviceName: *const UNICODE_STRING,
    ) -> NTSTATUS;
    pub fn IoDeleteSymbolicLink(SymbolicLinkName: *const UNICODE_STRING) -> NTSTATUS;
    pub fn IofCompleteRequest(Irp: *mut IRP, PriorityBoost: i8);
    pub fn ExAllocatePoolWithTag(PoolType: i32, NumberOfBytes: usize, Tag: u32) -> *mut c_void;
    pub fn ExFreePoolWithTag(P: *mut c_void, Tag: u32);
    pub fn MmGetSystemRoutineAddress(SystemRoutineName: *const UNICODE_STRING) -> *mut c_void;
    pub fn KeAcquireSpinLockRaiseToDpc(SpinLock: *mut usize) -> u8;
    pub fn KeReleaseSpinLock(SpinLock: *mut usize, NewIrql: u8);
    pub fn KeBugCheckEx(BugCheckCode: u32, P1: usize, P2: usize, P3: usize, P4: usize) -> !;
    pub fn KeInitializeEvent(Event: *mut c_void, Type: i32, State: u8);
    pub fn KeSetEvent(Event: *mut c_void, Increment: i32, Wait: u8) -> i32;
    pub fn KeWaitForSingleObject(
        Object: *mut c_void,
        WaitReason: i32,
        WaitMode: i8,
        Alertable: u8,
        Timeout: *const i64,
    ) -> NTSTATUS;
    pub fn PsCreateSystemThread(
        ThreadHandle: *mut HANDLE,
        DesiredAccess: u32,
        ObjectAttributes: *const OBJECT_ATTRIBUTES,
        ProcessHandle: HANDLE,
        ClientId: *mut c_void,
        StartRoutine: unsafe extern "system" fn(*mut c_void),
        StartContext: *mut c_void,
    ) -> NTSTATUS;
    pub fn PsTerminateSystemThread(ExitStatus: NTSTATUS) -> NTSTATUS;
    pub fn ObReferenceObjectByHandle(
        Handle: HANDLE,
        DesiredAccess: u32,
        ObjectType: *mut c_void,
        AccessMode: i8,
        Object: *mut *mut c_void,
        HandleInformation: *mut c_void,
    ) -> NTSTATUS;
    pub fn ObfDereferenceObject(Object: *mut c_void) -> isize;
    pub fn ObOpenObjectByPointer(
        Object: *mut c_void,
        HandleAttributes: u32,
        PassedAccessState: *mut c_void,
        DesiredAccess: u32,
        ObjectType: *mut c_void,
        AccessMode: i8,
        Handle: *mut HANDLE,
    ) -> NTSTATUS;
    pub fn ZwSetSecurityObject(
        Handle: HANDLE,
        SecurityInformation: u32,
        SecurityDescriptor: *const c_void,
    ) -> NTSTATUS;
    pub fn KeDelayExecutionThread(WaitMode: i8, Alertable: u8, Interval: *const i64) -> NTSTATUS;
    pub fn RtlCreateSecurityDescriptor(SecurityDescriptor: *mut c_void, Revision: u32) -> NTSTATUS;
    pub fn RtlCreateAcl(Acl: *mut c_void, AclLength: u32, AclRevision: u32) -> NTSTATUS;
    pub fn RtlAddAccessAllowedAce(
        Acl: *mut c_void,
        AceRevision: u32,
        AccessMask: u32,
        Sid: *const c_void,
    ) -> NTSTATUS;
    pub fn RtlSetDaclSecurityDescriptor(
        SecurityDescriptor: *mut c_void,
        DaclPresent: u8,
        Dacl: *mut c_void,
        DaclDefaulted: u8,
    ) -> NTSTATUS;
    pub fn ZwClose(Handle: HANDLE) -> NTSTATUS;
    pub fn ZwOpenKey(
        KeyHandle: *mut HANDLE,
        DesiredAccess: u32,
        ObjectAttributes: *const OBJECT_ATTRIBUTES,
    ) -> NTSTATUS;
    pub fn ZwQueryValueKey(
        KeyHandle: HANDLE,
        ValueName: *const UNICODE_STRING,
        KeyValueInformationClass: i32,
        KeyValueInformation: *mut c_void,
        Length: u32,
        ResultLength: *mut u32,
    ) -> NTSTATUS;
    pub fn ZwSetValueKey(
        KeyHandle: HANDLE,
        ValueName: *const UNICODE_STRING,
        TitleIndex: u32,
        Type: u32,
        Data: *const c_void,
        DataSize: u32,
    ) -> NTSTATUS;
    pub fn ZwFlushKey(KeyHandle: HANDLE) -> NTSTATUS;
    pub fn ZwOpenSymbolicLinkObject(
        LinkHandle: *mut HANDLE,
        DesiredAccess: u32,
        ObjectAttributes: *const OBJECT_ATTRIBUTES,
    ) -> NTSTATUS;
    pub fn ZwQuerySymbolicLinkObject(
        LinkHandle: HANDLE,
        LinkTarget: *mut UNICODE_STRING,
        ReturnedLength: *mut u32,
    ) -> NTSTATUS;
    pub fn ZwCreateFile(
        FileHandle: *mut HANDLE,
        DesiredAccess: u32,
        ObjectAttributes: *const OBJECT_ATTRIBUTES,
        IoStatusBlock: *mut IO_STATUS_BLOCK,
        AllocationSize: *const i64,
        FileAttributes: u32,
        ShareAccess: u32,
        CreateDisposition: u32,
        CreateOptions: u32,
        EaBuffer: *const c_void,
        EaLength: u32,
    ) -> NTSTATUS;
    pub fn ZwReadFile(
        FileHandle: HANDLE,
        Event: HANDLE,
        ApcRoutine: *const c_void,
        ApcContext: *const c_void,
        IoStatusBlock: *mut IO_STATUS_BLOCK,
        Buffer: *mut c_void,
        Length: u32,
        ByteOffset: *const i64,
        Key: *const u32,
    ) -> NTSTATUS;
    pub fn ZwQueryInformationFile(
        FileHandle: HANDLE,
        IoStatusBlock: *mut IO_STATUS_BLOCK,
        FileInformation: *mut c_void,
        Length: u32,
        FileInformationClass: i32,
    ) -> NTSTATUS;
    pub fn ZwQueryDirectoryFile(
        FileHandle: HANDLE,
        Event: HANDLE,
        ApcRoutine: *const c_void,
        ApcContext: *const c_void,
        IoStatusBlock: *mut IO_STATUS_BLOCK,
        FileInformation: *mut c_void,
        Length: u32,
        FileInformationClass: i32,
        ReturnSingleEntry: u8,
        FileName: *const UNICODE_STRING,
        RestartScan: u8,
    ) -> NTSTATUS;
    pub fn SeLocateProcessImageName(
        Process: *mut c_void,
        pImageFileName: *mut *mut UNICODE_STRING,
    ) -> NTSTATUS;
    pub fn ExFreePool(P: *mut c_void);
    pub fn ZwQueryInformationProcess(
        ProcessHandle: HANDLE,
        ProcessInformationClass: i32,
        ProcessInformation: *mut c_void,
        ProcessInformationLength: u32,
        ReturnLength: *mut u32,
    ) -> NTSTATUS;
    pub fn ZwOpenProcessTokenEx(
        ProcessHandle: HANDLE,
        DesiredAccess: u32,
        HandleAttributes: u32,
        TokenHandle: *mut HANDLE,
    ) -> NTSTATUS;
    pub fn ZwQueryInformationToken(
        TokenHandle: HANDLE,
        TokenInformationClass: i32,
        TokenInformation: *mut c_void,
        TokenInformationLength: u32,
        ReturnLength: *mut u32,
    ) -> NTSTATUS;
    pub fn IoReleaseCancelSpinLock(Irql: u8);
    pub fn KeQueryTimeIncrement() -> u32;
    pub fn KeInitializeSemaphore(Semaphore: *mut c_void, Count: i32, Limit: i32);
    pub fn KeReleaseSemaphore(
        Semaphore: *mut c_void,
        Increment: i32,
        Adjustment: i32,
        Wait: u8,
    ) -> i32;
    pub fn KeRegisterBugCheckReasonCallback(
        CallbackRecord: *mut c_void,
        CallbackRoutine: unsafe extern "system" fn(i32, *mut c_void, *mut c_void, u32),
        Reason: i32,
        Component: *const u8,
    ) -> u8;
    pub fn KeDeregisterBugCheckReasonCallback(CallbackRecord: *mut c_void) -> u8;
}

#[link(name = "ntoskrnl.exe", kind = "raw-dylib", modifiers = "+verbatim")]
extern "C" {
    /// Stack probe the compiler calls for frames over 4 KiB (an ntoskrnl export).
    pub fn __chkstk();
    pub fn memcpy(dst: *mut c_void, src: *const c_void, n: usize) -> *mut c_void;
    pub fn memmove(dst: *mut c_void, src: *const c_void, n: usize) -> *mut c_void;
    pub fn memset(dst: *mut c_void, c: i32, n: usize) -> *mut c_void;
    pub fn memcmp(a: *const c_void, b: *const c_void, n: usize) -> i32;
    pub fn DbgPrintEx(ComponentId: u32, Level: u32, Format: *const u8, ...) -> u32;
}

#[link(name = "fltmgr.sys", kind = "raw-dylib", modifiers = "+verbatim")]
extern "system" {
    pub fn FltRegisterFilter(
        Driver: *mut DRIVER_OBJECT,
        Registration: *const FLT_REGISTRATION,
        RetFilter: *mut *mut c_void,
    ) -> NTSTATUS;
    pub fn FltStartFiltering(Filter: *mut c_void) -> NTSTATUS;
    pub fn FltUnregisterFilter(Filter: *mut c_void);
    pub fn FltGetRequestorProcessId(CallbackData: *const FLT_CALLBACK_DATA) -> u32;
    pub fn FltGetRequestorProcess(CallbackData: *const FLT_CALLBACK_DATA) -> *mut c_void;
}
