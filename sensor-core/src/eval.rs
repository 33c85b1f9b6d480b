//! The one evaluation path: how a raw pipe event becomes what the matcher
//! sees, and its verdict.
//!
//! The driver (its filter callbacks and the EVAL IOCTL) and `pipectl`
//! (`match`, `test`, `replay`, `diff`) all call [`evaluate`] (or
//! [`prepare`], when they list every matching rule), so a name, image,
//! process id and kind give the same verdict everywhere:
//!
//! * the pipe name is normalized as [`crate::name`] defines it
//!   (`\\.\pipe\x`, `\Device\NamedPipe\x`, `x` → `\x`), in place when
//!   only a prefix is stripped, so names of any length are matched in full;
//! * the image path is rewritten to DOS form by [`crate::dospath::to_dos`]
//!   with the caller's drive table (the driver's table from `\??\A:`..`Z:`;
//!   offline tools pass an empty one, which still rewrites `\??\C:\…` and
//!   `\\?\C:\…`); an empty image is no image;
//! * an event whose process id or kind is not known (a test case that sets
//!   none, `pipectl match` without `--pid`) takes [`DEFAULT_PID`] and
//!   [`DEFAULT_KIND`].
//!
//! No allocation, no panic; cost linear in the name and image lengths plus
//! the matcher's (see `channel_parser`).

use crate::dospath::{self, DeviceMap, DosPath};
use crate::name::{normalize_target, NameError};
use crate::proto::MAX_EVAL_IMAGE_UNITS;
use crate::ring::EventKind;
use channel_parser::{ChannelFile, Event, Scratch, Text, Verdict};

/// The process id of an event whose process id is not given (a test case
/// without `pid`, `pipectl match` / `driver eval` without `--pid`, a
/// recorded event without `ProcessId`). 0 is the idle process: no real
/// process creates or opens a pipe with it, so only a rule that says
/// "not pid N" can match on it.
pub const DEFAULT_PID: u32 = 0;

/// The kind of an event whose kind is not given: a create.
pub const DEFAULT_KIND: EventKind = EventKind::Create;

/// Longest name composed in [`Buffers`], in UTF-16 units: a name that
/// needs a leading `\` or a related (root-relative) part added. A name that
/// already starts with `\` once a known root prefix is stripped is matched
/// in place at any length.
pub const NAME_UNITS: usize = 1024;

/// Longest image path rewritten to DOS form, in UTF-16 units (longer ones
/// are matched as given).
pub const IMAGE_UNITS: usize = MAX_EVAL_IMAGE_UNITS;

/// One event as the sensor receives it, before normalization.
#[derive(Debug, Clone, Copy)]
pub struct RawEvent<'e> {
    /// Create or connect.
    pub kind: EventKind,
    /// Process id.
    pub pid: u32,
    /// The pipe name in any spelling [`crate::name`] knows (UTF-16).
    pub name: &'e [u16],
    /// The image path, NT or DOS form (UTF-16), if known.
    pub image: Option<&'e [u16]>,
    /// The requester's user SID in string form (`S-1-5-18`), if known
    /// ([`crate::event::Sid::text`]); an empty one is no user. Rules on
    /// `User` are false without one, as rules on `Image` are without an
    /// image.
    pub user: Option<&'e str>,
}

/// Buffers for the normalized name and the image path in DOS form.
#[derive(Debug, Clone)]
pub struct Buffers {
    name: [u16; NAME_UNITS],
    image: [u16; IMAGE_UNITS],
}

impl Default for Buffers {
    fn default() -> Self {
        Buffers::new()
    }
}

impl Buffers {
    /// Zeroed buffers.
    pub const fn new() -> Buffers {
        Buffers {
            name: [0; NAME_UNITS],
            image: [0; IMAGE_UNITS],
        }
    }
}

/// All the working memory of one evaluation (about 6 KiB: keep it off a
/// kernel stack).
#[derive(Debug, Clone, Default)]
pub struct Work {
    /// The matcher's scratch.
    pub scratch: Scratch,
    /// Name and image buffers.
    pub buffers: Buffers,
}

impl Work {
    /// Fresh working memory.
    pub const fn new() -> Work {
        Work {
            scratch: Scratch::new(),
            buffers: Buffers::new(),
        }
    }
}

/// An event as the matcher sees it.
#[derive(Debug, Clone, Copy)]
pub struct Prepared<'b> {
    /// The normalized name (`\name`).
    pub name: &'b [u16],
    /// The image path and what the DOS rewrite did (`None`: no image).
    pub image: Option<DosPath<'b>>,
    /// Process id.
    pub pid: u32,
    /// Create or connect.
    pub kind: EventKind,
    /// The user SID string (`None`: not known).
    pub user: Option<&'b str>,
}

impl<'b> Prepared<'b> {
    /// The matcher's event.
    pub fn event(&self) -> Event<'b> {
        Event {
            pipe_name: Text::Utf16(self.name),
            image: self.image.map(|i| Text::Utf16(i.path())),
            pid: self.pid,
            kind: match self.kind {
                EventKind::Create => channel_parser::EventKind::Create,
                EventKind::Connect => channel_parser::EventKind::Connect,
            },
            user: self.user.map(Text::Utf8),
        }
    }
}

