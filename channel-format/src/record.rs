//! The fixed records of format 1: one table per record, each the only place
//! that knows the record's byte offsets.
//!
//! A table such as
//!
//! ```text
//! record! {
//!     /// One rule record in the RULES section.
//!     record RuleRecord, raw RawRule, mod rule, 32 bytes {
//!         /// Rule id.
//!         id, ID: u32 = 0;
//!         ...
//!     }
//! }
//! ```
//!
//! generates
//! - `RuleRecord`, the decoded record (native integers), with `read` /
//!   `read_nth` from bytes and `write` / `to_bytes` to bytes: safe, `no_std`,
//!   no allocation, and `None` instead of a panic on a short slice;
//! - `RawRule`, the layout as a `#[repr(C)]` struct of byte arrays
//!   (alignment 1), never transmuted: its size and every field offset are
//!   asserted at compile time against the table, which proves the table has
//!   no gap, overlap or misordered field and that it adds up to the length;
//! - `mod rule`, with `LEN` and one typed [`Field`](crate::Field) constant
//!   per field (`rule::ATOMS_START`), which the parser's hot paths use to read
//!   single fields in place.
//!
//! FORMAT.md describes the same records for people; the test
//! `format_md_describes_the_same_records` checks that its tables list these
//! offsets and sizes.

