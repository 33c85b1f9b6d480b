//! The binary layout of pipe-sensor channel files (`C-00000291-<seq>.sys`),
//! format version 2. `FORMAT.md` next to this crate specifies every byte; this
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
//!   class map, dense rows, index arrays, labels and depths),
//!   [`DfaLayout`] (a character-level DFA's classes and transitions) and
//!   the alignment constants.
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
/// own major version. Version 2 (the character-level DFAs, the dense/sparse
/// prefilter with gates) replaced version 1, whose files a version-2 reader
/// rejects with `UnsupportedVersion` naming the version.
pub const FORMAT_VERSION: u16 = 2;
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
        /// Character-level DFAs of regex atoms and their range tables.
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

/// Rule flag: the rule can match without any of its gates being reported by
/// the prefilter, so the matcher evaluates it on every event. It is set
/// exactly when the rule's condition is not false under Kleene logic with
/// its gates ([`ATOM_FLAG_GATE`]) false and the other atoms unknown (the
/// parser recomputes it).
pub const RULE_FLAG_ALWAYS: u16 = 1;

/// Length of an atom record ([`AtomRecord`]).
pub const ATOM_LEN: usize = atom::LEN;

/// Atom flag: the atom is an output of its field's prefilter automaton. A
/// literal atom is then decided by the scan alone; a GLOB or REGEX atom
/// runs its matcher only when the scan reported one of its required
/// literals. Without it, the matcher tests the atom directly.
pub const ATOM_FLAG_PREFILTERED: u8 = 1;
/// Atom flag: a REGEX atom compiled case-insensitively (informational; the
/// DFA already encodes it).
pub const ATOM_FLAG_CASE_INSENSITIVE: u8 = 2;
/// Atom flag: a gate. A PREFILTERED atom of a field scanned on every event
/// whose report makes its rule a candidate; its rule is ALWAYS exactly when
/// its condition is not false with all its gates false (the parser
/// recomputes it). Requires PREFILTERED and a field whose automaton is not
/// lazy.
pub const ATOM_FLAG_GATE: u8 = 4;

/// Length of a schema entry ([`SchemaRecord`]).
pub const SCHEMA_ENTRY_LEN: usize = schema::LEN;
/// Length of an automaton header ([`AutomatonRecord`]).
pub const AUTOMATON_HEADER_LEN: usize = automaton::LEN;

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

/// Every DFA and range table blob starts at a multiple of this many bytes
/// from the start of the DFAS section.
pub const DFA_ALIGN: u32 = 4;
/// Every prefilter automaton starts, and ends, at a multiple of this many
/// bytes from the start of the PREFILTER section.
pub const AUTOMATON_ALIGN: u32 = 8;

/// Length of the class map after an automaton header: one class per byte.
pub const AUTOMATON_CLASS_MAP_LEN: usize = 256;
/// Bit 31 of a dense transition: the target state has outputs or is not
/// dense (the matcher's hot loop leaves on it).
pub const DENSE_EXIT_FLAG: u32 = 1 << 31;
/// Bytes of one dense transition of an automaton (a `u32`).
pub const AUTOMATON_DENSE_ENTRY_LEN: u32 = 4;
/// Bytes of one entry of an automaton's index arrays (edge starts, failure
/// links, output starts, outputs): 2 with [`AUTOMATON_FLAG_NARROW`], else 4.
pub const fn automaton_index_len(narrow: bool) -> u32 {
    if narrow {
        2
    } else {
        4
    }
}
/// Automaton flag: the field is scanned only when a candidate rule reads
/// one of the automaton's atoms; none of its atoms is a gate.
pub const AUTOMATON_FLAG_LAZY: u32 = 1;
/// Automaton flag: the edge starts, failure links, output starts and
/// outputs are `u16` instead of `u32` (the writer's choice when every value
/// fits: up to 65,536 states and 65,535 outputs naming atoms below 65,536).
pub const AUTOMATON_FLAG_NARROW: u32 = 2;

