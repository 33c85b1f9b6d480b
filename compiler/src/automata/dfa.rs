//! Character-level DFAs for regex atoms (FORMAT.md, DFAS).
//!
//! The sensor matches names that arrive as UTF-16; a byte-level DFA makes it
//! re-encode every character to UTF-8, and its Unicode classes (`\d`, case
//! orbits such as `k`/`K`/KELVIN SIGN) become chains of UTF-8 byte states:
//! one dense regex-automata DFA of `abc[-_.]\d{2,6}` takes ~95 KB. A DFA over
//! *characters* needs neither: its alphabet is a handful of character
//! classes (a 128-entry table for ASCII, a sorted range list for the rest),
//! so the same regex takes a few hundred bytes and the matcher steps one
//! table entry per character.
//!
//! Construction, all by regex-automata and regex-syntax except the last two
//! steps: parse the pattern (same syntax options as before: Unicode, UTF-8,
//! optional case-insensitivity), compile the Thompson NFA, and explore its
//! lazy (hybrid) byte DFA only from states reached at character boundaries.
//! The characters are first partitioned by the HIR: every ASCII character on
//! its own, non-ASCII characters into the intervals between the bounds of
//! every literal and class in the pattern — characters of one interval are
//! interchangeable for the regex (each interval is checked at both ends and
//! in the middle; a mismatch is a build error, never a silent wrong DFA).
//! Each character's UTF-8 bytes are stepped through the byte DFA; a match or
//! dead state reached inside a character is final (the matcher's verdict is
//! decided there, exactly as the byte-level matcher returned early). The
//! reachable states are then minimized (Moore's partition refinement) and
//! the characters grouped into classes with identical columns.
//!
//! The semantics are the byte DFA's: "some match ends somewhere in the
//! text" for the unanchored search the matcher runs, delayed matches and
//! end-of-input included. `tests` check it against the `regex` crate.

use channel_format::dfa as d;
use regex_automata::hybrid::dfa::{Cache, Config as HybridConfig, DFA as LazyDfa};
use regex_automata::hybrid::LazyStateID;
use regex_automata::nfa::thompson;
use regex_automata::util::{start, syntax};
use regex_automata::Anchored;
use regex_syntax::hir::{Class, Hir, HirKind};
use std::collections::{BTreeSet, HashMap, VecDeque};

/// State 0: no match is possible any more.
pub const DEAD: u16 = 0;
/// State 1: a match was found.
pub const ACCEPT: u16 = 1;
/// State 2: where every search starts.
pub const START: u16 = 2;

/// Why a regex could not be turned into a character DFA.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DfaBuildError {
    /// Syntax error or unsupported construct (e.g. a Unicode word boundary).
    Invalid(String),
    /// More states or classes than the format holds, or the lazy DFA needed
    /// more memory than allowed.
    TooBig(String),
}

/// A character-level DFA (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CharDfa {
    /// State count, including [`DEAD`], [`ACCEPT`] and [`START`].
    pub states: usize,
    /// Class count (at most 256).
    pub classes: usize,
    /// Class of each ASCII character.
    pub ascii: [u8; 128],
    /// Classes of the other characters: `(first code point, class)`,
    /// strictly ascending, the first at U+0080; each runs to the next.
    pub ranges: Vec<(u32, u8)>,
    /// Transitions of states 2.. (`(state - 2) * classes + class`).
    pub trans: Vec<u16>,
    /// Whether reaching the end of the text in a state means a match.
    pub eoi: Vec<bool>,
}

impl CharDfa {
    /// The class of character `c`.
    pub fn class_of(&self, c: char) -> usize {
        let c = u32::from(c);
        if c < 0x80 {
            return usize::from(self.ascii[c as usize]);
        }
        let i = self.ranges.partition_point(|&(s, _)| s <= c);
        usize::from(self.ranges[i - 1].1)
    }

    /// Runs the DFA over `text` (the reference for the parser's runner).
    pub fn is_match(&self, text: &str) -> bool {
        let mut s = usize::from(START);
        for c in text.chars() {
            s = usize::from(self.trans[(s - 2) * self.classes + self.class_of(c)]);
            if s < 2 {
                return s == usize::from(ACCEPT);
            }
        }
        self.eoi[s]
    }

    /// Whether transitions need 16 bits (more than 256 states).
    pub fn wide(&self) -> bool {
        self.states > 256
    }

