//! The driver's control device (`\\.\PipeSensor`), for `pipectl driver`
//! and the service: synchronous IOCTLs, and the EVENTS_V2 read that waits
//! in the driver.
//!
//! The handle is opened for overlapped I/O. A waiting read is issued with
//! an `OVERLAPPED`; when the caller's wait ends first, the read is cancelled
//! (`CancelIoEx`) and then **waited for** (`GetOverlappedResult` with
//! `bWait`): if the driver completed it with events in the meantime, those
//! events are returned, never dropped, and the buffer is never freed under
//! a pending request. Closing the handle leaves nothing pending in the
//! driver.
//!
//! [`Lookup`] resolves user SIDs with `LookupAccountSidW` (Windows; elsewhere
//! it resolves nothing and the SID string is written).
//!
//! A driver that does not know EVENTS_V2 (`ERROR_INVALID_FUNCTION`) is read
//! with the version-1 EVENTS IOCTL, polled every 50 ms; its events carry no
//! user, process time or rule name.

use crate::health::Snapshot;
use crate::pipeline::{Batch, Driver, DriverError};
use sensor_core::event::PipeEvent;
use sensor_core::proto::{self, RolloutStatus, Status};
use sensor_core::stream::{self, BatchInfo, StreamRequest};
use std::time::{Duration, Instant};

/// `ERROR_INVALID_FUNCTION`: what `STATUS_INVALID_DEVICE_REQUEST` becomes.
pub const ERROR_INVALID_FUNCTION: u32 = 1;

/// A failed IOCTL: the Win32 error and a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IoError {
    /// `GetLastError()` (0 when not from Windows).
    pub code: u32,
    /// What failed.
    pub message: String,
}

impl std::fmt::Display for IoError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

fn status_request() -> Vec<u8> {
    let mut b = vec![0u8; proto::STATUS_REQUEST_LEN];
    let n = proto::encode_status_request(&mut b).unwrap_or(0);
    b.truncate(n);
    b
}

/// STATUS and (when the driver has them) ROLLOUT and ENFORCEMENT.
///
/// # Errors
/// STATUS failed or its answer does not decode.
pub fn snapshot(dev: &Device) -> Result<Snapshot, IoError> {
    let req = status_request();
    let out = dev.ioctl(proto::IOCTL_STATUS, &req, proto::STATUS_LEN)?;
    let status = Status::decode(&out).map_err(|e| IoError {
        code: 0,
        message: format!("bad status response: {e}"),
    })?;
    let rollout = dev
        .ioctl(proto::IOCTL_ROLLOUT, &req, proto::ROLLOUT_STATUS_LEN)
        .ok()
        .and_then(|o| RolloutStatus::decode(&o).ok());
    let enforcement = dev
        .ioctl(
            proto::IOCTL_ENFORCEMENT,
            &req,
            proto::ENFORCEMENT_STATUS_LEN,
        )
        .ok()
        .and_then(|o| proto::EnforcementStatus::decode(&o).ok());
    Ok(Snapshot {
        status,
        rollout,
        enforcement,
    })
}

/// Output buffer for `max` events (at least one longest record, at most 256 KiB).
pub fn batch_buffer_len(max: u32) -> usize {
    (stream::BATCH_FIXED_LEN + stream::RECORD_MAX_LEN * max as usize)
        .clamp(stream::BATCH_MIN_OUT, 256 << 10)
}

/// The EVENTS_V2 reader (or the version-1 fallback) over a [`Device`].
#[derive(Debug, Default)]
pub struct SensorDriver {
    dev: Option<Device>,
    v1: bool,
    /// Version 1: the highest id seen on this connection.
    v1_last_id: u64,
}

impl SensorDriver {
    /// Not connected yet.
    pub fn new() -> Self {
        SensorDriver::default()
    }

    /// Whether the driver answered only the version-1 EVENTS IOCTL.
    pub fn is_v1(&self) -> bool {
        self.v1
    }

    fn dev(&self) -> Result<&Device, DriverError> {
        self.dev
            .as_ref()
            .ok_or_else(|| DriverError::Gone("not connected".into()))
    }

