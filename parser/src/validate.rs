//! [`parse`]: the validating entry point. Checks run in a fixed order, each
//! relying only on what earlier checks established:
//!
//! 1. size limit, header (magic, endianness, versions, channel, flags, length);
//! 2. section table: bounds, alignment, overlap, duplicates, unknown kinds,
//!    required sections present, every byte outside the sections zero;
//! 3. SCHEMA (fields, types) and record-section lengths;
//! 4. DFAS (regex-automata's validating `from_bytes`, exact lengths);
//! 5. RULES with their fields, atoms and condition programs, in rule order;
//! 6. PREFILTER automata (which reference atoms validated in 5);
//! 7. ALWAYS (which must list exactly the rules flagged in 5);
//! 8. ROLLOUT and SIGNATURE version words; the ENFORCEMENT policy.

use crate::view::{prefilter_slot, Automaton, ChannelFile, Header, PREFILTER_SLOTS};
use crate::wire::{add, mul, Region};
use crate::{Capabilities, ParseError};
use channel_format::{
    self as fmt, always, atom, automaton, dfa_entry, dfa_table, enforcement, output, prefilter,
    rollout, rule, rule_field, schema, section, signature, state, AtomKind, FieldId, FieldType,
    Limits, SectionKind,
};

const HEADER_LEN: u32 = fmt::header::LEN_U32;
const MAX_KIND: usize = 13;

/// Validates `bytes` as a channel file for a sensor with `caps`, with the
/// default [`Limits`].
///
/// # Errors
/// Returns the first problem found, with its byte offset. No error is
/// returned exactly when every check listed in FORMAT.md ("Validation")
/// passes.
///
/// # Panics
/// Never panics, for any input.
///
/// # Cost
/// Allocates nothing. Time is linear in the file length (each byte is
/// visited a bounded number of times) plus regex-automata's DFA validation,
/// itself linear in the DFA sizes.
pub fn parse<'a>(bytes: &'a [u8], caps: &Capabilities) -> Result<ChannelFile<'a>, ParseError> {
    parse_with_limits(bytes, caps, &Limits::DEFAULT)
}

/// [`parse`] with explicit limits (stricter ones for tests and tools).
///
/// # Errors
/// As [`parse`], and [`ParseError::LimitExceeded`] for anything over `limits`.
///
/// # Panics
/// Never panics, for any input.
pub fn parse_with_limits<'a>(
    bytes: &'a [u8],
    caps: &Capabilities,
    limits: &Limits,
) -> Result<ChannelFile<'a>, ParseError> {
    let (header, sections) = frame_checks(bytes, limits)?;

    let get = |kind: SectionKind| -> Result<Region<'a>, ParseError> {
        sections
            .get(kind.0 as usize)
            .copied()
            .flatten()
            .ok_or(ParseError::MissingSection { kind })
    };
    let schema = get(SectionKind::SCHEMA)?;
    let rules = get(SectionKind::RULES)?;
    let rule_fields = get(SectionKind::RULE_FIELDS)?;
    let atoms = get(SectionKind::ATOMS)?;
    let programs = get(SectionKind::PROGRAMS)?;
    let strings = get(SectionKind::STRINGS)?;
    let prefilter = get(SectionKind::PREFILTER)?;
    let dfas = get(SectionKind::DFAS)?;
    let always = get(SectionKind::ALWAYS)?;

    let schema_mask = parse_schema(schema, caps)?;
    let rule_count = record_count(
        rules,
        rule::LEN_U32,
        "rules",
        "is not a multiple of the 32-byte rule record",
    )?;
    check_limit(rules.offset, "rule count", rule_count, limits.max_rules)?;
    let atom_count = record_count(
        atoms,
        atom::LEN_U32,
        "atoms",
        "is not a multiple of the 20-byte atom record",
    )?;
    check_limit(atoms.offset, "atom count", atom_count, limits.max_atoms)?;
    record_count(rule_fields, rule_field::LEN_U32, "rule-fields", "is odd")?;
    let always_count = record_count(always, always::LEN_U32, "always", "is not a multiple of 4")?;
    let dfa_count = parse_dfas(bytes, dfas, limits)?;

    let mut cf = ChannelFile {
        bytes,
        header,
        rules,
        rule_fields,
        atoms,
        programs,
        strings,
        dfas,
        always,
        rule_count,
        atom_count,
        dfa_count,
        always_count,
        automata: [Automaton::EMPTY; PREFILTER_SLOTS],
        read_fields: 0,
        rollout: None,
        enforcement: None,
    };
    let (flagged, read_fields) = parse_rules(&cf, caps, schema_mask, limits)?;
    cf.read_fields = read_fields;
    cf.automata = parse_prefilter(&cf, prefilter, schema_mask, limits)?;
    parse_always(&cf, flagged)?;
    if let Some(Some(r)) = sections.get(SectionKind::SIGNATURE.0 as usize) {
        let v = r.get(signature::VERSION, "signature section version")?;
        if v != fmt::SIGNATURE_VERSION {
            return Err(ParseError::InvalidValue {
                offset: r.offset,
                what: "signature section version",
                value: v,
            });
        }
    }
    if let Some(Some(r)) = sections.get(SectionKind::ROLLOUT.0 as usize) {
        cf.rollout = parse_rollout(*r)?;
    }
    if let Some(Some(r)) = sections.get(SectionKind::ENFORCEMENT.0 as usize) {
        cf.enforcement = Some(parse_enforcement(*r)?);
    }
    Ok(cf)
}