    /// The range table in canonical form (local classes numbered by first
    /// occurrence) and the class of each local class: DFAs whose non-ASCII
    /// characters fall into the same classes share one table.
    pub fn range_table(&self) -> (Vec<(u32, u8)>, Vec<u8>) {
        let mut remap: Vec<u8> = Vec::new();
        let table = self
            .ranges
            .iter()
            .map(|&(first, class)| {
                let local = match remap.iter().position(|&c| c == class) {
                    Some(l) => l,
                    None => {
                        remap.push(class);
                        remap.len() - 1
                    }
                };
                (first, local as u8)
            })
            .collect();
        (table, remap)
    }

    /// Sparse rows of states 2..: the offset of each row and the rows
    /// (default target, count, the classes that go elsewhere, their
    /// targets), as FORMAT.md lays them out.
    pub fn sparse_rows(&self) -> (Vec<u16>, Vec<u8>) {
        let mut offsets = Vec::new();
        let mut data = Vec::new();
        let put = |data: &mut Vec<u8>, t: u16| {
            if self.wide() {
                data.extend_from_slice(&t.to_le_bytes());
            } else {
                data.push(t as u8);
            }
        };
        for row in self.trans.chunks(self.classes.max(1)) {
            offsets.push(data.len().min(usize::from(u16::MAX)) as u16);
            let mut counts: HashMap<u16, usize> = HashMap::new();
            for &t in row {
                *counts.entry(t).or_default() += 1;
            }
            let default = counts
                .iter()
                .max_by_key(|&(&t, &n)| (n, std::cmp::Reverse(t)))
                .map_or(0, |(&t, _)| t);
            let others: Vec<(u8, u16)> = row
                .iter()
                .enumerate()
                .filter(|&(_, &t)| t != default)
                .map(|(c, &t)| (c as u8, t))
                .collect();
            put(&mut data, default);
            data.push(others.len() as u8);
            data.extend(others.iter().map(|&(c, _)| c));
            for &(_, t) in &others {
                put(&mut data, t);
            }
        }
        (offsets, data)
    }

    /// Whether the DFA is written with sparse rows: when that is smaller and
    /// the regex is anchored at the start (no transition returns to the
    /// start state), so that runs are short and the row search is cheap.
    /// Unanchored DFAs scan whole names and keep dense rows.
    pub fn sparse(&self) -> bool {
        let anchored = !self.trans.contains(&START);
        let (offsets, data) = self.sparse_rows();
        anchored
            && data.len() < usize::from(u16::MAX)
            && offsets.len() * d::ROW_OFFSET_LEN as usize + data.len()
                < self.trans.len() * d::target_len(self.wide()) as usize
    }

    /// Length of the DFA's blob, without its (shared) range table.
    pub fn len(&self) -> usize {
        let sparse = self.sparse().then(|| self.sparse_rows().1.len() as u32);
        channel_format::dfa_blob_len(
            self.states as u32,
            self.classes as u32,
            self.range_table().1.len() as u32,
            sparse,
        )
        .unwrap_or(usize::MAX)
    }

    /// Never true: a DFA has at least its three fixed states.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The blob as FORMAT.md lays it out, classifying non-ASCII characters
    /// through range table `table` (which must be [`CharDfa::range_table`]'s).
    pub fn to_bytes(&self, table: u32) -> Vec<u8> {
        let (_, remap) = self.range_table();
        let sparse = self.sparse();
        let (offsets, rows) = self.sparse_rows();
        let mut flags = 0;
        if self.wide() {
            flags |= d::FLAG_WIDE;
        }
        if sparse {
            flags |= d::FLAG_SPARSE;
        }
        let head = channel_format::DfaRecord {
            state_count: self.states as u32,
            class_count: self.classes as u16,
            flags,
            reserved: 0,
            range_table: table,
            sparse_len: if sparse { rows.len() as u32 } else { 0 },
        };
        let mut b = Vec::with_capacity(self.len());
        b.extend_from_slice(&head.to_bytes());
        b.extend_from_slice(&self.ascii);
        b.extend_from_slice(&remap);
        if sparse {
            for o in &offsets {
                b.extend_from_slice(&o.to_le_bytes());
            }
            b.extend_from_slice(&rows);
        } else {
            for &t in &self.trans {
                if self.wide() {
                    b.extend_from_slice(&t.to_le_bytes());
                } else {
                    b.push(t as u8);
                }
            }
        }
        let mut bits = vec![0u8; self.states.div_ceil(8)];
        for (s, &e) in self.eoi.iter().enumerate() {
            if e {
                bits[s / 8] |= 1 << (s % 8);
            }
        }
        b.extend_from_slice(&bits);
        debug_assert_eq!(b.len(), self.len());
        b
    }
}

