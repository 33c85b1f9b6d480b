//! A small YAML tree with source positions, built from `saphyr-parser`
//! events. Both YAML importers (native, Sigma) read this tree, so every
//! construct they reject can be reported at its own line and column.

use std::collections::HashMap;
use std::path::Path;

use saphyr_parser::{Event, Parser, ScalarStyle, Span};

use crate::model::{SourceError, SourceLoc};

/// A YAML node and where it starts (1-based line and column).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Node {
    /// What the node is.
    pub kind: Kind,
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub col: usize,
}

/// The three YAML node kinds.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Kind {
    /// A scalar, its text and whether it was written plain (unquoted).
    Scalar {
        /// The text, escapes resolved by YAML.
        text: String,
        /// Plain (unquoted, not a block scalar).
        plain: bool,
        /// Written in one source line (so column arithmetic inside it works).
        single_line: bool,
    },
    /// A sequence.
    Seq(Vec<Node>),
    /// A mapping, in source order.
    Map(Vec<(Node, Node)>),
}

impl Node {
    /// The node's position in `file`.
    pub fn loc(&self, file: &Path) -> SourceLoc {
        SourceLoc {
            file: file.to_path_buf(),
            line: self.line,
            col: self.col,
        }
    }

    /// An error at this node.
    pub fn err(&self, file: &Path, msg: impl Into<String>) -> SourceError {
        SourceError::new(self.loc(file), msg)
    }

    /// The scalar's text.
    pub fn as_str(&self) -> Option<&str> {
        match &self.kind {
            Kind::Scalar { text, .. } => Some(text),
            _ => None,
        }
    }

    /// A YAML null: an unquoted `null`, `Null`, `NULL`, `~` or nothing.
    pub fn is_null(&self) -> bool {
        matches!(&self.kind, Kind::Scalar { text, plain: true, .. }
            if matches!(text.as_str(), "" | "~" | "null" | "Null" | "NULL"))
    }

    /// A short name of the node kind, for error messages.
    pub fn kind_name(&self) -> &'static str {
        match &self.kind {
            Kind::Scalar { .. } if self.is_null() => "null",
            Kind::Scalar { .. } => "a scalar",
            Kind::Seq(_) => "a list",
            Kind::Map(_) => "a mapping",
        }
    }

    /// The value of `key` in a mapping (first occurrence).
    pub fn get(&self, key: &str) -> Option<&Node> {
        match &self.kind {
            Kind::Map(entries) => entries
                .iter()
                .find(|(k, _)| k.as_str() == Some(key))
                .map(|(_, v)| v),
            _ => None,
        }
    }

    /// The string value of the required key `key` of a mapping. When it is
    /// missing (`missing` is the error text, at the mapping) or not a string
    /// (the error names the key and what was found, at the value), records
    /// the error and returns an empty string so the caller can go on
    /// collecting errors.
    pub fn required_str(
        &self,
        key: &str,
        missing: &str,
        file: &Path,
        errors: &mut Vec<SourceError>,
    ) -> String {
        let Some(n) = self.get(key) else {
            errors.push(self.err(file, missing));
            return String::new();
        };
        match n.as_str().filter(|_| !n.is_null()) {
            Some(s) => s.to_string(),
            None => {
                errors.push(n.err(
                    file,
                    format!("`{key}` must be a string, found {}", n.kind_name()),
                ));
                String::new()
            }
        }
    }

    /// The (line, column) of the character at offset `off_chars` inside a
    /// single-line scalar (the node itself otherwise), so that
    /// errors inside a string (a condition, a pattern) point at the character.
    pub fn col_at(&self, off_chars: usize) -> (usize, usize) {
        match &self.kind {
            Kind::Scalar {
                plain,
                single_line: true,
                ..
            } => (self.line, self.col + off_chars + usize::from(!*plain)),
            _ => (self.line, self.col),
        }
    }
}

fn pos(span: &Span) -> (usize, usize) {
    (span.start.line(), span.start.col() + 1)
}

enum Frame {
    Seq(Node, usize, Vec<Node>),
    Map(Node, usize, Vec<(Node, Node)>, Option<Node>),
}

