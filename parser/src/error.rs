//! The error type of [`crate::parse`].

use channel_format::{header, FieldId, SectionKind};

/// Why a channel file was rejected.
///
/// Every variant is `Copy` and holds only integers and `&'static str` nouns,
/// so building an error never allocates. Where a byte offset is known it is an
/// offset from the start of the file ([`ParseError::offset`]).
///
/// Errors about malformed data are kept apart from
/// [`ParseError::LimitExceeded`], which says the file is well formed but
/// larger than the sensor accepts.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// The input ends before a structure that must be there.
    #[error("offset {offset}: truncated {what}: needs {needed} bytes, {available} available")]
    Truncated {
        /// Where the structure starts.
        offset: u32,
        /// What was being read.
        what: &'static str,
        /// Bytes needed.
        needed: u32,
        /// Bytes available.
        available: u32,
    },
    /// The file does not start with the channel-file magic.
    #[error("offset {at}: bad magic: not a pipe-sensor channel file", at = header::MAGIC.offset())]
    BadMagic,
    /// The endianness marker is not `0xFEFF` little-endian.
    #[error(
        "offset {at}: bad endianness marker {found:#06x} (expected {marker:#06x})",
        at = header::ENDIAN.offset(),
        marker = channel_format::ENDIAN_MARKER
    )]
    BadEndianness {
        /// The marker read.
        found: u16,
    },
    /// The major format version is not the one this parser reads.
    #[error(
        "offset {at}: unsupported format version {found} (this sensor reads version {expected})",
        at = header::FORMAT_MAJOR.offset()
    )]
    UnsupportedVersion {
        /// The version in the file.
        found: u16,
        /// The version this parser reads.
        expected: u16,
    },
    /// The header length is not the header's (64).
    #[error(
        "offset {at}: header length {found} (expected {len})",
        at = header::HEADER_LEN.offset(),
        len = header::LEN
    )]
    BadHeaderLen {
        /// The length in the file.
        found: u16,
    },
    /// The file is for another channel.
    #[error(
        "offset {at}: channel {found} (expected {channel})",
        at = header::CHANNEL.offset(),
        channel = channel_format::CHANNEL_PIPES
    )]
    WrongChannel {
        /// The channel in the file.
        found: u32,
    },
    /// A required flag unknown to this parser is set.
    #[error(
        "offset {at}: unknown required flags {flags:#x}: the file needs a newer sensor",
        at = header::REQUIRED_FLAGS.offset()
    )]
    UnknownRequiredFlags {
        /// The unknown bits.
        flags: u32,
    },
    /// The header's total length differs from the input length.
    #[error(
        "offset {at}: header says {header} bytes but the file has {actual}",
        at = header::TOTAL_LEN.offset()
    )]
    LengthMismatch {
        /// Length in the header.
        header: u32,
        /// Length of the input.
        actual: u32,
    },
    /// A reserved field or padding byte is not zero.
    #[error("offset {offset}: {what} must be zero")]
    NonZeroReserved {
        /// Where.
        offset: u32,
        /// Which field.
        what: &'static str,
    },
    /// A section lies (partly) outside the file or inside the header or table.
    #[error(
        "offset {offset}: section {index} ({kind}) at {section_offset}+{len} is out of bounds"
    )]
    SectionOutOfBounds {
        /// Offset of the section-table entry.
        offset: u32,
        /// Index in the section table.
        index: u32,
        /// Its kind.
        kind: SectionKind,
        /// Its offset.
        section_offset: u32,
        /// Its length.
        len: u32,
    },
    /// A section does not start at a multiple of `SECTION_ALIGN` (8).
    #[error(
        "offset {offset}: section {index} ({kind}) starts at {section_offset}, not a multiple of {align}",
        align = channel_format::SECTION_ALIGN
    )]
    SectionMisaligned {
        /// Offset of the section-table entry.
        offset: u32,
        /// Index in the section table.
        index: u32,
        /// Its kind.
        kind: SectionKind,
        /// Its offset.
        section_offset: u32,
    },
    /// Two sections share bytes.
    #[error("offset {offset}: section {first} and section {second} overlap")]
    SectionOverlap {
        /// Offset of the second section-table entry.
        offset: u32,
        /// Index of one section.
        first: u32,
        /// Index of the other.
        second: u32,
    },
    /// A section kind appears twice.
    #[error("offset {offset}: section {kind} appears twice")]
    DuplicateSection {
        /// Offset of the second entry.
        offset: u32,
        /// The kind.
        kind: SectionKind,
    },
    /// A required section is absent.
    #[error("section {kind} is missing")]
    MissingSection {
        /// The kind.
        kind: SectionKind,
    },
    /// A section this parser does not know is marked critical.
    #[error(
        "offset {offset}: unknown critical section kind {kind:?}: the file needs a newer sensor"
    )]
    UnknownCriticalSection {
        /// Offset of the entry.
        offset: u32,
        /// The kind.
        kind: SectionKind,
    },
    /// Unknown section flag bits.
    #[error("offset {offset}: section flags {flags:#x} have unknown bits")]
    BadSectionFlags {
        /// Offset of the entry.
        offset: u32,
        /// The flags.
        flags: u32,
    },
    /// A section's length is not what its contents need.
    #[error("offset {offset}: {what} section has length {len}, which {reason}")]
    BadSectionLen {
        /// Offset of the section.
        offset: u32,
        /// Which section.
        what: &'static str,
        /// Its length.
        len: u32,
        /// What is wrong.
        reason: &'static str,
    },
    /// A record field holds a value outside its domain.
    #[error("offset {offset}: {what} has invalid value {value}")]
    InvalidValue {
        /// Where the field is.
        offset: u32,
        /// Which field.
        what: &'static str,
        /// The value.
        value: u32,
    },
    /// A reference (string, range, index) points outside what it refers to.
    #[error("offset {offset}: {what} {value} is out of range (limit {bound})")]
    OutOfRange {
        /// Where the reference is.
        offset: u32,
        /// Which reference.
        what: &'static str,
        /// Its value.
        value: u32,
        /// The exclusive bound it must be under.
        bound: u32,
    },
    /// A string is not valid UTF-8.
    #[error("offset {offset}: {what} is not valid UTF-8")]
    InvalidUtf8 {
        /// Where the string starts.
        offset: u32,
        /// Which string.
        what: &'static str,
    },
    /// A literal is not in folded (simple upper-case) form.
    #[error("offset {offset}: {what} is not case-folded")]
    NotFolded {
        /// Where the string starts.
        offset: u32,
        /// Which string.
        what: &'static str,
    },
    /// Rule ids are not strictly increasing (a duplicate or out of order).
    #[error(
        "offset {offset}: rule id {id} is a duplicate or out of order (previous id {previous})"
    )]
    DuplicateRuleId {
        /// Where the rule record is.
        offset: u32,
        /// Its id.
        id: u32,
        /// The previous rule's id.
        previous: u32,
    },
    /// A field id appears twice in the schema or in one rule's field list.
    #[error("offset {offset}: field {field} listed twice")]
    DuplicateField {
        /// Where.
        offset: u32,
        /// The field.
        field: FieldId,
    },
    /// The schema declares a field whose type disagrees with the sensor's.
    #[error("offset {offset}: schema declares field {field} with type {found}, the sensor supplies type {expected}")]
    FieldTypeMismatch {
        /// Where.
        offset: u32,
        /// The field.
        field: FieldId,
        /// Type in the file.
        found: u8,
        /// Type the sensor supplies.
        expected: u8,
    },
    /// A rule reads a field the schema does not declare.
    #[error(
        "offset {offset}: rule {rule_id} reads field {field}, which the schema does not declare"
    )]
    FieldNotDeclared {
        /// Where.
        offset: u32,
        /// The rule's id.
        rule_id: u32,
        /// The field.
        field: FieldId,
    },
    /// A rule reads a field the sensor does not supply: the Channel File 291
    /// failure (a rule reading input field 21 of a sensor that supplies 20).
    #[error("offset {offset}: rule {rule_id} (index {rule_index}) reads field {field}, which this sensor does not supply")]
    FieldNotSupplied {
        /// Where the field reference is.
        offset: u32,
        /// The rule's id.
        rule_id: u32,
        /// The rule's index.
        rule_index: u32,
        /// The field.
        field: FieldId,
    },
    /// An atom tests a field its rule does not list, or a field of the wrong type.
    #[error("offset {offset}: atom {atom} of rule {rule_id} tests field {field}, {reason}")]
    BadAtomField {
        /// Where the atom is.
        offset: u32,
        /// The atom's index.
        atom: u32,
        /// Its rule's id.
        rule_id: u32,
        /// The field.
        field: FieldId,
        /// What is wrong.
        reason: &'static str,
    },
    /// A condition program is malformed.
    #[error("offset {offset}: condition of rule {rule_id}: {reason}")]
    BadProgram {
        /// Where the bad instruction is.
        offset: u32,
        /// The rule's id.
        rule_id: u32,
        /// What is wrong.
        reason: &'static str,
    },
    /// A rule's always-evaluate flag does not match its condition.
    #[error("offset {offset}: rule {rule_id} always-evaluate flag is {found}, its condition needs {expected}")]
    BadAlwaysFlag {
        /// Where the rule record is.
        offset: u32,
        /// The rule's id.
        rule_id: u32,
        /// The flag in the file.
        found: bool,
        /// The flag its condition needs.
        expected: bool,
    },
    /// The ALWAYS section does not list exactly the always-evaluate rules.
    #[error("offset {offset}: always list: {reason}")]
    BadAlwaysList {
        /// Where.
        offset: u32,
        /// What is wrong.
        reason: &'static str,
    },
    /// A prefilter automaton is malformed.
    #[error("offset {offset}: prefilter automaton: {reason}")]
    BadAutomaton {
        /// Where.
        offset: u32,
        /// What is wrong.
        reason: &'static str,
    },
    /// A serialized DFA failed regex-automata's validation.
    #[error("offset {offset}: DFA {index} is invalid")]
    InvalidDfa {
        /// Where the DFA starts.
        offset: u32,
        /// The DFA's index.
        index: u32,
    },
    /// The input buffer is not 4-byte aligned but the file holds DFAs, which
    /// are read in place. Copy the file into an aligned buffer.
    #[error("offset {offset}: DFA data is not 4-byte aligned in memory; copy the file into an aligned buffer")]
    Misaligned {
        /// Where the DFA section starts.
        offset: u32,
    },
    /// Well-formed but larger than allowed.
    #[error("offset {offset}: {what} is {found}, above the limit of {limit}")]
    LimitExceeded {
        /// Where.
        offset: u32,
        /// Which limit.
        what: &'static str,
        /// The value found.
        found: u32,
        /// The limit.
        limit: u32,
    },
    /// Arithmetic on values from the file overflowed.
    #[error("offset {offset}: arithmetic overflow computing {what}")]
    Overflow {
        /// Where.
        offset: u32,
        /// What was being computed.
        what: &'static str,
    },
}