/// The DFAS section being written: DFA blobs and the range tables they
/// share.
#[derive(Debug, Default)]
pub struct DfaSection {
    dfas: Vec<Vec<u8>>,
    tables: Vec<Vec<u8>>,
    index: HashMap<Vec<(u32, u8)>, u32>,
}

impl DfaSection {
    /// Adds a DFA; returns its index and the bytes it adds to the section
    /// (its blob, plus its range table when no earlier DFA shares it).
    pub fn add(&mut self, d: &CharDfa) -> (u32, usize) {
        let (table, remap) = d.range_table();
        let mut added = 0;
        let next = self.tables.len() as u32;
        let t = *self.index.entry(table.clone()).or_insert_with(|| {
            let head = channel_format::RangeTableRecord {
                range_count: table.len() as u32,
                class_count: remap.len() as u32,
            };
            let mut b = head.to_bytes().to_vec();
            for &(first, local) in &table {
                b.extend_from_slice(&((first << 8) | u32::from(local)).to_le_bytes());
            }
            added += b.len();
            self.tables.push(b);
            next
        });
        let blob = d.to_bytes(t);
        added += blob.len();
        self.dfas.push(blob);
        ((self.dfas.len() - 1) as u32, added)
    }

    /// Number of DFAs.
    pub fn len(&self) -> usize {
        self.dfas.len()
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.dfas.is_empty()
    }

    /// The section's bytes (FORMAT.md, DFAS).
    pub fn to_bytes(&self) -> Vec<u8> {
        use channel_format as fmt;
        let blobs: Vec<&Vec<u8>> = self.dfas.iter().chain(&self.tables).collect();
        let head = fmt::DfaTableRecord {
            count: self.dfas.len() as u32,
            range_table_count: self.tables.len() as u32,
            reserved: [0; 8],
        };
        let mut out = head.to_bytes().to_vec();
        let mut off = fmt::dfa_table::LEN + fmt::dfa_entry::LEN * blobs.len();
        let mut entries = Vec::with_capacity(blobs.len());
        for b in &blobs {
            off = off.next_multiple_of(fmt::DFA_ALIGN as usize);
            entries.push(fmt::DfaEntryRecord {
                offset: off as u32,
                len: b.len() as u32,
            });
            off += b.len();
        }
        for e in &entries {
            out.extend_from_slice(&e.to_bytes());
        }
        for (b, e) in blobs.iter().zip(&entries) {
            out.resize(e.offset as usize, 0);
            out.extend_from_slice(b);
        }
        out
    }
}

/// Where one character leads from a boundary state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Target {
    Dead,
    Accept,
    State(LazyStateID),
}

