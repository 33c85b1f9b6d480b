//! The Windows-only part of the service: the service control glue
//! (`windows-service`), the Event Log sink, SID lookup and the event
//! source's registration. Everything it calls into is tested on Linux.

use crate::config::{Cmd, Options, SERVICE_NAME, SOURCE_NAME};
use event_sink::device::Lookup;
use event_sink::device::SensorDriver;
use event_sink::ids::Level;
use event_sink::pipeline::Sink;
use event_sink::record::Out;
use std::ffi::OsString;
use std::ptr::{null, null_mut};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use windows_service::service::{
    ServiceControl, ServiceControlAccept, ServiceExitCode, ServiceState, ServiceStatus, ServiceType,
};
use windows_service::service_control_handler::{self, ServiceControlHandlerResult};
use windows_service::{define_windows_service, service_dispatcher};
use windows_sys::Win32::Foundation::{HANDLE, WIN32_ERROR};
use windows_sys::Win32::System::EventLog::{
    DeregisterEventSource, RegisterEventSourceW, ReportEventW, EVENTLOG_ERROR_TYPE,
    EVENTLOG_INFORMATION_TYPE, EVENTLOG_WARNING_TYPE,
};
use windows_sys::Win32::System::Registry::{
    RegCloseKey, RegCreateKeyExW, RegDeleteTreeW, RegSetValueExW, HKEY, HKEY_LOCAL_MACHINE,
    KEY_SET_VALUE, REG_DWORD, REG_EXPAND_SZ, REG_OPTION_NON_VOLATILE,
};

fn wide(s: &str) -> Vec<u16> {
    s.encode_utf16().chain(Some(0)).collect()
}

/// `HKLM\...\EventLog\Application\PipeSensor`.
fn source_key() -> String {
    format!(r"SYSTEM\CurrentControlSet\Services\EventLog\Application\{SOURCE_NAME}")
}

fn reg_error(what: &str, e: WIN32_ERROR) -> String {
    format!("{what}: Win32 error {e}")
}

/// Registers the Event Log source: `EventMessageFile` = this executable
/// (its message table), `TypesSupported` = error, warning, information.
pub fn register_source() -> Result<(), String> {
    let exe = std::env::current_exe().map_err(|e| format!("own path: {e}"))?;
    let key = wide(&source_key());
    let mut h: HKEY = null_mut();
    // SAFETY: key is NUL-terminated; h receives the opened key, closed below.
    let r = unsafe {
        RegCreateKeyExW(
            HKEY_LOCAL_MACHINE,
            key.as_ptr(),
            0,
            null(),
            REG_OPTION_NON_VOLATILE,
            KEY_SET_VALUE,
            null(),
            &mut h,
            null_mut(),
        )
    };
    if r != 0 {
        return Err(reg_error(&source_key(), r));
    }
    let file = wide(&exe.display().to_string());
    let types: u32 = 7;
    // SAFETY: h is open; the data pointers and byte lengths describe live buffers.
    let r1 = unsafe {
        RegSetValueExW(
            h,
            wide("EventMessageFile").as_ptr(),
            0,
            REG_EXPAND_SZ,
            file.as_ptr().cast(),
            (file.len() * 2) as u32,
        )
    };
    // SAFETY: as above.
    let r2 = unsafe {
        RegSetValueExW(
            h,
            wide("TypesSupported").as_ptr(),
            0,
            REG_DWORD,
            (&types as *const u32).cast(),
            4,
        )
    };
    // SAFETY: closing the key opened above, once.
    unsafe { RegCloseKey(h) };
    match (r1, r2) {
        (0, 0) => Ok(()),
        (0, e) | (e, _) => Err(reg_error("setting the event source values", e)),
    }
}

/// Removes the Event Log source.
pub fn unregister_source() -> Result<(), String> {
    let key = wide(&source_key());
    // SAFETY: key is NUL-terminated.
    match unsafe { RegDeleteTreeW(HKEY_LOCAL_MACHINE, key.as_ptr()) } {
        0 | 2 => Ok(()),
        e => Err(reg_error(&source_key(), e)),
    }
}

/// The Application Event Log, source `PipeSensor`.
#[derive(Debug)]
pub struct EventLog(HANDLE);

impl EventLog {
    /// Opens the source (registering it first when possible).
    pub fn open() -> Result<EventLog, String> {
        // Registration needs administrator rights: a foreground run by a
        // standard user still writes, with the source as it is.
        let _ = register_source();
        let name = wide(SOURCE_NAME);
        // SAFETY: name is NUL-terminated; a null server is the local machine.
        let h = unsafe { RegisterEventSourceW(null(), name.as_ptr()) };
        if h.is_null() {
            return Err("RegisterEventSourceW(PipeSensor) failed".into());
        }
        Ok(EventLog(h))
    }
}

