//! Block rules that could deny what the sensor never denies: a protected
//! pipe, a critical process's operation, or the System process creating a
//! pipe (`sensor_core::protect`, the kernel's own list).
//!
//! The kernel turns such a deny into an alert (decision `protected`), so a
//! block rule that can match there is wrong in the content: it promises a
//! block that never happens. [`check_file`] finds those rules in a compiled
//! file, and [`crate::compile`] refuses to write one. `pipectl diff
//! --fail-on-new-block` and `pipectl replay` report them in existing files.
//!
//! # Method (docs/rules.md, "Block rules and the protected set")
//! Two checks, and a rule is reported when either finds something:
//!
//! 1. **Examples through the kernel's matcher.** Each protected pipe name as
//!    written, upper- and lower-cased, created and connected to, by no image,
//!    an ordinary user program, `svchost.exe` and each critical process; each critical
//!    image at `C:\Windows\System32\…` (three letter cases) and
//!    `D:\windows\system32\…` with an ordinary pipe name; and the System process creating an
//!    ordinary pipe. Every example is checked to be protected by the
//!    kernel's own check before it is used. A block rule the matcher
//!    matches on an example is reported with that example.
//! 2. **A symbolic check of the rule's condition.** For each protected name,
//!    each critical image and the System process, every atom of the rule is
//!    decided against the *set* of events of that case: a pipe-name atom
//!    against the protected name in any letter case; an image atom against
//!    every path `?:\Windows\System32\<file>` (any drive, any letter case:
//!    Windows 10 and later always install into `\Windows`, and the kernel
//!    compares with the machine's own system root); for the System process, image atoms are false (it
//!    has no image), the event kind is *create* and the process id 4. An
//!    atom is *true* when every event of the set satisfies it, *false* when
//!    none does (the intersection of the two languages is empty: decided
//!    exactly for literals and wildcards by a product automaton, and for
//!    regular expressions by running the expression's DFA, built
//!    case-insensitively, against the set's automaton), and *unknown*
//!    otherwise; atoms on other fields are unknown. The condition is then
//!    evaluated in three-valued (Kleene) logic: a rule whose condition is
//!    not *false* can match some event of the set and is reported.
//!
//! The symbolic check finds what examples miss — `*ls*` matches `\lsass`
//! in every case, `Image: 'D:\Windows\System32\lsass.exe'` matches on a
//! machine that runs Windows from drive D: — and catches a rule that
//! needs another field as well (`PipeName: '\samr'` *and* `Image|contains:
//! 'evil'`). Its limits: it is conservative (Kleene logic does not see that
//! `x and not x` is false, so such a rule is reported although it can never
//! match); a regular expression is only ever *unknown* or *false* (never
//! *true*), its letter case is ignored (a case-sensitive `\LSASS` regex is
//! treated like a case-insensitive one, since NPFS opens `\lsass` whatever
//! case the client uses), and one whose DFA cannot be built within a size
//! budget counts as *unknown*; a system root other than `?:\Windows` is
//! outside the modelled set (the kernel still protects it, from the
//! machine's real system root).

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::ops::ControlFlow;

use channel_format::program::Instr;
use channel_format::{Action, AtomKind, FieldId};
use channel_parser::{fold_char, AtomView, ChannelFile, Event, EventKind, Scratch, Text};
use sensor_core::protect::{
    self as kernel, CriticalImage, ProtectedPipe, Requestor, SystemRoot, CRITICAL_IMAGES,
    PROTECTED_PIPES, SYSTEM_DIR, UNKNOWN_ROOT_AFTER_DRIVE,
};

/// The protected case a rule hits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Case {
    /// A protected pipe name.
    Name(&'static ProtectedPipe),
    /// A critical process.
    Image(&'static CriticalImage),
    /// The System process creating a pipe.
    SystemCreate,
}

impl std::fmt::Display for Case {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Case::Name(p) => write!(f, "the protected pipe {}", p.name),
            Case::Image(c) => write!(
                f,
                "the critical process <SystemRoot>\\{SYSTEM_DIR}\\{}",
                c.file
            ),
            Case::SystemCreate => f.write_str("the System process creating a pipe"),
        }
    }
}

