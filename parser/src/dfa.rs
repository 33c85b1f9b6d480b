//! Character-level DFAs of regex atoms (FORMAT.md, DFAS): validation and
//! the matcher's runner.
//!
//! A DFA steps once per *character* of the unfolded field: an ASCII
//! character's class comes from a 128-entry table, any other character's
//! from a binary search of the sorted range table; the next state from a
//! `states × classes` table of 8- or 16-bit entries. State 0 means no match
//! is possible any more, state 1 that a match was found (both end the run),
//! state 2 is the start; at the end of the text, the end-of-input bit of the
//! current state decides. UTF-16 is decoded on the fly (an unpaired
//! surrogate is U+FFFD), never re-encoded.
//!
//! Validation checks every table entry against its bound, so running a
//! validated DFA reads only what was checked and ends after at most one step
//! per character.

use crate::text::{Text, Units};
use crate::wire::Region;
use crate::ParseError;
use channel_format::{self as fmt, dfa as d};

/// A validated DFA blob, read in place.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CharDfa<'a> {
    classes: usize,
    wide: bool,
    ascii: &'a [u8; d::ASCII_LEN],
    ranges: &'a [u8],
    trans: &'a [u8],
    eoi: &'a [u8],
}

impl<'a> CharDfa<'a> {
    /// Reads the blob's frame. On validated blobs it always succeeds; any
    /// inconsistency yields `None`, which the matcher treats as no match.
    #[inline]
    pub(crate) fn read(blob: &'a [u8]) -> Option<CharDfa<'a>> {
        let r = Region {
            bytes: blob,
            offset: 0,
        };
        let n = r.le32(0);
        let k = u32::from(r.le16(4));
        let rc = r.le32(8);
        let l = fmt::dfa_layout(n, k, rc)?;
        Some(CharDfa {
            classes: k as usize,
            wide: l.width == 2,
            ascii: blob
                .get(l.ascii as usize..)?
                .first_chunk::<{ d::ASCII_LEN }>()?,
            ranges: blob.get(l.ranges as usize..l.trans as usize)?,
            trans: blob.get(l.trans as usize..l.eoi as usize)?,
            eoi: blob.get(l.eoi as usize..l.len as usize)?,
        })
    }

    /// The class of a non-ASCII code point `c`: the last range whose first
    /// code point is <= c (the first range starts at U+0080: validated).
    #[inline(never)]
    fn class_of_wide(&self, c: u32) -> usize {
        let count = self.ranges.len() / 4;
        let (mut lo, mut hi) = (0usize, count);
        while hi.wrapping_sub(lo) > 1 {
            let mid = lo.wrapping_add(hi.wrapping_sub(lo) / 2);
            if self.range(mid) >> 8 <= c {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        (self.range(lo) & 0xFF) as usize
    }

    #[inline]
    fn range(&self, i: usize) -> u32 {
        match self
            .ranges
            .get(i.wrapping_mul(4)..)
            .and_then(<[u8]>::first_chunk::<4>)
        {
            Some(w) => u32::from_le_bytes(*w),
            None => 0,
        }
    }

    fn eoi(&self, s: usize) -> bool {
        self.eoi.get(s / 8).is_some_and(|b| (b >> (s % 8)) & 1 == 1)
    }

    /// Whether the regex matches somewhere in `text` (unfolded).
    ///
    /// # Panics
    /// Never panics. Allocates nothing; one step per character.
    pub(crate) fn is_match(&self, text: Text<'_>) -> bool {
        match (text, self.wide) {
            (Text::Utf16(units), false) => self.run::<false, _>(units),
            (Text::Utf16(units), true) => self.run::<true, _>(units),
            (Text::Utf8(s), false) => self.run::<false, _>(s),
            (Text::Utf8(s), true) => self.run::<true, _>(s),
        }
    }

    /// Transition from the state whose row starts at cell `row` on class `c`.
    #[inline(always)]
    fn next<const WIDE: bool>(&self, row: usize, c: usize) -> usize {
        let cell = row.wrapping_add(c);
        if WIDE {
            match self
                .trans
                .get(cell.wrapping_mul(2)..)
                .and_then(<[u8]>::first_chunk::<2>)
            {
                Some(w) => usize::from(u16::from_le_bytes(*w)),
                None => 0,
            }
        } else {
            self.trans.get(cell).map_or(0, |&t| usize::from(t))
        }
    }

    /// The run: ASCII characters in a tight loop (class table, one
    /// transition, no call), others through the range table.
    #[inline(never)]
    fn run<const WIDE: bool, U: Units + ?Sized>(&self, units: &U) -> bool {
        let k = self.classes;
        let start = d::START as usize;
        // Row of state `s` (>= 2) starts at cell `(s - 2) * k`.
        let mut s = start;
        let mut row = 0usize;
        let mut i = 0usize;
        loop {
            let c = match units.ascii_at(i) {
                Some(u) => {
                    i = i.wrapping_add(1);
                    usize::from(self.ascii.get(usize::from(u)).copied().unwrap_or(0))
                }
                None => match units.char_at(i) {
                    Some((ch, next)) => {
                        i = next;
                        self.class_of_wide(u32::from(ch))
                    }
                    None => break,
                },
            };
            s = self.next::<WIDE>(row, c);
            if s < start {
                return s == d::ACCEPT as usize;
            }
            row = s.wrapping_sub(start).wrapping_mul(k);
        }
        self.eoi(s)
    }
}

/// Validates one DFA blob (FORMAT.md, DFAS): header, layout length, ASCII
/// classes, ranges, transitions and end-of-input padding bits.
pub(crate) fn validate(blob: Region<'_>, index: u32) -> Result<(), ParseError> {
    let bad = |at: u32, reason| ParseError::BadDfa {
        offset: blob.at(at),
        index,
        reason,
    };
    let n = blob.u32_at(0, "DFA state count")?;
    let k = u32::from(blob.u16_at(4, "DFA class count")?);
    let flags = blob.u8_at(6, "DFA flags")?;
    let rc = blob.u32_at(8, "DFA range count")?;
    if blob.u8_at(7, "DFA reserved")? != 0 || blob.u32_at(12, "DFA reserved")? != 0 {
        return Err(ParseError::NonZeroReserved {
            offset: blob.at(7),
            what: "DFA header reserved fields",
        });
    }
    if !(3..=d::MAX_STATES).contains(&n) {
        return Err(bad(0, "state count is not in 3..=65536"));
    }
    if !(1..=d::MAX_CLASSES).contains(&k) {
        return Err(bad(4, "class count is not in 1..=256"));
    }
    let wide = n > 256;
    if flags != if wide { d::FLAG_WIDE } else { 0 } {
        return Err(bad(
            6,
            "flags: 16-bit transitions exactly when there are more than 256 states",
        ));
    }
    if rc == 0 {
        return Err(bad(8, "the range table is empty"));
    }
    let l = fmt::dfa_layout(n, k, rc).ok_or(ParseError::Overflow {
        offset: blob.offset,
        what: "DFA layout",
    })?;
    if blob.len() != l.len {
        return Err(bad(0, "length differs from what its header implies"));
    }
    let ascii = blob.sub(l.ascii, d::ASCII_LEN as u32, "DFA ASCII classes")?;
    if let Some(i) = ascii.bytes.iter().position(|&c| u32::from(c) >= k) {
        return Err(bad(
            l.ascii.saturating_add(i as u32),
            "ASCII class out of range",
        ));
    }
    let ranges = blob.sub(l.ranges, l.trans.saturating_sub(l.ranges), "DFA ranges")?;
    let mut prev: Option<u32> = None;
    for (i, chunk) in ranges.bytes.chunks_exact(4).enumerate() {
        let at = l.ranges.saturating_add((i as u32).saturating_mul(4));
        let v = match chunk {
            &[a, b, c, dd] => u32::from_le_bytes([a, b, c, dd]),
            _ => 0,
        };
        let (first, class) = (v >> 8, v & 0xFF);
        let ok = match prev {
            None => first == d::FIRST_RANGE,
            Some(p) => first > p && first <= 0x10_FFFF,
        };
        if !ok {
            return Err(bad(
                at,
                "ranges must start at U+0080 and ascend strictly within U+10FFFF",
            ));
        }
        if class >= k {
            return Err(bad(at, "range class out of range"));
        }
        prev = Some(first);
    }
    let trans = blob.sub(l.trans, l.eoi.saturating_sub(l.trans), "DFA transitions")?;
    if wide {
        for (i, chunk) in trans.bytes.chunks_exact(2).enumerate() {
            let t = match chunk {
                &[a, b] => u32::from(u16::from_le_bytes([a, b])),
                _ => u32::MAX,
            };
            if t >= n {
                return Err(bad(
                    l.trans.saturating_add((i as u32).saturating_mul(2)),
                    "transition to a state that does not exist",
                ));
            }
        }
    } else if let Some(i) = trans.bytes.iter().position(|&t| u32::from(t) >= n) {
        return Err(bad(
            l.trans.saturating_add(i as u32),
            "transition to a state that does not exist",
        ));
    }
    // Bits past the last state must be zero (canonical files).
    let eoi = blob.sub(l.eoi, l.len.saturating_sub(l.eoi), "DFA end bits")?;
    let used = n % 8;
    if used != 0 {
        if let Some(&last) = eoi.bytes.last() {
            if last >> used != 0 {
                return Err(ParseError::NonZeroReserved {
                    offset: eoi.at(eoi.len().saturating_sub(1)),
                    what: "DFA end-of-input bits past the last state",
                });
            }
        }
    }
    Ok(())
}
