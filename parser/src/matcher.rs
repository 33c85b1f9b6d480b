//! Matching events against a validated channel file.
//!
//! # Algorithm
//! 1. Each string field that has a prefilter automaton is run through it
//!    once. ASCII characters (UTF-16 units below 0x80, or UTF-8 bytes) go
//!    straight through the automaton's class map, which folds ASCII case; any
//!    other character is decoded, folded ([`crate::fold_char`]) and fed as
//!    its UTF-8 bytes. In the root, ASCII units outside the automaton's
//!    start set (derived at parse time) are skipped with one bit test each;
//!    near the root a step is one load from a dense row; deeper states
//!    search their few labels and follow failure links. Each
//!    reported atom (a *gate*) is decided from its position: `contains`,
//!    glob and regex gates anywhere, `prefix` only when it ends at its own
//!    length; `suffix` and `exact` from the state the scan ends in (whose
//!    outputs are exactly the literals that end the field).
//! 2. The rules owning a reported atom, plus the rules flagged
//!    always-evaluate, are evaluated in index order: their condition program
//!    runs on a 64-entry bit stack; prefiltered atoms read the hits; other
//!    literal atoms compare the field directly; glob atoms run the wildcard
//!    matcher, regex atoms their character DFA; numeric atoms compare.
//!
//! Cost: one pass over each scanned field plus work proportional to the
//! atoms reported and the candidate rules — not to the number of rules in the
//! file.
//!
//! Hits live in a fixed-capacity [`Scratch`]. If one event reports more
//! distinct atoms than it holds, the rules are processed in windows of rule
//! indices, rescanning the fields once per window: still exact, only slower,
//! and only for pathological names.

use crate::text::{anchored_match, anchored_match_call, glob_match, literal_match, Text, Units};
use crate::view::{Automaton, ChannelFile, DirectLiteral, RuleView};
use channel_format::program::{self, Instr};
use channel_format::{atom, op, rule, Action, AtomKind, EventKind, FieldId, DENSE_EXIT_FLAG};
use core::ops::ControlFlow;

/// Distinct atoms one scan can record; equal to the largest number of atoms a
/// rule may have, so a window always holds at least one whole rule.
pub const SCRATCH_HITS: usize = 256;

/// One pipe event, as the sensor sees it.
#[derive(Debug, Clone, Copy)]
pub struct Event<'e> {
    /// The pipe name, Sysmon style: `\name` (no `\Device\NamedPipe` prefix).
    pub pipe_name: Text<'e>,
    /// Image path of the process, when known. String atoms on a missing image
    /// are false.
    pub image: Option<Text<'e>>,
    /// Process id.
    pub pid: u32,
    /// Create or connect.
    pub kind: EventKind,
    /// The requester's user SID in string form (`S-1-5-18`), when the
    /// sensor read it. String atoms on a missing user are false, as on a
    /// missing image.
    pub user: Option<Text<'e>>,
}

#[derive(Debug, Clone, Copy)]
struct Hit {
    atom: u32,
    /// The atom's rule, with [`GATE_BIT`] when the atom is a gate.
    rule_gate: u32,
}

/// One atom record, as the scan hands it to its sink.
type AtomRec = [u8; atom::LEN];

/// Marks a hit of a gate (rule indices are below 2^31: `Limits`).
const GATE_BIT: u32 = 1 << 31;

impl Hit {
    #[inline]
    fn rule(&self) -> u32 {
        self.rule_gate & !GATE_BIT
    }
}

/// Atoms one lazy scan can record (see [`Lazy`]).
const LAZY_HITS: usize = 64;

/// The hits of lazily scanned fields: a cache. An atom of a lazy field is
/// decided by its hit when the field was scanned without overflow, and
/// directly (literal comparison, or its pattern matcher without the gate)
/// otherwise, which gives the same verdict.
#[derive(Debug, Clone)]
struct Lazy {
    atoms: [u32; LAZY_HITS],
    len: usize,
    /// Per field slot (bit 0 pipe name, bit 1 image, bit 2 user): scanned
    /// this event.
    scanned: u8,
    /// Per field slot: more hits than `atoms` holds.
    overflow: u8,
    /// Field scans this event, eager and lazy (see [`Scratch::scans`]).
    scans: u32,
}

impl Lazy {
    fn record(&mut self, atom: u32, slot: u8) {
        let hits = self.atoms.get(..self.len).unwrap_or(&[]);
        let i = match hits.binary_search(&atom) {
            Ok(_) => return,
            Err(i) => i,
        };
        let len = self.len;
        if len >= LAZY_HITS {
            self.overflow |= slot;
            return;
        }
        if let Some(tail) = self.atoms.get_mut(i..=len) {
            if !tail.is_empty() {
                tail.rotate_right(1);
            }
            if let Some(first) = tail.first_mut() {
                *first = atom;
            }
            self.len = len.saturating_add(1);
        }
    }

    fn contains(&self, atom: u32) -> bool {
        self.atoms
            .get(..self.len)
            .unwrap_or(&[])
            .binary_search(&atom)
            .is_ok()
    }
}