/// ENFORCEMENT: version 1, exactly 40 bytes, known flags, each set part
/// within the format's bounds, the fields of unset parts and the reserved
/// word zero (FORMAT.md §15).
fn parse_enforcement(r: Region<'_>) -> Result<crate::EnforcementPolicy, ParseError> {
    use enforcement as e;
    let v = r.get(e::VERSION, "enforcement version")?;
    if v != fmt::ENFORCEMENT_VERSION {
        return Err(ParseError::InvalidValue {
            offset: r.offset,
            what: "enforcement version",
            value: v,
        });
    }
    if r.len() != e::LEN_U32 {
        return Err(ParseError::BadSectionLen {
            offset: r.offset,
            what: "enforcement",
            len: r.len(),
            reason: "is not 40 bytes",
        });
    }
    let flags = r.get(e::FLAGS, "enforcement flags")?;
    let known = fmt::ENFORCEMENT_FLAG_MONITOR_FIRST
        | fmt::ENFORCEMENT_FLAG_RULE_BREAKER
        | fmt::ENFORCEMENT_FLAG_MACHINE_BREAKER;
    if flags & !known != 0 {
        return Err(ParseError::InvalidValue {
            offset: r.at_field(e::FLAGS),
            what: "enforcement flags",
            value: flags,
        });
    }
    r.field_bytes(e::RESERVED, "enforcement reserved")?
        .check_zero("enforcement reserved word")?;
    // A value of a part: within [lo, hi] when the part's flag is set, zero
    // when it is clear.
    let value = |flag: u32,
                 f: fmt::Field<u32>,
                 what: &'static str,
                 unset: &'static str,
                 lo: u32,
                 hi: u32|
     -> Result<Option<u32>, ParseError> {
        let v = r.get(f, what)?;
        if flags & flag == 0 {
            if v != 0 {
                return Err(ParseError::NonZeroReserved {
                    offset: r.at_field(f),
                    what: unset,
                });
            }
            return Ok(None);
        }
        if v < lo || v > hi {
            return Err(ParseError::InvalidValue {
                offset: r.at_field(f),
                what,
                value: v,
            });
        }
        Ok(Some(v))
    };
    let mf = |f| {
        value(
            fmt::ENFORCEMENT_FLAG_MONITOR_FIRST,
            f,
            "monitor-first period (seconds, at most 2592000)",
            "monitor-first period without the monitor-first flag",
            0,
            fmt::MAX_MONITOR_FIRST_SECS,
        )
    };
    let (canary, early, broad) = (
        mf(e::MONITOR_FIRST_CANARY)?,
        mf(e::MONITOR_FIRST_EARLY)?,
        mf(e::MONITOR_FIRST_BROAD)?,
    );
    let monitor_first = match (canary, early, broad) {
        (Some(c), Some(e), Some(b)) => Some([c, e, b]),
        _ => None,
    };
    let window = "breaker window (seconds, 1 to 86400)";
    let limit = |flag, denies, window_f, denies_what, unset, max| -> Result<_, ParseError> {
        let d = value(flag, denies, denies_what, unset, 1, max)?;
        let w = value(
            flag,
            window_f,
            window,
            unset,
            1,
            fmt::MAX_BREAKER_WINDOW_SECS,
        )?;
        Ok(d.zip(w).map(|(denies, window_secs)| crate::BreakerLimit {
            denies,
            window_secs,
        }))
    };
    let rule_breaker = limit(
        fmt::ENFORCEMENT_FLAG_RULE_BREAKER,
        e::RULE_DENIES,
        e::RULE_WINDOW_SECS,
        "rule breaker denies (1 to 1000)",
        "rule breaker without the rule-breaker flag",
        fmt::MAX_RULE_BREAKER_DENIES,
    )?;
    let machine_breaker = limit(
        fmt::ENFORCEMENT_FLAG_MACHINE_BREAKER,
        e::MACHINE_DENIES,
        e::MACHINE_WINDOW_SECS,
        "machine breaker denies (1 to 10000)",
        "machine breaker without the machine-breaker flag",
        fmt::MAX_MACHINE_BREAKER_DENIES,
    )?;
    Ok(crate::EnforcementPolicy {
        monitor_first,
        rule_breaker,
        machine_breaker,
    })
}

/// ROLLOUT: version 1; 8 bytes with no flags, or 32 bytes with a policy
/// and/or a rollback ceiling (FORMAT.md §13).
fn parse_rollout(r: Region<'_>) -> Result<Option<crate::RolloutPolicy>, ParseError> {
    let v = r.get(rollout::VERSION, "rollout version")?;
    if v != fmt::ROLLOUT_VERSION {
        return Err(ParseError::InvalidValue {
            offset: r.offset,
            what: "rollout version",
            value: v,
        });
    }
    let flags = r.get(rollout::FLAGS, "rollout flags")?;
    let known = fmt::ROLLOUT_FLAG_POLICY | fmt::ROLLOUT_FLAG_ROLLBACK;
    if flags & !known != 0 {
        return Err(ParseError::InvalidValue {
            offset: r.at_field(rollout::FLAGS),
            what: "rollout flags",
            value: flags,
        });
    }
    let want_len = if flags == 0 {
        fmt::ROLLOUT_LEN_EMPTY
    } else {
        fmt::ROLLOUT_LEN
    } as u32;
    if r.len() != want_len {
        return Err(ParseError::BadSectionLen {
            offset: r.offset,
            what: "rollout",
            len: r.len(),
            reason: "is not 8 bytes (no flags) or 32 bytes (flags set)",
        });
    }
    if flags == 0 {
        return Ok(None);
    }
    let ring = fmt::Ring(r.get(rollout::RING, "rollout ring")?);
    if !ring.is_known() {
        return Err(ParseError::InvalidValue {
            offset: r.at_field(rollout::RING),
            what: "rollout ring",
            value: u32::from(ring.0),
        });
    }
    r.field_bytes(rollout::RESERVED, "rollout reserved")?
        .check_zero("rollout reserved bytes")?;
    let percent_milli = r.get(rollout::PERCENT_MILLI, "rollout percentage")?;
    if percent_milli > fmt::ROLLOUT_PERCENT_MILLI_MAX {
        return Err(ParseError::InvalidValue {
            offset: r.at_field(rollout::PERCENT_MILLI),
            what: "rollout percentage (thousandths, at most 100000)",
            value: percent_milli,
        });
    }
    let not_before = r.get(rollout::NOT_BEFORE, "rollout not-before")?;
    let ceiling = r.get(rollout::ROLLBACK_CEILING, "rollback ceiling")?;
    let policy = flags & fmt::ROLLOUT_FLAG_POLICY != 0;
    let rollback = flags & fmt::ROLLOUT_FLAG_ROLLBACK != 0;
    if !policy && (ring.0 != 0 || percent_milli != 0 || not_before != 0) {
        return Err(ParseError::NonZeroReserved {
            offset: r.at_field(rollout::RING),
            what: "rollout policy fields without the policy flag",
        });
    }
    if !rollback && ceiling != 0 {
        return Err(ParseError::NonZeroReserved {
            offset: r.at_field(rollout::ROLLBACK_CEILING),
            what: "rollback ceiling without the rollback flag",
        });
    }
    Ok(Some(crate::RolloutPolicy {
        staged: policy.then_some(crate::Staging {
            ring,
            percent_milli,
            not_before,
        }),
        rollback_ceiling: rollback.then_some(ceiling),
    }))
}

