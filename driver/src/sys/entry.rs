//! DriverEntry.

use super::*;

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
    (HOOKS.start)(&Driver(driver), path)
}
