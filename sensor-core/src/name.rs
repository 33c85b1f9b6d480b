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
    /// The name is empty, or names the NPFS root itself.
    Empty,
}

impl core::fmt::Display for NameError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            NameError::TooLong => f.write_str("pipe name too long"),
            NameError::Empty => f.write_str("empty pipe name (or the NPFS root itself)"),
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

/// Whether a create names the NPFS root itself rather than a pipe: an
/// empty (or `\`) name, absolute or relative to a root handle. The root
/// is opened to list pipes; it is not a pipe, so no rule applies to it.
pub fn is_root(related: &[u16], name: &[u16]) -> bool {
    let n = if related.is_empty() {
        strip_prefix(name)
    } else {
        name
    };
    let n_root = n.is_empty() || n == [BACKSLASH];
    if related.is_empty() {
        return n_root;
    }
    let r = strip_prefix(related);
    (r.is_empty() || r == [BACKSLASH]) && n_root
}

/// The `\name` form of the target of a create callback: `name` is the
/// target file object's `FileName`; `related` the related file object's
/// `FileName` for a relative open (empty otherwise). Relative to the NPFS
/// root (`related` empty or `\`) the result is `\name`; relative to
/// anything else, `related\name` (NPFS refuses such opens; the sensor
/// still evaluates the full path).
///
/// When the result is a part of `name` (an absolute name, any known root
/// prefix stripped) it is returned without copying, at any length; it is
/// composed in `buf` only when a separator or a related name must be added.
///
/// # Errors
/// [`NameError::Empty`] for the root itself (see [`is_root`]),
/// [`NameError::TooLong`] when a composed name does not fit `buf`.
///
/// # Panics
/// Never. Cost: linear in the input lengths; no allocation.
pub fn normalize_target<'a>(
    related: &[u16],
    name: &'a [u16],
    buf: &'a mut [u16],
) -> Result<&'a [u16], NameError> {
    let mut base = if related.is_empty() {
        &[][..]
    } else {
        strip_prefix(related)
    };
    while let [rest @ .., BACKSLASH] = base {
        base = rest;
    }
    let tail = if related.is_empty() {
        strip_prefix(name)
    } else {
        name
    };
    if base.is_empty() {
        match tail {
            [] | [BACKSLASH] => return Err(NameError::Empty),
            [BACKSLASH, ..] => return Ok(tail),
            _ => {}
        }
    }
    let leaf = tail.strip_prefix(&[BACKSLASH]).unwrap_or(tail);
    let lead: &[u16] = if base.first() == Some(&BACKSLASH) {
        &[]
    } else {
        &[BACKSLASH]
    };
    let sep: &[u16] = if base.is_empty() || leaf.is_empty() {
        &[]
    } else {
        &[BACKSLASH]
    };
    let parts = [lead, base, sep, leaf];
    let len = parts
        .iter()
        .try_fold(0usize, |n, p| n.checked_add(p.len()))
        .ok_or(NameError::TooLong)?;
    let dst = buf.get_mut(..len).ok_or(NameError::TooLong)?;
    let mut rest = &mut *dst;
    for p in parts {
        let (d, r) = rest.split_at_mut(p.len());
        d.copy_from_slice(p);
        rest = r;
    }
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

    fn target(related: &str, name: &[u16], cap: usize) -> Result<Vec<u16>, NameError> {
        let mut buf = std::vec![0u16; cap];
        normalize_target(&w(related), name, &mut buf).map(<[u16]>::to_vec)
    }

    #[test]
    fn callback_targets() {
        let t = |rel: &str, name: &str| {
            target(rel, &w(name), MAX_NAME_UNITS).map(|v| String::from_utf16(&v).unwrap())
        };
        // Absolute (no related file object).
        assert_eq!(t("", r"\postex_1").unwrap(), r"\postex_1");
        assert_eq!(t("", r"\Device\NamedPipe\postex_1").unwrap(), r"\postex_1");
        assert_eq!(t("", "postex_1").unwrap(), r"\postex_1");
        // Relative to the NPFS root, whatever the root handle's name.
        for root in [r"\", r"\Device\NamedPipe", r"\Device\NamedPipe\"] {
            assert_eq!(t(root, "postex_2").unwrap(), r"\postex_2", "{root}");
            assert_eq!(t(root, r"\postex_2").unwrap(), r"\postex_2", "{root}");
            assert_eq!(t(root, ""), Err(NameError::Empty), "{root}");
            assert!(is_root(&w(root), &[]));
            assert!(!is_root(&w(root), &w("x")));
        }
        // Relative to something else: the full path (NPFS refuses it).
        assert_eq!(t(r"\pipeA", "x").unwrap(), r"\pipeA\x");
        assert_eq!(t(r"\pipeA\", "x").unwrap(), r"\pipeA\x");
        assert_eq!(t("pipeA", "x").unwrap(), r"\pipeA\x");
        assert_eq!(t(r"\pipeA", "").unwrap(), r"\pipeA");
        assert!(!is_root(&w(r"\pipeA"), &[]));
        // The root itself.
        for n in ["", r"\", r"\Device\NamedPipe", r"\Device\NamedPipe\"] {
            assert_eq!(t("", n), Err(NameError::Empty), "{n}");
            assert!(is_root(&[], &w(n)), "{n}");
        }
        assert!(!is_root(&[], &w(r"\x")));
    }

    #[test]
    fn absolute_names_are_borrowed_at_any_length() {
        // The longest name a UNICODE_STRING holds: 32767 units.
        let mut long = w(r"\postex_");
        long.resize(32767, u16::from(b'x'));
        let mut buf = [0u16; 4];
        let got = normalize_target(&[], &long, &mut buf).unwrap();
        assert_eq!(got.len(), 32767);
        assert!(core::ptr::eq(got.as_ptr(), long.as_ptr()), "not copied");
        // Embedded NULs and unpaired surrogates are kept as they are.
        let odd = [0x5c, 0x70, 0, 0xD800, 0x61];
        assert_eq!(normalize_target(&[], &odd, &mut buf).unwrap(), &odd[..]);
        // A composed name must fit the buffer.
        let rel = std::vec![u16::from(b'y'); 4];
        assert_eq!(
            normalize_target(&w(r"\"), &rel, &mut buf),
            Err(NameError::TooLong)
        );
        assert_eq!(
            normalize_target(&w(r"\"), &rel[..3], &mut buf).unwrap(),
            &w(r"\yyy")[..]
        );
    }

    #[test]
    fn is_root_agrees_with_normalize_target() {
        let shapes = [
            "",
            r"\",
            "a",
            r"\a",
            r"\Device\NamedPipe",
            r"\Device\NamedPipe\",
            r"\Device\NamedPipe\a",
            r"\\.\pipe\",
            r"\\.\pipe\a",
        ];
        let mut buf = [0u16; MAX_NAME_UNITS];
        for rel in ["", r"\", r"\Device\NamedPipe", r"\Device\NamedPipe\", r"\x"] {
            for name in shapes {
                let (r, n) = (w(rel), w(name));
                let root = is_root(&r, &n);
                let got = normalize_target(&r, &n, &mut buf);
                assert_eq!(
                    root,
                    got == Err(NameError::Empty),
                    "related {rel:?}, name {name:?}: {got:?}"
                );
                if let Ok(t) = got {
                    assert_eq!(t.first(), Some(&BACKSLASH), "{rel:?} {name:?}");
                }
            }
        }
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