/// The validated frame of a file: header and section table, nothing else.
///
/// [`parse_frame`] is what a signature check runs first: it establishes where
/// the sections are without trusting anything inside them.
#[derive(Debug, Clone, Copy)]
pub struct Frame<'a> {
    bytes: &'a [u8],
    header: Header,
    sections: [Option<(u32, u32)>; MAX_KIND],
}

impl<'a> Frame<'a> {
    /// The header.
    pub fn header(&self) -> Header {
        self.header
    }
    /// The whole file.
    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }
    /// Offset and length of a known section, if present.
    pub fn section(&self, kind: SectionKind) -> Option<(u32, u32)> {
        self.sections.get(kind.0 as usize).copied().flatten()
    }
    /// The bytes of a known section, if present.
    pub fn section_bytes(&self, kind: SectionKind) -> Option<&'a [u8]> {
        let (off, len) = self.section(kind)?;
        self.bytes
            .get(off as usize..(off as usize).checked_add(len as usize)?)
    }
}

/// Validates only the size, the header and the section table (bounds,
/// alignment, overlap, duplicates, unknown critical kinds, required sections,
/// zero gaps) with the default [`Limits`]. Constant work per section entry
/// plus one pass over the gaps; no section content is read.
///
/// # Errors
/// As [`parse`] for those checks.
///
/// # Panics
/// Never panics, for any input.
pub fn parse_frame(bytes: &[u8]) -> Result<Frame<'_>, ParseError> {
    let (header, sections) = frame_checks(bytes, &Limits::DEFAULT)?;
    let mut out = [None; MAX_KIND];
    for (slot, s) in out.iter_mut().zip(sections.iter()) {
        *slot = s.map(|r| (r.offset, r.len()));
    }
    Ok(Frame {
        bytes,
        header,
        sections: out,
    })
}

/// Steps 1 and 2 of validation (size limit, header, section table), shared
/// by [`parse_with_limits`] and [`parse_frame`].
fn frame_checks<'a>(
    bytes: &'a [u8],
    limits: &Limits,
) -> Result<(Header, Sections<'a>), ParseError> {
    let file_len = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
    if file_len > limits.max_file_len {
        return Err(ParseError::LimitExceeded {
            offset: 0,
            what: "file length",
            found: file_len,
            limit: limits.max_file_len,
        });
    }
    let file = Region { bytes, offset: 0 };
    let header = parse_header(file, file_len, limits)?;
    let sections = parse_section_table(file, &header)?;
    Ok((header, sections))
}

fn check_limit(offset: u32, what: &'static str, found: u32, limit: u32) -> Result<(), ParseError> {
    if found > limit {
        Err(ParseError::LimitExceeded {
            offset,
            what,
            found,
            limit,
        })
    } else {
        Ok(())
    }
}

fn record_count(
    r: Region<'_>,
    size: u32,
    what: &'static str,
    reason: &'static str,
) -> Result<u32, ParseError> {
    match (r.len().checked_rem(size), r.len().checked_div(size)) {
        (Some(0), Some(n)) => Ok(n),
        _ => Err(ParseError::BadSectionLen {
            offset: r.offset,
            what,
            len: r.len(),
            reason,
        }),
    }
}

fn parse_header(file: Region<'_>, file_len: u32, limits: &Limits) -> Result<Header, ParseError> {
    use fmt::header as h;
    let hdr = file.sub(0, HEADER_LEN, "header")?;
    if h::MAGIC.get(hdr.bytes) != Some(fmt::MAGIC) {
        return Err(ParseError::BadMagic);
    }
    let endian = hdr.get(h::ENDIAN, "endianness marker")?;
    if endian != fmt::ENDIAN_MARKER {
        return Err(ParseError::BadEndianness { found: endian });
    }
    let header_len = hdr.get(h::HEADER_LEN, "header length")?;
    if header_len != fmt::HEADER_LEN {
        return Err(ParseError::BadHeaderLen { found: header_len });
    }
    let format_major = hdr.get(h::FORMAT_MAJOR, "format version")?;
    if format_major != fmt::FORMAT_VERSION {
        return Err(ParseError::UnsupportedVersion {
            found: format_major,
            expected: fmt::FORMAT_VERSION,
        });
    }
    let format_minor = hdr.get(h::FORMAT_MINOR, "minor version")?;
    let channel = hdr.get(h::CHANNEL, "channel")?;
    if channel != fmt::CHANNEL_PIPES {
        return Err(ParseError::WrongChannel { found: channel });
    }
    let required_flags = hdr.get(h::REQUIRED_FLAGS, "required flags")?;
    if required_flags & !fmt::KNOWN_REQUIRED_FLAGS != 0 {
        return Err(ParseError::UnknownRequiredFlags {
            flags: required_flags & !fmt::KNOWN_REQUIRED_FLAGS,
        });
    }
    let sequence = hdr.get(h::SEQUENCE, "sequence")?;
    let total_len = hdr.get(h::TOTAL_LEN, "total length")?;
    if total_len != file_len {
        return Err(ParseError::LengthMismatch {
            header: total_len,
            actual: file_len,
        });
    }
    let section_count = hdr.get(h::SECTION_COUNT, "section count")?;
    check_limit(
        h::SECTION_COUNT.offset_u32(),
        "section count",
        section_count,
        limits.max_sections,
    )?;
    let optional_flags = hdr.get(h::OPTIONAL_FLAGS, "optional flags")?;
    hdr.field_bytes(h::RESERVED, "reserved header bytes")?
        .check_zero("reserved header bytes")?;
    Ok(Header {
        format_major,
        format_minor,
        channel,
        required_flags,
        optional_flags,
        sequence,
        total_len,
        section_count,
    })
}

