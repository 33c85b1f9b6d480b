//! Event text (UTF-16 from the kernel, UTF-8 from tools), case folding and
//! wildcard matching.
//!
//! # Case folding
//! Case-insensitive comparison folds both sides with the *simple upper-case
//! mapping* of each character ([`fold_char`]): a character whose upper case is
//! one character maps to it, any other character stays as it is. This is what
//! NPFS does with its upcase table (names are compared one UTF-16 unit to
//! one), and it is the same function on both sides: the compiler stores
//! literals already folded, the matcher folds the event.
//!
//! # Unpaired surrogates
//! A UTF-16 unit that is a surrogate without its partner decodes to U+FFFD
//! REPLACEMENT CHARACTER and occupies one unit. Literals cannot contain it
//! (the compiler refuses U+FFFD in rules), so such a character is matched only
//! by `?`, `*` or a regex class that admits U+FFFD. A name can therefore never
//! be made to look like another name by inserting unpaired surrogates.
//!
//! # Length
//! Names are matched in full, in time linear in their length: nothing is
//! truncated. The kernel never presents more than 32,767 UTF-16 units
//! (a `UNICODE_STRING`); longer tool input is matched the same way.

use core::ops::ControlFlow;

/// The text of one event field.
#[derive(Debug, Clone, Copy)]
pub enum Text<'e> {
    /// UTF-16 code units, as the kernel sees names; may hold unpaired surrogates.
    Utf16(&'e [u16]),
    /// UTF-8 text, as tools see names.
    Utf8(&'e str),
}

/// The simple upper-case mapping used for every case-insensitive comparison.
#[inline]
pub fn fold_char(c: char) -> char {
    if c.is_ascii() {
        return c.to_ascii_uppercase();
    }
    let mut up = c.to_uppercase();
    match (up.next(), up.next()) {
        (Some(u), None) => u,
        _ => c,
    }
}

/// Whether `s` is already folded.
pub fn is_folded(s: &str) -> bool {
    s.chars().all(|c| fold_char(c) == c)
}

impl<'e> Text<'e> {
    /// The character starting at `pos` (a unit index for UTF-16, a byte index
    /// for UTF-8) and the position after it; `None` at the end.
    #[inline(always)]
    pub(crate) fn char_at(&self, pos: usize) -> Option<(char, usize)> {
        match *self {
            Text::Utf16(units) => {
                units.get(pos)?;
                Some(decode_utf16_at(units, pos))
            }
            Text::Utf8(s) => {
                let c = s.get(pos..)?.chars().next()?;
                Some((c, pos.checked_add(c.len_utf8())?))
            }
        }
    }

    /// Iterates over the characters.
    pub fn chars(&self) -> Chars<'e> {
        Chars {
            text: *self,
            pos: 0,
        }
    }
}

/// Text as the matchers read it: UTF-16 units or UTF-8 bytes, indexed by
/// unit. Every matcher is generic over it, so each loop is compiled once for
/// each encoding with no per-character dispatch.
pub(crate) trait Units {
    /// Length in units.
    fn len(&self) -> usize;
    /// Unit `i` widened, if it exists.
    fn unit(&self, i: usize) -> Option<u32>;
    /// Unit `i` if it is ASCII.
    #[inline(always)]
    fn ascii_at(&self, i: usize) -> Option<u8> {
        self.unit(i)
            .and_then(|u| u8::try_from(u).ok())
            .filter(u8::is_ascii)
    }
    /// Feeds `f` the ASCII units from `i` on, in order, until a unit is not
    /// ASCII or the text ends (`Continue` with that index), or until `f`
    /// returns false (`Break`). Each unit handed to `f` is below 0x80. The
    /// loop takes four units per iteration (one bounds test per four
    /// units), and the ASCII test bounds a 128-entry table read in `f`.
    fn for_ascii(&self, i: usize, f: impl FnMut(u8) -> bool) -> ControlFlow<(), usize>;
    /// The first index at or after `i` whose unit is not ASCII or is in
    /// `set` (bit `u % 64` of word `u / 64`), or the length: the units
    /// skipped are ASCII and outside `set`.
    fn skip_ascii_outside(&self, i: usize, set: &[u64; 2]) -> usize;
    /// The character starting at unit `i` and the index after it.
    fn char_at(&self, i: usize) -> Option<(char, usize)>;
    /// The character ending at unit `i` and the index where it starts.
    /// Consistent with [`Units::char_at`]: a surrogate pairs only with its
    /// immediate neighbour, so decoding backwards finds the same characters.
    fn char_before(&self, i: usize) -> Option<(char, usize)>;
    /// How many bytes of the folded `lit` the units from `pos` on match
    /// while both are ASCII (stopping at the first non-ASCII byte or unit,
    /// or the end of either); `None` on an ASCII mismatch.
    fn ascii_match(&self, pos: usize, lit: &[u8]) -> Option<usize>;
    /// The same backwards: `lit`'s last bytes against the units before
    /// `end`.
    fn ascii_match_back(&self, end: usize, lit: &[u8]) -> Option<usize>;
    /// [`Units::ascii_match`] for a glob segment `seg`: a `?` matches any
    /// ASCII unit, and an escape (`\\`) stops the run like a non-ASCII byte.
    fn glob_ascii_match(&self, pos: usize, seg: &[u8]) -> Option<usize>;
    /// The same backwards: `seg`'s last bytes against the units before
    /// `end` (an escaped `?` counts as `?`: only a whole run without an
    /// escape, or a mismatch, is conclusive).
    fn glob_ascii_match_back(&self, end: usize, seg: &[u8]) -> Option<usize>;
}

/// The leading run of ASCII pairs (literal byte, unit) that agree after
/// folding the unit: its length, or `None` at an ASCII mismatch first. A
/// tight loop without bounds checks: the common case of a direct literal
/// comparison.
#[inline(always)]
fn ascii_run(pairs: impl Iterator<Item = (u8, u32)>) -> Option<usize> {
    let mut n = 0usize;
    for (b, u) in pairs {
        if b >= 0x80 || u >= 0x80 {
            break;
        }
        if (u as u8).to_ascii_uppercase() != b {
            return None;
        }
        n = n.wrapping_add(1);
    }
    Some(n)
}

