//! Values for Sigma `expand` placeholders.
//!
//! A Sigma value with the `expand` modifier may hold placeholders, `%name%`
//! (a `%` preceded by a backslash is a plain percent sign). Their values are
//! not part of the rule: they describe the environment (`%Administrators%`,
//! `%JumpServers%`, ...). The compiler takes them from a YAML file, given to
//! `pipectl` as `--placeholders FILE`: a mapping from placeholder name to a
//! value or a list of values, each a Sigma wildcard string.
//!
//! ```yaml
//! Administrators: ['CORP\adm_*', 'CORP\Domain Admins']
//! JumpServers:
//!   - 'JUMP-0?'
//! ```
//!
//! A value with placeholders stands for every combination of their values
//! (any of them matches, as pySigma's value-list expansion does), at most
//! [`MAX_EXPANSIONS`] per value. A placeholder without values is an error:
//! the Sigma specification says a tool that cannot fill a placeholder must
//! reject the rule.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::model::{GlobTok, SourceError, SourceLoc};

use super::detection::parse_wildcards;
use super::yaml::{self, Kind};

/// The most patterns one `expand` value may stand for.
pub const MAX_EXPANSIONS: usize = 256;

/// Placeholder values read from a file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Placeholders {
    values: BTreeMap<String, Vec<String>>,
    file: PathBuf,
}

impl Placeholders {
    /// Reads a placeholder file.
    ///
    /// # Errors
    /// The file cannot be read, is not YAML, or is not a mapping of names to
    /// a string or a list of strings; each error at its file:line:column.
    pub fn load(path: &Path) -> Result<Placeholders, Vec<SourceError>> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            vec![SourceError::new(
                SourceLoc {
                    file: path.to_path_buf(),
                    line: 0,
                    col: 0,
                },
                format!("cannot read the placeholder file: {e}"),
            )]
        })?;
        Placeholders::parse(path, &text)
    }

    /// Parses the text of a placeholder file (`path` names it in errors).
    ///
    /// # Errors
    /// As [`Placeholders::load`].
    pub fn parse(path: &Path, text: &str) -> Result<Placeholders, Vec<SourceError>> {
        let docs = yaml::parse(path, text).map_err(|e| vec![e])?;
        let docs: Vec<_> = docs.iter().filter(|d| !d.is_null()).collect();
        let mut out = Placeholders {
            values: BTreeMap::new(),
            file: path.to_path_buf(),
        };
        let Some(doc) = docs.first() else {
            return Ok(out);
        };
        let mut errors = Vec::new();
        if let Some(extra) = docs.get(1) {
            errors.push(extra.err(path, "a placeholder file holds one YAML document"));
        }
        let Kind::Map(entries) = &doc.kind else {
            return Err(vec![doc.err(
                path,
                format!(
                    "a placeholder file is a mapping of placeholder names to values, found {}",
                    doc.kind_name()
                ),
            )]);
        };
        for (k, v) in entries {
            let name = k.as_str().unwrap_or_default().to_string();
            let items: Vec<&yaml::Node> = match &v.kind {
                Kind::Seq(items) => items.iter().collect(),
                Kind::Scalar { .. } => vec![v],
                Kind::Map(_) => {
                    errors.push(v.err(
                        path,
                        format!("placeholder `{name}`: expected a value or a list of values, found a mapping"),
                    ));
                    continue;
                }
            };
            let mut vals = Vec::new();
            for it in items {
                match it.as_str().filter(|_| !it.is_null()) {
                    Some(s) => vals.push(s.to_string()),
                    None => errors.push(it.err(
                        path,
                        format!(
                            "placeholder `{name}`: values must be strings, found {}",
                            it.kind_name()
                        ),
                    )),
                }
            }
            if vals.is_empty() {
                errors.push(v.err(path, format!("placeholder `{name}` has no values")));
            }
            out.values.insert(name, vals);
        }
        if errors.is_empty() {
            Ok(out)
        } else {
            Err(errors)
        }
    }

    /// The values of a placeholder.
    pub fn values(&self, name: &str) -> Option<&[String]> {
        self.values.get(name).map(Vec::as_slice)
    }

    /// The file the values came from.
    pub fn file(&self) -> &Path {
        &self.file
    }
}

/// A part of an `expand` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Part {
    /// Text (a Sigma wildcard string; `\%` already turned into `%`).
    Text(String),
    /// `%name%`.
    Placeholder(String),
}

/// Splits a value into text and `%name%` placeholders. A `%` after a
/// backslash is a plain percent sign; a name is one or more characters
/// other than `%`, `*` and `?`.
pub(crate) fn split(value: &str) -> Vec<Part> {
    let chars: Vec<char> = value.chars().collect();
    let mut out = Vec::new();
    let mut text = String::new();
    let mut i = 0;
    while let Some(&c) = chars.get(i) {
        if c == '\\' && chars.get(i + 1) == Some(&'%') {
            text.push('%');
            i += 2;
            continue;
        }
        if c == '%' {
            let name: String = chars
                .iter()
                .skip(i + 1)
                .take_while(|&&x| !matches!(x, '%' | '*' | '?'))
                .collect();
            let end = i + 1 + name.chars().count();
            if !name.is_empty() && chars.get(end) == Some(&'%') {
                if !text.is_empty() {
                    out.push(Part::Text(std::mem::take(&mut text)));
                }
                out.push(Part::Placeholder(name));
                i = end + 1;
                continue;
            }
        }
        text.push(c);
        i += 1;
    }
    if !text.is_empty() {
        out.push(Part::Text(text));
    }
    out
}

