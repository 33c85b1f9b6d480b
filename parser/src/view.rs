//! The validated, borrowed view of a channel file.
//!
//! Accessors re-read fields from the validated bytes. They were all checked by
//! [`crate::parse`], so the fallbacks (`unwrap_or` defaults) are unreachable;
//! they exist because the crate forbids panics, not because a value can be
//! missing.

use crate::wire::Region;
use channel_format::{
    self as fmt, always, atom, rule, rule_field, Action, AtomKind, Field, FieldId, SectionKind,
    Severity,
};

/// The fixed header fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Major format version (2).
    pub format_major: u16,
    /// Minor format version.
    pub format_minor: u16,
    /// Channel number (291).
    pub channel: u32,
    /// Required flags.
    pub required_flags: u32,
    /// Optional flags.
    pub optional_flags: u32,
    /// Content sequence number.
    pub sequence: u64,
    /// File length in bytes.
    pub total_len: u32,
    /// Number of section-table entries.
    pub section_count: u32,
}

/// One section-table entry (known or skipped).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SectionInfo {
    /// Its kind.
    pub kind: SectionKind,
    /// Its flags.
    pub flags: u32,
    /// Offset in the file.
    pub offset: u32,
    /// Length in bytes.
    pub len: u32,
}

/// How many string fields can have a prefilter automaton.
pub(crate) const PREFILTER_SLOTS: usize = 3;

/// The automaton slot of a string field: PipeName 0, Image 1, User 2; no
/// slot for other fields. The matcher's event fields come in this order.
pub(crate) const fn prefilter_slot(field: FieldId) -> Option<usize> {
    match field {
        FieldId::PIPE_NAME => Some(0),
        FieldId::IMAGE => Some(1),
        FieldId::USER => Some(2),
        _ => None,
    }
}

/// One prefilter automaton (validated), read in place (FORMAT.md,
/// PREFILTER): byte classes with the ASCII fold built in, dense rows for
/// states `0..dense_count`, sorted labels and failure links for the rest,
/// outputs inherited along failure links. Kept small: the matcher's hot
/// loop copies what it needs into registers.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Automaton<'a> {
    pub(crate) field: FieldId,
    /// The index arrays are `u16` (else `u32`).
    pub(crate) narrow: bool,
    /// Scanned only when a candidate rule reads one of its atoms.
    pub(crate) lazy: bool,
    pub(crate) state_count: u32,
    pub(crate) dense_count: u32,
    pub(crate) class_count: u32,
    pub(crate) output_count: u32,
    /// The class of each byte (an ASCII lower-case letter has its
    /// upper-case letter's class).
    pub(crate) classes: &'a [u8; 256],
    /// `dense_count × class_count` u32 transitions.
    pub(crate) dense: &'a [u8],
    /// Edge starts, failure links, output starts, outputs and labels, in
    /// that order (edge starts at 0; the others at the offsets below).
    pub(crate) tables: &'a [u8],
    pub(crate) fail_at: u32,
    pub(crate) out_start_at: u32,
    pub(crate) outputs_at: u32,
    pub(crate) labels_at: u32,
    /// The ASCII units that leave the root (bit `u % 64` of word `u / 64`):
    /// those whose class has a root transition to another state. Derived
    /// from the validated class map and root row when the file is parsed
    /// ([`Automaton::root_start_set`]); the scan skips every other ASCII
    /// unit while it is in the root.
    pub(crate) root_start: [u64; 2],
}

/// The class map of an absent automaton.
static NO_CLASSES: [u8; 256] = [0; 256];

/// Entry `i` of an index array of `u16` (`narrow`) or `u32` at byte `base`
/// of validated data; 0 out of range (validation rules it out).
#[inline(always)]
pub(crate) fn index_at(b: &[u8], base: u32, i: u32, narrow: bool) -> u32 {
    let at = base.wrapping_add(i.wrapping_mul(fmt::automaton_index_len(narrow)));
    if narrow {
        let at = at as usize;
        match b.get(at..at.wrapping_add(2)) {
            Some(w) => u32::from(u16::from_le_bytes(w.try_into().unwrap_or([0; 2]))),
            None => 0,
        }
    } else {
        le32(b, at)
    }
}

