//! Round trip: whatever the compiler emits parses, and reads back as the
//! rules it was compiled from.
//!
//! The expected atoms are restated here from the documented lowering
//! (FORMAT.md, docs/rules.md), not taken from the compiler: literals are
//! folded; an empty literal is an always-true test except `exact`, which
//! becomes the empty glob; a literal over 255 bytes becomes a glob;
//! globs of the shapes `lit`, `lit*`, `*lit`, `*lit*` become literal atoms;
//! other globs are stored folded with `*`, `?`, `\` escaped; regexes keep
//! their source and case flag; numeric tests keep their value.
//!
//! Format 2 may add *literal pieces* next to a glob or regex: literal atoms
//! on the same field that the pattern implies, ANDed before it so the
//! pattern runs only when they hold. For a glob the check here is exact and
//! independent of the compiler: a `prefix` piece must be a non-empty prefix
//! of the glob's folded literal start, a `suffix` piece a suffix of its
//! literal end, a `contains` piece a substring of one of its literals. For a
//! regex only the shape is checked (a non-empty literal atom on the regex's
//! field); that such a piece changes no verdict is the `differential`
//! target's job (and the roundtrip's semantic check below).

use channel_format::{AtomKind, FieldId};
use channel_parser::{fold_char, parse, Capabilities, EventKind, Scratch};
use pipe_compiler::model::{Atom, Cond, GlobTok, Matcher, RuleSet};
use pipe_compiler::AlignedBytes;
use std::collections::BTreeSet;

/// What one atom reads back as: field, kind, text, numeric value, regex
/// case flag.
pub type Expected = (u16, u8, String, u32, bool);

fn fold(s: &str) -> String {
    s.chars().map(fold_char).collect()
}