/// An event the kernel's matcher matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Example {
    /// Pipe name.
    pub pipe_name: String,
    /// Image, if any.
    pub image: Option<String>,
    /// Process id.
    pub pid: u32,
    /// Create or connect.
    pub kind: EventKind,
}

impl std::fmt::Display for Example {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let verb = match self.kind {
            EventKind::Create => "created",
            EventKind::Connect => "opened",
        };
        write!(f, "{} {verb} by ", self.pipe_name)?;
        match &self.image {
            Some(i) => write!(f, "{i}"),
            None if self.pid == 4 => f.write_str("the System process (pid 4)"),
            None => f.write_str("a process with no image"),
        }
    }
}

/// A block rule that can match a protected case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// Rule id.
    pub rule_id: u32,
    /// Rule name.
    pub rule_name: String,
    /// The first protected case it hits.
    pub case: Case,
    /// An event of that case the kernel's matcher matched, if the examples
    /// found one (else only the symbolic check did).
    pub example: Option<Example>,
}

impl Finding {
    /// What the rule matches and what to do, without naming the rule.
    pub fn describe(&self) -> String {
        let mut s = format!("this block rule matches {}", self.case);
        match &self.example {
            Some(e) => s.push_str(&format!(", e.g. {e}")),
            None => s.push_str(
                " for some value of its other fields (found by the symbolic check; no built-in example matched)",
            ),
        }
        s.push_str(": the sensor never denies it (decision `protected`); make it an alert rule or narrow it (docs/rules.md)");
        s
    }
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "block rule {} ({}) matches {}",
            self.rule_id, self.rule_name, self.case
        )?;
        match &self.example {
            Some(e) => write!(f, ", e.g. {e}")?,
            None => f.write_str(
                " for some value of its other fields (found by the symbolic check; no built-in example matched)",
            )?,
        }
        f.write_str(": the sensor never denies it (decision `protected`); make it an alert rule or narrow it (docs/rules.md)")
    }
}

/// Finds the block rules of `file` that can match a protected case (see the
/// module documentation), in rule order, one finding per rule.
pub fn check_file(file: &ChannelFile<'_>) -> Vec<Finding> {
    let examples = example_hits(file);
    let mut out = Vec::new();
    let mut dfas = DfaCache::default();
    let ordinary = Lang::literal(ORDINARY_NAME);
    let sibling = Lang::image(SIBLING_FILE);
    let names: Vec<(Case, Lang)> = PROTECTED_PIPES
        .iter()
        .map(|p| (Case::Name(p), Lang::literal(p.name)))
        .collect();
    let images: Vec<(Case, Lang)> = CRITICAL_IMAGES
        .iter()
        .map(|c| (Case::Image(c), Lang::image(c.file)))
        .collect();
    for rule in file.rules().filter(|r| r.action() == Action::BLOCK) {
        let atoms: BTreeMap<u32, AtomView<'_>> = rule.atoms().map(|a| (a.index(), a)).collect();
        let mut can_match = |facts: &Facts<'_>| {
            eval_program(rule.program(), |idx| {
                atoms
                    .get(&idx)
                    .map_or(Tri::Unknown, |a| atom_tri(a, facts, &mut dfas))
            }) != Tri::False
        };
        let any = Facts::UNKNOWN;
        // 1. A protected name, whoever asks.
        let mut symbolic = names
            .iter()
            .find(|(_, l)| {
                can_match(&Facts {
                    name: Val::Lang(l),
                    ..any
                })
            })
            .map(|(c, _)| *c);
        // 2. A critical process: singled out by the image condition (it can
        // match the process but not a program beside it), or matched with an
        // ordinary pipe name.
        if symbolic.is_none() {
            let beside = can_match(&Facts {
                image: Val::Lang(&sibling),
                ..any
            });
            symbolic = images
                .iter()
                .find(|(_, l)| {
                    let on = Facts {
                        image: Val::Lang(l),
                        ..any
                    };
                    (can_match(&on) && !beside)
                        || can_match(&Facts {
                            name: Val::Lang(&ordinary),
                            ..on
                        })
                })
                .map(|(c, _)| *c);
        }
        // 3. The System process creating a pipe: singled out (process id 4)
        // or with an ordinary name.
        if symbolic.is_none() {
            let system = Facts {
                image: Val::Absent,
                pid: Num::Is(4),
                kind: Num::Is(EventKind::Create.value()),
                ..any
            };
            let other = Facts {
                pid: Num::Not(4),
                ..system
            };
            let singled = can_match(&system) && !can_match(&other);
            let ordinary_name = can_match(&Facts {
                name: Val::Lang(&ordinary),
                ..system
            });
            if singled || ordinary_name {
                symbolic = Some(Case::SystemCreate);
            }
        }
        let example = examples.get(&rule.id()).cloned();
        let case = match (&example, symbolic) {
            (Some((c, _)), _) => Some(*c),
            (None, s) => s,
        };
        if let Some(case) = case {
            out.push(Finding {
                rule_id: rule.id(),
                rule_name: rule.name().to_string(),
                case,
                example: example.map(|(_, e)| e),
            });
        }
    }
    out
}