/// Builds the character DFA of `pattern` (case-insensitive if `ci`), giving
/// up past `max_states` states.
///
/// # Errors
/// [`DfaBuildError::Invalid`] for a pattern regex-automata rejects,
/// [`DfaBuildError::TooBig`] past the limits.
pub fn build(pattern: &str, ci: bool, max_states: usize) -> Result<CharDfa, DfaBuildError> {
    let invalid = |e: &dyn std::fmt::Display| DfaBuildError::Invalid(e.to_string());
    let sc = syntax::Config::new()
        .case_insensitive(ci)
        .unicode(true)
        .utf8(true);
    let hir = syntax::parse_with(pattern, &sc).map_err(|e| invalid(&e))?;
    let nfa = thompson::Compiler::new()
        .configure(thompson::Config::new().utf8(true))
        .build_from_hir(&hir)
        .map_err(|e| invalid(&e))?;
    let lazy = LazyDfa::builder()
        .configure(
            HybridConfig::new()
                .cache_capacity(LAZY_CACHE_BYTES)
                .skip_cache_capacity_check(true),
        )
        .build_from_nfa(nfa)
        .map_err(|e| invalid(&e))?;
    let mut cache = lazy.create_cache();
    let too_big = |what: &str| DfaBuildError::TooBig(what.to_string());
    let start = lazy
        .start_state(&mut cache, &start::Config::new().anchored(Anchored::No))
        .map_err(|e| invalid(&e))?;

    // Character partition: ASCII one by one, the rest by the HIR's bounds.
    let parts = partition(&hir)?;
    let reps: Vec<char> = parts.iter().map(|p| p.rep).collect();

    // Explore the boundary states breadth-first.
    let mut ids: HashMap<LazyStateID, usize> = HashMap::new();
    let mut order: Vec<LazyStateID> = Vec::new();
    let mut rows: Vec<Vec<Target>> = Vec::new();
    let mut queue = VecDeque::new();
    ids.insert(start, 0);
    order.push(start);
    queue.push_back(start);
    while let Some(s) = queue.pop_front() {
        let mut row = Vec::with_capacity(reps.len());
        for (p, &c) in parts.iter().zip(&reps) {
            let t = char_step(&lazy, &mut cache, s, c)?;
            // Self-check of the partition at the interval's other chars.
            for &other in &p.checks {
                if char_step(&lazy, &mut cache, s, other)? != t {
                    return Err(DfaBuildError::Invalid(format!(
                        "characters {:?} and {other:?} of one class behave differently \
                         (compiler bug: report the pattern)",
                        c
                    )));
                }
            }
            if let Target::State(n) = t {
                if let std::collections::hash_map::Entry::Vacant(e) = ids.entry(n) {
                    if order.len() >= max_states {
                        return Err(too_big("more states than the budget allows"));
                    }
                    e.insert(order.len());
                    order.push(n);
                    queue.push_back(n);
                }
            }
            row.push(t);
        }
        rows.push(row);
        if cache.clear_count() > 0 {
            return Err(too_big("the lazy DFA ran out of memory"));
        }
    }
    let mut eoi = Vec::with_capacity(order.len());
    for &s in &order {
        let e = lazy
            .next_eoi_state(&mut cache, s)
            .map_err(|e| too_big(&e.to_string()))?;
        eoi.push(e.is_match());
    }
    if cache.clear_count() > 0 {
        return Err(too_big("the lazy DFA ran out of memory"));
    }

    // Table over explored states: 0 dead, 1 accept, 2.. explored (2 = start).
    let n = order.len() + 2;
    let np = parts.len();
    let idx = |t: &Target| match t {
        Target::Dead => 0usize,
        Target::Accept => 1,
        Target::State(s) => ids[s] + 2,
    };
    let mut table = vec![0usize; n * np];
    for p in 0..np {
        table[p] = 0;
        table[np + p] = 1;
    }
    for (i, row) in rows.iter().enumerate() {
        for (p, t) in row.iter().enumerate() {
            table[(i + 2) * np + p] = idx(t);
        }
    }
    let mut acc = vec![false; n];
    acc[1] = true;
    acc[2..].copy_from_slice(&eoi);
    minimize_and_emit(&table, &acc, &parts, max_states)
}

/// Memory for the lazy DFA's cache. The exploration stops with
/// [`DfaBuildError::TooBig`] rather than clear it (a clear would invalidate
/// the state ids held in the exploration).
const LAZY_CACHE_BYTES: usize = 64 << 20;

fn char_step(
    lazy: &LazyDfa,
    cache: &mut Cache,
    mut s: LazyStateID,
    c: char,
) -> Result<Target, DfaBuildError> {
    let mut buf = [0u8; 4];
    for &b in c.encode_utf8(&mut buf).as_bytes() {
        s = lazy
            .next_state(cache, s, b)
            .map_err(|e| DfaBuildError::TooBig(e.to_string()))?;
        if s.is_match() {
            return Ok(Target::Accept);
        }
        if s.is_dead() {
            return Ok(Target::Dead);
        }
        if s.is_quit() || s.is_unknown() {
            return Err(DfaBuildError::Invalid(
                "the regex needs look-around the DFA cannot decide (e.g. a Unicode word boundary)"
                    .into(),
            ));
        }
    }
    Ok(Target::State(s))
}

/// One part of the character partition: an interval of code points (or one
/// ASCII character), its representative and the other characters checked.
#[derive(Debug, Clone)]
struct Part {
    first: u32,
    rep: char,
    checks: Vec<char>,
}

