//! Matching events against a validated channel file.
//!
//! # Algorithm
//! 1. For each string field with a prefilter automaton, the field is folded
//!    ([`crate::fold_char`]) to UTF-8 on the fly and run once through the
//!    automaton (Aho-Corasick with failure and dictionary links). Each
//!    reported literal is decided on the spot from its position (`contains`:
//!    anywhere; `prefix`: ends at its own length; `suffix`/`exact`: resolved
//!    against the folded length when the field ends). Wildcard and regex atoms
//!    whose required literal occurred become candidates.
//! 2. The rules owning a reported atom, plus the rules flagged
//!    always-evaluate, are evaluated in index order: their condition program
//!    runs on a 64-entry bit stack; literal atoms read the hits, glob atoms run
//!    the wildcard matcher, regex atoms run their DFA, numeric atoms compare.
//!
//! Cost: one pass over each field plus work proportional to the atoms
//! reported and the candidate rules — not to the number of rules in the file.
//!
//! Hits live in a fixed-capacity [`Scratch`]. If one event reports more
//! distinct atoms than it holds, the rules are processed in windows of rule
//! indices, rescanning the fields once per window: still exact, only slower,
//! and only for pathological names.

use crate::text::{glob_match, Text};
use crate::view::{Automaton, ChannelFile, RuleView, StateRec, PREFILTER_SLOTS};
use channel_format::program::{self, Instr};
use channel_format::{atom, rule, Action, AtomKind, EventKind, Field, FieldId};

const ATOM_LEN: u32 = atom::LEN_U32;
use core::ops::ControlFlow;

/// Distinct atoms one scan can record; equal to the largest number of atoms a
/// rule may have ([`channel_format::ATOMS_PER_RULE_CEILING`], which caps
/// `Limits::max_atoms_per_rule`), so a window always holds at least one whole
/// rule.
pub const SCRATCH_HITS: usize = channel_format::ATOMS_PER_RULE_CEILING as usize;

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
    rule: u32,
    /// `TRUE_HIT`, or the end offset of the latest occurrence (suffix/exact).
    end: u32,
}

const TRUE_HIT: u32 = u32::MAX;

/// Working memory for matching: about 3 KiB. Allocate it once per thread or
/// per call from non-paged pool; do not put it on a small kernel stack.
#[derive(Debug, Clone)]
pub struct Scratch {
    hits: [Hit; SCRATCH_HITS],
    len: usize,
    /// Folded byte length of the pipe name, the image and the user.
    totals: [u32; PREFILTER_SLOTS],
    passes: u32,
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
                rule: 0,
                end: 0,
            }; SCRATCH_HITS],
            len: 0,
            totals: [0; PREFILTER_SLOTS],
            passes: 0,
        }
    }

    /// How many scan windows the last match needed (1 unless the name reported
    /// more distinct atoms than the scratch holds).
    pub fn passes(&self) -> u32 {
        self.passes
    }

    fn hits(&self) -> &[Hit] {
        self.hits.get(..self.len).unwrap_or(&[])
    }

    fn find(&self, atom: u32) -> Result<usize, usize> {
        self.hits().binary_search_by_key(&atom, |h| h.atom)
    }

    /// Records `atom` of `rule` (in the window `[lo, *hi)`), shrinking the
    /// window when full.
    fn record(&mut self, atom: u32, rule: u32, end: u32, lo: u32, hi: &mut u32) {
        if rule < lo || rule >= *hi {
            return;
        }
        match self.find(atom) {
            Ok(i) => {
                if let Some(h) = self.hits.get_mut(i) {
                    if h.end != TRUE_HIT {
                        h.end = end;
                    }
                }
            }
            Err(mut i) => {
                if self.len >= SCRATCH_HITS {
                    let last_rule = self.hits().last().map_or(rule, |h| h.rule);
                    let cut = rule.max(last_rule);
                    if cut <= lo {
                        // Unreachable: a rule has at most SCRATCH_HITS atoms.
                        return;
                    }
                    *hi = cut;
                    while self.hits().last().is_some_and(|h| h.rule >= cut) {
                        self.len = self.len.saturating_sub(1);
                    }
                    if rule >= cut {
                        return;
                    }
                    i = i.min(self.len);
                }
                let len = self.len;
                if let Some(tail) = self.hits.get_mut(i..=len) {
                    // Non-empty (i <= len); said explicitly so that the
                    // optimiser drops rotate_right's assertion (panic-free proof).
                    if !tail.is_empty() {
                        tail.rotate_right(1);
                    }
                    if let Some(first) = tail.first_mut() {
                        *first = Hit { atom, rule, end };
                    }
                    self.len = len.saturating_add(1);
                }
            }
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

fn priority(r: &RuleView<'_>) -> (u8, u8) {
    (r.action().0, r.severity().0)
}

/// A deserialized DFA of a validated file, kept by the caller so that regex
/// atoms do not re-run regex-automata's `from_bytes` validation on every use
/// (see [`ChannelFile::load_dfas`]). About 740 bytes each.
#[derive(Debug, Clone, Default)]
pub struct DfaSlot<'a>(Option<regex_automata::dfa::dense::DFA<&'a [u32]>>);

impl DfaSlot<'_> {
    /// An empty slot.
    pub const EMPTY: DfaSlot<'static> = DfaSlot(None);
}