/// A pipe name every process using Winsock creates (critical processes
/// included): a rule that matches it together with a critical image denies
/// that process's ordinary pipes.
pub const ORDINARY_NAME: &str = r"\Winsock2\CatalogChangeListener-1f4-0";
/// A program beside the critical processes, to tell whether an image
/// condition singles one of them out.
pub const SIBLING_FILE: &str = "pipe-sensor-example.exe";

// ---------------------------------------------------------------- examples

const USER_IMAGE: &str = r"C:\Users\Public\tool.exe";

/// The example events, each with the protected case the kernel assigns it.
fn examples() -> Vec<(Case, Example)> {
    let mut out = Vec::new();
    let root = SystemRoot::Known(Text::Utf8(r"C:\Windows"));
    let critical = |c: &CriticalImage| format!(r"C:\Windows\{SYSTEM_DIR}\{}", c.file);
    let mut images: Vec<Option<String>> = vec![
        None,
        Some(USER_IMAGE.into()),
        Some(format!(r"C:\Windows\{SYSTEM_DIR}\svchost.exe")),
    ];
    images.extend(CRITICAL_IMAGES.iter().map(|c| Some(critical(c))));
    for p in PROTECTED_PIPES {
        for name in [
            p.name.to_string(),
            p.name.to_lowercase(),
            p.name.to_uppercase(),
        ] {
            for image in &images {
                for kind in [EventKind::Create, EventKind::Connect] {
                    out.push((
                        Case::Name(p),
                        Example {
                            pipe_name: name.clone(),
                            image: image.clone(),
                            pid: 1000,
                            kind,
                        },
                    ));
                }
            }
        }
    }
    for c in CRITICAL_IMAGES {
        let base = critical(c);
        let winnt = format!(r"D:\WINNT\system32\{}", c.file);
        for path in [
            base.clone(),
            base.to_uppercase(),
            base.to_lowercase(),
            winnt,
        ] {
            for kind in [EventKind::Create, EventKind::Connect] {
                out.push((
                    Case::Image(c),
                    Example {
                        pipe_name: ORDINARY_NAME.into(),
                        image: Some(path.clone()),
                        pid: 1000,
                        kind,
                    },
                ));
            }
        }
    }
    out.push((
        Case::SystemCreate,
        Example {
            pipe_name: ORDINARY_NAME.into(),
            image: None,
            pid: 4,
            kind: EventKind::Create,
        },
    ));
    // Keep only what the kernel's own check protects (with the system root
    // of the example's path).
    out.retain(|(_, e)| {
        let kind = match e.kind {
            EventKind::Create => sensor_core::ring::EventKind::Create,
            EventKind::Connect => sensor_core::ring::EventKind::Connect,
        };
        let root = match &e.image {
            Some(i) if i.starts_with('D') => SystemRoot::Known(Text::Utf8(r"D:\Windows")),
            _ => root,
        };
        let who = Requestor {
            image: e.image.as_deref().map(Text::Utf8),
            system_process: e.pid == 4,
        };
        kernel::check(kind, Text::Utf8(&e.pipe_name), &who, root).is_some()
    });
    out
}

