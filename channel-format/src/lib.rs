//! The binary layout of pipe-sensor channel files (`C-00000291-<seq>.sys`),
//! format version 1. `FORMAT.md` next to this crate specifies every byte; this
//! crate holds the same facts as constants so that the writer (`pipe-compiler`)
//! and the reader (`channel-parser`) cannot disagree.
//!
//! Everything is little-endian: the sensor runs on x86_64 and aarch64 Windows,
//! both little-endian, so a reader never swaps bytes. Fixed records are
//! described by `#[repr(C)]` structs made only of byte arrays (alignment 1),
//! whose sizes and field offsets are checked at compile time with
//! `static_assertions`. The reader never transmutes them: they document and pin
//! the offsets that it reads with bounds-checked little-endian loads.
//!
//! Newtypes over integers (`SectionKind`, `FieldId`, ...) keep unknown values
//! representable: whether an unknown value is skipped or rejected is the
//! parser's decision, written down in `FORMAT.md`.
#![no_std]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

use core::fmt;
use core::mem::{offset_of, size_of};
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

/// The fixed file header: 64 bytes at offset 0.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct RawHeader {
    /// [`MAGIC`].
    pub magic: [u8; 8],
    /// [`ENDIAN_MARKER`], little-endian.
    pub endian: [u8; 2],
    /// Header length in bytes: 64 in version 1.
    pub header_len: [u8; 2],
    /// Major format version: [`FORMAT_VERSION`].
    pub format_major: [u8; 2],
    /// Minor format version.
    pub format_minor: [u8; 2],
    /// Channel number: [`CHANNEL_PIPES`].
    pub channel: [u8; 4],
    /// Flags a reader must understand: an unknown set bit rejects the file.
    pub required_flags: [u8; 4],
    /// Content sequence number; larger is newer.
    pub sequence: [u8; 8],
    /// Length of the whole file in bytes.
    pub total_len: [u8; 4],
    /// Number of entries in the section table that follows the header.
    pub section_count: [u8; 4],
    /// Flags a reader may ignore.
    pub optional_flags: [u8; 4],
    /// Must be zero.
    pub reserved0: [u8; 4],
    /// Must be zero.
    pub reserved1: [u8; 16],
}
const_assert_eq!(size_of::<RawHeader>(), HEADER_LEN as usize);
const_assert_eq!(offset_of!(RawHeader, magic), 0);
const_assert_eq!(offset_of!(RawHeader, endian), 8);
const_assert_eq!(offset_of!(RawHeader, header_len), 10);
const_assert_eq!(offset_of!(RawHeader, format_major), 12);
const_assert_eq!(offset_of!(RawHeader, format_minor), 14);
const_assert_eq!(offset_of!(RawHeader, channel), 16);
const_assert_eq!(offset_of!(RawHeader, required_flags), 20);
const_assert_eq!(offset_of!(RawHeader, sequence), 24);
const_assert_eq!(offset_of!(RawHeader, total_len), 32);
const_assert_eq!(offset_of!(RawHeader, section_count), 36);
const_assert_eq!(offset_of!(RawHeader, optional_flags), 40);
const_assert_eq!(offset_of!(RawHeader, reserved0), 44);
const_assert_eq!(offset_of!(RawHeader, reserved1), 48);

/// Byte offsets of the header fields (the same numbers as the assertions above).
pub mod header {
    /// Offset of the magic.
    pub const MAGIC: usize = 0;
    /// Offset of the endianness marker.
    pub const ENDIAN: usize = 8;
    /// Offset of the header length.
    pub const HEADER_LEN: usize = 10;
    /// Offset of the major version.
    pub const FORMAT_MAJOR: usize = 12;
    /// Offset of the minor version.
    pub const FORMAT_MINOR: usize = 14;
    /// Offset of the channel number.
    pub const CHANNEL: usize = 16;
    /// Offset of the required flags.
    pub const REQUIRED_FLAGS: usize = 20;
    /// Offset of the sequence number.
    pub const SEQUENCE: usize = 24;
    /// Offset of the total length.
    pub const TOTAL_LEN: usize = 32;
    /// Offset of the section count.
    pub const SECTION_COUNT: usize = 36;
    /// Offset of the optional flags.
    pub const OPTIONAL_FLAGS: usize = 40;
    /// Offset of the first reserved word.
    pub const RESERVED0: usize = 44;
    /// Offset of the 16 reserved bytes.
    pub const RESERVED1: usize = 48;
}