/// Entries `i` and `i + 1` of an index array (see [`index_at`]), read with
/// one bounds check; zeros out of range (validation rules it out).
#[inline(always)]
pub(crate) fn index_pair(b: &[u8], base: u32, i: u32, narrow: bool) -> (u32, u32) {
    let at = base.wrapping_add(i.wrapping_mul(fmt::automaton_index_len(narrow))) as usize;
    let rest = b.get(at..).unwrap_or(&[]);
    if narrow {
        match rest.first_chunk::<4>() {
            Some(&[a0, a1, b0, b1]) => (
                u32::from(u16::from_le_bytes([a0, a1])),
                u32::from(u16::from_le_bytes([b0, b1])),
            ),
            None => (0, 0),
        }
    } else {
        match rest.first_chunk::<8>() {
            Some(&[a0, a1, a2, a3, b0, b1, b2, b3]) => (
                u32::from_le_bytes([a0, a1, a2, a3]),
                u32::from_le_bytes([b0, b1, b2, b3]),
            ),
            None => (0, 0),
        }
    }
}

/// Little-endian `u32` at byte `at` of validated data; 0 out of range
/// (validation rules it out).
#[inline(always)]
pub(crate) fn le32(b: &[u8], at: u32) -> u32 {
    // From a u32, `at + 4` cannot wrap: one bounds check.
    let at = at as usize;
    match b
        .get(at..)
        .and_then(<[u8]>::first_chunk::<{ size_of::<u32>() }>)
    {
        Some(w) => u32::from_le_bytes(*w),
        None => 0,
    }
}

impl<'a> Automaton<'a> {
    pub(crate) const EMPTY: Automaton<'static> = Automaton {
        field: FieldId(0),
        narrow: false,
        lazy: false,
        state_count: 0,
        dense_count: 0,
        class_count: 0,
        output_count: 0,
        classes: &NO_CLASSES,
        dense: &[],
        tables: &[],
        fail_at: 0,
        out_start_at: 0,
        outputs_at: 0,
        labels_at: 0,
        root_start: [0; 2],
    };

    /// The set of ASCII units that leave the root (see
    /// [`Automaton::root_start`]), from the class map and the root's dense
    /// row. Both folded cases of a letter share a class, so both are in
    /// the set when either is.
    pub(crate) fn root_start_set(&self) -> [u64; 2] {
        let mut set = [0u64; 2];
        for u in 0..0x80u8 {
            if self.dense(0, self.class(u)) != 0 {
                if let Some(w) = set.get_mut(usize::from(u >> 6)) {
                    *w |= 1u64.wrapping_shl(u32::from(u));
                }
            }
        }
        set
    }

    /// The class of byte `b`.
    #[inline(always)]
    pub(crate) fn class(&self, b: u8) -> u32 {
        u32::from(self.classes.get(usize::from(b)).copied().unwrap_or(0))
    }

    /// The dense transition of state `s` (< `dense_count`) on class `c`:
    /// the target, with [`channel_format::DENSE_OUTPUT_FLAG`] when it has
    /// outputs.
    #[inline(always)]
    pub(crate) fn dense(&self, s: u32, c: u32) -> u32 {
        le32(
            self.dense,
            s.wrapping_mul(self.class_count)
                .wrapping_add(c)
                .wrapping_mul(fmt::AUTOMATON_DENSE_ENTRY_LEN),
        )
    }

    /// The goto child of the (sparse) state `s` on class `c`, if any: edge
    /// `k` leads to state `k + 1`.
    #[inline]
    pub(crate) fn child(&self, s: u32, c: u32) -> Option<u32> {
        let (e0, e1) = index_pair(self.tables, 0, s, self.narrow);
        let first = self.labels_at.wrapping_add(e0) as usize;
        let labels = self
            .tables
            .get(first..)?
            .get(..e1.wrapping_sub(e0) as usize)?;
        // Deep states of a literal trie mostly have one child: one compare.
        let i = match labels {
            [l] if u32::from(*l) == c => 0,
            [_] => return None,
            _ => labels.iter().position(|&l| u32::from(l) == c)?,
        };
        Some(e0.wrapping_add(i as u32).wrapping_add(1))
    }

    /// The failure link of state `s`.
    #[inline]
    pub(crate) fn fail(&self, s: u32) -> u32 {
        index_at(self.tables, self.fail_at, s, self.narrow)
    }
}

