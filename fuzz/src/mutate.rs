//! Byte-level mutation of a valid channel file that keeps the framing
//! consistent: the file is split into header, section table and section
//! bodies; mutations edit the bodies (including inserting and deleting
//! bytes, and editing the DFA blobs in place); the file is then laid out
//! again with correct section offsets and lengths and the header's total
//! length. Format v1 has no checksum or digest to recompute. A few mutations
//! deliberately edit the header or the table after layout.

use arbitrary::{Result, Unstructured};
use channel_format::{self as fmt, dfa_table, header, section, SectionRecord};

/// A channel file split into its parts.
#[derive(Debug, Clone)]
pub struct Layout {
    /// The 64-byte header.
    pub header: Vec<u8>,
    /// (kind, flags, body) in table order.
    pub sections: Vec<(u32, u32, Vec<u8>)>,
    /// Order in which bodies are placed in the file (indices into `sections`).
    pub order: Vec<usize>,
}

impl Layout {
    /// Splits a (well-framed) file; `None` if the framing is not readable.
    pub fn split(bytes: &[u8]) -> Option<Layout> {
        let header = bytes.get(..header::LEN)?.to_vec();
        let count = header::SECTION_COUNT.get(&header)? as usize;
        let table = &bytes[header::LEN..];
        let mut sections = Vec::new();
        let mut placed = Vec::new();
        for i in 0..count.min(64) {
            let e = SectionRecord::read_nth(table, i)?;
            let (off, len) = (e.offset as usize, e.len as usize);
            let body = bytes.get(off..off.checked_add(len)?)?.to_vec();
            sections.push((e.kind, e.flags, body));
            placed.push((off, i));
        }
        placed.sort_unstable();
        Some(Layout {
            header,
            sections,
            order: placed.into_iter().map(|(_, i)| i).collect(),
        })
    }

    /// Lays the file out again: table after the header, bodies 8-aligned in
    /// `order`, zero padding, header count and total length updated.
    pub fn join(&self) -> Vec<u8> {
        let n = self.sections.len();
        let mut out = self.header.clone();
        out.resize(header::LEN + section::LEN * n, 0);
        let mut offs = vec![(0u32, 0u32); n];
        for &i in &self.order {
            while !out.len().is_multiple_of(fmt::SECTION_ALIGN as usize) {
                out.push(0);
            }
            let body = &self.sections[i].2;
            offs[i] = (out.len() as u32, body.len() as u32);
            out.extend_from_slice(body);
        }
        for (i, (kind, flags, _)) in self.sections.iter().enumerate() {
            let e = SectionRecord {
                kind: *kind,
                flags: *flags,
                offset: offs[i].0,
                len: offs[i].1,
            };
            if let Some(slot) = SectionRecord::nth_mut(&mut out[header::LEN..], i) {
                e.write(slot);
            }
        }
        let total = out.len() as u32;
        header::TOTAL_LEN.set(&mut out, total);
        header::SECTION_COUNT.set(&mut out, n as u32);
        out
    }
}

/// Values that sit on the boundaries the parser checks.
fn interesting(u: &mut Unstructured<'_>, near: u32) -> Result<u32> {
    Ok(match u.int_in_range(0..=11)? {
        0 => 0,
        1 => 1,
        2 => 2,
        3 => 0x7F,
        4 => 0xFF,
        5 => 0xFFFF,
        6 => 0x7FFF_FFFF,
        7 => u32::MAX,
        8 => near,
        9 => near.wrapping_add(1),
        10 => near.wrapping_sub(1),
        _ => u.arbitrary()?,
    })
}

fn pick_section(u: &mut Unstructured<'_>, l: &Layout) -> Result<Option<usize>> {
    if l.sections.is_empty() {
        return Ok(None);
    }
    Ok(Some(u.choose_index(l.sections.len())?))
}

fn write_le(body: &mut [u8], at: usize, v: u32, width: usize) {
    for k in 0..width {
        if let Some(b) = body.get_mut(at + k) {
            *b = (v >> (8 * k)) as u8;
        }
    }
}

