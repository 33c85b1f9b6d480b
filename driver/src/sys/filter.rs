//! The minifilter: registration, rundown, callbacks.

use super::*;
use crate::globals::sys::*;

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
    (HOOKS.stop)();
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
    (HOOKS.count_callback)();
    // Cheap checks first: no content active → nothing can match.
    if !(HOOKS.has_content)() {
        return FLT_PREOP_SUCCESS_NO_CALLBACK;
    }
    let (related, name) = target_names(data);
    // SAFETY: data is this callback's data; the requestor does not outlive
    // the call below.
    let requestor = unsafe { Requestor::new(data) };
    let decision = (HOOKS.on_callback)(kind, requestor, related, name);
    if decision == sensor_core::decision::Decision::Deny {
        // SAFETY: data is our callback data; completing the operation here.
        let d = unsafe { &mut *data };
        d.IoStatus.Anonymous.Status = STATUS_ACCESS_DENIED;
        d.IoStatus.Information = 0;
        return FLT_PREOP_COMPLETE;
    }
    FLT_PREOP_SUCCESS_NO_CALLBACK
}
