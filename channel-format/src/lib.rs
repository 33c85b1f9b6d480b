//! The binary layout of pipe-sensor channel files (`C-00000291-<seq>.sys`),
//! format version 1. `FORMAT.md` next to this crate specifies every byte; this
//! crate holds the same facts as code, and is the only place that knows a
//! byte offset: the writer (`pipe-compiler`), the reader (`channel-parser`),
//! the signature check (`content-trust`), the test tooling and `pipectl
//! inspect` all go through it.
//!
//! Everything is little-endian: the sensor runs on x86_64 and aarch64 Windows,
//! both little-endian, so a reader never swaps bytes.
//!
//! - **Records** (`record.rs`): one table per fixed record (header, section
//!   entry, schema entry, rule, rule field, atom, prefilter and automaton
//!   headers, state, output, DFA table and entry, always entry, rollout,
//!   signature header and entry) generates the decoded struct
//!   ([`RuleRecord`]) with safe `read`/`write`, the byte-array layout struct
//!   ([`RawRule`]) whose size and offsets are asserted at compile time, and
//!   typed offset constants ([`rule::ATOMS_START`]).
//! - **Variable layouts**: [`AutomatonLayout`] (a prefilter automaton's
//!   states, labels, depths and outputs) and the alignment constants.
//! - **Condition programs** ([`program`]): opcodes, encoder, decoding
//!   iterator and the one implementation of the ALWAYS (Kleene) rule.
//!
//! Reads and writes never panic and never allocate: a slice too short for a
//! record gives `None`.
//!
//! Newtypes over integers (`SectionKind`, `FieldId`, ...) keep unknown values
//! representable: whether an unknown value is skipped or rejected is the
//! parser's decision, written down in `FORMAT.md`.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(
    not(test),
    deny(
        clippy::indexing_slicing,
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::arithmetic_side_effects
    )
)]

mod le;
pub mod program;
#[macro_use]
mod record;

pub use le::{Field, Le};
pub use program::op;
pub use record::*;

use core::fmt;
use static_assertions::const_assert_eq;

/// The 8 magic bytes every channel file starts with.
pub const MAGIC: [u8; 8] = *b"PIPECHN\0";
/// Written as a little-endian `u16`; a reader that sees `0xFFFE` was handed a
/// big-endian file (which no writer produces).
pub const ENDIAN_MARKER: u16 = 0xFEFF;
/// The major format version this crate describes. A reader accepts exactly its
/// own major version.
pub const FORMAT_VERSION: u16 = 1;
/// The minor format version this crate writes. Readers accept any minor
/// version: minor versions only add optional sections and optional flags.
pub const FORMAT_MINOR: u16 = 0;
/// The channel number of named-pipe content.
pub const CHANNEL_PIPES: u32 = 291;
/// Every section starts at a multiple of this many bytes from the start of
/// the file (DFAs need 4; 8 leaves room for 64-bit fields).
pub const SECTION_ALIGN: u32 = 8;

/// Length of the header ([`HeaderRecord`]), as the `u16` its
/// `header_len` field holds.
pub const HEADER_LEN: u16 = header::LEN_U32 as u16;
const_assert_eq!(HEADER_LEN as usize, header::LEN);

/// Required-flag bits known to format 1.0 (none yet). Any other bit set makes
/// a version-1.0 reader reject the file.
pub const KNOWN_REQUIRED_FLAGS: u32 = 0;
/// Optional flag: the file was produced for testing (inspect shows it).
pub const OPTIONAL_FLAG_TEST_CONTENT: u32 = 1;

/// Length of a section-table entry ([`SectionRecord`]).
pub const SECTION_ENTRY_LEN: usize = section::LEN;

/// Section flag: a reader that does not know this section kind must reject
/// the file. Without it an unknown section is skipped.
pub const SECTION_FLAG_CRITICAL: u32 = 1;