/// How many ALWAYS rules (the first of the ALWAYS list) can have a
/// [`DirectLiteral`]: as many as the compiler leaves unscanned anchored
/// gates on one field (its `DIRECT_GATES_MAX`).
pub(crate) const ALWAYS_DIRECT: usize = 4;

/// An ALWAYS rule whose whole condition is one anchored literal (`prefix`,
/// `suffix` or `exact`) of a string field that neither a gate nor the
/// prefilter decides (e.g. Sigma's `Image|endswith '\scrcons.exe'` when the
/// image is not scanned on every event). Derived from the validated rule,
/// program and atom when the file is parsed
/// ([`ChannelFile::always_direct_set`]), so the matcher compares the field
/// with the literal on every event without reading the program or the atom
/// record. The verdict is the one-atom program's.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DirectLiteral<'a> {
    /// PREFIX, SUFFIX or EXACT; `AtomKind(0)` (no atom kind): the rule has
    /// no direct test.
    pub(crate) kind: AtomKind,
    /// The field's slot ([`prefilter_slot`]).
    pub(crate) slot: u8,
    /// Every byte of `lit` is ASCII.
    pub(crate) ascii: bool,
    /// The rule's index.
    pub(crate) rule: u32,
    /// The folded literal (validated UTF-8).
    pub(crate) lit: &'a [u8],
}

impl DirectLiteral<'_> {
    pub(crate) const NONE: DirectLiteral<'static> = DirectLiteral {
        kind: AtomKind(0),
        slot: 0,
        ascii: false,
        rule: 0,
        lit: &[],
    };
}