/// Where the parts of one prefilter automaton lie, in bytes from the start
/// of its [`AutomatonRecord`] (FORMAT.md §10): the header, the class map
/// (256 bytes), the dense rows (`D × C` u32), the edge starts (`S + 1`),
/// the failure links (`S`), the output starts (`S + 1`), the outputs
/// (`O`) — these four u32, or u16 with [`AUTOMATON_FLAG_NARROW`] —, the
/// edge labels (`S − 1` class ids), the depths (`S` bytes) and zero padding
/// to [`AUTOMATON_ALIGN`]. The reader loads every value with bounds-checked
/// little-endian reads, so no part needs more alignment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AutomatonLayout {
    /// The 256-byte class map.
    pub classes: u32,
    /// `D × C` u32 dense transitions.
    pub dense: u32,
    /// `S + 1` edge starts.
    pub edge_start: u32,
    /// `S` failure links.
    pub fail: u32,
    /// `S + 1` output starts.
    pub out_start: u32,
    /// `O` outputs (atom indices).
    pub outputs: u32,
    /// `S − 1` edge labels (class ids).
    pub labels: u32,
    /// `S` depths.
    pub depths: u32,
    /// End of the depths (before the padding).
    pub depths_end: u32,
    /// Length of the whole automaton, padding included.
    pub end: u32,
}

impl AutomatonLayout {
    /// The layout of an automaton with `s` states, `d` dense states, `c`
    /// classes and `o` outputs, its index arrays `u16` when `narrow`;
    /// `None` when a part does not fit in a `u32`.
    pub const fn new(s: u32, d: u32, c: u32, o: u32, narrow: bool) -> Option<AutomatonLayout> {
        macro_rules! tri {
            ($e:expr) => {
                match $e {
                    Some(v) => v,
                    None => return None,
                }
            };
        }
        let w = automaton_index_len(narrow);
        let classes = automaton::LEN_U32;
        let dense = tri!(classes.checked_add(AUTOMATON_CLASS_MAP_LEN as u32));
        let edge_start = tri!(dense.checked_add(tri!(
            tri!(d.checked_mul(c)).checked_mul(AUTOMATON_DENSE_ENTRY_LEN)
        )));
        let fail = tri!(edge_start.checked_add(tri!(tri!(s.checked_add(1)).checked_mul(w))));
        let out_start = tri!(fail.checked_add(tri!(s.checked_mul(w))));
        let outputs = tri!(out_start.checked_add(tri!(tri!(s.checked_add(1)).checked_mul(w))));
        let labels = tri!(outputs.checked_add(tri!(o.checked_mul(w))));
        let depths = tri!(labels.checked_add(s.saturating_sub(1)));
        let depths_end = tri!(depths.checked_add(s));
        let end = tri!(align_to(depths_end, AUTOMATON_ALIGN));
        Some(AutomatonLayout {
            classes,
            dense,
            edge_start,
            fail,
            out_start,
            outputs,
            labels,
            depths,
            depths_end,
            end,
        })
    }
}

/// Constants of the character-level DFAs of regex atoms (DFAS section).
pub mod dfa {
    /// Header flag: transitions are 16-bit (more than 256 states); else 8-bit.
    pub const FLAG_WIDE: u8 = 1;
    /// Header flag: sparse rows (a default target and the classes that go
    /// elsewhere) instead of a full row per state.
    pub const FLAG_SPARSE: u8 = 2;
    /// Length of the ASCII class table that follows the header.
    pub const ASCII_LEN: usize = 128;
    /// The state in which no match is possible any more.
    pub const DEAD: u32 = 0;
    /// The state in which a match was found.
    pub const ACCEPT: u32 = 1;
    /// The state every search starts in.
    pub const START: u32 = 2;
    /// First code point of a range table (the ASCII table covers below).
    pub const FIRST_RANGE: u32 = 0x80;
    /// Most states (16-bit transitions).
    pub const MAX_STATES: u32 = 1 << 16;
    /// Most classes (8-bit class ids).
    pub const MAX_CLASSES: u32 = 256;
    /// Bytes of one sparse row offset (a `u16`).
    pub const ROW_OFFSET_LEN: u32 = 2;
    /// Bytes of one range table entry (a `u32`: first code point << 8 |
    /// local class).
    pub const RANGE_ENTRY_LEN: u32 = 4;
    /// Bytes of one transition target: 2 with [`FLAG_WIDE`], else 1.
    pub const fn target_len(wide: bool) -> u32 {
        if wide {
            2
        } else {
            1
        }
    }
}

