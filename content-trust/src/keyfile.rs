//! Key files: the text form of content-signing keys, read by `pipectl`
//! (`keygen`, `compile --sign`, `verify --key`) and by the driver's build
//! script (`driver/keys/*.pub`).
//!
//! A public key file and a secret key file cannot be mistaken for each
//! other: each starts with its own header line and names its key bytes with
//! its own word.
//!
//! ```text
//! PIPE-SENSOR PUBLIC KEY
//! id 1a2b3c4d5e6f7a8b
//! public 3b6a27bcceb6a42d62a3a8d02a6f0d73653215771de243a63ac048a18b59da29
//! ```
//!
//! ```text
//! PIPE-SENSOR SECRET KEY
//! # Signs channel files. Keep this file offline; never copy it into driver/keys.
//! id 1a2b3c4d5e6f7a8b
//! seed 9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60
//! ```
//!
//! Lines are trimmed; empty lines and lines starting with `#` are skipped.
//! `id` (the key id of the public key, [`crate::key_id`]) is optional when
//! reading and always written; a public file whose `id` does not match its
//! key is refused. A secret file's `id` can only be checked by deriving the
//! public key ([`KeyFile::Secret`] returns it for the caller to check).
//!
//! Files written by `pipectl keygen` before this format (one line of 64 hex
//! digits, the same for both halves) are refused with
//! [`KeyFileError::Legacy`], whose message says how to convert them.
//!
//! No allocation, no panic, `no_std`.

use crate::{key_id, KeyId};

/// First line of a public key file.
pub const PUBLIC_HEADER: &str = "PIPE-SENSOR PUBLIC KEY";
/// First line of a secret key file.
pub const SECRET_HEADER: &str = "PIPE-SENSOR SECRET KEY";
/// The comment line a secret key file carries.
pub const SECRET_COMMENT: &str =
    "# Signs channel files. Keep this file offline; never copy it into driver/keys.";

/// What a key file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyFile {
    /// An Ed25519 public key (its `id` line, if any, matched it).
    Public {
        /// The key.
        public_key: [u8; 32],
    },
    /// An Ed25519 secret key (the 32-byte seed).
    Secret {
        /// The seed.
        seed: [u8; 32],
        /// The `id` line, if the file has one (the caller checks it against
        /// the public key it derives).
        id: Option<KeyId>,
    },
}

/// Which kind of key a caller expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// `PIPE-SENSOR PUBLIC KEY`.
    Public,
    /// `PIPE-SENSOR SECRET KEY`.
    Secret,
}

impl KeyKind {
    /// `public` / `secret`.
    pub fn name(self) -> &'static str {
        match self {
            KeyKind::Public => "public",
            KeyKind::Secret => "secret",
        }
    }
}

impl KeyFile {
    /// Which kind of key this is.
    pub fn kind(&self) -> KeyKind {
        match self {
            KeyFile::Public { .. } => KeyKind::Public,
            KeyFile::Secret { .. } => KeyKind::Secret,
        }
    }
}

