//! The engines compared on the same rules and names. Each `count` method
//! returns how many (event, rule) pairs matched over a batch of events, so
//! the benches can check the engines agree before they time them.

use crate::names::NameEvent;
use crate::workloads::literal_rule;
use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use channel_parser::{parse, Capabilities, ChannelFile, Event, EventKind, Scratch, Text};
use pipe_compiler::model::{Cond, FieldId, GlobTok, Matcher, RuleSet};
use pipe_compiler::{compile, AlignedBytes, CompileOptions};
use regex::{RegexSet, RegexSetBuilder};
use std::collections::HashMap;
use test_kit::reference::{matching_ids, RefEvent};

/// The pid every benchmark event carries.
pub const PID: u32 = 4;

/// Events in the form each engine takes: UTF-16 (as the kernel sees names)
/// for ours, UTF-8 for the others.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// The events.
    pub events: Vec<NameEvent>,
    /// Pipe name and image, as UTF-16 code units.
    pub utf16: Vec<(Vec<u16>, Option<Vec<u16>>)>,
}

impl Prepared {
    /// Encodes `events`.
    pub fn new(events: Vec<NameEvent>) -> Prepared {
        let utf16 = events
            .iter()
            .map(|e| {
                (
                    e.name.encode_utf16().collect(),
                    e.image.as_ref().map(|i| i.encode_utf16().collect()),
                )
            })
            .collect();
        Prepared { events, utf16 }
    }

    /// The kernel-side event of index `i`.
    pub fn event16(&self, i: usize) -> Event<'_> {
        let (n, img) = &self.utf16[i];
        Event {
            pipe_name: Text::Utf16(n),
            image: img.as_deref().map(Text::Utf16),
            pid: PID,
            kind: EventKind::Create,
            user: None,
        }
    }
}

/// Compiles `set` with the default options into an aligned buffer.
///
/// # Panics
/// When the set does not compile (the workloads all do).
pub fn compile_aligned(set: &RuleSet) -> AlignedBytes {
    let bytes = compile(set, &CompileOptions::default()).unwrap_or_else(|e| panic!("compile: {e}"));
    AlignedBytes::new(&bytes)
}

/// Parses a compiled file (validation included).
///
/// # Panics
/// When the file does not validate (the compiler's files all do).
pub fn parse_file(bytes: &AlignedBytes) -> ChannelFile<'_> {
    parse(bytes.as_slice(), &Capabilities::SENSOR).unwrap_or_else(|e| panic!("parse: {e}"))
}

/// Our matcher as the driver runs it: `evaluate` on the validated view,
/// which reads the file in place (DFAs included).
#[derive(Debug)]
pub struct Ours<'a> {
    /// The validated view.
    pub file: ChannelFile<'a>,
}