/// For each block rule the matcher matches on some example: the first one.
fn example_hits(file: &ChannelFile<'_>) -> BTreeMap<u32, (Case, Example)> {
    let mut hits: BTreeMap<u32, (Case, Example)> = BTreeMap::new();
    let mut scratch = Box::new(Scratch::new());
    for (case, e) in examples() {
        let ev = Event {
            pipe_name: Text::Utf8(&e.pipe_name),
            image: e.image.as_deref().map(Text::Utf8),
            pid: e.pid,
            kind: e.kind,
            user: None,
        };
        file.for_each_match(&ev, &mut scratch, |r| {
            if r.action() == Action::BLOCK {
                hits.entry(r.id()).or_insert_with(|| (case, e.clone()));
            }
            ControlFlow::Continue(())
        });
    }
    hits
}

// ---------------------------------------------------------------- symbolic

/// Three-valued truth.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tri {
    False,
    Unknown,
    True,
}

impl Tri {
    fn not(self) -> Tri {
        match self {
            Tri::False => Tri::True,
            Tri::True => Tri::False,
            Tri::Unknown => Tri::Unknown,
        }
    }
    fn and(self, o: Tri) -> Tri {
        self.min(o)
    }
    fn or(self, o: Tri) -> Tri {
        self.max(o)
    }
    fn min(self, o: Tri) -> Tri {
        if self.rank() <= o.rank() {
            self
        } else {
            o
        }
    }
    fn max(self, o: Tri) -> Tri {
        if self.rank() >= o.rank() {
            self
        } else {
            o
        }
    }
    fn rank(self) -> u8 {
        match self {
            Tri::False => 0,
            Tri::Unknown => 1,
            Tri::True => 2,
        }
    }
}

/// Kleene evaluation of a validated program (FORMAT.md §8), decoded by the
/// format's one decoder; anything malformed is *unknown*.
fn eval_program(program: &[u8], mut atom: impl FnMut(u32) -> Tri) -> Tri {
    let mut st: Vec<Tri> = Vec::new();
    for item in channel_format::program::instructions(program) {
        let Ok((_, instr)) = item else {
            return Tri::Unknown;
        };
        let v = match instr {
            Instr::Atom(idx) => atom(idx),
            Instr::True => Tri::True,
            Instr::False => Tri::False,
            Instr::Not => st.pop().unwrap_or(Tri::Unknown).not(),
            Instr::And | Instr::Or => {
                let b = st.pop().unwrap_or(Tri::Unknown);
                let a = st.pop().unwrap_or(Tri::Unknown);
                if instr == Instr::And {
                    a.and(b)
                } else {
                    a.or(b)
                }
            }
        };
        st.push(v);
    }
    st.pop().unwrap_or(Tri::Unknown)
}

/// One step of a pattern over characters (literals folded).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// This character (folded).
    Char(char),
    /// Any one character.
    Any,
    /// Any run of characters.
    Star,
}