/// Defines a closed wire enum: a Rust enum whose every value is listed, with
/// the one accessor pattern every closed wire enum of this crate and of
/// `sensor-core` shares: `to_uN` (the wire value) and `from_uN` (`None` for
/// a value the enum does not define: the reader rejects it), `ALL`, and
/// `name` (the spelling tools print). Open sets, whose unknown values a
/// reader must be able to keep (section kinds, field ids, ... in the channel
/// file), are newtypes over the integer instead (`int_newtype!` below),
/// with the same `to_uN`/`from_uN` pair.
///
/// ```
/// channel_format::wire_enum! {
///     /// A colour.
///     Colour: u8 (to_u8, from_u8) {
///         /// Red.
///         Red = 1 => "red",
///         /// Green.
///         Green = 2 => "green",
///     }
/// }
/// assert_eq!(Colour::from_u8(Colour::Green.to_u8()), Some(Colour::Green));
/// assert_eq!(Colour::from_u8(3), None);
/// ```
#[macro_export]
macro_rules! wire_enum {
    ($(#[$m:meta])* $name:ident: $int:ident ($to:ident, $from:ident) {
        $($(#[$vm:meta])* $v:ident = $val:expr => $s:expr,)*
    }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vm])* $v,)*
        }
        impl $name {
            /// Every value, in wire order.
            pub const ALL: [$name; { let all: &[$name] = &[$($name::$v),*]; all.len() }] =
                [$($name::$v),*];
            /// The wire value.
            pub const fn $to(self) -> $int {
                match self { $($name::$v => $val,)* }
            }
            /// The value with this wire value; `None` for any other.
            pub const fn $from(v: $int) -> Option<$name> {
                match v { $($val => Some($name::$v),)* _ => None }
            }
            /// How tools spell it.
            pub const fn name(self) -> &'static str {
                match self { $($name::$v => $s,)* }
            }
        }
    };
}