    fn read_v1(&mut self, max: u32, wait: Duration) -> Result<Batch, DriverError> {
        let dev = self
            .dev
            .as_ref()
            .ok_or_else(|| DriverError::Gone("not connected".into()))?;
        let start = Instant::now();
        let max = max.clamp(1, 256);
        let mut req = vec![0u8; proto::EVENTS_REQUEST_LEN];
        proto::encode_events_request(&mut req, max)
            .map_err(|e| DriverError::Failed(e.to_string()))?;
        let cap = proto::EVENTS_RESPONSE_FIXED_LEN + proto::EVENT_WIRE_LEN * max as usize;
        loop {
            let out = dev
                .ioctl(proto::IOCTL_EVENTS, &req, cap)
                .map_err(|e| DriverError::Gone(e.message))?;
            let mut events = Vec::new();
            let lost = proto::decode_events_response(&out, |r| events.push(PipeEvent::from_v1(&r)))
                .map_err(|e| DriverError::Failed(format!("bad events response: {e}")))?;
            if !events.is_empty() || start.elapsed() >= wait {
                // Version 1 does not say how many were pushed; the highest
                // id seen on this connection is a lower bound (a restarted
                // driver means a new connection).
                self.v1_last_id = events.last().map_or(self.v1_last_id, |e| e.id);
                let pushed = self.v1_last_id;
                let count = events.len() as u32;
                return Ok(Batch {
                    events,
                    info: BatchInfo {
                        count,
                        lost,
                        pushed,
                    },
                });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Driver for SensorDriver {
    fn device(&self) -> String {
        proto::USER_PATH.to_string()
    }

    fn connect(&mut self) -> Result<(), DriverError> {
        self.dev = Some(Device::open().map_err(|e| DriverError::Gone(e.message))?);
        self.v1 = false;
        self.v1_last_id = 0;
        Ok(())
    }

    fn read(&mut self, max: u32, wait: Duration) -> Result<Batch, DriverError> {
        if self.v1 {
            return self.read_v1(max, wait);
        }
        let dev = self.dev()?;
        let mut req = vec![0u8; stream::STREAM_REQUEST_LEN];
        stream::encode_stream_request(&mut req, StreamRequest { max, wait: true })
            .map_err(|e| DriverError::Failed(e.to_string()))?;
        match dev.ioctl_wait(stream::IOCTL_EVENTS_V2, &req, batch_buffer_len(max), wait) {
            Ok(Some(out)) => {
                let mut events = Vec::new();
                let info = stream::decode_batch(&out, |e| events.push(e))
                    .map_err(|e| DriverError::Failed(format!("bad events v2 response: {e}")))?;
                Ok(Batch { events, info })
            }
            Ok(None) => Ok(Batch::default_for_wait()),
            Err(e) if e.code == ERROR_INVALID_FUNCTION => {
                self.v1 = true;
                self.read_v1(max, wait)
            }
            Err(e) => Err(DriverError::Gone(e.message)),
        }
    }

    fn snapshot(&mut self) -> Result<Snapshot, DriverError> {
        snapshot(self.dev()?).map_err(|e| DriverError::Gone(e.message))
    }

    fn disconnect(&mut self) {
        self.dev = None;
    }
}

impl Batch {
    /// A wait that ended without events: no counters to report.
    fn default_for_wait() -> Batch {
        Batch::default()
    }
}

#[cfg(windows)]
pub use win::{Device, Lookup};

#[cfg(windows)]
mod win {
    use super::IoError;
    use std::ffi::c_void;
    use std::ptr::{null, null_mut};
    use std::time::Duration;
    use windows_sys::Win32::Foundation::{
        CloseHandle, GetLastError, ERROR_IO_PENDING, ERROR_OPERATION_ABORTED, GENERIC_READ,
        GENERIC_WRITE, HANDLE, INVALID_HANDLE_VALUE, WAIT_OBJECT_0,
    };
    use windows_sys::Win32::Security::{LookupAccountSidW, SID_NAME_USE};
    use windows_sys::Win32::Storage::FileSystem::{
        CreateFileW, FILE_FLAG_OVERLAPPED, OPEN_EXISTING,
    };
    use windows_sys::Win32::System::Threading::{CreateEventW, WaitForSingleObject, INFINITE};
    use windows_sys::Win32::System::IO::{
        CancelIoEx, DeviceIoControl, GetOverlappedResult, OVERLAPPED,
    };

    /// An open handle to `\\.\PipeSensor` (overlapped).
    #[derive(Debug)]
    pub struct Device {
        handle: HANDLE,
        event: HANDLE,
    }

    // SAFETY: the handles are plain kernel object handles, usable from any thread.
    unsafe impl Send for Device {}

    fn last_error(what: &str) -> IoError {
        // SAFETY: no preconditions.
        let code = unsafe { GetLastError() };
        IoError {
            code,
            message: format!("{what} failed: Win32 error {code}"),
        }
    }

    impl Device {
        /// Opens the control device.
        ///
        /// # Errors
        /// The driver is not running (or access is denied).
        pub fn open() -> Result<Device, IoError> {
            let path: Vec<u16> = sensor_core::proto::USER_PATH
                .encode_utf16()
                .chain(Some(0))
                .collect();
            // SAFETY: path is NUL-terminated and outlives the call; the other
            // arguments are plain values or null where optional.
            let handle = unsafe {
                CreateFileW(
                    path.as_ptr(),
                    GENERIC_READ | GENERIC_WRITE,
                    0,
                    null(),
                    OPEN_EXISTING,
                    FILE_FLAG_OVERLAPPED,
                    null_mut(),
                )
            };
            if handle == INVALID_HANDLE_VALUE {
                let e = last_error("open");
                return Err(IoError {
                    code: e.code,
                    message: format!(
                        "cannot open {} (error {}): is the driver running?",
                        sensor_core::proto::USER_PATH,
                        e.code
                    ),
                });
            }
            // SAFETY: creates an unnamed manual-reset event; no pointers kept.
            let event = unsafe { CreateEventW(null(), 1, 0, null()) };
            if event.is_null() {
                let e = last_error("CreateEventW");
                // SAFETY: closing the handle opened above, once.
                unsafe { CloseHandle(handle) };
                return Err(e);
            }
            Ok(Device { handle, event })
        }

        /// One IOCTL, waited for; `Err` carries the Win32 error.
        ///
        /// # Errors
        /// The driver failed the request.
        pub fn ioctl(&self, code: u32, input: &[u8], out_len: usize) -> Result<Vec<u8>, IoError> {
            self.ioctl_wait(
                code,
                input,
                out_len,
                Duration::from_millis(u64::from(INFINITE)),
            )
            .map(Option::unwrap_or_default)
        }

        /// One IOCTL, waited for at most `wait` (then cancelled and waited
        /// for until the driver let go of it). `Ok(None)`: cancelled
        /// before the driver answered.
        ///
        /// # Errors
        /// The driver failed the request.
        pub fn ioctl_wait(
            &self,
            code: u32,
            input: &[u8],
            out_len: usize,
            wait: Duration,
        ) -> Result<Option<Vec<u8>>, IoError> {
            let mut out = vec![0u8; out_len];
            // SAFETY: OVERLAPPED is plain data; all-zero is its initial state.
            let mut ov: OVERLAPPED = unsafe { std::mem::zeroed() };
            ov.hEvent = self.event;
            let mut got = 0u32;
            let what = format!("DeviceIoControl({code:#x})");
            // SAFETY: input, out and ov live until the request is finished:
            // every path below waits for completion (GetOverlappedResult with
            // bWait) before they are dropped.
            let ok = unsafe {
                DeviceIoControl(
                    self.handle,
                    code,
                    input.as_ptr() as *const c_void,
                    input.len() as u32,
                    out.as_mut_ptr() as *mut c_void,
                    out.len() as u32,
                    &mut got,
                    &mut ov,
                )
            };
            if ok == 0 {
                // SAFETY: no preconditions.
                let err = unsafe { GetLastError() };
                if err != ERROR_IO_PENDING {
                    return Err(IoError {
                        code: err,
                        message: format!("{what} failed: Win32 error {err}"),
                    });
                }
                let ms = u32::try_from(wait.as_millis()).unwrap_or(INFINITE);
                // SAFETY: waits on our own event handle.
                if unsafe { WaitForSingleObject(self.event, ms) } != WAIT_OBJECT_0 {
                    // SAFETY: cancels only this request (ov identifies it).
                    unsafe { CancelIoEx(self.handle, &ov) };
                }
                // SAFETY: ov is the request issued above; bWait = TRUE returns
                // only once the driver completed it (with data or cancelled).
                let done = unsafe { GetOverlappedResult(self.handle, &ov, &mut got, 1) };
                if done == 0 {
                    // SAFETY: no preconditions.
                    let err = unsafe { GetLastError() };
                    if err == ERROR_OPERATION_ABORTED {
                        return Ok(None);
                    }
                    return Err(IoError {
                        code: err,
                        message: format!("{what} failed: Win32 error {err}"),
                    });
                }
            }
            out.truncate(got as usize);
            Ok(Some(out))
        }
    }

    /// `LookupAccountSidW` on the local machine: `DOMAIN\name`.
    #[derive(Debug, Default)]
    pub struct Lookup;

    impl crate::sid::Resolve for Lookup {
        fn lookup(&mut self, sid: &sensor_core::event::Sid) -> Option<String> {
            let mut bytes = sid.as_bytes().to_vec();
            let mut name = [0u16; 256];
            let mut domain = [0u16; 256];
            let (mut n, mut d) = (name.len() as u32, domain.len() as u32);
            let mut kind: SID_NAME_USE = 0;
            // SAFETY: bytes is a validated SID (sensor_core::event::Sid), kept
            // alive across the call; the buffers and their lengths match.
            let ok = unsafe {
                LookupAccountSidW(
                    null(),
                    bytes.as_mut_ptr().cast(),
                    name.as_mut_ptr(),
                    &mut n,
                    domain.as_mut_ptr(),
                    &mut d,
                    &mut kind,
                )
            };
            if ok == 0 {
                return None;
            }
            let name = String::from_utf16_lossy(&name[..n as usize]);
            let domain = String::from_utf16_lossy(&domain[..d as usize]);
            Some(if domain.is_empty() {
                name
            } else {
                format!("{domain}\\{name}")
            })
        }
    }

    impl Drop for Device {
        fn drop(&mut self) {
            // SAFETY: closing the handles we opened, once; no request is
            // pending (every ioctl waits for completion).
            unsafe {
                CloseHandle(self.handle);
            }
            // SAFETY: as above.
            unsafe {
                CloseHandle(self.event);
            }
        }
    }
}

#[cfg(not(windows))]
pub use other::Device;

/// Resolves SIDs off Windows: never (the SID string is written).
#[cfg(not(windows))]
#[derive(Debug, Default, Clone, Copy)]
pub struct Lookup;

#[cfg(not(windows))]
impl crate::sid::Resolve for Lookup {
    fn lookup(&mut self, _sid: &sensor_core::event::Sid) -> Option<String> {
        None
    }
}

#[cfg(not(windows))]
mod other {
    use super::IoError;
    use std::time::Duration;

    fn needs_windows() -> IoError {
        IoError {
            code: 0,
            message: "driver commands need Windows".to_string(),
        }
    }

    /// The control device (Windows only).
    #[derive(Debug)]
    pub struct Device;

    impl Device {
        /// Always fails off Windows.
        ///
        /// # Errors
        /// Always.
        pub fn open() -> Result<Device, IoError> {
            Err(needs_windows())
        }

        /// Always fails off Windows.
        ///
        /// # Errors
        /// Always.
        pub fn ioctl(
            &self,
            _code: u32,
            _input: &[u8],
            _out_len: usize,
        ) -> Result<Vec<u8>, IoError> {
            Err(needs_windows())
        }

        /// Always fails off Windows.
        ///
        /// # Errors
        /// Always.
        pub fn ioctl_wait(
            &self,
            _code: u32,
            _input: &[u8],
            _out_len: usize,
            _wait: Duration,
        ) -> Result<Option<Vec<u8>>, IoError> {
            Err(needs_windows())
        }
    }
}
