//! Readable output: rule ids, quoted names, atoms, conditions in infix,
//! times in ISO 8601 UTC, and hints for YAML escapes in test-case names.

use channel_format::{AtomKind, FieldId};
use channel_parser::{AtomView, RuleView};
use serde_json::{json, Value};

/// A rule id as text: `0x000003e9 (1001)`. The hex form is what a Sigma
/// rule's id starts with (`d5601f8c-…` → `0xd5601f8c`, docs/rules.md), the
/// decimal form what a native rule usually writes.
pub fn rule_id(id: u32) -> String {
    format!("{:#010x} ({id})", id)
}

/// The hex form alone (`0x000003e9`), for JSON beside the number.
pub fn rule_id_hex(id: u32) -> String {
    format!("{id:#010x}")
}

/// A string in single quotes as YAML writes it (`'` doubled), with control
/// characters as `\u{..}` so that nothing invisible is printed. Backslashes
/// stay single: `'\postex_1'` is what a rule author writes.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        match c {
            '\'' => out.push_str("''"),
            c if c.is_control() || matches!(c, '\u{2028}' | '\u{2029}') => {
                out.push_str(&format!("\\u{{{:x}}}", u32::from(c)));
            }
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// The escape of a double-quoted YAML string that produces `c`, if any
/// (`\e` → ESC, `\t` → TAB, ...).
fn yaml_escape_for(c: char) -> Option<&'static str> {
    Some(match c {
        '\0' => "\\0",
        '\u{7}' => "\\a",
        '\u{8}' => "\\b",
        '\t' => "\\t",
        '\n' => "\\n",
        '\u{b}' => "\\v",
        '\u{c}' => "\\f",
        '\r' => "\\r",
        '\u{1b}' => "\\e",
        '\u{85}' => "\\N",
        '\u{a0}' => "\\_",
        '\u{2028}' => "\\L",
        '\u{2029}' => "\\P",
        _ => return None,
    })
}

/// A hint when a test-case value holds characters that a double-quoted YAML
/// string makes out of a backslash (`"\evil"` is ESC + `vil`).
pub fn yaml_hint(s: &str) -> Option<String> {
    let found: Vec<String> = s
        .chars()
        .filter(|c| c.is_control() || yaml_escape_for(*c).is_some())
        .map(|c| match yaml_escape_for(c) {
            Some(e) => format!("U+{:04X} (from \"{e}\")", u32::from(c)),
            None => format!("U+{:04X}", u32::from(c)),
        })
        .collect();
    if found.is_empty() {
        return None;
    }
    Some(format!(
        "hint: the value contains {}: in a double-quoted YAML string a backslash starts an escape; \
         write pipe names and paths in single quotes ('\\evil_1') or double each backslash (\"\\\\evil_1\")",
        found.join(", ")
    ))
}

fn field_name(f: FieldId) -> String {
    f.to_string()
}

/// One atom: `PipeName prefix '\POSTEX_'`, `ProcessId = 4`,
/// `EventKind = 2 (connect)`.
pub fn atom(a: &AtomView<'_>) -> String {
    let field = field_name(a.field());
    if a.kind() == AtomKind::NUM_EQ {
        let v = a.arg();
        if a.field() == FieldId::EVENT_KIND {
            let k = match v {
                1 => " (create)",
                2 => " (connect)",
                _ => "",
            };
            return format!("{field} = {v}{k}");
        }
        return format!("{field} = {v}");
    }
    format!("{field} {} {}", a.kind(), quote(a.text()))
}

/// An atom as JSON.
pub fn atom_json(a: &AtomView<'_>) -> Value {
    json!({
        "field": a.field().to_string(),
        "kind": a.kind().to_string(),
        "text": a.text(),
        "value": if a.kind() == AtomKind::NUM_EQ { json!(a.arg()) } else { Value::Null },
        "prefiltered": a.prefiltered(),
        "readable": atom(a),
    })
}

#[derive(Debug)]
enum Expr {
    Leaf(String),
    And(Vec<Expr>),
    Or(Vec<Expr>),
    Not(Box<Expr>),
}

fn join(op: &str, items: &[Expr], parent_binds_tighter: fn(&Expr) -> bool) -> String {
    items
        .iter()
        .map(|e| {
            let s = render(e);
            if parent_binds_tighter(e) {
                format!("({s})")
            } else {
                s
            }
        })
        .collect::<Vec<_>>()
        .join(&format!(" {op} "))
}

fn render(e: &Expr) -> String {
    match e {
        Expr::Leaf(s) => s.clone(),
        Expr::Not(x) => match **x {
            Expr::Leaf(_) | Expr::Not(_) => format!("not {}", render(x)),
            _ => format!("not ({})", render(x)),
        },
        // `not` binds tighter than `and`, which binds tighter than `or`
        // (docs/rules.md): only an `or` inside an `and` needs parentheses.
        Expr::And(items) => join("and", items, |e| matches!(e, Expr::Or(_))),
        Expr::Or(items) => join("or", items, |_| false),
    }
}