macro_rules! int_newtype {
    ($(#[$m:meta])* $name:ident($int:ty) ($to:ident, $from:ident) { $($(#[$cm:meta])* $c:ident = $v:expr => $s:expr,)* }) => {
        $(#[$m])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(pub $int);
        impl $name {
            /// The wire value.
            pub const fn $to(self) -> $int { self.0 }
            /// Any wire value (an open set: unknown values are kept, see
            /// [`Self::is_known`]).
            pub const fn $from(v: $int) -> $name { $name(v) }
            $($(#[$cm])* pub const $c: $name = $name($v);)*
            /// Every value format 1.0 defines.
            pub const KNOWN: &'static [$name] = &[$($name::$c),*];
            /// The name of a known value, `None` for an unknown one.
            pub const fn name(self) -> Option<&'static str> {
                match self.0 { $($v => Some($s),)* _ => None }
            }
            /// Whether format 1.0 defines this value.
            pub const fn is_known(self) -> bool { self.name().is_some() }
        }
        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self.name() { Some(n) => f.write_str(n), None => write!(f, "{}({:#x})", stringify!($name), self.0) }
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self.name() { Some(n) => f.write_str(n), None => write!(f, "unknown {} {}", stringify!($name), self.0) }
            }
        }
    };
}

int_newtype! {
    /// The kind of a section.
    SectionKind(u32) (to_u32, from_u32) {
        /// The event fields the rules read.
        SCHEMA = 1 => "schema",
        /// Rule records.
        RULES = 2 => "rules",
        /// The field ids each rule reads (u16 each).
        RULE_FIELDS = 3 => "rule-fields",
        /// Atom records: one condition on one field.
        ATOMS = 4 => "atoms",
        /// Condition programs.
        PROGRAMS = 5 => "programs",
        /// UTF-8 strings referenced by rules and atoms.
        STRINGS = 6 => "strings",
        /// The literal prefilter automata (one per string field).
        PREFILTER = 7 => "prefilter",
        /// Serialized regex-automata dense DFAs.
        DFAS = 8 => "dfas",
        /// Indices of rules evaluated on every event.
        ALWAYS = 9 => "always",
        /// Staged-rollout policy and rollback instruction ([`RolloutRecord`]).
        ROLLOUT = 10 => "rollout",
        /// Ed25519 signatures ([`SignatureRecord`], [`SignatureEntryRecord`]).
        SIGNATURE = 11 => "signature",
        /// Enforcement policy: monitor-first periods and circuit-breaker
        /// limits (FORMAT.md §15).
        ENFORCEMENT = 12 => "enforcement",
    }
}

/// Sections every version-1 file contains exactly once, in this order of kinds
/// (their offsets may be in any order but may not overlap).
pub const REQUIRED_SECTIONS: [SectionKind; 9] = [
    SectionKind::SCHEMA,
    SectionKind::RULES,
    SectionKind::RULE_FIELDS,
    SectionKind::ATOMS,
    SectionKind::PROGRAMS,
    SectionKind::STRINGS,
    SectionKind::PREFILTER,
    SectionKind::DFAS,
    SectionKind::ALWAYS,
];

int_newtype! {
    /// An event field a rule can read. The sensor declares which it supplies.
    FieldId(u16) (to_u16, from_u16) {
        /// The pipe name, as Sysmon reports it (`\name`), UTF-16 in the kernel.
        PIPE_NAME = 1 => "PipeName",
        /// The image path of the process creating or connecting to the pipe.
        IMAGE = 2 => "Image",
        /// The process id.
        PROCESS_ID = 3 => "ProcessId",
        /// The event kind: create (1) or connect (2).
        EVENT_KIND = 4 => "EventKind",
        /// The requester's user SID in string form (`S-1-5-18`), as the
        /// sensor supplies it (FORMAT.md §4). Rules written on Sysmon's
        /// `DOMAIN\name` are mapped to SIDs by the compiler.
        USER = 5 => "User",
    }
}

int_newtype! {
    /// The type of an event field.
    FieldType(u8) (to_u8, from_u8) {
        /// A UTF-16 / UTF-8 string.
        STRING = 1 => "string",
        /// An unsigned 32-bit integer.
        U32 = 2 => "u32",
    }
}

impl FieldId {
    /// The type of a known field.
    pub const fn field_type(self) -> Option<FieldType> {
        match self.0 {
            1 | 2 | 5 => Some(FieldType::STRING),
            3 | 4 => Some(FieldType::U32),
            _ => None,
        }
    }
}

int_newtype! {
    /// What a matching rule asks the sensor to do.
    Action(u8) (to_u8, from_u8) {
        /// Report the event.
        ALERT = 0 => "alert",
        /// Report the event and, in enforce mode, deny the operation.
        BLOCK = 1 => "block",
    }
}

int_newtype! {
    /// Rule severity, as Sigma's `level`.
    Severity(u8) (to_u8, from_u8) {
        /// informational
        INFORMATIONAL = 0 => "informational",
        /// low
        LOW = 1 => "low",
        /// medium
        MEDIUM = 2 => "medium",
        /// high
        HIGH = 3 => "high",
        /// critical
        CRITICAL = 4 => "critical",
    }
}

int_newtype! {
    /// How an atom tests its field.
    AtomKind(u8) (to_u8, from_u8) {
        /// The folded field equals the literal.
        EXACT = 1 => "exact",
        /// The folded field starts with the literal.
        PREFIX = 2 => "prefix",
        /// The folded field ends with the literal.
        SUFFIX = 3 => "suffix",
        /// The folded field contains the literal.
        CONTAINS = 4 => "contains",
        /// A wildcard pattern over the whole folded field (see FORMAT.md).
        GLOB = 5 => "glob",
        /// A regular expression, run as a DFA over the unfolded field.
        REGEX = 6 => "regex",
        /// The (integer) field equals the value.
        NUM_EQ = 7 => "num-eq",
    }
}

impl AtomKind {
    /// Literal atoms are decided by the prefilter alone.
    pub const fn is_literal(self) -> bool {
        matches!(self.0, 1..=4)
    }
    /// Pattern atoms (GLOB, REGEX) run their matcher when their prefilter literal, if any, occurred.
    pub const fn is_pattern(self) -> bool {
        matches!(self.0, 5 | 6)
    }
}

/// Length of a rule record ([`RuleRecord`]).
pub const RULE_LEN: usize = rule::LEN;

/// Rule flag: the rule can match without any of its atoms being reported by
/// the prefilter, so the matcher evaluates it on every event. It is set
/// exactly when the rule's condition is not false under Kleene logic with
/// prefiltered atoms false and the others unknown (the parser recomputes it).
pub const RULE_FLAG_ALWAYS: u16 = 1;

/// Length of an atom record ([`AtomRecord`]).
pub const ATOM_LEN: usize = atom::LEN;

/// Atom flag: a GLOB or REGEX atom whose DFA runs only when the prefilter
/// reported one of its required literals. Literal atoms always have it.
pub const ATOM_FLAG_PREFILTERED: u8 = 1;
/// Atom flag: a REGEX atom compiled case-insensitively (informational; the
/// DFA already encodes it).
pub const ATOM_FLAG_CASE_INSENSITIVE: u8 = 2;

/// Length of a schema entry ([`SchemaRecord`]).
pub const SCHEMA_ENTRY_LEN: usize = schema::LEN;
/// Length of an automaton header ([`AutomatonRecord`]).
pub const AUTOMATON_HEADER_LEN: usize = automaton::LEN;
/// Length of an automaton state ([`StateRecord`]).
pub const STATE_LEN: usize = state::LEN;

/// Version word at the start of the ROLLOUT section.
pub const ROLLOUT_VERSION: u32 = 1;
/// ROLLOUT flag: ring, percentage and not-before time are set.
pub const ROLLOUT_FLAG_POLICY: u32 = 1;
/// ROLLOUT flag: this file is a signed rollback instruction (see FORMAT.md).
pub const ROLLOUT_FLAG_ROLLBACK: u32 = 2;
/// Length of a ROLLOUT section with no flags: the version and flags words
/// of [`RolloutRecord`].
pub const ROLLOUT_LEN_EMPTY: usize = rollout::FLAGS.end();
/// Length of a ROLLOUT section with any flag: the whole [`RolloutRecord`].
pub const ROLLOUT_LEN: usize = rollout::LEN;
/// Largest ROLLOUT percentage, in thousandths of a percent (100 %).
pub const ROLLOUT_PERCENT_MILLI_MAX: u32 = 100_000;

/// Version word at the start of the ENFORCEMENT section.
pub const ENFORCEMENT_VERSION: u32 = 1;
/// ENFORCEMENT flag: the monitor-first periods are set.
pub const ENFORCEMENT_FLAG_MONITOR_FIRST: u32 = 1;
/// ENFORCEMENT flag: the per-rule circuit breaker is set.
pub const ENFORCEMENT_FLAG_RULE_BREAKER: u32 = 2;
/// ENFORCEMENT flag: the machine-wide circuit breaker is set.
pub const ENFORCEMENT_FLAG_MACHINE_BREAKER: u32 = 4;
/// Length of the ENFORCEMENT section ([`EnforcementRecord`]).
pub const ENFORCEMENT_LEN: usize = enforcement::LEN;
/// Longest monitor-first period a file may set, in seconds (30 days): a
/// longer one is almost certainly a unit mistake.
pub const MAX_MONITOR_FIRST_SECS: u32 = 30 * 86_400;
/// Most denies per window a file's per-rule breaker may allow. Content can
/// loosen the breaker only this far: it is what protects machines from
/// content (the service key can turn it off).
pub const MAX_RULE_BREAKER_DENIES: u32 = 1_000;
/// Most denies per window a file's machine-wide breaker may allow.
pub const MAX_MACHINE_BREAKER_DENIES: u32 = 10_000;
/// Longest breaker window a file may set, in seconds (one day).
pub const MAX_BREAKER_WINDOW_SECS: u32 = 86_400;

int_newtype! {
    /// A staged-rollout ring.
    Ring(u8) (to_u8, from_u8) {
        /// First machines to get content.
        CANARY = 0 => "canary",
        /// The next wave.
        EARLY = 1 => "early",
        /// Everyone.
        BROAD = 2 => "broad",
    }
}
/// Version word at the start of the SIGNATURE section.
pub const SIGNATURE_VERSION: u32 = 1;
/// Most signatures one file may carry (key rotation: old and new key).
pub const MAX_SIGNATURES: u32 = 4;

/// Every DFA blob starts at a multiple of this many bytes from the start of
/// the DFAS section (regex-automata reads transition tables in place and
/// needs 4).
pub const DFA_ALIGN: u32 = 8;
/// A buffer holding a file with DFAs must start at a multiple of this many
/// bytes in memory: regex-automata reads the transition tables in place
/// (the parser rejects other buffers with `Misaligned`).
pub const DFA_MEMORY_ALIGN: usize = 4;
/// Every prefilter automaton starts, and ends, at a multiple of this many
/// bytes from the start of the PREFILTER section.
pub const AUTOMATON_ALIGN: u32 = 8;
/// An automaton's outputs start at a multiple of this many bytes from the
/// start of the PREFILTER section (they are `u32`s).
pub const AUTOMATON_OUTPUTS_ALIGN: u32 = 4;

/// Where the parts of one prefilter automaton lie, in bytes from the start
/// of its [`AutomatonRecord`] (FORMAT.md §10): the header, `S` states,
/// `E` edge labels (one byte each), `S` depths (one byte each), zero padding
/// to [`AUTOMATON_OUTPUTS_ALIGN`], `O` outputs, zero padding to
/// [`AUTOMATON_ALIGN`]. The automaton itself must start
/// [`AUTOMATON_ALIGN`]-aligned, so that these alignments hold relative to
/// the section too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AutomatonLayout {
    /// Offset of the first state.
    pub states: u32,
    /// Offset of the edge labels.
    pub labels: u32,
    /// Offset of the state depths.
    pub depths: u32,
    /// Offset of the padding before the outputs.
    pub depths_end: u32,
    /// Offset of the outputs.
    pub outputs: u32,
    /// Offset just past the outputs (start of the final padding).
    pub outputs_end: u32,
    /// Length of the whole automaton, padding included.
    pub end: u32,
}

