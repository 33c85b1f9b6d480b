//! The control device and IRP dispatch.

use super::*;
use crate::globals::sys::*;

/// The driver object handed to DriverEntry (kept for teardown).
pub struct Driver(pub(super) *mut DRIVER_OBJECT);

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
    for sid in [&SYSTEM_SID[..], &ADMINS_SID[..]] {
        if nt_success(s) {
            // SAFETY: acl was initialised above; sid is one of the two valid
            // constant SIDs, and both ACEs fit in the ACL.
            s = unsafe {
                RtlAddAccessAllowedAce(acl.cast(), ACL_REVISION, GENERIC_ALL, sid.as_ptr().cast())
            };
        }
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
    (HOOKS.stop)();
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
    pub(super) buf: *mut u8,
    pub(super) in_len: usize,
    pub(super) out_len: usize,
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
        if (HOOKS.events_wants_wait)(&io) {
            return pending::submit_wait(irp);
        }
        return match (HOOKS.events_answer_now)(&mut io) {
            Ok(n) => complete(irp, STATUS_SUCCESS, n.min(out_len)),
            Err(s) => complete(irp, s, 0),
        };
    }
    match (HOOKS.device_control)(code, &mut io) {
        Ok(n) => complete(irp, STATUS_SUCCESS, n.min(out_len)),
        Err(s) => complete(irp, s, 0),
    }
}