/// Known sections by kind (index = kind), after checking the whole table.
type Sections<'a> = [Option<Region<'a>>; MAX_KIND];

fn parse_section_table<'a>(file: Region<'a>, header: &Header) -> Result<Sections<'a>, ParseError> {
    let table_len = mul(
        header.section_count,
        section::LEN_U32,
        HEADER_LEN,
        "section table length",
    )?;
    let table = file.sub(HEADER_LEN, table_len, "section table")?;
    let table_end = add(HEADER_LEN, table_len, HEADER_LEN, "section table end")?;
    let mut out: Sections<'a> = [None; MAX_KIND];
    // Every covered range, to check overlaps and that the gaps are zero.
    let mut ranges = [(0u32, 0u32, 0u32); 33];
    let mut n = 0usize;
    for i in 0..header.section_count {
        let entry_off = table.at(mul(i, section::LEN_U32, table.offset, "section entry")?);
        let e = table.record(i, section::LEN, "section entry")?;
        let kind = SectionKind(e.get(section::KIND, "section kind")?);
        let flags = e.get(section::FLAGS, "section flags")?;
        let offset = e.get(section::OFFSET, "section offset")?;
        let len = e.get(section::LENGTH, "section length")?;
        if flags & !fmt::SECTION_FLAG_CRITICAL != 0 {
            return Err(ParseError::BadSectionFlags {
                offset: entry_off,
                flags,
            });
        }
        if !offset.is_multiple_of(fmt::SECTION_ALIGN) {
            return Err(ParseError::SectionMisaligned {
                offset: entry_off,
                index: i,
                kind,
                section_offset: offset,
            });
        }
        let end = offset.checked_add(len);
        let in_bounds = matches!(end, Some(end) if end <= header.total_len) && offset >= table_end;
        if !in_bounds {
            return Err(ParseError::SectionOutOfBounds {
                offset: entry_off,
                index: i,
                kind,
                section_offset: offset,
                len,
            });
        }
        let end = offset.saturating_add(len);
        for &(other_start, other_end, other_index) in ranges.get(..n).unwrap_or(&[]) {
            if offset < other_end && other_start < end {
                return Err(ParseError::SectionOverlap {
                    offset: entry_off,
                    first: other_index,
                    second: i,
                });
            }
        }
        if let Some(slot) = ranges.get_mut(n) {
            *slot = (offset, end, i);
            n = n.saturating_add(1);
        }
        let region = file.sub(offset, len, "section")?;
        if kind.is_known() {
            match out.get_mut(kind.0 as usize) {
                Some(slot @ None) => *slot = Some(region),
                _ => {
                    return Err(ParseError::DuplicateSection {
                        offset: entry_off,
                        kind,
                    })
                }
            }
        } else if flags & fmt::SECTION_FLAG_CRITICAL != 0 {
            return Err(ParseError::UnknownCriticalSection {
                offset: entry_off,
                kind,
            });
        }
    }
    for kind in fmt::REQUIRED_SECTIONS {
        if out.get(kind.0 as usize).copied().flatten().is_none() {
            return Err(ParseError::MissingSection { kind });
        }
    }
    // Bytes outside the header, the table and the sections must be zero.
    let used = ranges.get_mut(..n).unwrap_or(&mut []);
    // Insertion sort (at most 32 entries): core's sort keeps a panic path
    // for inconsistent `Ord` impls that the optimiser cannot remove, and the
    // panic-free proof (scripts/panic-free.sh) must link without it.
    for i in 1..used.len() {
        let mut j = i;
        while j > 0 {
            let k = j.wrapping_sub(1);
            match (used.get(k), used.get(j)) {
                (Some(a), Some(b)) if a > b => used.swap(k, j),
                _ => break,
            }
            j = k;
        }
    }
    let mut pos = table_end;
    for &(start, end, _) in used.iter() {
        file.sub(pos, start.saturating_sub(pos), "padding")?
            .check_zero("padding between sections")?;
        pos = pos.max(end);
    }
    file.sub(pos, header.total_len.saturating_sub(pos), "padding")?
        .check_zero("padding after the last section")?;
    Ok(out)
}

/// Returns the schema as a bit mask of field ids.
fn parse_schema(sec: Region<'_>, caps: &Capabilities) -> Result<u64, ParseError> {
    let count = record_count(
        sec,
        schema::LEN_U32,
        "schema",
        "is not a multiple of the 4-byte schema entry",
    )?;
    let mut mask = 0u64;
    for i in 0..count {
        let e = sec.record(i, schema::LEN, "schema entry")?;
        let field = FieldId(e.get(schema::FIELD, "schema field")?);
        let ty = e.get(schema::FIELD_TYPE, "schema field type")?;
        if e.get(schema::RESERVED, "schema reserved")? != 0 {
            return Err(ParseError::NonZeroReserved {
                offset: e.at_field(schema::RESERVED),
                what: "schema entry reserved byte",
            });
        }
        // A field the sensor does not supply is reported where a rule reads
        // it (naming the rule); here only the type of supplied fields matters.
        if caps.supplies(field) {
            let expected = field.field_type().unwrap_or(FieldType(0));
            if ty != expected.0 {
                return Err(ParseError::FieldTypeMismatch {
                    offset: e.offset,
                    field,
                    found: ty,
                    expected: expected.0,
                });
            }
        } else if !FieldType(ty).is_known() {
            return Err(ParseError::InvalidValue {
                offset: e.at_field(schema::FIELD_TYPE),
                what: "schema field type",
                value: u32::from(ty),
            });
        }
        if field.0 >= 64 {
            // Unknown and unsuppliable: recorded as "declared" by a marker bit so
            // the rule check below reports FieldNotSupplied for it.
            mask |= 1;
            continue;
        }
        let bit = 1u64 << field.0;
        if mask & bit != 0 {
            return Err(ParseError::DuplicateField {
                offset: e.offset,
                field,
            });
        }
        mask |= bit;
    }
    Ok(mask)
}