impl Step {
    fn is_star(self) -> bool {
        self == Step::Star
    }
    /// The one-character predicate of a consuming step or a star's loop.
    fn class(self) -> Class {
        match self {
            Step::Char(c) => Class::Char(c),
            Step::Any | Step::Star => Class::Any,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Char(char),
    Any,
}

/// Whether some character satisfies both classes.
fn compatible(a: Class, b: Class) -> bool {
    match (a, b) {
        (Class::Char(x), Class::Char(y)) => x == y,
        _ => true,
    }
}

fn lit(s: &str) -> impl Iterator<Item = Step> + '_ {
    s.chars().map(|c| Step::Char(fold_char(c)))
}

/// The set of values of a field in a protected case, as steps.
#[derive(Debug, Clone)]
struct Lang {
    steps: Vec<Step>,
    /// The fixed tail every value ends with (for containment), folded.
    tail: String,
    /// Whether the language is a single string up to letter case.
    singleton: bool,
}

impl Lang {
    /// One name, in any letter case.
    fn literal(name: &str) -> Lang {
        Lang {
            steps: lit(name).collect(),
            tail: name.chars().map(fold_char).collect(),
            singleton: true,
        }
    }

    /// `?:\Windows\System32\<file>`, any drive and letter case.
    fn image(file: &str) -> Lang {
        let tail = format!(r"{UNKNOWN_ROOT_AFTER_DRIVE}\{SYSTEM_DIR}\{file}");
        let mut steps = vec![Step::Any];
        steps.extend(lit(&tail));
        Lang {
            steps,
            tail: tail.chars().map(fold_char).collect(),
            singleton: false,
        }
    }
}

/// What a string field holds in a case.
#[derive(Debug, Clone, Copy)]
enum Val<'l> {
    /// A value of this language.
    Lang(&'l Lang),
    /// Anything.
    Unknown,
    /// No value (atoms on it are false).
    Absent,
}

/// What an integer field holds in a case.
#[derive(Debug, Clone, Copy)]
enum Num {
    /// This value.
    Is(u32),
    /// Anything but this value.
    Not(u32),
    /// Anything.
    Unknown,
}

/// The fields of the events of one case.
#[derive(Debug, Clone, Copy)]
struct Facts<'l> {
    name: Val<'l>,
    image: Val<'l>,
    pid: Num,
    kind: Num,
}

impl Facts<'_> {
    const UNKNOWN: Facts<'static> = Facts {
        name: Val::Unknown,
        image: Val::Unknown,
        pid: Num::Unknown,
        kind: Num::Unknown,
    };
}

/// A stored (folded, escaped) glob as steps.
fn glob_steps(pat: &str) -> Option<Vec<Step>> {
    let mut out = Vec::new();
    let mut it = pat.chars();
    while let Some(c) = it.next() {
        out.push(match c {
            '*' => Step::Star,
            '?' => Step::Any,
            '\\' => Step::Char(fold_char(it.next()?)),
            c => Step::Char(fold_char(c)),
        });
    }
    Some(out)
}

/// The steps of a string atom (not REGEX).
fn atom_steps(kind: AtomKind, text: &str) -> Option<Vec<Step>> {
    let l = || lit(text);
    Some(match kind {
        AtomKind::EXACT => l().collect(),
        AtomKind::PREFIX => l().chain([Step::Star]).collect(),
        AtomKind::SUFFIX => [Step::Star].into_iter().chain(l()).collect(),
        AtomKind::CONTAINS => [Step::Star]
            .into_iter()
            .chain(l())
            .chain([Step::Star])
            .collect(),
        AtomKind::GLOB => glob_steps(text)?,
        _ => return None,
    })
}

/// The positions reachable from `i` by skipping stars.
fn closure(steps: &[Step], i: usize, out: &mut Vec<usize>) {
    out.push(i);
    let mut j = i;
    while steps.get(j).is_some_and(|s| s.is_star()) {
        j += 1;
        out.push(j);
    }
}

/// The consuming moves from position `i`: (character class, next position).
fn moves(steps: &[Step], i: usize) -> Vec<(Class, usize)> {
    let mut pos = Vec::new();
    closure(steps, i, &mut pos);
    let mut out = Vec::new();
    for p in pos {
        if let Some(s) = steps.get(p) {
            if s.is_star() {
                out.push((s.class(), p));
            } else {
                out.push((s.class(), p + 1));
            }
        }
    }
    out
}

