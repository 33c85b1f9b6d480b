//! Kernel structures the driver touches that `windows-sys` gets wrong or
//! lacks, and re-exports of the ones it gets right. Every layout here is
//! checked against the DDK headers by the layout probe (`layout.rs`,
//! `driver/layout-probe/`), and pinned by `static_assertions` in `layout.rs`.
#![allow(
    non_camel_case_types,
    non_snake_case,
    dead_code,
    missing_docs,
    clippy::upper_case_acronyms
)]

use core::ffi::c_void;

pub use windows_sys::Wdk::Foundation::{
    DEVICE_OBJECT, DRIVER_OBJECT, FILE_OBJECT, IRP, OBJECT_ATTRIBUTES,
};
pub use windows_sys::Wdk::Storage::FileSystem::Minifilters::{
    FLT_CALLBACK_DATA, FLT_IO_PARAMETER_BLOCK, FLT_OPERATION_REGISTRATION, FLT_REGISTRATION,
    FLT_RELATED_OBJECTS,
};
pub use windows_sys::Win32::Foundation::UNICODE_STRING;
pub use windows_sys::Win32::System::IO::IO_STATUS_BLOCK;

pub type NTSTATUS = i32;
pub type HANDLE = *mut c_void;

/// `IO_STACK_LOCATION` (wdm.h), with only the `Parameters` member we read
/// spelled out. windows-sys's `Parameters.DeviceIoControl` lacks the WDK's
/// `POINTER_ALIGNMENT` on its `ULONG` members, which moves
/// `InputBufferLength` from offset 8 to 4 of `Parameters`; this definition
/// follows the header.
#[repr(C)]
pub struct IO_STACK_LOCATION {
    pub MajorFunction: u8,
    pub MinorFunction: u8,
    pub Flags: u8,
    pub Control: u8,
    pub Parameters: IO_STACK_LOCATION_PARAMETERS,
    pub DeviceObject: *mut DEVICE_OBJECT,
    pub FileObject: *mut c_void,
    pub CompletionRoutine: *mut c_void,
    pub Context: *mut c_void,
}

/// The `Parameters` union: 32 bytes, pointer aligned. Only the
/// `DeviceIoControl` arm is used.
#[repr(C)]
pub union IO_STACK_LOCATION_PARAMETERS {
    pub DeviceIoControl: DEVICE_IO_CONTROL_PARAMETERS,
    pub Others: [*mut c_void; 4],
}

/// `Parameters.DeviceIoControl`: each `ULONG` is `POINTER_ALIGNMENT`.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct DEVICE_IO_CONTROL_PARAMETERS {
    pub OutputBufferLength: u32,
    _pad0: u32,
    pub InputBufferLength: u32,
    _pad1: u32,
    pub IoControlCode: u32,
    _pad2: u32,
    pub Type3InputBuffer: *mut c_void,
}

/// `KEY_VALUE_PARTIAL_INFORMATION` header (the data follows).
#[repr(C)]
pub struct KEY_VALUE_PARTIAL_INFORMATION {
    pub TitleIndex: u32,
    pub Type: u32,
    pub DataLength: u32,
    pub Data: [u8; 1],
}

/// `FILE_STANDARD_INFORMATION`.
#[repr(C)]
#[derive(Default)]
pub struct FILE_STANDARD_INFORMATION {
    pub AllocationSize: i64,
    pub EndOfFile: i64,
    pub NumberOfLinks: u32,
    pub DeletePending: u8,
    pub Directory: u8,
}

/// `FILE_NAMES_INFORMATION` header (the name follows). Read from the byte
/// buffer field by field, never through this type; it exists for the probe.
#[repr(C)]
pub struct FILE_NAMES_INFORMATION {
    pub NextEntryOffset: u32,
    pub FileIndex: u32,
    pub FileNameLength: u32,
    pub FileName: [u16; 1],
}

/// `KEVENT` (a `DISPATCHER_HEADER` and a `LIST_ENTRY`); opaque to us.
#[repr(C, align(8))]
pub struct KEVENT {
    pub opaque: [u8; 24],
}

/// `KSEMAPHORE` (a `DISPATCHER_HEADER` and the limit); opaque to us.
#[repr(C, align(8))]
pub struct KSEMAPHORE {
    pub opaque: [u8; 32],
}

/// `LIST_ENTRY`.
#[repr(C)]
pub struct LIST_ENTRY {
    pub Flink: *mut LIST_ENTRY,
    pub Blink: *mut LIST_ENTRY,
}

/// `GUID`.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct GUID {
    pub Data1: u32,
    pub Data2: u16,
    pub Data3: u16,
    pub Data4: [u8; 8],
}