impl AutomatonLayout {
    /// The layout of an automaton with `states` states, `edges` edges and
    /// `outputs` outputs; `None` when a part does not fit in a `u32`.
    pub const fn new(states: u32, edges: u32, outputs: u32) -> Option<AutomatonLayout> {
        let states_at = automaton::LEN_U32;
        let Some(state_bytes) = states.checked_mul(state::LEN_U32) else {
            return None;
        };
        let Some(labels) = states_at.checked_add(state_bytes) else {
            return None;
        };
        let Some(depths) = labels.checked_add(edges) else {
            return None;
        };
        let Some(depths_end) = depths.checked_add(states) else {
            return None;
        };
        let Some(outputs_at) = align_to(depths_end, AUTOMATON_OUTPUTS_ALIGN) else {
            return None;
        };
        let Some(output_bytes) = outputs.checked_mul(output::LEN_U32) else {
            return None;
        };
        let Some(outputs_end) = outputs_at.checked_add(output_bytes) else {
            return None;
        };
        let Some(end) = align_to(outputs_end, AUTOMATON_ALIGN) else {
            return None;
        };
        Some(AutomatonLayout {
            states: states_at,
            labels,
            depths,
            depths_end,
            outputs: outputs_at,
            outputs_end,
            end,
        })
    }
}