fn accepts(steps: &[Step], i: usize) -> bool {
    let mut pos = Vec::new();
    closure(steps, i, &mut pos);
    pos.contains(&steps.len())
}

/// Whether the two step languages share a string (product automaton).
fn intersects(a: &[Step], b: &[Step]) -> bool {
    let mut seen = HashSet::new();
    let mut queue = VecDeque::from([(0usize, 0usize)]);
    while let Some((i, j)) = queue.pop_front() {
        if !seen.insert((i, j)) {
            continue;
        }
        if accepts(a, i) && accepts(b, j) {
            return true;
        }
        for (ca, ni) in moves(a, i) {
            for (cb, nj) in moves(b, j) {
                if compatible(ca, cb) {
                    queue.push_back((ni, nj));
                }
            }
        }
    }
    false
}

/// Regex DFAs built case-insensitively, by source (`None`: could not be
/// built within the budget).
#[derive(Default)]
struct DfaCache {
    dfas: BTreeMap<String, Option<regex_automata::dfa::dense::DFA<Vec<u32>>>>,
}

impl DfaCache {
    fn get(&mut self, source: &str) -> Option<&regex_automata::dfa::dense::DFA<Vec<u32>>> {
        use regex_automata::dfa::{dense, StartKind};
        use regex_automata::util::syntax;
        self.dfas
            .entry(source.to_string())
            .or_insert_with(|| {
                dense::Builder::new()
                    .syntax(
                        syntax::Config::new()
                            .case_insensitive(true)
                            .unicode(true)
                            .utf8(true),
                    )
                    .configure(
                        dense::Config::new()
                            .start_kind(StartKind::Unanchored)
                            .dfa_size_limit(Some(16 << 20))
                            .determinize_size_limit(Some(64 << 20)),
                    )
                    .build(source)
                    .ok()
            })
            .as_ref()
    }
}

/// Whether the regex DFA finds a match in some string of the language
/// (`None`: undecided, e.g. a quit state).
fn regex_intersects(
    dfa: &regex_automata::dfa::dense::DFA<Vec<u32>>,
    steps: &[Step],
) -> Option<bool> {
    use regex_automata::dfa::Automaton;
    use regex_automata::util::primitives::StateID;
    use regex_automata::util::start;
    use regex_automata::Anchored;
    let start = dfa
        .start_state(&start::Config::new().anchored(Anchored::No))
        .ok()?;
    // One character in UTF-8: (first-byte range, continuation bytes).
    let lead: [(u8, u8, usize); 4] = [
        (0x00, 0x7F, 0),
        (0xC2, 0xDF, 1),
        (0xE0, 0xEF, 2),
        (0xF0, 0xF4, 3),
    ];
    let classes = dfa.byte_classes();
    // Every state `s` can reach by consuming one character of `class`;
    // `None` if a match or quit state is passed on the way.
    let step_char = |s: StateID, class: Class, out: &mut Vec<StateID>| -> Option<bool> {
        let feed = |s: StateID, b: u8| dfa.next_state(s, b);
        match class {
            Class::Char(c) => {
                let mut buf = [0u8; 4];
                let mut t = s;
                for &b in c.encode_utf8(&mut buf).as_bytes() {
                    t = feed(t, b);
                    if dfa.is_quit_state(t) {
                        return None;
                    }
                    if dfa.is_match_state(t) {
                        return Some(true);
                    }
                    if dfa.is_dead_state(t) {
                        return Some(false);
                    }
                }
                out.push(t);
                Some(false)
            }
            Class::Any => {
                for (lo, hi, conts) in lead {
                    for unit in classes.representatives(lo..=hi) {
                        let Some(b) = unit.as_u8() else { continue };
                        let mut frontier = vec![feed(s, b)];
                        for _ in 0..conts {
                            let mut next = Vec::new();
                            for t in frontier {
                                if dfa.is_quit_state(t) {
                                    return None;
                                }
                                if dfa.is_match_state(t) {
                                    return Some(true);
                                }
                                if dfa.is_dead_state(t) {
                                    continue;
                                }
                                for cu in classes.representatives(0x80..=0xBF) {
                                    if let Some(cb) = cu.as_u8() {
                                        next.push(feed(t, cb));
                                    }
                                }
                            }
                            frontier = next;
                        }
                        for t in frontier {
                            if dfa.is_quit_state(t) {
                                return None;
                            }
                            if dfa.is_match_state(t) {
                                return Some(true);
                            }
                            if !dfa.is_dead_state(t) {
                                out.push(t);
                            }
                        }
                    }
                }
                Some(false)
            }
        }
    };
    let mut seen = HashSet::new();
    let mut queue = VecDeque::from([(start, 0usize)]);
    while let Some((s, i)) = queue.pop_front() {
        if !seen.insert((s, i)) {
            continue;
        }
        if dfa.is_match_state(s) {
            return Some(true);
        }
        if accepts(steps, i) {
            let eoi = dfa.next_eoi_state(s);
            if dfa.is_match_state(eoi) {
                return Some(true);
            }
        }
        for (class, ni) in moves(steps, i) {
            let mut next = Vec::new();
            if step_char(s, class, &mut next)? {
                return Some(true);
            }
            for t in next {
                queue.push_back((t, ni));
            }
        }
    }
    Some(false)
}