/// Working memory for matching: about 2.4 KiB. Allocate it once per thread
/// or per call from non-paged pool; do not put it on a small kernel stack.
#[derive(Debug, Clone)]
pub struct Scratch {
    hits: [Hit; SCRATCH_HITS],
    len: usize,
    passes: u32,
    lazy: Lazy,
}

impl Default for Scratch {
    fn default() -> Self {
        Scratch::new()
    }
}

impl Scratch {
    /// Empty scratch.
    pub const fn new() -> Scratch {
        Scratch {
            hits: [Hit {
                atom: 0,
                rule_gate: 0,
            }; SCRATCH_HITS],
            len: 0,
            passes: 0,
            lazy: Lazy {
                atoms: [0; LAZY_HITS],
                len: 0,
                scanned: 0,
                overflow: 0,
                scans: 0,
            },
        }
    }

    /// How many scan windows the last match needed (1 unless the name reported
    /// more distinct atoms than the scratch holds).
    pub fn passes(&self) -> u32 {
        self.passes
    }

    /// How many field scans the last match did: each field with an eager
    /// automaton once per window ([`Scratch::passes`]), plus each field
    /// with a LAZY automaton (FORMAT.md, PREFILTER: e.g. the image when no
    /// rule gates on it) once if a candidate rule needed one of its atoms.
    /// An event whose name makes no rule a candidate scans only the name.
    pub fn scans(&self) -> u32 {
        self.lazy.scans
    }

    fn hits(&self) -> &[Hit] {
        self.hits.get(..self.len).unwrap_or(&[])
    }

    fn find(&self, atom: u32) -> Result<usize, usize> {
        self.hits().binary_search_by_key(&atom, |h| h.atom)
    }

    /// Records `atom` of `rule` (in the window `[lo, *hi)`), shrinking the
    /// window when full; `gate`: the atom is a gate. The common case, an
    /// atom above every recorded one with room left, is an append in line;
    /// the rest ([`Scratch::record_slow`]) out of line.
    #[inline(always)]
    fn record(&mut self, atom: u32, rule: u32, gate: bool, lo: u32, hi: &mut u32) {
        if rule < lo || rule >= *hi {
            return;
        }
        let len = self.len;
        let above = match len.checked_sub(1) {
            Some(last) => self.hits.get(last).is_some_and(|h| h.atom < atom),
            None => true,
        };
        if above {
            if let Some(slot) = self.hits.get_mut(len) {
                *slot = Hit {
                    atom,
                    rule_gate: if gate { rule | GATE_BIT } else { rule },
                };
                self.len = len.wrapping_add(1);
                return;
            }
        }
        self.record_slow(atom, rule, gate, lo, hi);
    }

    /// [`Scratch::record`] when the atom is not above every recorded one, or
    /// the scratch is full.
    #[inline(never)]
    fn record_slow(&mut self, atom: u32, rule: u32, gate: bool, lo: u32, hi: &mut u32) {
        // Atoms are reported in no particular order, but often the same
        // one again or ascending: check the end first.
        let mut i = match self.hits().last() {
            Some(h) if h.atom == atom => return,
            Some(h) if h.atom < atom => self.len,
            None => 0,
            Some(_) => match self.find(atom) {
                Ok(_) => return,
                Err(i) => i,
            },
        };
        if self.len >= SCRATCH_HITS {
            let last_rule = self.hits().last().map_or(rule, Hit::rule);
            let cut = rule.max(last_rule);
            if cut <= lo {
                // Unreachable: a rule has at most SCRATCH_HITS atoms.
                return;
            }
            *hi = cut;
            while self.hits().last().is_some_and(|h| h.rule() >= cut) {
                self.len = self.len.saturating_sub(1);
            }
            if rule >= cut {
                return;
            }
            i = i.min(self.len);
        }
        let len = self.len;
        if let Some(tail) = self.hits.get_mut(i..=len) {
            // Insert at `i`, shifting the few hits after it by one: a
            // loop, no memmove call (usually none or one hit moves).
            let mut carry = Hit {
                atom,
                rule_gate: if gate { rule | GATE_BIT } else { rule },
            };
            for h in tail {
                core::mem::swap(h, &mut carry);
            }
            self.len = len.saturating_add(1);
        }
    }
}

/// The outcome of matching one event.
#[derive(Debug, Clone, Copy)]
pub struct Verdict<'a> {
    /// How many rules matched.
    pub matched: u32,
    /// The highest-priority match: `block` before `alert`, then higher
    /// severity, then the lower rule index.
    pub best: Option<RuleView<'a>>,
}

impl Verdict<'_> {
    /// Whether the best match asks to block.
    pub fn blocks(&self) -> bool {
        self.best.is_some_and(|r| r.action() == Action::BLOCK)
    }
}