/// Every pattern an `expand` value stands for, as wildcard tokens.
///
/// # Errors
/// A placeholder without values (naming it and where values come from), or
/// more than [`MAX_EXPANSIONS`] combinations.
pub(crate) fn expand(
    value: &str,
    placeholders: Option<&Placeholders>,
) -> Result<Vec<Vec<GlobTok>>, String> {
    let mut combos: Vec<Vec<GlobTok>> = vec![Vec::new()];
    for part in split(value) {
        let choices: Vec<Vec<GlobTok>> = match part {
            Part::Text(t) => vec![parse_wildcards(&t)],
            Part::Placeholder(name) => {
                let vals = match placeholders {
                    None => return Err(format!(
                        "placeholder `%{name}%` has no values: give them in a placeholder file (pipectl --placeholders FILE, a mapping `{name}: [values]`)"
                    )),
                    Some(p) => p.values(&name).ok_or_else(|| {
                        format!(
                            "placeholder `%{name}%` has no values in {}",
                            p.file().display()
                        )
                    })?,
                };
                vals.iter().map(|v| parse_wildcards(v)).collect()
            }
        };
        let total = combos.len().saturating_mul(choices.len());
        if total > MAX_EXPANSIONS {
            return Err(format!(
                "`{value}` expands to more than {MAX_EXPANSIONS} patterns ({total} or more)"
            ));
        }
        let mut next = Vec::with_capacity(total);
        for c in &combos {
            for ch in &choices {
                let mut t = c.clone();
                for tok in ch {
                    push(&mut t, tok.clone());
                }
                next.push(t);
            }
        }
        combos = next;
    }
    Ok(combos)
}

/// Appends a token, merging adjacent literals and collapsing `**`.
fn push(toks: &mut Vec<GlobTok>, tok: GlobTok) {
    match (toks.last_mut(), tok) {
        (Some(GlobTok::Lit(a)), GlobTok::Lit(b)) => a.push_str(&b),
        (Some(GlobTok::Star), GlobTok::Star) => {}
        (_, t) => toks.push(t),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitting() {
        use Part::{Placeholder as P, Text as T};
        assert_eq!(split("%a%"), vec![P("a".into())]);
        // As pySigma's `(?<!\\)%([^%]+)%`: the second `%` here is escaped, the
        // one before `b` closes a placeholder named `\`.
        assert_eq!(
            split(r"\x\%a%\%b%c"),
            vec![T(r"\x%a".into()), P(r"\".into()), T("b%c".into())]
        );
        assert_eq!(
            split(r"\%plain%name%"),
            vec![T("%plain".into()), P("name".into())]
        );
        assert_eq!(split("a%b"), vec![T("a%b".into())]);
        assert_eq!(split("%%"), vec![T("%%".into())]);
        assert_eq!(split("%a*b%"), vec![T("%a*b%".into())]);
        assert_eq!(
            split("x%A%y%B%"),
            vec![T("x".into()), P("A".into()), T("y".into()), P("B".into())]
        );
    }

    #[test]
    fn expansion() {
        let p = Placeholders::parse(Path::new("p.yml"), "A: ['a1', 'a*']\nB: b\n").unwrap();
        let e = expand(r"\x_%A%_%B%", Some(&p)).unwrap();
        assert_eq!(
            e,
            vec![
                vec![GlobTok::Lit(r"\x_a1_b".into())],
                vec![
                    GlobTok::Lit(r"\x_a".into()),
                    GlobTok::Star,
                    GlobTok::Lit("_b".into())
                ],
            ]
        );
        assert!(expand("%C%", Some(&p))
            .unwrap_err()
            .contains("`%C%` has no values in p.yml"));
        assert!(expand("%A%", None).unwrap_err().contains("--placeholders"));
        let many = Placeholders::parse(
            Path::new("p.yml"),
            &format!(
                "M: [{}]\n",
                (0..17)
                    .map(|i| format!("'v{i}'"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )
        .unwrap();
        assert!(expand("%M%%M%", Some(&many))
            .unwrap_err()
            .contains("more than 256 patterns"));
        assert_eq!(expand("%M%", Some(&many)).unwrap().len(), 17);
    }

    #[test]
    fn file_errors() {
        let e = Placeholders::parse(Path::new("p.yml"), "- a\n").unwrap_err();
        assert!(e[0].message.contains("mapping"), "{e:?}");
        let e = Placeholders::parse(Path::new("p.yml"), "A:\n  x: 1\nB: []\n").unwrap_err();
        assert_eq!(e.len(), 2, "{e:?}");
        assert_eq!((e[0].loc.line, e[1].loc.line), (2, 3));
    }
}