/// Length of [`RawHeader`].
pub const HEADER_LEN: u16 = 64;

/// Required-flag bits known to format 1.0 (none yet). Any other bit set makes
/// a version-1.0 reader reject the file.
pub const KNOWN_REQUIRED_FLAGS: u32 = 0;
/// Optional flag: the file was produced for testing (inspect shows it).
pub const OPTIONAL_FLAG_TEST_CONTENT: u32 = 1;

/// One entry of the section table (16 bytes each, right after the header).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct RawSectionEntry {
    /// A [`SectionKind`].
    pub kind: [u8; 4],
    /// [`SECTION_FLAG_CRITICAL`] and reserved bits (must be zero).
    pub flags: [u8; 4],
    /// Offset from the start of the file; a multiple of [`SECTION_ALIGN`].
    pub offset: [u8; 4],
    /// Length in bytes.
    pub len: [u8; 4],
}
/// Length of [`RawSectionEntry`].
pub const SECTION_ENTRY_LEN: usize = 16;
const_assert_eq!(size_of::<RawSectionEntry>(), SECTION_ENTRY_LEN);
const_assert_eq!(offset_of!(RawSectionEntry, kind), 0);
const_assert_eq!(offset_of!(RawSectionEntry, flags), 4);
const_assert_eq!(offset_of!(RawSectionEntry, offset), 8);
const_assert_eq!(offset_of!(RawSectionEntry, len), 12);

/// Section flag: a reader that does not know this section kind must reject
/// the file. Without it an unknown section is skipped.
pub const SECTION_FLAG_CRITICAL: u32 = 1;

