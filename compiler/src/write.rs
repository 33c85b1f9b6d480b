//! Section bodies and the file layout, written with `channel_format`'s
//! records: the header, the section table, SCHEMA, PREFILTER (the automata
//! `automata/` builds, placed as [`fmt::AutomatonLayout`] says), ALWAYS,
//! ROLLOUT and an unsigned SIGNATURE block (DFAS: `automata::dfa`).

use crate::automata::prefilter::{Prefilter, DENSE_BUDGET};
use crate::compile::{CompileError, CompileErrorKind};
use channel_format::{self as fmt, FieldId, Limits, SectionKind};
use std::collections::BTreeMap;

/// The SCHEMA body: one entry per field, in the order given.
pub(crate) fn schema_body(fields: &[FieldId]) -> Vec<u8> {
    let mut out = Vec::with_capacity(fields.len() * fmt::schema::LEN);
    for f in fields {
        let rec = fmt::SchemaRecord {
            field: f.0,
            field_type: f.field_type().map_or(0, |t| t.0),
            reserved: 0,
        };
        out.extend_from_slice(&rec.to_bytes());
    }
    out
}

/// The PREFILTER body: one automaton per field over its literals (folded
/// bytes, atom index); the fields in `lazy` are scanned only on demand.
///
/// # Errors
/// An automaton with more states than `limits.max_states`.
pub(crate) fn prefilter_body(
    literals: &BTreeMap<u16, Vec<(Vec<u8>, u32)>>,
    lazy: &[FieldId],
    limits: &Limits,
) -> Result<Vec<u8>, CompileError> {
    let head = fmt::PrefilterRecord {
        count: literals.len() as u32,
        reserved: 0,
    };
    let mut out = head.to_bytes().to_vec();
    for (field, lits) in literals {
        let ac = Prefilter::build(lits, DENSE_BUDGET);
        if ac.states() > limits.max_states as usize {
            return Err(CompileError {
                loc: None,
                rule: None,
                kind: CompileErrorKind::LimitExceeded,
                message: format!(
                    "prefilter for field {} has {} states, above the limit of {}",
                    FieldId(*field),
                    ac.states(),
                    limits.max_states
                ),
            });
        }
        // Automata start AUTOMATON_ALIGN-aligned (the section header and
        // every automaton end so).
        ac.write(*field, lazy.contains(&FieldId(*field)), &mut out)
            .ok_or_else(|| CompileError {
                loc: None,
                rule: None,
                kind: CompileErrorKind::LimitExceeded,
                message: format!("prefilter for field {} does not fit", FieldId(*field)),
            })?;
    }
    Ok(out)
}

/// The ALWAYS body: the rule indices, ascending.
pub(crate) fn always_body(rules: &[u32]) -> Vec<u8> {
    rules
        .iter()
        .flat_map(|&rule| fmt::AlwaysRecord { rule }.to_bytes())
        .collect()
}

/// The SIGNATURE body of an unsigned file: the version word and no entries
/// (`crate::sign` replaces it).
pub(crate) fn unsigned_signature_body() -> Vec<u8> {
    fmt::SignatureRecord {
        version: fmt::SIGNATURE_VERSION,
        count: 0,
    }
    .to_bytes()
    .to_vec()
}

/// The ROLLOUT section body (FORMAT.md §13): the version and flags words
/// alone without a policy, the whole record with one.
pub fn rollout_body(policy: Option<&channel_parser::RolloutPolicy>) -> Vec<u8> {
    let mut rec = fmt::RolloutRecord {
        version: fmt::ROLLOUT_VERSION,
        flags: 0,
        ring: 0,
        reserved: [0; 3],
        percent_milli: 0,
        not_before: 0,
        rollback_ceiling: 0,
    };
    let Some(p) = policy.filter(|p| p.staged.is_some() || p.rollback_ceiling.is_some()) else {
        return rec.to_bytes()[..fmt::ROLLOUT_LEN_EMPTY].to_vec();
    };
    if let Some(s) = p.staged {
        rec.flags |= fmt::ROLLOUT_FLAG_POLICY;
        rec.ring = s.ring.0;
        rec.percent_milli = s.percent_milli;
        rec.not_before = s.not_before;
    }
    if let Some(c) = p.rollback_ceiling {
        rec.flags |= fmt::ROLLOUT_FLAG_ROLLBACK;
        rec.rollback_ceiling = c;
    }
    rec.to_bytes().to_vec()
}