fn escape(out: &mut String, s: &str) {
    for c in s.chars() {
        if matches!(c, '*' | '?' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
}

fn literal(field: FieldId, kind: AtomKind, s: &str) -> Option<Expected> {
    let f = fold(s);
    if f.is_empty() {
        return (kind == AtomKind::EXACT)
            .then(|| (field.0, AtomKind::GLOB.0, String::new(), 0, false));
    }
    if f.len() <= 255 {
        return Some((field.0, kind.0, f, 0, false));
    }
    let mut p = String::new();
    if matches!(kind, AtomKind::SUFFIX | AtomKind::CONTAINS) {
        p.push('*');
    }
    escape(&mut p, &f);
    if matches!(kind, AtomKind::PREFIX | AtomKind::CONTAINS) {
        p.push('*');
    }
    Some((field.0, AtomKind::GLOB.0, p, 0, false))
}

/// The atom `a` reads back as; `None` when it is lowered to "true". A test
/// that holds for every string still needs the field: on Image or User
/// (which may be missing) it reads back as the glob `*` ("present"); on the
/// pipe name, always present, it is dropped.
pub fn expected_atom(a: &Atom) -> Option<Expected> {
    lowered(a).or_else(|| {
        (a.field == FieldId::IMAGE || a.field == FieldId::USER)
            .then(|| (a.field.0, AtomKind::GLOB.0, "*".to_string(), 0, false))
    })
}

fn lowered(a: &Atom) -> Option<Expected> {
    let field = a.field;
    match &a.matcher {
        Matcher::Exact(s) => literal(field, AtomKind::EXACT, s),
        Matcher::Prefix(s) => literal(field, AtomKind::PREFIX, s),
        Matcher::Suffix(s) => literal(field, AtomKind::SUFFIX, s),
        Matcher::Contains(s) => literal(field, AtomKind::CONTAINS, s),
        Matcher::NumEq(v) => Some((field.0, AtomKind::NUM_EQ.0, String::new(), *v, false)),
        Matcher::Regex {
            pattern,
            case_insensitive,
        } => Some((
            field.0,
            AtomKind::REGEX.0,
            pattern.clone(),
            0,
            *case_insensitive,
        )),
        Matcher::Glob(toks) => {
            let mut norm: Vec<GlobTok> = Vec::new();
            for t in toks {
                match (norm.last_mut(), t) {
                    (_, GlobTok::Lit(s)) if s.is_empty() => {}
                    (Some(GlobTok::Lit(p)), GlobTok::Lit(s)) => p.push_str(s),
                    (Some(GlobTok::Star), GlobTok::Star) => {}
                    _ => norm.push(t.clone()),
                }
            }
            use GlobTok::*;
            match norm.as_slice() {
                [] => literal(field, AtomKind::EXACT, ""),
                [Star] => None,
                [Lit(s)] => literal(field, AtomKind::EXACT, s),
                [Lit(s), Star] => literal(field, AtomKind::PREFIX, s),
                [Star, Lit(s)] => literal(field, AtomKind::SUFFIX, s),
                [Star, Lit(s), Star] => literal(field, AtomKind::CONTAINS, s),
                _ => {
                    let mut p = String::new();
                    for t in &norm {
                        match t {
                            Star => p.push('*'),
                            One => p.push('?'),
                            Lit(s) => escape(&mut p, &fold(s)),
                        }
                    }
                    Some((field.0, AtomKind::GLOB.0, p, 0, false))
                }
            }
        }
    }
}

/// Whether the literal atom `e` (a piece the compiler may add) is implied by
/// an atom of `a`'s rule: see the module documentation.
fn implied_piece(a: &Atom, e: &Expected) -> bool {
    let (field, kind, text, _, _) = e;
    if *field != a.field.0 || text.is_empty() {
        return false;
    }
    let kind = AtomKind(*kind);
    match &a.matcher {
        Matcher::Regex { .. } => matches!(
            kind,
            AtomKind::PREFIX | AtomKind::SUFFIX | AtomKind::CONTAINS | AtomKind::EXACT
        ),
        Matcher::Glob(toks) => {
            // Merge adjacent literals; a wildcard splits them.
            let mut lits: Vec<(String, bool, bool)> = Vec::new(); // (folded, at start, at end)
            let mut cur = String::new();
            let mut at_start = true;
            let mut first = true;
            for t in toks {
                match t {
                    GlobTok::Lit(s) => cur.push_str(&fold(s)),
                    _ => {
                        if !cur.is_empty() {
                            lits.push((std::mem::take(&mut cur), at_start && first, false));
                        }
                        first = false;
                        at_start = false;
                    }
                }
            }
            if !cur.is_empty() {
                lits.push((cur, at_start && first, true));
            }
            lits.iter().any(|(l, start, end)| match kind {
                AtomKind::PREFIX => *start && l.starts_with(text.as_str()),
                AtomKind::SUFFIX => *end && l.ends_with(text.as_str()),
                AtomKind::CONTAINS => l.contains(text.as_str()),
                _ => false,
            })
        }
        _ => false,
    }
}

/// Every atom of a condition.
fn atoms_of<'c>(c: &'c Cond, out: &mut Vec<&'c Atom>) {
    match c {
        Cond::Atom(a) => out.push(a),
        Cond::And(v) | Cond::Or(v) => v.iter().for_each(|c| atoms_of(c, out)),
        Cond::Not(c) => atoms_of(c, out),
        Cond::Const(_) => {}
    }
}

/// Collects expected atoms; returns whether the condition is "plain" (no
/// constants, no empty and/or, no always-true atom), in which case nothing
/// can be simplified away and the file must hold exactly these atoms.
fn collect(c: &Cond, out: &mut BTreeSet<Expected>) -> bool {
    match c {
        Cond::Atom(a) => match expected_atom(a) {
            Some(e) => {
                out.insert(e);
                true
            }
            None => false,
        },
        Cond::And(v) | Cond::Or(v) => {
            let mut plain = !v.is_empty();
            for c in v {
                plain &= collect(c, out);
            }
            plain
        }
        Cond::Not(c) => collect(c, out),
        Cond::Const(_) => false,
    }
}

/// Compiled bytes of `set` parse and read back as `set`.
pub fn check(set: &RuleSet, bytes: &[u8]) {
    let aligned = AlignedBytes::new(bytes);
    let file = parse(aligned.as_slice(), &Capabilities::SENSOR)
        .unwrap_or_else(|e| panic!("compiler output rejected by the parser: {e}\n{set:#?}"));
    let mut rules: Vec<_> = set.rules.iter().collect();
    rules.sort_by_key(|r| r.id);
    assert_eq!(file.rule_count() as usize, rules.len(), "rule count");
    for (view, rule) in file.rules().zip(&rules) {
        assert_eq!(view.id(), rule.id, "id");
        assert_eq!(view.name(), rule.name, "name of {}", rule.id);
        assert_eq!(view.severity(), rule.severity, "severity of {}", rule.id);
        assert_eq!(view.action(), rule.action, "action of {}", rule.id);
        let mut want = BTreeSet::new();
        let plain = collect(&rule.condition, &mut want);
        let got: BTreeSet<Expected> = view
            .atoms()
            .map(|a| {
                let kind = a.kind();
                let num = if kind == AtomKind::NUM_EQ { a.arg() } else { 0 };
                let ci = kind == AtomKind::REGEX
                    && a.flags() & channel_format::ATOM_FLAG_CASE_INSENSITIVE != 0;
                (a.field().0, kind.0, a.text().to_string(), num, ci)
            })
            .collect();
        assert_eq!(
            got.len(),
            view.atoms().count(),
            "rule {}: duplicate atoms in the file",
            rule.id
        );
        // Literal pieces of a glob or regex of the rule are allowed beside
        // the expected atoms (checked exactly for globs).
        let mut model_atoms = Vec::new();
        atoms_of(&rule.condition, &mut model_atoms);
        let got: BTreeSet<Expected> = got
            .into_iter()
            .filter(|e| want.contains(e) || !model_atoms.iter().any(|a| implied_piece(a, e)))
            .collect();
        if plain {
            assert_eq!(got, want, "rule {}: atoms", rule.id);
        } else {
            assert!(
                got.is_subset(&want),
                "rule {}: atoms {got:?} not in {want:?}",
                rule.id
            );
        }
        let fields: BTreeSet<u16> = view.fields().map(|f| f.0).collect();
        let atom_fields: BTreeSet<u16> = got.iter().map(|e| e.0).collect();
        assert_eq!(fields, atom_fields, "rule {}: fields", rule.id);
        assert_eq!(
            view.fields().count(),
            fields.len(),
            "rule {}: duplicate fields",
            rule.id
        );
    }
    // A quick semantic check on names built from the rules themselves.
    let mut scratch = Scratch::new();
    for rule in &rules {
        let mut atoms = Vec::new();
        crate::gen::atom_texts(&rule.condition, &mut atoms);
        for (_, m) in atoms.iter().take(2) {
            let name = match m {
                Matcher::Exact(s)
                | Matcher::Prefix(s)
                | Matcher::Suffix(s)
                | Matcher::Contains(s) => s.clone(),
                _ => continue,
            };
            let units: Vec<u16> = name.encode_utf16().collect();
            crate::check::compare_with_reference(
                set,
                &file,
                &units,
                Some(&units),
                1,
                EventKind::Create,
                &mut scratch,
            );
        }
    }
}