/// Offsets inside a DFA blob ([`DfaRecord`]) of `n` states, `k` classes, a
/// range table of `l` local classes and, for sparse rows, `sparse` bytes of
/// rows (FORMAT.md §11): the header, the ASCII classes (128 bytes), the
/// local-class map (`l` bytes), the transitions — dense rows (`(N − 2) × K`
/// entries of `width` bytes), or `N − 2` u16 row offsets then the sparse
/// rows —, the end-of-input bits (`ceil(N / 8)` bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DfaLayout {
    /// The ASCII class table.
    pub ascii: u32,
    /// The local-class map.
    pub remap: u32,
    /// The transitions (dense rows, or the sparse row offsets).
    pub trans: u32,
    /// The sparse rows (equal to `eoi` for dense rows).
    pub rows: u32,
    /// The end-of-input bits.
    pub eoi: u32,
    /// Total length.
    pub len: u32,
    /// Bytes per transition (1 or 2).
    pub width: u32,
}

/// See [`DfaLayout`]; `None` on overflow or fewer than 3 states.
pub const fn dfa_layout(n: u32, k: u32, l: u32, sparse: Option<u32>) -> Option<DfaLayout> {
    macro_rules! tri {
        ($e:expr) => {
            match $e {
                Some(v) => v,
                None => return None,
            }
        };
    }
    if n < 3 {
        return None;
    }
    let width = dfa::target_len(n > 256);
    let ascii = dfa_header::LEN_U32;
    let remap = tri!(ascii.checked_add(dfa::ASCII_LEN as u32));
    let trans = tri!(remap.checked_add(l));
    let (rows, eoi) = match sparse {
        Some(len) => {
            let rows =
                tri!(trans
                    .checked_add(tri!(tri!(n.checked_sub(2)).checked_mul(dfa::ROW_OFFSET_LEN))));
            (rows, tri!(rows.checked_add(len)))
        }
        None => {
            let eoi = tri!(trans.checked_add(tri!(
                tri!(tri!(n.checked_sub(2)).checked_mul(k)).checked_mul(width)
            )));
            (eoi, eoi)
        }
    };
    let len = tri!(eoi.checked_add(n.div_ceil(8)));
    Some(DfaLayout {
        ascii,
        remap,
        trans,
        rows,
        eoi,
        len,
        width,
    })
}

/// Total length of a DFA blob (see [`dfa_layout`]).
pub const fn dfa_blob_len(n: u32, k: u32, l: u32, sparse: Option<u32>) -> Option<usize> {
    match dfa_layout(n, k, l, sparse) {
        Some(l) => Some(l.len as usize),
        None => None,
    }
}

/// Length of a range table ([`RangeTableRecord`] and `r` u32 entries);
/// `None` on overflow.
pub const fn range_table_len(r: u32) -> Option<u32> {
    match r.checked_mul(dfa::RANGE_ENTRY_LEN) {
        Some(v) => v.checked_add(range_table::LEN_U32),
        None => None,
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
    /// Largest single DFA: 64 KiB (the compiler reports the rule that grows
    /// beyond it). Character DFAs of real rules take a few hundred bytes.
    pub max_dfa_len: u32,
    /// Largest total of all DFAs and range tables in a file: 1 MiB, so that
    /// regexes cannot crowd out the rest of a content's memory (the compiler
    /// names the largest DFAs when a rule set goes over it).
    pub max_dfa_total: u32,
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
        max_dfa_len: 64 << 10,
        max_dfa_total: 1 << 20,
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
