//! Reads the message table `windmc` built (`MSG00409.bin`,
//! `MESSAGE_RESOURCE_DATA`): blocks of (low id, high id, offset), then
//! entries (length u16, flags u16 — 1: UTF-16 —, text). Test-only: proves
//! the compiled Event Log messages are the event-id table's.

/// (id, text) of every message.
pub fn messages(bin: &[u8]) -> Vec<(u32, String)> {
    let u32_at = |o: usize| u32::from_le_bytes(bin[o..o + 4].try_into().unwrap());
    let u16_at = |o: usize| u16::from_le_bytes(bin[o..o + 2].try_into().unwrap());
    let mut out = Vec::new();
    for b in 0..u32_at(0) as usize {
        let (lo, hi, mut off) = (
            u32_at(4 + 12 * b),
            u32_at(8 + 12 * b),
            u32_at(12 + 12 * b) as usize,
        );
        for id in lo..=hi {
            let len = u16_at(off) as usize;
            assert_eq!(u16_at(off + 2), 1, "message {id} is not UTF-16");
            let units: Vec<u16> = bin[off + 4..off + len]
                .chunks_exact(2)
                .map(|c| u16::from_le_bytes([c[0], c[1]]))
                .collect();
            let text = String::from_utf16(&units).unwrap();
            out.push((id, text.trim_end_matches('\0').to_string()));
            off += len;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use event_sink::ids;

    #[test]
    fn the_compiled_messages_are_the_event_table() {
        let bin = include_bytes!(concat!(env!("OUT_DIR"), "/MSG00409.bin"));
        let got = messages(bin);
        assert_eq!(got.len(), ids::ALL.len());
        for (d, (id, text)) in ids::ALL.iter().zip(&got) {
            assert_eq!(*id, u32::from(d.id));
            assert_eq!(text.trim_end(), ids::mc_message(d), "message {id}");
        }
        assert!(got[0].1.contains("PipeName: %6\r\nImage: %7\r\nUser: %8"));
    }
}