/// Rounds `n` up to a multiple of `align` (a power of two); `None` on overflow.
pub const fn align_to(n: u32, align: u32) -> Option<u32> {
    let mask = align.wrapping_sub(1);
    match n.checked_add(mask) {
        Some(v) => Some(v & !mask),
        None => None,
    }
}

/// The most atoms one rule may have, whatever [`Limits`] says: the matcher
/// keeps one rule's hits in a fixed scratch of this many entries
/// (`channel_parser::Scratch`). A larger `max_atoms_per_rule` is treated as
/// this value.
pub const ATOMS_PER_RULE_CEILING: u32 = 256;
pub use program::STACK_DEPTH_CEILING;

wire_enum! {
    /// The kind of a pipe event: the value of the `EventKind` field (FORMAT.md
    /// §3). The one definition the parser, the sensor, the importers and the
    /// tools share.
    EventKind: u32 (to_u32, from_u32) {
        /// A pipe instance was created (`IRP_MJ_CREATE_NAMED_PIPE`): 1.
        Create = 1 => "create",
        /// A client opened the pipe (`IRP_MJ_CREATE` on NPFS): 2.
        Connect = 2 => "connect",
    }
}

impl EventKind {
    /// The value rules compare `EventKind` with: 1 create, 2 connect (the
    /// wire value, [`EventKind::to_u32`]).
    pub const fn value(self) -> u32 {
        self.to_u32()
    }

    /// The wire value as a byte (the event ring stores it so; both values
    /// fit).
    pub const fn to_u8(self) -> u8 {
        match self {
            EventKind::Create => 1,
            EventKind::Connect => 2,
        }
    }

