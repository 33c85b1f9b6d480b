//! [`parse`]: the validating entry point. Checks run in a fixed order, each
//! relying only on what earlier checks established:
//!
//! 1. size limit, header (magic, endianness, versions, channel, flags, length);
//! 2. section table: bounds, alignment, overlap, duplicates, unknown kinds,
//!    required sections present, every byte outside the sections zero;
//! 3. SCHEMA (fields, types) and record-section lengths;
//! 4. DFAS (entries, range tables, then each character DFA: every table
//!    entry below its bound, exact lengths);
//! 5. RULES with their fields, atoms and condition programs, in rule order;
//! 6. PREFILTER automata (which reference atoms validated in 5);
//! 7. ALWAYS (which must list exactly the rules flagged in 5);
//! 8. ROLLOUT and SIGNATURE version words; the ENFORCEMENT policy.

use crate::view::{
    prefilter_slot, Automaton, ChannelFile, DirectLiteral, Header, ALWAYS_DIRECT, PREFILTER_SLOTS,
};
use crate::wire::{add, mul, Region};
use crate::{Capabilities, ParseError};
use channel_format::{
    self as fmt, always, atom, automaton, dfa_entry, dfa_table, enforcement, prefilter,
    range_table, rollout, rule, rule_field, schema, section, signature, AtomKind, FieldId,
    FieldType, Limits, SectionKind,
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
/// Allocates nothing. Time is linear in the file length: each byte is
/// visited a bounded number of times.
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
    let (dfa_count, range_table_count) = parse_dfas(dfas, limits)?;

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
        range_table_count,
        always_count,
        automata: [Automaton::EMPTY; PREFILTER_SLOTS],
        always_direct: [DirectLiteral::NONE; ALWAYS_DIRECT],
        read_fields: 0,
        rollout: None,
        enforcement: None,
    };
    let (flagged, read_fields) = parse_rules(&cf, caps, schema_mask, limits)?;
    cf.read_fields = read_fields;
    cf.automata = parse_prefilter(&cf, prefilter, schema_mask, limits)?;
    parse_always(&cf, flagged)?;
    // From the validated rules, programs, atoms and ALWAYS list.
    cf.always_direct = cf.always_direct_set();
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

/// DFAS (FORMAT.md §11): the header, the entries of the DFAs then of the
/// range tables, the blobs (aligned, ascending, zero padding between, the
/// total within the budget); every range table, then every DFA against its
/// range table. Returns the numbers of DFAs and of range tables.
fn parse_dfas(dfas: Region<'_>, limits: &Limits) -> Result<(u32, u32), ParseError> {
    let count = dfas.get(dfa_table::COUNT, "DFA count")?;
    check_limit(dfas.offset, "DFA count", count, limits.max_dfas)?;
    let tables = dfas.get(dfa_table::RANGE_TABLE_COUNT, "DFA range table count")?;
    check_limit(
        dfas.at_field(dfa_table::RANGE_TABLE_COUNT),
        "DFA range table count",
        tables,
        limits.max_dfas,
    )?;
    dfas.field_bytes(dfa_table::RESERVED, "DFA section reserved")?
        .check_zero("DFA section reserved bytes")?;
    let entries = add(count, tables, dfas.offset, "DFA entries")?;
    let table_end = add(
        dfa_table::LEN_U32,
        mul(entries, dfa_entry::LEN_U32, dfas.offset, "DFA entry table")?,
        dfas.offset,
        "DFA entry table",
    )?;
    dfas.sub(0, table_end, "DFA entry table")?;
    // The entries as fixed records (all present: the table was checked to
    // lie in the section just above).
    let ents = records::<{ dfa_entry::LEN }>(dfas.sub(
        dfa_table::LEN_U32,
        table_end.saturating_sub(dfa_table::LEN_U32),
        "DFA entry table",
    )?);
    let entry = |i: u32| -> Result<(u32, u32, u32), ParseError> {
        match ents.get(i as usize) {
            Some(e) => Ok((
                i.saturating_mul(dfa_entry::LEN_U32)
                    .saturating_add(dfa_table::LEN_U32),
                fld(e, dfa_entry::OFFSET),
                fld(e, dfa_entry::LENGTH),
            )),
            None => dfa_entry(dfas, i),
        }
    };
    let mut pos = table_end;
    let mut total = 0u32;
    for i in 0..entries {
        let (at, off, len) = entry(i)?;
        if i < count {
            check_limit(dfas.at(at), "DFA length", len, limits.max_dfa_len)?;
        }
        total = total.saturating_add(len);
        check_limit(dfas.at(at), "total DFA length", total, limits.max_dfa_total)?;
        if !off.is_multiple_of(fmt::DFA_ALIGN) || off < pos {
            return Err(ParseError::OutOfRange {
                offset: dfas.at(at),
                what: "DFA blob offset (aligned, ascending)",
                value: off,
                bound: dfas.len(),
            });
        }
        dfas.sub(pos, off.saturating_sub(pos), "DFA padding")?
            .check_zero("padding between DFA blobs")?;
        dfas.sub(off, len, "DFA blob")
            .map_err(|_| ParseError::OutOfRange {
                offset: dfas.at(at),
                what: "DFA blob end",
                value: off.saturating_add(len),
                bound: dfas.len().saturating_add(1),
            })?;
        pos = off.saturating_add(len);
    }
    dfas.sub(pos, dfas.len().saturating_sub(pos), "DFA padding")?
        .check_zero("padding after the last DFA blob")?;
    let blob = |i: u32| -> Result<Region<'_>, ParseError> {
        let (_, off, len) = entry(i)?;
        dfas.sub(off, len, "DFA blob")
    };
    // Range tables first: the DFAs' layouts depend on their class counts.
    for t in 0..tables {
        crate::dfa::validate_table(blob(add(count, t, dfas.offset, "DFA entry")?)?, t)?;
    }
    let local = |t: u32| -> Result<u32, ParseError> {
        blob(add(count, t, dfas.offset, "DFA entry")?)?
            .get(range_table::CLASS_COUNT, "range table class count")
    };
    for i in 0..count {
        crate::dfa::validate(blob(i)?, i, tables, local)?;
    }
    Ok((count, tables))
}