fn push_flat(into: &mut Vec<Expr>, e: Expr, and: bool) {
    match e {
        Expr::And(v) if and => into.extend(v),
        Expr::Or(v) if !and => into.extend(v),
        e => into.push(e),
    }
}

/// A rule's condition program in infix, each atom shown by `leaf` (given the
/// atom index in the file), decoded by `channel_format::program` (the one
/// decoder). A program the parser accepted always renders; anything else
/// shows as `<bad program>`.
pub fn condition_with(prog: &[u8], leaf: impl Fn(u32) -> String) -> String {
    use channel_format::program::{instructions, Instr};
    let mut stack: Vec<Expr> = Vec::new();
    for i in instructions(prog) {
        let Ok((_, instr)) = i else {
            return "<bad program>".into();
        };
        let e = match instr {
            Instr::Atom(a) => Expr::Leaf(leaf(a)),
            Instr::True => Expr::Leaf("true".into()),
            Instr::False => Expr::Leaf("false".into()),
            Instr::Not => match stack.pop() {
                Some(x) => Expr::Not(Box::new(x)),
                None => return "<bad program>".into(),
            },
            Instr::And | Instr::Or => {
                let (Some(b), Some(a)) = (stack.pop(), stack.pop()) else {
                    return "<bad program>".into();
                };
                let and = instr == Instr::And;
                let mut v = Vec::new();
                push_flat(&mut v, a, and);
                push_flat(&mut v, b, and);
                if and {
                    Expr::And(v)
                } else {
                    Expr::Or(v)
                }
            }
        };
        stack.push(e);
    }
    match (stack.pop(), stack.is_empty()) {
        (Some(e), true) => render(&e),
        _ => "<bad program>".into(),
    }
}

/// A rule's condition in infix with its atoms written out (programs name
/// atoms by their index in the file).
pub fn condition(r: &RuleView<'_>) -> String {
    let atoms: std::collections::BTreeMap<u32, String> =
        r.atoms().map(|a| (a.index(), atom(&a))).collect();
    condition_with(r.program(), |i| {
        atoms.get(&i).cloned().unwrap_or_else(|| format!("atom{i}"))
    })
}

/// A rule's condition in infix over atom names (`atom0 or atom1`).
pub fn condition_atoms(r: &RuleView<'_>) -> String {
    condition_with(r.program(), |i| format!("atom{i}"))
}

/// Unix seconds as ISO 8601 UTC (`2026-12-01T06:00:00Z`).
pub fn utc(secs: u64) -> String {
    let t = std::time::UNIX_EPOCH.checked_add(std::time::Duration::from_secs(secs));
    match t {
        Some(t) if secs < 253_402_300_800 => humantime::format_rfc3339_seconds(t).to_string(),
        _ => format!("{secs} (Unix seconds, after year 9999)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use channel_format::program::Instr;

    fn prog(ops: &[Instr]) -> Vec<u8> {
        ops.iter()
            .flat_map(|i| i.encode().as_bytes().to_vec())
            .collect()
    }

    #[test]
    fn infix_with_minimal_parentheses() {
        use Instr::{And as and, Not as not, Or as or};
        let a = Instr::Atom;
        let show = |p: &[Instr]| condition_with(&prog(p), |i| format!("a{i}"));
        // The issue's example: atom0 atom1 or atom2 ... and or
        assert_eq!(
            show(&[a(0), a(1), or, a(2), a(3), and, or]),
            "a0 or a1 or a2 and a3"
        );
        assert_eq!(show(&[a(0), a(1), or, a(2), and]), "(a0 or a1) and a2");
        assert_eq!(show(&[a(0), a(1), and, a(2), and]), "a0 and a1 and a2");
        assert_eq!(
            show(&[a(0), a(1), a(2), or, not, and]),
            "a0 and not (a1 or a2)"
        );
        assert_eq!(show(&[a(0), not, not]), "not not a0");
        assert_eq!(show(&[Instr::True]), "true");
        assert_eq!(show(&[a(0), and]), "<bad program>");
        assert_eq!(show(&[a(0), a(1)]), "<bad program>");
        assert_eq!(condition_with(&[1, 1], |_| String::new()), "<bad program>");
        assert_eq!(condition_with(&[99], |_| String::new()), "<bad program>");
    }

    #[test]
    fn quoting_times_and_hints() {
        assert_eq!(quote(r"\postex_1"), r"'\postex_1'");
        assert_eq!(quote("it's\u{1b}"), r"'it''s\u{1b}'");
        assert_eq!(utc(1_796_104_800), "2026-12-01T06:00:00Z");
        assert_eq!(utc(0), "1970-01-01T00:00:00Z");
        assert!(utc(u64::MAX).contains("Unix seconds"));
        let h = yaml_hint("\u{1b}vil_1").unwrap();
        assert!(
            h.contains("U+001B (from \"\\e\")") && h.contains("single quotes"),
            "{h}"
        );
        assert!(yaml_hint(r"\evil_1").is_none());
        assert_eq!(rule_id(1001), "0x000003e9 (1001)");
        assert_eq!(rule_id_hex(0xd560_1f8c), "0xd5601f8c");
    }
}