/// Parses `text` (the contents of `file`) into its documents.
///
/// # Errors
/// A YAML syntax error, an alias to an unknown anchor, or a tagged node, each
/// with the position where the YAML parser reported it.
pub(crate) fn parse(file: &Path, text: &str) -> Result<Vec<Node>, SourceError> {
    let mut docs = Vec::new();
    let mut stack: Vec<Frame> = Vec::new();
    let mut anchors: HashMap<usize, Node> = HashMap::new();
    let mut root: Option<Node> = None;
    let loc = |line: usize, col: usize| SourceLoc {
        file: file.to_path_buf(),
        line,
        col,
    };

    for item in Parser::new_from_str(text) {
        let (ev, span) = item.map_err(|e| {
            SourceError::new(
                loc(e.marker().line(), e.marker().col() + 1),
                format!("YAML syntax error: {}", e.info()),
            )
        })?;
        let (line, col) = pos(&span);
        let complete: Option<(Node, usize)> = match ev {
            Event::StreamStart | Event::StreamEnd | Event::Nothing => None,
            Event::DocumentStart(_) => {
                root = None;
                None
            }
            Event::DocumentEnd => {
                docs.push(root.take().unwrap_or(Node {
                    kind: Kind::Scalar {
                        text: String::new(),
                        plain: true,
                        single_line: true,
                    },
                    line,
                    col,
                }));
                None
            }
            Event::Alias(id) => match anchors.get(&id) {
                Some(n) => Some((
                    Node {
                        line,
                        col,
                        ..n.clone()
                    },
                    0,
                )),
                None => {
                    return Err(SourceError::new(
                        loc(line, col),
                        "YAML alias to an unknown anchor",
                    ))
                }
            },
            Event::Scalar(value, style, anchor, tag) => {
                if let Some(tag) = tag {
                    return Err(SourceError::new(
                        loc(line, col),
                        format!("YAML tag `{}{}` is not supported", tag.handle, tag.suffix),
                    ));
                }
                let single_line = span.start.line() == span.end.line();
                Some((
                    Node {
                        kind: Kind::Scalar {
                            text: value.into_owned(),
                            plain: style == ScalarStyle::Plain,
                            single_line,
                        },
                        line,
                        col,
                    },
                    anchor,
                ))
            }
            Event::SequenceStart(anchor, ref tag) | Event::MappingStart(anchor, ref tag) => {
                if let Some(tag) = tag {
                    return Err(SourceError::new(
                        loc(line, col),
                        format!("YAML tag `{}{}` is not supported", tag.handle, tag.suffix),
                    ));
                }
                let is_seq = matches!(ev, Event::SequenceStart(..));
                let node = Node {
                    kind: Kind::Seq(Vec::new()),
                    line,
                    col,
                };
                stack.push(if is_seq {
                    Frame::Seq(node, anchor, Vec::new())
                } else {
                    Frame::Map(node, anchor, Vec::new(), None)
                });
                None
            }
            Event::SequenceEnd => match stack.pop() {
                Some(Frame::Seq(mut node, anchor, items)) => {
                    node.kind = Kind::Seq(items);
                    Some((node, anchor))
                }
                _ => return Err(SourceError::new(loc(line, col), "unbalanced YAML sequence")),
            },
            Event::MappingEnd => match stack.pop() {
                Some(Frame::Map(mut node, anchor, entries, None)) => {
                    node.kind = Kind::Map(entries);
                    Some((node, anchor))
                }
                _ => return Err(SourceError::new(loc(line, col), "unbalanced YAML mapping")),
            },
        };
        if let Some((node, anchor)) = complete {
            if anchor != 0 {
                anchors.insert(anchor, node.clone());
            }
            match stack.last_mut() {
                None => root = Some(node),
                Some(Frame::Seq(_, _, items)) => items.push(node),
                Some(Frame::Map(_, _, entries, pending)) => match pending.take() {
                    None => *pending = Some(node),
                    Some(key) => {
                        if !matches!(key.kind, Kind::Scalar { .. }) {
                            return Err(key.err(file, "mapping keys must be scalars"));
                        }
                        if let Some((prev, _)) =
                            entries.iter().find(|(k, _)| k.as_str() == key.as_str())
                        {
                            return Err(key.err(
                                file,
                                format!(
                                    "duplicate key `{}` (first at line {})",
                                    key.as_str().unwrap_or_default(),
                                    prev.line
                                ),
                            ));
                        }
                        entries.push((key, node));
                    }
                },
            }
        }
    }
    Ok(docs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_and_null() {
        let docs = parse(Path::new("t.yml"), "a:\n  b: 'x'\n  c:\n  d: ~\n").unwrap();
        assert_eq!(docs.len(), 1);
        let a = docs[0].get("a").unwrap();
        let b = a.get("b").unwrap();
        assert_eq!((b.line, b.col), (2, 6));
        assert!(!b.is_null());
        assert!(a.get("c").unwrap().is_null());
        assert!(a.get("d").unwrap().is_null());
        assert_eq!(b.col_at(0), (2, 7));
    }

    #[test]
    fn duplicate_key_is_an_error() {
        let e = parse(Path::new("t.yml"), "a: 1\nb: 2\na: 3\n").unwrap_err();
        assert_eq!((e.loc.line, e.loc.col), (3, 1));
        assert!(e.message.contains("duplicate key `a`"), "{e}");
    }

    #[test]
    fn syntax_error_has_position() {
        let e = parse(Path::new("t.yml"), "a: [1, 2\nb: 3\n").unwrap_err();
        assert!(
            e.loc.line >= 1 && e.message.contains("YAML syntax error"),
            "{e}"
        );
    }

    #[test]
    fn aliases_resolve() {
        let docs = parse(Path::new("t.yml"), "a: &x [1, 2]\nb: *x\n").unwrap();
        assert_eq!(
            docs[0].get("b").unwrap().kind,
            docs[0].get("a").unwrap().kind
        );
    }
}
