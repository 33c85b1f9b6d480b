//! The validated, borrowed view of a channel file.
//!
//! Accessors re-read fields from the validated bytes. They were all checked by
//! [`crate::parse`], so the fallbacks (`unwrap_or` defaults) are unreachable;
//! they exist because the crate forbids panics, not because a value can be
//! missing.

use crate::wire::Region;
use channel_format::{
    self as fmt, always, atom, dfa_entry, dfa_table, rule, rule_field, state, Action, AtomKind,
    Field, FieldId, SectionKind, Severity,
};

/// The fixed header fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Major format version (1).
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

/// One automaton state as the matcher reads it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct StateRec {
    pub(crate) id: u32,
    pub(crate) e0: u32,
    pub(crate) e1: u32,
    pub(crate) fail: u32,
    pub(crate) dict: u32,
    pub(crate) o0: u32,
    pub(crate) o1: u32,
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

/// One prefilter automaton (validated).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Automaton<'a> {
    pub(crate) field: FieldId,
    pub(crate) state_count: u32,
    pub(crate) edge_count: u32,
    pub(crate) output_count: u32,
    pub(crate) states: Region<'a>,
    pub(crate) labels: &'a [u8],
    pub(crate) outputs: Region<'a>,
    /// The root's labels as a 256-bit set (bit `b` of word `b / 64`),
    /// computed by validation: the root's child on `b` is state
    /// 1 + (labels below `b`), found with two popcounts instead of a search.
    pub(crate) root_bits: [u64; 4],
}