/// A validated channel file. Built only by [`crate::parse`].
#[derive(Debug, Clone, Copy)]
pub struct ChannelFile<'a> {
    pub(crate) bytes: &'a [u8],
    pub(crate) header: Header,
    pub(crate) rules: Region<'a>,
    pub(crate) rule_fields: Region<'a>,
    pub(crate) atoms: Region<'a>,
    pub(crate) programs: Region<'a>,
    pub(crate) strings: Region<'a>,
    pub(crate) dfas: Region<'a>,
    pub(crate) always: Region<'a>,
    pub(crate) rule_count: u32,
    pub(crate) atom_count: u32,
    pub(crate) dfa_count: u32,
    pub(crate) range_table_count: u32,
    pub(crate) always_count: u32,
    /// Prefilter automata, by [`prefilter_slot`]: 0 pipe name, 1 image, 2 user.
    pub(crate) automata: [Automaton<'a>; PREFILTER_SLOTS],
    /// The direct tests of the first [`ALWAYS_DIRECT`] ALWAYS rules, by
    /// their position in the ALWAYS list (derived at parse time).
    pub(crate) always_direct: [DirectLiteral<'a>; ALWAYS_DIRECT],
    /// The fields the rules read (bit `1 << id`; every read field is
    /// supplied, hence below 64).
    pub(crate) read_fields: u64,
    /// The ROLLOUT section's policy, if any.
    pub(crate) rollout: Option<crate::RolloutPolicy>,
    /// The ENFORCEMENT section's policy, if any.
    pub(crate) enforcement: Option<crate::EnforcementPolicy>,
}

impl<'a> ChannelFile<'a> {
    /// The header.
    pub fn header(&self) -> Header {
        self.header
    }

    /// The staged-rollout policy and rollback instruction, if the file has one.
    pub fn rollout(&self) -> Option<crate::RolloutPolicy> {
        self.rollout
    }

    /// The monitor-first and circuit-breaker policy, if the file has an
    /// ENFORCEMENT section.
    pub fn enforcement(&self) -> Option<crate::EnforcementPolicy> {
        self.enforcement
    }

    /// The content sequence number.
    pub fn sequence(&self) -> u64 {
        self.header.sequence
    }

    /// The whole file.
    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// The section table, in file order (including skipped unknown sections).
    pub fn sections(&self) -> impl Iterator<Item = SectionInfo> + 'a {
        let table = self.bytes.get(fmt::header::LEN..).unwrap_or(&[]);
        (0..self.header.section_count).filter_map(move |i| {
            let e = fmt::SectionRecord::read_nth(table, usize::try_from(i).ok()?)?;
            Some(SectionInfo {
                kind: SectionKind(e.kind),
                flags: e.flags,
                offset: e.offset,
                len: e.len,
            })
        })
    }

    /// Number of rules.
    pub fn rule_count(&self) -> u32 {
        self.rule_count
    }

    /// Number of atoms.
    pub fn atom_count(&self) -> u32 {
        self.atom_count
    }

    /// Number of DFAs.
    pub fn dfa_count(&self) -> u32 {
        self.dfa_count
    }

    /// Number of rules evaluated on every event.
    pub fn always_count(&self) -> u32 {
        self.always_count
    }

    /// Number of range tables the DFAs share.
    pub fn dfa_range_table_count(&self) -> u32 {
        self.range_table_count
    }

    /// Whether any rule of the file reads `field`. The driver reads the
    /// requester's SID before matching only when the content reads
    /// [`FieldId::USER`].
    pub fn reads_field(&self, field: FieldId) -> bool {
        field.0 < 64 && (self.read_fields >> field.0) & 1 == 1
    }

    /// Prefilter statistics: (field, states, outputs) per automaton.
    pub fn prefilter_stats(&self) -> impl Iterator<Item = (FieldId, u32, u32)> + '_ {
        self.automata
            .iter()
            .filter(|a| a.state_count > 0)
            .map(|a| (a.field, a.state_count, a.output_count))
    }

    /// Prefilter shape: (field, states, dense states, classes, lazy) per
    /// automaton.
    pub fn prefilter_shape(&self) -> impl Iterator<Item = (FieldId, u32, u32, u32, bool)> + '_ {
        self.automata
            .iter()
            .filter(|a| a.state_count > 0)
            .map(|a| (a.field, a.state_count, a.dense_count, a.class_count, a.lazy))
    }

    /// Rule `index`, or `None` past the end.
    pub fn rule(&self, index: u32) -> Option<RuleView<'a>> {
        if index < self.rule_count {
            Some(RuleView {
                file: self.records(),
                index,
            })
        } else {
            None
        }
    }

    /// All rules, in file order (ascending id).
    pub fn rules(&self) -> impl Iterator<Item = RuleView<'a>> + '_ {
        (0..self.rule_count).filter_map(move |i| self.rule(i))
    }

    /// The rule with `id` (binary search: ids ascend).
    pub fn rule_by_id(&self, id: u32) -> Option<RuleView<'a>> {
        let (mut lo, mut hi) = (0u32, self.rule_count);
        while lo < hi {
            let mid = lo.wrapping_add(hi.wrapping_sub(lo) / 2);
            let r = self.rule(mid)?;
            match r.id().cmp(&id) {
                core::cmp::Ordering::Equal => return Some(r),
                core::cmp::Ordering::Less => lo = mid.wrapping_add(1),
                core::cmp::Ordering::Greater => hi = mid,
            }
        }
        None
    }

    /// Field `f` of rule record `index` (validated data: no error path).
    pub(crate) fn rule_u32(&self, index: u32, f: Field<u32>) -> u32 {
        let base = index
            .wrapping_mul(rule::LEN_U32)
            .wrapping_add(f.offset_u32());
        self.rules.le32(base)
    }

    /// See [`ChannelFile::rule_u32`].
    pub(crate) fn rule_u16(&self, index: u32, f: Field<u16>) -> u16 {
        let base = index
            .wrapping_mul(rule::LEN_U32)
            .wrapping_add(f.offset_u32());
        self.rules.le16(base)
    }

    /// See [`ChannelFile::rule_u32`].
    pub(crate) fn rule_u8(&self, index: u32, f: Field<u8>) -> u8 {
        let base = index
            .wrapping_mul(rule::LEN_U32)
            .wrapping_add(f.offset_u32());
        self.rules.le8(base)
    }

    /// What rule and atom views read (kept small: a [`crate::Verdict`]
    /// carries one).
    fn records(&self) -> Records<'a> {
        Records {
            rules: self.rules,
            rule_fields: self.rule_fields,
            atoms: self.atoms,
            programs: self.programs,
            strings: self.strings,
            rule_count: self.rule_count,
            atom_count: self.atom_count,
        }
    }

    /// The rule index of the `i`-th always-evaluated rule.
    pub(crate) fn always_rule(&self, i: u32) -> u32 {
        self.always.le32(
            i.wrapping_mul(always::LEN_U32)
                .wrapping_add(always::RULE.offset_u32()),
        )
    }

    /// The direct tests of the first [`ALWAYS_DIRECT`] ALWAYS rules (see
    /// [`DirectLiteral`]), from the validated ALWAYS list, rules, programs
    /// and atoms: a rule qualifies when its program is exactly `ATOM idx`
    /// and the atom is a `prefix`, `suffix` or `exact` literal of the pipe
    /// name, image or user that is neither a gate nor prefiltered.
    pub(crate) fn always_direct_set(&self) -> [DirectLiteral<'a>; ALWAYS_DIRECT] {
        let mut set = [DirectLiteral::NONE; ALWAYS_DIRECT];
        for (i, d) in (0u32..).zip(set.iter_mut()) {
            if i >= self.always_count {
                break;
            }
            let index = self.always_rule(i);
            let Some(rule) = self.rule(index) else {
                continue;
            };
            let &[fmt::op::ATOM, a, b, c, e] = rule.program() else {
                continue;
            };
            let idx = u32::from_le_bytes([a, b, c, e]);
            if idx >= self.atom_count {
                continue;
            }
            let atom = rule.file.atom(idx);
            let kind = atom.kind();
            let anchored = matches!(kind, AtomKind::PREFIX | AtomKind::SUFFIX | AtomKind::EXACT);
            let decided = atom.flags() & (fmt::ATOM_FLAG_GATE | fmt::ATOM_FLAG_PREFILTERED) != 0;
            let Some(slot) = prefilter_slot(atom.field()) else {
                continue;
            };
            if !anchored || decided {
                continue;
            }
            let lit = atom.text().as_bytes();
            *d = DirectLiteral {
                kind,
                slot: u8::try_from(slot).unwrap_or(u8::MAX),
                ascii: lit.is_ascii(),
                rule: index,
                lit,
            };
        }
        set
    }

    /// DFA `index` (validated): its entry and header read in place.
    #[inline]
    pub(crate) fn dfa(&self, index: u32) -> Option<crate::dfa::CharDfa<'a>> {
        crate::dfa::CharDfa::read(self.dfas, self.dfa_count, index)
    }
}

