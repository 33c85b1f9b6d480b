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

use crate::view::{Automaton, ChannelFile, Header};
use crate::wire::{add, mul, Region};
use crate::{Capabilities, ParseError};
use channel_format::{self as fmt, AtomKind, FieldId, FieldType, Limits, SectionKind};

const HEADER_LEN: u32 = fmt::HEADER_LEN as u32;
const ENTRY_LEN: u32 = 16;
const RULE_LEN: u32 = 32;
const ATOM_LEN: u32 = 20;
const STATE_LEN: u32 = 16;
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
        RULE_LEN,
        "rules",
        "is not a multiple of the 32-byte rule record",
    )?;
    check_limit(rules.offset, "rule count", rule_count, limits.max_rules)?;
    let atom_count = record_count(
        atoms,
        ATOM_LEN,
        "atoms",
        "is not a multiple of the 20-byte atom record",
    )?;
    check_limit(atoms.offset, "atom count", atom_count, limits.max_atoms)?;
    if !rule_fields.len().is_multiple_of(2) {
        return Err(ParseError::BadSectionLen {
            offset: rule_fields.offset,
            what: "rule-fields",
            len: rule_fields.len(),
            reason: "is odd",
        });
    }
    let always_count = record_count(always, 4, "always", "is not a multiple of 4")?;
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
        automata: [Automaton::EMPTY, Automaton::EMPTY],
        rollout: None,
        enforcement: None,
    };
    let flagged = parse_rules(&cf, caps, schema_mask, limits)?;
    cf.automata = parse_prefilter(&cf, prefilter, schema_mask, limits)?;
    parse_always(&cf, flagged)?;
    if let Some(Some(r)) = sections.get(SectionKind::SIGNATURE.0 as usize) {
        let v = r.u32_at(0, "signature section version")?;
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

/// Offset of a field of the ENFORCEMENT record.
macro_rules! enf {
    ($field:ident) => {
        core::mem::offset_of!(fmt::RawEnforcement, $field) as u32
    };
}

/// ENFORCEMENT: version 1, exactly 40 bytes, known flags, each set part
/// within the format's bounds, the fields of unset parts and the reserved
/// word zero (FORMAT.md §15).
fn parse_enforcement(r: Region<'_>) -> Result<crate::EnforcementPolicy, ParseError> {
    let v = r.u32_at(enf!(version), "enforcement version")?;
    if v != fmt::ENFORCEMENT_VERSION {
        return Err(ParseError::InvalidValue {
            offset: r.offset,
            what: "enforcement version",
            value: v,
        });
    }
    if r.len() != fmt::ENFORCEMENT_LEN as u32 {
        return Err(ParseError::BadSectionLen {
            offset: r.offset,
            what: "enforcement",
            len: r.len(),
            reason: "is not 40 bytes",
        });
    }
    let flags = r.u32_at(enf!(flags), "enforcement flags")?;
    let known = fmt::ENFORCEMENT_FLAG_MONITOR_FIRST
        | fmt::ENFORCEMENT_FLAG_RULE_BREAKER
        | fmt::ENFORCEMENT_FLAG_MACHINE_BREAKER;
    if flags & !known != 0 {
        return Err(ParseError::InvalidValue {
            offset: r.at(enf!(flags)),
            what: "enforcement flags",
            value: flags,
        });
    }
    r.sub(enf!(reserved), 4, "enforcement reserved")?
        .check_zero("enforcement reserved word")?;
    // A part: its fields must be zero when its flag is clear.
    let part = |flag: u32, at: u32, n: u32, what: &'static str| -> Result<bool, ParseError> {
        let on = flags & flag != 0;
        if !on {
            r.sub(at, n, what)?.check_zero(what)?;
        }
        Ok(on)
    };
    let bounded = |at: u32, what: &'static str, lo: u32, hi: u32| -> Result<u32, ParseError> {
        let v = r.u32_at(at, what)?;
        if v < lo || v > hi {
            return Err(ParseError::InvalidValue {
                offset: r.at(at),
                what,
                value: v,
            });
        }
        Ok(v)
    };
    let monitor_first = if part(
        fmt::ENFORCEMENT_FLAG_MONITOR_FIRST,
        enf!(monitor_first_canary),
        12,
        "monitor-first periods without the monitor-first flag",
    )? {
        let what = "monitor-first period (seconds, at most 2592000)";
        Some([
            bounded(
                enf!(monitor_first_canary),
                what,
                0,
                fmt::MAX_MONITOR_FIRST_SECS,
            )?,
            bounded(
                enf!(monitor_first_early),
                what,
                0,
                fmt::MAX_MONITOR_FIRST_SECS,
            )?,
            bounded(
                enf!(monitor_first_broad),
                what,
                0,
                fmt::MAX_MONITOR_FIRST_SECS,
            )?,
        ])
    } else {
        None
    };
    let window = "breaker window (seconds, 1 to 86400)";
    let rule_breaker = if part(
        fmt::ENFORCEMENT_FLAG_RULE_BREAKER,
        enf!(rule_denies),
        8,
        "rule breaker without the rule-breaker flag",
    )? {
        Some(crate::BreakerLimit {
            denies: bounded(
                enf!(rule_denies),
                "rule breaker denies (1 to 1000)",
                1,
                fmt::MAX_RULE_BREAKER_DENIES,
            )?,
            window_secs: bounded(
                enf!(rule_window_secs),
                window,
                1,
                fmt::MAX_BREAKER_WINDOW_SECS,
            )?,
        })
    } else {
        None
    };
    let machine_breaker = if part(
        fmt::ENFORCEMENT_FLAG_MACHINE_BREAKER,
        enf!(machine_denies),
        8,
        "machine breaker without the machine-breaker flag",
    )? {
        Some(crate::BreakerLimit {
            denies: bounded(
                enf!(machine_denies),
                "machine breaker denies (1 to 10000)",
                1,
                fmt::MAX_MACHINE_BREAKER_DENIES,
            )?,
            window_secs: bounded(
                enf!(machine_window_secs),
                window,
                1,
                fmt::MAX_BREAKER_WINDOW_SECS,
            )?,
        })
    } else {
        None
    };
    Ok(crate::EnforcementPolicy {
        monitor_first,
        rule_breaker,
        machine_breaker,
    })
}

