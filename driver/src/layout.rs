//! Layouts of every kernel structure the driver reads or writes, and of
//! the filter-manager structures the test double (`driver/testing/fltmgr`)
//! declares by hand because Wine's headers lack them.
//!
//! Two independent checks:
//! * `static_assertions` below pin each offset/size to the documented x64
//!   value, so a change in `windows-sys` or in `sys/types.rs` fails the build;
//! * [`CHECKS`] lists the same facts as (header, C type, member, value); the
//!   layout probe (`driver/layout-probe`, run by `scripts/driver-test.sh`)
//!   turns them into C `_Static_assert`s compiled by `x86_64-w64-mingw32-gcc`
//!   against mingw-w64's `ddk/` headers and Wine's `ddk/fltkernel.h`.
//!
//! This file is also compiled on the host by the probe (`#[path]`), so it
//! uses nothing but `core` and the types module.

use crate::sys::types::*;
use core::mem::{offset_of, size_of};
#[cfg(not(pipesensor_layout_probe))]
use static_assertions::const_assert_eq;

/// Which headers declare a structure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Header {
    /// mingw-w64 `ddk/ntifs.h` (includes `wdm.h`, `ntddk.h`).
    Wdm,
    /// Wine's `ddk/fltkernel.h`.
    Flt,
    /// The filter-manager double's `fltdouble.h` (over Wine's DDK headers):
    /// what it declares by hand must agree with the driver's Rust
    /// (windows-sys) definitions.
    Double,
}

/// One layout fact: `offsetof(c_type, member)` or, with member `""`, `sizeof(c_type)`.
#[derive(Debug, Clone, Copy)]
pub struct Check {
    /// Headers to compile against.
    pub header: Header,
    /// C type name.
    pub c_type: &'static str,
    /// C member designator, `""` for the size.
    pub member: &'static str,
    /// The Rust value.
    pub value: usize,
}

macro_rules! checks {
    ($( $h:ident $cty:literal $rty:ty { size = $sz:literal $(, $cm:literal => $($rf:ident).+ = $off:literal)* $(,)? } )*) => {
        // The probe build prints the values instead of asserting them.
        #[cfg(not(pipesensor_layout_probe))]
        const _: () = {
            $(
                const_assert_eq!(size_of::<$rty>(), $sz);
                $( const_assert_eq!(offset_of!($rty, $($rf).+), $off); )*
            )*
        };
        /// The documented x64 values the static assertions pin.
        pub const EXPECTED: &[usize] = &[ $( $sz, $( $off, )* )* ];
        /// Every layout fact, for the probe.
        pub const CHECKS: &[Check] = &[
            $(
                Check { header: Header::$h, c_type: $cty, member: "", value: size_of::<$rty>() },
                $( Check { header: Header::$h, c_type: $cty, member: $cm, value: offset_of!($rty, $($rf).+) }, )*
            )*
        ];
    };
}

