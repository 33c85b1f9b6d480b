//! Character-level DFAs of regex atoms (FORMAT.md, DFAS): validation and
//! the matcher's runner.
//!
//! A DFA steps once per *character* of the unfolded field: an ASCII
//! character's class comes from a 128-entry table; any other character's
//! from a binary search of a range table (shared by the DFAs whose non-ASCII
//! characters fall into the same classes, e.g. every DFA with a Unicode
//! `\d`) and the DFA's map from the table's local classes to its own; the
//! next state from a `states × classes` table of 8- or 16-bit entries.
//! State 0 means no match is possible any more, state 1 that a match was
//! found (both end the run), state 2 is the start; at the end of the text,
//! the end-of-input bit of the current state decides. UTF-16 is decoded on
//! the fly (an unpaired surrogate is U+FFFD), never re-encoded.
//!
//! Validation checks every table entry against its bound, so running a
//! validated DFA reads only what was checked and ends after at most one step
//! per character.

use crate::text::{Text, Units};
use crate::wire::Region;
use crate::ParseError;
use channel_format::{self as fmt, dfa as d, dfa_header as h, range_table as rt};
use core::ops::ControlFlow;

/// A validated DFA blob, read in place: reading it locates the blob and
/// its header only; a run cuts the parts it reads ([`Parts`]) for its kind
/// of table, and the range table is located only when a non-ASCII
/// character needs it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CharDfa<'a> {
    blob: &'a [u8],
    header: &'a [u8; h::LEN],
    /// The DFAS section and the entry of this DFA's range table: read by
    /// [`CharDfa::class_of_wide`] only.
    section: Region<'a>,
    dfa_count: u32,
}

/// The parts of a DFA blob a run reads.
struct Parts<'a> {
    classes: usize,
    ascii: &'a [u8; d::ASCII_LEN],
    /// The local-class map (its length is the range table's class count).
    remap: &'a [u8],
    /// Dense rows, or the sparse row offsets.
    trans: &'a [u8],
    /// Sparse rows; empty when dense.
    rows: &'a [u8],
    /// The end-of-input bits.
    eoi: &'a [u8],
}

/// Blob `index` of a DFAS section (`section`): its entry's offset and length
/// (FORMAT.md, DFAS; validated). Empty when out of range, which validation
/// rules out.
#[inline(always)]
pub(crate) fn blob_at(section: Region<'_>, index: u32) -> &[u8] {
    let at = index
        .wrapping_mul(fmt::dfa_entry::LEN_U32)
        .wrapping_add(fmt::dfa_table::LEN_U32);
    let off = section.le32(at.wrapping_add(fmt::dfa_entry::OFFSET.offset_u32())) as usize;
    let len = section.le32(at.wrapping_add(fmt::dfa_entry::LENGTH.offset_u32())) as usize;
    section.bytes.get(off..off.wrapping_add(len)).unwrap_or(&[])
}