impl<'a> ChannelFile<'a> {
    /// Matches `event` and returns how many rules matched and the
    /// highest-priority one.
    ///
    /// # Panics
    /// Never panics. Allocates nothing.
    pub fn evaluate(&self, event: &Event<'_>, scratch: &mut Scratch) -> Verdict<'a> {
        // The best rule by index and priority; its view is made once, at
        // the end (a view is large: copying one per match costs more).
        let mut matched = 0u32;
        let mut best: Option<(u32, (u8, u8))> = None;
        self.for_each_match_index(event, scratch, |rule| {
            matched = matched.saturating_add(1);
            let p = self.priority(rule);
            if best.is_none_or(|(_, b)| p > b) {
                best = Some((rule, p));
            }
            ControlFlow::Continue(())
        });
        match best {
            // Most events match nothing: no view to write.
            None => Verdict {
                matched,
                best: None,
            },
            Some((rule, _)) => Verdict {
                matched,
                best: self.rule(rule),
            },
        }
    }

    /// A rule's priority: its action (`block` above `alert`), then its
    /// severity.
    #[inline(always)]
    fn priority(&self, rule: u32) -> (u8, u8) {
        (
            self.rule_u8(rule, rule::ACTION),
            self.rule_u8(rule, rule::SEVERITY),
        )
    }

    /// Calls `f` with every rule that matches `event`, in ascending rule index,
    /// each once, until `f` breaks.
    ///
    /// # Panics
    /// Never panics. Allocates nothing.
    pub fn for_each_match(
        &self,
        event: &Event<'_>,
        scratch: &mut Scratch,
        mut f: impl FnMut(RuleView<'a>) -> ControlFlow<()>,
    ) {
        self.for_each_match_index(event, scratch, |rule| match self.rule(rule) {
            Some(r) => f(r),
            None => ControlFlow::Continue(()),
        });
    }

    /// [`ChannelFile::for_each_match`] by rule index (every index below
    /// the rule count).
    fn for_each_match_index(
        &self,
        event: &Event<'_>,
        scratch: &mut Scratch,
        mut f: impl FnMut(u32) -> ControlFlow<()>,
    ) {
        let mut lo = 0u32;
        scratch.passes = 0;
        scratch.lazy.len = 0;
        scratch.lazy.scanned = 0;
        scratch.lazy.overflow = 0;
        scratch.lazy.scans = 0;
        while lo < self.rule_count {
            scratch.len = 0;
            scratch.passes = scratch.passes.saturating_add(1);
            let mut hi = self.rule_count;
            // In prefilter-slot order (crate::view::prefilter_slot).
            let fields = [Some(event.pipe_name), event.image, event.user];
            for (auto, text) in self.automata.iter().zip(fields) {
                if let Some(t) = text.filter(|_| auto.state_count > 0 && !auto.lazy) {
                    scratch.lazy.scans = scratch.lazy.scans.saturating_add(1);
                    self.scan(auto, t, &mut |atom, rec| {
                        let gate =
                            atom::FLAGS.get(rec).unwrap_or(0) & channel_format::ATOM_FLAG_GATE != 0;
                        let rule = atom::RULE.get(rec).unwrap_or(0);
                        scratch.record(atom, rule, gate, lo, &mut hi)
                    });
                }
            }
            let (hits, lazy) = (
                scratch.hits.get(..scratch.len).unwrap_or(&[]),
                &mut scratch.lazy,
            );
            // Most events report nothing: then only the ALWAYS rules (if
            // any) are evaluated, without the merge with the hits.
            let flow = if !hits.is_empty() {
                self.evaluate_window(event, hits, lazy, lo, hi, &mut f)
            } else if self.always_count > 0 {
                self.evaluate_always(event, lazy, lo, hi, &mut f)
            } else {
                ControlFlow::Continue(())
            };
            if flow.is_break() {
                return;
            }
            // hi > lo always (see Scratch::record); max() guards progress anyway.
            lo = hi.max(lo.saturating_add(1));
        }
    }

    /// Runs one automaton over the folded text, reporting the atoms it
    /// finds to `sink`.
    #[inline(never)]
    fn scan(&self, a: &Automaton<'a>, text: Text<'_>, sink: &mut impl FnMut(u32, &AtomRec)) {
        match (text, a.narrow) {
            (Text::Utf16(units), true) => self.scan_units(a, &Hot::<2>::new(a), units, sink),
            (Text::Utf16(units), false) => self.scan_units(a, &Hot::<4>::new(a), units, sink),
            (Text::Utf8(text), true) => self.scan_units(a, &Hot::<2>::new(a), text, sink),
            (Text::Utf8(text), false) => self.scan_units(a, &Hot::<4>::new(a), text, sink),
        }
    }

    /// The end of a scan in state `s` at folded length `pos`: the literals
    /// that end the field are the outputs of the last state.
    #[inline(always)]
    fn report_end<const N: usize>(
        &self,
        hot: &Hot<'a, N>,
        s: u32,
        pos: u32,
        sink: &mut impl FnMut(u32, &AtomRec),
    ) where
        [u8; N]: IndexEntry,
    {
        let (o0, o1) = hot.output_range(s);
        for k in o0..o1 {
            let atom = hot.output(k);
            let Some(rec) = self.atom_rec(atom) else {
                continue;
            };
            let hit = match AtomKind(atom::KIND.get(rec).unwrap_or(0)) {
                AtomKind::SUFFIX => true,
                AtomKind::EXACT => atom::STR_LEN.get(rec) == Some(pos),
                _ => false,
            };
            if hit {
                sink(atom, rec);
            }
        }
    }

    /// Atom record `atom` (validated: in range).
    #[inline(always)]
    fn atom_rec(&self, atom: u32) -> Option<&'a AtomRec> {
        let base = (atom as usize).wrapping_mul(atom::LEN);
        self.atoms.bytes.get(base..)?.first_chunk::<{ atom::LEN }>()
    }

    /// The scan over UTF-16 units or UTF-8 bytes.
    ///
    /// ASCII units (nearly every character of a pipe name or image path)
    /// never leave the two inner loops: in the root, [`dense_run`] skips
    /// the units that start no literal ([`Units::skip_ascii_outside`] over
    /// the automaton's root start set); in a dense state it takes one row
    /// load per unit (the class map folds), until a transition carries the
    /// exit flag (target has outputs or is sparse). A sparse state searches
    /// its few labels (following failure links to a dense state). A
    /// non-ASCII character takes an out-of-line step (decode, fold, UTF-8
    /// bytes).
    #[inline(always)]
    fn scan_units<U: Units + ?Sized, const N: usize>(
        &self,
        a: &Automaton<'a>,
        hot: &Hot<'a, N>,
        units: &U,
        sink: &mut impl FnMut(u32, &AtomRec),
    ) where
        [u8; N]: IndexEntry,
    {
        let (classes, dense, d, cc) = (a.classes, hot.dense, a.dense_count, a.class_count as usize);
        let start = &a.root_start;
        let mut s = 0u32;
        let mut i = 0usize;
        // The folded byte position is `i + delta`: ASCII units count one
        // each, other characters adjust `delta` (outside the hot loop).
        let mut delta = 0u32;
        loop {
            if s < d {
                let (ni, ns, exit) = dense_run(units, i, s, classes, dense, cc, start);
                i = ni;
                s = ns;
                if exit {
                    let (o0, o1) = hot.output_range(s);
                    if o0 != o1 {
                        self.report(hot, (o0, o1), (i as u32).wrapping_add(delta), sink);
                    }
                    continue;
                }
                // The text ended or the unit at `i` is not ASCII.
            } else if let Some(u) = units.ascii_at(i) {
                let c = classes.get(usize::from(u)).copied().unwrap_or(0);
                i = i.wrapping_add(1);
                s = hot.step(s, u32::from(c));
                let (o0, o1) = hot.output_range(s);
                if o0 != o1 {
                    self.report(hot, (o0, o1), (i as u32).wrapping_add(delta), sink);
                }
                continue;
            }
            let Some((c, next)) = units.char_at(i) else {
                break;
            };
            let mut pos = (i as u32).wrapping_add(delta);
            s = self.step_char(a, hot, s, c, &mut pos, sink);
            i = next;
            delta = pos.wrapping_sub(i as u32);
        }
        self.report_end(hot, s, (i as u32).wrapping_add(delta), sink);
    }

    /// A non-ASCII character: folded, fed as its UTF-8 bytes.
    #[inline(never)]
    fn step_char<const N: usize>(
        &self,
        a: &Automaton<'a>,
        hot: &Hot<'a, N>,
        mut s: u32,
        c: char,
        pos: &mut u32,
        sink: &mut impl FnMut(u32, &AtomRec),
    ) -> u32
    where
        [u8; N]: IndexEntry,
    {
        let mut buf = [0u8; 4];
        for &b in crate::fold_char(c).encode_utf8(&mut buf).as_bytes() {
            *pos = pos.wrapping_add(1);
            s = sparse_step(a, s, a.class(b));
            let (o0, o1) = hot.output_range(s);
            if o0 != o1 {
                self.report(hot, (o0, o1), *pos, sink);
            }
        }
        s
    }

    /// Records the gates that a state reports at `pos` (its output range
    /// `[o0, o1)`): `contains` and pattern gates always, `prefix` when it
    /// starts the field; `suffix` and `exact` are decided where the scan
    /// ends. Each atom record is read once and handed to `sink` with the
    /// atom.
    #[inline(never)]
    fn report<const N: usize>(
        &self,
        hot: &Hot<'a, N>,
        (o0, o1): (u32, u32),
        pos: u32,
        sink: &mut impl FnMut(u32, &AtomRec),
    ) where
        [u8; N]: IndexEntry,
    {
        for k in o0..o1 {
            let atom = hot.output(k);
            let Some(rec) = self.atom_rec(atom) else {
                continue;
            };
            let hit = match AtomKind(atom::KIND.get(rec).unwrap_or(0)) {
                AtomKind::PREFIX => atom::STR_LEN.get(rec) == Some(pos),
                AtomKind::SUFFIX | AtomKind::EXACT => false,
                _ => true,
            };
            if hit {
                sink(atom, rec);
            }
        }
    }

    #[inline(never)]
    fn evaluate_window(
        &self,
        event: &Event<'_>,
        hits: &[Hit],
        lazy: &mut Lazy,
        lo: u32,
        hi: u32,
        f: &mut impl FnMut(u32) -> ControlFlow<()>,
    ) -> ControlFlow<()> {
        // Merge the rules of the hits (ascending) with the always list
        // (ascending). Hits are sorted by atom, so a rule's hits are one
        // run; a rule is a candidate when one of them is a gate.
        let mut hi_idx = 0usize;
        let mut ai = self.first_always_at_or_after(lo);
        loop {
            let next_hit = hits.get(hi_idx).map(Hit::rule);
            let next_always =
                Some(self.always_rule(ai)).filter(|&r| ai < self.always_count && r < hi);
            let rule = match (next_hit, next_always) {
                (None, None) => return ControlFlow::Continue(()),
                (Some(a), Some(b)) => a.min(b),
                (Some(a), None) => a,
                (None, Some(b)) => b,
            };
            let run_start = hi_idx;
            let mut gated = false;
            while let Some(h) = hits.get(hi_idx).filter(|h| h.rule() == rule) {
                gated |= h.rule_gate & GATE_BIT != 0;
                hi_idx = hi_idx.saturating_add(1);
            }
            let mut direct = None;
            if next_always == Some(rule) {
                direct = self.direct(ai);
                ai = ai.saturating_add(1);
                gated = true;
            }
            if !gated {
                continue;
            }
            let run = hits.get(run_start..hi_idx).unwrap_or(&[]);
            // A direct ALWAYS rule's one atom is not prefiltered: it has
            // no hits, and its literal decides it.
            let matched = match direct {
                Some(d) => direct_match_call(d, event),
                None => self.eval_rule(rule, event, run, lazy),
            };
            if matched && rule < self.rule_count {
                f(rule)?;
            }
        }
    }

    /// The ALWAYS rules of the window `[lo, hi)` when no atom was reported.
    #[inline(never)]
    fn evaluate_always(
        &self,
        event: &Event<'_>,
        lazy: &mut Lazy,
        lo: u32,
        hi: u32,
        f: &mut impl FnMut(u32) -> ControlFlow<()>,
    ) -> ControlFlow<()> {
        let mut ai = if lo == 0 {
            0
        } else {
            self.first_always_at_or_after(lo)
        };
        // The direct rules (the first of the list): each literal compared
        // with its field, without the program or the atom record (see
        // DirectLiteral).
        while let Some(d) = self.direct(ai) {
            if d.rule >= hi {
                return ControlFlow::Continue(());
            }
            if direct_match(d, event) && d.rule < self.rule_count {
                f(d.rule)?;
            }
            ai = ai.saturating_add(1);
        }
        while ai < self.always_count {
            let Some((rule, matched)) = self.eval_always_rule(ai, hi, event, lazy) else {
                break;
            };
            if matched && rule < self.rule_count {
                f(rule)?;
            }
            ai = ai.saturating_add(1);
        }
        ControlFlow::Continue(())
    }

    /// The `ai`-th ALWAYS rule and its verdict by its program, or `None`
    /// if the rule is at or after `hi`. Out of line: the loop of
    /// [`ChannelFile::evaluate_always`] stays small for direct rules.
    #[inline(never)]
    fn eval_always_rule(
        &self,
        ai: u32,
        hi: u32,
        event: &Event<'_>,
        lazy: &mut Lazy,
    ) -> Option<(u32, bool)> {
        let rule = self.always_rule(ai);
        (rule < hi).then(|| (rule, self.eval_rule(rule, event, &[], lazy)))
    }

    /// The direct test of the `ai`-th ALWAYS rule, if it has one.
    #[inline(always)]
    fn direct(&self, ai: u32) -> Option<&DirectLiteral<'a>> {
        self.always_direct
            .get(ai as usize)
            .filter(|d| d.kind != AtomKind(0))
    }

