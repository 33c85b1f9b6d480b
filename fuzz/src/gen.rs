//! Rule sets and events generated from fuzzer bytes with `arbitrary`.
//!
//! Everything generated is something the importers could produce and the
//! compiler accepts: literals without U+FFFD, globs with `*`, `?` and literal
//! `*`/`?`/`\` characters (the model holds escapes resolved; the compiler
//! re-escapes them), small regexes that the `regex` crate and regex-automata
//! both accept, and `and`/`or`/`not`/constants over them.

use arbitrary::{Result, Unstructured};
use pipe_compiler::model::{
    Action, Atom, Cond, FieldId, GlobTok, Matcher, Rule, RuleSet, Severity, SourceLoc,
};

/// Characters that stress case folding and escaping: ASCII letters of both
/// cases, the glob metacharacters as literal text, backslash, and the
/// non-ASCII characters whose simple upper case is special (`ß` has none,
/// `ı` folds to `I`, the Kelvin sign and `İ` fold to themselves).
pub const SMALL_ALPHABET: &[char] = &[
    'a',
    'b',
    'A',
    'B',
    'c',
    'x',
    '\\',
    '_',
    '.',
    '-',
    '1',
    '*',
    '?',
    'ä',
    'Ä',
    'ß',
    'ı',
    'i',
    'I',
    'İ',
    'k',
    'K',
    '\u{212A}',
    'é',
    ' ',
    '$',
    '\u{1F600}',
];

/// How the generator picks characters.
#[derive(Debug, Clone, Copy)]
pub enum Chars {
    /// From [`SMALL_ALPHABET`] (many collisions: rules match often).
    Small,
    /// Any `char` except U+FFFD (what a rule file could hold).
    Any,
}

fn gen_char(u: &mut Unstructured<'_>, chars: Chars) -> Result<char> {
    match chars {
        Chars::Small => Ok(*u.choose(SMALL_ALPHABET)?),
        Chars::Any => {
            if u.ratio(3, 4)? {
                Ok(*u.choose(SMALL_ALPHABET)?)
            } else {
                let c: char = u.arbitrary()?;
                Ok(if c == '\u{FFFD}' { 'z' } else { c })
            }
        }
    }
}

/// A string of 0..=max characters.
pub fn gen_text(u: &mut Unstructured<'_>, chars: Chars, max: usize) -> Result<String> {
    let n = u.int_in_range(0..=max)?;
    let mut s = String::new();
    for _ in 0..n {
        s.push(gen_char(u, chars)?);
    }
    Ok(s)
}

fn gen_literal(u: &mut Unstructured<'_>, chars: Chars) -> Result<String> {
    let s = gen_text(u, chars, 6)?;
    // Now and then a literal longer than the prefilter's 255 bytes, which the
    // compiler turns into a glob gated by a truncated literal.
    if u.ratio(1, 40)? {
        let reps = u.int_in_range(40..=80)?;
        let mut long = String::new();
        for _ in 0..reps {
            long.push_str(if s.is_empty() { "ab" } else { &s });
            long.push('x');
        }
        return Ok(long);
    }
    Ok(s)
}

fn gen_glob(u: &mut Unstructured<'_>, chars: Chars) -> Result<Vec<GlobTok>> {
    let n = u.int_in_range(0..=6)?;
    let mut toks = Vec::new();
    for _ in 0..n {
        toks.push(match u.int_in_range(0..=4)? {
            0 => GlobTok::Star,
            1 => GlobTok::One,
            _ => GlobTok::Lit(gen_text(u, chars, 4)?),
        });
    }
    Ok(toks)
}

fn regex_escape_char(out: &mut String, c: char) {
    if "\\.+*?()|[]{}^$#&-~".contains(c) {
        out.push('\\');
    }
    out.push(c);
}

fn gen_regex_piece(u: &mut Unstructured<'_>, chars: Chars, depth: u32) -> Result<String> {
    let mut s = String::new();
    match u.int_in_range(0..=9)? {
        0 => s.push('.'),
        1 => {
            s.push('[');
            if u.ratio(1, 4)? {
                s.push('^');
            }
            for _ in 0..u.int_in_range(1..=3)? {
                let c = gen_char(u, chars)?;
                if "\\[]^-&~".contains(c) {
                    s.push('\\');
                }
                s.push(c);
            }
            s.push(']');
        }
        2 if depth < 2 => {
            s.push('(');
            let alts = u.int_in_range(1..=3)?;
            for i in 0..alts {
                if i > 0 {
                    s.push('|');
                }
                s.push_str(&gen_regex_seq(u, chars, depth + 1)?);
            }
            s.push(')');
        }
        3 => s.push_str("[0-9]"),
        _ => {
            for _ in 0..u.int_in_range(1..=3)? {
                regex_escape_char(&mut s, gen_char(u, chars)?);
            }
        }
    }
    match u.int_in_range(0..=7)? {
        0 => s.push('*'),
        1 => s.push('+'),
        2 => s.push('?'),
        3 => s.push_str("{1,3}"),
        _ => {}
    }
    Ok(s)
}