impl ParseError {
    /// The byte offset the error refers to, when there is one.
    pub fn offset(&self) -> Option<u32> {
        use ParseError::*;
        match *self {
            BadMagic => Some(header::MAGIC.offset_u32()),
            BadEndianness { .. } => Some(header::ENDIAN.offset_u32()),
            UnsupportedVersion { .. } => Some(header::FORMAT_MAJOR.offset_u32()),
            BadHeaderLen { .. } => Some(header::HEADER_LEN.offset_u32()),
            WrongChannel { .. } => Some(header::CHANNEL.offset_u32()),
            UnknownRequiredFlags { .. } => Some(header::REQUIRED_FLAGS.offset_u32()),
            LengthMismatch { .. } => Some(header::TOTAL_LEN.offset_u32()),
            MissingSection { .. } => None,
            Truncated { offset, .. }
            | NonZeroReserved { offset, .. }
            | SectionOutOfBounds { offset, .. }
            | SectionMisaligned { offset, .. }
            | SectionOverlap { offset, .. }
            | DuplicateSection { offset, .. }
            | UnknownCriticalSection { offset, .. }
            | BadSectionFlags { offset, .. }
            | BadSectionLen { offset, .. }
            | InvalidValue { offset, .. }
            | OutOfRange { offset, .. }
            | InvalidUtf8 { offset, .. }
            | NotFolded { offset, .. }
            | DuplicateRuleId { offset, .. }
            | DuplicateField { offset, .. }
            | FieldTypeMismatch { offset, .. }
            | FieldNotDeclared { offset, .. }
            | FieldNotSupplied { offset, .. }
            | BadAtomField { offset, .. }
            | BadProgram { offset, .. }
            | BadAlwaysFlag { offset, .. }
            | BadAlwaysList { offset, .. }
            | BadAutomaton { offset, .. }
            | InvalidDfa { offset, .. }
            | Misaligned { offset }
            | LimitExceeded { offset, .. }
            | Overflow { offset, .. } => Some(offset),
        }
    }

