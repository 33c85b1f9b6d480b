//! Human-readable forms of the rule model (for `pipectl inspect`, test
//! failures and error messages): Sigma-like, one line per condition.
//!
//! - an atom is `Field|op 'value'` (`==` for equality), values single-quoted
//!   with `'` doubled;
//! - a glob is written with Sigma escapes, so that
//!   [`crate::import::detection::parse_wildcards`] reads it back to the same
//!   tokens;
//! - `and` / `or` groups are parenthesized; an empty `and` is `true`, an
//!   empty `or` is `false`.

use std::fmt;

use crate::model::{Atom, Cond, GlobTok, Matcher};

fn quote(f: &mut fmt::Formatter<'_>, s: &str) -> fmt::Result {
    write!(f, "'{}'", s.replace('\'', "''"))
}

/// The Sigma wildcard text of `toks`: `*`, `?` for the wildcards; literal
/// `*` and `?` escaped; a literal backslash doubled only where it would
/// otherwise escape what follows it.
pub fn glob_text(toks: &[GlobTok]) -> String {
    // Flatten to (char, is_wildcard).
    let mut flat: Vec<(char, bool)> = Vec::new();
    for t in toks {
        match t {
            GlobTok::Lit(s) => flat.extend(s.chars().map(|c| (c, false))),
            GlobTok::Star => flat.push(('*', true)),
            GlobTok::One => flat.push(('?', true)),
        }
    }
    let mut out = String::new();
    for (i, &(c, wild)) in flat.iter().enumerate() {
        match (c, wild) {
            (_, true) => out.push(c),
            ('*' | '?', false) => {
                out.push('\\');
                out.push(c);
            }
            ('\\', false) => {
                out.push('\\');
                if matches!(flat.get(i + 1), Some(('*' | '?' | '\\', _))) {
                    out.push('\\');
                }
            }
            _ => out.push(c),
        }
    }
    out
}

impl fmt::Display for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (op, value) = match self {
            Matcher::Exact(s) => ("==", s.clone()),
            Matcher::Prefix(s) => ("|startswith", s.clone()),
            Matcher::Suffix(s) => ("|endswith", s.clone()),
            Matcher::Contains(s) => ("|contains", s.clone()),
            Matcher::Glob(toks) => ("|glob", glob_text(toks)),
            Matcher::Regex {
                pattern,
                case_insensitive: false,
            } => ("|re", pattern.clone()),
            Matcher::Regex {
                pattern,
                case_insensitive: true,
            } => ("|re|i", pattern.clone()),
            Matcher::NumEq(n) => return write!(f, "== {n}"),
        };
        f.write_str(op)?;
        f.write_str(" ")?;
        quote(f, &value)
    }
}

impl fmt::Display for Atom {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sep = if matches!(self.matcher, Matcher::Exact(_) | Matcher::NumEq(_)) {
            " "
        } else {
            ""
        };
        write!(f, "{}{sep}{}", self.field, self.matcher)
    }
}

impl fmt::Display for Cond {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let group =
            |f: &mut fmt::Formatter<'_>, v: &[Cond], op: &str, empty: &str| -> fmt::Result {
                match v {
                    [] => f.write_str(empty),
                    [one] => write!(f, "{one}"),
                    _ => {
                        f.write_str("(")?;
                        for (i, c) in v.iter().enumerate() {
                            if i > 0 {
                                write!(f, " {op} ")?;
                            }
                            write!(f, "{c}")?;
                        }
                        f.write_str(")")
                    }
                }
            };
        match self {
            Cond::Atom(a) => write!(f, "{a}"),
            Cond::And(v) => group(f, v, "and", "true"),
            Cond::Or(v) => group(f, v, "or", "false"),
            Cond::Not(c) => write!(f, "not {c}"),
            Cond::Const(b) => write!(f, "{b}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::import::detection::parse_wildcards;
    use crate::model::FieldId;

    #[test]
    fn glob_text_round_trips() {
        for s in [
            r"\Posh*",
            r"*a?c",
            r"a\*b",
            r"a\?",
            r"a\\*",
            r"a\\\*",
            r"a\\\\",
            r"a\",
            r"\MICROSOFT##WID\tsql\query",
            r"\\*\\?\\\\",
            r"x\\",
            "",
            "*",
        ] {
            let toks = parse_wildcards(s);
            let text = glob_text(&toks);
            assert_eq!(parse_wildcards(&text), toks, "{s} -> {text}");
        }
        // Backslashes before ordinary characters stay single.
        assert_eq!(glob_text(&parse_wildcards(r"\pipe\x*")), r"\pipe\x*");
    }

    #[test]
    fn conditions_read_like_sigma() {
        let a = |field, matcher| Cond::Atom(Atom { field, matcher });
        let c = Cond::And(vec![
            a(FieldId::PIPE_NAME, Matcher::Prefix(r"\postex_".into())),
            Cond::Not(Box::new(Cond::Or(vec![
                a(FieldId::IMAGE, Matcher::Exact("it's".into())),
                a(FieldId::PROCESS_ID, Matcher::NumEq(4)),
                a(
                    FieldId::PIPE_NAME,
                    Matcher::Regex {
                        pattern: "^a$".into(),
                        case_insensitive: true,
                    },
                ),
            ]))),
            Cond::Or(vec![]),
        ]);
        assert_eq!(
            c.to_string(),
            r"(PipeName|startswith '\postex_' and not (Image == 'it''s' or ProcessId == 4 or PipeName|re|i '^a$') and false)"
        );
        assert_eq!(Cond::And(vec![]).to_string(), "true");
    }
}
