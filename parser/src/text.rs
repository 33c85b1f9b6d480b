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
                let u = *units.get(pos)?;
                let next = pos.checked_add(1)?;
                if (0xD800..0xDC00).contains(&u) {
                    if let Some(&lo) = units.get(next) {
                        if (0xDC00..0xE000).contains(&lo) {
                            let hi_bits = u32::from(u).wrapping_sub(0xD800) << 10;
                            let lo_bits = u32::from(lo).wrapping_sub(0xDC00);
                            let c = char::from_u32(0x10000u32.wrapping_add(hi_bits | lo_bits))
                                .unwrap_or('\u{FFFD}');
                            return Some((c, next.checked_add(1)?));
                        }
                    }
                    return Some(('\u{FFFD}', next));
                }
                Some((char::from_u32(u32::from(u)).unwrap_or('\u{FFFD}'), next))
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