/// Normalizes the name and rewrites the image (see the module docs).
///
/// # Errors
/// [`NameError::Empty`] for an empty name; [`NameError::TooLong`] only
/// when a leading `\` must be added and the result is longer than
/// [`NAME_UNITS`] (a name that already has one is matched in place at
/// any length). The driver counts such events in `name_errors` and
/// decides them as it decides an event it could not evaluate
/// (`crate::work`: deny in enforce mode, allow in monitor mode).
///
/// # Panics
/// Never. No allocation.
pub fn prepare<'b>(
    drives: &DeviceMap,
    raw: &RawEvent<'b>,
    buffers: &'b mut Buffers,
) -> Result<Prepared<'b>, NameError> {
    prepare_target(drives, &[], raw, buffers)
}

/// [`prepare`] for a create callback's target: `related` is the related
/// file object's name of a relative open (empty otherwise), combined with
/// `raw.name` by [`crate::name::normalize_target`]. The driver's callbacks
/// call this; [`prepare`] is the same with no related name.
///
/// # Errors
/// As [`prepare`]; [`NameError::Empty`] also for the NPFS root itself.
///
/// # Panics
/// Never. No allocation.
pub fn prepare_target<'b>(
    drives: &DeviceMap,
    related: &[u16],
    raw: &RawEvent<'b>,
    buffers: &'b mut Buffers,
) -> Result<Prepared<'b>, NameError> {
    let name = normalize_target(related, raw.name, &mut buffers.name)?;
    let image = raw
        .image
        .filter(|i| !i.is_empty())
        .map(|i| dospath::to_dos(drives, i, &mut buffers.image));
    Ok(Prepared {
        name,
        image,
        pid: raw.pid,
        kind: raw.kind,
        user: raw.user.filter(|u| !u.is_empty()),
    })
}

/// [`prepare`], then the matcher's verdict (how many rules matched, the
/// highest-priority one; format 2 reads the file's DFAs in place).
///
/// # Errors
/// As [`prepare`].
///
/// # Panics
/// Never. No allocation.
pub fn evaluate<'b, 'f>(
    file: &ChannelFile<'f>,
    drives: &DeviceMap,
    raw: &RawEvent<'b>,
    work: &'b mut Work,
) -> Result<(Prepared<'b>, Verdict<'f>), NameError> {
    let Work { scratch, buffers } = work;
    let p = prepare(drives, raw, buffers)?;
    let verdict = file.evaluate(&p.event(), scratch);
    Ok((p, verdict))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::name::MAX_NAME_UNITS;
    use std::boxed::Box;
    use std::vec::Vec;

    fn w(s: &str) -> Vec<u16> {
        s.encode_utf16().collect()
    }

    #[test]
    fn spellings_and_images_are_prepared_as_the_driver_does() {
        let mut map = DeviceMap::new();
        map.insert(b'C', &w(r"\Device\HarddiskVolume3")).unwrap();
        let mut b = Box::new(Buffers::new());
        for (name, image, want_image) in [
            (
                r"\\.\pipe\postex_1",
                r"\Device\HarddiskVolume3\x\a.exe",
                Some(r"C:\x\a.exe"),
            ),
            (r"postex_1", r"\??\C:\x\a.exe", Some(r"C:\x\a.exe")),
            (r"\Device\NamedPipe\postex_1", "", None),
            (r"\postex_1", r"C:\x\a.exe", Some(r"C:\x\a.exe")),
        ] {
            let (n, i) = (w(name), w(image));
            let raw = RawEvent {
                kind: DEFAULT_KIND,
                pid: DEFAULT_PID,
                name: &n,
                image: Some(&i),
                user: None,
            };
            let p = prepare(&map, &raw, &mut b).unwrap();
            assert_eq!(p.name, &w(r"\postex_1")[..], "{name}");
            assert_eq!(
                p.image
                    .map(|d| std::string::String::from_utf16(d.path()).unwrap()),
                want_image.map(std::string::String::from),
                "{image}"
            );
        }
        // Longer than the name buffer: matched in place, in full.
        let long = std::format!(r"\\.\pipe\x-{}", "0".repeat(MAX_NAME_UNITS * 2));
        let l = w(&long);
        let raw = RawEvent {
            kind: DEFAULT_KIND,
            pid: DEFAULT_PID,
            name: &l,
            image: None,
            user: None,
        };
        let p = prepare(&map, &raw, &mut b).unwrap();
        assert_eq!(p.name.len(), MAX_NAME_UNITS * 2 + 3);
        assert_eq!(p.name, &l[8..]);
        // Without a leading backslash it must be composed: too long then.
        let bare = w(&"y".repeat(NAME_UNITS));
        let raw = RawEvent { name: &bare, ..raw };
        assert_eq!(prepare(&map, &raw, &mut b).unwrap_err(), NameError::TooLong);
        let empty: [u16; 0] = [];
        let raw = RawEvent {
            kind: DEFAULT_KIND,
            pid: 0,
            name: &empty,
            image: None,
            user: None,
        };
        assert_eq!(prepare(&map, &raw, &mut b).unwrap_err(), NameError::Empty);
        // The NPFS root itself, in any spelling, is no pipe.
        for root in [r"\\.\pipe\", r"\Device\NamedPipe", "\\"] {
            let r = w(root);
            let raw = RawEvent { name: &r, ..raw };
            assert_eq!(
                prepare(&map, &raw, &mut b).unwrap_err(),
                NameError::Empty,
                "{root}"
            );
        }
        // A relative open from the root, as a callback sees it.
        let (rel, leaf) = (w(r"\Device\NamedPipe\"), w("postex_2"));
        let raw = RawEvent { name: &leaf, ..raw };
        let p = prepare_target(&map, &rel, &raw, &mut b).unwrap();
        assert_eq!(p.name, &w(r"\postex_2")[..]);
    }
}
