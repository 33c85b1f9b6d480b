//! UTC times as Sysmon writes them.
//!
//! The driver records FILETIME values (100 ns since 1601-01-01 UTC).
//! Sysmon's `UtcTime` is `yyyy-MM-dd HH:mm:ss.fff` (milliseconds, no zone).

/// 100 ns intervals between 1601-01-01 and 1970-01-01.
pub const FILETIME_UNIX_EPOCH: u64 = 116_444_736_000_000_000;

/// Civil date (year, month 1–12, day 1–31) of a day count since 1970-01-01
/// (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// `yyyy-MM-dd HH:mm:ss.fff` of a FILETIME (sub-millisecond digits are cut,
/// as Sysmon does). Times before 1601 cannot occur (unsigned).
pub fn sysmon_utc(filetime: u64) -> String {
    let total_ms = filetime / 10_000;
    let ms = total_ms % 1000;
    let secs = total_ms / 1000;
    // Seconds since 1601 → days since 1970 (negative before 1970).
    let unix_secs = secs as i64 - (FILETIME_UNIX_EPOCH / 10_000_000) as i64;
    let days = unix_secs.div_euclid(86_400);
    let sod = unix_secs.rem_euclid(86_400);
    let (y, mo, d) = civil_from_days(days);
    format!(
        "{y:04}-{mo:02}-{d:02} {:02}:{:02}:{:02}.{ms:03}",
        sod / 3600,
        (sod / 60) % 60,
        sod % 60
    )
}

/// FILETIME of a Unix time in seconds (for tests and health events).
pub fn filetime_from_unix(secs: u64, nanos: u32) -> u64 {
    FILETIME_UNIX_EPOCH
        .saturating_add(secs.saturating_mul(10_000_000))
        .saturating_add(u64::from(nanos / 100))
}

/// The current time as a FILETIME.
pub fn now_filetime() -> u64 {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    filetime_from_unix(d.as_secs(), d.subsec_nanos())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_instants() {
        assert_eq!(sysmon_utc(FILETIME_UNIX_EPOCH), "1970-01-01 00:00:00.000");
        assert_eq!(sysmon_utc(0), "1601-01-01 00:00:00.000");
        // The CrowdStrike channel file 291 update: 2024-07-19 04:09 UTC.
        let t = filetime_from_unix(1_721_362_140, 123_456_789);
        assert_eq!(sysmon_utc(t), "2024-07-19 04:09:00.123");
        // Leap day and the end of a leap year.
        assert_eq!(
            sysmon_utc(filetime_from_unix(951_782_400, 0)),
            "2000-02-29 00:00:00.000"
        );
        assert_eq!(
            sysmon_utc(filetime_from_unix(1_735_689_599, 999_999_999)),
            "2024-12-31 23:59:59.999"
        );
        // 1900 is not a leap year: 1900-02-28 is followed by 1900-03-01.
        let feb28_1900 = FILETIME_UNIX_EPOCH - 2_203_977_600 * 10_000_000;
        assert_eq!(sysmon_utc(feb28_1900), "1900-02-28 00:00:00.000");
        assert_eq!(
            sysmon_utc(feb28_1900 + 86_400 * 10_000_000),
            "1900-03-01 00:00:00.000"
        );
        // The largest FILETIME is in year 60056: five digits, no panic.
        assert!(sysmon_utc(u64::MAX).starts_with("60056-"));
    }

    #[test]
    fn every_day_for_four_centuries_is_consecutive() {
        let mut prev = sysmon_utc(FILETIME_UNIX_EPOCH - 86_400 * 10_000_000 * 73_000);
        for day in -72_999i64..73_000 {
            let t = (FILETIME_UNIX_EPOCH as i64 + day * 86_400 * 10_000_000) as u64;
            let s = sysmon_utc(t);
            assert!(s > prev, "{s} after {prev}");
            assert!(s.ends_with(" 00:00:00.000"));
            prev = s;
        }
    }
}
