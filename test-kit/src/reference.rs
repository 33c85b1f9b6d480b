//! An independent reference evaluator of the rule model, the oracle for
//! differential tests against the kernel matcher. It shares no code with the
//! compiler: strings are compared char by char after folding, wildcards by a
//! dynamic-programming table, regular expressions with the `regex` crate.
//!
//! Case-insensitivity mirrors the kernel's definition: both sides are folded
//! with the *simple uppercase mapping* of each character (`c.to_uppercase()`
//! when that yields exactly one character, `c` unchanged otherwise). A regex
//! without `case_insensitive` runs on the unfolded text; with it, the pattern
//! gets `(?i)` and still runs on the unfolded text. Regexes are unanchored
//! unless they anchor themselves. An atom on a missing image or user is false; an
//! atom whose matcher does not fit its field's type (a string matcher on
//! ProcessId, `NumEq` on PipeName) is false.

use std::cell::RefCell;
use std::collections::HashMap;

use regex::Regex;

use channel_format::EventKind;
use pipe_compiler::model::{Atom, Cond, FieldId, GlobTok, Matcher, Rule, RuleSet, TestCase};

/// One event as the reference sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RefEvent<'a> {
    /// The pipe name as Sysmon reports it (`\name`).
    pub pipe_name: &'a str,
    /// The image path of the process, if known.
    pub image: Option<&'a str>,
    /// The process id.
    pub pid: u32,
    /// The event kind: 1 create, 2 connect.
    pub kind: u32,
    /// The user SID string (`S-1-5-18`), if known. An atom on a missing
    /// user is false, as on a missing image.
    pub user: Option<&'a str>,
}

/// The kernel's fold of one character: its simple uppercase mapping.
pub fn fold_char(c: char) -> char {
    let mut up = c.to_uppercase();
    match (up.next(), up.next()) {
        (Some(u), None) => u,
        _ => c,
    }
}

/// `s` folded character by character.
pub fn fold(s: &str) -> Vec<char> {
    s.chars().map(fold_char).collect()
}

/// Whether the folded `text` matches the wildcard tokens (whole text).
fn glob_match(toks: &[GlobTok], text: &[char]) -> bool {
    // Expand the pattern into single-character steps.
    enum Step {
        Char(char),
        Any,
        Star,
    }
    let mut steps = Vec::new();
    for t in toks {
        match t {
            GlobTok::Lit(s) => steps.extend(fold(s).into_iter().map(Step::Char)),
            GlobTok::One => steps.push(Step::Any),
            GlobTok::Star => steps.push(Step::Star),
        }
    }
    // reach[j]: the steps so far can consume exactly text[..j].
    let mut reach = vec![false; text.len() + 1];
    reach[0] = true;
    for step in &steps {
        let mut next = vec![false; text.len() + 1];
        match step {
            Step::Star => {
                let mut any = false;
                for j in 0..=text.len() {
                    any |= reach[j];
                    next[j] = any;
                }
            }
            Step::Any => {
                // One character: shift by one.
                next[1..].copy_from_slice(&reach[..text.len()]);
            }
            Step::Char(c) => {
                for j in 1..=text.len() {
                    next[j] = reach[j - 1] && text[j - 1] == *c;
                }
            }
        }
        reach = next;
    }
    reach[text.len()]
}

fn contains(hay: &[char], needle: &[char]) -> bool {
    needle.is_empty() || hay.windows(needle.len()).any(|w| w == needle)
}

thread_local! {
    static REGEX_CACHE: RefCell<HashMap<(String, bool), Regex>> = RefCell::new(HashMap::new());
}

fn regex_match(pattern: &str, case_insensitive: bool, text: &str) -> bool {
    REGEX_CACHE.with(|cache| {
        let mut cache = cache.borrow_mut();
        // Bounded: a fuzzer feeds an endless stream of distinct patterns.
        if cache.len() >= 1024 && !cache.contains_key(&(pattern.to_string(), case_insensitive)) {
            cache.clear();
        }
        let re = cache
            .entry((pattern.to_string(), case_insensitive))
            .or_insert_with(|| {
                let full = if case_insensitive {
                    format!("(?i){pattern}")
                } else {
                    pattern.to_string()
                };
                // The importers validate every pattern; a model built by hand
                // with an invalid one is a bug in the caller.
                Regex::new(&full)
                    .unwrap_or_else(|e| panic!("invalid regex in rule model: {pattern}: {e}"))
            });
        re.is_match(text)
    })
}

fn eval_string(m: &Matcher, text: &str) -> bool {
    match m {
        Matcher::Exact(lit) => fold(text) == fold(lit),
        Matcher::Prefix(lit) => fold(text).starts_with(&fold(lit)),
        Matcher::Suffix(lit) => fold(text).ends_with(&fold(lit)),
        Matcher::Contains(lit) => contains(&fold(text), &fold(lit)),
        Matcher::Glob(toks) => glob_match(toks, &fold(text)),
        Matcher::Regex {
            pattern,
            case_insensitive,
        } => regex_match(pattern, *case_insensitive, text),
        Matcher::NumEq(_) => false,
    }
}