fn gen_regex_seq(u: &mut Unstructured<'_>, chars: Chars, depth: u32) -> Result<String> {
    let mut s = String::new();
    for _ in 0..u.int_in_range(1..=3)? {
        s.push_str(&gen_regex_piece(u, chars, depth)?);
    }
    Ok(s)
}

/// A small regex both regex engines accept (anchors optional).
pub fn gen_regex(u: &mut Unstructured<'_>, chars: Chars) -> Result<String> {
    let mut s = String::new();
    if u.ratio(1, 4)? {
        s.push('^');
    }
    s.push_str(&gen_regex_seq(u, chars, 0)?);
    if u.ratio(1, 4)? {
        s.push('$');
    }
    Ok(s)
}

/// Generation options.
#[derive(Debug, Clone, Copy)]
pub struct GenOptions {
    /// Character choice.
    pub chars: Chars,
    /// Most rules.
    pub max_rules: usize,
    /// Whether regex atoms may appear (they make compilation slower).
    pub regex: bool,
}

fn gen_atom(u: &mut Unstructured<'_>, o: &GenOptions) -> Result<Atom> {
    let which = u.int_in_range(0..=19)?;
    if which == 0 {
        return Ok(Atom {
            field: *u.choose(&[FieldId::PROCESS_ID, FieldId::EVENT_KIND])?,
            matcher: Matcher::NumEq(u.int_in_range(0..=3)?),
        });
    }
    let field = if u.ratio(1, 4)? {
        *u.choose(&[FieldId::IMAGE, FieldId::USER])?
    } else {
        FieldId::PIPE_NAME
    };
    let matcher = match u.int_in_range(0..=9)? {
        0 => Matcher::Exact(gen_literal(u, o.chars)?),
        1 => Matcher::Prefix(gen_literal(u, o.chars)?),
        2 => Matcher::Suffix(gen_literal(u, o.chars)?),
        3 | 4 => Matcher::Contains(gen_literal(u, o.chars)?),
        5 if o.regex && u.ratio(1, 2)? => Matcher::Regex {
            pattern: gen_regex(u, o.chars)?,
            case_insensitive: u.arbitrary()?,
        },
        _ => Matcher::Glob(gen_glob(u, o.chars)?),
    };
    Ok(Atom { field, matcher })
}

/// A condition of bounded depth and size.
pub fn gen_cond(u: &mut Unstructured<'_>, o: &GenOptions, depth: u32) -> Result<Cond> {
    let pick = if depth >= 3 {
        0
    } else {
        u.int_in_range(0..=9)?
    };
    Ok(match pick {
        0..=3 => Cond::Atom(gen_atom(u, o)?),
        4 | 5 => {
            let n = u.int_in_range(0..=3)?;
            let mut v = Vec::new();
            for _ in 0..n {
                v.push(gen_cond(u, o, depth + 1)?);
            }
            Cond::And(v)
        }
        6 | 7 => {
            let n = u.int_in_range(0..=3)?;
            let mut v = Vec::new();
            for _ in 0..n {
                v.push(gen_cond(u, o, depth + 1)?);
            }
            Cond::Or(v)
        }
        8 => Cond::Not(Box::new(gen_cond(u, o, depth + 1)?)),
        _ => Cond::Const(u.arbitrary()?),
    })
}

/// Many rules of short overlapping literals: one name then reports more
/// distinct atoms than the matcher's scratch holds (256), which makes it
/// process the rules in windows.
pub fn gen_wide(u: &mut Unstructured<'_>) -> Result<RuleSet> {
    let n = u.int_in_range(110..=150)?;
    let mut rules = Vec::new();
    for i in 0..n {
        let mut atoms = Vec::new();
        for lit in ["a", "b", "ab", "ba", "aa", "bb"] {
            if u.ratio(4, 5)? {
                let field = if u.ratio(1, 6)? {
                    FieldId::IMAGE
                } else {
                    FieldId::PIPE_NAME
                };
                let m = match u.int_in_range(0..=7)? {
                    0 => Matcher::Prefix(lit.into()),
                    1 => Matcher::Suffix(lit.into()),
                    _ => Matcher::Contains(lit.into()),
                };
                atoms.push(Cond::Atom(Atom { field, matcher: m }));
            }
        }
        // Mostly ORs: each branch of an OR is a gate the scan records (an
        // AND records only its one gate), so one name fills the scratch.
        let condition = if u.ratio(3, 4)? {
            Cond::Or(atoms)
        } else {
            Cond::And(atoms)
        };
        rules.push(Rule {
            id: i + 1,
            name: format!("wide-{i}"),
            severity: Severity(u.int_in_range(0..=4)?),
            action: Action(u.int_in_range(0..=1)?),
            condition,
            source: SourceLoc::default(),
            tests: Vec::new(),
        });
    }
    Ok(RuleSet { rules })
}