    fn first_always_at_or_after(&self, lo: u32) -> u32 {
        let (mut a, mut b) = (0u32, self.always_count);
        while a < b {
            let mid = a.wrapping_add(b.wrapping_sub(a) / 2);
            if self.always_rule(mid) < lo {
                a = mid.wrapping_add(1);
            } else {
                b = mid;
            }
        }
        a
    }

    /// Runs rule `rule`'s condition; `run` holds the rule's hits.
    fn eval_rule(&self, rule: u32, event: &Event<'_>, run: &[Hit], lazy: &mut Lazy) -> bool {
        let off = self.rule_u32(rule, rule::PROG_OFF) as usize;
        let len = usize::from(self.rule_u16(rule, rule::PROG_LEN));
        let prog = self
            .programs
            .bytes
            .get(off..off.saturating_add(len))
            .unwrap_or(&[]);
        // The most common program, one atom (`ATOM idx`), without the
        // decoder or the stack.
        const _: () = assert!(program::MAX_INSTR_LEN == 5);
        if let [op::ATOM, a, b, c, d] = *prog {
            return self.eval_atom(u32::from_le_bytes([a, b, c, d]), event, run, lazy);
        }
        // The format's decoder (a validated program: a decoding error cannot
        // happen; it would count as "no match").
        let mut rest = prog;
        let mut stack = 0u64;
        loop {
            // Decided runs skipped whole: `ATOM x OR` while the value is
            // true, `ATOM x AND` (or `ATOM x NOT AND`) while it is false
            // leave it as it is (a long `1 of` list after its first hit).
            loop {
                rest = match (stack & 1, rest) {
                    (1, [op::ATOM, _, _, _, _, op::OR, tail @ ..])
                    | (0, [op::ATOM, _, _, _, _, op::AND, tail @ ..])
                    | (0, [op::ATOM, _, _, _, _, op::NOT, op::AND, tail @ ..]) => tail,
                    _ => break,
                };
            }
            // This instruction and what follows it (for the short circuit).
            let here = rest;
            let Some(decoded) = program::step(&mut rest, |instr| {
                stack = match instr {
                    Instr::Atom(idx) => {
                        let v = match short_circuit(here, stack) {
                            Some(v) => v,
                            None => match self.gate_verdict(idx, run) {
                                Some(v) => v,
                                None => self.eval_atom(idx, event, run, lazy),
                            },
                        };
                        (stack << 1) | u64::from(v)
                    }
                    Instr::True => (stack << 1) | 1,
                    Instr::False => stack << 1,
                    Instr::Not => stack ^ 1,
                    Instr::And => (stack >> 1) & (stack | !1),
                    Instr::Or => (stack >> 1) | (stack & 1),
                }
            }) else {
                break;
            };
            if decoded.is_err() {
                return false;
            }
        }
        stack & 1 == 1
    }