impl<'a> Ours<'a> {
    /// Parses (validates) the file.
    ///
    /// # Panics
    /// When the file does not validate (the compiler's files all do).
    pub fn new(bytes: &'a AlignedBytes) -> Ours<'a> {
        Ours {
            file: parse_file(bytes),
        }
    }

    /// Matches a batch.
    pub fn count(&self, p: &Prepared, scratch: &mut Scratch) -> u64 {
        let mut n = 0u64;
        for i in 0..p.utf16.len() {
            n += u64::from(self.file.evaluate(&p.event16(i), scratch).matched);
        }
        n
    }
}

/// The naive loop: the reference evaluator, every rule in turn.
pub fn naive_count(set: &RuleSet, p: &Prepared) -> u64 {
    let mut n = 0u64;
    for e in &p.events {
        n += matching_ids(
            set,
            &RefEvent {
                pipe_name: &e.name,
                image: e.image.as_deref(),
                pid: PID,
                kind: EventKind::Create.value(),
                user: None,
            },
        )
        .len() as u64;
    }
    n
}

/// A regex (regex crate syntax) equivalent to a string matcher under the
/// sensor's case-insensitive semantics (ASCII names: `(?i)` and the
/// uppercase fold agree).
pub fn matcher_regex(m: &Matcher) -> Option<String> {
    Some(match m {
        Matcher::Exact(s) => format!("(?i)^{}$", regex::escape(s)),
        Matcher::Prefix(s) => format!("(?i)^{}", regex::escape(s)),
        Matcher::Suffix(s) => format!("(?i){}$", regex::escape(s)),
        Matcher::Contains(s) => format!("(?i){}", regex::escape(s)),
        Matcher::Glob(toks) => {
            let mut re = String::from("(?is)^");
            for t in toks {
                match t {
                    GlobTok::Lit(l) => re.push_str(&regex::escape(l)),
                    GlobTok::Star => re.push_str(".*"),
                    GlobTok::One => re.push('.'),
                }
            }
            re.push('$');
            re
        }
        Matcher::Regex {
            pattern,
            case_insensitive,
        } => {
            if *case_insensitive {
                format!("(?i){pattern}")
            } else {
                pattern.clone()
            }
        }
        Matcher::NumEq(_) => return None,
    })
}

/// A condition over the atoms of the regex sets.
#[derive(Debug, Clone)]
enum C {
    /// Pattern `i` of the pipe-name set.
    Pipe(usize),
    /// Pattern `i` of the image set.
    Image(usize),
    Num(FieldId, u32),
    And(Vec<C>),
    Or(Vec<C>),
    Not(Box<C>),
    Const(bool),
}

/// `regex::RegexSet` with equivalent patterns: one set per string field
/// holding every distinct atom; one `matches` call per field per event, then
/// each rule's condition over the reported atoms.
#[derive(Debug)]
pub struct RegexEngine {
    pipe: RegexSet,
    image: Option<RegexSet>,
    conds: Vec<C>,
}

impl RegexEngine {
    /// Builds the sets.
    ///
    /// # Errors
    /// The regex crate's error (e.g. a size limit).
    pub fn new(set: &RuleSet) -> Result<RegexEngine, String> {
        let mut pipe: (Vec<String>, HashMap<String, usize>) = Default::default();
        let mut image: (Vec<String>, HashMap<String, usize>) = Default::default();
        fn lower(
            c: &Cond,
            pipe: &mut (Vec<String>, HashMap<String, usize>),
            image: &mut (Vec<String>, HashMap<String, usize>),
        ) -> C {
            match c {
                Cond::Const(b) => C::Const(*b),
                Cond::Not(x) => C::Not(Box::new(lower(x, pipe, image))),
                Cond::And(xs) => C::And(xs.iter().map(|x| lower(x, pipe, image)).collect()),
                Cond::Or(xs) => C::Or(xs.iter().map(|x| lower(x, pipe, image)).collect()),
                Cond::Atom(a) => {
                    if let Matcher::NumEq(v) = a.matcher {
                        return C::Num(a.field, v);
                    }
                    let Some(re) = matcher_regex(&a.matcher) else {
                        return C::Const(false);
                    };
                    let (is_pipe, tab) = if a.field == FieldId::IMAGE {
                        (false, image)
                    } else {
                        (true, pipe)
                    };
                    let next = tab.0.len();
                    let i = *tab.1.entry(re.clone()).or_insert_with(|| {
                        tab.0.push(re);
                        next
                    });
                    if is_pipe {
                        C::Pipe(i)
                    } else {
                        C::Image(i)
                    }
                }
            }
        }
        let conds = set
            .rules
            .iter()
            .map(|r| lower(&r.condition, &mut pipe, &mut image))
            .collect();
        let build = |pats: &[String]| {
            RegexSetBuilder::new(pats)
                .size_limit(1 << 30)
                .dfa_size_limit(64 << 20)
                .build()
                .map_err(|e| e.to_string())
        };
        Ok(RegexEngine {
            pipe: build(&pipe.0)?,
            image: if image.0.is_empty() {
                None
            } else {
                Some(build(&image.0)?)
            },
            conds,
        })
    }