/// The sections a [`RuleView`] or [`AtomView`] reads.
#[derive(Debug, Clone, Copy)]
struct Records<'a> {
    rules: Region<'a>,
    rule_fields: Region<'a>,
    atoms: Region<'a>,
    programs: Region<'a>,
    strings: Region<'a>,
    rule_count: u32,
    atom_count: u32,
}

impl<'a> Records<'a> {
    fn rule_at(index: u32, f: u32) -> u32 {
        index.wrapping_mul(rule::LEN_U32).wrapping_add(f)
    }

    fn rule_u32(&self, index: u32, f: Field<u32>) -> u32 {
        self.rules.le32(Self::rule_at(index, f.offset_u32()))
    }

    fn rule_u16(&self, index: u32, f: Field<u16>) -> u16 {
        self.rules.le16(Self::rule_at(index, f.offset_u32()))
    }

    fn rule_u8(&self, index: u32, f: Field<u8>) -> u8 {
        self.rules.le8(Self::rule_at(index, f.offset_u32()))
    }

    fn atom_range(&self, index: u32) -> (u32, u32) {
        let start = self.rule_u32(index, rule::ATOMS_START);
        let next = index.wrapping_add(1);
        let end = if next < self.rule_count {
            self.rule_u32(next, rule::ATOMS_START)
        } else {
            self.atom_count
        };
        (start, end)
    }

    fn atom(&self, index: u32) -> AtomView<'a> {
        AtomView { file: *self, index }
    }
}

/// One rule of a validated file.
#[derive(Debug, Clone, Copy)]
pub struct RuleView<'a> {
    file: Records<'a>,
    index: u32,
}