/// Why a key file was not read. Line numbers count from 1.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum KeyFileError {
    /// One line of 64 hex digits: the format of `pipectl keygen` before key
    /// files had headers, in which secret and public files look alike.
    #[error("a key file without a header (64 hex digits, the format pipectl wrote before key files had a header line): it cannot be told whether this is a secret or a public key. Rewrite the pair with `pipectl keygen --upgrade PREFIX` (it checks that PREFIX.pub is the public half of PREFIX.key)")]
    Legacy,
    /// The file has no lines at all (or only comments).
    #[error(
        "empty key file (expected the line `PIPE-SENSOR PUBLIC KEY` or `PIPE-SENSOR SECRET KEY`)"
    )]
    Empty,
    /// The first line is not a key file header.
    #[error("line {line}: not a pipe-sensor key file (expected the line `PIPE-SENSOR PUBLIC KEY` or `PIPE-SENSOR SECRET KEY`)")]
    NoHeader {
        /// The line.
        line: u32,
    },
    /// A line is not `word value`, or names a word this kind of file does not have.
    #[error("line {line}: unexpected `{word}` ({expected})")]
    UnknownLine {
        /// The line.
        line: u32,
        /// Its first word (up to 16 bytes of it).
        word: Word,
        /// What the file may contain.
        expected: &'static str,
    },
    /// A value is not the expected number of hex digits.
    #[error("line {line}: `{what}` must be {digits} hex digits")]
    BadHex {
        /// The line.
        line: u32,
        /// Which value.
        what: &'static str,
        /// How many digits it must have.
        digits: u32,
    },
    /// A word appears twice.
    #[error("line {line}: `{what}` given twice")]
    Duplicate {
        /// The line.
        line: u32,
        /// Which word.
        what: &'static str,
    },
    /// The key bytes are missing.
    #[error("no `{what}` line")]
    Missing {
        /// Which word.
        what: &'static str,
    },
    /// The `id` line does not match the key.
    #[error(
        "the `id` line says {stated} but the key's id is {actual}: the file was edited or mixed up"
    )]
    IdMismatch {
        /// What the file says.
        stated: KeyId,
        /// The id of the key in the file.
        actual: KeyId,
    },
    /// The caller wanted the other kind of key.
    #[error("this is a {found} key file; a {wanted} key is needed here{hint}")]
    WrongKind {
        /// What the file holds.
        found: &'static str,
        /// What the caller needs.
        wanted: &'static str,
        /// A hint for the usual mix-up.
        hint: &'static str,
    },
}

/// A short word from a key file line, for error messages (no allocation).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Word {
    bytes: [u8; 16],
    len: u8,
}

impl Word {
    fn new(s: &str) -> Word {
        let mut w = Word {
            bytes: [0; 16],
            len: 0,
        };
        for (i, c) in s.char_indices() {
            let end = i.saturating_add(c.len_utf8());
            if end > w.bytes.len() {
                break;
            }
            if let (Some(d), Some(src)) = (w.bytes.get_mut(i..end), s.as_bytes().get(i..end)) {
                d.copy_from_slice(src);
                w.len = end as u8;
            }
        }
        w
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        core::str::from_utf8(self.bytes.get(..usize::from(self.len)).unwrap_or(&[])).unwrap_or("")
    }
}

impl core::fmt::Debug for Word {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        core::fmt::Debug::fmt(self.as_str(), f)
    }
}