/// The ENFORCEMENT section body (FORMAT.md §15); `None` when the policy sets
/// nothing. Values are written as given: the parser checks the bounds, so a
/// policy out of bounds fails the compiler's self-check (`pipectl compile`
/// checks them first, with a message).
pub fn enforcement_body(p: &channel_parser::EnforcementPolicy) -> Option<Vec<u8>> {
    if *p == channel_parser::EnforcementPolicy::default() {
        return None;
    }
    let mut rec = fmt::EnforcementRecord {
        version: fmt::ENFORCEMENT_VERSION,
        flags: 0,
        monitor_first_canary: 0,
        monitor_first_early: 0,
        monitor_first_broad: 0,
        rule_denies: 0,
        rule_window_secs: 0,
        machine_denies: 0,
        machine_window_secs: 0,
        reserved: 0,
    };
    if let Some([c, e, b]) = p.monitor_first {
        rec.flags |= fmt::ENFORCEMENT_FLAG_MONITOR_FIRST;
        (
            rec.monitor_first_canary,
            rec.monitor_first_early,
            rec.monitor_first_broad,
        ) = (c, e, b);
    }
    if let Some(l) = p.rule_breaker {
        rec.flags |= fmt::ENFORCEMENT_FLAG_RULE_BREAKER;
        (rec.rule_denies, rec.rule_window_secs) = (l.denies, l.window_secs);
    }
    if let Some(l) = p.machine_breaker {
        rec.flags |= fmt::ENFORCEMENT_FLAG_MACHINE_BREAKER;
        (rec.machine_denies, rec.machine_window_secs) = (l.denies, l.window_secs);
    }
    Some(rec.to_bytes().to_vec())
}

/// Lays out a file: header, section table, then each section
/// [`fmt::SECTION_ALIGN`]-aligned in the order given, zero padding between.
/// No validation: the malformed-corpus generator uses it to build files the
/// parser must reject.
pub fn assemble(
    sequence: u64,
    optional_flags: u32,
    bodies: &[(SectionKind, u32, Vec<u8>)],
) -> Vec<u8> {
    let table_len = fmt::section::LEN * bodies.len();
    let mut buf = vec![0; fmt::header::LEN + table_len];
    let mut table = Vec::with_capacity(bodies.len());
    for (kind, flags, body) in bodies {
        pad_to(&mut buf, fmt::SECTION_ALIGN as usize);
        table.push(fmt::SectionRecord {
            kind: kind.0,
            flags: *flags,
            offset: buf.len() as u32,
            len: body.len() as u32,
        });
        buf.extend_from_slice(body);
    }
    pad_to(&mut buf, fmt::SECTION_ALIGN as usize);
    let header = fmt::HeaderRecord {
        magic: fmt::MAGIC,
        endian: fmt::ENDIAN_MARKER,
        header_len: fmt::HEADER_LEN,
        format_major: fmt::FORMAT_VERSION,
        format_minor: fmt::FORMAT_MINOR,
        channel: fmt::CHANNEL_PIPES,
        required_flags: 0,
        sequence,
        total_len: buf.len() as u32,
        section_count: table.len() as u32,
        optional_flags,
        reserved: [0; 20],
    };
    let (head, rest) = buf.split_at_mut(fmt::header::LEN);
    header.write(head);
    for (i, e) in table.iter().enumerate() {
        if let Some(slot) = fmt::SectionRecord::nth_mut(rest, i) {
            e.write(slot);
        }
    }
    buf
}

fn pad_to(v: &mut Vec<u8>, align: usize) {
    v.resize(v.len().next_multiple_of(align), 0);
}