    /// A gate's truth when the rule's hits decide it (not reported, or a
    /// reported literal), without a call; `None` otherwise.
    #[inline(always)]
    fn gate_verdict(&self, idx: u32, run: &[Hit]) -> Option<bool> {
        // The kind and flags bytes, adjacent in the record, read together.
        const _: () = assert!(atom::FLAGS.offset() == atom::KIND.end());
        let at = (idx as usize)
            .wrapping_mul(atom::LEN)
            .wrapping_add(atom::KIND.offset());
        match self.atoms.bytes.get(at..at.wrapping_add(2)) {
            Some(&[kind, flags]) if flags & channel_format::ATOM_FLAG_GATE != 0 => {
                let hit = run.iter().any(|h| h.atom == idx);
                // A reported pattern still runs its matcher.
                (!hit || AtomKind(kind).is_literal()).then_some(hit)
            }
            _ => None,
        }
    }

    /// One atom's truth. The record is read once; a prefiltered atom of a
    /// scanned field is decided by the rule's hits (`run`) unless it is a
    /// pattern that was hit, which then runs its matcher.
    fn eval_atom(&self, idx: u32, event: &Event<'_>, run: &[Hit], lazy: &mut Lazy) -> bool {
        let base = (idx as usize).wrapping_mul(atom::LEN);
        let Some(rec) = self.atoms.bytes.get(base..base.wrapping_add(atom::LEN)) else {
            return false;
        };
        let kind = AtomKind(atom::KIND.get(rec).unwrap_or(0));
        let flags = atom::FLAGS.get(rec).unwrap_or(0);
        // A gate is decided by the rule's hits (gates are never on a lazy
        // field): false unless reported, and a reported literal is true.
        if flags & channel_format::ATOM_FLAG_GATE != 0 {
            if !run.iter().any(|h| h.atom == idx) {
                return false;
            }
            if kind.is_literal() {
                return true;
            }
        }
        let field = FieldId(atom::FIELD.get(rec).unwrap_or(0));
        let prefiltered = flags & channel_format::ATOM_FLAG_PREFILTERED != 0;
        let arg = atom::ARG.get(rec).unwrap_or(0);
        let (text, slot) = match field {
            FieldId::PIPE_NAME => (Some(event.pipe_name), 0usize),
            FieldId::IMAGE => (event.image, 1),
            FieldId::USER => (event.user, 2),
            FieldId::PROCESS_ID => return kind == AtomKind::NUM_EQ && arg == event.pid,
            FieldId::EVENT_KIND => return kind == AtomKind::NUM_EQ && arg == event.kind.value(),
            _ => return false,
        };
        let Some(text) = text else { return false };
        // A prefiltered atom's hit: for literals the verdict, for patterns
        // the gate their matcher runs behind. `known` false: not prefiltered,
        // or a lazy scan overflowed: decide directly.
        let (hit, known) = if !prefiltered {
            (false, false)
        } else {
            match self.automata.get(slot) {
                Some(auto) if auto.lazy => {
                    let bit = 1u8 << slot;
                    if lazy.scanned & bit == 0 {
                        lazy.scanned |= bit;
                        lazy.scans = lazy.scans.saturating_add(1);
                        self.scan(auto, text, &mut |atom, _| lazy.record(atom, bit));
                    }
                    if lazy.overflow & bit != 0 {
                        (false, false)
                    } else {
                        (lazy.contains(idx), true)
                    }
                }
                _ => (run.iter().any(|h| h.atom == idx), true),
            }
        };
        if known && !hit {
            return false;
        }
        if known && kind.is_literal() {
            return true;
        }
        let (off, len) = (
            atom::STR_OFF.get(rec).unwrap_or(0) as usize,
            atom::STR_LEN.get(rec).unwrap_or(0) as usize,
        );
        let string = self
            .strings
            .bytes
            .get(off..off.saturating_add(len))
            .unwrap_or(&[]);
        match kind {
            AtomKind::PREFIX | AtomKind::SUFFIX | AtomKind::EXACT => {
                anchored_match_call(kind, string, string.is_ascii(), text)
            }
            AtomKind::CONTAINS => literal_match(kind, string, text),
            AtomKind::GLOB => glob_match(string, text),
            AtomKind::REGEX => self.dfa(arg).is_some_and(|dfa| dfa.is_match(text)),
            _ => false,
        }
    }
}