impl<'a> CharDfa<'a> {
    /// Reads DFA `index` of the validated DFAS section `section` (`dfa_count`
    /// DFAs, then the range tables): its entry and its header, bounds-checked
    /// once. On validated data this always succeeds; any inconsistency
    /// yields `None` or empty parts (no match), never a panic.
    #[inline]
    pub(crate) fn read(section: Region<'a>, dfa_count: u32, index: u32) -> Option<CharDfa<'a>> {
        let blob = blob_at(section, index);
        Some(CharDfa {
            blob,
            header: blob.first_chunk::<{ h::LEN }>()?,
            section,
            dfa_count,
        })
    }

    /// The parts a run of a `WIDE`/`SPARSE` DFA reads. Validation fixed
    /// each blob's exact length for its counts ([`fmt::dfa_layout`]), so
    /// the local-class map's length — the range table's class count — is
    /// what the blob's length leaves for it: the range table itself is not
    /// read here.
    #[inline(always)]
    fn parts<const WIDE: bool, const SPARSE: bool>(&self) -> Option<Parts<'a>> {
        let (blob, hd) = (self.blob, self.header);
        let n = h::STATE_COUNT.get(hd)? as usize;
        let k = usize::from(h::CLASS_COUNT.get(hd)?);
        let rows = n.wrapping_sub(d::START as usize);
        // The transitions' length: dense rows, or the sparse row offsets
        // (then the sparse rows themselves).
        let (trans_len, rows_len) = if SPARSE {
            (
                rows.wrapping_mul(d::ROW_OFFSET_LEN as usize),
                h::SPARSE_LEN.get(hd)? as usize,
            )
        } else {
            (
                rows.wrapping_mul(k)
                    .wrapping_mul(d::target_len(WIDE) as usize),
                0,
            )
        };
        let remap_at = h::LEN.wrapping_add(d::ASCII_LEN);
        let eoi_at = blob.len().wrapping_sub(n.div_ceil(8));
        let rows_at = eoi_at.wrapping_sub(rows_len);
        let trans_at = rows_at.wrapping_sub(trans_len);
        Some(Parts {
            classes: k,
            ascii: blob.get(h::LEN..)?.first_chunk::<{ d::ASCII_LEN }>()?,
            remap: blob.get(remap_at..trans_at)?,
            trans: blob.get(trans_at..rows_at)?,
            rows: blob.get(rows_at..eoi_at)?,
            eoi: blob.get(eoi_at..)?,
        })
    }