/// ROLLOUT: version 1; 8 bytes with no flags, or 32 bytes with a policy
/// and/or a rollback ceiling (FORMAT.md §13).
fn parse_rollout(r: Region<'_>) -> Result<Option<crate::RolloutPolicy>, ParseError> {
    let v = r.u32_at(0, "rollout version")?;
    if v != fmt::ROLLOUT_VERSION {
        return Err(ParseError::InvalidValue {
            offset: r.offset,
            what: "rollout version",
            value: v,
        });
    }
    let flags = r.u32_at(4, "rollout flags")?;
    let known = fmt::ROLLOUT_FLAG_POLICY | fmt::ROLLOUT_FLAG_ROLLBACK;
    if flags & !known != 0 {
        return Err(ParseError::InvalidValue {
            offset: r.at(4),
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
    let ring = fmt::Ring(r.u8_at(8, "rollout ring")?);
    if !ring.is_known() {
        return Err(ParseError::InvalidValue {
            offset: r.at(8),
            what: "rollout ring",
            value: u32::from(ring.0),
        });
    }
    r.sub(9, 3, "rollout reserved")?
        .check_zero("rollout reserved bytes")?;
    let percent_milli = r.u32_at(12, "rollout percentage")?;
    if percent_milli > fmt::ROLLOUT_PERCENT_MILLI_MAX {
        return Err(ParseError::InvalidValue {
            offset: r.at(12),
            what: "rollout percentage (thousandths, at most 100000)",
            value: percent_milli,
        });
    }
    let not_before = r.u64_at(16, "rollout not-before")?;
    let ceiling = r.u64_at(24, "rollback ceiling")?;
    let policy = flags & fmt::ROLLOUT_FLAG_POLICY != 0;
    let rollback = flags & fmt::ROLLOUT_FLAG_ROLLBACK != 0;
    if !policy && (ring.0 != 0 || percent_milli != 0 || not_before != 0) {
        return Err(ParseError::NonZeroReserved {
            offset: r.at(8),
            what: "rollout policy fields without the policy flag",
        });
    }
    if !rollback && ceiling != 0 {
        return Err(ParseError::NonZeroReserved {
            offset: r.at(24),
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
    if hdr.bytes.get(..8) != Some(&fmt::MAGIC[..]) {
        return Err(ParseError::BadMagic);
    }
    let endian = hdr.u16_at(h::ENDIAN as u32, "endianness marker")?;
    if endian != fmt::ENDIAN_MARKER {
        return Err(ParseError::BadEndianness { found: endian });
    }
    let header_len = hdr.u16_at(h::HEADER_LEN as u32, "header length")?;
    if header_len != fmt::HEADER_LEN {
        return Err(ParseError::BadHeaderLen { found: header_len });
    }
    let format_major = hdr.u16_at(h::FORMAT_MAJOR as u32, "format version")?;
    if format_major != fmt::FORMAT_VERSION {
        return Err(ParseError::UnsupportedVersion {
            found: format_major,
            expected: fmt::FORMAT_VERSION,
        });
    }
    let format_minor = hdr.u16_at(h::FORMAT_MINOR as u32, "minor version")?;
    let channel = hdr.u32_at(h::CHANNEL as u32, "channel")?;
    if channel != fmt::CHANNEL_PIPES {
        return Err(ParseError::WrongChannel { found: channel });
    }
    let required_flags = hdr.u32_at(h::REQUIRED_FLAGS as u32, "required flags")?;
    if required_flags & !fmt::KNOWN_REQUIRED_FLAGS != 0 {
        return Err(ParseError::UnknownRequiredFlags {
            flags: required_flags & !fmt::KNOWN_REQUIRED_FLAGS,
        });
    }
    let sequence = hdr.u64_at(h::SEQUENCE as u32, "sequence")?;
    let total_len = hdr.u32_at(h::TOTAL_LEN as u32, "total length")?;
    if total_len != file_len {
        return Err(ParseError::LengthMismatch {
            header: total_len,
            actual: file_len,
        });
    }
    let section_count = hdr.u32_at(h::SECTION_COUNT as u32, "section count")?;
    check_limit(
        h::SECTION_COUNT as u32,
        "section count",
        section_count,
        limits.max_sections,
    )?;
    let optional_flags = hdr.u32_at(h::OPTIONAL_FLAGS as u32, "optional flags")?;
    hdr.sub(h::RESERVED0 as u32, 20, "reserved header bytes")?
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
        ENTRY_LEN,
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
        let entry_off = table.at(mul(i, ENTRY_LEN, table.offset, "section entry")?);
        let e = table.record(i, 16, "section entry")?;
        let kind = SectionKind(e.u32_at(0, "section kind")?);
        let flags = e.u32_at(4, "section flags")?;
        let offset = e.u32_at(8, "section offset")?;
        let len = e.u32_at(12, "section length")?;
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
fn parse_schema(schema: Region<'_>, caps: &Capabilities) -> Result<u64, ParseError> {
    let count = record_count(
        schema,
        4,
        "schema",
        "is not a multiple of the 4-byte schema entry",
    )?;
    let mut mask = 0u64;
    for i in 0..count {
        let e = schema.record(i, 4, "schema entry")?;
        let field = FieldId(e.u16_at(0, "schema field")?);
        let ty = e.u8_at(2, "schema field type")?;
        if e.u8_at(3, "schema reserved")? != 0 {
            return Err(ParseError::NonZeroReserved {
                offset: e.at(3),
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
                offset: e.at(2),
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
    let count = dfas.u32_at(0, "DFA count")?;
    check_limit(dfas.offset, "DFA count", count, limits.max_dfas)?;
    if dfas.u32_at(4, "DFA reserved")? != 0 {
        return Err(ParseError::NonZeroReserved {
            offset: dfas.at(4),
            what: "DFA section reserved word",
        });
    }
    if count > 0 && !bytes.as_ptr().addr().is_multiple_of(4) {
        return Err(ParseError::Misaligned {
            offset: dfas.offset,
        });
    }
    let table_end = add(
        8,
        mul(count, 8, dfas.offset, "DFA table")?,
        dfas.offset,
        "DFA table",
    )?;
    dfas.sub(0, table_end, "DFA table")?;
    let mut pos = table_end;
    for i in 0..count {
        let at = add(
            8,
            mul(i, 8, dfas.offset, "DFA entry")?,
            dfas.offset,
            "DFA entry",
        )?;
        let off = dfas.u32_at(at, "DFA offset")?;
        let len = dfas.u32_at(add(at, 4, dfas.offset, "DFA entry")?, "DFA length")?;
        check_limit(dfas.at(at), "DFA length", len, limits.max_dfa_len)?;
        if !off.is_multiple_of(8) || off < pos {
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

/// Two-bit abstract value for Kleene evaluation of a condition with
/// prefiltered atoms false and the others unknown.
#[derive(Clone, Copy)]
struct Stack {
    may_true: u64,
    may_false: u64,
    depth: u32,
}

impl Stack {
    fn push(&mut self, t: bool, f: bool) {
        self.may_true = (self.may_true << 1) | u64::from(t);
        self.may_false = (self.may_false << 1) | u64::from(f);
        self.depth = self.depth.saturating_add(1);
    }
    fn pop(&mut self) -> (bool, bool) {
        let v = (self.may_true & 1 == 1, self.may_false & 1 == 1);
        self.may_true >>= 1;
        self.may_false >>= 1;
        self.depth = self.depth.saturating_sub(1);
        v
    }
}

/// Validates every rule, its fields, atoms and program. Returns the number of
/// rules flagged always-evaluate.
fn parse_rules(
    cf: &ChannelFile<'_>,
    caps: &Capabilities,
    schema_mask: u64,
    limits: &Limits,
) -> Result<u32, ParseError> {
    let rule_field_count = cf.rule_fields.len() >> 1;
    let max_depth = limits.max_stack_depth.min(64);
    let mut flagged = 0u32;
    let mut prev_id: Option<u32> = None;
    let mut expected_atom_start = 0u32;
    for r in 0..cf.rule_count {
        let rec = cf.rules.record(r, 32, "rule")?;
        let id = rec.u32_at(0, "rule id")?;
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
        let name_len = rec.u32_at(8, "rule name length")?;
        check_limit(
            rec.at(8),
            "rule name length",
            name_len,
            limits.max_string_len,
        )?;
        cf.strings
            .str_at(rec.u32_at(4, "rule name offset")?, name_len, "rule name")?;
        let severity = rec.u8_at(18, "severity")?;
        if !fmt::Severity(severity).is_known() {
            return Err(ParseError::InvalidValue {
                offset: rec.at(18),
                what: "severity",
                value: u32::from(severity),
            });
        }
        let action = rec.u8_at(19, "action")?;
        if !fmt::Action(action).is_known() {
            return Err(ParseError::InvalidValue {
                offset: rec.at(19),
                what: "action",
                value: u32::from(action),
            });
        }
        let flags = rec.u16_at(26, "rule flags")?;
        if flags & !fmt::RULE_FLAG_ALWAYS != 0 {
            return Err(ParseError::InvalidValue {
                offset: rec.at(26),
                what: "rule flags",
                value: u32::from(flags),
            });
        }

        // Fields: declared in the schema and supplied by this sensor.
        let fields_start = rec.u32_at(12, "rule fields start")?;
        let fields_count = u32::from(rec.u16_at(16, "rule fields count")?);
        check_limit(
            rec.at(16),
            "fields per rule",
            fields_count,
            limits.max_fields_per_rule,
        )?;
        let fields_end = add(fields_start, fields_count, rec.at(12), "rule fields end")?;
        if fields_end > rule_field_count {
            return Err(ParseError::OutOfRange {
                offset: rec.at(12),
                what: "rule fields end",
                value: fields_end,
                bound: rule_field_count.saturating_add(1),
            });
        }
        let mut rule_mask = 0u64;
        for k in fields_start..fields_end {
            let at = mul(k, 2, cf.rule_fields.offset, "rule field")?;
            let field = FieldId(cf.rule_fields.u16_at(at, "rule field")?);
            let off = cf.rule_fields.at(at);
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

        // Atoms: contiguous per rule, in rule order.
        let atoms_start = rec.u32_at(28, "rule atoms start")?;
        if atoms_start != expected_atom_start {
            return Err(ParseError::OutOfRange {
                offset: rec.at(28),
                what: "rule atoms start (must follow the previous rule's)",
                value: atoms_start,
                bound: expected_atom_start.saturating_add(1),
            });
        }
        let atoms_end = if let Some(next) = r.checked_add(1).filter(|n| *n < cf.rule_count) {
            cf.rules.u32_at(
                add(mul(next, 32, rec.offset, "rule")?, 28, rec.offset, "rule")?,
                "rule atoms start",
            )?
        } else {
            cf.atom_count
        };
        if atoms_end < atoms_start || atoms_end > cf.atom_count {
            return Err(ParseError::OutOfRange {
                offset: rec.at(28),
                what: "rule atoms end",
                value: atoms_end,
                bound: cf.atom_count.saturating_add(1),
            });
        }
        check_limit(
            rec.at(28),
            "atoms per rule",
            atoms_end.saturating_sub(atoms_start),
            limits.max_atoms_per_rule,
        )?;
        for a in atoms_start..atoms_end {
            parse_atom(cf, a, r, id, rule_mask, limits)?;
        }
        expected_atom_start = atoms_end;

        // Program.
        let prog_off = rec.u32_at(20, "program offset")?;
        let prog_len = u32::from(rec.u16_at(24, "program length")?);
        check_limit(
            rec.at(24),
            "program length",
            prog_len,
            limits.max_program_len,
        )?;
        let prog = cf
            .programs
            .sub(prog_off, prog_len, "program")
            .map_err(|_| ParseError::OutOfRange {
                offset: rec.at(20),
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
    Ok(flagged)
}

fn parse_atom(
    cf: &ChannelFile<'_>,
    a: u32,
    rule: u32,
    rule_id: u32,
    rule_mask: u64,
    limits: &Limits,
) -> Result<(), ParseError> {
    let rec = cf.atoms.record(a, 20, "atom")?;
    let owner = rec.u32_at(0, "atom rule")?;
    if owner != rule {
        return Err(ParseError::OutOfRange {
            offset: rec.offset,
            what: "atom rule index (must be its rule's)",
            value: owner,
            bound: rule.saturating_add(1),
        });
    }
    let field = FieldId(rec.u16_at(4, "atom field")?);
    let kind = AtomKind(rec.u8_at(6, "atom kind")?);
    let flags = rec.u8_at(7, "atom flags")?;
    let str_off = rec.u32_at(8, "atom string offset")?;
    let str_len = rec.u32_at(12, "atom string length")?;
    let arg = rec.u32_at(16, "atom argument")?;
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
            offset: rec.at(6),
            what: "atom kind",
            value: u32::from(kind.0),
        });
    }
    if flags & !(fmt::ATOM_FLAG_PREFILTERED | fmt::ATOM_FLAG_CASE_INSENSITIVE) != 0 {
        return Err(ParseError::InvalidValue {
            offset: rec.at(7),
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
                offset: rec.at(7),
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
    check_limit(rec.at(12), "atom string length", str_len, limit)?;
    let text = cf.strings.str_at(str_off, str_len, "atom string")?;
    let text_off = cf.strings.at(str_off);
    if kind.is_literal() {
        if flags != fmt::ATOM_FLAG_PREFILTERED || arg != 0 {
            return Err(ParseError::InvalidValue {
                offset: rec.at(7),
                what: "literal atom flags/argument",
                value: u32::from(flags),
            });
        }
        if text.is_empty() {
            return Err(ParseError::InvalidValue {
                offset: rec.at(12),
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
                offset: rec.at(7),
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
            offset: rec.at(16),
            what: "DFA index",
            value: arg,
            bound: cf.dfa_count,
        });
    }
    Ok(())
}

/// Validates a condition program: known opcodes, atom references inside the
/// rule's atoms, stack depth within `max_depth` and never underflowing,
/// exactly one value at the end. Returns whether the rule must be evaluated
/// on every event (Kleene value with prefiltered atoms false is not false).
fn check_program(
    cf: &ChannelFile<'_>,
    prog: Region<'_>,
    rule_id: u32,
    atoms_start: u32,
    atoms_end: u32,
    max_depth: u32,
) -> Result<bool, ParseError> {
    use fmt::op;
    let mut st = Stack {
        may_true: 0,
        may_false: 0,
        depth: 0,
    };
    let mut pc = 0u32;
    let bad = |at: u32, reason| ParseError::BadProgram {
        offset: prog.at(at),
        rule_id,
        reason,
    };
    if prog.len() == 0 {
        return Err(bad(0, "empty program"));
    }
    while pc < prog.len() {
        let opcode = prog.u8_at(pc, "opcode")?;
        let at = pc;
        pc = pc.saturating_add(1);
        let need = match opcode {
            op::ATOM | op::TRUE | op::FALSE => 0,
            op::NOT => 1,
            op::AND | op::OR => 2,
            _ => return Err(bad(at, "unknown opcode")),
        };
        if st.depth < need {
            return Err(bad(at, "stack underflow"));
        }
        match opcode {
            op::ATOM => {
                let idx = prog
                    .u32_at(pc, "atom operand")
                    .map_err(|_| bad(at, "truncated atom operand"))?;
                pc = pc.saturating_add(4);
                if idx < atoms_start || idx >= atoms_end {
                    return Err(bad(at, "atom operand outside the rule's atoms"));
                }
                let atom = cf.atom(idx);
                let known_false = atom.kind().is_literal() || atom.prefiltered();
                st.push(!known_false, true);
            }
            op::TRUE => st.push(true, false),
            op::FALSE => st.push(false, true),
            op::NOT => {
                let (t, f) = st.pop();
                st.push(f, t);
            }
            _ => {
                let (bt, bf) = st.pop();
                let (at_, af) = st.pop();
                if opcode == op::AND {
                    st.push(at_ && bt, af || bf);
                } else {
                    st.push(at_ || bt, af && bf);
                }
            }
        }
        if st.depth > max_depth {
            return Err(bad(at, "stack deeper than the limit"));
        }
    }
    if st.depth != 1 {
        return Err(bad(prog.len(), "program must leave exactly one value"));
    }
    Ok(st.pop().0)
}

fn parse_prefilter<'a>(
    cf: &ChannelFile<'a>,
    sec: Region<'a>,
    schema_mask: u64,
    limits: &Limits,
) -> Result<[Automaton<'a>; 2], ParseError> {
    let mut out = [Automaton::EMPTY, Automaton::EMPTY];
    let count = sec.u32_at(0, "automaton count")?;
    check_limit(sec.offset, "automaton count", count, 2)?;
    if sec.u32_at(4, "prefilter reserved")? != 0 {
        return Err(ParseError::NonZeroReserved {
            offset: sec.at(4),
            what: "prefilter reserved word",
        });
    }
    let mut pos = 8u32;
    for _ in 0..count {
        let (a, next) = parse_automaton(cf, sec, pos, schema_mask, limits)?;
        let slot = if a.field == FieldId::PIPE_NAME {
            0usize
        } else {
            1
        };
        match out.get_mut(slot) {
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
    let h = sec.sub(pos, fmt::AUTOMATON_HEADER_LEN as u32, "automaton header")?;
    let bad = |at: u32, reason| ParseError::BadAutomaton { offset: at, reason };
    let field = FieldId(h.u16_at(0, "automaton field")?);
    if field != FieldId::PIPE_NAME && field != FieldId::IMAGE {
        return Err(bad(h.offset, "field is not a string field"));
    }
    if !declared(schema_mask, field) {
        return Err(bad(h.offset, "field is not declared in the schema"));
    }
    h.sub(2, 2, "automaton reserved")?
        .check_zero("automaton reserved bytes")?;
    h.sub(16, 8, "automaton reserved")?
        .check_zero("automaton reserved bytes")?;
    let s_count = h.u32_at(4, "state count")?;
    let e_count = h.u32_at(8, "edge count")?;
    let o_count = h.u32_at(12, "output count")?;
    check_limit(h.at(4), "state count", s_count, limits.max_states)?;
    check_limit(h.at(12), "output count", o_count, limits.max_states)?;
    if s_count == 0 || e_count != s_count.saturating_sub(1) {
        return Err(bad(
            h.at(4),
            "needs at least the root and exactly one edge per non-root state",
        ));
    }
    let mut p = add(
        pos,
        fmt::AUTOMATON_HEADER_LEN as u32,
        sec.offset,
        "automaton",
    )?;
    let states = sec.sub(
        p,
        mul(s_count, STATE_LEN, h.offset, "states")?,
        "automaton states",
    )?;
    p = add(p, states.len(), h.offset, "automaton")?;
    let labels = sec.sub(p, e_count, "automaton labels")?;
    p = add(p, e_count, h.offset, "automaton")?;
    let depths = sec.sub(p, s_count, "automaton depths")?;
    p = add(p, s_count, h.offset, "automaton")?;
    let pad = p.next_multiple_of(4).wrapping_sub(p);
    sec.sub(p, pad, "automaton padding")?
        .check_zero("automaton padding")?;
    p = add(p, pad, h.offset, "automaton")?;
    let outputs = sec.sub(
        p,
        mul(o_count, 4, h.offset, "outputs")?,
        "automaton outputs",
    )?;
    p = add(p, outputs.len(), h.offset, "automaton")?;
    let pad = p.next_multiple_of(8).wrapping_sub(p);
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
        let at = states.at(s.saturating_mul(STATE_LEN));
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
            let oat = outputs.at(k.saturating_mul(4));
            let atom_idx = outputs.u32_at(k.saturating_mul(4), "output")?;
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
        let at = i.saturating_mul(4);
        let r = cf.always.u32_at(at, "always entry")?;
        if prev.is_some_and(|p| p >= r) {
            return Err(bad(cf.always.at(at), "entries are not strictly ascending"));
        }
        prev = Some(r);
        match cf.rule(r) {
            Some(rule) if rule.always_evaluated() => {}
            _ => {
                return Err(bad(
                    cf.always.at(at),
                    "entry is not an always-evaluate rule",
                ))
            }
        }
    }
    Ok(())
}