fn declared(schema_mask: u64, field: FieldId) -> bool {
    if field.0 >= 64 {
        schema_mask & 1 == 1
    } else {
        (schema_mask >> field.0) & 1 == 1
    }
}

fn parse_dfas(bytes: &[u8], dfas: Region<'_>, limits: &Limits) -> Result<u32, ParseError> {
    let count = dfas.get(dfa_table::COUNT, "DFA count")?;
    check_limit(dfas.offset, "DFA count", count, limits.max_dfas)?;
    if dfas.get(dfa_table::RESERVED, "DFA reserved")? != 0 {
        return Err(ParseError::NonZeroReserved {
            offset: dfas.at_field(dfa_table::RESERVED),
            what: "DFA section reserved word",
        });
    }
    if count > 0 && !bytes.as_ptr().addr().is_multiple_of(fmt::DFA_MEMORY_ALIGN) {
        return Err(ParseError::Misaligned {
            offset: dfas.offset,
        });
    }
    let table_end = add(
        dfa_table::LEN_U32,
        mul(count, dfa_entry::LEN_U32, dfas.offset, "DFA table")?,
        dfas.offset,
        "DFA table",
    )?;
    dfas.sub(0, table_end, "DFA table")?;
    let mut pos = table_end;
    for i in 0..count {
        let at = add(
            dfa_table::LEN_U32,
            mul(i, dfa_entry::LEN_U32, dfas.offset, "DFA entry")?,
            dfas.offset,
            "DFA entry",
        )?;
        let entry = dfas.sub(at, dfa_entry::LEN_U32, "DFA entry")?;
        let off = entry.get(dfa_entry::OFFSET, "DFA offset")?;
        let len = entry.get(dfa_entry::LENGTH, "DFA length")?;
        check_limit(dfas.at(at), "DFA length", len, limits.max_dfa_len)?;
        if !off.is_multiple_of(fmt::DFA_ALIGN) || off < pos {
            return Err(ParseError::OutOfRange {
                offset: dfas.at(at),
                what: "DFA offset (8-aligned, ascending)",
                value: off,
                bound: dfas.len(),
            });
        }
        dfas.sub(pos, off.saturating_sub(pos), "DFA padding")?
            .check_zero("padding between DFAs")?;
        let blob = dfas
            .sub(off, len, "DFA")
            .map_err(|_| ParseError::OutOfRange {
                offset: dfas.at(at),
                what: "DFA end",
                value: off.saturating_add(len),
                bound: dfas.len().saturating_add(1),
            })?;
        match regex_automata::dfa::dense::DFA::from_bytes(blob.bytes) {
            Ok((_, nread)) if nread == blob.bytes.len() => {}
            _ => {
                return Err(ParseError::InvalidDfa {
                    offset: blob.offset,
                    index: i,
                })
            }
        }
        pos = off.saturating_add(len);
    }
    dfas.sub(pos, dfas.len().saturating_sub(pos), "DFA padding")?
        .check_zero("padding after the last DFA")?;
    Ok(count)
}