/// `KBUGCHECK_REASON_CALLBACK_RECORD`.
#[repr(C)]
pub struct KBUGCHECK_REASON_CALLBACK_RECORD {
    pub Entry: LIST_ENTRY,
    pub CallbackRoutine: *mut c_void,
    pub Component: *mut u8,
    pub Checksum: usize,
    pub Reason: u32,
    pub State: u8,
}

/// `KBUGCHECK_SECONDARY_DUMP_DATA`.
#[repr(C)]
pub struct KBUGCHECK_SECONDARY_DUMP_DATA {
    pub InBuffer: *mut c_void,
    pub InBufferLength: u32,
    pub MaximumAllowed: u32,
    pub Guid: GUID,
    pub OutBuffer: *mut c_void,
    pub OutBufferLength: u32,
}

/// `SECURITY_DESCRIPTOR` (absolute form).
#[repr(C)]
pub struct SECURITY_DESCRIPTOR {
    pub Revision: u8,
    pub Sbz1: u8,
    pub Control: u16,
    pub Owner: *mut c_void,
    pub Group: *mut c_void,
    pub Sacl: *mut c_void,
    pub Dacl: *mut c_void,
}

/// `ACL` header.
/// `IO_SECURITY_CONTEXT` (wdm.h): what a create's `SecurityContext` points at.
#[repr(C)]
pub struct IO_SECURITY_CONTEXT {
    pub SecurityQos: *mut c_void,
    pub AccessState: *mut ACCESS_STATE,
    pub DesiredAccess: u32,
    pub FullCreateOptions: u32,
}

/// `SECURITY_SUBJECT_CONTEXT` (wdm.h): the tokens of the subject.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct SECURITY_SUBJECT_CONTEXT {
    pub ClientToken: *mut c_void,
    pub ImpersonationLevel: i32,
    pub PrimaryToken: *mut c_void,
    pub ProcessAuditId: *mut c_void,
}

/// `ACCESS_STATE` (wdm.h). Only `SubjectSecurityContext` is read; the rest
/// is kept opaque at its documented size.
#[repr(C)]
pub struct ACCESS_STATE {
    pub OperationID: u64,
    pub SecurityEvaluated: u8,
    pub GenerateAudit: u8,
    pub GenerateOnClose: u8,
    pub PrivilegesAllocated: u8,
    pub Flags: u32,
    pub RemainingDesiredAccess: u32,
    pub PreviouslyGrantedAccess: u32,
    pub OriginalDesiredAccess: u32,
    pub SubjectSecurityContext: SECURITY_SUBJECT_CONTEXT,
    pub rest: [u64; 12],
}

/// `TOKEN_USER` (winnt.h): `User.Sid` points into the same buffer.
#[repr(C)]
pub struct TOKEN_USER {
    pub Sid: *mut c_void,
    pub Attributes: u32,
}

/// `KERNEL_USER_TIMES` (ntddk.h), `ProcessTimes`' answer.
#[repr(C)]
#[derive(Default)]
pub struct KERNEL_USER_TIMES {
    pub CreateTime: i64,
    pub ExitTime: i64,
    pub KernelTime: i64,
    pub UserTime: i64,
}

#[repr(C)]
pub struct ACL {
    pub AclRevision: u8,
    pub Sbz1: u8,
    pub AclSize: u16,
    pub AceCount: u16,
    pub Sbz2: u16,
}

// ---------------------------------------------------------------------------
// Constants (each checked against the headers by the layout probe: see
// CONST_CHECKS in layout.rs).
// ---------------------------------------------------------------------------