impl core::fmt::Display for Word {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Decodes exactly `2 * N` hex digits (either case).
fn hex<const N: usize>(s: &str) -> Option<[u8; N]> {
    let b = s.as_bytes();
    if b.len() != N.checked_add(N)? || !b.iter().all(u8::is_ascii_hexdigit) {
        return None;
    }
    let mut out = [0u8; N];
    for (o, pair) in out.iter_mut().zip(b.chunks_exact(2)) {
        *o = u8::from_str_radix(core::str::from_utf8(pair).ok()?, 16).ok()?;
    }
    Some(out)
}

/// Reads a key file.
///
/// # Errors
/// [`KeyFileError`]: which line is wrong and how; [`KeyFileError::Legacy`]
/// for files without a header.
///
/// # Panics
/// Never. Allocates nothing; linear in the text.
pub fn parse(text: &str) -> Result<KeyFile, KeyFileError> {
    let mut lines = (1u32..)
        .zip(text.lines())
        .map(|(n, l)| (n, l.trim()))
        .filter(|(_, l)| !l.is_empty() && !l.starts_with('#'));
    let (first_line, header) = lines.next().ok_or(KeyFileError::Empty)?;
    let kind = match header {
        PUBLIC_HEADER => KeyKind::Public,
        SECRET_HEADER => KeyKind::Secret,
        h if hex::<32>(h).is_some() => return Err(KeyFileError::Legacy),
        _ => return Err(KeyFileError::NoHeader { line: first_line }),
    };
    let (key_word, expected) = match kind {
        KeyKind::Public => ("public", "a public key file has `id` and `public` lines"),
        KeyKind::Secret => ("seed", "a secret key file has `id` and `seed` lines"),
    };
    let mut id: Option<KeyId> = None;
    let mut key: Option<[u8; 32]> = None;
    for (line, l) in lines {
        let (word, value) = l.split_once(char::is_whitespace).unwrap_or((l, ""));
        let value = value.trim();
        if word == "id" {
            if id.is_some() {
                return Err(KeyFileError::Duplicate { line, what: "id" });
            }
            id = Some(KeyId(hex::<8>(value).ok_or(KeyFileError::BadHex {
                line,
                what: "id",
                digits: 16,
            })?));
        } else if word == key_word {
            if key.is_some() {
                return Err(KeyFileError::Duplicate {
                    line,
                    what: key_word,
                });
            }
            key = Some(hex::<32>(value).ok_or(KeyFileError::BadHex {
                line,
                what: key_word,
                digits: 64,
            })?);
        } else {
            return Err(KeyFileError::UnknownLine {
                line,
                word: Word::new(word),
                expected,
            });
        }
    }
    let key = key.ok_or(KeyFileError::Missing { what: key_word })?;
    match kind {
        KeyKind::Public => {
            let actual = key_id(&key);
            match id {
                Some(stated) if stated != actual => {
                    Err(KeyFileError::IdMismatch { stated, actual })
                }
                _ => Ok(KeyFile::Public { public_key: key }),
            }
        }
        KeyKind::Secret => Ok(KeyFile::Secret { seed: key, id }),
    }
}

/// Reads a key file that must hold a public key.
///
/// # Errors
/// As [`parse`], and [`KeyFileError::WrongKind`] for a secret key file.
pub fn parse_public(text: &str) -> Result<[u8; 32], KeyFileError> {
    match parse(text)? {
        KeyFile::Public { public_key } => Ok(public_key),
        KeyFile::Secret { .. } => Err(KeyFileError::WrongKind {
            found: "secret",
            wanted: "public",
            hint: " (give the .pub file; a secret key must never be handed to a verifier or built into the driver)",
        }),
    }
}

/// Reads a key file that must hold a secret key; returns the seed and the
/// stated id.
///
/// # Errors
/// As [`parse`], and [`KeyFileError::WrongKind`] for a public key file.
pub fn parse_secret(text: &str) -> Result<([u8; 32], Option<KeyId>), KeyFileError> {
    match parse(text)? {
        KeyFile::Secret { seed, id } => Ok((seed, id)),
        KeyFile::Public { .. } => Err(KeyFileError::WrongKind {
            found: "public",
            wanted: "secret",
            hint: " to sign (give the .key file written by `pipectl keygen`; the .pub file only verifies)",
        }),
    }
}

fn write_hex(out: &mut impl core::fmt::Write, bytes: &[u8]) -> core::fmt::Result {
    for b in bytes {
        write!(out, "{b:02x}")?;
    }
    Ok(())
}

/// Writes a public key file.
///
/// # Errors
/// Only those of `out`.
pub fn write_public(out: &mut impl core::fmt::Write, public_key: &[u8; 32]) -> core::fmt::Result {
    writeln!(out, "{PUBLIC_HEADER}")?;
    writeln!(out, "id {}", key_id(public_key))?;
    out.write_str("public ")?;
    write_hex(out, public_key)?;
    out.write_str("\n")
}

/// Writes a secret key file; `public_key` is the seed's public key (for the
/// `id` line).
///
/// # Errors
/// Only those of `out`.
pub fn write_secret(
    out: &mut impl core::fmt::Write,
    seed: &[u8; 32],
    public_key: &[u8; 32],
) -> core::fmt::Result {
    writeln!(out, "{SECRET_HEADER}")?;
    writeln!(out, "{SECRET_COMMENT}")?;
    writeln!(out, "id {}", key_id(public_key))?;
    out.write_str("seed ")?;
    write_hex(out, seed)?;
    out.write_str("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::string::String;

    const PK: [u8; 32] = [7; 32];
    const SEED: [u8; 32] = [9; 32];

    fn public_text() -> String {
        let mut s = String::new();
        write_public(&mut s, &PK).unwrap();
        s
    }

    fn secret_text() -> String {
        let mut s = String::new();
        write_secret(&mut s, &SEED, &PK).unwrap();
        s
    }

    #[test]
    fn round_trip_and_kinds_are_distinct() {
        assert_eq!(
            parse(&public_text()).unwrap(),
            KeyFile::Public { public_key: PK }
        );
        assert_eq!(
            parse(&secret_text()).unwrap(),
            KeyFile::Secret {
                seed: SEED,
                id: Some(key_id(&PK))
            }
        );
        assert_eq!(parse_public(&public_text()).unwrap(), PK);
        assert_eq!(parse_secret(&secret_text()).unwrap().0, SEED);
        assert!(matches!(
            parse_secret(&public_text()),
            Err(KeyFileError::WrongKind {
                found: "public",
                wanted: "secret",
                ..
            })
        ));
        assert!(matches!(
            parse_public(&secret_text()),
            Err(KeyFileError::WrongKind {
                found: "secret",
                wanted: "public",
                ..
            })
        ));
        // The key word of the other kind is refused, even under a valid header.
        let swapped = public_text().replace("public ", "seed ");
        assert!(matches!(
            parse(&swapped),
            Err(KeyFileError::UnknownLine { line: 3, .. })
        ));
    }

    #[test]
    fn errors_name_the_line() {
        let legacy = "07".repeat(32) + "\n";
        assert_eq!(parse(&legacy), Err(KeyFileError::Legacy));
        assert!(parse(&legacy)
            .unwrap_err()
            .to_string()
            .contains("pipectl keygen --upgrade"));
        assert_eq!(parse(""), Err(KeyFileError::Empty));
        assert_eq!(parse("# only\n\n"), Err(KeyFileError::Empty));
        assert_eq!(parse("\nhello\n"), Err(KeyFileError::NoHeader { line: 2 }));
        let short = public_text().replace(&"07".repeat(32), "0707");
        assert_eq!(
            parse(&short),
            Err(KeyFileError::BadHex {
                line: 3,
                what: "public",
                digits: 64
            })
        );
        let no_key = format!("{PUBLIC_HEADER}\nid {}\n", key_id(&PK));
        assert_eq!(
            parse(&no_key),
            Err(KeyFileError::Missing { what: "public" })
        );
        let twice = format!("{}id {}\n", public_text(), key_id(&PK));
        assert_eq!(
            parse(&twice),
            Err(KeyFileError::Duplicate {
                line: 4,
                what: "id"
            })
        );
        let wrong_id = public_text().replace(&key_id(&PK).to_string(), "0000000000000000");
        assert!(matches!(
            parse(&wrong_id),
            Err(KeyFileError::IdMismatch { .. })
        ));
        let extra = format!("{}comment here\n", public_text());
        let e = parse(&extra).unwrap_err();
        assert!(
            e.to_string().contains("line 4: unexpected `comment`"),
            "{e}"
        );
    }

    #[test]
    fn whitespace_comments_and_case_of_hex() {
        let t = format!(
            "  {PUBLIC_HEADER}  \r\n\r\n# note\r\npublic   {}\r\n",
            "07".repeat(32).to_uppercase()
        );
        assert_eq!(parse(&t).unwrap(), KeyFile::Public { public_key: PK });
        // No id line is fine; a long word is cut in the message, not a panic.
        let long = format!("{PUBLIC_HEADER}\n{}é\n", "x".repeat(15));
        assert!(matches!(
            parse(&long),
            Err(KeyFileError::UnknownLine { line: 2, .. })
        ));
    }
}