/// [`Units::for_ascii`] over `rest`, the units from index `i` on: four
/// units per loop iteration (the loop's own test once per four units), each
/// tested for ASCII, which also tells the optimiser that `f`'s argument is
/// below 0x80 (a 128-entry table read needs no bounds check).
#[inline(always)]
fn for_ascii_units<T: Copy + Into<u32>>(
    rest: &[T],
    i: usize,
    mut f: impl FnMut(u8) -> bool,
) -> ControlFlow<(), usize> {
    const BLOCK: usize = 4;
    let (blocks, tail) = rest.as_chunks::<BLOCK>();
    let mut j = i;
    for block in blocks {
        for (m, &u) in block.iter().enumerate() {
            match u8::try_from(u.into()) {
                Ok(b) if b < 0x80 => {
                    if !f(b) {
                        return ControlFlow::Break(());
                    }
                }
                _ => return ControlFlow::Continue(j.wrapping_add(m)),
            }
        }
        j = j.wrapping_add(BLOCK);
    }
    for &u in tail {
        match u8::try_from(u.into()) {
            Ok(b) if b < 0x80 => {
                if !f(b) {
                    return ControlFlow::Break(());
                }
            }
            _ => return ControlFlow::Continue(j),
        }
        j = j.wrapping_add(1);
    }
    ControlFlow::Continue(j)
}

/// [`ascii_run`] for a glob segment: `?` matches any ASCII unit, an
/// escape stops the run.
#[inline(always)]
fn glob_ascii_run(pairs: impl Iterator<Item = (u8, u32)>) -> Option<usize> {
    let mut n = 0usize;
    for (b, u) in pairs {
        if b >= 0x80 || b == b'\\' || u >= 0x80 {
            break;
        }
        if b != b'?' && (u as u8).to_ascii_uppercase() != b {
            return None;
        }
        n = n.wrapping_add(1);
    }
    Some(n)
}

/// Whether ASCII unit `u` (below 0x80) is in `set`.
#[inline(always)]
fn in_ascii_set(set: &[u64; 2], u: u32) -> bool {
    let w = set.get((u >> 6) as usize & 1).copied().unwrap_or(0);
    w.wrapping_shr(u) & 1 != 0
}

impl Units for [u16] {
    #[inline(always)]
    fn len(&self) -> usize {
        <[u16]>::len(self)
    }
    #[inline(always)]
    fn for_ascii(&self, i: usize, f: impl FnMut(u8) -> bool) -> ControlFlow<(), usize> {
        for_ascii_units(self.get(i..).unwrap_or(&[]), i, f)
    }
    #[inline(always)]
    fn skip_ascii_outside(&self, i: usize, set: &[u64; 2]) -> usize {
        let rest = self.get(i..).unwrap_or(&[]);
        let n = rest
            .iter()
            .position(|&u| u >= 0x80 || in_ascii_set(set, u32::from(u)))
            .unwrap_or(rest.len());
        i.wrapping_add(n)
    }
    #[inline(always)]
    fn unit(&self, i: usize) -> Option<u32> {
        self.get(i).map(|&u| u32::from(u))
    }
    #[inline(always)]
    fn char_at(&self, i: usize) -> Option<(char, usize)> {
        self.get(i)?;
        Some(decode_utf16_at(self, i))
    }
    #[inline]
    fn char_before(&self, i: usize) -> Option<(char, usize)> {
        let last = i.checked_sub(1)?;
        let u = *self.get(last)?;
        if (0xDC00..0xE000).contains(&u) {
            if let Some(first) = last.checked_sub(1) {
                if self
                    .get(first)
                    .is_some_and(|h| (0xD800..0xDC00).contains(h))
                {
                    return Some((decode_utf16_at(self, first).0, first));
                }
            }
        }
        Some((decode_utf16_at(self, last).0, last))
    }
    #[inline(always)]
    fn ascii_match(&self, pos: usize, lit: &[u8]) -> Option<usize> {
        let units = self.get(pos..).unwrap_or(&[]);
        ascii_run(lit.iter().zip(units).map(|(&b, &u)| (b, u32::from(u))))
    }
    #[inline(always)]
    fn glob_ascii_match(&self, pos: usize, seg: &[u8]) -> Option<usize> {
        let units = self.get(pos..).unwrap_or(&[]);
        glob_ascii_run(seg.iter().zip(units).map(|(&b, &u)| (b, u32::from(u))))
    }
    #[inline(always)]
    fn glob_ascii_match_back(&self, end: usize, seg: &[u8]) -> Option<usize> {
        let units = self.get(..end).unwrap_or(&[]);
        glob_ascii_run(
            seg.iter()
                .rev()
                .zip(units.iter().rev())
                .map(|(&b, &u)| (b, u32::from(u))),
        )
    }
    #[inline(always)]
    fn ascii_match_back(&self, end: usize, lit: &[u8]) -> Option<usize> {
        let units = self.get(..end).unwrap_or(&[]);
        ascii_run(
            lit.iter()
                .rev()
                .zip(units.iter().rev())
                .map(|(&b, &u)| (b, u32::from(u))),
        )
    }
}

