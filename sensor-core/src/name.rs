//! Pipe-name normalization.
//!
//! Sysmon (event ids 17/18) reports pipe names as `\name`. The kernel sees the
//! same pipe under several spellings: `\Device\NamedPipe\name` (a full NT path
//! from `FltGetFileNameInformation`), `\name` (the name relative to the NPFS
//! volume, as in `FILE_OBJECT::FileName` on a create), `\\.\pipe\name` or
//! `\??\pipe\name` (what a user passes to `CreateFileW`, seen by `eval`).
//! Every spelling is turned into `\name` so rules written against Sysmon
//! events match kernel events.
//!
//! Prefixes are matched ASCII-case-insensitively; the name itself is left
//! unchanged (case folding is the matcher's business: rules say whether they
//! are case-insensitive). Cost: linear in the name length; no allocation.

/// Longest normalized name the sensor keeps, in UTF-16 code units.
/// Windows limits a pipe name to 256 characters after `\\.\pipe\`; one more
/// for the leading backslash, rounded up.
pub const MAX_NAME_UNITS: usize = 260;

const BACKSLASH: u16 = b'\\' as u16;

/// Spellings of the NPFS root, longest first. Each is followed by `\` or by
/// the end of the name.
const PREFIXES: [&str; 7] = [
    r"\Device\NamedPipe",
    r"\GLOBAL??\pipe",
    r"\DosDevices\pipe",
    r"\\.\pipe",
    r"\\?\pipe",
    r"\??\pipe",
    r"\pipe",
];

/// Why a name could not be normalized.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum NameError {
    /// The normalized name does not fit the output buffer.
    TooLong,
    /// The name is empty.
    Empty,
}

impl core::fmt::Display for NameError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            NameError::TooLong => f.write_str("pipe name too long"),
            NameError::Empty => f.write_str("empty pipe name"),
        }
    }
}

fn ascii_fold(u: u16) -> u16 {
    if (u16::from(b'A')..=u16::from(b'Z')).contains(&u) {
        u | 0x20
    } else {
        u
    }
}

/// If `name` starts with `prefix` (ASCII case-insensitive) followed by `\`
/// or the end, returns the rest (which then starts with `\` or is empty).
fn strip_one<'n>(name: &'n [u16], prefix: &str) -> Option<&'n [u16]> {
    let p = prefix.as_bytes();
    let (head, rest) = name.split_at_checked(p.len())?;
    let same = head
        .iter()
        .zip(p.iter())
        .all(|(&u, &b)| ascii_fold(u) == ascii_fold(u16::from(b)));
    if !same {
        return None;
    }
    match rest.first() {
        None => Some(rest),
        Some(&BACKSLASH) => Some(rest),
        Some(_) => None,
    }
}

/// Removes one known NPFS-root prefix, if any. The result starts with `\`,
/// is empty (the root itself), or is `name` unchanged.
///
/// `\pipe\x` is treated as a prefix only when `x` is non-empty, because a
/// pipe may itself be called `pipe` (`\pipe` relative to the NPFS root).
pub fn strip_prefix(name: &[u16]) -> &[u16] {
    for p in PREFIXES {
        if let Some(rest) = strip_one(name, p) {
            if p == r"\pipe" && rest.len() <= 1 {
                continue;
            }
            return rest;
        }
    }
    name
}

/// Writes the normalized (`\name`) form of `name` into `out` and returns it.
///
/// # Errors
/// [`NameError::Empty`] for an empty input, [`NameError::TooLong`] when the
/// result does not fit in `out`.
///
/// # Panics
/// Never. Cost: linear in `name.len()`.
pub fn normalize_into<'o>(name: &[u16], out: &'o mut [u16]) -> Result<&'o [u16], NameError> {
    if name.is_empty() {
        return Err(NameError::Empty);
    }
    let tail = strip_prefix(name);
    let needs_lead = tail.first() != Some(&BACKSLASH);
    let lead: &[u16] = if needs_lead { &[BACKSLASH] } else { &[] };
    let len = lead
        .len()
        .checked_add(tail.len())
        .ok_or(NameError::TooLong)?;
    let dst = out.get_mut(..len).ok_or(NameError::TooLong)?;
    let (a, b) = dst.split_at_mut(lead.len());
    a.copy_from_slice(lead);
    b.copy_from_slice(tail);
    Ok(dst)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::string::String;
    use std::vec::Vec;

    fn w(s: &str) -> Vec<u16> {
        s.encode_utf16().collect()
    }
    fn norm(s: &str) -> Result<String, NameError> {
        let mut out = [0u16; MAX_NAME_UNITS];
        normalize_into(&w(s), &mut out).map(|n| String::from_utf16(n).unwrap())
    }

    #[test]
    fn spellings_normalize_to_sysmon_form() {
        for s in [
            r"\Device\NamedPipe\msagent_12",
            r"\device\namedpipe\msagent_12",
            r"\\.\pipe\msagent_12",
            r"\\?\PIPE\msagent_12",
            r"\??\pipe\msagent_12",
            r"\GLOBAL??\pipe\msagent_12",
            r"\DosDevices\pipe\msagent_12",
            r"\pipe\msagent_12",
            r"\msagent_12",
            "msagent_12",
        ] {
            assert_eq!(norm(s).unwrap(), r"\msagent_12", "{s}");
        }
    }

    #[test]
    fn nested_names_and_case_are_kept() {
        assert_eq!(
            norm(r"\Device\NamedPipe\Winsock2\CatalogChangeListener-1f0-0").unwrap(),
            r"\Winsock2\CatalogChangeListener-1f0-0"
        );
        assert_eq!(
            norm(r"\\.\pipe\MSSE-1234-server").unwrap(),
            r"\MSSE-1234-server"
        );
        // Only a whole-component prefix is stripped.
        assert_eq!(
            norm(r"\Device\NamedPipeX\a").unwrap(),
            r"\Device\NamedPipeX\a"
        );
        assert_eq!(norm(r"\pipeline").unwrap(), r"\pipeline");
        // A pipe called "pipe".
        assert_eq!(norm(r"\pipe").unwrap(), r"\pipe");
        assert_eq!(norm(r"\\.\pipe\pipe").unwrap(), r"\pipe");
    }

    #[test]
    fn root_and_errors() {
        assert_eq!(norm(r"\Device\NamedPipe").unwrap(), r"\");
        assert_eq!(norm(r"\Device\NamedPipe\").unwrap(), r"\");
        assert_eq!(norm(""), Err(NameError::Empty));
        let long = "a".repeat(MAX_NAME_UNITS);
        assert_eq!(norm(&long), Err(NameError::TooLong));
        let fits = "a".repeat(MAX_NAME_UNITS - 1);
        assert_eq!(norm(&fits).unwrap().len(), MAX_NAME_UNITS);
        let mut small = [0u16; 2];
        assert_eq!(
            normalize_into(&w(r"\\.\pipe\ab"), &mut small),
            Err(NameError::TooLong)
        );
        assert_eq!(
            normalize_into(&w(r"\\.\pipe\a"), &mut small).unwrap(),
            &w(r"\a")[..]
        );
    }

    #[test]
    fn non_ascii_is_not_folded_into_prefixes() {
        // U+0130 (İ) must not be taken for 'i' in "\Device".
        assert_eq!(
            norm("\\Dev\u{130}ce\\NamedPipe\\a").unwrap(),
            "\\Dev\u{130}ce\\NamedPipe\\a"
        );
        assert_eq!(norm("\\\u{1F600}").unwrap(), "\\\u{1F600}");
    }
}