/// Entry `i` of the DFAS section's entry table: (where the entry is, blob
/// offset, blob length).
fn dfa_entry(dfas: Region<'_>, i: u32) -> Result<(u32, u32, u32), ParseError> {
    let at = add(
        dfa_table::LEN_U32,
        mul(i, dfa_entry::LEN_U32, dfas.offset, "DFA entry")?,
        dfas.offset,
        "DFA entry",
    )?;
    let entry = dfas.sub(at, dfa_entry::LEN_U32, "DFA entry")?;
    let off = entry.get(dfa_entry::OFFSET, "DFA blob offset")?;
    let len = entry.get(dfa_entry::LENGTH, "DFA blob length")?;
    Ok((at, off, len))
}

/// Validates every rule, its fields, atoms and program. Returns the number of
/// rules flagged always-evaluate.
///
/// Each record is read once: the section is cut into fixed arrays
/// (`as_chunks`), one bounds check per record, and every field is read at
/// its constant offset from the array (no check left after inlining). The
/// limits that do not depend on the record are computed once, before the
/// loop.
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
    let rules = records::<{ rule::LEN }>(cf.rules);
    let atoms = records::<{ atom::LEN }>(cf.atoms);
    let rule_fields = records::<{ rule_field::LEN }>(cf.rule_fields);
    let strings = Strings::new(cf.strings);
    let mut flagged = 0u32;
    let mut prev_id: Option<u32> = None;
    let mut expected_atom_start = 0u32;
    let mut rule_off = cf.rules.offset;
    for (r, rec) in (0u32..).zip(rules.iter()) {
        let at = |f: u32| rule_off.saturating_add(f);
        let id = fld(rec, rule::ID);
        if let Some(p) = prev_id {
            if id <= p {
                return Err(ParseError::DuplicateRuleId {
                    offset: rule_off,
                    id,
                    previous: p,
                });
            }
        }
        prev_id = Some(id);
        let name_len = fld(rec, rule::NAME_LEN);
        check_limit(
            at(rule::NAME_LEN.offset_u32()),
            "rule name length",
            name_len,
            limits.max_string_len,
        )?;
        strings.str_at(fld(rec, rule::NAME_OFF), name_len, "rule name")?;
        let severity = fld(rec, rule::SEVERITY);
        if !fmt::Severity(severity).is_known() {
            return Err(ParseError::InvalidValue {
                offset: at(rule::SEVERITY.offset_u32()),
                what: "severity",
                value: u32::from(severity),
            });
        }
        let action = fld(rec, rule::ACTION);
        if !fmt::Action(action).is_known() {
            return Err(ParseError::InvalidValue {
                offset: at(rule::ACTION.offset_u32()),
                what: "action",
                value: u32::from(action),
            });
        }
        let flags = fld(rec, rule::FLAGS);
        if flags & !fmt::RULE_FLAG_ALWAYS != 0 {
            return Err(ParseError::InvalidValue {
                offset: at(rule::FLAGS.offset_u32()),
                what: "rule flags",
                value: u32::from(flags),
            });
        }

        // Fields: declared in the schema and supplied by this sensor.
        let fields_start = fld(rec, rule::FIELDS_START);
        let fields_count = u32::from(fld(rec, rule::FIELDS_COUNT));
        check_limit(
            at(rule::FIELDS_COUNT.offset_u32()),
            "fields per rule",
            fields_count,
            limits.max_fields_per_rule,
        )?;
        let fields_end = add(
            fields_start,
            fields_count,
            at(rule::FIELDS_START.offset_u32()),
            "rule fields end",
        )?;
        let fields = match rule_fields.get(fields_start as usize..fields_end as usize) {
            Some(f) if fields_end <= rule_field_count => f,
            _ => {
                return Err(ParseError::OutOfRange {
                    offset: at(rule::FIELDS_START.offset_u32()),
                    what: "rule fields end",
                    value: fields_end,
                    bound: rule_field_count.saturating_add(1),
                })
            }
        };
        let mut rule_mask = 0u64;
        for (k, entry) in (fields_start..).zip(fields.iter()) {
            let field = FieldId(fld(entry, rule_field::FIELD));
            let off = cf.rule_fields.at(k.saturating_mul(rule_field::LEN_U32));
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
            let bit = 1u64 << (field.0 & 63); // supplied fields are < 64
            if rule_mask & bit != 0 {
                return Err(ParseError::DuplicateField { offset: off, field });
            }
            rule_mask |= bit;
        }
        read_fields |= rule_mask;

        // Atoms: contiguous per rule, in rule order.
        let atoms_start = fld(rec, rule::ATOMS_START);
        if atoms_start != expected_atom_start {
            return Err(ParseError::OutOfRange {
                offset: at(rule::ATOMS_START.offset_u32()),
                what: "rule atoms start (must follow the previous rule's)",
                value: atoms_start,
                bound: expected_atom_start.saturating_add(1),
            });
        }
        let atoms_end = match rules.get((r as usize).wrapping_add(1)) {
            Some(next) => fld(next, rule::ATOMS_START),
            None => cf.atom_count,
        };
        let own = match atoms.get(atoms_start as usize..atoms_end as usize) {
            Some(own) if atoms_end <= cf.atom_count => own,
            _ => {
                return Err(ParseError::OutOfRange {
                    offset: at(rule::ATOMS_START.offset_u32()),
                    what: "rule atoms end",
                    value: atoms_end,
                    bound: cf.atom_count.saturating_add(1),
                })
            }
        };
        check_limit(
            at(rule::ATOMS_START.offset_u32()),
            "atoms per rule",
            atoms_end.saturating_sub(atoms_start),
            max_atoms_per_rule,
        )?;
        // The rule's gates, by atom index in the rule (at most 256 atoms).
        let mut gates = [0u64; 4];
        for ((a, arec), i) in (atoms_start..).zip(own.iter()).zip(0u32..) {
            if parse_atom(cf, &strings, arec, a, r, id, rule_mask, limits)? {
                if let Some(w) = gates.get_mut((i / 64) as usize) {
                    *w |= 1u64 << (i % 64);
                }
            }
        }
        expected_atom_start = atoms_end;

        // Program.
        let prog_off = fld(rec, rule::PROG_OFF);
        let prog_len = u32::from(fld(rec, rule::PROG_LEN));
        check_limit(
            at(rule::PROG_LEN.offset_u32()),
            "program length",
            prog_len,
            limits.max_program_len,
        )?;
        let prog = cf
            .programs
            .sub(prog_off, prog_len, "program")
            .map_err(|_| ParseError::OutOfRange {
                offset: at(rule::PROG_OFF.offset_u32()),
                what: "program end",
                value: prog_off.saturating_add(prog_len),
                bound: cf.programs.len().saturating_add(1),
            })?;
        let always = check_program(prog, id, atoms_start, atoms_end, max_depth, &gates)?;
        let flag = flags & fmt::RULE_FLAG_ALWAYS != 0;
        if flag != always {
            return Err(ParseError::BadAlwaysFlag {
                offset: rule_off,
                rule_id: id,
                found: flag,
                expected: always,
            });
        }
        if always {
            flagged = flagged.saturating_add(1);
        }
        rule_off = rule_off.saturating_add(rule::LEN_U32);
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

/// The records of a section whose length was checked to be a multiple of
/// `N`, as fixed arrays (a trailing partial record cannot occur).
#[inline(always)]
fn records<const N: usize>(r: Region<'_>) -> &[[u8; N]] {
    r.bytes.as_chunks::<N>().0
}

/// Field `f` of a record held as a fixed array: the offset is a constant
/// inside the array, so after inlining the read is one load with no check
/// (the `Default` fallback is unreachable).
#[inline(always)]
fn fld<T: fmt::Le + Default, const N: usize>(rec: &[u8; N], f: fmt::Field<T>) -> T {
    f.get(rec).unwrap_or_default()
}

/// The STRINGS section for validation: when the whole section is valid
/// UTF-8 (as every file the compiler writes is), it is checked once here
/// and a reference is then valid UTF-8 exactly when it starts and ends on
/// character boundaries (`str::get`, constant time). Any other reference —
/// out of bounds, overflowing, cutting a character, or into a section that
/// is not UTF-8 as a whole — takes [`Region::str_at`], which gives the
/// same result and the same error as before.
struct Strings<'a> {
    region: Region<'a>,
    whole: Option<&'a str>,
}