impl Units for str {
    #[inline(always)]
    fn len(&self) -> usize {
        str::len(self)
    }
    #[inline(always)]
    fn for_ascii(&self, i: usize, f: impl FnMut(u8) -> bool) -> ControlFlow<(), usize> {
        for_ascii_units(self.as_bytes().get(i..).unwrap_or(&[]), i, f)
    }
    #[inline(always)]
    fn skip_ascii_outside(&self, i: usize, set: &[u64; 2]) -> usize {
        let rest = self.as_bytes().get(i..).unwrap_or(&[]);
        let n = rest
            .iter()
            .position(|&u| u >= 0x80 || in_ascii_set(set, u32::from(u)))
            .unwrap_or(rest.len());
        i.wrapping_add(n)
    }
    #[inline(always)]
    fn unit(&self, i: usize) -> Option<u32> {
        self.as_bytes().get(i).map(|&b| u32::from(b))
    }
    #[inline(always)]
    fn char_at(&self, i: usize) -> Option<(char, usize)> {
        let c = self.get(i..)?.chars().next()?;
        Some((c, i.checked_add(c.len_utf8())?))
    }
    #[inline]
    fn char_before(&self, i: usize) -> Option<(char, usize)> {
        let c = self.get(..i)?.chars().next_back()?;
        Some((c, i.checked_sub(c.len_utf8())?))
    }
    #[inline(always)]
    fn ascii_match(&self, pos: usize, lit: &[u8]) -> Option<usize> {
        let bytes = self.as_bytes().get(pos..).unwrap_or(&[]);
        ascii_run(lit.iter().zip(bytes).map(|(&b, &u)| (b, u32::from(u))))
    }
    #[inline(always)]
    fn glob_ascii_match(&self, pos: usize, seg: &[u8]) -> Option<usize> {
        let bytes = self.as_bytes().get(pos..).unwrap_or(&[]);
        glob_ascii_run(seg.iter().zip(bytes).map(|(&b, &u)| (b, u32::from(u))))
    }
    #[inline(always)]
    fn glob_ascii_match_back(&self, end: usize, seg: &[u8]) -> Option<usize> {
        let bytes = self.as_bytes().get(..end).unwrap_or(&[]);
        glob_ascii_run(
            seg.iter()
                .rev()
                .zip(bytes.iter().rev())
                .map(|(&b, &u)| (b, u32::from(u))),
        )
    }
    #[inline(always)]
    fn ascii_match_back(&self, end: usize, lit: &[u8]) -> Option<usize> {
        let bytes = self.as_bytes().get(..end).unwrap_or(&[]);
        ascii_run(
            lit.iter()
                .rev()
                .zip(bytes.iter().rev())
                .map(|(&b, &u)| (b, u32::from(u))),
        )
    }
}

/// The character at unit `pos` of `units` and the index after it: a
/// surrogate pair gives its character, an unpaired surrogate U+FFFD.
/// `pos` past the end gives U+FFFD and `pos + 1` (callers check first).
#[inline]
pub(crate) fn decode_utf16_at(units: &[u16], pos: usize) -> (char, usize) {
    let next = pos.wrapping_add(1);
    let u = units.get(pos).copied().unwrap_or(0xFFFD);
    if (0xD800..0xDC00).contains(&u) {
        if let Some(&lo) = units.get(next) {
            if (0xDC00..0xE000).contains(&lo) {
                let hi_bits = u32::from(u).wrapping_sub(0xD800) << 10;
                let lo_bits = u32::from(lo).wrapping_sub(0xDC00);
                let c = char::from_u32(0x10000u32.wrapping_add(hi_bits | lo_bits))
                    .unwrap_or('\u{FFFD}');
                return (c, next.wrapping_add(1));
            }
        }
        return ('\u{FFFD}', next);
    }
    (char::from_u32(u32::from(u)).unwrap_or('\u{FFFD}'), next)
}

/// The character of validated UTF-8 `bytes` starting at byte `i`, and the
/// index after it. Malformed input (impossible after validation) gives
/// `None`, which callers treat as a mismatch.
#[inline(always)]
fn utf8_at(bytes: &[u8], i: usize) -> Option<(char, usize)> {
    let b0 = *bytes.get(i)?;
    if b0 < 0x80 {
        return Some((char::from(b0), i.wrapping_add(1)));
    }
    let n = match b0 {
        0xC0..=0xDF => 2usize,
        0xE0..=0xEF => 3,
        0xF0..=0xF7 => 4,
        _ => return None,
    };
    let end = i.checked_add(n)?;
    let s = core::str::from_utf8(bytes.get(i..end)?).ok()?;
    Some((s.chars().next()?, end))
}

/// The character of validated UTF-8 `bytes` ending at byte `end`, and the
/// index where it starts (see [`utf8_at`]).
#[inline]
fn utf8_before(bytes: &[u8], end: usize) -> Option<(char, usize)> {
    let last = end.checked_sub(1)?;
    if *bytes.get(last)? < 0x80 {
        return Some((char::from(*bytes.get(last)?), last));
    }
    let mut start = last;
    while start > 0 && bytes.get(start).is_some_and(|b| b & 0xC0 == 0x80) {
        start = start.wrapping_sub(1);
    }
    let (c, next) = utf8_at(bytes, start)?;
    (next == end).then_some((c, start))
}

/// Whether the folded text at position `pos` continues with the folded
/// literal `lit` (validated UTF-8); the position after it if so. An ASCII
/// literal byte against an ASCII unit compares directly.
#[inline]
fn folded_at<U: Units + ?Sized>(text: &U, pos: usize, lit: &[u8]) -> Option<usize> {
    // The ASCII run first, in a tight loop; then character by character.
    let mut i = text.ascii_match(pos, lit)?;
    let mut pos = pos.wrapping_add(i);
    while let Some(&b) = lit.get(i) {
        let u = text.unit(pos)?;
        if b < 0x80 && u < 0x80 {
            if (u as u8).to_ascii_uppercase() != b {
                return None;
            }
            i = i.wrapping_add(1);
            pos = pos.wrapping_add(1);
            continue;
        }
        let (l, next_i) = utf8_at(lit, i)?;
        let (c, next) = text.char_at(pos)?;
        if fold_char(c) != l {
            return None;
        }
        i = next_i;
        pos = next;
    }
    Some(pos)
}

/// A literal test evaluated directly (an atom the prefilter does not
/// decide): `lit` is the folded literal (validated UTF-8), the text is
/// folded as it is read. `contains` tries every start where the first
/// character can be: O(text × literal) in the worst case, like
/// [`glob_match`]; it runs only for candidate rules.
pub(crate) fn literal_match(kind: channel_format::AtomKind, lit: &[u8], text: Text<'_>) -> bool {
    match text {
        // Every UTF-16 unit folds to at least one UTF-8 byte (a pair to a
        // 4-byte character: no supplementary character folds to ASCII;
        // `fold_never_shortens_utf16` checks every character), so a name of
        // more units than the literal has bytes cannot equal it.
        Text::Utf16(units)
            if kind == channel_format::AtomKind::EXACT && units.len() > lit.len() =>
        {
            false
        }
        Text::Utf16(units) => literal_units(kind, lit, units),
        Text::Utf8(s) => literal_units(kind, lit, s),
    }
}