/// A direct ALWAYS rule's verdict: its literal against its field (false
/// on a missing image or user, as in [`ChannelFile::eval_atom`]).
#[inline(always)]
fn direct_match(d: &DirectLiteral<'_>, event: &Event<'_>) -> bool {
    let text = match d.slot {
        0 => Some(event.pipe_name),
        1 => event.image,
        2 => event.user,
        _ => None,
    };
    text.is_some_and(|t| anchored_match(d.kind, d.lit, d.ascii, t))
}

/// [`direct_match`] out of line (the window's loop stays small).
#[inline(never)]
fn direct_match_call(d: &DirectLiteral<'_>, event: &Event<'_>) -> bool {
    direct_match(d, event)
}

/// The value an atom (the ATOM instruction at the start of `here`) cannot
/// change, given the value below it on `stack`: when the atom is followed
/// (through any NOTs) by AND while that value is false, or by OR while it is
/// true. `sel and not filter` thus skips the filter — often an atom of the
/// lazily scanned image — when the selection is false. The compiler puts
/// cheap literal atoms before patterns, so a pattern runs only when its
/// literal pieces hold.
#[inline(always)]
fn short_circuit(here: &[u8], stack: u64) -> Option<bool> {
    let mut next = program::MAX_INSTR_LEN;
    while here.get(next) == Some(&op::NOT) {
        next = next.wrapping_add(1);
    }
    match here.get(next) {
        Some(&op::AND) if stack & 1 == 0 => Some(false),
        Some(&op::OR) if stack & 1 == 1 => Some(true),
        _ => None,
    }
}