impl<'a> RuleView<'a> {
    /// Index in the file.
    pub fn index(&self) -> u32 {
        self.index
    }
    /// Rule id.
    pub fn id(&self) -> u32 {
        self.file.rule_u32(self.index, rule::ID)
    }
    /// Rule name.
    pub fn name(&self) -> &'a str {
        let off = self.file.rule_u32(self.index, rule::NAME_OFF);
        let len = self.file.rule_u32(self.index, rule::NAME_LEN);
        self.file
            .strings
            .str_at(off, len, "rule name")
            .unwrap_or("")
    }
    /// Severity.
    pub fn severity(&self) -> Severity {
        Severity(self.file.rule_u8(self.index, rule::SEVERITY))
    }
    /// Action.
    pub fn action(&self) -> Action {
        Action(self.file.rule_u8(self.index, rule::ACTION))
    }
    /// Whether the rule is evaluated on every event.
    pub fn always_evaluated(&self) -> bool {
        self.file.rule_u16(self.index, rule::FLAGS) & fmt::RULE_FLAG_ALWAYS != 0
    }
    /// The fields the rule reads.
    pub fn fields(&self) -> impl Iterator<Item = FieldId> + 'a {
        let start = self.file.rule_u32(self.index, rule::FIELDS_START);
        let count = u32::from(self.file.rule_u16(self.index, rule::FIELDS_COUNT));
        let rf = self.file.rule_fields;
        (0..count).map(move |i| {
            FieldId(
                rf.le16(
                    start
                        .wrapping_add(i)
                        .wrapping_mul(rule_field::LEN_U32)
                        .wrapping_add(rule_field::FIELD.offset_u32()),
                ),
            )
        })
    }
    /// The rule's atoms.
    pub fn atoms(&self) -> impl Iterator<Item = AtomView<'a>> + 'a {
        let (s, e) = self.file.atom_range(self.index);
        let file = self.file;
        (s..e).map(move |i| file.atom(i))
    }
    /// The condition program (postfix bytecode, see FORMAT.md).
    pub fn program(&self) -> &'a [u8] {
        let off = self.file.rule_u32(self.index, rule::PROG_OFF);
        let len = u32::from(self.file.rule_u16(self.index, rule::PROG_LEN));
        self.file
            .programs
            .sub(off, len, "program")
            .map(|r| r.bytes)
            .unwrap_or(&[])
    }
}

/// One atom of a validated file.
#[derive(Debug, Clone, Copy)]
pub struct AtomView<'a> {
    file: Records<'a>,
    index: u32,
}

impl<'a> AtomView<'a> {
    /// Offset of field `f` of this atom's record in ATOMS.
    fn at<T: fmt::Le>(&self, f: Field<T>) -> u32 {
        self.index
            .wrapping_mul(atom::LEN_U32)
            .wrapping_add(f.offset_u32())
    }
    /// Index in the file.
    pub fn index(&self) -> u32 {
        self.index
    }
    /// Index of its rule.
    pub fn rule_index(&self) -> u32 {
        self.file.atoms.le32(self.at(atom::RULE))
    }
    /// The field it tests.
    pub fn field(&self) -> FieldId {
        FieldId(self.file.atoms.le16(self.at(atom::FIELD)))
    }
    /// Its kind.
    pub fn kind(&self) -> AtomKind {
        AtomKind(self.file.atoms.le8(self.at(atom::KIND)))
    }
    /// Its flags.
    pub fn flags(&self) -> u8 {
        self.file.atoms.le8(self.at(atom::FLAGS))
    }
    /// Whether it is an output of its field's prefilter automaton.
    pub fn prefiltered(&self) -> bool {
        self.flags() & fmt::ATOM_FLAG_PREFILTERED != 0
    }
    /// Whether its report makes its rule a candidate (FORMAT.md, ATOMS).
    pub fn gate(&self) -> bool {
        self.flags() & fmt::ATOM_FLAG_GATE != 0
    }
    /// The literal (folded), glob (folded, escaped) or regex source; empty for NUM_EQ.
    pub fn text(&self) -> &'a str {
        let off = self.file.atoms.le32(self.at(atom::STR_OFF));
        let len = self.file.atoms.le32(self.at(atom::STR_LEN));
        self.file
            .strings
            .str_at(off, len, "atom text")
            .unwrap_or("")
    }
    /// DFA index (REGEX) or value (NUM_EQ).
    pub fn arg(&self) -> u32 {
        self.file.atoms.le32(self.at(atom::ARG))
    }
}