/// [`literal_match`] for an anchored literal (`prefix`, `suffix`, `exact`),
/// with `ascii`: every byte of `lit` is ASCII (precomputed). Then the units
/// next to the anchor are compared directly, the anchor's neighbour first
/// (for `suffix` and `exact` the last unit): an ASCII unit against its
/// literal byte decides a mismatch at once; the first non-ASCII unit hands
/// the test to [`literal_match`] (a non-ASCII character can fold to ASCII,
/// e.g. U+017F to `S`). A text with fewer units than the literal has bytes
/// cannot match it: every text character a literal ASCII byte matches is
/// one unit (UTF-16) or at least one byte (UTF-8). Same verdict as
/// [`literal_match`].
#[inline(always)]
pub(crate) fn anchored_match(
    kind: channel_format::AtomKind,
    lit: &[u8],
    ascii: bool,
    text: Text<'_>,
) -> bool {
    if ascii {
        let fast = match text {
            Text::Utf16(units) => ascii_anchored(kind, lit, units),
            Text::Utf8(s) => ascii_anchored(kind, lit, s.as_bytes()),
        };
        if let Some(v) = fast {
            return v;
        }
    }
    literal_match(kind, lit, text)
}

/// [`anchored_match`] out of line (for candidate rules' atoms; the direct
/// ALWAYS rules inline it).
#[inline(never)]
pub(crate) fn anchored_match_call(
    kind: channel_format::AtomKind,
    lit: &[u8],
    ascii: bool,
    text: Text<'_>,
) -> bool {
    anchored_match(kind, lit, ascii, text)
}

/// The ASCII part of [`anchored_match`]: `Some` verdict, or `None` when
/// a non-ASCII unit is reached before a mismatch (or an `exact` text's
/// length differs from the literal's: UTF-8 may still fold to it).
/// Four units at a time from the anchor, then one at a time.
#[inline(always)]
fn ascii_anchored<T: AsciiUnit>(
    kind: channel_format::AtomKind,
    lit: &[u8],
    units: &[T],
) -> Option<bool> {
    use channel_format::AtomKind;
    let Some(rest) = units.len().checked_sub(lit.len()) else {
        return Some(false);
    };
    let window = match kind {
        AtomKind::PREFIX => units.get(..lit.len()),
        AtomKind::SUFFIX => units.get(rest..),
        AtomKind::EXACT if rest == 0 => Some(units),
        _ => None,
    }?;
    // UTF-16: each literal byte is matched by exactly one unit (a
    // character folding to ASCII is one BMP unit), so a mismatch of an
    // ASCII unit anywhere decides. The four units farthest from the
    // anchor first: they differ more often (paths share their `.exe`
    // endings, or `C:\` starts).
    if T::ONE_UNIT_PER_ASCII_MATCH && lit.len() > 4 {
        let far = match kind {
            AtomKind::PREFIX => lit.last_chunk::<4>().zip(window.last_chunk::<4>()),
            _ => lit.first_chunk::<4>().zip(window.first_chunk::<4>()),
        };
        if let Some((l, u)) = far {
            if T::pack(u).is_some_and(|p| fold4(p) != u32::from_le_bytes(*l)) {
                return Some(false);
            }
        }
    }
    match kind {
        AtomKind::PREFIX => ascii_prefix(lit, window),
        _ => ascii_suffix(lit, window),
    }
}

/// A text unit that can be packed: UTF-16 units or UTF-8 bytes.
trait AsciiUnit: Copy + Into<u32> {
    /// Whether every text character that folds to an ASCII byte is one
    /// unit (UTF-16), so that unit `i` of an anchored window always faces
    /// literal byte `i`; not so for UTF-8 (U+017F, two bytes, folds to
    /// `S`).
    const ONE_UNIT_PER_ASCII_MATCH: bool;
    /// Four units as four bytes (little-endian), if all are ASCII.
    fn pack(c: &[Self; 4]) -> Option<u32>;
}

impl AsciiUnit for u16 {
    const ONE_UNIT_PER_ASCII_MATCH: bool = true;
    #[inline(always)]
    fn pack(c: &[u16; 4]) -> Option<u32> {
        let [a, b, d, e] = c.map(u64::from);
        let w = a | b << 16 | d << 32 | e << 48;
        if w & 0xFF80_FF80_FF80_FF80 != 0 {
            return None;
        }
        // Each lane's byte next to the previous lane's.
        let x = (w | w >> 8) & 0x0000_FFFF_0000_FFFF;
        Some((x | x >> 16) as u32)
    }
}

impl AsciiUnit for u8 {
    const ONE_UNIT_PER_ASCII_MATCH: bool = false;
    #[inline(always)]
    fn pack(c: &[u8; 4]) -> Option<u32> {
        let w = u32::from_le_bytes(*c);
        (w & 0x8080_8080 == 0).then_some(w)
    }
}

/// Four ASCII bytes, each folded to upper case (no carry crosses a byte:
/// every byte is below 0x80).
#[inline(always)]
fn fold4(p: u32) -> u32 {
    // Bit 7 of a byte: at least `a` (0x61) and not above `z` (0x7A).
    let lower = (p.wrapping_add(0x1F1F_1F1F) & !p.wrapping_add(0x0505_0505)) & 0x8080_8080;
    p.wrapping_sub(lower >> 2)
}

/// `lit` (ASCII) against the units of the same length, from the last:
/// see [`ascii_anchored`].
#[inline(always)]
fn ascii_suffix<T: AsciiUnit>(mut lit: &[u8], mut units: &[T]) -> Option<bool> {
    while let (Some((l_rest, l)), Some((u_rest, u))) =
        (lit.split_last_chunk::<4>(), units.split_last_chunk::<4>())
    {
        let p = T::pack(u)?;
        if fold4(p) != u32::from_le_bytes(*l) {
            return Some(false);
        }
        (lit, units) = (l_rest, u_rest);
    }
    ascii_run_eq(lit.iter().rev().zip(units.iter().rev()))
}

/// `lit` (ASCII) against the first units, from the first: see
/// [`ascii_anchored`].
#[inline(always)]
fn ascii_prefix<T: AsciiUnit>(mut lit: &[u8], mut units: &[T]) -> Option<bool> {
    while let (Some((l, l_rest)), Some((u, u_rest))) =
        (lit.split_first_chunk::<4>(), units.split_first_chunk::<4>())
    {
        let p = T::pack(u)?;
        if fold4(p) != u32::from_le_bytes(*l) {
            return Some(false);
        }
        (lit, units) = (l_rest, u_rest);
    }
    ascii_run_eq(lit.iter().zip(units))
}