/// Validates every rule, its fields, atoms and program. Returns the number of
/// rules flagged always-evaluate.
fn parse_rules(
    cf: &ChannelFile<'_>,
    caps: &Capabilities,
    schema_mask: u64,
    limits: &Limits,
) -> Result<(u32, u64), ParseError> {
    let mut read_fields = 0u64;
    let rule_field_count = cf
        .rule_fields
        .len()
        .checked_div(rule_field::LEN_U32)
        .unwrap_or(0);
    let max_depth = limits.max_stack_depth.min(fmt::STACK_DEPTH_CEILING);
    // The matcher's scratch holds one rule's hits: a larger limit is capped,
    // as the stack depth is (FORMAT.md "Limits").
    let max_atoms_per_rule = limits.max_atoms_per_rule.min(fmt::ATOMS_PER_RULE_CEILING);
    let mut flagged = 0u32;
    let mut prev_id: Option<u32> = None;
    let mut expected_atom_start = 0u32;
    for r in 0..cf.rule_count {
        let rec = cf.rules.record(r, rule::LEN, "rule")?;
        let id = rec.get(rule::ID, "rule id")?;
        if let Some(p) = prev_id {
            if id <= p {
                return Err(ParseError::DuplicateRuleId {
                    offset: rec.offset,
                    id,
                    previous: p,
                });
            }
        }
        prev_id = Some(id);
        let name_len = rec.get(rule::NAME_LEN, "rule name length")?;
        check_limit(
            rec.at_field(rule::NAME_LEN),
            "rule name length",
            name_len,
            limits.max_string_len,
        )?;
        cf.strings.str_at(
            rec.get(rule::NAME_OFF, "rule name offset")?,
            name_len,
            "rule name",
        )?;
        let severity = rec.get(rule::SEVERITY, "severity")?;
        if !fmt::Severity(severity).is_known() {
            return Err(ParseError::InvalidValue {
                offset: rec.at_field(rule::SEVERITY),
                what: "severity",
                value: u32::from(severity),
            });
        }
        let action = rec.get(rule::ACTION, "action")?;
        if !fmt::Action(action).is_known() {
            return Err(ParseError::InvalidValue {
                offset: rec.at_field(rule::ACTION),
                what: "action",
                value: u32::from(action),
            });
        }
        let flags = rec.get(rule::FLAGS, "rule flags")?;
        if flags & !fmt::RULE_FLAG_ALWAYS != 0 {
            return Err(ParseError::InvalidValue {
                offset: rec.at_field(rule::FLAGS),
                what: "rule flags",
                value: u32::from(flags),
            });
        }

        // Fields: declared in the schema and supplied by this sensor.
        let fields_start = rec.get(rule::FIELDS_START, "rule fields start")?;
        let fields_count = u32::from(rec.get(rule::FIELDS_COUNT, "rule fields count")?);
        check_limit(
            rec.at_field(rule::FIELDS_COUNT),
            "fields per rule",
            fields_count,
            limits.max_fields_per_rule,
        )?;
        let fields_end = add(
            fields_start,
            fields_count,
            rec.at_field(rule::FIELDS_START),
            "rule fields end",
        )?;
        if fields_end > rule_field_count {
            return Err(ParseError::OutOfRange {
                offset: rec.at_field(rule::FIELDS_START),
                what: "rule fields end",
                value: fields_end,
                bound: rule_field_count.saturating_add(1),
            });
        }
        let mut rule_mask = 0u64;
        for k in fields_start..fields_end {
            let entry = cf.rule_fields.record(k, rule_field::LEN, "rule field")?;
            let field = FieldId(entry.get(rule_field::FIELD, "rule field")?);
            let off = entry.offset;
            if !declared(schema_mask, field) {
                return Err(ParseError::FieldNotDeclared {
                    offset: off,
                    rule_id: id,
                    field,
                });
            }
            if !caps.supplies(field) {
                return Err(ParseError::FieldNotSupplied {
                    offset: off,
                    rule_id: id,
                    rule_index: r,
                    field,
                });
            }
            let bit = 1u64 << field.0; // supplied fields are < 64
            if rule_mask & bit != 0 {
                return Err(ParseError::DuplicateField { offset: off, field });
            }
            rule_mask |= bit;
        }
        read_fields |= rule_mask;

        // Atoms: contiguous per rule, in rule order.
        let atoms_start = rec.get(rule::ATOMS_START, "rule atoms start")?;
        if atoms_start != expected_atom_start {
            return Err(ParseError::OutOfRange {
                offset: rec.at_field(rule::ATOMS_START),
                what: "rule atoms start (must follow the previous rule's)",
                value: atoms_start,
                bound: expected_atom_start.saturating_add(1),
            });
        }
        let atoms_end = if let Some(next) = r.checked_add(1).filter(|n| *n < cf.rule_count) {
            cf.rules
                .record(next, rule::LEN, "rule")?
                .get(rule::ATOMS_START, "rule atoms start")?
        } else {
            cf.atom_count
        };
        if atoms_end < atoms_start || atoms_end > cf.atom_count {
            return Err(ParseError::OutOfRange {
                offset: rec.at_field(rule::ATOMS_START),
                what: "rule atoms end",
                value: atoms_end,
                bound: cf.atom_count.saturating_add(1),
            });
        }
        check_limit(
            rec.at_field(rule::ATOMS_START),
            "atoms per rule",
            atoms_end.saturating_sub(atoms_start),
            max_atoms_per_rule,
        )?;
        for a in atoms_start..atoms_end {
            parse_atom(cf, a, r, id, rule_mask, limits)?;
        }
        expected_atom_start = atoms_end;

        // Program.
        let prog_off = rec.get(rule::PROG_OFF, "program offset")?;
        let prog_len = u32::from(rec.get(rule::PROG_LEN, "program length")?);
        check_limit(
            rec.at_field(rule::PROG_LEN),
            "program length",
            prog_len,
            limits.max_program_len,
        )?;
        let prog = cf
            .programs
            .sub(prog_off, prog_len, "program")
            .map_err(|_| ParseError::OutOfRange {
                offset: rec.at_field(rule::PROG_OFF),
                what: "program end",
                value: prog_off.saturating_add(prog_len),
                bound: cf.programs.len().saturating_add(1),
            })?;
        let always = check_program(cf, prog, id, atoms_start, atoms_end, max_depth)?;
        let flag = flags & fmt::RULE_FLAG_ALWAYS != 0;
        if flag != always {
            return Err(ParseError::BadAlwaysFlag {
                offset: rec.offset,
                rule_id: id,
                found: flag,
                expected: always,
            });
        }
        if always {
            flagged = flagged.saturating_add(1);
        }
    }
    if expected_atom_start != cf.atom_count {
        return Err(ParseError::BadSectionLen {
            offset: cf.atoms.offset,
            what: "atoms",
            len: cf.atoms.len(),
            reason: "holds atoms that belong to no rule",
        });
    }
    Ok((flagged, read_fields))
}

fn parse_atom(
    cf: &ChannelFile<'_>,
    a: u32,
    rule: u32,
    rule_id: u32,
    rule_mask: u64,
    limits: &Limits,
) -> Result<(), ParseError> {
    let rec = cf.atoms.record(a, atom::LEN, "atom")?;
    let owner = rec.get(atom::RULE, "atom rule")?;
    if owner != rule {
        return Err(ParseError::OutOfRange {
            offset: rec.offset,
            what: "atom rule index (must be its rule's)",
            value: owner,
            bound: rule.saturating_add(1),
        });
    }
    let field = FieldId(rec.get(atom::FIELD, "atom field")?);
    let kind = AtomKind(rec.get(atom::KIND, "atom kind")?);
    let flags = rec.get(atom::FLAGS, "atom flags")?;
    let str_off = rec.get(atom::STR_OFF, "atom string offset")?;
    let str_len = rec.get(atom::STR_LEN, "atom string length")?;
    let arg = rec.get(atom::ARG, "atom argument")?;
    let bad = |reason| ParseError::BadAtomField {
        offset: rec.offset,
        atom: a,
        rule_id,
        field,
        reason,
    };
    if field.0 >= 64 || (rule_mask >> field.0) & 1 == 0 {
        return Err(bad("which its rule does not list"));
    }
    if !kind.is_known() {
        return Err(ParseError::InvalidValue {
            offset: rec.at_field(atom::KIND),
            what: "atom kind",
            value: u32::from(kind.0),
        });
    }
    if flags & !(fmt::ATOM_FLAG_PREFILTERED | fmt::ATOM_FLAG_CASE_INSENSITIVE) != 0 {
        return Err(ParseError::InvalidValue {
            offset: rec.at_field(atom::FLAGS),
            what: "atom flags",
            value: u32::from(flags),
        });
    }
    let string_field = field.field_type() == Some(FieldType::STRING);
    if kind == AtomKind::NUM_EQ {
        if string_field {
            return Err(bad("a string field, with a numeric test"));
        }
        if str_off != 0 || str_len != 0 || flags != 0 {
            return Err(ParseError::NonZeroReserved {
                offset: rec.at_field(atom::FLAGS),
                what: "numeric atom's string and flags",
            });
        }
        return Ok(());
    }
    if !string_field {
        return Err(bad("a numeric field, with a string test"));
    }
    let limit = if kind.is_literal() {
        limits.max_literal_len
    } else {
        limits.max_string_len
    };
    check_limit(
        rec.at_field(atom::STR_LEN),
        "atom string length",
        str_len,
        limit,
    )?;
    let text = cf.strings.str_at(str_off, str_len, "atom string")?;
    let text_off = cf.strings.at(str_off);
    if kind.is_literal() {
        if flags != fmt::ATOM_FLAG_PREFILTERED || arg != 0 {
            return Err(ParseError::InvalidValue {
                offset: rec.at_field(atom::FLAGS),
                what: "literal atom flags/argument",
                value: u32::from(flags),
            });
        }
        if text.is_empty() {
            return Err(ParseError::InvalidValue {
                offset: rec.at_field(atom::STR_LEN),
                what: "literal length",
                value: 0,
            });
        }
        if !crate::text::is_folded(text) || text.chars().any(|c| c == '\u{FFFD}') {
            return Err(ParseError::NotFolded {
                offset: text_off,
                what: "literal",
            });
        }
    } else if kind == AtomKind::GLOB {
        if flags & fmt::ATOM_FLAG_CASE_INSENSITIVE != 0 || arg != 0 {
            return Err(ParseError::InvalidValue {
                offset: rec.at_field(atom::FLAGS),
                what: "glob atom flags/argument",
                value: u32::from(flags),
            });
        }
        if crate::text::validate_glob(text).is_err() {
            return Err(ParseError::NotFolded {
                offset: text_off,
                what: "glob pattern (escapes and folding)",
            });
        }
    } else if arg >= cf.dfa_count {
        return Err(ParseError::OutOfRange {
            offset: rec.at_field(atom::ARG),
            what: "DFA index",
            value: arg,
            bound: cf.dfa_count,
        });
    }
    Ok(())
}