    /// Number of distinct patterns (pipe name, image).
    pub fn pattern_counts(&self) -> (usize, usize) {
        (
            self.pipe.len(),
            self.image.as_ref().map_or(0, RegexSet::len),
        )
    }

    /// Matches one event; returns the number of matching rules.
    pub fn matches(&self, e: &NameEvent) -> u32 {
        let pm = self.pipe.matches(&e.name);
        let im = match (&self.image, &e.image) {
            (Some(s), Some(img)) => Some(s.matches(img)),
            _ => None,
        };
        fn eval(c: &C, pm: &regex::SetMatches, im: Option<&regex::SetMatches>) -> bool {
            match c {
                C::Pipe(i) => pm.matched(*i),
                C::Image(i) => im.is_some_and(|m| m.matched(*i)),
                C::Num(f, v) => {
                    (*f == FieldId::PROCESS_ID && *v == PID)
                        || (*f == FieldId::EVENT_KIND && *v == EventKind::Create.value())
                }
                C::And(xs) => xs.iter().all(|x| eval(x, pm, im)),
                C::Or(xs) => xs.iter().any(|x| eval(x, pm, im)),
                C::Not(x) => !eval(x, pm, im),
                C::Const(b) => *b,
            }
        }
        self.conds
            .iter()
            .filter(|c| eval(c, &pm, im.as_ref()))
            .count() as u32
    }

    /// Matches a batch.
    pub fn count(&self, p: &Prepared) -> u64 {
        p.events.iter().map(|e| u64::from(self.matches(e))).sum()
    }
}

#[derive(Debug, Clone, Copy)]
enum LitKind {
    Exact,
    Prefix,
    Suffix,
    Contains,
}

/// `aho-corasick` (ASCII case-insensitive, overlapping) over the literal-only
/// rules; each reported literal is checked by position, each rule counted
/// once per event.
#[derive(Debug)]
pub struct AcEngine {
    ac: AhoCorasick,
    /// Per pattern: rule index, kind.
    pats: Vec<(u32, LitKind)>,
    rules: usize,
}

impl AcEngine {
    /// Builds the automaton over the literal rules of `set` (others ignored).
    ///
    /// # Panics
    /// When the automaton cannot be built (it always can for these sizes).
    pub fn new(set: &RuleSet) -> AcEngine {
        let mut lits = Vec::new();
        let mut pats = Vec::new();
        for (i, r) in set.rules.iter().enumerate() {
            if let Some((m, s)) = literal_rule(r) {
                let k = match m {
                    Matcher::Exact(_) => LitKind::Exact,
                    Matcher::Prefix(_) => LitKind::Prefix,
                    Matcher::Suffix(_) => LitKind::Suffix,
                    _ => LitKind::Contains,
                };
                lits.push(s.to_string());
                pats.push((i as u32, k));
            }
        }
        let ac = AhoCorasickBuilder::new()
            .ascii_case_insensitive(true)
            .match_kind(MatchKind::Standard)
            .build(&lits)
            .unwrap_or_else(|e| panic!("aho-corasick: {e}"));
        AcEngine {
            ac,
            pats,
            rules: set.rules.len(),
        }
    }