/// Whether each ASCII literal byte equals its folded unit, in order, up to
/// the first non-ASCII unit (`None` there): `Some(false)` at the first
/// mismatch, `Some(true)` when the pairs end.
#[inline(always)]
fn ascii_run_eq<'l, 'u, T: Copy + Into<u32> + 'u>(
    pairs: impl Iterator<Item = (&'l u8, &'u T)>,
) -> Option<bool> {
    for (&b, &u) in pairs {
        let u: u32 = u.into();
        if u >= 0x80 {
            return None;
        }
        if (u as u8).to_ascii_uppercase() != b {
            return Some(false);
        }
    }
    Some(true)
}

fn literal_units<U: Units + ?Sized>(kind: channel_format::AtomKind, lit: &[u8], text: &U) -> bool {
    use channel_format::AtomKind;
    match kind {
        AtomKind::PREFIX => folded_at(text, 0, lit).is_some(),
        AtomKind::EXACT => folded_at(text, 0, lit) == Some(text.len()),
        AtomKind::SUFFIX => {
            // The ASCII run first, in a tight loop; then as below.
            let Some(n) = text.ascii_match_back(text.len(), lit) else {
                return false;
            };
            let (mut pos, mut i) = (text.len().wrapping_sub(n), lit.len().wrapping_sub(n));
            while i > 0 {
                // ASCII against ASCII: no decoding.
                if let (Some(&b), Some(u)) =
                    (lit.get(i.wrapping_sub(1)), text.unit(pos.wrapping_sub(1)))
                {
                    if b < 0x80 && u < 0x80 && pos > 0 {
                        if (u as u8).to_ascii_uppercase() != b {
                            return false;
                        }
                        i = i.wrapping_sub(1);
                        pos = pos.wrapping_sub(1);
                        continue;
                    }
                }
                let Some((l, start_i)) = utf8_before(lit, i) else {
                    return false;
                };
                match text.char_before(pos) {
                    Some((c, start)) if fold_char(c) == l => pos = start,
                    _ => return false,
                }
                i = start_i;
            }
            true
        }
        AtomKind::CONTAINS => {
            let first = lit.first().copied().filter(u8::is_ascii);
            let mut pos = 0usize;
            loop {
                if let Some(b) = first {
                    pos = skip_to(text, pos, b);
                }
                if folded_at(text, pos, lit).is_some() {
                    return true;
                }
                match text.char_at(pos) {
                    Some((_, next)) => pos = next,
                    None => return false,
                }
            }
        }
        _ => false,
    }
}

/// Iterator over the characters of a [`Text`].
#[derive(Debug, Clone)]
pub struct Chars<'e> {
    text: Text<'e>,
    pos: usize,
}

impl Iterator for Chars<'_> {
    type Item = char;
    #[inline]
    fn next(&mut self) -> Option<char> {
        let (c, next) = self.text.char_at(self.pos)?;
        self.pos = next;
        Some(c)
    }
}

/// A token of a stored glob pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GlobTok {
    Lit(char),
    Star,
    One,
}

/// Decodes the glob token at byte `pos` of a stored (folded, escaped) glob:
/// `*`, `?`, `\*`, `\?`, `\\` or a literal character.
#[inline(always)]
pub(crate) fn glob_tok(pat: &[u8], pos: usize) -> Option<(GlobTok, usize)> {
    let (c, next) = utf8_at(pat, pos)?;
    match c {
        '*' => Some((GlobTok::Star, next)),
        '?' => Some((GlobTok::One, next)),
        '\\' => match *pat.get(next)? {
            e @ (b'*' | b'?' | b'\\') => Some((GlobTok::Lit(char::from(e)), next.checked_add(1)?)),
            _ => None,
        },
        c => Some((GlobTok::Lit(c), next)),
    }
}

/// Validates a stored glob: well-formed escapes, folded literals, no U+FFFD.
/// Returns `Err(())` with no detail; the caller names the atom.
pub(crate) fn validate_glob(pat: &str) -> Result<(), &'static str> {
    let bytes = pat.as_bytes();
    let mut pos = 0;
    while pos < bytes.len() {
        let (tok, next) = glob_tok(bytes, pos).ok_or("a backslash must escape `*`, `?` or `\\`")?;
        if let GlobTok::Lit(c) = tok {
            if fold_char(c) != c {
                return Err("literal is not case-folded");
            }
        }
        pos = next;
    }
    Ok(())
}

/// Where a segment of a glob (the tokens between two stars) ends: the
/// byte index of the next unescaped `*` at or after `p`, or the pattern's
/// end. A byte scan: UTF-8 continuation bytes are never `*` or `\\`.
#[inline]
fn segment_end(pat: &[u8], mut p: usize) -> usize {
    while let Some(&b) = pat.get(p) {
        match b {
            b'*' => return p,
            b'\\' => p = p.wrapping_add(2),
            _ => p = p.wrapping_add(1),
        }
    }
    pat.len()
}

/// Length of a segment in characters (a byte scan: every byte that starts
/// a character, except the backslash of an escape).
fn segment_chars(seg: &[u8]) -> usize {
    let mut n = 0usize;
    let mut p = 0usize;
    while let Some(&b) = seg.get(p) {
        if b & 0xC0 != 0x80 {
            n = n.wrapping_add(1);
        }
        // An escape is two bytes for one character.
        p = p.wrapping_add(if b == b'\\' { 2 } else { 1 });
    }
    n
}

/// Whether the segment `seg` (literals and `?`, no star) matches the folded
/// text at `pos`; the position after it if so. Runs of ASCII literal bytes
/// and `?` against ASCII units compare in a tight loop
/// ([`Units::glob_ascii_match`]); anything else decodes one token.
#[inline]
fn segment_at<U: Units + ?Sized>(seg: &[u8], text: &U, mut pos: usize) -> Option<usize> {
    let mut p = 0usize;
    loop {
        let rest = seg.get(p..).unwrap_or(&[]);
        let n = text.glob_ascii_match(pos, rest)?;
        if n == rest.len() {
            return Some(pos.wrapping_add(n));
        }
        p = p.wrapping_add(n);
        pos = pos.wrapping_add(n);
        // An escape (`\\*`, `\\?` or `\\\\`: a character that folds only
        // to itself) against an ASCII unit: compared directly.
        if let (Some(b'\\'), Some(&e), Some(u)) =
            (rest.get(n), seg.get(p.wrapping_add(1)), text.unit(pos))
        {
            if u < 0x80 {
                if u != u32::from(e) {
                    return None;
                }
                p = p.wrapping_add(2);
                pos = pos.wrapping_add(1);
                continue;
            }
        }
        // A non-ASCII literal or unit, or the end of the text: one token.
        let (tok, next_p) = glob_tok(seg, p)?;
        let (c, next) = text.char_at(pos)?;
        if let GlobTok::Lit(l) = tok {
            if fold_char(c) != l {
                return None;
            }
        }
        p = next_p;
        pos = next;
    }
}