macro_rules! int_newtype {
    ($(#[$m:meta])* $name:ident($int:ty) { $($(#[$cm:meta])* $c:ident = $v:expr => $s:expr,)* }) => {
        $(#[$m])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(pub $int);
        impl $name {
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
    SectionKind(u32) {
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
        /// Staged-rollout policy (reserved: versioned, no policy defined yet).
        ROLLOUT = 10 => "rollout",
        /// Signature block (reserved: versioned, no signature defined yet).
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
    FieldId(u16) {
        /// The pipe name, as Sysmon reports it (`\name`), UTF-16 in the kernel.
        PIPE_NAME = 1 => "PipeName",
        /// The image path of the process creating or connecting to the pipe.
        IMAGE = 2 => "Image",
        /// The process id.
        PROCESS_ID = 3 => "ProcessId",
        /// The event kind: create (1) or connect (2).
        EVENT_KIND = 4 => "EventKind",
    }
}

int_newtype! {
    /// The type of an event field.
    FieldType(u8) {
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
            1 | 2 => Some(FieldType::STRING),
            3 | 4 => Some(FieldType::U32),
            _ => None,
        }
    }
}

int_newtype! {
    /// What a matching rule asks the sensor to do.
    Action(u8) {
        /// Report the event.
        ALERT = 0 => "alert",
        /// Report the event and, in enforce mode, deny the operation.
        BLOCK = 1 => "block",
    }
}

int_newtype! {
    /// Rule severity, as Sigma's `level`.
    Severity(u8) {
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
    AtomKind(u8) {
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

/// One rule record in the RULES section (32 bytes).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct RawRule {
    /// Rule id, unique in the file.
    pub id: [u8; 4],
    /// Offset of the name in STRINGS.
    pub name_off: [u8; 4],
    /// Length of the name in bytes.
    pub name_len: [u8; 4],
    /// Offset of the first field id in RULE_FIELDS (in entries).
    pub fields_start: [u8; 4],
    /// Number of field ids.
    pub fields_count: [u8; 2],
    /// A [`Severity`].
    pub severity: u8,
    /// An [`Action`].
    pub action: u8,
    /// Offset of the condition program in PROGRAMS.
    pub prog_off: [u8; 4],
    /// Length of the condition program in bytes.
    pub prog_len: [u8; 2],
    /// [`RULE_FLAG_ALWAYS`]; other bits must be zero.
    pub flags: [u8; 2],
    /// Index of the rule's first atom in ATOMS; its atoms are contiguous.
    pub atoms_start: [u8; 4],
}
/// Length of [`RawRule`].
pub const RULE_LEN: usize = 32;
const_assert_eq!(size_of::<RawRule>(), RULE_LEN);
const_assert_eq!(offset_of!(RawRule, id), 0);
const_assert_eq!(offset_of!(RawRule, name_off), 4);
const_assert_eq!(offset_of!(RawRule, name_len), 8);
const_assert_eq!(offset_of!(RawRule, fields_start), 12);
const_assert_eq!(offset_of!(RawRule, fields_count), 16);
const_assert_eq!(offset_of!(RawRule, severity), 18);
const_assert_eq!(offset_of!(RawRule, action), 19);
const_assert_eq!(offset_of!(RawRule, prog_off), 20);
const_assert_eq!(offset_of!(RawRule, prog_len), 24);
const_assert_eq!(offset_of!(RawRule, flags), 26);
const_assert_eq!(offset_of!(RawRule, atoms_start), 28);

/// Rule flag: the rule can match without any of its atoms being reported by
/// the prefilter, so the matcher evaluates it on every event. It is set
/// exactly when the rule's condition is not false under Kleene logic with
/// prefiltered atoms false and the others unknown (the parser recomputes it).
pub const RULE_FLAG_ALWAYS: u16 = 1;

/// One atom record in the ATOMS section (20 bytes).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct RawAtom {
    /// Index of the rule the atom belongs to.
    pub rule: [u8; 4],
    /// The [`FieldId`] it tests.
    pub field: [u8; 2],
    /// An [`AtomKind`].
    pub kind: u8,
    /// [`ATOM_FLAG_PREFILTERED`], [`ATOM_FLAG_CASE_INSENSITIVE`].
    pub flags: u8,
    /// Offset in STRINGS of the literal (folded) or of the pattern source.
    pub str_off: [u8; 4],
    /// Length of that string in bytes.
    pub str_len: [u8; 4],
    /// DFA index (GLOB, REGEX) or value (NUM_EQ); zero otherwise.
    pub arg: [u8; 4],
}
/// Length of [`RawAtom`].
pub const ATOM_LEN: usize = 20;
const_assert_eq!(size_of::<RawAtom>(), ATOM_LEN);
const_assert_eq!(offset_of!(RawAtom, rule), 0);
const_assert_eq!(offset_of!(RawAtom, field), 4);
const_assert_eq!(offset_of!(RawAtom, kind), 6);
const_assert_eq!(offset_of!(RawAtom, flags), 7);
const_assert_eq!(offset_of!(RawAtom, str_off), 8);
const_assert_eq!(offset_of!(RawAtom, str_len), 12);
const_assert_eq!(offset_of!(RawAtom, arg), 16);

/// Atom flag: a GLOB or REGEX atom whose DFA runs only when the prefilter
/// reported one of its required literals. Literal atoms always have it.
pub const ATOM_FLAG_PREFILTERED: u8 = 1;
/// Atom flag: a REGEX atom compiled case-insensitively (informational; the
/// DFA already encodes it).
pub const ATOM_FLAG_CASE_INSENSITIVE: u8 = 2;

/// One schema entry (4 bytes): a field the rules read and its type.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct RawSchemaEntry {
    /// A [`FieldId`].
    pub field: [u8; 2],
    /// A [`FieldType`].
    pub field_type: u8,
    /// Must be zero.
    pub reserved: u8,
}
/// Length of [`RawSchemaEntry`].
pub const SCHEMA_ENTRY_LEN: usize = 4;
const_assert_eq!(size_of::<RawSchemaEntry>(), SCHEMA_ENTRY_LEN);
const_assert_eq!(offset_of!(RawSchemaEntry, field), 0);
const_assert_eq!(offset_of!(RawSchemaEntry, field_type), 2);
const_assert_eq!(offset_of!(RawSchemaEntry, reserved), 3);

/// Header of one prefilter automaton inside PREFILTER (24 bytes). The
/// section is a u32 count of automata followed by that many automata, each
/// 8-aligned relative to the section start.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct RawAutomatonHeader {
    /// The string [`FieldId`] this automaton scans.
    pub field: [u8; 2],
    /// Must be zero.
    pub reserved: [u8; 2],
    /// Number of states `S` (at least 1: the root).
    pub state_count: [u8; 4],
    /// Number of trie edges: exactly `S - 1`.
    pub edge_count: [u8; 4],
    /// Number of output entries.
    pub output_count: [u8; 4],
    /// Must be zero.
    pub reserved2: [u8; 8],
}
/// Length of [`RawAutomatonHeader`].
pub const AUTOMATON_HEADER_LEN: usize = 24;
const_assert_eq!(size_of::<RawAutomatonHeader>(), AUTOMATON_HEADER_LEN);
const_assert_eq!(offset_of!(RawAutomatonHeader, field), 0);
const_assert_eq!(offset_of!(RawAutomatonHeader, state_count), 4);
const_assert_eq!(offset_of!(RawAutomatonHeader, edge_count), 8);
const_assert_eq!(offset_of!(RawAutomatonHeader, output_count), 12);

/// One automaton state (16 bytes). State 0 is the root; states are numbered
/// in breadth-first order of the trie.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct RawState {
    /// Index of the first outgoing edge; state `s`'s edges are
    /// `first_edge[s] .. first_edge[s+1]` (the last state ends at the edge count).
    pub first_edge: [u8; 4],
    /// Failure link.
    pub fail: [u8; 4],
    /// Dictionary-suffix link: the nearest state on the failure chain that has
    /// outputs, or 0 for none.
    pub dict: [u8; 4],
    /// Index of the first output; outputs run to the next state's.
    pub first_output: [u8; 4],
}
/// Length of [`RawState`].
pub const STATE_LEN: usize = 16;
const_assert_eq!(size_of::<RawState>(), STATE_LEN);
const_assert_eq!(offset_of!(RawState, first_edge), 0);
const_assert_eq!(offset_of!(RawState, fail), 4);
const_assert_eq!(offset_of!(RawState, dict), 8);
const_assert_eq!(offset_of!(RawState, first_output), 12);

/// Opcodes of the condition program (postfix). See FORMAT.md.
pub mod op {
    /// Push the truth of an atom: followed by a u32 LE atom index.
    pub const ATOM: u8 = 1;
    /// Pop two values, push their conjunction.
    pub const AND: u8 = 2;
    /// Pop two values, push their disjunction.
    pub const OR: u8 = 3;
    /// Pop one value, push its negation.
    pub const NOT: u8 = 4;
    /// Push true.
    pub const TRUE: u8 = 5;
    /// Push false.
    pub const FALSE: u8 = 6;
}

/// Version word at the start of the ROLLOUT section.
pub const ROLLOUT_VERSION: u32 = 1;
/// ROLLOUT flag: ring, percentage and not-before time are set.
pub const ROLLOUT_FLAG_POLICY: u32 = 1;
/// ROLLOUT flag: this file is a signed rollback instruction (see FORMAT.md).
pub const ROLLOUT_FLAG_ROLLBACK: u32 = 2;
/// Length of a ROLLOUT section with no flags.
pub const ROLLOUT_LEN_EMPTY: usize = 8;
/// Length of a ROLLOUT section with any flag.
pub const ROLLOUT_LEN: usize = 32;
/// Largest ROLLOUT percentage, in thousandths of a percent (100 %).
pub const ROLLOUT_PERCENT_MILLI_MAX: u32 = 100_000;

/// The ROLLOUT section's policy form (32 bytes).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct RawRollout {
    /// [`ROLLOUT_VERSION`].
    pub version: [u8; 4],
    /// [`ROLLOUT_FLAG_POLICY`], [`ROLLOUT_FLAG_ROLLBACK`].
    pub flags: [u8; 4],
    /// A [`Ring`].
    pub ring: u8,
    /// Zero.
    pub reserved: [u8; 3],
    /// Share of the ring's machines, in thousandths of a percent.
    pub percent_milli: [u8; 4],
    /// Not before this time (Unix seconds, UTC); 0 for no constraint.
    pub not_before: [u8; 8],
    /// Rollback instruction: adoptable on machines whose highest proven
    /// sequence is at most this, though this file's sequence is lower.
    pub rollback_ceiling: [u8; 8],
}
const_assert_eq!(size_of::<RawRollout>(), ROLLOUT_LEN);
const_assert_eq!(offset_of!(RawRollout, flags), 4);
const_assert_eq!(offset_of!(RawRollout, ring), 8);
const_assert_eq!(offset_of!(RawRollout, reserved), 9);
const_assert_eq!(offset_of!(RawRollout, percent_milli), 12);
const_assert_eq!(offset_of!(RawRollout, not_before), 16);
const_assert_eq!(offset_of!(RawRollout, rollback_ceiling), 24);

/// Version word at the start of the ENFORCEMENT section.
pub const ENFORCEMENT_VERSION: u32 = 1;
/// ENFORCEMENT flag: the monitor-first periods are set.
pub const ENFORCEMENT_FLAG_MONITOR_FIRST: u32 = 1;
/// ENFORCEMENT flag: the per-rule circuit breaker is set.
pub const ENFORCEMENT_FLAG_RULE_BREAKER: u32 = 2;
/// ENFORCEMENT flag: the machine-wide circuit breaker is set.
pub const ENFORCEMENT_FLAG_MACHINE_BREAKER: u32 = 4;
/// Length of the ENFORCEMENT section.
pub const ENFORCEMENT_LEN: usize = 40;
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

/// The ENFORCEMENT section (40 bytes): what the sensor does with the block
/// rules of this file once a machine adopts it. Fields of a flag that is not
/// set are zero.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct RawEnforcement {
    /// [`ENFORCEMENT_VERSION`].
    pub version: [u8; 4],
    /// [`ENFORCEMENT_FLAG_MONITOR_FIRST`], [`ENFORCEMENT_FLAG_RULE_BREAKER`],
    /// [`ENFORCEMENT_FLAG_MACHINE_BREAKER`].
    pub flags: [u8; 4],
    /// Monitor-first period of canary machines, seconds (MONITOR_FIRST).
    pub monitor_first_canary: [u8; 4],
    /// Monitor-first period of early machines, seconds (MONITOR_FIRST).
    pub monitor_first_early: [u8; 4],
    /// Monitor-first period of broad machines, seconds (MONITOR_FIRST).
    pub monitor_first_broad: [u8; 4],
    /// Denies per window a block rule may make (RULE_BREAKER).
    pub rule_denies: [u8; 4],
    /// The per-rule window, seconds (RULE_BREAKER).
    pub rule_window_secs: [u8; 4],
    /// Denies per window the machine may make (MACHINE_BREAKER).
    pub machine_denies: [u8; 4],
    /// The machine-wide window, seconds (MACHINE_BREAKER).
    pub machine_window_secs: [u8; 4],
    /// Zero.
    pub reserved: [u8; 4],
}
const_assert_eq!(size_of::<RawEnforcement>(), ENFORCEMENT_LEN);
const_assert_eq!(offset_of!(RawEnforcement, flags), 4);
const_assert_eq!(offset_of!(RawEnforcement, monitor_first_canary), 8);
const_assert_eq!(offset_of!(RawEnforcement, monitor_first_early), 12);
const_assert_eq!(offset_of!(RawEnforcement, monitor_first_broad), 16);
const_assert_eq!(offset_of!(RawEnforcement, rule_denies), 20);
const_assert_eq!(offset_of!(RawEnforcement, rule_window_secs), 24);
const_assert_eq!(offset_of!(RawEnforcement, machine_denies), 28);
const_assert_eq!(offset_of!(RawEnforcement, machine_window_secs), 32);
const_assert_eq!(offset_of!(RawEnforcement, reserved), 36);

int_newtype! {
    /// A staged-rollout ring.
    Ring(u8) {
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
    /// fixed-size scratch, see `channel_parser::Scratch`).
    pub max_atoms_per_rule: u32,
    /// Most atoms in the file: 1,000,000.
    pub max_atoms: u32,
    /// Longest condition program: 4,096 bytes.
    pub max_program_len: u32,
    /// Deepest evaluation stack: 64 (the evaluator's stack is one u64).
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
    match n.checked_add(SECTION_ALIGN - 1) {
        Some(v) => Some(v & !(SECTION_ALIGN - 1)),
        None => None,
    }
}

/// The padding after `n` bytes to reach the next [`SECTION_ALIGN`] boundary.
pub const fn padding_len(n: u32) -> u32 {
    (SECTION_ALIGN - (n % SECTION_ALIGN)) % SECTION_ALIGN
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
