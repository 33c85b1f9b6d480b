//! Secondary bug-check dump data: the active channel header and the most
//! recent events, kept in a fixed nonpaged buffer the bug-check reason
//! callback hands to the kernel (GUID `sys::DUMP_GUID`). Layout (LE):
//!
//! | offset | field |
//! |---|---|
//! | 0 | magic `PSDUMP01` |
//! | 8 | active sequence u64 |
//! | 16 | last-known-good sequence u64 |
//! | 24 | next event slot u32, reserved u32 |
//! | 32 | first 64 bytes of the active channel file (its header) |
//! | 96 | 8 × event: id u64, pid u32, rule u32, decision u8, kind u8, name units u16, first 24 name units |

use crate::globals::dump::*;

pub const DUMP_LEN: usize = 96 + 8 * EVENT_LEN;
const EVENT_LEN: usize = 72;
const EVENT_SLOTS: usize = 8;

fn put(buf: &mut [u8], at: usize, bytes: &[u8]) {
    if let Some(d) = buf.get_mut(at..at + bytes.len()) {
        d.copy_from_slice(bytes);
    }
}

/// Records the active content's header and sequences.
pub fn set_content(active: Option<&[u8]>, active_seq: u64, lkg_seq: u64) {
    LOCK.with(|_| {
        DUMP.write(|b| {
            put(b, 0, b"PSDUMP01");
            put(b, 8, &active_seq.to_le_bytes());
            put(b, 16, &lkg_seq.to_le_bytes());
            let mut head = [0u8; 64];
            if let Some(a) = active {
                let n = a.len().min(64);
                head[..n].copy_from_slice(&a[..n]);
            }
            put(b, 32, &head);
        })
    });
}

/// Records one event in the next of 8 slots.
pub fn record_event(id: u64, pid: u32, rule_id: u32, decision: u8, kind: u8, name: &[u16]) {
    let name = name
        .get(..name.len().min(sensor_core::ring::NAME_CAP))
        .unwrap_or(&[]);
    let name_len = u16::try_from(name.len()).unwrap_or(u16::MAX);
    LOCK.with(|next| {
        let slot = (*next as usize) % EVENT_SLOTS;
        *next = next.wrapping_add(1);
        let n = *next;
        DUMP.write(|b| {
            put(b, 0, b"PSDUMP01");
            put(b, 24, &n.to_le_bytes());
            let at = 96 + slot * EVENT_LEN;
            put(b, at, &id.to_le_bytes());
            put(b, at + 8, &pid.to_le_bytes());
            put(b, at + 12, &rule_id.to_le_bytes());
            put(b, at + 16, &[decision, kind]);
            put(b, at + 18, &name_len.to_le_bytes());
            for (i, u) in name.iter().take(24).enumerate() {
                put(b, at + 24 + 2 * i, &u.to_le_bytes());
            }
        })
    });
}
