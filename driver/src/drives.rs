//! The drive-letter table: image paths are matched in DOS form.
//!
//! The kernel reports a process's image as an NT path
//! (`\Device\HarddiskVolume3\Windows\x.exe`); Sysmon, and so Sigma and
//! Sysmon rules, use `C:\Windows\x.exe`. At start (DriverEntry,
//! PASSIVE_LEVEL) the targets of the links `\??\A:` .. `\??\Z:` are read
//! into a [`DeviceMap`]; every evaluation then rewrites the image path with
//! it ([`sensor_core::eval::prepare`]) before matching and reports the
//! rewritten path in events. Letters assigned after start (a USB stick
//! plugged in later) are not in the table: such paths stay in NT form.

use crate::globals::drives::*;
use crate::sys::{self, log, Level, STATUS_OBJECT_NAME_NOT_FOUND};
use core::sync::atomic::Ordering;
use sensor_core::dospath::{DeviceMap, DosPath, MAX_TARGET_UNITS};

static EMPTY: DeviceMap = DeviceMap::new();

/// UTF-16 units for `{}` (unpaired surrogates as U+FFFD).
struct Utf16<'a>(&'a [u16]);

impl core::fmt::Display for Utf16<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        for c in char::decode_utf16(self.0.iter().copied()) {
            core::fmt::Write::write_char(f, c.unwrap_or(char::REPLACEMENT_CHARACTER))?;
        }
        Ok(())
    }
}

/// Reads `\??\A:` .. `\??\Z:` into the table and logs it. PASSIVE_LEVEL,
/// once (DriverEntry, before filtering starts and the control device exists).
pub fn build_at_start() {
    let (mut absent, mut unusable) = (0u32, 0u32);
    DRIVES.init(|map| {
        for letter in b'A'..=b'Z' {
            let link = [b'\\', b'?', b'?', b'\\', letter, b':'];
            let name = core::str::from_utf8(&link).unwrap_or("");
            // One unit more than the table keeps, so an over-long target
            // is reported as such rather than cut.
            let mut buf = [0u16; MAX_TARGET_UNITS + 1];
            match sys::query_symbolic_link(name, &mut buf) {
                Ok(target) => match map.insert(letter, target) {
                    Ok(()) => log(
                        Level::Info,
                        format_args!("drive {}: = {}", letter as char, Utf16(target)),
                    ),
                    Err(e) => {
                        unusable += 1;
                        log(
                            Level::Warning,
                            format_args!(
                                "drive {}: = {} not used: {e}",
                                letter as char,
                                Utf16(target)
                            ),
                        );
                    }
                },
                Err(STATUS_OBJECT_NAME_NOT_FOUND) => absent += 1,
                Err(s) => {
                    unusable += 1;
                    log(
                        Level::Warning,
                        format_args!("drive {}: link not readable: {s:#x}", letter as char),
                    );
                }
            }
        }
    });
    let mapped = map().len();
    log(
        if mapped == 0 {
            Level::Warning
        } else {
            Level::Info
        },
        format_args!(
            "drive letters: {mapped} mapped, {absent} without a link, {unusable} unusable{}",
            if mapped == 0 {
                "; image paths stay in NT form"
            } else {
                ""
            }
        ),
    );
}

/// The table (empty before [`build_at_start`]).
pub fn map() -> &'static DeviceMap {
    DRIVES.get().unwrap_or(&EMPTY)
}

/// Counts an image path whose DOS form did not fit the evaluation buffer
/// (it was matched in NT form, see `sensor_core::eval::prepare`).
pub fn note(image: Option<DosPath<'_>>) {
    if let Some(DosPath::TooLong(_)) = image {
        TOO_LONG.fetch_add(1, Ordering::Relaxed);
    }
}

/// Image paths left in NT form because their DOS form did not fit.
pub fn too_long() -> u64 {
    TOO_LONG.load(Ordering::Relaxed)
}