checks! {
    // UNICODE_STRING and OBJECT_ATTRIBUTES are also what the drive-letter
    // table passes to ZwOpenSymbolicLinkObject / ZwQuerySymbolicLinkObject.
    Wdm "UNICODE_STRING" UNICODE_STRING { size = 16, "Length" => Length = 0, "MaximumLength" => MaximumLength = 2, "Buffer" => Buffer = 8 }
    Wdm "OBJECT_ATTRIBUTES" OBJECT_ATTRIBUTES { size = 48,
        "RootDirectory" => RootDirectory = 8, "ObjectName" => ObjectName = 16, "Attributes" => Attributes = 24,
        "SecurityDescriptor" => SecurityDescriptor = 32, "SecurityQualityOfService" => SecurityQualityOfService = 40 }
    Wdm "IO_STATUS_BLOCK" IO_STATUS_BLOCK { size = 16, "Status" => Anonymous = 0, "Information" => Information = 8 }
    Wdm "DRIVER_OBJECT" DRIVER_OBJECT { size = 336, "DeviceObject" => DeviceObject = 8, "DriverUnload" => DriverUnload = 104, "MajorFunction" => MajorFunction = 112 }
    Wdm "IRP" IRP { size = 208,
        "AssociatedIrp.SystemBuffer" => AssociatedIrp = 24, "IoStatus" => IoStatus = 48, "RequestorMode" => RequestorMode = 64,
        "Cancel" => Cancel = 68, "CancelIrql" => CancelIrql = 69, "CancelRoutine" => CancelRoutine = 104,
        "Tail.Overlay.CurrentStackLocation" => Tail.Overlay.Anonymous2.Anonymous = 184 }
    Wdm "IO_STACK_LOCATION" IO_STACK_LOCATION { size = 72,
        "MajorFunction" => MajorFunction = 0, "Control" => Control = 3, "Parameters" => Parameters = 8,
        "Parameters.DeviceIoControl.OutputBufferLength" => Parameters.DeviceIoControl.OutputBufferLength = 8,
        "Parameters.DeviceIoControl.InputBufferLength" => Parameters.DeviceIoControl.InputBufferLength = 16,
        "Parameters.DeviceIoControl.IoControlCode" => Parameters.DeviceIoControl.IoControlCode = 24,
        "Parameters.DeviceIoControl.Type3InputBuffer" => Parameters.DeviceIoControl.Type3InputBuffer = 32,
        "DeviceObject" => DeviceObject = 40, "FileObject" => FileObject = 48 }
    Wdm "FILE_OBJECT" FILE_OBJECT { size = 216,
        "RelatedFileObject" => RelatedFileObject = 64, "FileName" => FileName = 88 }
    Wdm "KEY_VALUE_PARTIAL_INFORMATION" KEY_VALUE_PARTIAL_INFORMATION { size = 16,
        "Type" => Type = 4, "DataLength" => DataLength = 8, "Data" => Data = 12 }
    Wdm "FILE_STANDARD_INFORMATION" FILE_STANDARD_INFORMATION { size = 24, "EndOfFile" => EndOfFile = 8, "Directory" => Directory = 21 }
    Wdm "FILE_NAMES_INFORMATION" FILE_NAMES_INFORMATION { size = 16,
        "NextEntryOffset" => NextEntryOffset = 0, "FileNameLength" => FileNameLength = 8, "FileName" => FileName = 12 }
    Wdm "KEVENT" KEVENT { size = 24 }
    // The working-memory semaphore (sys/semaphore.rs).
    Wdm "KSEMAPHORE" KSEMAPHORE { size = 32 }
    Wdm "KBUGCHECK_REASON_CALLBACK_RECORD" KBUGCHECK_REASON_CALLBACK_RECORD { size = 48,
        "CallbackRoutine" => CallbackRoutine = 16, "Component" => Component = 24, "Checksum" => Checksum = 32,
        "Reason" => Reason = 40, "State" => State = 44 }
    Wdm "KBUGCHECK_SECONDARY_DUMP_DATA" KBUGCHECK_SECONDARY_DUMP_DATA { size = 48,
        "InBuffer" => InBuffer = 0, "InBufferLength" => InBufferLength = 8, "MaximumAllowed" => MaximumAllowed = 12,
        "Guid" => Guid = 16, "OutBuffer" => OutBuffer = 32, "OutBufferLength" => OutBufferLength = 40 }
    Wdm "SECURITY_DESCRIPTOR" SECURITY_DESCRIPTOR { size = 40, "Control" => Control = 2, "Owner" => Owner = 8, "Dacl" => Dacl = 32 }
    // The create's security context, read for the requester's user SID
    // (sys/identity.rs), and what the token and process queries return.
    Wdm "IO_SECURITY_CONTEXT" IO_SECURITY_CONTEXT { size = 24, "AccessState" => AccessState = 8 }
    Wdm "ACCESS_STATE" ACCESS_STATE { size = 160, "SubjectSecurityContext" => SubjectSecurityContext = 32 }
    Wdm "SECURITY_SUBJECT_CONTEXT" SECURITY_SUBJECT_CONTEXT { size = 32, "ClientToken" => ClientToken = 0, "PrimaryToken" => PrimaryToken = 16 }
    Wdm "TOKEN_USER" TOKEN_USER { size = 16, "User.Sid" => Sid = 0, "User.Attributes" => Attributes = 8 }
    Wdm "KERNEL_USER_TIMES" KERNEL_USER_TIMES { size = 32, "CreateTime" => CreateTime = 0 }
    Wdm "ACL" ACL { size = 8, "AclSize" => AclSize = 2, "AceCount" => AceCount = 4 }
    Flt "FLT_REGISTRATION" FLT_REGISTRATION { size = 112,
        "Size" => Size = 0, "Version" => Version = 2, "Flags" => Flags = 4, "ContextRegistration" => ContextRegistration = 8,
        "OperationRegistration" => OperationRegistration = 16, "FilterUnloadCallback" => FilterUnloadCallback = 24,
        "InstanceSetupCallback" => InstanceSetupCallback = 32, "InstanceQueryTeardownCallback" => InstanceQueryTeardownCallback = 40,
        "InstanceTeardownStartCallback" => InstanceTeardownStartCallback = 48,
        "InstanceTeardownCompleteCallback" => InstanceTeardownCompleteCallback = 56,
        "GenerateFileNameCallback" => GenerateFileNameCallback = 64, "NormalizeNameComponentCallback" => NormalizeNameComponentCallback = 72,
        "NormalizeContextCleanupCallback" => NormalizeContextCleanupCallback = 80,
        "TransactionNotificationCallback" => TransactionNotificationCallback = 88,
        "NormalizeNameComponentExCallback" => NormalizeNameComponentExCallback = 96 }
    Flt "FLT_OPERATION_REGISTRATION" FLT_OPERATION_REGISTRATION { size = 32,
        "MajorFunction" => MajorFunction = 0, "Flags" => Flags = 4, "PreOperation" => PreOperation = 8,
        "PostOperation" => PostOperation = 16, "Reserved1" => Reserved1 = 24 }
    Flt "FLT_CALLBACK_DATA" FLT_CALLBACK_DATA { size = 88,
        "Flags" => Flags = 0, "Thread" => Thread = 8, "Iopb" => Iopb = 16, "IoStatus" => IoStatus = 24,
        "RequestorMode" => RequestorMode = 80 }
    Flt "FLT_IO_PARAMETER_BLOCK" FLT_IO_PARAMETER_BLOCK { size = 72,
        "MajorFunction" => MajorFunction = 4, "TargetFileObject" => TargetFileObject = 8,
        "TargetInstance" => TargetInstance = 16, "Parameters" => Parameters = 24,
        "Parameters.Create.SecurityContext" => Parameters.Create.SecurityContext = 24,
        "Parameters.CreatePipe.SecurityContext" => Parameters.CreatePipe.SecurityContext = 24 }
    // FLT_RELATED_OBJECTS is passed to our callbacks but never read; Wine
    // keeps it opaque, so the double declares it (fltdouble.h) and builds
    // it for every callback: its declaration is checked against
    // windows-sys's here.
    Double "FLT_RELATED_OBJECTS" FLT_RELATED_OBJECTS { size = 48,
        "Size" => Size = 0, "TransactionContext" => TransactionContext = 2, "Filter" => Filter = 8,
        "Volume" => Volume = 16, "Instance" => Instance = 24, "FileObject" => FileObject = 32,
        "Transaction" => Transaction = 40 }
    // FLT_FILE_NAME_INFORMATION is not used: neither mingw-w64 nor Wine
    // declares it, so its layout could not be checked; the pipe name is
    // taken from FILE_OBJECT::FileName (wdm.h) instead.
}