    /// The class of a non-ASCII code point `c`: the last range whose first
    /// code point is <= c (the first range starts at U+0080: validated),
    /// through the local-class map.
    #[inline(never)]
    fn class_of_wide(&self, remap: &[u8], c: u32) -> u8 {
        let table = h::RANGE_TABLE.get(self.header).unwrap_or(0);
        let ranges = blob_at(self.section, self.dfa_count.wrapping_add(table))
            .get(rt::LEN..)
            .unwrap_or(&[]);
        let count = ranges
            .len()
            .checked_div(d::RANGE_ENTRY_LEN as usize)
            .unwrap_or(0);
        let (mut lo, mut hi) = (0usize, count);
        while hi.wrapping_sub(lo) > 1 {
            let mid = lo.wrapping_add(hi.wrapping_sub(lo) / 2);
            if range(ranges, mid) >> 8 <= c {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        let local = (range(ranges, lo) & 0xFF) as usize;
        remap.get(local).copied().unwrap_or(0)
    }

    /// The end-of-input bit of state `s`.
    #[inline]
    fn eoi(eoi: &[u8], s: usize) -> bool {
        eoi.get(s / 8).is_some_and(|b| (b >> (s % 8)) & 1 == 1)
    }

    /// Whether the regex matches somewhere in `text` (unfolded).
    ///
    /// # Panics
    /// Never panics. Allocates nothing; one step per character.
    pub(crate) fn is_match(&self, text: Text<'_>) -> bool {
        let flags = h::FLAGS.get(self.header).unwrap_or(0);
        let (wide, sparse) = (flags & d::FLAG_WIDE != 0, flags & d::FLAG_SPARSE != 0);
        match (text, wide, sparse) {
            (Text::Utf16(units), false, false) => self.run::<false, false, _>(units),
            (Text::Utf16(units), true, false) => self.run::<true, false, _>(units),
            (Text::Utf16(units), false, true) => self.run::<false, true, _>(units),
            (Text::Utf16(units), true, true) => self.run::<true, true, _>(units),
            (Text::Utf8(s), false, false) => self.run::<false, false, _>(s),
            (Text::Utf8(s), true, false) => self.run::<true, false, _>(s),
            (Text::Utf8(s), false, true) => self.run::<false, true, _>(s),
            (Text::Utf8(s), true, true) => self.run::<true, true, _>(s),
        }
    }

    /// The transition of state `s` on class `c` through its sparse row (the
    /// target of `c` if listed, else the default); `None` when `s` has no
    /// row (the dead and accepting states, 0 and 1).
    #[inline(always)]
    fn next_sparse<const WIDE: bool>(
        offsets: &[[u8; 2]],
        rows: &[u8],
        s: usize,
        c: u8,
    ) -> Option<usize> {
        let off = u16::from_le_bytes(*offsets.get(s.wrapping_sub(d::START as usize))?);
        let row = rows.get(usize::from(off)..)?;
        // The default target, the count, the classes, then their targets.
        let (default, n, rest) = if WIDE {
            let ([d0, d1, n], rest) = row.split_first_chunk::<3>()?;
            (usize::from(u16::from_le_bytes([*d0, *d1])), *n, rest)
        } else {
            let ([d0, n], rest) = row.split_first_chunk::<2>()?;
            (usize::from(*d0), *n, rest)
        };
        let (classes, targets) = rest.split_at_checked(usize::from(n))?;
        Some(match classes.iter().position(|&x| x == c) {
            Some(i) if WIDE => targets
                .as_chunks::<2>()
                .0
                .get(i)
                .map_or(0, |&t| usize::from(u16::from_le_bytes(t))),
            Some(i) => targets.get(i).map_or(0, |&t| usize::from(t)),
            None => default,
        })
    }

    /// The step on the non-ASCII character at unit `at`: the index after
    /// it, or `None` at the end of the text or when the run ends. Out of
    /// line (rare), so that the ASCII loop keeps its values in registers.
    #[inline(never)]
    fn step_wide<const WIDE: bool, const SPARSE: bool, U: Units + ?Sized>(
        &self,
        st: &mut Stepper<'_, WIDE, SPARSE>,
        remap: &[u8],
        units: &U,
        at: usize,
    ) -> Option<usize> {
        let (ch, next) = units.char_at(at)?;
        st.step(self.class_of_wide(remap, u32::from(ch)))
            .then_some(next)
    }

    /// The run. ASCII characters go through [`Units::for_ascii`] (class
    /// table, one transition: no width or sparse test, the DFA's kind is a
    /// type parameter), others through the range table.
    ///
    /// One test per character both bounds the transition read and ends
    /// the run: a dense row starts at cell `(s - 2) * k`, so for the dead
    /// and accepting states (0 and 1) the wrapped row is past any table
    /// (each class is below `k`: validated) and the next read fails; the
    /// sparse row offsets likewise have no entry for them. The run then
    /// stops one character after reaching them, and the state decides.
    #[inline(never)]
    fn run<const WIDE: bool, const SPARSE: bool, U: Units + ?Sized>(&self, units: &U) -> bool {
        let Some(p) = self.parts::<WIDE, SPARSE>() else {
            return false;
        };
        let start = d::START as usize;
        let mut st = Stepper::<WIDE, SPARSE> {
            k: p.classes,
            trans8: p.trans,
            // Wide dense rows, or the sparse row offsets.
            trans16: p.trans.as_chunks::<2>().0,
            rows: p.rows,
            s: start,
            row: 0,
        };
        let mut i = 0usize;
        while let ControlFlow::Continue(at) = st.ascii(units, i, p.ascii) {
            // A non-ASCII character, or the end of the text.
            match self.step_wide(&mut st, p.remap, units, at) {
                Some(next) => i = next,
                None => break,
            }
        }
        if st.s < start {
            st.s == d::ACCEPT as usize
        } else {
            Self::eoi(p.eoi, st.s)
        }
    }
}

/// A run's state and the tables its steps read, the DFA's kind (`WIDE`,
/// `SPARSE`) a type parameter: no step tests it.
struct Stepper<'a, const WIDE: bool, const SPARSE: bool> {
    k: usize,
    /// Narrow dense rows.
    trans8: &'a [u8],
    /// Wide dense rows, or the sparse row offsets.
    trans16: &'a [[u8; 2]],
    /// Sparse rows.
    rows: &'a [u8],
    /// The state.
    s: usize,
    /// The cell where the state's dense row starts: `(s - 2) * k`.
    row: usize,
}

impl<const WIDE: bool, const SPARSE: bool> Stepper<'_, WIDE, SPARSE> {
    /// One step on class `c`; false (the state unchanged) when the state
    /// is the dead or the accepting one (see [`CharDfa::run`]).
    #[inline(always)]
    fn step(&mut self, c: u8) -> bool {
        let t = if SPARSE {
            CharDfa::next_sparse::<WIDE>(self.trans16, self.rows, self.s, c)
        } else {
            let cell = self.row.wrapping_add(usize::from(c));
            if WIDE {
                self.trans16
                    .get(cell)
                    .map(|&t| usize::from(u16::from_le_bytes(t)))
            } else {
                self.trans8.get(cell).map(|&t| usize::from(t))
            }
        };
        match t {
            Some(t) => {
                self.s = t;
                self.row = t.wrapping_sub(d::START as usize).wrapping_mul(self.k);
                true
            }
            None => false,
        }
    }