/// Dense transition `idx` (an index into the rows of `u32` entries).
#[inline(always)]
fn dense_at(dense: &[[u8; 4]], idx: usize) -> u32 {
    const _: () = assert!(channel_format::AUTOMATON_DENSE_ENTRY_LEN == 4);
    match dense.get(idx) {
        Some(&w) => u32::from_le_bytes(w),
        None => 0,
    }
}

/// An entry of an automaton's index arrays: `u16` (NARROW) or `u32`.
pub(crate) trait IndexEntry: Copy {
    /// The entry's value.
    fn value(self) -> u32;
}

impl IndexEntry for [u8; 2] {
    #[inline(always)]
    fn value(self) -> u32 {
        u32::from(u16::from_le_bytes(self))
    }
}

impl IndexEntry for [u8; 4] {
    #[inline(always)]
    fn value(self) -> u32 {
        u32::from_le_bytes(self)
    }
}

/// The tables a scan reads on every unit, cut once per scan into arrays
/// of fixed-size entries (`N`: the index width): each read is one bounds
/// check, with no width test. Reads of validated data; the zero fallbacks
/// are unreachable.
pub(crate) struct Hot<'t, const N: usize> {
    /// Edge starts, failure links, output starts and outputs.
    idx: &'t [[u8; N]],
    /// Entry index of the failure links.
    fail_at: usize,
    /// Entry index of the output starts.
    out_at: usize,
    /// Entry index of the outputs.
    outputs_at: usize,
    /// The edge labels.
    labels: &'t [u8],
    /// The dense rows.
    dense: &'t [[u8; 4]],
    dense_count: u32,
    class_count: usize,
}

