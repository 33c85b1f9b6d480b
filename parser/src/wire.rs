//! Bounds-checked little-endian reads. Every read names what it reads so a
//! failure becomes a [`ParseError`] naming the structure and its offset.
//!
//! Records are decoded with nom over a sub-slice cut to exactly the record's
//! length and must consume it whole.

use crate::ParseError;
use channel_format::{Field, Le};
use nom::number::complete::{le_u16, le_u32, le_u64};
use nom::Parser;

/// A section (or any region) of the file: its bytes and where they start.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Region<'a> {
    pub(crate) bytes: &'a [u8],
    pub(crate) offset: u32,
}

impl<'a> Region<'a> {
    pub(crate) const EMPTY: Region<'static> = Region {
        bytes: &[],
        offset: 0,
    };

    /// Length in bytes (regions never exceed `u32::MAX`: the file is bounded).
    pub(crate) fn len(&self) -> u32 {
        u32::try_from(self.bytes.len()).unwrap_or(u32::MAX)
    }

    /// The file offset of byte `at` of this region (saturating: only used
    /// for error reports).
    pub(crate) fn at(&self, at: u32) -> u32 {
        self.offset.saturating_add(at)
    }

    /// `len` bytes at `start`, or `Truncated`.
    pub(crate) fn sub(
        &self,
        start: u32,
        len: u32,
        what: &'static str,
    ) -> Result<Region<'a>, ParseError> {
        let available = self.len().saturating_sub(start);
        let end = start.checked_add(len).ok_or(ParseError::Overflow {
            offset: self.at(start),
            what,
        })?;
        let bytes = self
            .bytes
            .get(start as usize..end as usize)
            .ok_or(ParseError::Truncated {
                offset: self.at(start),
                what,
                needed: len,
                available,
            })?;
        Ok(Region {
            bytes,
            offset: self.at(start),
        })
    }

    /// Record `index` of `size` bytes each.
    pub(crate) fn record(
        &self,
        index: u32,
        size: usize,
        what: &'static str,
    ) -> Result<Region<'a>, ParseError> {
        let size32 = u32::try_from(size).map_err(|_| ParseError::Overflow {
            offset: self.offset,
            what,
        })?;
        let start = index.checked_mul(size32).ok_or(ParseError::Overflow {
            offset: self.offset,
            what,
        })?;
        self.sub(start, size32, what)
    }

    pub(crate) fn u8_at(&self, at: u32, what: &'static str) -> Result<u8, ParseError> {
        let r = self.sub(at, 1, what)?;
        r.bytes.first().copied().ok_or(ParseError::Truncated {
            offset: r.offset,
            what,
            needed: 1,
            available: 0,
        })
    }

    // The fixed-width reads are kept out of line on purpose: nom's
    // `take_from` is not `#[inline]`, and inside a large caller LLVM may not
    // inline it, leaving its bounds check (unreachable: `le_u*` checks the
    // length first) as a live panic path. Out of line, the read is one small
    // function in which the check is always folded away, so the panic-free
    // proof (scripts/panic-free.sh) holds whatever the callers look like.
    #[inline(never)]
    pub(crate) fn u16_at(&self, at: u32, what: &'static str) -> Result<u16, ParseError> {
        let r = self.sub(at, 2, what)?;
        nom_all(r, what, le_u16)
    }

    #[inline(never)]
    pub(crate) fn u32_at(&self, at: u32, what: &'static str) -> Result<u32, ParseError> {
        let r = self.sub(at, 4, what)?;
        nom_all(r, what, le_u32)
    }

    #[inline(never)]
    pub(crate) fn u64_at(&self, at: u32, what: &'static str) -> Result<u64, ParseError> {
        let r = self.sub(at, 8, what)?;
        nom_all(r, what, le_u64)
    }

    /// Little-endian `u32` at byte `at`, for reads of validated data on the
    /// matching path (no error path to carry); 0 if out of range, which
    /// validation rules out.
    #[inline]
    pub(crate) fn le32(&self, at: u32) -> u32 {
        let at = at as usize;
        match self.bytes.get(at..at.wrapping_add(size_of::<u32>())) {
            Some(&[a, b, c, d]) => u32::from_le_bytes([a, b, c, d]),
            _ => 0,
        }
    }

    /// Little-endian `u16` at byte `at` (see [`Region::le32`]).
    #[inline]
    pub(crate) fn le16(&self, at: u32) -> u16 {
        let at = at as usize;
        match self.bytes.get(at..at.wrapping_add(size_of::<u16>())) {
            Some(&[a, b]) => u16::from_le_bytes([a, b]),
            _ => 0,
        }
    }

    /// The byte at `at` (see [`Region::le32`]).
    #[inline]
    pub(crate) fn le8(&self, at: u32) -> u8 {
        self.bytes.get(at as usize).copied().unwrap_or(0)
    }

    /// Field `f` of the record this region starts with (a named,
    /// bounds-checked read; `what` names it in a `Truncated` error).
    #[inline]
    pub(crate) fn get<T: Scalar>(&self, f: Field<T>, what: &'static str) -> Result<T, ParseError> {
        T::read_at(self, f.offset_u32(), what)
    }

    /// The file offset of field `f` of the record this region starts with
    /// (saturating: only used for error reports).
    #[inline]
    pub(crate) fn at_field<T: Le>(&self, f: Field<T>) -> u32 {
        self.at(f.offset_u32())
    }

    /// The bytes of field `f` (reserved bytes, checked to be zero).
    pub(crate) fn field_bytes<T: Le>(
        &self,
        f: Field<T>,
        what: &'static str,
    ) -> Result<Region<'a>, ParseError> {
        let len = u32::try_from(f.len()).unwrap_or(u32::MAX);
        self.sub(f.offset_u32(), len, what)
    }

    /// A UTF-8 string of `len` bytes at `start`.
    pub(crate) fn str_at(
        &self,
        start: u32,
        len: u32,
        what: &'static str,
    ) -> Result<&'a str, ParseError> {
        let r = self.sub(start, len, what).map_err(|e| match e {
            ParseError::Truncated { .. } => ParseError::OutOfRange {
                offset: self.at(start),
                what,
                value: start.saturating_add(len),
                bound: self.len().saturating_add(1),
            },
            other => other,
        })?;
        core::str::from_utf8(r.bytes).map_err(|_| ParseError::InvalidUtf8 {
            offset: r.offset,
            what,
        })
    }

    /// Checks that every byte is zero.
    pub(crate) fn check_zero(&self, what: &'static str) -> Result<(), ParseError> {
        match self.bytes.iter().position(|&b| b != 0) {
            None => Ok(()),
            Some(i) => Err(ParseError::NonZeroReserved {
                offset: self.at(u32::try_from(i).unwrap_or(u32::MAX)),
                what,
            }),
        }
    }
}