impl<'a> Strings<'a> {
    fn new(region: Region<'a>) -> Self {
        Strings {
            region,
            whole: core::str::from_utf8(region.bytes).ok(),
        }
    }

    #[inline]
    fn str_at(&self, start: u32, len: u32, what: &'static str) -> Result<&'a str, ParseError> {
        if let (Some(w), Some(end)) = (self.whole, start.checked_add(len)) {
            if let Some(s) = w.get(start as usize..end as usize) {
                return Ok(s);
            }
        }
        self.region.str_at(start, len, what)
    }
}

/// Whether a literal is folded and free of U+FFFD: for ASCII text (most
/// literals) a byte test (no lower-case letter), else per character.
#[inline]
fn literal_folded(text: &str) -> bool {
    // One branch-free pass: bit 7 marks a non-ASCII byte, bit 0 an ASCII
    // lower-case letter.
    let mark = text.bytes().fold(0u8, |m, b| {
        m | (b & 0x80) | u8::from(b.wrapping_sub(b'a') < 26)
    });
    match mark {
        0 => true,
        1 => false, // ASCII with a lower-case letter: not folded
        _ => crate::text::is_folded(text) && !text.chars().any(|c| c == '\u{FFFD}'),
    }
}

/// [`crate::text::validate_glob`]'s verdict; for ASCII globs a byte scan
/// (a backslash escapes `*`, `?` or `\`; no lower-case letter), else the
/// per-character check.
#[inline]
fn glob_valid(text: &str) -> bool {
    if !text.is_ascii() {
        return crate::text::validate_glob(text).is_ok();
    }
    let mut b = text.as_bytes().iter();
    while let Some(&c) = b.next() {
        match c {
            // The guard consumes the escaped byte.
            b'\\' if !matches!(b.next(), Some(b'*' | b'?' | b'\\')) => return false,
            c if c.is_ascii_lowercase() => return false,
            _ => {}
        }
    }
    true
}

/// Validates atom `a` (record `rec`) of rule `rule`. Returns whether it is
/// a gate.
#[allow(clippy::too_many_arguments)]
fn parse_atom(
    cf: &ChannelFile<'_>,
    strings: &Strings<'_>,
    rec: &[u8; atom::LEN],
    a: u32,
    rule: u32,
    rule_id: u32,
    rule_mask: u64,
    limits: &Limits,
) -> Result<bool, ParseError> {
    let rec_off = cf.atoms.at(a.saturating_mul(atom::LEN_U32));
    let at = |f: u32| rec_off.saturating_add(f);
    let owner = fld(rec, atom::RULE);
    if owner != rule {
        return Err(ParseError::OutOfRange {
            offset: rec_off,
            what: "atom rule index (must be its rule's)",
            value: owner,
            bound: rule.saturating_add(1),
        });
    }
    let field = FieldId(fld(rec, atom::FIELD));
    let kind = AtomKind(fld(rec, atom::KIND));
    let flags = fld(rec, atom::FLAGS);
    let str_off = fld(rec, atom::STR_OFF);
    let str_len = fld(rec, atom::STR_LEN);
    let arg = fld(rec, atom::ARG);
    let bad = |reason| ParseError::BadAtomField {
        offset: rec_off,
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
            offset: at(atom::KIND.offset_u32()),
            what: "atom kind",
            value: u32::from(kind.0),
        });
    }
    let known = fmt::ATOM_FLAG_PREFILTERED | fmt::ATOM_FLAG_CASE_INSENSITIVE | fmt::ATOM_FLAG_GATE;
    let gate = flags & fmt::ATOM_FLAG_GATE != 0;
    let gate_without_prefilter = gate && flags & fmt::ATOM_FLAG_PREFILTERED == 0;
    if flags & !known != 0 || gate_without_prefilter {
        return Err(ParseError::InvalidValue {
            offset: at(atom::FLAGS.offset_u32()),
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
                offset: at(atom::FLAGS.offset_u32()),
                what: "numeric atom's string and flags",
            });
        }
        return Ok(gate);
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
        at(atom::STR_LEN.offset_u32()),
        "atom string length",
        str_len,
        limit,
    )?;
    let text = strings.str_at(str_off, str_len, "atom string")?;
    let text_off = cf.strings.at(str_off);
    if kind.is_literal() {
        if flags & fmt::ATOM_FLAG_CASE_INSENSITIVE != 0 || arg != 0 {
            return Err(ParseError::InvalidValue {
                offset: at(atom::FLAGS.offset_u32()),
                what: "literal atom flags/argument",
                value: u32::from(flags),
            });
        }
        if text.is_empty() {
            return Err(ParseError::InvalidValue {
                offset: at(atom::STR_LEN.offset_u32()),
                what: "literal length",
                value: 0,
            });
        }
        if !literal_folded(text) {
            return Err(ParseError::NotFolded {
                offset: text_off,
                what: "literal",
            });
        }
    } else if kind == AtomKind::GLOB {
        if flags & fmt::ATOM_FLAG_CASE_INSENSITIVE != 0 || arg != 0 {
            return Err(ParseError::InvalidValue {
                offset: at(atom::FLAGS.offset_u32()),
                what: "glob atom flags/argument",
                value: u32::from(flags),
            });
        }
        if !glob_valid(text) {
            return Err(ParseError::NotFolded {
                offset: text_off,
                what: "glob pattern (escapes and folding)",
            });
        }
    } else if arg >= cf.dfa_count {
        return Err(ParseError::OutOfRange {
            offset: at(atom::ARG.offset_u32()),
            what: "DFA index",
            value: arg,
            bound: cf.dfa_count,
        });
    }
    Ok(gate)
}