/// One constant: the C expression, its header set, and the Rust value.
#[derive(Debug, Clone, Copy)]
pub struct ConstCheck {
    /// Headers to compile against.
    pub header: Header,
    /// C expression (a macro or enumerator).
    pub c_name: &'static str,
    /// The Rust value, sign-extended.
    pub value: i64,
}

macro_rules! const_checks {
    ($( $h:ident $c:literal = $r:expr, )*) => {
        /// Every constant the driver passes to or compares with the kernel
        /// that a header declares, for the probe.
        pub const CONST_CHECKS: &[ConstCheck] = &[ $( ConstCheck { header: Header::$h, c_name: $c, value: $r as i64 }, )* ];
    };
}

const_checks! {
    Wdm "STATUS_SUCCESS" = STATUS_SUCCESS,
    Wdm "STATUS_UNSUCCESSFUL" = STATUS_UNSUCCESSFUL,
    Wdm "STATUS_INVALID_DEVICE_REQUEST" = STATUS_INVALID_DEVICE_REQUEST,
    Wdm "STATUS_ACCESS_DENIED" = STATUS_ACCESS_DENIED,
    Wdm "STATUS_BUFFER_OVERFLOW" = STATUS_BUFFER_OVERFLOW,
    Wdm "STATUS_INSUFFICIENT_RESOURCES" = STATUS_INSUFFICIENT_RESOURCES,
    Wdm "STATUS_FILE_TOO_LARGE" = STATUS_FILE_TOO_LARGE,
    Wdm "STATUS_NO_MORE_FILES" = STATUS_NO_MORE_FILES,
    Wdm "STATUS_TIMEOUT" = STATUS_TIMEOUT,
    Wdm "STATUS_PENDING" = STATUS_PENDING,
    Wdm "STATUS_CANCELLED" = STATUS_CANCELLED,
    Wdm "SL_PENDING_RETURNED" = SL_PENDING_RETURNED,
    Wdm "ProcessTimes" = PROCESS_TIMES,
    Wdm "TokenUser" = TOKEN_USER_CLASS,
    Wdm "TOKEN_QUERY" = TOKEN_QUERY,
    Flt "PROCESS_QUERY_INFORMATION" = PROCESS_QUERY_INFORMATION,
    Wdm "NonPagedPoolNx" = NON_PAGED_POOL_NX,
    Wdm "IRP_MJ_CREATE" = IRP_MJ_CREATE,
    Wdm "IRP_MJ_CREATE_NAMED_PIPE" = IRP_MJ_CREATE_NAMED_PIPE,
    Wdm "IRP_MJ_CLOSE" = IRP_MJ_CLOSE,
    Wdm "IRP_MJ_DEVICE_CONTROL" = IRP_MJ_DEVICE_CONTROL,
    Wdm "IRP_MJ_CLEANUP" = IRP_MJ_CLEANUP,
    Wdm "FILE_DEVICE_UNKNOWN" = FILE_DEVICE_UNKNOWN,
    Wdm "FILE_DEVICE_SECURE_OPEN" = FILE_DEVICE_SECURE_OPEN,
    Wdm "OBJ_CASE_INSENSITIVE" = OBJ_CASE_INSENSITIVE,
    Wdm "OBJ_KERNEL_HANDLE" = OBJ_KERNEL_HANDLE,
    Wdm "KEY_READ" = KEY_READ,
    Wdm "KEY_WRITE" = KEY_WRITE,
    Wdm "REG_SZ" = REG_SZ,
    Wdm "REG_EXPAND_SZ" = REG_EXPAND_SZ,
    Wdm "REG_BINARY" = REG_BINARY,
    Wdm "REG_DWORD" = REG_DWORD,
    Wdm "KeyValuePartialInformation" = KEY_VALUE_PARTIAL_INFORMATION_CLASS,
    Wdm "GENERIC_READ" = GENERIC_READ,
    Wdm "GENERIC_ALL" = GENERIC_ALL,
    Wdm "FILE_LIST_DIRECTORY" = FILE_LIST_DIRECTORY,
    Wdm "SYNCHRONIZE" = SYNCHRONIZE,
    Wdm "WRITE_DAC" = WRITE_DAC,
    Wdm "FILE_SHARE_READ" = FILE_SHARE_READ,
    Wdm "FILE_SHARE_WRITE" = FILE_SHARE_WRITE,
    Wdm "FILE_SHARE_DELETE" = FILE_SHARE_DELETE,
    Wdm "FILE_OPEN" = FILE_OPEN,
    Wdm "FILE_DIRECTORY_FILE" = FILE_DIRECTORY_FILE,
    Wdm "FILE_NON_DIRECTORY_FILE" = FILE_NON_DIRECTORY_FILE,
    Wdm "FILE_SYNCHRONOUS_IO_NONALERT" = FILE_SYNCHRONOUS_IO_NONALERT,
    Wdm "FILE_ATTRIBUTE_NORMAL" = FILE_ATTRIBUTE_NORMAL,
    Wdm "FileStandardInformation" = FILE_STANDARD_INFORMATION_CLASS,
    Wdm "FileNamesInformation" = FILE_NAMES_INFORMATION_CLASS,
    Wdm "DPFLTR_IHVDRIVER_ID" = DPFLTR_IHVDRIVER_ID,
    Wdm "KbCallbackSecondaryDumpData" = KB_CALLBACK_SECONDARY_DUMP_DATA,
    Wdm "ACL_REVISION" = ACL_REVISION,
    Wdm "DACL_SECURITY_INFORMATION" = DACL_SECURITY_INFORMATION,
    Wdm "DO_DEVICE_INITIALIZING" = DO_DEVICE_INITIALIZING,
    Wdm "NotificationEvent" = NOTIFICATION_EVENT,
    Flt "FLT_FSTYPE_NPFS" = FLT_FSTYPE_NPFS,
    Flt "FLT_PREOP_SUCCESS_NO_CALLBACK" = FLT_PREOP_SUCCESS_NO_CALLBACK,
    Flt "FLT_PREOP_COMPLETE" = FLT_PREOP_COMPLETE,
    Wdm "STATUS_FLT_DO_NOT_ATTACH" = STATUS_FLT_DO_NOT_ATTACH,
    Wdm "STATUS_OBJECT_NAME_NOT_FOUND" = STATUS_OBJECT_NAME_NOT_FOUND,
    Wdm "STATUS_BUFFER_TOO_SMALL" = STATUS_BUFFER_TOO_SMALL,
    Wdm "SYMBOLIC_LINK_QUERY" = SYMBOLIC_LINK_QUERY,
    Wdm "KernelMode" = KERNEL_MODE,
    Flt "PROCESS_QUERY_LIMITED_INFORMATION" = PROCESS_QUERY_LIMITED_INFORMATION,
    Wdm "ProcessImageFileName" = PROCESS_IMAGE_FILE_NAME,
    Wdm "FILE_DEVICE_NAMED_PIPE" = double::FILE_DEVICE_NAMED_PIPE,
    Wdm "FILE_DEVICE_DISK_FILE_SYSTEM" = double::FILE_DEVICE_DISK_FILE_SYSTEM,
    // The double's hand-written filter-manager constants (fltdouble.h).
    Double "FLTFL_REGISTRATION_DO_NOT_SUPPORT_SERVICE_STOP" = double::DO_NOT_SUPPORT_SERVICE_STOP,
    Double "FLTFL_REGISTRATION_SUPPORT_NPFS_MSFS" = FLTFL_REGISTRATION_SUPPORT_NPFS_MSFS,
    Double "FLT_REGISTRATION_VERSION_0203" = FLT_REGISTRATION_VERSION,
    Double "FLT_REGISTRATION_VERSION_0202" = double::REGISTRATION_VERSION_0202,
    Double "IRP_MJ_OPERATION_END" = IRP_MJ_OPERATION_END,
    Double "FLT_CONTEXT_END" = double::CONTEXT_END,
    Double "FLTFL_CALLBACK_DATA_IRP_OPERATION" = double::CALLBACK_DATA_IRP_OPERATION,
    Double "FLTFL_INSTANCE_SETUP_AUTOMATIC_ATTACHMENT" = double::INSTANCE_SETUP_AUTOMATIC_ATTACHMENT,
    Double "FLTFL_FILTER_UNLOAD_MANDATORY" = double::FILTER_UNLOAD_MANDATORY,
    Double "STATUS_FLT_DO_NOT_ATTACH" = STATUS_FLT_DO_NOT_ATTACH,
    Double "FILE_DEVICE_NAMED_PIPE" = double::FILE_DEVICE_NAMED_PIPE,
    Double "FILE_DEVICE_DISK_FILE_SYSTEM" = double::FILE_DEVICE_DISK_FILE_SYSTEM,
    Double "FILE_DEVICE_UNKNOWN" = FILE_DEVICE_UNKNOWN,
    Double "FLTD_FILE_OBJECT_SIZE" = size_of::<FILE_OBJECT>(),
}