    /// The ASCII characters from unit `i` on ([`Units::for_ascii`]).
    #[inline(always)]
    fn ascii<U: Units + ?Sized>(
        &mut self,
        units: &U,
        i: usize,
        ascii: &[u8; d::ASCII_LEN],
    ) -> ControlFlow<(), usize> {
        units.for_ascii(i, |u| {
            // In bounds: `u` is below 0x80.
            self.step(ascii.get(usize::from(u)).copied().unwrap_or(0))
        })
    }
}

/// Entry `i` of a range table's entries.
#[inline]
fn range(ranges: &[u8], i: usize) -> u32 {
    let at = i.wrapping_mul(d::RANGE_ENTRY_LEN as usize);
    match ranges.get(at..at.wrapping_add(d::RANGE_ENTRY_LEN as usize)) {
        Some(w) => u32::from_le_bytes(w.try_into().unwrap_or([0; 4])),
        None => 0,
    }
}

/// Validates one range table (FORMAT.md, DFAS): header, exact length,
/// entries ascending from U+0080, local classes below the class count.
/// Returns the class count.
pub(crate) fn validate_table(blob: Region<'_>, index: u32) -> Result<u32, ParseError> {
    let bad = |at: u32, reason| ParseError::BadDfa {
        offset: blob.at(at),
        index,
        reason,
    };
    let rc = blob.get(rt::RANGE_COUNT, "range table entry count")?;
    let lc = blob.get(rt::CLASS_COUNT, "range table class count")?;
    if rc == 0 {
        return Err(bad(rt::RANGE_COUNT.offset_u32(), "range table is empty"));
    }
    if !(1..=d::MAX_CLASSES).contains(&lc) {
        return Err(bad(
            rt::CLASS_COUNT.offset_u32(),
            "range table class count is not in 1..=256",
        ));
    }
    if fmt::range_table_len(rc) != Some(blob.len()) {
        return Err(bad(0, "range table length differs from its entry count"));
    }
    let mut prev: Option<u32> = None;
    for i in 0..rc {
        let at = i
            .saturating_mul(d::RANGE_ENTRY_LEN)
            .saturating_add(rt::LEN_U32);
        let v = blob.u32_at(at, "range table entry")?;
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
        if class >= lc {
            return Err(bad(at, "range class out of range"));
        }
        prev = Some(first);
    }
    Ok(lc)
}