    /// The kind named `create` / `connect`, or written as its value `1` /
    /// `2` (as rule sources may).
    pub fn from_name(s: &str) -> Option<EventKind> {
        match s {
            "create" | "1" => Some(EventKind::Create),
            "connect" | "2" => Some(EventKind::Connect),
            _ => None,
        }
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Limits on what a channel file may contain. The parser rejects a file that
/// exceeds any of them with `LimitExceeded`; the compiler refuses to write one.
/// Each default is chosen with the reason given on the field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest file: 64 MiB. 10,000 rules compile to ~1-2 MiB; this leaves
    /// headroom while bounding kernel pool use.
    pub max_file_len: u32,
    /// Most sections: 32 (version 1 defines 11).
    pub max_sections: u32,
    /// Most rules: 100,000.
    pub max_rules: u32,
    /// Most atoms in one rule: 256 (the matcher keeps one rule's hits in a
    /// fixed-size scratch, see `channel_parser::Scratch`). Values above
    /// [`ATOMS_PER_RULE_CEILING`] (256) act as 256.
    pub max_atoms_per_rule: u32,
    /// Most atoms in the file: 1,000,000.
    pub max_atoms: u32,
    /// Longest condition program: 4,096 bytes.
    pub max_program_len: u32,
    /// Deepest evaluation stack: 64 (the evaluator's stack is one u64).
    /// Values above [`STACK_DEPTH_CEILING`] (64) act as 64.
    pub max_stack_depth: u32,
    /// Longest string (rule name, literal, pattern source): 4,096 bytes.
    pub max_string_len: u32,
    /// Most DFAs: 100,000.
    pub max_dfas: u32,
    /// Largest single DFA: 256 KiB (the compiler reports the rule that grows
    /// beyond it).
    pub max_dfa_len: u32,
    /// Most prefilter states per automaton: 4,000,000.
    pub max_states: u32,
    /// Deepest prefilter state (longest literal in bytes): 255.
    pub max_literal_len: u32,
    /// Most fields one rule reads: 16.
    pub max_fields_per_rule: u32,
}

impl Limits {
    /// The defaults (see each field).
    pub const DEFAULT: Limits = Limits {
        max_file_len: 64 << 20,
        max_sections: 32,
        max_rules: 100_000,
        max_atoms_per_rule: 256,
        max_atoms: 1_000_000,
        max_program_len: 4096,
        max_stack_depth: 64,
        max_string_len: 4096,
        max_dfas: 100_000,
        max_dfa_len: 256 << 10,
        max_states: 4_000_000,
        max_literal_len: 255,
        max_fields_per_rule: 16,
    };
}

impl Default for Limits {
    fn default() -> Self {
        Limits::DEFAULT
    }
}

/// Rounds `n` up to [`SECTION_ALIGN`]; `None` on overflow.
pub const fn align_up(n: u32) -> Option<u32> {
    align_to(n, SECTION_ALIGN)
}

/// The padding after `n` bytes to reach the next [`SECTION_ALIGN`] boundary.
pub const fn padding_len(n: u32) -> u32 {
    SECTION_ALIGN.wrapping_sub(n & (SECTION_ALIGN - 1)) & (SECTION_ALIGN - 1)
}

/// The file name a channel file is published under: `C-00000291-<seq>.sys`
/// with the sequence zero-padded to 8 digits.
pub fn file_name(sequence: u64, out: &mut impl fmt::Write) -> fmt::Result {
    write!(out, "C-{:08}-{:08}.sys", CHANNEL_PIPES, sequence)
}

/// Parses a channel file name (`C-00000291-00000042.sys`, ASCII case-insensitive
/// extension) and returns its sequence number.
pub fn parse_file_name(name: &str) -> Option<u64> {
    let rest = name.strip_prefix("C-00000291-")?;
    let (digits, ext) = rest.split_at_checked(rest.find('.')?)?;
    if !ext.eq_ignore_ascii_case(".sys") || digits.len() < 8 || digits.len() > 20 {
        return None;
    }
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_round_trip() {
        struct S([u8; 64], usize);
        impl fmt::Write for S {
            fn write_str(&mut self, s: &str) -> fmt::Result {
                let end = self.1 + s.len();
                self.0
                    .get_mut(self.1..end)
                    .ok_or(fmt::Error)?
                    .copy_from_slice(s.as_bytes());
                self.1 = end;
                Ok(())
            }
        }
        let mut s = S([0; 64], 0);
        file_name(42, &mut s).unwrap();
        let name = core::str::from_utf8(&s.0[..s.1]).unwrap();
        assert_eq!(name, "C-00000291-00000042.sys");
        assert_eq!(parse_file_name(name), Some(42));
        assert_eq!(parse_file_name("C-00000291-00000042.SYS"), Some(42));
        assert_eq!(parse_file_name("C-00000291-0042.sys"), None);
        assert_eq!(parse_file_name("C-00000292-00000042.sys"), None);
        assert_eq!(parse_file_name("C-00000291-0000004x.sys"), None);
    }

    #[test]
    fn padding() {
        assert_eq!(padding_len(0), 0);
        assert_eq!(padding_len(1), 7);
        assert_eq!(padding_len(8), 0);
        assert_eq!(align_up(9), Some(16));
        assert_eq!(align_up(u32::MAX), None);
    }

    #[test]
    fn names() {
        assert_eq!(SectionKind::RULES.name(), Some("rules"));
        assert_eq!(SectionKind(99).name(), None);
        assert!(FieldId::PIPE_NAME.is_known());
        assert!(!FieldId(21).is_known());
    }
}