/// Validates a condition program with the format's one checker
/// ([`fmt::program::check`]: known opcodes, atom references inside the
/// rule's atoms, stack depth within `max_depth` and never underflowing,
/// exactly one value at the end). Returns whether the rule must be evaluated
/// on every event (Kleene value with prefiltered atoms false is not false).
fn check_program(
    cf: &ChannelFile<'_>,
    prog: Region<'_>,
    rule_id: u32,
    atoms_start: u32,
    atoms_end: u32,
    max_depth: u32,
) -> Result<bool, ParseError> {
    fmt::program::check(prog.bytes, atoms_start..atoms_end, max_depth, |idx| {
        let atom = cf.atom(idx);
        atom.kind().is_literal() || atom.prefiltered()
    })
    .map_err(|e| ParseError::BadProgram {
        offset: prog.at(e.at),
        rule_id,
        reason: e.reason,
    })
}

fn parse_prefilter<'a>(
    cf: &ChannelFile<'a>,
    sec: Region<'a>,
    schema_mask: u64,
    limits: &Limits,
) -> Result<[Automaton<'a>; PREFILTER_SLOTS], ParseError> {
    let mut out = [Automaton::EMPTY; PREFILTER_SLOTS];
    let count = sec.get(prefilter::COUNT, "automaton count")?;
    check_limit(sec.offset, "automaton count", count, PREFILTER_SLOTS as u32)?;
    if sec.get(prefilter::RESERVED, "prefilter reserved")? != 0 {
        return Err(ParseError::NonZeroReserved {
            offset: sec.at_field(prefilter::RESERVED),
            what: "prefilter reserved word",
        });
    }
    let mut pos = prefilter::LEN_U32;
    for _ in 0..count {
        let (a, next) = parse_automaton(cf, sec, pos, schema_mask, limits)?;
        match prefilter_slot(a.field).and_then(|slot| out.get_mut(slot)) {
            Some(s) if s.state_count == 0 => *s = a,
            _ => {
                return Err(ParseError::DuplicateField {
                    offset: sec.at(pos),
                    field: a.field,
                })
            }
        }
        pos = next;
    }
    if pos != sec.len() {
        return Err(ParseError::BadSectionLen {
            offset: sec.offset,
            what: "prefilter",
            len: sec.len(),
            reason: "does not end after the last automaton",
        });
    }
    Ok(out)
}