/// Validates a condition program with the format's one checker
/// ([`fmt::program::check`]: known opcodes, atom references inside the
/// rule's atoms, stack depth within `max_depth` and never underflowing,
/// exactly one value at the end). Returns whether the rule must be evaluated
/// on every event: its Kleene value with its gates false and every other
/// atom unknown is not false.
fn check_program(
    prog: Region<'_>,
    rule_id: u32,
    atoms_start: u32,
    atoms_end: u32,
    max_depth: u32,
    gates: &[u64; 4],
) -> Result<bool, ParseError> {
    // `check` asks only about atoms in `atoms_start..atoms_end` (at most 256).
    let gate = |idx: u32| {
        let i = idx.wrapping_sub(atoms_start);
        gates
            .get((i / 64) as usize)
            .is_some_and(|w| (w >> (i % 64)) & 1 == 1)
    };
    fmt::program::check(prog.bytes, atoms_start..atoms_end, max_depth, gate).map_err(|e| {
        ParseError::BadProgram {
            offset: prog.at(e.at),
            rule_id,
            reason: e.reason,
        }
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

/// An automaton's header, checked.
struct AutomatonHeader {
    field: FieldId,
    narrow: bool,
    lazy: bool,
    states: u32,
    dense: u32,
    classes: u32,
    outputs: u32,
    layout: fmt::AutomatonLayout,
}

fn automaton_header(
    sec: Region<'_>,
    pos: u32,
    schema_mask: u64,
    limits: &Limits,
) -> Result<AutomatonHeader, ParseError> {
    let h = sec.sub(pos, automaton::LEN_U32, "automaton header")?;
    let bad = |at: u32, reason| ParseError::BadAutomaton { offset: at, reason };
    let field = FieldId(h.get(automaton::FIELD, "automaton field")?);
    if prefilter_slot(field).is_none() {
        return Err(bad(h.offset, "field is not a string field"));
    }
    if !declared(schema_mask, field) {
        return Err(bad(h.offset, "field is not declared in the schema"));
    }
    let flags = h.get(automaton::FLAGS, "automaton flags")?;
    if flags & !(fmt::AUTOMATON_FLAG_LAZY | fmt::AUTOMATON_FLAG_NARROW) != 0 {
        return Err(ParseError::InvalidValue {
            offset: h.at_field(automaton::FLAGS),
            what: "automaton flags",
            value: flags,
        });
    }
    h.field_bytes(automaton::RESERVED, "automaton reserved")?
        .check_zero("automaton reserved bytes")?;
    let classes = u32::from(h.get(automaton::CLASS_COUNT, "class count")?);
    let states = h.get(automaton::STATE_COUNT, "state count")?;
    let dense = h.get(automaton::DENSE_COUNT, "dense state count")?;
    let outputs = h.get(automaton::OUTPUT_COUNT, "output count")?;
    check_limit(
        h.at_field(automaton::STATE_COUNT),
        "state count",
        states,
        limits.max_states,
    )?;
    check_limit(
        h.at_field(automaton::OUTPUT_COUNT),
        "output count",
        outputs,
        limits.max_states,
    )?;
    if !(1..=256).contains(&classes) {
        return Err(bad(
            h.at_field(automaton::CLASS_COUNT),
            "class count is not in 1..=256",
        ));
    }
    if states == 0 || dense == 0 || dense > states {
        return Err(bad(
            h.at_field(automaton::STATE_COUNT),
            "needs at least the root, and between 1 and all of its states dense",
        ));
    }
    let narrow = flags & fmt::AUTOMATON_FLAG_NARROW != 0;
    let layout = fmt::AutomatonLayout::new(states, dense, classes, outputs, narrow).ok_or(
        ParseError::Overflow {
            offset: h.offset,
            what: "automaton layout",
        },
    )?;
    Ok(AutomatonHeader {
        field,
        narrow,
        lazy: flags & fmt::AUTOMATON_FLAG_LAZY != 0,
        states,
        dense,
        classes,
        outputs,
        layout,
    })
}

fn parse_automaton<'a>(
    cf: &ChannelFile<'a>,
    sec: Region<'a>,
    pos: u32,
    schema_mask: u64,
    limits: &Limits,
) -> Result<(Automaton<'a>, u32), ParseError> {
    let bad = |at: u32, reason| ParseError::BadAutomaton { offset: at, reason };
    let AutomatonHeader {
        field,
        narrow,
        lazy,
        states: s_count,
        dense: d_count,
        classes: c_count,
        outputs: o_count,
        layout: l,
    } = automaton_header(sec, pos, schema_mask, limits)?;
    let body = sec.sub(pos, l.end, "automaton")?;
    // The parts in FORMAT.md's order (`fmt::AutomatonLayout`).
    let part = |from: u32, to: u32, what| body.sub(from, to.saturating_sub(from), what);
    let classes_r = part(l.classes, l.dense, "automaton class map")?;
    let dense = part(l.dense, l.edge_start, "automaton dense rows")?;
    let edge_start = part(l.edge_start, l.fail, "automaton edge starts")?;
    let fail = part(l.fail, l.out_start, "automaton failure links")?;
    let out_start = part(l.out_start, l.outputs, "automaton output starts")?;
    let outputs = part(l.outputs, l.labels, "automaton outputs")?;
    let labels = part(l.labels, l.depths, "automaton labels")?;
    let depths = part(l.depths, l.depths_end, "automaton depths")?;
    part(l.depths_end, l.end, "automaton padding")?.check_zero("automaton padding")?;
    let classes: &'a [u8; 256] = classes_r
        .bytes
        .try_into()
        .map_err(|_| bad(classes_r.offset, "class map is not 256 bytes"))?;
    if let Some(b) = classes.iter().position(|&c| u32::from(c) >= c_count) {
        return Err(bad(classes_r.at(b as u32), "byte class out of range"));
    }
    // The matcher feeds ASCII units through the map unfolded.
    for b in b'a'..=b'z' {
        let (lower, upper) = (
            classes.get(usize::from(b)),
            classes.get(usize::from(b.to_ascii_uppercase())),
        );
        if lower != upper {
            return Err(bad(
                classes_r.at(u32::from(b)),
                "class map does not fold ASCII letters",
            ));
        }
    }
    let tables = part(l.edge_start, l.depths, "automaton tables")?;
    let rel = |at: u32| at.saturating_sub(l.edge_start);
    let a = Automaton {
        field,
        narrow,
        lazy,
        state_count: s_count,
        dense_count: d_count,
        class_count: c_count,
        output_count: o_count,
        classes,
        dense: dense.bytes,
        tables: tables.bytes,
        fail_at: rel(l.fail),
        out_start_at: rel(l.out_start),
        outputs_at: rel(l.outputs),
        labels_at: rel(l.labels),
        root_start: [0; 2],
    };
    let parts = AutomatonParts {
        edge_start,
        fail,
        out_start,
        outputs,
        labels,
        depths,
        dense,
    };
    if narrow {
        check_automaton_tables::<Narrow>(cf, &a, &parts, limits)?;
    } else {
        check_automaton_tables::<Wide>(cf, &a, &parts, limits)?;
    }
    let next = add(pos, l.end, sec.offset, "automaton")?;
    // Derived from the rows just validated: the scan's root skip set.
    let a = Automaton {
        root_start: a.root_start_set(),
        ..a
    };
    Ok((a, next))
}

/// The parts of one automaton after its class map, each cut to its exact
/// length by [`parse_automaton`].
struct AutomatonParts<'a> {
    edge_start: Region<'a>,
    fail: Region<'a>,
    out_start: Region<'a>,
    outputs: Region<'a>,
    labels: Region<'a>,
    depths: Region<'a>,
    dense: Region<'a>,
}

/// The width of an automaton's index arrays (FORMAT.md §10: `u16` with
/// NARROW, else `u32`), as a type, so that each array is cut once into
/// fixed cells and read without a per-entry width test.
trait IndexWidth {
    /// One entry's bytes.
    type Cell: Copy;
    /// The entry width in bytes.
    const W: u32;
    /// The entries of an array (cut to a whole number of entries).
    fn cells(b: &[u8]) -> &[Self::Cell];
    /// An entry's value.
    fn value(c: Self::Cell) -> u32;
}

struct Narrow;
struct Wide;

impl IndexWidth for Narrow {
    type Cell = [u8; 2];
    const W: u32 = 2;
    #[inline(always)]
    fn cells(b: &[u8]) -> &[[u8; 2]] {
        b.as_chunks::<2>().0
    }
    #[inline(always)]
    fn value(c: [u8; 2]) -> u32 {
        u32::from(u16::from_le_bytes(c))
    }
}

impl IndexWidth for Wide {
    type Cell = [u8; 4];
    const W: u32 = 4;
    #[inline(always)]
    fn cells(b: &[u8]) -> &[[u8; 4]] {
        b.as_chunks::<4>().0
    }
    #[inline(always)]
    fn value(c: [u8; 4]) -> u32 {
        u32::from_le_bytes(c)
    }
}

/// Entry `i` of an index array; 0 past the end (never, for the entries the
/// checks read: each array was cut to its exact length and the indices are
/// bounded first).
#[inline(always)]
fn entry<X: IndexWidth>(cells: &[X::Cell], i: u32) -> u32 {
    cells.get(i as usize).map_or(0, |&c| X::value(c))
}

/// Whether every entry of `cells` is at least the one before it and at most
/// `total`: pairs compared without a branch, in blocks the compiler
/// vectorises (the first failing entry is found by the caller's loop).
#[inline]
fn ascends_within<X: IndexWidth>(cells: &[X::Cell], total: u32) -> bool {
    let n = cells.len().saturating_sub(1);
    let (Some(before), Some(after)) = (cells.get(..n), cells.get(1..)) else {
        return true;
    };
    before.chunks(64).zip(after.chunks(64)).all(|(b, a)| {
        b.iter().zip(a).fold(true, |ok, (&p, &v)| {
            let (p, v) = (X::value(p), X::value(v));
            ok & (v >= p) & (v <= total)
        })
    })
}

/// The checks of FORMAT.md §10 on an automaton's tables, one linear pass
/// per array over fixed cells: edge and output starts ascend; the root;
/// per state its children (labels, depths), failure link and outputs (each
/// a PREFILTERED atom of the field); the dense rows' targets and exit flags.
fn check_automaton_tables<X: IndexWidth>(
    cf: &ChannelFile<'_>,
    a: &Automaton<'_>,
    p: &AutomatonParts<'_>,
    limits: &Limits,
) -> Result<(), ParseError> {
    let bad = |at: u32, reason| ParseError::BadAutomaton { offset: at, reason };
    let (s_count, d_count, c_count) = (a.state_count, a.dense_count, a.class_count);
    let (field, lazy) = (a.field, a.lazy);
    let es = X::cells(p.edge_start.bytes);
    let os = X::cells(p.out_start.bytes);
    let fails = X::cells(p.fail.bytes);
    let outs = X::cells(p.outputs.bytes);
    let (labels, depths) = (p.labels.bytes, p.depths.bytes);
    let depth = |s: u32| -> u8 { depths.get(s as usize).copied().unwrap_or(u8::MAX) };
    // Width of an index-array entry, for error offsets.
    let w = X::W;
    let e_count = s_count.saturating_sub(1);
    // Ranges of edges and outputs: ascending, from 0 to the totals. Each
    // array holds exactly S + 1 entries (its part's length).
    for (arr, cells, total, what) in [
        (
            p.edge_start,
            es,
            e_count,
            "edge starts do not ascend from 0 to the edge count",
        ),
        (
            p.out_start,
            os,
            a.output_count,
            "output starts do not ascend from 0 to the output count",
        ),
    ] {
        // Entry 0 must be 0; then each entry lies in [previous, total]
        // (one unsigned compare: previous ≤ total holds throughout); the
        // last (entry S) must be the total. A branch-free pass first; the
        // loop below finds where only when it fails.
        let last = cells.last().map_or(0, |&c| X::value(c));
        if entry::<X>(cells, 0) == 0 && last == total && ascends_within::<X>(cells, total) {
            continue;
        }
        if entry::<X>(cells, 0) != 0 {
            return Err(bad(arr.offset, what));
        }
        let mut prev = 0u32;
        let mut s = 1u32;
        for &c in cells.get(1..).unwrap_or(&[]) {
            let v = X::value(c);
            if v.wrapping_sub(prev) > total.wrapping_sub(prev) {
                return Err(bad(arr.at(s.saturating_mul(w)), what));
            }
            prev = v;
            s = s.wrapping_add(1);
        }
        if prev != total {
            return Err(bad(arr.at(s_count.saturating_mul(w)), what));
        }
    }
    if depth(0) != 0 || entry::<X>(fails, 0) != 0 {
        return Err(bad(
            p.depths.offset,
            "the root must have depth 0 and no failure link",
        ));
    }
    if entry::<X>(os, 1) != 0 {
        return Err(bad(p.out_start.offset, "the root has outputs"));
    }
    let atoms = records::<{ atom::LEN }>(cf.atoms);
    // Edge and output starts ascend (checked above): state `s`'s ranges
    // are the previous state's ends and entry `s + 1`.
    let (mut e0, mut o0) = (0u32, 0u32);
    let ends = es
        .get(1..)
        .unwrap_or(&[])
        .iter()
        .zip(os.get(1..).unwrap_or(&[]));
    let mut s = 0u32;
    for (((&ec, &oc), &fc), &d) in ends.zip(fails).zip(depths) {
        let (e1, o1) = (X::value(ec), X::value(oc));
        if e1 > e0 {
            let at = || p.edge_start.at(s.saturating_mul(w));
            // Children e0+1 ..= e1 (breadth-first numbering): after their parent.
            if e0 < s {
                return Err(bad(at(), "a child precedes its parent"));
            }
            let child_depth = d
                .checked_add(1)
                .ok_or_else(|| bad(at(), "depth overflows"))?;
            if u32::from(child_depth) > limits.max_literal_len {
                return Err(bad(at(), "deeper than the longest literal allowed"));
            }
            // e1 ≤ S − 1 (checked above): both slices exist.
            let ls = labels.get(e0 as usize..e1 as usize).unwrap_or(&[]);
            let ds = depths
                .get((e0 as usize).wrapping_add(1)..(e1 as usize).wrapping_add(1))
                .unwrap_or(&[]);
            // Labels strictly ascend below C: each above the previous (the
            // first above "-1"), as one compare on a widened value.
            let mut floor = 0u32;
            let mut e = e0;
            for (&label, &cd) in ls.iter().zip(ds) {
                let l = u32::from(label);
                if l < floor || l >= c_count {
                    return Err(bad(
                        p.labels.at(e),
                        "edge labels of a state are not strictly ascending classes",
                    ));
                }
                floor = l.wrapping_add(1);
                if cd != child_depth {
                    return Err(bad(
                        p.depths.at(e.saturating_add(1)),
                        "child depth is not parent depth + 1",
                    ));
                }
                e = e.wrapping_add(1);
            }
        }
        if s > 0 {
            let f = X::value(fc);
            if f >= s_count || depth(f) >= d {
                return Err(bad(
                    p.fail.at(s.saturating_mul(w)),
                    "failure link does not lead to a shallower state",
                ));
            }
        }
        // o1 ≤ O (checked above): the slice exists.
        let own = outs.get(o0 as usize..o1 as usize).unwrap_or(&[]);
        for (k, &oc) in (o0..).zip(own) {
            let atom_idx = X::value(oc);
            let oat = || p.outputs.at(k.saturating_mul(w));
            let Some(rec) = atoms.get(atom_idx as usize) else {
                return Err(ParseError::OutOfRange {
                    offset: oat(),
                    what: "output atom",
                    value: atom_idx,
                    bound: cf.atom_count,
                });
            };
            if FieldId(fld(rec, atom::FIELD)) != field {
                return Err(bad(oat(), "output atom tests another field"));
            }
            let flags = fld(rec, atom::FLAGS);
            if flags & fmt::ATOM_FLAG_PREFILTERED == 0 {
                return Err(bad(oat(), "output atom is not prefiltered"));
            }
            if lazy && flags & fmt::ATOM_FLAG_GATE != 0 {
                return Err(bad(oat(), "a lazy automaton's atom is a gate"));
            }
            if AtomKind(fld(rec, atom::KIND)).is_literal() && fld(rec, atom::STR_LEN) > u32::from(d)
            {
                return Err(bad(oat(), "literal is longer than the state's depth"));
            }
        }
        e0 = e1;
        o0 = o1;
        s = s.wrapping_add(1);
    }
    // Dense rows: targets exist, and the exit flag is set exactly when
    // the target has outputs or is not dense.
    let cells = d_count.saturating_mul(c_count) as usize;
    let rows = p
        .dense
        .bytes
        .as_chunks::<{ fmt::AUTOMATON_DENSE_ENTRY_LEN as usize }>()
        .0;
    for (i, cell) in (0u32..).zip(rows.iter().take(cells)) {
        let t = u32::from_le_bytes(*cell);
        let target = t & !fmt::DENSE_EXIT_FLAG;
        let has_outputs = entry::<X>(os, target.saturating_add(1)) != entry::<X>(os, target);
        let exit = has_outputs || target >= d_count;
        if target >= s_count || (t & fmt::DENSE_EXIT_FLAG != 0) != exit {
            return Err(bad(
                p.dense.at(i.saturating_mul(fmt::AUTOMATON_DENSE_ENTRY_LEN)),
                "dense transition to a missing state, or with a wrong exit flag",
            ));
        }
    }
    Ok(())
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