impl Drop for EventLog {
    fn drop(&mut self) {
        // SAFETY: the handle from RegisterEventSourceW, once.
        unsafe { DeregisterEventSource(self.0) };
    }
}

impl Sink for EventLog {
    fn write(&mut self, out: &Out) -> std::io::Result<()> {
        let strings: Vec<Vec<u16>> = out.strings().iter().map(|s| wide(s)).collect();
        let ptrs: Vec<*const u16> = strings.iter().map(|s| s.as_ptr()).collect();
        let kind = match out.level {
            Level::Informational => EVENTLOG_INFORMATION_TYPE,
            Level::Warning => EVENTLOG_WARNING_TYPE,
            Level::Error => EVENTLOG_ERROR_TYPE,
        };
        // SAFETY: the handle is open; ptrs holds ptrs.len() NUL-terminated
        // strings that outlive the call; no SID, no raw data.
        let ok = unsafe {
            ReportEventW(
                self.0,
                kind,
                0,
                u32::from(out.def.id),
                null_mut(),
                ptrs.len() as u16,
                0,
                ptrs.as_ptr(),
                null(),
            )
        };
        if ok == 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    }
}

static OPTIONS: Mutex<Option<Options>> = Mutex::new(None);

define_windows_service!(ffi_service_main, service_main);

fn status(state: ServiceState, accept: ServiceControlAccept, code: u32) -> ServiceStatus {
    ServiceStatus {
        service_type: ServiceType::OWN_PROCESS,
        current_state: state,
        controls_accepted: accept,
        exit_code: ServiceExitCode::Win32(code),
        checkpoint: 0,
        wait_hint: Duration::from_secs(5),
        process_id: None,
    }
}

fn service_main(_args: Vec<OsString>) {
    let Some(o) = OPTIONS.lock().ok().and_then(|o| o.clone()) else {
        return;
    };
    let stop = Arc::new(AtomicBool::new(false));
    let why = Arc::new(Mutex::new(String::from("stopped")));
    let (s2, w2) = (stop.clone(), why.clone());
    let handler = move |c| match c {
        ServiceControl::Stop | ServiceControl::Shutdown => {
            if let Ok(mut w) = w2.lock() {
                *w = if c == ServiceControl::Stop {
                    "stop request"
                } else {
                    "system shutdown"
                }
                .into();
            }
            s2.store(true, Ordering::Release);
            ServiceControlHandlerResult::NoError
        }
        ServiceControl::Interrogate => ServiceControlHandlerResult::NoError,
        _ => ServiceControlHandlerResult::NotImplemented,
    };
    let Ok(h) = service_control_handler::register(SERVICE_NAME, handler) else {
        return;
    };
    let _ = h.set_service_status(status(
        ServiceState::Running,
        ServiceControlAccept::STOP | ServiceControlAccept::SHUTDOWN,
        0,
    ));
    let reason = || why.lock().map(|w| w.clone()).unwrap_or_default();
    let code = match crate::serve(&o, Lookup, &mut SensorDriver::new(), &stop, &reason) {
        Ok(_) => 0,
        Err(e) => {
            eprintln!("pipesensor-service: {e}");
            1064 // ERROR_EXCEPTION_IN_SERVICE
        }
    };
    let _ = h.set_service_status(status(
        ServiceState::Stopped,
        ServiceControlAccept::empty(),
        code,
    ));
}

/// Runs a Windows-only command; returns the exit code.
pub fn main(cmd: Cmd) -> i32 {
    match cmd {
        Cmd::Service(o) => {
            if let Ok(mut g) = OPTIONS.lock() {
                *g = Some(o);
            }
            match service_dispatcher::start(SERVICE_NAME, ffi_service_main) {
                Ok(()) => 0,
                Err(e) => {
                    eprintln!("pipesensor-service: not started by the service manager ({e}); use `run` in a console");
                    2
                }
            }
        }
        Cmd::Run(o) => {
            let stop = AtomicBool::new(false);
            match crate::serve(&o, Lookup, &mut SensorDriver::new(), &stop, &|| {
                "ended".into()
            }) {
                Ok(_) => 0,
                Err(e) => {
                    eprintln!("pipesensor-service: {e}");
                    2
                }
            }
        }
        Cmd::Register => report(register_source()),
        Cmd::Unregister => report(unregister_source()),
        Cmd::Messages | Cmd::Provider => 0,
    }
}

fn report(r: Result<(), String>) -> i32 {
    match r {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("pipesensor-service: {e}");
            1
        }
    }
}