    /// A short stable name of the variant (for logs and the driver's status).
    pub fn kind(&self) -> &'static str {
        use ParseError::*;
        match self {
            Truncated { .. } => "truncated",
            BadMagic => "bad-magic",
            BadEndianness { .. } => "bad-endianness",
            UnsupportedVersion { .. } => "unsupported-version",
            BadHeaderLen { .. } => "bad-header-len",
            WrongChannel { .. } => "wrong-channel",
            UnknownRequiredFlags { .. } => "unknown-required-flags",
            LengthMismatch { .. } => "length-mismatch",
            NonZeroReserved { .. } => "non-zero-reserved",
            SectionOutOfBounds { .. } => "section-out-of-bounds",
            SectionMisaligned { .. } => "section-misaligned",
            SectionOverlap { .. } => "section-overlap",
            DuplicateSection { .. } => "duplicate-section",
            MissingSection { .. } => "missing-section",
            UnknownCriticalSection { .. } => "unknown-critical-section",
            BadSectionFlags { .. } => "bad-section-flags",
            BadSectionLen { .. } => "bad-section-len",
            InvalidValue { .. } => "invalid-value",
            OutOfRange { .. } => "out-of-range",
            InvalidUtf8 { .. } => "invalid-utf8",
            NotFolded { .. } => "not-folded",
            DuplicateRuleId { .. } => "duplicate-rule-id",
            DuplicateField { .. } => "duplicate-field",
            FieldTypeMismatch { .. } => "field-type-mismatch",
            FieldNotDeclared { .. } => "field-not-declared",
            FieldNotSupplied { .. } => "field-not-supplied",
            BadAtomField { .. } => "bad-atom-field",
            BadProgram { .. } => "bad-program",
            BadAlwaysFlag { .. } => "bad-always-flag",
            BadAlwaysList { .. } => "bad-always-list",
            BadAutomaton { .. } => "bad-automaton",
            InvalidDfa { .. } => "invalid-dfa",
            Misaligned { .. } => "misaligned",
            LimitExceeded { .. } => "limit-exceeded",
            Overflow { .. } => "overflow",
        }
    }
}