/// Every ASCII character alone, then the non-ASCII intervals between the
/// bounds of the pattern's literals and classes (surrogates excluded).
fn partition(hir: &Hir) -> Result<Vec<Part>, DfaBuildError> {
    let mut bounds = BTreeSet::new();
    collect_bounds(hir, &mut bounds)?;
    bounds.insert(0x80);
    bounds.insert(0xD800);
    bounds.insert(0xE000);
    bounds.insert(0x11_0000);
    let mut parts: Vec<Part> = (0u8..0x80)
        .map(|b| Part {
            first: u32::from(b),
            rep: char::from(b),
            checks: Vec::new(),
        })
        .collect();
    let bounds: Vec<u32> = bounds.into_iter().filter(|&b| b >= 0x80).collect();
    for w in bounds.windows(2) {
        let (lo, hi) = (w[0], w[1] - 1);
        if (0xD800..0xE000).contains(&lo) {
            continue;
        }
        let ch =
            |v: u32| char::from_u32(v).ok_or_else(|| DfaBuildError::Invalid("bad bound".into()));
        let rep = ch(lo)?;
        let mut checks = Vec::new();
        if hi > lo {
            checks.push(ch(hi)?);
            let mid = lo + (hi - lo) / 2;
            if mid != lo && mid != hi {
                checks.push(ch(mid)?);
            }
        }
        parts.push(Part {
            first: lo,
            rep,
            checks,
        });
    }
    Ok(parts)
}

fn collect_bounds(hir: &Hir, out: &mut BTreeSet<u32>) -> Result<(), DfaBuildError> {
    match hir.kind() {
        HirKind::Empty | HirKind::Look(_) => {}
        HirKind::Literal(lit) => {
            let s = std::str::from_utf8(&lit.0)
                .map_err(|_| DfaBuildError::Invalid("a literal is not UTF-8".into()))?;
            for c in s.chars() {
                out.insert(u32::from(c));
                out.insert(u32::from(c) + 1);
            }
        }
        HirKind::Class(Class::Unicode(cls)) => {
            for r in cls.iter() {
                out.insert(u32::from(r.start()));
                out.insert(u32::from(r.end()) + 1);
            }
        }
        HirKind::Class(Class::Bytes(cls)) => {
            for r in cls.iter() {
                if r.end() >= 0x80 {
                    return Err(DfaBuildError::Invalid(
                        "a byte class matches non-ASCII bytes".into(),
                    ));
                }
                out.insert(u32::from(r.start()));
                out.insert(u32::from(r.end()) + 1);
            }
        }
        HirKind::Repetition(r) => collect_bounds(&r.sub, out)?,
        HirKind::Capture(c) => collect_bounds(&c.sub, out)?,
        HirKind::Concat(xs) | HirKind::Alternation(xs) => {
            for x in xs {
                collect_bounds(x, out)?;
            }
        }
    }
    Ok(())
}

/// A fast hasher for the small integer vectors of the minimization (the
/// default SipHash dominated the compile time of 10k rules).
#[derive(Default)]
struct FxHasher(u64);

impl std::hash::Hasher for FxHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = (self.0.rotate_left(5) ^ v).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
    fn write_usize(&mut self, v: usize) {
        self.write_u64(v as u64);
    }
    fn write_u16(&mut self, v: u16) {
        self.write_u64(u64::from(v));
    }
}

type FxMap<K, V> = HashMap<K, V, std::hash::BuildHasherDefault<FxHasher>>;

/// Groups the columns of a `rows × cols` table: returns, for each column,
/// its group (numbered by first occurrence) and one representative column
/// per group.
fn group_columns<T: Copy + Eq + std::hash::Hash>(
    table: &[T],
    rows: usize,
    cols: usize,
) -> (Vec<usize>, Vec<usize>) {
    // Column-major, so that each column is one slice to hash.
    let mut t = Vec::with_capacity(table.len());
    for c in 0..cols {
        t.extend((0..rows).map(|r| table[r * cols + c]));
    }
    let mut ids: FxMap<&[T], usize> = FxMap::default();
    ids.reserve(cols);
    let mut group = Vec::with_capacity(cols);
    let mut reps = Vec::new();
    for c in 0..cols {
        let next = ids.len();
        let g = *ids.entry(&t[c * rows..(c + 1) * rows]).or_insert_with(|| {
            reps.push(c);
            next
        });
        group.push(g);
    }
    (group, reps)
}