/// Evaluates one atom on `ev`.
pub fn eval_atom(atom: &Atom, ev: &RefEvent<'_>) -> bool {
    let num = |v: u32| matches!(atom.matcher, Matcher::NumEq(n) if n == v);
    match atom.field {
        FieldId::PIPE_NAME => eval_string(&atom.matcher, ev.pipe_name),
        FieldId::IMAGE => ev.image.is_some_and(|img| eval_string(&atom.matcher, img)),
        FieldId::USER => ev.user.is_some_and(|u| eval_string(&atom.matcher, u)),
        FieldId::PROCESS_ID => num(ev.pid),
        FieldId::EVENT_KIND => num(ev.kind),
        _ => false,
    }
}

/// Evaluates a condition on `ev`.
pub fn eval_cond(c: &Cond, ev: &RefEvent<'_>) -> bool {
    match c {
        Cond::Atom(a) => eval_atom(a, ev),
        Cond::And(v) => v.iter().all(|c| eval_cond(c, ev)),
        Cond::Or(v) => v.iter().any(|c| eval_cond(c, ev)),
        Cond::Not(c) => !eval_cond(c, ev),
        Cond::Const(b) => *b,
    }
}

/// Whether `rule` matches `ev`.
pub fn eval_rule(rule: &Rule, ev: &RefEvent<'_>) -> bool {
    eval_cond(&rule.condition, ev)
}

/// The ids of the rules of `set` that match `ev`, in rule order.
pub fn matching_ids(set: &RuleSet, ev: &RefEvent<'_>) -> Vec<u32> {
    set.rules
        .iter()
        .filter(|r| eval_rule(r, ev))
        .map(|r| r.id)
        .collect()
}

/// The event a native test case describes (pid 0 and kind create when unset).
pub fn test_event(case: &TestCase) -> RefEvent<'_> {
    RefEvent {
        pipe_name: &case.pipe_name,
        image: case.image.as_deref(),
        // The sensor's defaults (sensor_core::eval::DEFAULT_PID, DEFAULT_KIND).
        pid: case.pid.unwrap_or(0),
        kind: case.kind.unwrap_or(EventKind::Create).value(),
        user: case.user.as_deref(),
    }
}

/// The embedded test cases of `rule` that the reference evaluator decides
/// differently from what the case expects.
pub fn failing_cases(rule: &Rule) -> Vec<&TestCase> {
    rule.tests
        .iter()
        .filter(|c| eval_rule(rule, &test_event(c)) != c.expect_match)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folding_is_simple_uppercase() {
        assert_eq!(fold_char('a'), 'A');
        assert_eq!(fold_char('ä'), 'Ä');
        // ß uppercases to "SS" (two chars): unchanged.
        assert_eq!(fold_char('ß'), 'ß');
        // Turkish dotless ı uppercases to I; dotted İ stays (its lowercase is not used).
        assert_eq!(fold_char('ı'), 'I');
        assert_eq!(fold_char('İ'), 'İ');
        assert_eq!(fold_char('\\'), '\\');
    }

    /// The DP glob matcher against the `regex` crate on random ASCII
    /// patterns and names (where `(?i)` and the uppercase fold agree).
    #[test]
    fn glob_dp_agrees_with_regex() {
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move |n: u64| {
            seed = seed
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            usize::try_from((seed >> 33) % n).unwrap_or(0)
        };
        let alphabet = ['a', 'b', 'A', '\\', '.'];
        for _ in 0..2_000 {
            let mut toks = Vec::new();
            for _ in 0..next(6) {
                toks.push(match next(4) {
                    0 => GlobTok::Star,
                    1 => GlobTok::One,
                    _ => GlobTok::Lit((0..=next(2)).map(|_| alphabet[next(5)]).collect()),
                });
            }
            let name: String = (0..next(8)).map(|_| alphabet[next(5)]).collect();
            let mut re = String::from("(?is)^");
            for t in &toks {
                match t {
                    GlobTok::Lit(l) => re.push_str(&regex::escape(l)),
                    GlobTok::Star => re.push_str(".*"),
                    GlobTok::One => re.push('.'),
                }
            }
            re.push('$');
            let want = Regex::new(&re).unwrap().is_match(&name);
            assert_eq!(
                glob_match(&toks, &fold(&name)),
                want,
                "{toks:?} vs {name:?}"
            );
        }
    }

    #[test]
    fn glob_dp() {
        use GlobTok::*;
        let l = |s: &str| Lit(s.into());
        assert!(glob_match(&[Star, l("a"), One, l("c")], &fold("xaxbabc")));
        assert!(!glob_match(&[Star, l("a"), One, l("c")], &fold("xaxbac")));
        assert!(glob_match(&[l("a"), Star], &fold("a")));
        assert!(!glob_match(&[One], &fold("")));
        assert!(glob_match(&[], &fold("")));
        assert!(!glob_match(&[], &fold("x")));
    }
}