impl<'a> ChannelFile<'a> {
    /// Deserializes the file's DFAs into `slots` (one per DFA; extra slots
    /// stay empty, missing slots make those DFAs deserialize on each use).
    /// Returns how many were filled. Do this once after [`crate::parse`] and
    /// pass the slots to [`ChannelFile::evaluate_with`].
    ///
    /// # Panics
    /// Never panics. Allocates nothing; linear in the DFAs' size.
    pub fn load_dfas(&self, slots: &mut [DfaSlot<'a>]) -> usize {
        let mut n = 0usize;
        for (i, slot) in (0..self.dfa_count).zip(slots.iter_mut()) {
            slot.0 = regex_automata::dfa::dense::DFA::from_bytes(self.dfa_bytes(i))
                .ok()
                .map(|(d, _)| d);
            n = n.saturating_add(1);
        }
        n
    }

    /// Matches `event` and returns how many rules matched and the
    /// highest-priority one.
    ///
    /// # Panics
    /// Never panics. Allocates nothing.
    pub fn evaluate(&self, event: &Event<'_>, scratch: &mut Scratch) -> Verdict<'a> {
        self.evaluate_with(event, scratch, &[])
    }

    /// [`ChannelFile::evaluate`] with DFAs loaded by [`ChannelFile::load_dfas`].
    ///
    /// # Panics
    /// Never panics. Allocates nothing.
    pub fn evaluate_with(
        &self,
        event: &Event<'_>,
        scratch: &mut Scratch,
        dfas: &[DfaSlot<'a>],
    ) -> Verdict<'a> {
        let mut v = Verdict {
            matched: 0,
            best: None,
        };
        self.for_each_match_with(event, scratch, dfas, |r| {
            v.matched = v.matched.saturating_add(1);
            if v.best.as_ref().is_none_or(|b| priority(&r) > priority(b)) {
                v.best = Some(r);
            }
            ControlFlow::Continue(())
        });
        v
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
        f: impl FnMut(RuleView<'a>) -> ControlFlow<()>,
    ) {
        self.for_each_match_with(event, scratch, &[], f);
    }

    /// [`ChannelFile::for_each_match`] with DFAs loaded by [`ChannelFile::load_dfas`].
    ///
    /// # Panics
    /// Never panics. Allocates nothing.
    pub fn for_each_match_with(
        &self,
        event: &Event<'_>,
        scratch: &mut Scratch,
        dfas: &[DfaSlot<'a>],
        mut f: impl FnMut(RuleView<'a>) -> ControlFlow<()>,
    ) {
        let mut lo = 0u32;
        scratch.passes = 0;
        while lo < self.rule_count {
            let mut hi = self.rule_count;
            scratch.len = 0;
            scratch.passes = scratch.passes.saturating_add(1);
            // In prefilter-slot order (crate::view::prefilter_slot).
            let fields = [Some(event.pipe_name), event.image, event.user];
            for (slot, (auto, text)) in self.automata.iter().zip(fields).enumerate() {
                // The folded length only serves suffix/exact atoms, whose
                // hits come from this field's scan: without an automaton
                // there are none, and the field is not read at all.
                let total = match text {
                    Some(t) if auto.state_count > 0 => self.scan(auto, t, scratch, lo, &mut hi),
                    Some(_) | None => 0,
                };
                if let Some(x) = scratch.totals.get_mut(slot) {
                    *x = total;
                }
            }
            if self
                .evaluate_window(event, scratch, dfas, lo, hi, &mut f)
                .is_break()
            {
                return;
            }
            // hi > lo always (see Scratch::record); max() guards progress anyway.
            lo = hi.max(lo.saturating_add(1));
        }
    }

    /// Runs one automaton over the folded text, recording hits. Returns the
    /// folded length in bytes.
    fn scan(
        &self,
        auto: &Automaton<'a>,
        text: Text<'_>,
        scratch: &mut Scratch,
        lo: u32,
        hi: &mut u32,
    ) -> u32 {
        let mut cur = auto.state(0);
        let mut pos = 0u32;
        for c in text.chars() {
            // ASCII (nearly every pipe name) folds to one byte without the
            // Unicode tables or the UTF-8 encoder.
            if c.is_ascii() {
                let b = (c as u8).to_ascii_uppercase();
                pos = pos.saturating_add(1);
                self.step(auto, &mut cur, b, pos, scratch, lo, hi);
                continue;
            }
            let mut buf = [0u8; 4];
            for &b in crate::fold_char(c).encode_utf8(&mut buf).as_bytes() {
                pos = pos.saturating_add(1);
                self.step(auto, &mut cur, b, pos, scratch, lo, hi);
            }
        }
        pos
    }

    /// One byte through the automaton: follow the goto or failure links
    /// from `cur`, then record the outputs of the state reached (and of its
    /// dictionary links) as hits ending at `pos`.
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    fn step(
        &self,
        auto: &Automaton<'a>,
        cur: &mut StateRec,
        b: u8,
        pos: u32,
        scratch: &mut Scratch,
        lo: u32,
        hi: &mut u32,
    ) {
        // Failure links strictly decrease depth (validated), and depth
        // is at most 255: the bound is never reached.
        for _ in 0..=256 {
            if cur.id == 0 {
                if let Some(next) = auto.root_child(b) {
                    *cur = auto.state(next);
                }
                break;
            }
            if let Some(next) = auto.child_of(cur, b) {
                *cur = auto.state(next);
                break;
            }
            *cur = auto.state(cur.fail);
        }
        if cur.o1 == cur.o0 && cur.dict == 0 {
            return;
        }
        let mut o = if cur.o1 != cur.o0 {
            *cur
        } else {
            auto.state(cur.dict)
        };
        for _ in 0..=256 {
            if o.id == 0 {
                break;
            }
            for atom in auto.outputs_of(&o) {
                self.record_hit(atom, pos, scratch, lo, hi);
            }
            o = auto.state(o.dict);
        }
    }

    /// Field `f` of atom record `idx` (hot path: no view is built).
    #[inline]
    fn a32(&self, idx: u32, f: Field<u32>) -> u32 {
        self.atoms
            .le32(idx.wrapping_mul(ATOM_LEN).wrapping_add(f.offset_u32()))
    }

    #[inline]
    fn a16(&self, idx: u32, f: Field<u16>) -> u16 {
        self.atoms
            .le16(idx.wrapping_mul(ATOM_LEN).wrapping_add(f.offset_u32()))
    }

    #[inline]
    fn a8(&self, idx: u32, f: Field<u8>) -> u8 {
        self.atoms
            .le8(idx.wrapping_mul(ATOM_LEN).wrapping_add(f.offset_u32()))
    }

    fn record_hit(&self, atom_idx: u32, end: u32, scratch: &mut Scratch, lo: u32, hi: &mut u32) {
        let len = self.a32(atom_idx, atom::STR_LEN);
        let end = match AtomKind(self.a8(atom_idx, atom::KIND)) {
            AtomKind::PREFIX if end == len => TRUE_HIT,
            AtomKind::EXACT if end == len => end,
            AtomKind::PREFIX | AtomKind::EXACT => return,
            AtomKind::SUFFIX => end,
            _ => TRUE_HIT,
        };
        scratch.record(atom_idx, self.a32(atom_idx, atom::RULE), end, lo, hi);
    }

    fn evaluate_window(
        &self,
        event: &Event<'_>,
        scratch: &Scratch,
        dfas: &[DfaSlot<'a>],
        lo: u32,
        hi: u32,
        f: &mut impl FnMut(RuleView<'a>) -> ControlFlow<()>,
    ) -> ControlFlow<()> {
        // Merge the rules of the hits (ascending) with the always list (ascending).
        let hits = scratch.hits();
        let mut hi_idx = 0usize;
        let mut ai = self.first_always_at_or_after(lo);
        loop {
            let next_hit = hits.get(hi_idx).map(|h| h.rule);
            let next_always =
                Some(self.always_rule(ai)).filter(|&r| ai < self.always_count && r < hi);
            let rule = match (next_hit, next_always) {
                (None, None) => return ControlFlow::Continue(()),
                (Some(a), Some(b)) => a.min(b),
                (Some(a), None) => a,
                (None, Some(b)) => b,
            };
            while hits.get(hi_idx).is_some_and(|h| h.rule == rule) {
                hi_idx = hi_idx.saturating_add(1);
            }
            if next_always == Some(rule) {
                ai = ai.saturating_add(1);
            }
            if self.eval_rule(rule, event, scratch, dfas) {
                if let Some(r) = self.rule(rule) {
                    f(r)?;
                }
            }
        }
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

    fn eval_rule(
        &self,
        rule: u32,
        event: &Event<'_>,
        scratch: &Scratch,
        dfas: &[DfaSlot<'a>],
    ) -> bool {
        let off = self.rule_u32(rule, rule::PROG_OFF);
        let len = u32::from(self.rule_u16(rule, rule::PROG_LEN));
        let prog = self
            .programs
            .bytes
            .get(off as usize..(off as usize).saturating_add(len as usize))
            .unwrap_or(&[]);
        // The format's decoder (a validated program: a decoding error cannot
        // happen; it would count as "no match").
        let mut rest = prog;
        let mut stack = 0u64;
        while let Some(decoded) = program::step(&mut rest, |instr| {
            stack = match instr {
                Instr::Atom(idx) => {
                    (stack << 1) | u64::from(self.eval_atom(idx, event, scratch, dfas))
                }
                Instr::True => (stack << 1) | 1,
                Instr::False => stack << 1,
                Instr::Not => stack ^ 1,
                Instr::And => (stack >> 1) & (stack | !1),
                Instr::Or => (stack >> 1) | (stack & 1),
            }
        }) {
            if decoded.is_err() {
                return false;
            }
        }
        stack & 1 == 1
    }

    fn eval_atom(
        &self,
        idx: u32,
        event: &Event<'_>,
        scratch: &Scratch,
        dfas: &[DfaSlot<'a>],
    ) -> bool {
        let field = FieldId(self.a16(idx, atom::FIELD));
        let kind = AtomKind(self.a8(idx, atom::KIND));
        let prefiltered = self.a8(idx, atom::FLAGS) & channel_format::ATOM_FLAG_PREFILTERED != 0;
        let arg = self.a32(idx, atom::ARG);
        let (text, slot) = match field {
            FieldId::PIPE_NAME => (Some(event.pipe_name), 0usize),
            FieldId::IMAGE => (event.image, 1),
            FieldId::USER => (event.user, 2),
            FieldId::PROCESS_ID => return kind == AtomKind::NUM_EQ && arg == event.pid,
            FieldId::EVENT_KIND => return kind == AtomKind::NUM_EQ && arg == event.kind.value(),
            _ => return false,
        };
        let Some(text) = text else { return false };
        let hit = scratch
            .find(idx)
            .ok()
            .and_then(|i| scratch.hits().get(i))
            .map(|h| h.end);
        let total = scratch.totals.get(slot).copied().unwrap_or(0);
        match kind {
            AtomKind::CONTAINS | AtomKind::PREFIX => hit.is_some(),
            AtomKind::SUFFIX | AtomKind::EXACT => hit == Some(total),
            AtomKind::GLOB => {
                let pattern = self
                    .strings
                    .str_at(
                        self.a32(idx, atom::STR_OFF),
                        self.a32(idx, atom::STR_LEN),
                        "glob",
                    )
                    .unwrap_or("");
                (!prefiltered || hit.is_some()) && glob_match(pattern, text)
            }
            AtomKind::REGEX => {
                (!prefiltered || hit.is_some())
                    && match dfas.get(arg as usize).and_then(|d| d.0.as_ref()) {
                        Some(dfa) => run_dfa(dfa, text),
                        None => regex_match(self.dfa_bytes(arg), text),
                    }
            }
            _ => false,
        }
    }
}

/// Deserializes a validated DFA (regex-automata's checked `from_bytes`, linear
/// in its size) and runs it: the path without loaded [`DfaSlot`]s.
fn regex_match(dfa_bytes: &[u8], text: Text<'_>) -> bool {
    match regex_automata::dfa::dense::DFA::from_bytes(dfa_bytes) {
        Ok((dfa, _)) => run_dfa(&dfa, text),
        Err(_) => false,
    }
}

/// Runs a DFA over the (unfolded) UTF-8 encoding of `text`; true when any
/// match state is reached. A quit state (impossible for DFAs the compiler
/// builds) counts as no match.
fn run_dfa(dfa: &regex_automata::dfa::dense::DFA<&[u32]>, text: Text<'_>) -> bool {
    use regex_automata::dfa::Automaton as _;
    use regex_automata::util::start;
    let Ok(mut s) = dfa.start_state(&start::Config::new().anchored(regex_automata::Anchored::No))
    else {
        return false;
    };
    // One byte: Some(verdict) when the search is decided.
    let step = |s: &mut regex_automata::util::primitives::StateID, b: u8| {
        *s = dfa.next_state(*s, b);
        if dfa.is_special_state(*s) {
            if dfa.is_match_state(*s) {
                return Some(true);
            }
            if dfa.is_dead_state(*s) || dfa.is_quit_state(*s) {
                return Some(false);
            }
        }
        None
    };
    for c in text.chars() {
        if c.is_ascii() {
            if let Some(v) = step(&mut s, c as u8) {
                return v;
            }
            continue;
        }
        let mut buf = [0u8; 4];
        for &b in c.encode_utf8(&mut buf).as_bytes() {
            if let Some(v) = step(&mut s, b) {
                return v;
            }
        }
    }
    dfa.is_match_state(dfa.next_eoi_state(s))
}