/// Values the test double declares by hand (fltdouble.h) that the driver
/// itself does not use; the probe checks the double against them, and the
/// assertions below check them against windows-sys (the filter-manager
/// ones) or the probe checks them against mingw-w64 (the device types).
pub mod double {
    /// winioctl.h `FILE_DEVICE_NAMED_PIPE`.
    pub const FILE_DEVICE_NAMED_PIPE: u32 = 0x11;
    /// winioctl.h `FILE_DEVICE_DISK_FILE_SYSTEM`.
    pub const FILE_DEVICE_DISK_FILE_SYSTEM: u32 = 0x08;
    /// fltKernel.h `FLTFL_REGISTRATION_DO_NOT_SUPPORT_SERVICE_STOP`.
    pub const DO_NOT_SUPPORT_SERVICE_STOP: u32 = 1;
    /// fltKernel.h `FLT_REGISTRATION_VERSION_0202`.
    pub const REGISTRATION_VERSION_0202: u32 = 0x0202;
    /// fltKernel.h `FLT_CONTEXT_END`.
    pub const CONTEXT_END: u32 = 0xffff;
    /// fltKernel.h `FLTFL_CALLBACK_DATA_IRP_OPERATION`.
    pub const CALLBACK_DATA_IRP_OPERATION: u32 = 1;
    /// fltKernel.h `FLTFL_INSTANCE_SETUP_AUTOMATIC_ATTACHMENT`.
    pub const INSTANCE_SETUP_AUTOMATIC_ATTACHMENT: u32 = 1;
    /// fltKernel.h `FLTFL_FILTER_UNLOAD_MANDATORY`.
    pub const FILTER_UNLOAD_MANDATORY: u32 = 1;
}