    /// Matches a batch; `seen` is reused scratch (one stamp per rule).
    pub fn count(&self, p: &Prepared, seen: &mut Vec<u32>) -> u64 {
        seen.clear();
        seen.resize(self.rules, 0);
        let mut n = 0u64;
        for (stamp, e) in p.events.iter().enumerate() {
            let stamp = stamp as u32 + 1;
            let len = e.name.len();
            for m in self.ac.find_overlapping_iter(&e.name) {
                let (rule, kind) = self.pats[m.pattern().as_usize()];
                let ok = match kind {
                    LitKind::Contains => true,
                    LitKind::Prefix => m.start() == 0,
                    LitKind::Suffix => m.end() == len,
                    LitKind::Exact => m.start() == 0 && m.end() == len,
                };
                if ok && seen[rule as usize] != stamp {
                    seen[rule as usize] = stamp;
                    n += 1;
                }
            }
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::names::{events, sample};
    use crate::workloads::{literal_subset, mthcht, sigma, synthetic};

    fn agree(set: &RuleSet, p: &Prepared) -> u64 {
        let bytes = compile_aligned(set);
        let file = Ours::new(&bytes);
        let ours = file.count(p, &mut Scratch::new());
        assert_eq!(ours, naive_count(set, p), "ours vs reference");
        assert_eq!(
            ours,
            RegexEngine::new(set).unwrap().count(p),
            "ours vs RegexSet"
        );
        let lit = literal_subset(set);
        if !lit.rules.is_empty() {
            let lb = compile_aligned(&lit);
            let lf = Ours::new(&lb);
            assert_eq!(
                lf.count(p, &mut Scratch::new()),
                AcEngine::new(&lit).count(p, &mut Vec::new()),
                "ours vs aho-corasick on the literal subset"
            );
        }
        ours
    }

    #[test]
    fn engines_agree_on_sigma_and_mthcht() {
        let p = Prepared::new(sample(&events(), 600));
        assert!(agree(&sigma().unwrap(), &p) > 50);
        assert!(agree(&mthcht(), &p) > 100);
    }

    #[test]
    fn engines_agree_on_synthetic() {
        let p = Prepared::new(sample(&events(), 200));
        assert!(agree(&synthetic(300), &p) > 0);
    }

    #[test]
    fn names_are_deterministic_and_mixed() {
        let a = events();
        assert_eq!(a.len(), crate::names::NAME_COUNT);
        assert_eq!(a, events());
        let mal = a.iter().filter(|e| e.malicious).count();
        assert!(mal > 2_000 && mal < 5_000, "{mal}");
        assert!(a.iter().all(|e| e.name.starts_with('\\')));
    }
}

#[cfg(test)]
mod prefilter_tests {
    use super::*;
    use pipe_compiler::model::{Action, Atom, Rule, Severity, SourceLoc};

    /// The case-sensitive reading of a case-insensitive regex (compiler
    /// prefilter) must keep every case variant, Kelvin sign included.
    #[test]
    fn case_insensitive_regex_prefilter_keeps_case_variants() {
        let rule = |id: u32, pattern: &str| Rule {
            id,
            name: format!("r{id}"),
            severity: Severity::MEDIUM,
            action: Action::ALERT,
            condition: Cond::Atom(Atom {
                field: FieldId::PIPE_NAME,
                matcher: Matcher::Regex {
                    pattern: pattern.into(),
                    case_insensitive: true,
                },
            }),
            source: SourceLoc::default(),
            tests: Vec::new(),
        };
        let set = RuleSet {
            rules: vec![
                rule(1, r"(?:kekeo|sks)_[a-z]{4}"),
                rule(2, r"^\\bfd7-603t[0-9a-f]{4,16}$"),
                rule(3, r"ſtatus\d"),
            ],
        };
        let names = [
            "\\kekeo_abcd",
            "\\KEKEO_ABCD",
            "\\\u{212A}eKeo_abcd",
            "\\\u{212A}E\u{212A}EO_\u{212A}bcd",
            "\\x\u{17F}k\u{17F}_abcd",
            "\\SKS_abcd",
            "\\BFD7-603Tabcd",
            "\\bfd7-603tABCDEF12",
            "\\STATUS1",
            "\\\u{17F}tatus1",
            "\\status",
        ];
        let p = Prepared::new(
            names
                .iter()
                .map(|n| NameEvent {
                    name: (*n).to_string(),
                    image: None,
                    malicious: true,
                })
                .collect(),
        );
        let bytes = compile_aligned(&set);
        let file = Ours::new(&bytes);
        let mut scratch = Scratch::new();
        for e in &p.events {
            let one = Prepared::new(vec![e.clone()]);
            assert_eq!(
                file.count(&one, &mut scratch),
                naive_count(&set, &one),
                "{:?}",
                e.name
            );
        }
        assert!(naive_count(&set, &p) >= 9);
    }
}