pub const STATUS_SUCCESS: NTSTATUS = 0;
pub const STATUS_UNSUCCESSFUL: NTSTATUS = 0xC000_0001u32 as i32;
pub const STATUS_INVALID_DEVICE_REQUEST: NTSTATUS = 0xC000_0010u32 as i32;
pub const STATUS_ACCESS_DENIED: NTSTATUS = 0xC000_0022u32 as i32;
pub const STATUS_BUFFER_OVERFLOW: NTSTATUS = 0x8000_0005u32 as i32;
pub const STATUS_INSUFFICIENT_RESOURCES: NTSTATUS = 0xC000_009Au32 as i32;
pub const STATUS_FILE_TOO_LARGE: NTSTATUS = 0xC000_0904u32 as i32;
pub const STATUS_NO_MORE_FILES: NTSTATUS = 0x8000_0006u32 as i32;
pub const STATUS_TIMEOUT: NTSTATUS = 0x0000_0102;
pub const STATUS_DEVICE_BUSY: NTSTATUS = 0x8000_0011u32 as i32;
pub const STATUS_FLT_DO_NOT_ATTACH: NTSTATUS = 0xC01C_000Fu32 as i32;
pub const STATUS_OBJECT_NAME_NOT_FOUND: NTSTATUS = 0xC000_0034u32 as i32;
pub const STATUS_BUFFER_TOO_SMALL: NTSTATUS = 0xC000_0023u32 as i32;
pub const SYMBOLIC_LINK_QUERY: u32 = 1;
pub const NON_PAGED_POOL_NX: i32 = 512;
pub const POOL_FLAG_NON_PAGED: u64 = 0x40;
pub const IRP_MJ_CREATE: u8 = 0x00;
pub const IRP_MJ_CREATE_NAMED_PIPE: u8 = 0x01;
pub const IRP_MJ_CLOSE: u8 = 0x02;
pub const IRP_MJ_DEVICE_CONTROL: u8 = 0x0e;
pub const IRP_MJ_CLEANUP: u8 = 0x12;
pub const IRP_MJ_OPERATION_END: u8 = 0x80;
pub const FILE_DEVICE_UNKNOWN: u32 = 0x22;
pub const FILE_DEVICE_SECURE_OPEN: u32 = 0x100;
pub const OBJ_CASE_INSENSITIVE: u32 = 0x40;
pub const OBJ_KERNEL_HANDLE: u32 = 0x200;
pub const KEY_READ: u32 = 0x20019;
pub const KEY_WRITE: u32 = 0x20006;
pub const REG_SZ: u32 = 1;
pub const REG_EXPAND_SZ: u32 = 2;
pub const REG_BINARY: u32 = 3;
pub const REG_DWORD: u32 = 4;
pub const KEY_VALUE_PARTIAL_INFORMATION_CLASS: i32 = 2;
pub const GENERIC_READ: u32 = 0x8000_0000;
pub const FILE_LIST_DIRECTORY: u32 = 1;
pub const SYNCHRONIZE: u32 = 0x0010_0000;
pub const FILE_SHARE_READ: u32 = 1;
pub const FILE_SHARE_WRITE: u32 = 2;
pub const FILE_SHARE_DELETE: u32 = 4;
pub const FILE_OPEN: u32 = 1;
pub const FILE_DIRECTORY_FILE: u32 = 1;
pub const FILE_NON_DIRECTORY_FILE: u32 = 0x40;
pub const FILE_SYNCHRONOUS_IO_NONALERT: u32 = 0x20;
pub const FILE_ATTRIBUTE_NORMAL: u32 = 0x80;
pub const FILE_STANDARD_INFORMATION_CLASS: i32 = 5;
pub const FILE_NAMES_INFORMATION_CLASS: i32 = 12;
pub const FLT_REGISTRATION_VERSION: u16 = 0x0203;
pub const FLTFL_REGISTRATION_SUPPORT_NPFS_MSFS: u32 = 2;
pub const FLT_FSTYPE_NPFS: u32 = 25;
pub const FLT_PREOP_SUCCESS_NO_CALLBACK: i32 = 1;
pub const FLT_PREOP_COMPLETE: i32 = 4;
pub const DPFLTR_IHVDRIVER_ID: u32 = 77;
pub const KB_CALLBACK_SECONDARY_DUMP_DATA: i32 = 2;
pub const GENERIC_ALL: u32 = 0x1000_0000;
pub const ACL_REVISION: u32 = 2;
pub const DACL_SECURITY_INFORMATION: u32 = 4;
pub const WRITE_DAC: u32 = 0x0004_0000;
pub const DO_DEVICE_INITIALIZING: u32 = 0x80;
pub const NOTIFICATION_EVENT: i32 = 0;
pub const KERNEL_MODE: i8 = 0;
pub const PROCESS_QUERY_LIMITED_INFORMATION: u32 = 0x1000;
/// `PROCESSINFOCLASS::ProcessImageFileName`.
pub const PROCESS_IMAGE_FILE_NAME: i32 = 27;
/// `PROCESS_QUERY_INFORMATION` (what Wine's server asks of a handle whose
/// token is opened; Windows grants everything to a kernel handle anyway).
pub const PROCESS_QUERY_INFORMATION: u32 = 0x0400;
/// `PROCESSINFOCLASS::ProcessTimes`.
pub const PROCESS_TIMES: i32 = 4;
/// `TOKEN_INFORMATION_CLASS::TokenUser`.
pub const TOKEN_USER_CLASS: i32 = 1;
/// `TOKEN_QUERY`.
pub const TOKEN_QUERY: u32 = 0x0008;
/// `SL_PENDING_RETURNED` (IoMarkIrpPending sets it in the stack location's Control).
pub const SL_PENDING_RETURNED: u8 = 0x01;
/// `STATUS_PENDING`.
pub const STATUS_PENDING: NTSTATUS = 0x0000_0103;
/// `STATUS_CANCELLED`.
pub const STATUS_CANCELLED: NTSTATUS = 0xC000_0120u32 as i32;