/// The (offset, len) of each DFA blob inside a DFAS body (from its table).
fn dfa_blobs(body: &[u8]) -> Vec<(usize, usize)> {
    let count = dfa_table::COUNT.get(body).unwrap_or(0) as usize;
    let entries = body.get(dfa_table::LEN..).unwrap_or(&[]);
    (0..count.min(4096))
        .filter_map(|i| {
            let e = fmt::DfaEntryRecord::read_nth(entries, i)?;
            let (off, len) = (e.offset as usize, e.len as usize);
            (off.checked_add(len)? <= body.len()).then_some((off, len))
        })
        .collect()
}

/// Applies up to eight mutations chosen by `u`.
pub fn mutate(u: &mut Unstructured<'_>, l: &mut Layout) -> Result<Vec<u8>> {
    let n = u.int_in_range(1..=8)?;
    let mut raw_edits: Vec<(usize, u32, usize)> = Vec::new();
    for _ in 0..n {
        let Some(s) = pick_section(u, l)? else { break };
        let body_len = l.sections[s].2.len();
        match u.int_in_range(0..=13)? {
            // A record-aligned word (counts, offsets, lengths, ids).
            0..=3 => {
                let width = *u.choose(&[1usize, 2, 4])?;
                let at = if body_len == 0 {
                    0
                } else {
                    u.choose_index(body_len)? & !(width - 1)
                };
                let near = u32::try_from(body_len).unwrap_or(u32::MAX);
                let v = interesting(u, near)?;
                write_le(&mut l.sections[s].2, at, v, width);
            }
            4 | 5 => {
                if body_len > 0 {
                    let at = u.choose_index(body_len)?;
                    let bit = u.int_in_range(0..=7)?;
                    l.sections[s].2[at] ^= 1 << bit;
                }
            }
            6 => {
                if body_len > 0 {
                    let at = u.choose_index(body_len)?;
                    l.sections[s].2[at] = u.arbitrary()?;
                }
            }
            // Insert bytes (the layout fixes the framing).
            7 => {
                let at = u.int_in_range(0..=body_len)?;
                let k = u.int_in_range(1..=16)?;
                let fill: u8 = if u.ratio(1, 2)? { 0 } else { u.arbitrary()? };
                l.sections[s].2.splice(at..at, std::iter::repeat_n(fill, k));
            }
            // Delete bytes.
            8 => {
                if body_len > 0 {
                    let at = u.choose_index(body_len)?;
                    let k = u.int_in_range(1..=16usize)?.min(body_len - at);
                    l.sections[s].2.drain(at..at + k);
                }
            }
            // Edit inside a DFA blob (regex-automata's validation).
            9 | 10 => {
                let Some(d) = l
                    .sections
                    .iter()
                    .position(|(k, _, _)| *k == fmt::SectionKind::DFAS.0)
                else {
                    continue;
                };
                let blobs = dfa_blobs(&l.sections[d].2);
                if blobs.is_empty() {
                    continue;
                }
                let (off, len) = *u.choose(&blobs)?;
                if len == 0 {
                    continue;
                }
                let at = off + (u.choose_index(len)? & !3);
                let v = interesting(u, len as u32)?;
                let width = *u.choose(&[1usize, 4])?;
                write_le(&mut l.sections[d].2, at, v, width);
            }
            // Reorder, duplicate or drop a section.
            11 => {
                if l.order.len() > 1 {
                    let a = u.choose_index(l.order.len())?;
                    let b = u.choose_index(l.order.len())?;
                    l.order.swap(a, b);
                }
            }
            12 => {
                if u.ratio(1, 2)? {
                    let dup = l.sections[s].clone();
                    l.sections.push(dup);
                    l.order.push(l.sections.len() - 1);
                } else {
                    l.sections[s].0 = interesting(u, l.sections[s].0)?;
                    l.sections[s].1 = u.int_in_range(0..=3)?;
                }
            }
            // Break the framing on purpose (after layout): the header and
            // the first four section-table entries.
            _ => {
                let at = u.int_in_range(0..=header::LEN + 4 * section::LEN - 1)?;
                let v = interesting(u, header::LEN_U32)?;
                raw_edits.push((at, v, *u.choose(&[1usize, 4])?));
            }
        }
    }
    let mut out = l.join();
    for (at, v, width) in raw_edits {
        write_le(&mut out, at, v, width);
    }
    Ok(out)
}
