//! `channel-format` is the only place that knows a byte offset of a channel
//! file (issue 14): this test scans the Rust sources of every crate that
//! reads or writes channel files and fails on the shapes the old code used
//! to spell record and header offsets as numbers — `rec.u32_at(28, ..)`,
//! `rule_u32(i, 28)`, `a32(idx, 12)`, `r(0, 18)`, `put_u32(b, 8, ..)`,
//! `data.get(32..36)`, `"offset 8: .."` in an error message, a record size
//! redefined as `const RULE_LEN: u32 = 32`, ... The fix for a hit is a named
//! field of a record table (`channel_format::rule::ATOMS_START`).
//!
//! Not scanned: `channel-format` itself (the tables), `sensor-core` and
//! `driver` (their own IOCTL, guard-state, registry and FFI layouts; they
//! never touch channel-file bytes, only the parser's API), and generated or
//! vendored files.

use regex::Regex;
use std::path::{Path, PathBuf};

/// The crates (relative to the repository root) that handle channel files.
const SCANNED: &[&str] = &[
    "parser",
    "compiler",
    "test-kit",
    "content-trust",
    "pipectl",
    "fuzz/src",
    "fuzz/fuzz_targets",
    "tests",
    "bench",
];

/// (what it catches, pattern).
const PATTERNS: &[(&str, &str)] = &[
    (
        "a fixed-width read at a numeric offset",
        r"\b(u8|u16|u32|u64)_at\(\s*\d",
    ),
    (
        "an in-place read at a numeric offset",
        r"\ble(8|16|32)\(\s*\d",
    ),
    (
        "a rule field read at a numeric offset",
        r"\brule_u(8|16|32)\([^,()]*,\s*\d",
    ),
    (
        "an atom field read at a numeric offset",
        r"\ba(8|16|32)\([^,()]*,\s*\d",
    ),
    (
        "a record byte addressed as (index, offset)",
        r"\b(r|a|st)\(\s*\d+\s*,\s*\d+\s*\)",
    ),
    (
        "a section-table entry field at entry + offset",
        r"\bentry\(\s*\w+\s*\)\s*\+\s*\d",
    ),
    (
        "a little-endian poke or peek at a numeric offset",
        r"\b(put|get|rd|wr)_?u?(8|16|32|64)\([^,()]*,\s*\d",
    ),
    (
        "a little-endian write at a numeric offset",
        r"\bwrite_le\([^,()]*,\s*\d",
    ),
    (
        "a sub-region at a numeric offset",
        r"\.sub\(\s*[1-9]\d*\s*,",
    ),
    ("an error offset spelled as a number", r"\.at\(\s*\d+\s*\)"),
    (
        "a record size as a number",
        r"\b(wrapping_|checked_)mul\(\s*\d+\s*\)",
    ),
    (
        "a field offset as a number",
        r"\bwrapping_add\(\s*([3-9]|\d{2,})\s*\)",
    ),
    ("an error message with a literal offset", r#""offset \d+:"#),
    (
        "a record size redefined",
        r"\bconst\s+(HEADER|ENTRY|SECTION|RULE|ATOM|STATE|SCHEMA|AUTOMATON|ROLLOUT|SIGNATURE|DFA|OUTPUT|ALWAYS)_[A-Z_]*LEN\s*:\s*\w+\s*=\s*\d",
    ),
    (
        "a byte range with literal bounds",
        r"\.get\(\s*\d+\s*\.\.=?\s*\d+\s*\)",
    ),
    (
        "a byte range with literal bounds",
        r"\[\s*\d+\s*\.\.=?\s*\d+\s*\]",
    ),
    (
        "a header field sliced as offset + width",
        r"\b(header|h)::[A-Z_0-9]+\s*\+\s*\d+\s*\]",
    ),
];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            if p.file_name().is_some_and(|n| n == "target") {
                continue;
            }
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// Every line of `text` that matches a pattern: (line number, what, line).
fn hits(text: &str, patterns: &[(&'static str, Regex)]) -> Vec<(usize, &'static str, String)> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let code = line.trim_start();
        // Comments may name the old shapes (this file's own docs do).
        if code.starts_with("//") {
            continue;
        }
        for (what, re) in patterns {
            if re.is_match(line) {
                out.push((n + 1, *what, line.trim().to_string()));
            }
        }
    }
    out
}

fn compiled() -> Vec<(&'static str, Regex)> {
    PATTERNS
        .iter()
        .map(|(w, p)| (*w, Regex::new(p).unwrap()))
        .collect()
}

#[test]
fn no_record_or_header_offset_literal_outside_channel_format() {
    let patterns = compiled();
    let mut files = Vec::new();
    for d in SCANNED {
        rust_files(&root().join(d), &mut files);
    }
    files.sort();
    assert!(files.len() > 40, "scanned only {} files", files.len());
    let this = Path::new(file!()).file_name().unwrap();
    let mut found = Vec::new();
    for f in &files {
        if f.file_name() == Some(this) {
            continue;
        }
        let text = std::fs::read_to_string(f).unwrap();
        for (line, what, code) in hits(&text, &patterns) {
            let rel = f.strip_prefix(root()).unwrap_or(f).display().to_string();
            found.push(format!("{rel}:{line}: {what}: {code}"));
        }
    }
    assert!(
        found.is_empty(),
        "byte offsets of the channel-file layout spelled outside channel-format \
         (use a named field of a record table, e.g. channel_format::rule::ATOMS_START):\n{}",
        found.join("\n")
    );
}

/// The patterns catch the shapes the old code used (each line below was in
/// the tree before the record tables), and pass their replacements.
#[test]
fn the_patterns_catch_the_old_shapes() {
    let patterns = compiled();
    for old in [
        r#"let atoms_start = rec.u32_at(28, "rule atoms start")?;"#,
        "let start = self.rule_u32(index, 28);",
        "let len = self.a32(atom_idx, 12);",
        "with(&|p| p.body(SectionKind::RULES)[r(0, 18)] = 9),",
        "header(&|b| put_u32(b, entry(2) + 8, base.len() as u32 + 8)),",
        "put_u32(p.body(SectionKind::PREFILTER), st(3, 1), 3)",
        "let count = rd32(body, 0).unwrap_or(0) as usize;",
        "let total = data.get(32..36).map(|b| 0);",
        "h[16..20].copy_from_slice(&fmt::CHANNEL_PIPES.to_le_bytes());",
        r#"    #[error("offset 8: bad endianness marker {found:#06x} (expected 0xfeff)")]"#,
        "const RULE_LEN: u32 = 32;",
        r#"r.sub(9, 3, "rollout reserved")?"#,
        "offset: rec.at(26),",
        "out[fmt::header::TOTAL_LEN..fmt::header::TOTAL_LEN + 4]",
        "let base = index.wrapping_mul(32).wrapping_add(28);",
        "let at = index.wrapping_mul(8).wrapping_add(8);",
        "header(&|b| b[h::SEQUENCE..h::SEQUENCE + 8].copy_from_slice(&x)),",
    ] {
        assert!(!hits(old, &patterns).is_empty(), "not caught: {old}");
    }
    for new in [
        r#"let atoms_start = rec.get(rule::ATOMS_START, "rule atoms start")?;"#,
        "let start = self.rule_u32(index, rule::ATOMS_START);",
        "let len = self.a32(atom_idx, atom::STR_LEN);",
        "let b = g.with(|p| set(p.rule(0), rule::SEVERITY, 9));",
        r#"let hdr = file.sub(0, HEADER_LEN, "header")?;"#,
        "let v = u32::from_le_bytes([a, b, c, d]);",
        "let at = u.int_in_range(0..=header::LEN + 4 * section::LEN - 1)?;",
    ] {
        assert!(hits(new, &patterns).is_empty(), "false hit: {new}");
    }
}