macro_rules! record {
    (
        $(#[$meta:meta])*
        record $rec:ident, raw $raw:ident, mod $module:ident, $len:literal bytes {
            $( $(#[$fmeta:meta])* $field:ident, $konst:ident: $ty:ty = $off:literal; )*
        }
    ) => {
        $(#[$meta])*
        ///
        /// The decoded values; [`Self::read`] and [`Self::write`] convert from
        /// and to the little-endian bytes.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub struct $rec {
            $( $(#[$fmeta])* pub $field: $ty, )*
        }

        $(#[$meta])*
        ///
        /// The byte layout: byte arrays only (alignment 1), never transmuted.
        /// Its size and field offsets are asserted against the record table.
        #[repr(C)]
        #[derive(Debug, Clone, Copy)]
        pub struct $raw {
            $( $(#[$fmeta])* pub $field: [u8; <$ty as $crate::Le>::SIZE], )*
        }

        #[doc = concat!("Length and field offsets of [`", stringify!($rec), "`](crate::", stringify!($rec), ").")]
        pub mod $module {
            /// The record's length in bytes.
            pub const LEN: usize = $len;
            /// [`LEN`] as a `u32`.
            pub const LEN_U32: u32 = $len;
            /// Every field: name, offset, size (for tools and the
            /// FORMAT.md cross-check).
            pub const FIELDS: &[(&str, usize, usize)] =
                &[$((stringify!($field), $off, <$ty as $crate::Le>::SIZE)),*];
            $( $(#[$fmeta])* pub const $konst: $crate::Field<$ty> = $crate::Field::new($off); )*
        }

        static_assertions::const_assert_eq!(core::mem::size_of::<$raw>(), $len);
        $( static_assertions::const_assert_eq!(core::mem::offset_of!($raw, $field), $off); )*

        impl $rec {
            /// The record's length in bytes.
            pub const LEN: usize = $len;

            /// Decodes the record from the first `LEN` bytes of `bytes`;
            /// `None` when `bytes` is shorter. Never panics.
            #[inline]
            pub fn read(bytes: &[u8]) -> Option<Self> {
                let b = bytes.get(..$len)?;
                Some($rec { $( $field: $module::$konst.get(b)?, )* })
            }

            /// Encodes the record into the first `LEN` bytes of `out`;
            /// `None` (nothing written) when `out` is shorter. Never panics.
            #[inline]
            pub fn write(&self, out: &mut [u8]) -> Option<()> {
                let b = out.get_mut(..$len)?;
                $( $module::$konst.set(b, self.$field)?; )*
                Some(())
            }

            /// The record's bytes.
            #[inline]
            pub fn to_bytes(&self) -> [u8; $len] {
                let mut b = [0u8; $len];
                // Cannot fail: `b` is exactly LEN bytes.
                let _ = self.write(&mut b);
                b
            }

            /// The bytes of record `index` of an array of these records;
            /// `None` past the end. Never panics.
            #[inline]
            pub fn nth(bytes: &[u8], index: usize) -> Option<&[u8]> {
                let start = index.checked_mul($len)?;
                bytes.get(start..start.checked_add($len)?)
            }

            /// [`Self::nth`], mutable.
            #[inline]
            pub fn nth_mut(bytes: &mut [u8], index: usize) -> Option<&mut [u8]> {
                let start = index.checked_mul($len)?;
                bytes.get_mut(start..start.checked_add($len)?)
            }

            /// Decodes record `index` of an array of these records.
            #[inline]
            pub fn read_nth(bytes: &[u8], index: usize) -> Option<Self> {
                Self::read(Self::nth(bytes, index)?)
            }

            /// How many records an array of `len` bytes holds; `None` when
            /// `len` is not a multiple of the record length.
            #[inline]
            pub const fn count(len: usize) -> Option<usize> {
                match (len.checked_rem($len), len.checked_div($len)) {
                    (Some(0), Some(n)) => Some(n),
                    _ => None,
                }
            }
        }
    };
}

record! {
    /// The fixed file header: 64 bytes at offset 0 (FORMAT.md §1).
    record HeaderRecord, raw RawHeader, mod header, 64 bytes {
        /// [`MAGIC`](crate::MAGIC).
        magic, MAGIC: [u8; 8] = 0;
        /// [`ENDIAN_MARKER`](crate::ENDIAN_MARKER).
        endian, ENDIAN: u16 = 8;
        /// Header length in bytes: 64 in version 1.
        header_len, HEADER_LEN: u16 = 10;
        /// Major format version: [`FORMAT_VERSION`](crate::FORMAT_VERSION).
        format_major, FORMAT_MAJOR: u16 = 12;
        /// Minor format version.
        format_minor, FORMAT_MINOR: u16 = 14;
        /// Channel number: [`CHANNEL_PIPES`](crate::CHANNEL_PIPES).
        channel, CHANNEL: u32 = 16;
        /// Flags a reader must understand: an unknown set bit rejects the file.
        required_flags, REQUIRED_FLAGS: u32 = 20;
        /// Content sequence number; larger is newer.
        sequence, SEQUENCE: u64 = 24;
        /// Length of the whole file in bytes.
        total_len, TOTAL_LEN: u32 = 32;
        /// Number of entries in the section table that follows the header.
        section_count, SECTION_COUNT: u32 = 36;
        /// Flags a reader may ignore.
        optional_flags, OPTIONAL_FLAGS: u32 = 40;
        /// Must be zero.
        reserved, RESERVED: [u8; 20] = 44;
    }
}

record! {
    /// One entry of the section table: 16 bytes each, right after the
    /// header (FORMAT.md §2).
    record SectionRecord, raw RawSectionEntry, mod section, 16 bytes {
        /// A [`SectionKind`](crate::SectionKind).
        kind, KIND: u32 = 0;
        /// [`SECTION_FLAG_CRITICAL`](crate::SECTION_FLAG_CRITICAL); other bits zero.
        flags, FLAGS: u32 = 4;
        /// Offset from the start of the file; a multiple of
        /// [`SECTION_ALIGN`](crate::SECTION_ALIGN).
        offset, OFFSET: u32 = 8;
        /// Length in bytes.
        len, LENGTH: u32 = 12;
    }
}

record! {
    /// One SCHEMA entry: a field the rules read and its type (FORMAT.md §4).
    record SchemaRecord, raw RawSchemaEntry, mod schema, 4 bytes {
        /// A [`FieldId`](crate::FieldId).
        field, FIELD: u16 = 0;
        /// A [`FieldType`](crate::FieldType).
        field_type, FIELD_TYPE: u8 = 2;
        /// Must be zero.
        reserved, RESERVED: u8 = 3;
    }
}

record! {
    /// One rule record in the RULES section (FORMAT.md §5).
    record RuleRecord, raw RawRule, mod rule, 32 bytes {
        /// Rule id, unique in the file; strictly ascending.
        id, ID: u32 = 0;
        /// Offset of the name in STRINGS.
        name_off, NAME_OFF: u32 = 4;
        /// Length of the name in bytes.
        name_len, NAME_LEN: u32 = 8;
        /// Index of the first field id in RULE_FIELDS (in entries).
        fields_start, FIELDS_START: u32 = 12;
        /// Number of field ids.
        fields_count, FIELDS_COUNT: u16 = 16;
        /// A [`Severity`](crate::Severity).
        severity, SEVERITY: u8 = 18;
        /// An [`Action`](crate::Action).
        action, ACTION: u8 = 19;
        /// Offset of the condition program in PROGRAMS.
        prog_off, PROG_OFF: u32 = 20;
        /// Length of the condition program in bytes.
        prog_len, PROG_LEN: u16 = 24;
        /// [`RULE_FLAG_ALWAYS`](crate::RULE_FLAG_ALWAYS); other bits zero.
        flags, FLAGS: u16 = 26;
        /// Index of the rule's first atom in ATOMS; its atoms run to the next
        /// rule's first atom.
        atoms_start, ATOMS_START: u32 = 28;
    }
}

record! {
    /// One RULE_FIELDS entry: a field id a rule reads (FORMAT.md §6).
    record RuleFieldRecord, raw RawRuleField, mod rule_field, 2 bytes {
        /// A [`FieldId`](crate::FieldId).
        field, FIELD: u16 = 0;
    }
}

record! {
    /// One atom record in the ATOMS section: one test on one field
    /// (FORMAT.md §7).
    record AtomRecord, raw RawAtom, mod atom, 20 bytes {
        /// Index of the rule the atom belongs to.
        rule, RULE: u32 = 0;
        /// The [`FieldId`](crate::FieldId) it tests.
        field, FIELD: u16 = 4;
        /// An [`AtomKind`](crate::AtomKind).
        kind, KIND: u8 = 6;
        /// [`ATOM_FLAG_PREFILTERED`](crate::ATOM_FLAG_PREFILTERED),
        /// [`ATOM_FLAG_CASE_INSENSITIVE`](crate::ATOM_FLAG_CASE_INSENSITIVE).
        flags, FLAGS: u8 = 7;
        /// Offset in STRINGS of the literal (folded) or of the pattern source.
        str_off, STR_OFF: u32 = 8;
        /// Length of that string in bytes.
        str_len, STR_LEN: u32 = 12;
        /// DFA index (REGEX) or value (NUM_EQ); zero otherwise.
        arg, ARG: u32 = 16;
    }
}

record! {
    /// The start of the PREFILTER section; the automata follow, each
    /// [`AUTOMATON_ALIGN`](crate::AUTOMATON_ALIGN)-aligned relative to the
    /// section (FORMAT.md §10).
    record PrefilterRecord, raw RawPrefilterHeader, mod prefilter, 8 bytes {
        /// Number of automata (at most one per string field).
        count, COUNT: u32 = 0;
        /// Must be zero.
        reserved, RESERVED: u32 = 4;
    }
}

record! {
    /// The header of one prefilter automaton (FORMAT.md §10); the class
    /// map, dense rows, index arrays, labels and depths follow as
    /// [`AutomatonLayout`](crate::AutomatonLayout) says.
    record AutomatonRecord, raw RawAutomatonHeader, mod automaton, 24 bytes {
        /// The string [`FieldId`](crate::FieldId) this automaton scans.
        field, FIELD: u16 = 0;
        /// Number of byte classes `C` (1..=256).
        class_count, CLASS_COUNT: u16 = 2;
        /// Number of states `S` (at least 1: the root).
        state_count, STATE_COUNT: u32 = 4;
        /// Number of dense states `D` (1..=S): states `0..D` have a full row
        /// of `C` transitions.
        dense_count, DENSE_COUNT: u32 = 8;
        /// Number of output entries `O`.
        output_count, OUTPUT_COUNT: u32 = 12;
        /// [`AUTOMATON_FLAG_LAZY`](crate::AUTOMATON_FLAG_LAZY),
        /// [`AUTOMATON_FLAG_NARROW`](crate::AUTOMATON_FLAG_NARROW); other
        /// bits zero.
        flags, FLAGS: u32 = 16;
        /// Must be zero.
        reserved, RESERVED: [u8; 4] = 20;
    }
}

record! {
    /// The start of the DFAS section; the entries of the DFAs, then of the
    /// range tables, then the blobs (FORMAT.md §11).
    record DfaTableRecord, raw RawDfaTable, mod dfa_table, 16 bytes {
        /// Number of DFAs.
        count, COUNT: u32 = 0;
        /// Number of range tables.
        range_table_count, RANGE_TABLE_COUNT: u32 = 4;
        /// Must be zero.
        reserved, RESERVED: [u8; 8] = 8;
    }
}

record! {
    /// One DFAS entry: where a DFA or range table blob lies in the section
    /// (FORMAT.md §11).
    record DfaEntryRecord, raw RawDfaEntry, mod dfa_entry, 8 bytes {
        /// Offset relative to the section; a multiple of
        /// [`DFA_ALIGN`](crate::DFA_ALIGN).
        offset, OFFSET: u32 = 0;
        /// Length in bytes.
        len, LENGTH: u32 = 4;
    }
}

record! {
    /// The header of one character-level DFA blob (FORMAT.md §11); the
    /// ASCII classes, the local-class map, the transitions and the
    /// end-of-input bits follow as [`DfaLayout`](crate::DfaLayout) says.
    record DfaRecord, raw RawDfa, mod dfa_header, 16 bytes {
        /// `N`: states, including dead (0), accept (1) and start (2).
        state_count, STATE_COUNT: u32 = 0;
        /// `K`: character classes (1..=256).
        class_count, CLASS_COUNT: u16 = 4;
        /// [`dfa::FLAG_WIDE`](crate::dfa::FLAG_WIDE),
        /// [`dfa::FLAG_SPARSE`](crate::dfa::FLAG_SPARSE); other bits zero.
        flags, FLAGS: u8 = 6;
        /// Must be zero.
        reserved, RESERVED: u8 = 7;
        /// Index of the range table that classifies non-ASCII characters.
        range_table, RANGE_TABLE: u32 = 8;
        /// Length of the sparse rows; zero for dense rows.
        sparse_len, SPARSE_LEN: u32 = 12;
    }
}

record! {
    /// The header of one range table (FORMAT.md §11), shared by the DFAs
    /// whose non-ASCII characters fall into the same classes; `R` u32
    /// entries follow, each `first code point << 8 | local class`.
    record RangeTableRecord, raw RawRangeTable, mod range_table, 8 bytes {
        /// `R`: entries (at least 1).
        range_count, RANGE_COUNT: u32 = 0;
        /// `L`: local classes (1..=256).
        class_count, CLASS_COUNT: u32 = 4;
    }
}

record! {
    /// One ALWAYS entry: a rule evaluated on every event (FORMAT.md §12).
    record AlwaysRecord, raw RawAlways, mod always, 4 bytes {
        /// Rule index.
        rule, RULE: u32 = 0;
    }
}

record! {
    /// The ROLLOUT section (FORMAT.md §13). With no flag set the section is
    /// only the first [`ROLLOUT_LEN_EMPTY`](crate::ROLLOUT_LEN_EMPTY) bytes
    /// (version and flags); with any flag it is the whole record.
    record RolloutRecord, raw RawRollout, mod rollout, 32 bytes {
        /// [`ROLLOUT_VERSION`](crate::ROLLOUT_VERSION).
        version, VERSION: u32 = 0;
        /// [`ROLLOUT_FLAG_POLICY`](crate::ROLLOUT_FLAG_POLICY),
        /// [`ROLLOUT_FLAG_ROLLBACK`](crate::ROLLOUT_FLAG_ROLLBACK).
        flags, FLAGS: u32 = 4;
        /// A [`Ring`](crate::Ring) (policy).
        ring, RING: u8 = 8;
        /// Must be zero.
        reserved, RESERVED: [u8; 3] = 9;
        /// Share of the ring's machines, in thousandths of a percent (policy).
        percent_milli, PERCENT_MILLI: u32 = 12;
        /// Not before this time (Unix seconds, UTC); 0 for none (policy).
        not_before, NOT_BEFORE: u64 = 16;
        /// Rollback instruction: adoptable on machines whose highest proven
        /// sequence is at most this, though this file's sequence is lower.
        rollback_ceiling, ROLLBACK_CEILING: u64 = 24;
    }
}

record! {
    /// The ENFORCEMENT section (FORMAT.md §15): what the sensor does with the
    /// block rules of this file once a machine adopts it. The fields of a
    /// part whose flag is clear are zero.
    record EnforcementRecord, raw RawEnforcement, mod enforcement, 40 bytes {
        /// [`ENFORCEMENT_VERSION`](crate::ENFORCEMENT_VERSION).
        version, VERSION: u32 = 0;
        /// [`ENFORCEMENT_FLAG_MONITOR_FIRST`](crate::ENFORCEMENT_FLAG_MONITOR_FIRST),
        /// [`ENFORCEMENT_FLAG_RULE_BREAKER`](crate::ENFORCEMENT_FLAG_RULE_BREAKER),
        /// [`ENFORCEMENT_FLAG_MACHINE_BREAKER`](crate::ENFORCEMENT_FLAG_MACHINE_BREAKER).
        flags, FLAGS: u32 = 4;
        /// Monitor-first period of canary machines, seconds.
        monitor_first_canary, MONITOR_FIRST_CANARY: u32 = 8;
        /// Monitor-first period of early machines, seconds.
        monitor_first_early, MONITOR_FIRST_EARLY: u32 = 12;
        /// Monitor-first period of broad machines, seconds.
        monitor_first_broad, MONITOR_FIRST_BROAD: u32 = 16;
        /// Denies per window a block rule may make.
        rule_denies, RULE_DENIES: u32 = 20;
        /// The per-rule window, seconds.
        rule_window_secs, RULE_WINDOW_SECS: u32 = 24;
        /// Denies per window the machine may make.
        machine_denies, MACHINE_DENIES: u32 = 28;
        /// The machine-wide window, seconds.
        machine_window_secs, MACHINE_WINDOW_SECS: u32 = 32;
        /// Must be zero.
        reserved, RESERVED: u32 = 36;
    }
}

record! {
    /// The start of the SIGNATURE section; the entries follow (FORMAT.md §14).
    record SignatureRecord, raw RawSignatureHeader, mod signature, 8 bytes {
        /// [`SIGNATURE_VERSION`](crate::SIGNATURE_VERSION).
        version, VERSION: u32 = 0;
        /// Number of signature entries (0: unsigned; at most
        /// [`MAX_SIGNATURES`](crate::MAX_SIGNATURES)).
        count, COUNT: u32 = 4;
    }
}

record! {
    /// One SIGNATURE entry (FORMAT.md §14).
    record SignatureEntryRecord, raw RawSignatureEntry, mod signature_entry, 104 bytes {
        /// The first 8 bytes of SHA-256 of the public key.
        key_id, KEY_ID: [u8; 8] = 0;
        /// Ed25519 public key.
        public_key, PUBLIC_KEY: [u8; 32] = 8;
        /// Ed25519 signature.
        signature, SIGNATURE: [u8; 64] = 40;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The numeric (offset, size) rows of each table under the FORMAT.md
    /// heading that starts with `heading`, table by table (a table's numeric
    /// rows end at its first row whose offset or size is not a number).
    fn format_md_tables(heading: &str) -> Vec<Vec<(usize, usize)>> {
        let md = include_str!("../FORMAT.md");
        let start = md.find(heading).unwrap_or_else(|| panic!("{heading}"));
        let body = &md[start + heading.len()..];
        let body = &body[..body.find("\n## ").unwrap_or(body.len())];
        let mut tables = Vec::new();
        let mut cur: Vec<(usize, usize)> = Vec::new();
        let mut open = true;
        for line in body.lines() {
            if !line.starts_with('|') {
                if !cur.is_empty() {
                    tables.push(std::mem::take(&mut cur));
                }
                open = true;
                continue;
            }
            let cols: Vec<&str> = line.split('|').map(str::trim).collect();
            match (
                cols.get(1).map(|c| c.parse()),
                cols.get(2).map(|c| c.parse()),
            ) {
                (Some(Ok(o)), Some(Ok(n))) if open => cur.push((o, n)),
                _ if !cur.is_empty() => open = false,
                _ => {}
            }
        }
        if !cur.is_empty() {
            tables.push(cur);
        }
        tables
    }

    fn layout(fields: &[(&str, usize, usize)]) -> Vec<(usize, usize)> {
        fields.iter().map(|&(_, o, n)| (o, n)).collect()
    }

    #[test]
    fn format_md_describes_the_same_records() {
        for (heading, index, fields) in [
            ("## 1. Header", 0, header::FIELDS),
            ("## 2. Section table", 0, section::FIELDS),
            ("## 4. SCHEMA", 0, schema::FIELDS),
            ("## 5. RULES", 0, rule::FIELDS),
            ("## 7. ATOMS", 0, atom::FIELDS),
            ("## 10. PREFILTER", 0, prefilter::FIELDS),
            ("## 10. PREFILTER", 1, automaton::FIELDS),
            ("## 11. DFAS", 0, dfa_table::FIELDS),
            ("## 11. DFAS", 1, dfa_header::FIELDS),
            ("## 11. DFAS", 2, range_table::FIELDS),
            ("## 13. ROLLOUT", 0, rollout::FIELDS),
            ("## 14. SIGNATURE", 0, signature::FIELDS),
            ("## 15. ENFORCEMENT", 0, enforcement::FIELDS),
        ] {
            let tables = format_md_tables(heading);
            assert_eq!(
                tables.get(index),
                Some(&layout(fields)),
                "FORMAT.md {heading} table {index}"
            );
        }
    }

    #[test]
    fn fields_tile_each_record() {
        for (len, fields) in [
            (header::LEN, header::FIELDS),
            (section::LEN, section::FIELDS),
            (schema::LEN, schema::FIELDS),
            (rule::LEN, rule::FIELDS),
            (rule_field::LEN, rule_field::FIELDS),
            (atom::LEN, atom::FIELDS),
            (prefilter::LEN, prefilter::FIELDS),
            (automaton::LEN, automaton::FIELDS),
            (dfa_table::LEN, dfa_table::FIELDS),
            (dfa_entry::LEN, dfa_entry::FIELDS),
            (dfa_header::LEN, dfa_header::FIELDS),
            (range_table::LEN, range_table::FIELDS),
            (always::LEN, always::FIELDS),
            (rollout::LEN, rollout::FIELDS),
            (signature::LEN, signature::FIELDS),
            (signature_entry::LEN, signature_entry::FIELDS),
            (enforcement::LEN, enforcement::FIELDS),
        ] {
            let mut at = 0;
            for &(name, o, n) in fields {
                assert_eq!(o, at, "{name}");
                at += n;
            }
            assert_eq!(at, len);
        }
    }

    #[test]
    fn records_round_trip_and_reject_short_slices() {
        let r = RuleRecord {
            id: 0x0102_0304,
            name_off: 5,
            name_len: 6,
            fields_start: 7,
            fields_count: 0x0809,
            severity: 3,
            action: 1,
            prog_off: 0x0a0b_0c0d,
            prog_len: 0x0e0f,
            flags: 1,
            atoms_start: 0x1112_1314,
        };
        let b = r.to_bytes();
        assert_eq!(&b[..4], &[4, 3, 2, 1]);
        assert_eq!(b[18], 3);
        assert_eq!(&b[28..], &[0x14, 0x13, 0x12, 0x11]);
        assert_eq!(RuleRecord::read(&b), Some(r));
        assert_eq!(rule::ATOMS_START.get(&b), Some(0x1112_1314));
        assert_eq!(RuleRecord::read(&b[..31]), None);
        assert_eq!(rule::ATOMS_START.get(&b[..31]), None);
        let mut short = [0xAAu8; 31];
        assert_eq!(r.write(&mut short), None);
        assert_eq!(short, [0xAA; 31], "nothing written into a short slice");
        assert_eq!(rule::ATOMS_START.set(&mut short, 1), None);

        let mut two = [0u8; 64];
        RuleRecord { id: 9, ..r }.write(&mut two[32..]).unwrap();
        assert_eq!(RuleRecord::read_nth(&two, 1).map(|x| x.id), Some(9));
        assert_eq!(RuleRecord::read_nth(&two, 2), None);
        assert_eq!(RuleRecord::count(64), Some(2));
        assert_eq!(RuleRecord::count(65), None);
        rule::FLAGS.update(RuleRecord::nth_mut(&mut two, 1).unwrap(), |f| f | 4);
        assert_eq!(RuleRecord::read_nth(&two, 1).map(|x| x.flags), Some(5));

        let e = SignatureEntryRecord {
            key_id: [1; 8],
            public_key: [2; 32],
            signature: [3; 64],
        };
        let b = e.to_bytes();
        assert_eq!((b[7], b[8], b[39], b[40], b[103]), (1, 2, 2, 3, 3));
        assert_eq!(SignatureEntryRecord::read(&b), Some(e));

        let h = HeaderRecord {
            magic: crate::MAGIC,
            endian: crate::ENDIAN_MARKER,
            header_len: crate::HEADER_LEN,
            format_major: 2,
            format_minor: 0,
            channel: crate::CHANNEL_PIPES,
            required_flags: 0,
            sequence: u64::MAX - 1,
            total_len: 99,
            section_count: 3,
            optional_flags: 1,
            reserved: [0; 20],
        };
        let b = h.to_bytes();
        assert_eq!(&b[..10], b"PIPECHN\0\xff\xfe");
        assert_eq!(header::SEQUENCE.get(&b), Some(u64::MAX - 1));
        assert_eq!(HeaderRecord::read(&b), Some(h));
    }
}
