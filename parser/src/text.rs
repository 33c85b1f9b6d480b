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
    #[inline]
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

    /// The character ending at `pos` and the position where it starts;
    /// `None` at the start. Consistent with [`Text::char_at`]: a surrogate
    /// pairs only with its immediate neighbour, so decoding backwards finds
    /// the same characters.
    #[inline]
    pub(crate) fn char_before(&self, pos: usize) -> Option<(char, usize)> {
        match *self {
            Text::Utf16(units) => {
                let last = pos.checked_sub(1)?;
                let u = *units.get(last)?;
                if (0xDC00..0xE000).contains(&u) {
                    if let Some(first) = last.checked_sub(1) {
                        if units.get(first).is_some_and(|h| (0xD800..0xDC00).contains(h)) {
                            return Some((decode_utf16_at(units, first).0, first));
                        }
                    }
                }
                Some((decode_utf16_at(units, last).0, last))
            }
            Text::Utf8(s) => {
                let c = s.get(..pos)?.chars().next_back()?;
                Some((c, pos.checked_sub(c.len_utf8())?))
            }
        }
    }

    /// Length in units (UTF-16) or bytes (UTF-8).
    #[inline]
    pub(crate) fn len(&self) -> usize {
        match *self {
            Text::Utf16(units) => units.len(),
            Text::Utf8(s) => s.len(),
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

/// Whether the folded text at character position `pos` continues with the
/// folded literal `lit`; the position after it if so.
#[inline]
fn folded_at(text: Text<'_>, mut pos: usize, lit: &str) -> Option<usize> {
    for l in lit.chars() {
        let (c, next) = text.char_at(pos)?;
        if fold_char(c) != l {
            return None;
        }
        pos = next;
    }
    Some(pos)
}

/// A literal test evaluated directly (an atom the prefilter does not
/// report): `lit` is folded, the text is folded as it is read.
/// `contains` tries every start: O(text × literal) in the worst case, like
/// [`glob_match`]; it runs only for candidate rules.
pub(crate) fn literal_match(kind: channel_format::AtomKind, lit: &str, text: Text<'_>) -> bool {
    use channel_format::AtomKind;
    match kind {
        AtomKind::PREFIX => folded_at(text, 0, lit).is_some(),
        AtomKind::EXACT => folded_at(text, 0, lit) == Some(text.len()),
        AtomKind::SUFFIX => {
            let mut pos = text.len();
            for l in lit.chars().rev() {
                match text.char_before(pos) {
                    Some((c, start)) if fold_char(c) == l => pos = start,
                    _ => return false,
                }
            }
            true
        }
        AtomKind::CONTAINS => {
            let mut pos = 0usize;
            loop {
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
#[inline]
pub(crate) fn glob_tok(pat: &str, pos: usize) -> Option<(GlobTok, usize)> {
    let c = pat.get(pos..)?.chars().next()?;
    let next = pos.checked_add(c.len_utf8())?;
    match c {
        '*' => Some((GlobTok::Star, next)),
        '?' => Some((GlobTok::One, next)),
        '\\' => {
            let e = pat.get(next..)?.chars().next()?;
            match e {
                '*' | '?' | '\\' => Some((GlobTok::Lit(e), next.checked_add(1)?)),
                _ => None,
            }
        }
        c => Some((GlobTok::Lit(c), next)),
    }
}

/// Validates a stored glob: well-formed escapes, folded literals, no U+FFFD.
/// Returns `Err(())` with no detail; the caller names the atom.
pub(crate) fn validate_glob(pat: &str) -> Result<(), &'static str> {
    let mut pos = 0;
    while pos < pat.len() {
        let (tok, next) = glob_tok(pat, pos).ok_or("a backslash must escape `*`, `?` or `\\`")?;
        if let GlobTok::Lit(c) = tok {
            if fold_char(c) != c {
                return Err("literal is not case-folded");
            }
        }
        pos = next;
    }
    Ok(())
}

/// Whether the whole text, folded, matches the glob (`*` any run, `?` one
/// character). Classic two-pointer algorithm with backtracking to the last
/// star: O(text × pattern) in the worst case, never allocates, never fails.
pub(crate) fn glob_match(pat: &str, text: Text<'_>) -> bool {
    // ASCII pattern and ASCII text (nearly every pipe name and image path):
    // the same algorithm on bytes, without decoding or Unicode folding.
    if pat.is_ascii() {
        match text {
            Text::Utf16(units) if units.iter().all(|&u| u < 0x80) => {
                return glob_match_ascii(pat.as_bytes(), |i| {
                    units.get(i).and_then(|&u| u8::try_from(u).ok())
                });
            }
            Text::Utf8(s) if s.is_ascii() => {
                return glob_match_ascii(pat.as_bytes(), |i| s.as_bytes().get(i).copied());
            }
            _ => {}
        }
    }
    glob_match_chars(pat, text)
}

/// [`glob_match`] for any pattern and text: character by character.
fn glob_match_chars(pat: &str, text: Text<'_>) -> bool {
    let mut p = 0usize;
    let mut t = 0usize;
    // (pattern position after the last star, text position it was tried at)
    let mut star: Option<(usize, usize)> = None;
    loop {
        let tc = text.char_at(t);
        let pt = glob_tok(pat, p);
        match (pt, tc) {
            (Some((GlobTok::Star, pn)), _) => {
                star = Some((pn, t));
                p = pn;
                continue;
            }
            (Some((GlobTok::One, pn)), Some((_, tn))) => {
                p = pn;
                t = tn;
                continue;
            }
            (Some((GlobTok::Lit(l), pn)), Some((c, tn))) if fold_char(c) == l => {
                p = pn;
                t = tn;
                continue;
            }
            (None, None) => return true,
            _ => {}
        }
        // Mismatch: let the last star absorb one more character.
        match star {
            Some((sp, st)) => match text.char_at(st) {
                Some((_, stn)) => {
                    star = Some((sp, stn));
                    p = sp;
                    t = stn;
                }
                None => return false,
            },
            None => return false,
        }
    }
}

/// [`glob_tok`] on an ASCII pattern.
#[inline(always)]
fn glob_tok_ascii(pat: &[u8], pos: usize) -> Option<(GlobTok, usize)> {
    let next = pos.checked_add(1)?;
    match *pat.get(pos)? {
        b'*' => Some((GlobTok::Star, next)),
        b'?' => Some((GlobTok::One, next)),
        b'\\' => match *pat.get(next)? {
            e @ (b'*' | b'?' | b'\\') => Some((GlobTok::Lit(char::from(e)), next.checked_add(1)?)),
            _ => None,
        },
        b => Some((GlobTok::Lit(char::from(b)), next)),
    }
}

/// [`glob_match`] for an ASCII pattern over an ASCII text (`at(i)`: the
/// text's byte `i`, `None` past the end). Same algorithm, same verdicts:
/// on ASCII, folding is `to_ascii_uppercase` and every character is one
/// byte or unit.
fn glob_match_ascii(pat: &[u8], at: impl Fn(usize) -> Option<u8>) -> bool {
    let mut p = 0usize;
    let mut t = 0usize;
    let mut star: Option<(usize, usize)> = None;
    loop {
        let tc = at(t);
        match (glob_tok_ascii(pat, p), tc) {
            (Some((GlobTok::Star, pn)), _) => {
                star = Some((pn, t));
                p = pn;
                continue;
            }
            (Some((GlobTok::One, pn)), Some(_)) => {
                p = pn;
                t = t.saturating_add(1);
                continue;
            }
            (Some((GlobTok::Lit(l), pn)), Some(c)) if char::from(c.to_ascii_uppercase()) == l => {
                p = pn;
                t = t.saturating_add(1);
                continue;
            }
            (None, None) => return true,
            _ => {}
        }
        match star {
            Some((sp, st)) if at(st).is_some() => {
                let stn = st.saturating_add(1);
                star = Some((sp, stn));
                p = sp;
                t = stn;
            }
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn g(p: &str, t: &str) -> bool {
        glob_match(p, Text::Utf8(t))
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
    }

    #[test]
    fn ascii_fast_path_agrees_with_the_character_path() {
        // Random ASCII globs (stars, `?`, escapes, letters that fold) over
        // random ASCII texts, as UTF-8 and as UTF-16.
        let pat_alphabet: &[&str] = &["*", "?", "\\\\", "\\*", "\\?", "A", "B", "_", "1"];
        let text_alphabet = b"aAbB_1*?\\x";
        let mut seed = 0x2545_f491u32;
        let mut next = |n: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            seed as usize % n
        };
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
                text.push(char::from(text_alphabet[next(text_alphabet.len())]));
            }
            let units: std::vec::Vec<u16> = text.encode_utf16().collect();
            let want = glob_match_chars(&pat, Text::Utf8(&text));
            matches += usize::from(want);
            assert_eq!(
                glob_match(&pat, Text::Utf8(&text)),
                want,
                "{pat:?} {text:?}"
            );
            assert_eq!(
                glob_match(&pat, Text::Utf16(&units)),
                want,
                "{pat:?} {text:?}"
            );
            assert_eq!(
                glob_match_chars(&pat, Text::Utf16(&units)),
                want,
                "{pat:?} {text:?}"
            );
        }
        assert!(
            (rounds / 30..rounds - rounds / 30).contains(&matches),
            "{matches} matches: both outcomes exercised"
        );
        // A malformed escape ends the pattern on both paths.
        assert_eq!(g("A\\", "a"), glob_match_chars("A\\", Text::Utf8("a")));
        assert_eq!(g("A\\x", "a"), glob_match_chars("A\\x", Text::Utf8("a")));
        // Non-ASCII text or pattern takes the character path.
        assert!(g("*Ä", "xä"));
        assert!(!g("*A", "xä"));
    }

    #[test]
    fn utf16_surrogates() {
        let units = [0x41u16, 0xD800, 0x42, 0xD83D, 0xDE00];
        let t = Text::Utf16(&units);
        let s: heapless_string::S = t.chars().collect();
        assert_eq!(s.as_str(), "A\u{FFFD}B\u{1F600}");
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