fn parse_automaton<'a>(
    cf: &ChannelFile<'a>,
    sec: Region<'a>,
    pos: u32,
    schema_mask: u64,
    limits: &Limits,
) -> Result<(Automaton<'a>, u32), ParseError> {
    let h = sec.sub(pos, automaton::LEN_U32, "automaton header")?;
    let bad = |at: u32, reason| ParseError::BadAutomaton { offset: at, reason };
    let field = FieldId(h.get(automaton::FIELD, "automaton field")?);
    if prefilter_slot(field).is_none() {
        return Err(bad(h.offset, "field is not a string field"));
    }
    if !declared(schema_mask, field) {
        return Err(bad(h.offset, "field is not declared in the schema"));
    }
    h.field_bytes(automaton::RESERVED, "automaton reserved")?
        .check_zero("automaton reserved bytes")?;
    h.field_bytes(automaton::RESERVED2, "automaton reserved")?
        .check_zero("automaton reserved bytes")?;
    let s_count = h.get(automaton::STATE_COUNT, "state count")?;
    let e_count = h.get(automaton::EDGE_COUNT, "edge count")?;
    let o_count = h.get(automaton::OUTPUT_COUNT, "output count")?;
    check_limit(
        h.at_field(automaton::STATE_COUNT),
        "state count",
        s_count,
        limits.max_states,
    )?;
    check_limit(
        h.at_field(automaton::OUTPUT_COUNT),
        "output count",
        o_count,
        limits.max_states,
    )?;
    if s_count == 0 || e_count != s_count.saturating_sub(1) {
        return Err(bad(
            h.at_field(automaton::STATE_COUNT),
            "needs at least the root and exactly one edge per non-root state",
        ));
    }
    // The parts in FORMAT.md's order (`fmt::AutomatonLayout`), each checked
    // to lie inside the section before the next is placed.
    let mut p = add(pos, automaton::LEN_U32, sec.offset, "automaton")?;
    let states = sec.sub(
        p,
        mul(s_count, state::LEN_U32, h.offset, "states")?,
        "automaton states",
    )?;
    p = add(p, states.len(), h.offset, "automaton")?;
    let labels = sec.sub(p, e_count, "automaton labels")?;
    p = add(p, e_count, h.offset, "automaton")?;
    let depths = sec.sub(p, s_count, "automaton depths")?;
    p = add(p, s_count, h.offset, "automaton")?;
    let pad = p
        .next_multiple_of(fmt::AUTOMATON_OUTPUTS_ALIGN)
        .wrapping_sub(p);
    sec.sub(p, pad, "automaton padding")?
        .check_zero("automaton padding")?;
    p = add(p, pad, h.offset, "automaton")?;
    let outputs = sec.sub(
        p,
        mul(o_count, output::LEN_U32, h.offset, "outputs")?,
        "automaton outputs",
    )?;
    p = add(p, outputs.len(), h.offset, "automaton")?;
    let pad = p.next_multiple_of(fmt::AUTOMATON_ALIGN).wrapping_sub(p);
    sec.sub(p, pad, "automaton padding")?
        .check_zero("automaton padding")?;
    p = add(p, pad, h.offset, "automaton")?;

    let mut a = Automaton {
        field,
        state_count: s_count,
        edge_count: e_count,
        output_count: o_count,
        states,
        labels: labels.bytes,
        outputs,
        root_bits: [0; 4],
    };
    let depth = |s: u32| -> u8 { depths.bytes.get(s as usize).copied().unwrap_or(u8::MAX) };
    // States are read with the matcher's own reader, `Automaton::state`: for
    // `s < s_count` its `e1`/`o1` are state `s + 1`'s first edge and output,
    // or the edge and output totals for the last state.
    let root = a.state(0);
    if root.e0 != 0 || root.fail != 0 || root.dict != 0 || root.o0 != 0 || depth(0) != 0 {
        return Err(bad(
            states.offset,
            "root must start edges and outputs at 0, with no links and depth 0",
        ));
    }
    for s in 0..s_count {
        let at = states.at(s.saturating_mul(state::LEN_U32));
        let st = a.state(s);
        let (e0, e1, o0, o1) = (st.e0, st.e1, st.o0, st.o1);
        if e1 < e0 || e1 > e_count || o1 < o0 || o1 > o_count {
            return Err(bad(
                at,
                "edge or output ranges are not ascending and in bounds",
            ));
        }
        let d = depth(s);
        if e1 > e0 {
            // Children e0+1 ..= e1 (breadth-first numbering): after their parent.
            if e0 < s {
                return Err(bad(at, "a child precedes its parent"));
            }
            let child_depth = d.checked_add(1).ok_or(bad(at, "depth overflows"))?;
            if u32::from(child_depth) > limits.max_literal_len {
                return Err(bad(at, "deeper than the longest literal allowed"));
            }
            let mut prev: Option<u8> = None;
            for e in e0..e1 {
                let label = labels.bytes.get(e as usize).copied().unwrap_or(0);
                if prev.is_some_and(|p| p >= label) {
                    return Err(bad(
                        labels.at(e),
                        "edge labels of a state are not strictly ascending",
                    ));
                }
                prev = Some(label);
                if depth(e.saturating_add(1)) != child_depth {
                    return Err(bad(
                        depths.at(e.saturating_add(1)),
                        "child depth is not parent depth + 1",
                    ));
                }
            }
        }
        if s > 0 {
            let (fail, dict) = (st.fail, st.dict);
            if fail >= s_count || depth(fail) >= d {
                return Err(bad(at, "failure link does not lead to a shallower state"));
            }
            // Out of range, `state` reads an empty record; `dict` is then
            // rejected by its first test before `target` is looked at.
            let target = a.state(dict);
            if dict >= s_count || (dict != 0 && (depth(dict) >= d || target.o1 == target.o0)) {
                return Err(bad(
                    at,
                    "dictionary link does not lead to a shallower state with outputs",
                ));
            }
        } else if o1 != o0 {
            return Err(bad(at, "the root has outputs"));
        }
        for k in o0..o1 {
            let out = outputs.record(k, output::LEN, "output")?;
            let oat = out.offset;
            let atom_idx = out.get(output::ATOM, "output")?;
            if atom_idx >= cf.atom_count {
                return Err(ParseError::OutOfRange {
                    offset: oat,
                    what: "output atom",
                    value: atom_idx,
                    bound: cf.atom_count,
                });
            }
            let atom = cf.atom(atom_idx);
            if atom.field() != field {
                return Err(bad(oat, "output atom tests another field"));
            }
            let kind = atom.kind();
            if kind.is_literal() {
                if atom.str_len() != u32::from(d) {
                    return Err(bad(oat, "literal length differs from the state's depth"));
                }
            } else if !(kind.is_pattern() && atom.prefiltered()) {
                return Err(bad(oat, "output atom is not prefiltered"));
            }
        }
    }
    // The root's labels (validated: strictly ascending) as a bit set.
    let root = a.state(0);
    for &l in labels
        .bytes
        .get(root.e0 as usize..root.e1 as usize)
        .unwrap_or(&[])
    {
        if let Some(w) = a.root_bits.get_mut(usize::from(l >> 6)) {
            *w |= 1u64 << (l & 63);
        }
    }
    Ok((a, p))
}

fn parse_always(cf: &ChannelFile<'_>, flagged: u32) -> Result<(), ParseError> {
    let bad = |at: u32, reason| ParseError::BadAlwaysList { offset: at, reason };
    if cf.always_count != flagged {
        return Err(bad(
            cf.always.offset,
            "count differs from the number of always-evaluate rules",
        ));
    }
    let mut prev: Option<u32> = None;
    for i in 0..cf.always_count {
        let entry = cf.always.record(i, always::LEN, "always entry")?;
        let r = entry.get(always::RULE, "always entry")?;
        if prev.is_some_and(|p| p >= r) {
            return Err(bad(entry.offset, "entries are not strictly ascending"));
        }
        prev = Some(r);
        match cf.rule(r) {
            Some(rule) if rule.always_evaluated() => {}
            _ => return Err(bad(entry.offset, "entry is not an always-evaluate rule")),
        }
    }
    Ok(())
}