/// The first position at or after `pos` whose unit is the folded ASCII
/// byte `b` (either case) or not ASCII; the end if none.
#[inline]
fn skip_to<U: Units + ?Sized>(text: &U, pos: usize, b: u8) -> usize {
    // The ASCII units that fold to `b`: itself and, for a letter, its
    // lower case.
    let mut set = [0u64; 2];
    for u in [b, b.to_ascii_lowercase()] {
        if u.to_ascii_uppercase() != b {
            continue;
        }
        if let Some(w) = set.get_mut(usize::from(u >> 6) & 1) {
            *w |= 1u64.wrapping_shl(u32::from(u));
        }
    }
    text.skip_ascii_outside(pos, &set)
}

/// Whether the whole text, folded, matches the glob (`*` any run, `?` one
/// character). The pattern is cut at its stars into segments of fixed
/// length: the first must match at the start, the last at the end, and the
/// ones between are found leftmost-first in order (which finds a match
/// whenever one exists, as each segment has a fixed length). Never
/// allocates, never fails; O(text × pattern) in the worst case, linear in
/// the text for the usual pattern.
pub(crate) fn glob_match(pat: &[u8], text: Text<'_>) -> bool {
    match text {
        Text::Utf16(units) => glob_units(pat, units),
        Text::Utf8(s) => glob_units(pat, s),
    }
}