/// A rule set with distinct ids.
pub fn gen_ruleset(u: &mut Unstructured<'_>, o: &GenOptions) -> Result<RuleSet> {
    if u.ratio(1, 24)? {
        return gen_wide(u);
    }
    let n = u.int_in_range(1..=o.max_rules)?;
    let mut rules = Vec::new();
    let mut id = 0u32;
    for i in 0..n {
        id = id.saturating_add(u.int_in_range(1..=1000)?);
        rules.push(Rule {
            id,
            name: if u.ratio(1, 8)? {
                String::new()
            } else {
                format!("r{i}-{}", gen_text(u, Chars::Any, 5)?)
            },
            severity: Severity(u.int_in_range(0..=4)?),
            action: Action(u.int_in_range(0..=1)?),
            condition: gen_cond(u, o, 0)?,
            source: SourceLoc::default(),
            tests: Vec::new(),
        });
    }
    // Ids are written in ascending order; shuffle the model to check that.
    if rules.len() > 1 && u.ratio(1, 3)? {
        rules.reverse();
    }
    Ok(RuleSet { rules })
}

/// Collects the text of every string atom (literals, glob pieces, regex
/// literal characters are not collected).
pub fn atom_texts(c: &Cond, out: &mut Vec<(FieldId, Matcher)>) {
    match c {
        Cond::Atom(a) => out.push((a.field, a.matcher.clone())),
        Cond::And(v) | Cond::Or(v) => v.iter().for_each(|c| atom_texts(c, out)),
        Cond::Not(c) => atom_texts(c, out),
        Cond::Const(_) => {}
    }
}

fn flip_case(u: &mut Unstructured<'_>, s: &str) -> Result<String> {
    let mut out = String::new();
    for c in s.chars() {
        if u.ratio(1, 3)? {
            out.extend(c.to_lowercase());
        } else if u.ratio(1, 3)? {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
    }
    Ok(out)
}

/// A name likely to interact with `set`: a rule's literal or glob with the
/// wildcards filled, case changed, with text around it, or random text.
pub fn gen_name(u: &mut Unstructured<'_>, set: &RuleSet, chars: Chars) -> Result<Vec<u16>> {
    let mut atoms = Vec::new();
    for r in &set.rules {
        atom_texts(&r.condition, &mut atoms);
    }
    atoms.retain(|(_, m)| !matches!(m, Matcher::NumEq(_) | Matcher::Regex { .. }));
    let mut s = String::new();
    if !atoms.is_empty() && u.ratio(3, 4)? {
        if u.ratio(1, 3)? {
            s.push_str(&gen_text(u, chars, 3)?);
        }
        let (_, m) = u.choose(&atoms)?.clone();
        match m {
            Matcher::Exact(l) | Matcher::Prefix(l) | Matcher::Suffix(l) | Matcher::Contains(l) => {
                s.push_str(&l)
            }
            Matcher::Glob(toks) => {
                for t in toks {
                    match t {
                        GlobTok::Lit(l) => s.push_str(&l),
                        GlobTok::One => s.push(gen_char(u, chars)?),
                        GlobTok::Star => s.push_str(&gen_text(u, chars, 3)?),
                    }
                }
            }
            _ => {}
        }
        if u.ratio(1, 3)? {
            s.push_str(&gen_text(u, chars, 3)?);
        }
        s = flip_case(u, &s)?;
    } else {
        s = gen_text(u, chars, 12)?;
    }
    let mut units: Vec<u16> = s.encode_utf16().collect();
    // Unpaired surrogates, as a kernel name may hold.
    if u.ratio(1, 8)? {
        let at = u.int_in_range(0..=units.len())?;
        let unit = *u.choose(&[0xD800u16, 0xDBFF, 0xDC00, 0xDFFF])?;
        units.insert(at, unit);
    }
    Ok(units)
}
