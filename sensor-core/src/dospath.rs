//! Image paths in DOS form: `\Device\HarddiskVolume3\Windows\x.exe` →
//! `C:\Windows\x.exe`.
//!
//! In the kernel the image path of a process (`SeLocateProcessImageName`)
//! is an NT path that names the volume's device. Sysmon reports — and Sigma
//! and Sysmon rules are written against — the DOS form with a drive letter
//! (`Image|startswith: 'C:\Windows\'`). The driver reads the targets of the
//! drive-letter links `\??\A:` .. `\??\Z:` once at start into a
//! [`DeviceMap`]; [`to_dos`] then rewrites each image path before matching.
//!
//! Rules of the rewrite (in this order, first that applies):
//!
//! 1. A DOS-device spelling of a drive path, `\??\C:\x`, `\\?\C:\x`,
//!    `\GLOBAL??\C:\x` or `\DosDevices\C:\x` (prefix ASCII
//!    case-insensitive, then a letter, `:`, and `\` or the end) becomes
//!    `C:\x`, the letter upper-cased.
//! 2. A path that starts with a mapped device name, compared
//!    case-insensitively (the matcher's simple upper-case folding, one
//!    UTF-16 unit against one, as the object manager compares names), and
//!    only at a path-component boundary (the device name is followed by `\`
//!    or the end: `\Device\HarddiskVolume1` does not take
//!    `\Device\HarddiskVolume10\x`) becomes the drive letter, `:` and the
//!    rest. When several device names match, the longest wins.
//! 3. Anything else stays as it is.
//!
//! The result goes into a caller-provided buffer. When it does not fit, the
//! original path is returned ([`DosPath::TooLong`]): never a truncated path.
//! Nothing allocates or panics; cost is linear in the path length (at most
//! [`MAX_DRIVES`] prefix comparisons, each bounded by [`MAX_TARGET_UNITS`]).

use channel_parser::fold_char;

/// Drive letters `A`..`Z`: the table's capacity.
pub const MAX_DRIVES: usize = 26;

/// Longest device name (link target) the table keeps, in UTF-16 units.
/// Volume devices are ~25 units (`\Device\HarddiskVolume123`).
pub const MAX_TARGET_UNITS: usize = 128;

const BACKSLASH: u16 = b'\\' as u16;
const COLON: u16 = b':' as u16;

/// Spellings of the DOS-devices directory that may precede `C:` in a path.
const DOS_PREFIXES: [&str; 4] = [r"\??\", r"\\?\", r"\GLOBAL??\", r"\DosDevices\"];

/// Why [`DeviceMap::insert`] refused an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum MapError {
    /// The letter is not `A`..`Z` (either case).
    BadLetter,
    /// The letter is already mapped.
    Duplicate,
    /// The target is empty (or only backslashes).
    EmptyTarget,
    /// The target does not start with `\` (not an NT path).
    NotAbsolute,
    /// The target is itself a DOS path (`\??\C:\dir`, a `subst` drive):
    /// kernel image paths name the real device, never such a target.
    DosTarget,
    /// The target is longer than [`MAX_TARGET_UNITS`].
    TargetTooLong,
}

impl core::fmt::Display for MapError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            MapError::BadLetter => "not a drive letter",
            MapError::Duplicate => "drive letter already mapped",
            MapError::EmptyTarget => "empty link target",
            MapError::NotAbsolute => "link target is not an NT path",
            MapError::DosTarget => "link target is a DOS path (subst drive)",
            MapError::TargetTooLong => "link target too long",
        })
    }
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    /// Units of `target` in use; 0: the letter is not mapped.
    len: usize,
    target: [u16; MAX_TARGET_UNITS],
}

impl Entry {
    const EMPTY: Entry = Entry {
        len: 0,
        target: [0; MAX_TARGET_UNITS],
    };
    fn target(&self) -> &[u16] {
        self.target.get(..self.len).unwrap_or(&[])
    }
}

/// Drive letter → NT device name, one slot per letter (fixed capacity,
/// no allocation). Built once; read by every evaluation.
#[derive(Debug, Clone)]
pub struct DeviceMap {
    entries: [Entry; MAX_DRIVES],
}

impl Default for DeviceMap {
    fn default() -> Self {
        DeviceMap::new()
    }
}

fn letter_index(letter: u8) -> Option<usize> {
    let up = letter.to_ascii_uppercase();
    up.is_ascii_uppercase()
        .then(|| usize::from(up.wrapping_sub(b'A')))
}