/// One atom decided against the values its field takes in `facts`.
fn atom_tri(a: &AtomView<'_>, facts: &Facts<'_>, dfas: &mut DfaCache) -> Tri {
    let num = |n: Num| match n {
        Num::Is(v) => tri(a.arg() == v),
        Num::Not(v) if a.arg() == v => Tri::False,
        _ => Tri::Unknown,
    };
    let val = match (a.field(), a.kind()) {
        (FieldId::PROCESS_ID, AtomKind::NUM_EQ) => return num(facts.pid),
        (FieldId::EVENT_KIND, AtomKind::NUM_EQ) => return num(facts.kind),
        (FieldId::PIPE_NAME, _) => facts.name,
        (FieldId::IMAGE, _) => facts.image,
        _ => return Tri::Unknown,
    };
    let lang = match val {
        Val::Lang(l) => l,
        Val::Unknown => return Tri::Unknown,
        Val::Absent => return Tri::False,
    };
    if a.kind() == AtomKind::REGEX {
        return match dfas
            .get(a.text())
            .and_then(|d| regex_intersects(d, &lang.steps))
        {
            Some(false) => Tri::False,
            _ => Tri::Unknown,
        };
    }
    let Some(steps) = atom_steps(a.kind(), a.text()) else {
        return Tri::Unknown;
    };
    if !intersects(&steps, &lang.steps) {
        return Tri::False;
    }
    // Every value satisfies it: a case-insensitive atom on a single name, or
    // a suffix / substring of the fixed tail of an image path.
    let text: String = a.text().chars().map(fold_char).collect();
    let all = lang.singleton
        || match a.kind() {
            AtomKind::SUFFIX => lang.tail.ends_with(&text),
            AtomKind::CONTAINS => lang.tail.contains(&text),
            _ => false,
        };
    if all {
        Tri::True
    } else {
        Tri::Unknown
    }
}