/// Validates one DFA blob (FORMAT.md, DFAS) whose range table has `local`
/// classes (`table_count` tables exist): header, layout length, ASCII
/// classes, class map, transitions and end-of-input padding bits.
pub(crate) fn validate(
    blob: Region<'_>,
    index: u32,
    table_count: u32,
    local: impl Fn(u32) -> Result<u32, ParseError>,
) -> Result<(), ParseError> {
    let bad = |at: u32, reason| ParseError::BadDfa {
        offset: blob.at(at),
        index,
        reason,
    };
    let n = blob.get(h::STATE_COUNT, "DFA state count")?;
    let k = u32::from(blob.get(h::CLASS_COUNT, "DFA class count")?);
    let flags = blob.get(h::FLAGS, "DFA flags")?;
    let table = blob.get(h::RANGE_TABLE, "DFA range table")?;
    if blob.get(h::RESERVED, "DFA reserved")? != 0 {
        return Err(ParseError::NonZeroReserved {
            offset: blob.at_field(h::RESERVED),
            what: "DFA header reserved byte",
        });
    }
    if !(3..=d::MAX_STATES).contains(&n) {
        return Err(bad(
            h::STATE_COUNT.offset_u32(),
            "state count is not in 3..=65536",
        ));
    }
    if !(1..=d::MAX_CLASSES).contains(&k) {
        return Err(bad(
            h::CLASS_COUNT.offset_u32(),
            "class count is not in 1..=256",
        ));
    }
    let wide = n > 256;
    if flags & !(d::FLAG_WIDE | d::FLAG_SPARSE) != 0 || (flags & d::FLAG_WIDE != 0) != wide {
        return Err(bad(
            h::FLAGS.offset_u32(),
            "flags: unknown bits, or 16-bit transitions not exactly when there are more than 256 states",
        ));
    }
    if table >= table_count {
        return Err(ParseError::OutOfRange {
            offset: blob.at_field(h::RANGE_TABLE),
            what: "DFA range table",
            value: table,
            bound: table_count,
        });
    }
    let sparse = flags & d::FLAG_SPARSE != 0;
    let sparse_len = blob.get(h::SPARSE_LEN, "DFA sparse rows length")?;
    if !sparse && sparse_len != 0 {
        return Err(ParseError::NonZeroReserved {
            offset: blob.at_field(h::SPARSE_LEN),
            what: "DFA sparse rows length without sparse rows",
        });
    }
    let l = fmt::dfa_layout(n, k, local(table)?, sparse.then_some(sparse_len)).ok_or(
        ParseError::Overflow {
            offset: blob.offset,
            what: "DFA layout",
        },
    )?;
    if blob.len() != l.len {
        return Err(bad(
            h::STATE_COUNT.offset_u32(),
            "length differs from what its header implies",
        ));
    }
    let classes = blob.sub(
        l.ascii,
        l.trans.saturating_sub(l.ascii),
        "DFA ASCII classes and class map",
    )?;
    if let Some(i) = first_at_or_above(classes.bytes, k) {
        return Err(bad(
            l.ascii.saturating_add(i as u32),
            "character class out of range",
        ));
    }
    if sparse {
        validate_sparse(blob, &l, n, k, wide, &bad)?;
    } else {
        validate_dense(blob, &l, n, wide, &bad)?;
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

/// Reads target `i` of a row of 1- or 2-byte entries.
#[inline(always)]
fn target(bytes: &[u8], at: u32, wide: bool) -> Option<u32> {
    let at = at as usize;
    if wide {
        let w = bytes.get(at..)?.first_chunk::<2>()?;
        Some(u32::from(u16::from_le_bytes(*w)))
    } else {
        bytes.get(at).map(|&t| u32::from(t))
    }
}

/// The index of the first byte of `b` that is `bound` or more: a maximum
/// per block of 64 bytes (which the compiler vectorises), and the position
/// only inside the block that has one.
#[inline]
fn first_at_or_above(b: &[u8], bound: u32) -> Option<usize> {
    let Ok(bound) = u8::try_from(bound) else {
        return None; // every byte is below 256
    };
    let mut base = 0usize;
    for block in b.chunks(64) {
        if block.iter().fold(0u8, |m, &x| m.max(x)) >= bound {
            let i = block.iter().position(|&x| x >= bound)?;
            return Some(base.wrapping_add(i));
        }
        base = base.wrapping_add(block.len());
    }
    None
}

/// [`first_at_or_above`] over little-endian `u16` entries: the index of the
/// first entry that is `bound` or more.
#[inline]
fn first_u16_at_or_above(b: &[[u8; 2]], bound: u32) -> Option<usize> {
    let Ok(bound) = u16::try_from(bound) else {
        return None; // every entry is below 65536
    };
    let mut base = 0usize;
    for block in b.chunks(32) {
        let max = block
            .iter()
            .fold(0u16, |m, &x| m.max(u16::from_le_bytes(x)));
        if max >= bound {
            let i = block.iter().position(|&x| u16::from_le_bytes(x) >= bound)?;
            return Some(base.wrapping_add(i));
        }
        base = base.wrapping_add(block.len());
    }
    None
}

/// Dense rows: every transition names a state that exists.
fn validate_dense(
    blob: Region<'_>,
    l: &fmt::DfaLayout,
    n: u32,
    wide: bool,
    bad: &impl Fn(u32, &'static str) -> ParseError,
) -> Result<(), ParseError> {
    let trans = blob.sub(l.trans, l.eoi.saturating_sub(l.trans), "DFA transitions")?;
    let w = d::target_len(wide);
    // Whole cells only (the layout makes the part a whole number of them).
    let first = if wide {
        first_u16_at_or_above(trans.bytes.as_chunks::<2>().0, n)
    } else {
        first_at_or_above(trans.bytes, n)
    };
    if let Some(i) = first {
        let at = u32::try_from(i).unwrap_or(u32::MAX).saturating_mul(w);
        return Err(bad(
            l.trans.saturating_add(at),
            "transition to a state that does not exist",
        ));
    }
    Ok(())
}

/// Sparse rows: the rows tile their bytes in order (each offset is where
/// the previous row ends, the last ends at the length), each row's count
/// is below the class count, its classes ascend strictly below it, and
/// every target names a state that exists.
fn validate_sparse(
    blob: Region<'_>,
    l: &fmt::DfaLayout,
    n: u32,
    k: u32,
    wide: bool,
    bad: &impl Fn(u32, &'static str) -> ParseError,
) -> Result<(), ParseError> {
    let offsets = blob.sub(l.trans, l.rows.saturating_sub(l.trans), "DFA row offsets")?;
    let rows = blob.sub(l.rows, l.eoi.saturating_sub(l.rows), "DFA sparse rows")?;
    let offs = offsets
        .bytes
        .as_chunks::<{ d::ROW_OFFSET_LEN as usize }>()
        .0;
    let rb = rows.bytes;
    let w = d::target_len(wide);
    let mut pos = 0u32;
    for s in 0..n.saturating_sub(2) {
        let at = s.saturating_mul(d::ROW_OFFSET_LEN);
        let off = match offs.get(s as usize) {
            Some(c) => u32::from(u16::from_le_bytes(*c)),
            None => u32::from(offsets.u16_at(at, "DFA row offset")?),
        };
        if off != pos {
            return Err(bad(
                l.trans.saturating_add(at),
                "sparse row offsets do not follow the rows in order",
            ));
        }
        let row_err = |reason| bad(l.rows.saturating_add(off), reason);
        if target(rb, off, wide).is_none_or(|t| t >= n) {
            return Err(row_err("default transition to a state that does not exist"));
        }
        let count_at = off.saturating_add(w);
        let count = match rb.get(count_at as usize) {
            Some(&c) => u32::from(c),
            None => u32::from(rows.u8_at(count_at, "DFA sparse row count")?),
        };
        if count >= k.max(1) {
            return Err(row_err("sparse row lists every class"));
        }
        let classes_at = count_at.saturating_add(1);
        let classes = rows.sub(classes_at, count, "DFA sparse row classes")?;
        // Strictly ascending below K: each class at or above the previous
        // one plus one (the first at or above 0).
        let mut floor = 0u32;
        for &c in classes.bytes {
            let c = u32::from(c);
            if c < floor || c >= k {
                return Err(row_err(
                    "sparse row classes are not strictly ascending classes",
                ));
            }
            floor = c.wrapping_add(1);
        }
        let targets_at = classes_at.saturating_add(count);
        let end = targets_at.saturating_add(count.saturating_mul(w));
        let all_exist = match rb.get(targets_at as usize..end as usize) {
            Some(t) if wide => first_u16_at_or_above(t.as_chunks::<2>().0, n).is_none(),
            Some(t) => t.iter().all(|&t| u32::from(t) < n),
            None => false, // some target is cut off
        };
        if !all_exist {
            return Err(row_err("sparse transition to a state that does not exist"));
        }
        pos = end;
    }
    if pos != rows.len() {
        return Err(bad(l.rows, "sparse rows do not end at their length"));
    }
    Ok(())
}