fn index_letter(i: usize) -> u8 {
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZ"
        .get(i)
        .copied()
        .unwrap_or(b'?')
}

/// ASCII-case-insensitive "starts with `prefix`"; returns the rest.
fn strip_ascii<'p>(path: &'p [u16], prefix: &str) -> Option<&'p [u16]> {
    let p = prefix.as_bytes();
    let (head, rest) = path.split_at_checked(p.len())?;
    head.iter()
        .zip(p.iter())
        .all(|(&u, &b)| u8::try_from(u).is_ok_and(|a| a.eq_ignore_ascii_case(&b)))
        .then_some(rest)
}

/// One UTF-16 unit against another under the matcher's simple upper-case
/// folding. Surrogates (not characters on their own) compare exactly.
fn same_unit(a: u16, b: u16) -> bool {
    if a == b {
        return true;
    }
    match (char::from_u32(u32::from(a)), char::from_u32(u32::from(b))) {
        (Some(x), Some(y)) => fold_char(x) == fold_char(y),
        _ => false,
    }
}

/// If `path` starts with `device` (case-insensitive) followed by `\` or the
/// end, returns the rest (empty or starting with `\`).
fn strip_device<'p>(path: &'p [u16], device: &[u16]) -> Option<&'p [u16]> {
    if device.is_empty() {
        return None;
    }
    let (head, rest) = path.split_at_checked(device.len())?;
    if !head.iter().zip(device).all(|(&a, &b)| same_unit(a, b)) {
        return None;
    }
    match rest.first() {
        None | Some(&BACKSLASH) => Some(rest),
        Some(_) => None,
    }
}

/// `C:` followed by `\` or the end: the letter (upper case) and the rest.
fn drive_spec(path: &[u16]) -> Option<(u8, &[u16])> {
    let (&l, rest) = path.split_first()?;
    let (&c, rest) = rest.split_first()?;
    let letter = u8::try_from(l).ok()?.to_ascii_uppercase();
    if !letter.is_ascii_uppercase() || c != COLON {
        return None;
    }
    match rest.first() {
        None | Some(&BACKSLASH) => Some((letter, rest)),
        Some(_) => None,
    }
}

impl DeviceMap {
    /// An empty table.
    pub const fn new() -> DeviceMap {
        DeviceMap {
            entries: [Entry::EMPTY; MAX_DRIVES],
        }
    }

    /// Maps drive `letter` (`A`..`Z`, either case) to the NT device name
    /// `target` (the target of the link `\??\C:`). Trailing backslashes of
    /// the target are dropped.
    ///
    /// # Errors
    /// See [`MapError`]; the table is unchanged on error.
    pub fn insert(&mut self, letter: u8, target: &[u16]) -> Result<(), MapError> {
        let i = letter_index(letter).ok_or(MapError::BadLetter)?;
        let mut t = target;
        while let Some((&BACKSLASH, head)) = t.split_last() {
            t = head;
        }
        if t.is_empty() {
            return Err(MapError::EmptyTarget);
        }
        if t.first() != Some(&BACKSLASH) {
            return Err(MapError::NotAbsolute);
        }
        if DOS_PREFIXES.iter().any(|p| strip_ascii(t, p).is_some()) {
            return Err(MapError::DosTarget);
        }
        if t.len() > MAX_TARGET_UNITS {
            return Err(MapError::TargetTooLong);
        }
        let e = self.entries.get_mut(i).ok_or(MapError::BadLetter)?;
        if e.len != 0 {
            return Err(MapError::Duplicate);
        }
        let dst = e.target.get_mut(..t.len()).ok_or(MapError::TargetTooLong)?;
        dst.copy_from_slice(t);
        e.len = t.len();
        Ok(())
    }

    /// The device name of drive `letter`, if mapped.
    pub fn get(&self, letter: u8) -> Option<&[u16]> {
        let e = self.entries.get(letter_index(letter)?)?;
        (e.len != 0).then(|| e.target())
    }