fn glob_units<U: Units + ?Sized>(pat: &[u8], text: &U) -> bool {
    let first_end = segment_end(pat, 0);
    let Some(first) = pat.get(..first_end) else {
        return false;
    };
    if first_end == pat.len() {
        return segment_at(first, text, 0) == Some(text.len());
    }
    let Some(mut pos) = segment_at(first, text, 0) else {
        return false;
    };
    // The last segment: after the last star, anchored at the end.
    let mut last_star = first_end;
    let mut p = first_end;
    while p < pat.len() {
        let end = segment_end(pat, p);
        if end < pat.len() {
            last_star = end;
            p = end.saturating_add(1);
        } else {
            break;
        }
    }
    let last = pat.get(last_star.saturating_add(1)..).unwrap_or(&[]);
    let mut tail = text.len();
    // An ASCII last segment against ASCII units: one unit per byte, found
    // by one backward comparison (a mismatch there is final).
    let matched = match text.glob_ascii_match_back(tail, last) {
        None => return false,
        Some(n) if n == last.len() => {
            tail = tail.wrapping_sub(n);
            true
        }
        Some(_) => {
            for _ in 0..segment_chars(last) {
                match text.char_before(tail) {
                    Some((_, start)) => tail = start,
                    None => return false,
                }
            }
            false
        }
    };
    if tail < pos || !(matched || segment_at(last, text, tail) == Some(text.len())) {
        return false;
    }
    // The middle segments, leftmost first, each ending by `tail`.
    let mut p = first_end.saturating_add(1);
    while p <= last_star {
        let end = segment_end(pat, p).min(last_star);
        let seg = pat.get(p..end).unwrap_or(&[]);
        p = end.saturating_add(1);
        if seg.is_empty() {
            continue;
        }
        // A segment starting with an ASCII letter or digit is only tried
        // where the text has it (or a non-ASCII character, which may fold
        // to it).
        let first = match glob_tok(seg, 0) {
            Some((GlobTok::Lit(c), _)) if c.is_ascii() => Some(c as u8),
            _ => None,
        };
        loop {
            if let Some(b) = first {
                pos = skip_to(text, pos, b);
            }
            match segment_at(seg, text, pos) {
                Some(after) if after <= tail => {
                    pos = after;
                    break;
                }
                _ => {}
            }
            match text.char_at(pos) {
                Some((_, next)) if next <= tail => pos = next,
                _ => return false,
            }
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deterministic xorshift32 generator: each call returns a value
    /// below `n`.
    fn xorshift(mut seed: u32) -> impl FnMut(usize) -> usize {
        move |n| {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            seed as usize % n
        }
    }

    #[test]
    // 1.1 million characters: too slow under Miri, and no unsafe code.
    #[cfg_attr(miri, ignore)]
    fn fold_never_shortens_utf16() {
        // The premise of `literal_match`'s length check for EXACT.
        for c in (0..=0x10_FFFFu32).filter_map(char::from_u32) {
            assert!(
                fold_char(c).len_utf8() >= c.len_utf16(),
                "U+{:04X} folds to fewer UTF-8 bytes than its UTF-16 units",
                u32::from(c)
            );
        }
        // An unpaired surrogate reads as U+FFFD (3 bytes).
        assert_eq!(fold_char('\u{FFFD}').len_utf8(), 3);
    }

    fn g(p: &str, t: &str) -> bool {
        glob_match(p.as_bytes(), Text::Utf8(t))
    }

    /// Independent reference: dynamic programming over characters.
    fn glob_dp(pat: &str, text: &str) -> bool {
        let mut toks = std::vec::Vec::new();
        let mut p = 0;
        while let Some((t, n)) = glob_tok(pat.as_bytes(), p) {
            toks.push(t);
            p = n;
        }
        if p != pat.len() {
            return false; // a malformed escape never matches
        }
        let text: std::vec::Vec<char> = text.chars().map(fold_char).collect();
        let mut reach = std::vec![false; text.len() + 1];
        reach[0] = true;
        for t in toks {
            let mut next = std::vec![false; text.len() + 1];
            for j in 0..=text.len() {
                match t {
                    GlobTok::Star => next[j] = reach[..=j].iter().any(|&r| r),
                    GlobTok::One => next[j] = j > 0 && reach[j - 1],
                    GlobTok::Lit(l) => next[j] = j > 0 && reach[j - 1] && text[j - 1] == l,
                }
            }
            reach = next;
        }
        reach[text.len()]
    }

    #[test]
    fn glob_basics() {
        assert!(g("*A?C", "xaxbabc"));
        assert!(g("A*", "a"));
        assert!(!g("?", ""));
        assert!(g("*", ""));
        assert!(g("\\*", "*"));
        assert!(!g("\\*", "a"));
        assert!(g("\\\\PIPE\\\\*", "\\pipe\\x"));
        assert!(g("A*B*C", "aXXbYYc"));
        assert!(!g("A*B*C", "aXXbYY"));
        assert!(g("**", "abc"));
        assert!(
            !g("AB*BA", "aba"),
            "first and last segments may not overlap"
        );
        assert!(g("AB*BA", "abba"));
        assert!(g("*Ä", "xä"));
        assert!(!g("*A", "xä"));
        assert!(g("*S?", "xſ😀"), "ſ folds to S; ? takes a whole character");
        assert!(!g("A\\", "a"), "a malformed escape never matches");
    }

    #[test]
    fn glob_agrees_with_dynamic_programming() {
        // Random globs (stars, `?`, escapes, letters that fold, non-ASCII)
        // over random texts, as UTF-8 and as UTF-16.
        let pat_alphabet: &[&str] = &[
            "*", "*", "?", "\\\\", "\\*", "\\?", "A", "B", "_", "1", "Ä", "S",
        ];
        let text_alphabet: &[&str] =
            &["a", "A", "b", "B", "_", "1", "*", "?", "\\", "ä", "ſ", "😀"];
        let mut next = xorshift(0x2545_f491);
        // Fewer under Miri (slow), still both outcomes.
        let rounds = if cfg!(miri) { 600 } else { 30_000 };
        let mut matches = 0;
        for _ in 0..rounds {
            let mut pat = std::string::String::new();
            for _ in 0..next(7) {
                pat.push_str(pat_alphabet[next(pat_alphabet.len())]);
            }
            let mut text = std::string::String::new();
            for _ in 0..next(9) {
                text.push_str(text_alphabet[next(text_alphabet.len())]);
            }
            let units: std::vec::Vec<u16> = text.encode_utf16().collect();
            let want = glob_dp(&pat, &text);
            matches += usize::from(want);
            assert_eq!(g(&pat, &text), want, "{pat:?} {text:?}");
            assert_eq!(
                glob_match(pat.as_bytes(), Text::Utf16(&units)),
                want,
                "{pat:?} {text:?}"
            );
        }
        assert!(
            (rounds / 30..rounds - rounds / 30).contains(&matches),
            "{matches} matches: both outcomes exercised"
        );
    }

    #[test]
    fn literals_agree_with_folded_comparison() {
        use channel_format::AtomKind;
        let lits = ["A", "AB", "ÄB", "S", "\\PIPE\\", "B😀"];
        let texts = [
            "",
            "ab",
            "xab",
            "äb",
            "Äbx",
            "ſ",
            "x\\pipe\\y",
            "\\PIPE\\",
            "b😀",
            "xb😀",
        ];
        for lit in lits {
            for text in texts {
                let folded: std::string::String = text.chars().map(fold_char).collect();
                let units: std::vec::Vec<u16> = text.encode_utf16().collect();
                for (kind, want) in [
                    (AtomKind::PREFIX, folded.starts_with(lit)),
                    (AtomKind::SUFFIX, folded.ends_with(lit)),
                    (AtomKind::EXACT, folded == lit),
                    (AtomKind::CONTAINS, folded.contains(lit)),
                ] {
                    assert_eq!(
                        literal_match(kind, lit.as_bytes(), Text::Utf8(text)),
                        want,
                        "{kind:?} {lit:?} {text:?}"
                    );
                    assert_eq!(
                        literal_match(kind, lit.as_bytes(), Text::Utf16(&units)),
                        want,
                        "{kind:?} {lit:?} {text:?} UTF-16"
                    );
                }
            }
        }
        // An unpaired surrogate is U+FFFD, which no literal holds.
        let units = [0x5Cu16, 0xD800, 0x41];
        assert!(literal_match(AtomKind::SUFFIX, b"A", Text::Utf16(&units)));
        assert!(!literal_match(
            AtomKind::CONTAINS,
            "\u{FFFD}A".as_bytes(),
            Text::Utf16(&[0x41])
        ));
    }

    /// The reference for anchored literals: fold the whole text, compare.
    fn anchored_want(kind: channel_format::AtomKind, lit: &str, text: &str) -> bool {
        use channel_format::AtomKind;
        let folded: std::string::String = text.chars().map(fold_char).collect();
        match kind {
            AtomKind::PREFIX => folded.starts_with(lit),
            AtomKind::SUFFIX => folded.ends_with(lit),
            _ => folded == lit,
        }
    }

    /// `anchored_match` (the direct ALWAYS rules' and candidates' anchored
    /// literals) on UTF-8 and UTF-16, with and without its ASCII flag.
    fn check_anchored(kind: channel_format::AtomKind, lit: &str, text: &str) -> bool {
        let want = anchored_want(kind, lit, text);
        let units: std::vec::Vec<u16> = text.encode_utf16().collect();
        for ascii in [lit.is_ascii(), false] {
            assert_eq!(
                anchored_match(kind, lit.as_bytes(), ascii, Text::Utf8(text)),
                want,
                "{kind:?} {lit:?} {text:?} ascii={ascii}"
            );
            assert_eq!(
                anchored_match(kind, lit.as_bytes(), ascii, Text::Utf16(&units)),
                want,
                "{kind:?} {lit:?} {text:?} ascii={ascii} UTF-16"
            );
        }
        want
    }

    #[test]
    fn anchored_literal_edge_cases() {
        use channel_format::AtomKind;
        const PREFIX: AtomKind = AtomKind::PREFIX;
        const SUFFIX: AtomKind = AtomKind::SUFFIX;
        const EXACT: AtomKind = AtomKind::EXACT;
        let lit = "\\SCRCONS.EXE";
        for kind in [PREFIX, SUFFIX, EXACT] {
            // Empty text, shorter than the literal, one unit short.
            assert!(!check_anchored(kind, lit, ""));
            assert!(!check_anchored(kind, lit, "s.exe"));
            assert!(!check_anchored(kind, lit, "scrcons.exe"));
            // The literal itself, in any case.
            assert!(check_anchored(kind, lit, "\\scrcons.exe"));
            assert!(check_anchored(kind, lit, "\\ScRcOnS.ExE"));
            // Non-ASCII characters that fold to ASCII (U+017F to S, U+0131
            // to I): they match, and in UTF-8 they are longer than the
            // byte they face.
            assert!(check_anchored(kind, lit, "\\\u{17F}crcon\u{17F}.exe"));
            assert!(check_anchored(kind, "\\PSEXEC.EXE", "\\p\u{17F}exec.exe"));
            assert!(check_anchored(kind, "ABI", "ab\u{131}"));
            // Non-ASCII that does not fold to ASCII, and surrogate pairs.
            assert!(!check_anchored(kind, lit, "\\scrcons.ex\u{E9}"));
            assert!(!check_anchored(kind, lit, "\\\u{E4}crcons.exe"));
            assert!(!check_anchored(kind, lit, "\\scrcons.\u{1F600}"));
            // An empty literal matches every text.
            assert!(
                check_anchored(kind, "", "") && (kind == EXACT || check_anchored(kind, "", "x"))
            );
        }
        assert!(check_anchored(
            SUFFIX,
            lit,
            "C:\\Windows\\System32\\wbem\\scrcons.exe"
        ));
        assert!(!check_anchored(
            SUFFIX,
            lit,
            "C:\\Windows\\System32\\svchost.exe"
        ));
        assert!(!check_anchored(SUFFIX, lit, "C:\\x\\Xscrcons.exe"));
        assert!(check_anchored(
            PREFIX,
            "C:\\PROGRAM FILES\\",
            "c:\\Program Files\\x"
        ));
        assert!(!check_anchored(
            PREFIX,
            "C:\\PROGRAM FILES\\",
            "c:\\Program Files (x86)\\x"
        ));
        // A non-ASCII literal (the fast path does not apply).
        assert!(check_anchored(SUFFIX, "\\\u{C4}BC.EXE", "x\\\u{E4}bc.exe"));
        // An unpaired surrogate reads as U+FFFD: no literal holds it.
        let lone = [0x5Cu16, 0xD800, 0x41, 0x42, 0x43, 0x44];
        assert!(anchored_match(SUFFIX, b"ABCD", true, Text::Utf16(&lone)));
        assert!(!anchored_match(
            SUFFIX,
            b"\\XABCD",
            true,
            Text::Utf16(&lone)
        ));
        assert!(!anchored_match(EXACT, b"\\XABCD", true, Text::Utf16(&lone)));
    }

    #[test]
    fn anchored_literals_agree_with_folded_comparison() {
        use channel_format::AtomKind;
        // Literals of 1 to 13 bytes (whole chunks of four, the far chunk,
        // remainders), texts around them with letters in both cases and
        // characters that fold to ASCII or not.
        let lit_alphabet: &[&str] = &["A", "S", "\\", ".", "E", "I", "1", "\u{C4}"];
        let text_alphabet: &[&str] = &[
            "a",
            "A",
            "s",
            "S",
            "\\",
            ".",
            "e",
            "E",
            "i",
            "1",
            "\u{17F}",
            "\u{131}",
            "\u{E4}",
            "\u{C4}",
            "\u{1F600}",
        ];
        let mut next = xorshift(0x9e37_79b9);
        let rounds = if cfg!(miri) { 300 } else { 20_000 };
        let mut matches = 0;
        for _ in 0..rounds {
            let mut lit = std::string::String::new();
            for _ in 0..1 + next(13) {
                lit.push_str(lit_alphabet[next(lit_alphabet.len())]);
            }
            // Mostly the literal with a few characters changed, in a
            // random case, with text around it.
            let mut text = std::string::String::new();
            for _ in 0..next(3) {
                text.push_str(text_alphabet[next(text_alphabet.len())]);
            }
            for c in lit.chars() {
                match next(8) {
                    0 => text.push_str(text_alphabet[next(text_alphabet.len())]),
                    1 => text.extend(c.to_lowercase()),
                    _ => text.push(c),
                }
            }
            let after = next(3);
            for _ in 0..after {
                text.push_str(text_alphabet[next(text_alphabet.len())]);
            }
            for kind in [AtomKind::PREFIX, AtomKind::SUFFIX, AtomKind::EXACT] {
                matches += usize::from(check_anchored(kind, &lit, &text));
            }
        }
        assert!(matches > rounds / 20, "{matches} matches");
    }

    #[test]
    fn utf16_surrogates() {
        let units = [0x41u16, 0xD800, 0x42, 0xD83D, 0xDE00];
        let t = Text::Utf16(&units);
        let s: heapless_string::S = t.chars().collect();
        assert_eq!(s.as_str(), "A\u{FFFD}B\u{1F600}");
        // Backwards, the same characters.
        let mut pos = units.len();
        let mut back = std::vec::Vec::new();
        while let Some((c, start)) = units[..].char_before(pos) {
            back.push(c);
            pos = start;
        }
        back.reverse();
        assert_eq!(
            back.into_iter().collect::<std::string::String>(),
            "A\u{FFFD}B\u{1F600}"
        );
        let lone_low = [0xDC00u16, 0xD800, 0xDC00];
        assert_eq!(lone_low[..].char_before(3), Some(('\u{10000}', 1)));
        assert_eq!(lone_low[..].char_before(1), Some(('\u{FFFD}', 0)));
    }

    mod heapless_string {
        pub struct S(std::string::String);
        impl FromIterator<char> for S {
            fn from_iter<I: IntoIterator<Item = char>>(i: I) -> Self {
                S(i.into_iter().collect())
            }
        }
        impl S {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }
    }

    #[test]
    fn folding() {
        assert_eq!(fold_char('a'), 'A');
        assert_eq!(fold_char('ä'), 'Ä');
        assert_eq!(fold_char('ß'), 'ß'); // upper case is "SS": two characters
        assert_eq!(fold_char('ı'), 'I');
        assert!(is_folded("\\PIPE\\Ä"));
        assert!(!is_folded("\\pipe"));
    }
}