fn tri(b: bool) -> Tri {
    if b {
        Tri::True
    } else {
        Tri::False
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn steps(kind: AtomKind, s: &str) -> Vec<Step> {
        atom_steps(kind, &crate::compile::fold(s)).unwrap()
    }

    #[test]
    fn glob_products() {
        let lsass = Lang::literal(PROTECTED_PIPES[0].name);
        assert!(intersects(&steps(AtomKind::GLOB, "*ls*"), &lsass.steps));
        // Stored globs escape a literal backslash: `\\?SASS` is `\`, any
        // character, `SASS`.
        assert!(intersects(&steps(AtomKind::GLOB, r"\\?SASS"), &lsass.steps));
        assert!(!intersects(&steps(AtomKind::GLOB, r"\\?SAS"), &lsass.steps));
        assert!(!intersects(&steps(AtomKind::GLOB, r"\?SASS"), &lsass.steps));
        assert!(intersects(&steps(AtomKind::PREFIX, r"\l"), &lsass.steps));
        assert!(!intersects(
            &steps(AtomKind::PREFIX, r"\lsass\"),
            &lsass.steps
        ));
        let img = Lang::image(CRITICAL_IMAGES[5].file);
        assert_eq!(CRITICAL_IMAGES[5].file, "lsass.exe");
        for (k, s, want) in [
            (AtomKind::SUFFIX, r"\lsass.exe", true),
            (AtomKind::SUFFIX, r"\system32\lsass.exe", true),
            (AtomKind::SUFFIX, r"\syswow64\lsass.exe", false),
            (AtomKind::EXACT, r"D:\WINDOWS\System32\LSASS.EXE", true),
            (AtomKind::EXACT, r"C:\OS\Windows\System32\lsass.exe", false),
            (AtomKind::CONTAINS, r"\Users\Public\", false),
            (AtomKind::CONTAINS, r"\Downloads\", false),
            (AtomKind::CONTAINS, r"\Windows\", true),
            (AtomKind::PREFIX, r"C:\Program Files\", false),
            (AtomKind::GLOB, r"?:\\*\\lsass.exe", true),
            (AtomKind::GLOB, r"*\\temp\\*", false),
        ] {
            assert_eq!(intersects(&steps(k, s), &img.steps), want, "{k:?} {s}");
        }
    }

    #[test]
    fn regex_products() {
        let mut c = DfaCache::default();
        let lsass = Lang::literal(PROTECTED_PIPES[0].name);
        let img = Lang::image(CRITICAL_IMAGES[5].file);
        for (re, lang, want) in [
            (r"^\\lsass$", &lsass, true),
            (r"^\\LSASS$", &lsass, true),
            (r"ls", &lsass, true),
            (r"^\\ls[a-z]+$", &lsass, true),
            (r"^\\lsass\d", &lsass, false),
            (r"^\\v2re_[0-9]{3}$", &lsass, false),
            (r"lsass\.exe$", &img, true),
            (r"^[a-z]:\\windows\\system32\\lsass\.exe$", &img, true),
            (r"(?i)\\temp\\", &img, false),
            (r"^C:\\Users\\", &img, false),
            (r"\\[^\\]+\\system32\\", &img, true),
            (r"^[a-z]:\\windows\\system32\\[^\\]+$", &img, true),
        ] {
            let d = c.get(re).unwrap_or_else(|| panic!("{re}"));
            assert_eq!(regex_intersects(d, &lang.steps), Some(want), "{re}");
        }
    }

    #[test]
    fn kleene() {
        use Tri::*;
        assert_eq!(Unknown.and(False), False);
        assert_eq!(Unknown.or(True), True);
        assert_eq!(Unknown.not(), Unknown);
        // atom0 AND NOT atom1
        let mut p = Vec::new();
        for i in [Instr::Atom(0), Instr::Atom(1), Instr::Not, Instr::And] {
            p.extend_from_slice(i.encode().as_bytes());
        }
        let v = |a: Tri, b: Tri| move |i: u32| if i == 0 { a } else { b };
        assert_eq!(eval_program(&p, v(True, False)), True);
        assert_eq!(eval_program(&p, v(True, True)), False);
        assert_eq!(eval_program(&p, v(Unknown, False)), Unknown);
        p.push(0xEE);
        assert_eq!(eval_program(&p, v(True, False)), Unknown, "bad opcode");
    }
}