    /// Mapped drives, `(letter, device name)`, in letter order.
    pub fn iter(&self) -> impl Iterator<Item = (u8, &[u16])> + '_ {
        self.entries
            .iter()
            .enumerate()
            .filter(|(_, e)| e.len != 0)
            .map(|(i, e)| (index_letter(i), e.target()))
    }

    /// Number of mapped drives.
    pub fn len(&self) -> usize {
        self.entries.iter().filter(|e| e.len != 0).count()
    }

    /// Whether no drive is mapped.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The drive whose device name starts `path` at a component boundary
    /// (the longest such name; the lowest letter among equals), and the
    /// rest of the path (empty or starting with `\`).
    pub fn lookup<'p>(&self, path: &'p [u16]) -> Option<(u8, &'p [u16])> {
        let mut best: Option<(u8, &'p [u16])> = None;
        for (letter, device) in self.iter() {
            if let Some(rest) = strip_device(path, device) {
                // Shorter rest = longer device name.
                if best.is_none_or(|(_, r)| rest.len() < r.len()) {
                    best = Some((letter, rest));
                }
            }
        }
        best
    }
}

/// What [`to_dos`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DosPath<'a> {
    /// No known prefix: the path as given.
    Unchanged(&'a [u16]),
    /// The DOS form, in the caller's buffer.
    Rewritten(&'a [u16]),
    /// A known prefix, but the DOS form does not fit the buffer: the path
    /// as given (never a truncated one).
    TooLong(&'a [u16]),
}

impl<'a> DosPath<'a> {
    /// The path to match and report.
    pub fn path(&self) -> &'a [u16] {
        match *self {
            DosPath::Unchanged(p) | DosPath::Rewritten(p) | DosPath::TooLong(p) => p,
        }
    }
}

/// Rewrites `path` (UTF-16 units) into its DOS form in `out`; see the
/// module documentation for the rules.
///
/// # Panics
/// Never. Cost: linear in `path.len()` (bounded prefix comparisons, one copy).
pub fn to_dos<'a>(map: &DeviceMap, path: &'a [u16], out: &'a mut [u16]) -> DosPath<'a> {
    let dos = DOS_PREFIXES
        .iter()
        .find_map(|p| strip_ascii(path, p).and_then(drive_spec));
    let Some((letter, rest)) = dos.or_else(|| map.lookup(path)) else {
        return DosPath::Unchanged(path);
    };
    let Some(len) = rest.len().checked_add(2) else {
        return DosPath::TooLong(path);
    };
    let Some(dst) = out.get_mut(..len) else {
        return DosPath::TooLong(path);
    };
    let (drive, tail) = dst.split_at_mut(2);
    drive.copy_from_slice(&[u16::from(letter), COLON]);
    tail.copy_from_slice(rest);
    DosPath::Rewritten(dst)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::borrow::ToOwned;
    use std::format;
    use std::string::String;
    use std::vec::Vec;

    fn w(s: &str) -> Vec<u16> {
        s.encode_utf16().collect()
    }

    fn wine_map() -> DeviceMap {
        let mut m = DeviceMap::new();
        m.insert(b'C', &w(r"\Device\HarddiskVolume1")).unwrap();
        m.insert(b'z', &w(r"\Device\HarddiskVolume2")).unwrap();
        m
    }

    /// (kind, result) with a 1024-unit buffer.
    fn dos(m: &DeviceMap, p: &str) -> (&'static str, String) {
        let mut out = [0u16; 1024];
        let path = w(p);
        let r = to_dos(m, &path, &mut out);
        let kind = match r {
            DosPath::Unchanged(_) => "unchanged",
            DosPath::Rewritten(_) => "rewritten",
            DosPath::TooLong(_) => "too long",
        };
        (kind, String::from_utf16(r.path()).unwrap())
    }

    #[test]
    fn device_paths_become_drive_paths() {
        let m = wine_map();
        for (nt, want) in [
            (
                r"\Device\HarddiskVolume1\Windows\System32\cmd.exe",
                r"C:\Windows\System32\cmd.exe",
            ),
            (
                r"\Device\HarddiskVolume2\usr\bin\x.exe",
                r"Z:\usr\bin\x.exe",
            ),
            (r"\device\harddiskvolume1\Temp\a.exe", r"C:\Temp\a.exe"),
            (r"\DEVICE\HARDDISKVOLUME1\", r"C:\"),
            (r"\Device\HarddiskVolume1", "C:"),
        ] {
            assert_eq!(dos(&m, nt), ("rewritten", want.into()), "{nt}");
        }
    }

    #[test]
    fn prefix_only_at_a_component_boundary() {
        let mut m = DeviceMap::new();
        m.insert(b'C', &w(r"\Device\HarddiskVolume1")).unwrap();
        for p in [
            r"\Device\HarddiskVolume10\Windows\x.exe",
            r"\Device\HarddiskVolume1x\x.exe",
            r"\Device\HarddiskVolume",
            r"\Device\HarddiskVolume\x.exe",
            r"\Device\Harddisk",
        ] {
            assert_eq!(dos(&m, p), ("unchanged", p.into()), "{p}");
        }
        // Both mapped: each path goes to its own volume, whatever the order.
        m.insert(b'D', &w(r"\Device\HarddiskVolume10")).unwrap();
        assert_eq!(dos(&m, r"\Device\HarddiskVolume10\x.exe").1, r"D:\x.exe");
        assert_eq!(dos(&m, r"\Device\HarddiskVolume1\x.exe").1, r"C:\x.exe");
    }

    #[test]
    fn longest_device_name_wins() {
        let mut m = DeviceMap::new();
        m.insert(b'M', &w(r"\Device\Mup\server\share")).unwrap();
        m.insert(b'N', &w(r"\Device\Mup")).unwrap();
        assert_eq!(dos(&m, r"\Device\Mup\server\share\a.exe").1, r"M:\a.exe");
        assert_eq!(dos(&m, r"\Device\Mup\other\b.exe").1, r"N:\other\b.exe");
        // Equal names: the lower letter.
        let mut m = DeviceMap::new();
        m.insert(b'Y', &w(r"\Device\CdRom0")).unwrap();
        m.insert(b'E', &w(r"\Device\CdRom0")).unwrap();
        assert_eq!(dos(&m, r"\Device\CdRom0\setup.exe").1, r"E:\setup.exe");
    }

    #[test]
    fn dos_device_spellings_normalize() {
        let m = DeviceMap::new();
        for p in [
            r"\??\C:\Windows\x.exe",
            r"\\?\C:\Windows\x.exe",
            r"\??\c:\Windows\x.exe",
            r"\GLOBAL??\C:\Windows\x.exe",
            r"\global??\C:\Windows\x.exe",
            r"\DosDevices\C:\Windows\x.exe",
        ] {
            assert_eq!(dos(&m, p), ("rewritten", r"C:\Windows\x.exe".into()), "{p}");
        }
        assert_eq!(dos(&m, r"\??\D:").1, "D:");
        // Not a drive: left alone.
        for p in [
            r"\??\UNC\server\share\x.exe",
            r"\??\CC:\x",
            r"\??\C:x.exe",
            r"\??\1:\x",
            r"\??\pipe\x",
            r"\\.\C:\x.exe",
            r"C:\Windows\x.exe",
            r"\Windows\x.exe",
            r"x.exe",
            "",
        ] {
            assert_eq!(dos(&m, p), ("unchanged", p.into()), "{p}");
        }
    }

    #[test]
    fn unknown_devices_stay() {
        let m = wine_map();
        for p in [
            r"\Device\HarddiskVolume3\Windows\x.exe",
            r"\Device\Mup\server\share\x.exe",
            r"\SystemRoot\System32\smss.exe",
        ] {
            assert_eq!(dos(&m, p), ("unchanged", p.into()), "{p}");
        }
        assert_eq!(
            dos(&DeviceMap::new(), r"\Device\HarddiskVolume1\x.exe").0,
            "unchanged"
        );
    }

    #[test]
    fn case_insensitive_beyond_ascii_surrogates_exact() {
        let mut m = DeviceMap::new();
        m.insert(b'R', &w("\\Device\\Räm\u{10400}disk")).unwrap();
        assert_eq!(dos(&m, "\\DEVICE\\RÄM\u{10400}DISK\\x.exe").1, r"R:\x.exe");
        // U+10428 is the lower case of U+10400, but a surrogate pair is
        // compared unit by unit (as NT's upcase table does): no match.
        assert_eq!(dos(&m, "\\Device\\Räm\u{10428}disk\\x.exe").0, "unchanged");
        // A lone surrogate in the path does not confuse the comparison.
        let mut p = w(r"\Device\Räm");
        p.push(0xD801);
        p.extend(w(r"disk\x.exe"));
        let mut out = [0u16; 64];
        assert!(matches!(to_dos(&m, &p, &mut out), DosPath::Unchanged(_)));
    }

    #[test]
    fn long_paths() {
        let m = wine_map();
        // The kernel's limit: 32,767 units.
        let tail = "\\".to_owned() + &"d".repeat(32_767 - 24);
        let nt = w(&(r"\Device\HarddiskVolume1".to_owned() + &tail));
        assert_eq!(nt.len(), 32_767);
        let mut out = std::vec![0u16; 32_767];
        let r = to_dos(&m, &nt, &mut out);
        let DosPath::Rewritten(p) = r else {
            panic!("{r:?}")
        };
        assert_eq!(p.len(), 2 + tail.len());
        assert_eq!(String::from_utf16(p).unwrap(), "C:".to_owned() + &tail);
    }

    #[test]
    fn buffer_too_small_falls_back_to_the_original() {
        let m = wine_map();
        let nt = w(r"\Device\HarddiskVolume1\Windows\x.exe");
        let dos_len = r"C:\Windows\x.exe".len();
        for n in [0, 1, 2, dos_len - 1] {
            let mut out = std::vec![0xAAAAu16; n];
            let r = to_dos(&m, &nt, &mut out);
            assert_eq!(r, DosPath::TooLong(&nt), "buffer {n}");
            assert_eq!(r.path(), &nt[..]);
        }
        let mut out = std::vec![0u16; dos_len];
        assert_eq!(
            String::from_utf16(to_dos(&m, &nt, &mut out).path()).unwrap(),
            r"C:\Windows\x.exe"
        );
        // The same for the \??\ form.
        let p = w(r"\??\C:\abc");
        let mut out = [0u16; 5];
        assert_eq!(to_dos(&m, &p, &mut out), DosPath::TooLong(&p));
        let mut out = [0u16; 6];
        assert_eq!(to_dos(&m, &p, &mut out), DosPath::Rewritten(&w(r"C:\abc")));
    }

    #[test]
    fn insert_checks() {
        let mut m = DeviceMap::new();
        let v1 = w(r"\Device\HarddiskVolume1");
        assert_eq!(m.insert(b'@', &v1), Err(MapError::BadLetter));
        assert_eq!(m.insert(b'[', &v1), Err(MapError::BadLetter));
        assert_eq!(m.insert(b'1', &v1), Err(MapError::BadLetter));
        assert_eq!(m.insert(b'c', &[]), Err(MapError::EmptyTarget));
        assert_eq!(m.insert(b'c', &w(r"\\")), Err(MapError::EmptyTarget));
        assert_eq!(m.insert(b'c', &w("Device")), Err(MapError::NotAbsolute));
        assert_eq!(m.insert(b'c', &w(r"\??\C:\dir")), Err(MapError::DosTarget));
        assert_eq!(
            m.insert(b'c', &w(r"\DosDevices\C:\dir")),
            Err(MapError::DosTarget)
        );
        let long = w(&("\\".to_owned() + &"v".repeat(MAX_TARGET_UNITS)));
        assert_eq!(m.insert(b'c', &long), Err(MapError::TargetTooLong));
        assert!(m.is_empty());
        let fits = w(&("\\".to_owned() + &"v".repeat(MAX_TARGET_UNITS - 1)));
        m.insert(b'v', &fits).unwrap();
        // Trailing backslashes are dropped: the boundary check still works.
        m.insert(b'c', &w(r"\Device\HarddiskVolume1\")).unwrap();
        assert_eq!(m.get(b'C'), Some(&v1[..]));
        assert_eq!(m.insert(b'C', &v1), Err(MapError::Duplicate));
        assert_eq!(m.get(b'D'), None);
        assert_eq!(m.get(b'!'), None);
        assert_eq!(m.len(), 2);
        let letters: Vec<u8> = m.iter().map(|(l, _)| l).collect();
        assert_eq!(letters, b"CV");
        assert_eq!(dos(&m, r"\Device\HarddiskVolume1\x").1, r"C:\x");
    }

    #[test]
    fn every_letter_fits() {
        let mut m = DeviceMap::new();
        for (i, l) in (b'a'..=b'z').enumerate() {
            m.insert(l, &w(&format!(r"\Device\HarddiskVolume{i}")))
                .unwrap();
        }
        assert_eq!(m.len(), MAX_DRIVES);
        assert_eq!(dos(&m, r"\Device\HarddiskVolume25\x").1, r"Z:\x");
        assert_eq!(dos(&m, r"\Device\HarddiskVolume2\x").1, r"C:\x");
        assert_eq!(dos(&m, r"\Device\HarddiskVolume26\x").0, "unchanged");
    }

    #[test]
    fn result_matches_a_sigma_style_rule_form() {
        // The rewritten path is what `Image|startswith: 'C:\Windows\'` tests.
        let m = wine_map();
        let (_, p) = dos(&m, r"\Device\HarddiskVolume1\Windows\System32\rundll32.exe");
        assert!(p.to_ascii_uppercase().starts_with(r"C:\WINDOWS\"));
    }
}