// Constants neither header set declares (newer than Wine's fltkernel.h and
// mingw-w64's ddk): cross-checked against windows-sys, a second source.
#[cfg(not(pipesensor_layout_probe))]
const _: () = {
    use windows_sys::Wdk::Storage::FileSystem::Minifilters as m;
    const_assert_eq!(
        FLTFL_REGISTRATION_SUPPORT_NPFS_MSFS,
        m::FLTFL_REGISTRATION_SUPPORT_NPFS_MSFS
    );
    const_assert_eq!(
        FLT_REGISTRATION_VERSION as u32,
        m::FLT_REGISTRATION_VERSION_0203
    );
    const_assert_eq!(IRP_MJ_OPERATION_END as u16, m::IRP_MJ_OPERATION_END);
    const_assert_eq!(
        FLT_FSTYPE_NPFS as i32,
        windows_sys::Win32::Storage::InstallableFileSystems::FLT_FSTYPE_NPFS
    );
    const_assert_eq!(
        NON_PAGED_POOL_NX,
        windows_sys::Wdk::Foundation::NonPagedPoolNx
    );
    // POOL_FLAG_NON_PAGED (wdm.h of WDK 10.0.19041+; not in windows-sys 0.61).
    const_assert_eq!(POOL_FLAG_NON_PAGED, 0x40);
    const_assert_eq!(
        double::DO_NOT_SUPPORT_SERVICE_STOP,
        m::FLTFL_REGISTRATION_DO_NOT_SUPPORT_SERVICE_STOP
    );
    const_assert_eq!(
        double::REGISTRATION_VERSION_0202,
        m::FLT_REGISTRATION_VERSION_0202
    );
    const_assert_eq!(double::CONTEXT_END, m::FLT_CONTEXT_END);
    const_assert_eq!(
        double::CALLBACK_DATA_IRP_OPERATION,
        m::FLTFL_CALLBACK_DATA_IRP_OPERATION
    );
    const_assert_eq!(
        double::INSTANCE_SETUP_AUTOMATIC_ATTACHMENT,
        m::FLTFL_INSTANCE_SETUP_AUTOMATIC_ATTACHMENT
    );
    const_assert_eq!(
        double::FILTER_UNLOAD_MANDATORY,
        m::FLTFL_FILTER_UNLOAD_MANDATORY
    );
};