impl<'a> Automaton<'a> {
    pub(crate) const EMPTY: Automaton<'static> = Automaton {
        field: FieldId(0),
        state_count: 0,
        edge_count: 0,
        output_count: 0,
        states: Region::EMPTY,
        labels: &[],
        outputs: Region::EMPTY,
        root_bits: [0; 4],
    };

    /// State `s` with the bounds of its edge and output ranges, read with one
    /// bounds check. The only reader of state records: the matcher's hot loop
    /// and the validator both use it. For `s < state_count`, `e1`/`o1` are
    /// state `s + 1`'s first edge and first output, or `edge_count` /
    /// `output_count` for the last state; for `s >= state_count` every field
    /// is 0 (the matcher never asks for one: its links were validated).
    #[inline]
    pub(crate) fn state(&self, s: u32) -> StateRec {
        // State `s` and the next one (`NEXT` bytes on), read together.
        const NEXT: usize = state::LEN;
        let at = (s as usize).wrapping_mul(state::LEN);
        let w = |b: &[u8], f: Field<u32>, base: usize| {
            let i = base.wrapping_add(f.offset());
            match b.get(i..i.wrapping_add(size_of::<u32>())) {
                Some(&[a, b2, c, d]) => u32::from_le_bytes([a, b2, c, d]),
                _ => 0,
            }
        };
        if let Some(b) = self.states.bytes.get(at..at.wrapping_add(2 * state::LEN)) {
            StateRec {
                id: s,
                e0: w(b, state::FIRST_EDGE, 0),
                fail: w(b, state::FAIL, 0),
                dict: w(b, state::DICT, 0),
                o0: w(b, state::FIRST_OUTPUT, 0),
                e1: w(b, state::FIRST_EDGE, NEXT),
                o1: w(b, state::FIRST_OUTPUT, NEXT),
            }
        } else if let Some(b) = self.states.bytes.get(at..at.wrapping_add(state::LEN)) {
            // The last state: its ranges end at the totals.
            StateRec {
                id: s,
                e0: w(b, state::FIRST_EDGE, 0),
                fail: w(b, state::FAIL, 0),
                dict: w(b, state::DICT, 0),
                o0: w(b, state::FIRST_OUTPUT, 0),
                e1: self.edge_count,
                o1: self.output_count,
            }
        } else {
            StateRec {
                id: 0,
                e0: 0,
                fail: 0,
                dict: 0,
                o0: 0,
                e1: 0,
                o1: 0,
            }
        }
    }

    /// The root's child on byte `b`, if any (see `root_bits`).
    #[inline(always)]
    pub(crate) fn root_child(&self, b: u8) -> Option<u32> {
        let w = usize::from(b >> 6);
        let bit = 1u64 << (b & 63);
        let word = self.root_bits.get(w).copied().unwrap_or(0);
        if word & bit == 0 {
            return None;
        }
        let below: u32 = self
            .root_bits
            .iter()
            .take(w)
            .map(|x| x.count_ones())
            .fold(0, u32::wrapping_add);
        Some(
            below
                .wrapping_add((word & bit.wrapping_sub(1)).count_ones())
                .wrapping_add(1),
        )
    }

    /// The child of the state `r` on byte `b`, if any.
    #[inline]
    pub(crate) fn child_of(&self, r: &StateRec, b: u8) -> Option<u32> {
        let (lo, hi) = (r.e0 as usize, r.e1 as usize);
        let labels = self.labels.get(lo..hi)?;
        let i = if labels.len() <= 8 {
            labels.iter().position(|&l| l == b)?
        } else {
            labels.binary_search(&b).ok()?
        };
        // Edge k leads to state k + 1 (breadth-first numbering, validated).
        u32::try_from(lo.wrapping_add(i).wrapping_add(1)).ok()
    }

    /// Outputs (atom indices) of the state `r`.
    #[inline]
    pub(crate) fn outputs_of(&self, r: &StateRec) -> impl Iterator<Item = u32> + 'a {
        let bytes = self
            .outputs
            .bytes
            .get(
                (r.o0 as usize).wrapping_mul(fmt::output::LEN)
                    ..(r.o1 as usize).wrapping_mul(fmt::output::LEN),
            )
            .unwrap_or(&[]);
        // One output record is one little-endian u32 (`fmt::OutputRecord`).
        const _: () = assert!(fmt::output::LEN == 4 && fmt::output::ATOM.offset() == 0);
        bytes.chunks_exact(fmt::output::LEN).map(|c| match c {
            &[a, b, c, d] => u32::from_le_bytes([a, b, c, d]),
            _ => u32::MAX,
        })
    }
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
    pub(crate) always_count: u32,
    /// Prefilter automata, by [`prefilter_slot`]: 0 pipe name, 1 image, 2 user.
    pub(crate) automata: [Automaton<'a>; PREFILTER_SLOTS],
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

    /// Rule `index`, or `None` past the end.
    pub fn rule(&self, index: u32) -> Option<RuleView<'a>> {
        if index < self.rule_count {
            Some(RuleView { file: *self, index })
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

    /// The atom range `[start, end)` of rule `index`.
    pub(crate) fn atom_range(&self, index: u32) -> (u32, u32) {
        let start = self.rule_u32(index, rule::ATOMS_START);
        let next = index.wrapping_add(1);
        let end = if next < self.rule_count {
            self.rule_u32(next, rule::ATOMS_START)
        } else {
            self.atom_count
        };
        (start, end)
    }

    pub(crate) fn atom(&self, index: u32) -> AtomView<'a> {
        AtomView { file: *self, index }
    }

    /// The rule index of the `i`-th always-evaluated rule.
    pub(crate) fn always_rule(&self, i: u32) -> u32 {
        self.always.le32(
            i.wrapping_mul(always::LEN_U32)
                .wrapping_add(always::RULE.offset_u32()),
        )
    }

    /// DFA blob `index` (validated).
    pub(crate) fn dfa_bytes(&self, index: u32) -> &'a [u8] {
        let at = index
            .wrapping_mul(dfa_entry::LEN_U32)
            .wrapping_add(dfa_table::LEN_U32);
        let off = self
            .dfas
            .le32(at.wrapping_add(dfa_entry::OFFSET.offset_u32()));
        let len = self
            .dfas
            .le32(at.wrapping_add(dfa_entry::LENGTH.offset_u32()));
        self.dfas
            .sub(off, len, "dfa")
            .map(|r| r.bytes)
            .unwrap_or(&[])
    }
}

/// One rule of a validated file.
#[derive(Debug, Clone, Copy)]
pub struct RuleView<'a> {
    file: ChannelFile<'a>,
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
    file: ChannelFile<'a>,
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
    /// Whether the prefilter gates it.
    pub fn prefiltered(&self) -> bool {
        self.flags() & fmt::ATOM_FLAG_PREFILTERED != 0
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
    /// Folded byte length of a literal atom.
    pub(crate) fn str_len(&self) -> u32 {
        self.file.atoms.le32(self.at(atom::STR_LEN))
    }
}