impl<'t, const N: usize> Hot<'t, N>
where
    [u8; N]: IndexEntry,
{
    #[inline(always)]
    fn new(a: &Automaton<'t>) -> Hot<'t, N> {
        // Every array starts at a multiple of its entry width (the layout).
        let entry = |at: u32| (at as usize).checked_div(N).unwrap_or(0);
        Hot {
            idx: a.tables.as_chunks::<N>().0,
            fail_at: entry(a.fail_at),
            out_at: entry(a.out_start_at),
            outputs_at: entry(a.outputs_at),
            labels: a.tables.get(a.labels_at as usize..).unwrap_or(&[]),
            dense: a.dense.as_chunks::<4>().0,
            dense_count: a.dense_count,
            class_count: a.class_count as usize,
        }
    }

    /// Entries `i` and `i + 1`.
    #[inline(always)]
    fn pair(&self, i: usize) -> (u32, u32) {
        match self.idx.get(i..i.wrapping_add(2)) {
            Some(&[x, y]) => (x.value(), y.value()),
            _ => (0, 0),
        }
    }

    /// The output range `[o0, o1)` of state `s`.
    #[inline(always)]
    fn output_range(&self, s: u32) -> (u32, u32) {
        self.pair(self.out_at.wrapping_add(s as usize))
    }

    /// Output `k` (an atom index).
    #[inline(always)]
    fn output(&self, k: u32) -> u32 {
        self.idx
            .get(self.outputs_at.wrapping_add(k as usize))
            .map_or(0, |&e| e.value())
    }

    /// The goto child of the sparse state `s` on class `c`, if any (edge
    /// `k` leads to state `k + 1`).
    #[inline(always)]
    fn child(&self, s: u32, c: u32) -> Option<u32> {
        let (e0, e1) = self.pair(s as usize);
        let next = e0.wrapping_add(1);
        // Deep states of a literal trie mostly have one child: one compare.
        if e1 == next {
            let l = self.labels.get(e0 as usize)?;
            return (u32::from(*l) == c).then_some(next);
        }
        let labels = self.labels.get(e0 as usize..e1 as usize)?;
        let i = labels.iter().position(|&l| u32::from(l) == c)?;
        Some(next.wrapping_add(i as u32))
    }

    /// One class from the sparse state `s`: its goto, else its failure
    /// link's, until a dense state's row decides.
    #[inline(always)]
    fn step(&self, mut s: u32, c: u32) -> u32 {
        loop {
            if let Some(n) = self.child(s, c) {
                return n;
            }
            let f = self
                .idx
                .get(self.fail_at.wrapping_add(s as usize))
                .map_or(0, |&e| e.value());
            if f < self.dense_count {
                return dense_at(
                    self.dense,
                    (f as usize)
                        .wrapping_mul(self.class_count)
                        .wrapping_add(c as usize),
                ) & !DENSE_EXIT_FLAG;
            }
            // A failure link leads to a shallower state, which breadth-first
            // numbering puts at a lower index (validated: children follow
            // their parent at depth + 1): the loop ends. The guard keeps it
            // ending for any input.
            if f >= s {
                return 0;
            }
            s = f;
        }
    }
}

/// One byte class through the automaton from any state: the goto of a
/// sparse state, else its failure link's, until a dense state's row decides.
#[inline(always)]
fn sparse_step(a: &Automaton<'_>, mut s: u32, c: u32) -> u32 {
    // Failure links strictly decrease depth (validated), depth is at most
    // 255 and the root is dense: the bound is never reached.
    for _ in 0..=256 {
        if s < a.dense_count {
            return a.dense(s, c) & !DENSE_EXIT_FLAG;
        }
        if let Some(n) = a.child(s, c) {
            return n;
        }
        s = a.fail(s);
    }
    0
}

/// The hot loop of a scan: ASCII units through dense rows, from state `s`
/// (dense) at unit `i`, until the text ends, a unit is not ASCII, or a
/// transition carries the exit flag. In the root, the units outside
/// `start` (the ASCII units whose root transition stays in the root) are
/// skipped without a row load. Returns the unit index and state reached,
/// and whether it stopped on the exit flag. Out of line so that its few
/// values live in registers.
#[inline(never)]
fn dense_run<U: Units + ?Sized>(
    units: &U,
    mut i: usize,
    mut s: u32,
    classes: &[u8; 256],
    dense: &[[u8; 4]],
    cc: usize,
    start: &[u64; 2],
) -> (usize, u32, bool) {
    if s == 0 {
        i = units.skip_ascii_outside(i, start);
    }
    while let Some(u) = units.ascii_at(i) {
        let c = classes.get(usize::from(u)).copied().unwrap_or(0);
        i = i.wrapping_add(1);
        let idx = (s as usize).wrapping_mul(cc).wrapping_add(usize::from(c));
        // Out of range cannot happen (validated rows); exit to the root.
        let Some(&t) = dense.get(idx) else {
            return (i, 0, true);
        };
        let t = u32::from_le_bytes(t);
        s = t;
        // One test for the two rare cases: the exit flag (bit 31, negative)
        // and the root (zero).
        if (t as i32) <= 0 {
            if t & DENSE_EXIT_FLAG != 0 {
                return (i, t & !DENSE_EXIT_FLAG, true);
            }
            i = units.skip_ascii_outside(i, start);
        }
    }
    (i, s, false)
}