/// A fixed-width field the parser reads through [`Region::get`]: each width
/// goes through the matching out-of-line nom read above.
pub(crate) trait Scalar: Le {
    fn read_at(r: &Region<'_>, at: u32, what: &'static str) -> Result<Self, ParseError>;
}

impl Scalar for u8 {
    #[inline]
    fn read_at(r: &Region<'_>, at: u32, what: &'static str) -> Result<Self, ParseError> {
        r.u8_at(at, what)
    }
}
impl Scalar for u16 {
    #[inline]
    fn read_at(r: &Region<'_>, at: u32, what: &'static str) -> Result<Self, ParseError> {
        r.u16_at(at, what)
    }
}
impl Scalar for u32 {
    #[inline]
    fn read_at(r: &Region<'_>, at: u32, what: &'static str) -> Result<Self, ParseError> {
        r.u32_at(at, what)
    }
}
impl Scalar for u64 {
    #[inline]
    fn read_at(r: &Region<'_>, at: u32, what: &'static str) -> Result<Self, ParseError> {
        r.u64_at(at, what)
    }
}

/// Runs a nom parser that must consume `r` entirely.
pub(crate) fn nom_all<'a, O>(
    r: Region<'a>,
    what: &'static str,
    mut p: impl Parser<&'a [u8], Output = O, Error = nom::error::Error<&'a [u8]>>,
) -> Result<O, ParseError> {
    match nom::combinator::all_consuming(|i| p.parse(i)).parse(r.bytes) {
        Ok((_, v)) => Ok(v),
        Err(_) => Err(ParseError::Truncated {
            offset: r.offset,
            what,
            needed: 0,
            available: r.len(),
        }),
    }
}

/// Checked `a + b` naming what is computed.
pub(crate) fn add(a: u32, b: u32, offset: u32, what: &'static str) -> Result<u32, ParseError> {
    a.checked_add(b)
        .ok_or(ParseError::Overflow { offset, what })
}

/// Checked `a * b` naming what is computed.
pub(crate) fn mul(a: u32, b: u32, offset: u32, what: &'static str) -> Result<u32, ParseError> {
    a.checked_mul(b)
        .ok_or(ParseError::Overflow { offset, what })
}