/// Minimizes the explored table (`n` states × `parts` columns, states 0
/// and 1 the dead and accepting sinks) with Moore's partition refinement,
/// then emits the classes (columns with equal targets) and the canonical
/// numbering.
fn minimize_and_emit(
    table: &[usize],
    acc: &[bool],
    parts: &[Part],
    max_states: usize,
) -> Result<CharDfa, DfaBuildError> {
    let np = parts.len();
    let n = acc.len();
    // Parts that no state tells apart are one letter of the alphabet.
    let (part_letter, letter_reps) = group_columns(table, n, np);
    let k0 = letter_reps.len();
    let tbl: Vec<usize> = (0..n)
        .flat_map(|s| letter_reps.iter().map(move |&p| table[s * np + p]))
        .collect();
    // Blocks start as {no match at the end}, {match at the end}; refine by
    // the blocks of the targets until stable.
    let mut block: Vec<usize> = acc.iter().map(|&a| usize::from(a)).collect();
    let mut count = block.iter().collect::<BTreeSet<_>>().len();
    let mut keys = vec![0usize; n * (k0 + 1)];
    loop {
        for s in 0..n {
            let key = &mut keys[s * (k0 + 1)..(s + 1) * (k0 + 1)];
            key[0] = block[s];
            for c in 0..k0 {
                key[c + 1] = block[tbl[s * k0 + c]];
            }
        }
        let mut sig: FxMap<&[usize], usize> = FxMap::default();
        sig.reserve(n);
        let mut next = vec![0usize; n];
        for s in 0..n {
            let len = sig.len();
            next[s] = *sig
                .entry(&keys[s * (k0 + 1)..(s + 1) * (k0 + 1)])
                .or_insert(len);
        }
        let groups = sig.len();
        block = next;
        if groups == count {
            break;
        }
        count = groups;
    }
    // Canonical numbering: dead's block 0, accept's 1, start's 2, then
    // breadth-first from the start in letter order.
    let (bd, ba, bs) = (block[0], block[1], block[2]);
    let mut num: HashMap<usize, u16> = HashMap::new();
    num.insert(bd, DEAD);
    num.insert(ba, ACCEPT);
    let mut rep_of: HashMap<usize, usize> = HashMap::new();
    for s in (0..n).rev() {
        rep_of.insert(block[s], s);
    }
    let mut states: Vec<usize> = Vec::new(); // representatives of 2..
    let mut queue = VecDeque::new();
    // A start equivalent to a sink still gets its own state 2, whose row
    // leads straight to that sink.
    let start_sink = [bd, ba].contains(&bs).then_some(bs);
    if start_sink.is_none() {
        num.insert(bs, START);
        states.push(rep_of[&bs]);
        queue.push_back(bs);
    }
    while let Some(b) = queue.pop_front() {
        let s = rep_of[&b];
        for c in 0..k0 {
            let tb = block[tbl[s * k0 + c]];
            if let std::collections::hash_map::Entry::Vacant(e) = num.entry(tb) {
                let id = states.len() + 2;
                if id >= max_states.min(1 << 16) {
                    return Err(DfaBuildError::TooBig(
                        "more states than the budget allows".into(),
                    ));
                }
                e.insert(id as u16);
                states.push(rep_of[&tb]);
                queue.push_back(tb);
            }
        }
    }
    // The kept rows over the letters; letters with equal columns are one
    // class.
    let kept: Vec<u16> = match start_sink {
        Some(b) => vec![num[&b]; k0],
        None => states
            .iter()
            .flat_map(|&s| (0..k0).map(move |c| (s, c)))
            .map(|(s, c)| num[&block[tbl[s * k0 + c]]])
            .collect(),
    };
    let rows = kept.len() / k0.max(1);
    let (letter_class, class_reps) = group_columns(&kept, rows, k0);
    let classes = class_reps.len();
    if classes > 256 {
        return Err(DfaBuildError::TooBig(
            "more than 256 character classes".into(),
        ));
    }
    let mut trans = vec![0u16; rows * classes];
    for r in 0..rows {
        for (c, &l) in class_reps.iter().enumerate() {
            trans[r * classes + c] = kept[r * k0 + l];
        }
    }
    let mut eoi = vec![false, true];
    match start_sink {
        Some(b) => eoi.push(b == ba),
        None => eoi.extend(states.iter().map(|&s| acc[s])),
    }
    let part_class = |p: usize| letter_class[part_letter[p]] as u8;
    let mut ascii = [0u8; 128];
    for (p, a) in ascii.iter_mut().enumerate() {
        *a = part_class(p);
    }
    let mut ranges: Vec<(u32, u8)> = Vec::new();
    for (p, part) in parts.iter().enumerate().skip(128) {
        let c = part_class(p);
        if ranges.last().is_none_or(|&(_, last)| last != c) {
            ranges.push((part.first, c));
        }
    }
    Ok(CharDfa {
        states: rows + 2,
        classes,
        ascii,
        ranges,
        trans,
        eoi,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agree(pattern: &str, ci: bool, texts: &[&str]) -> CharDfa {
        let d = build(pattern, ci, 1 << 16).unwrap();
        let re = regex::RegexBuilder::new(pattern)
            .case_insensitive(ci)
            .build()
            .unwrap();
        for t in texts {
            assert_eq!(d.is_match(t), re.is_match(t), "{pattern:?} on {t:?}");
        }
        d
    }

    const TEXTS: &[&str] = &[
        "",
        "a",
        "\\abc-12",
        "\\ABC_1234567",
        "xx\\abc.٣٤",
        "\\abc.12.34.5678",
        "\\abc.١٢.٣٤.٥٦٧٨",
        "abc_wxyz",
        "ABC_WXYZ",
        "aBc_\u{212A}xyz",
        "\\\u{212A}elvin_abcd",
        "\u{17F}pool_abcd",
        "\\f53fab",
        "\\f53fabc",
        "\u{FFFD}\\mojo.5688.8052.35780273329370473ff",
        "\\wkssvc_1f",
        "\\WKSSVC_1F",
    ];

    #[test]
    fn agrees_with_the_regex_crate() {
        for (p, ci) in [
            (r"^\\abc[0-9a-f]{4,16}$", true),
            (r"abc[-_.]\d{2,6}", true),
            (r"^\\abc\.\d+\.\d+\.\d{4,}", false),
            (r"(?:abc|wxyz)_[a-z]{4}", true),
            (r"\\kelvin_[a-z]{4}", true),
            (r"spool_[a-z]{4}", true),
            (r"\\f53f[0-9a-f]{2}$", false),
            (r"\\wkssvc_?[0-9a-f]{2}", false),
            (
                r"\\mojo\.5688\.8052\.(?:183894939787088877|35780273329370473)[0-9a-f]{2}",
                false,
            ),
            (r"", false),
            (r"^$", false),
            (r"(?-u:\b)abc(?-u:\b)", false),
            (r"[^\x00-\x{10FFFF}]", false),
            (r"(?s:.)*", false),
            (r"\p{Greek}+x", true),
        ] {
            agree(p, ci, TEXTS);
        }
    }

    #[test]
    fn unicode_classes_stay_small() {
        let d = agree(r"abcdwxyz_k1[-_.]\d{2,6}", true, TEXTS);
        assert!(d.len() < 2_000, "{} bytes", d.len());
        assert!(d.states < 40, "{} states", d.states);
    }

    #[test]
    fn unicode_word_boundary_is_refused() {
        assert!(matches!(
            build(r"\bx\b", false, 1 << 16),
            Err(DfaBuildError::Invalid(_))
        ));
    }

    #[test]
    fn random_agreement() {
        // Random texts from tokens that exercise the classes.
        let alphabet: Vec<&str> = vec![
            "ab", "AB", "c", "K", "k", "\u{212A}", "\u{17F}", "s", "S", "_", "-", ".", "0", "1",
            "9", "٣", "\\", "x", "é", "\u{FFFD}", "😀", " ",
        ];
        let patterns = [
            (r"ab[-_.]\d{2,3}", true),
            (r"^\\k\w+s$", true),
            (r"(?:a|bc)_?[a-z]{2}", true),
            (r"s\.\d+", false),
            (r"[^a-z]{3}$", false),
            (r"\W\w\W", false),
        ];
        let mut seed = 0x9E37_79B9u32;
        let mut next = |n: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            seed as usize % n
        };
        for (p, ci) in patterns {
            let d = build(p, ci, 1 << 16).unwrap();
            let re = regex::RegexBuilder::new(p)
                .case_insensitive(ci)
                .build()
                .unwrap();
            let mut hits = 0;
            for _ in 0..4000 {
                let t: String = (0..next(7))
                    .map(|_| alphabet[next(alphabet.len())])
                    .collect();
                let want = re.is_match(&t);
                hits += usize::from(want);
                assert_eq!(d.is_match(&t), want, "{p:?} on {t:?}");
            }
            assert!(hits > 0, "{p}: no text matched");
        }
    }
}
