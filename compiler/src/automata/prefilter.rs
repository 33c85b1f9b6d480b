//! The prefilter automaton of one string field (FORMAT.md, PREFILTER).
//!
//! An Aho-Corasick automaton over the folded UTF-8 bytes of the field's
//! gate literals, laid out for the matcher's hot loop:
//!
//! - **Byte classes with the fold built in.** Every byte that occurs in a
//!   literal gets its own class, every other byte class 0, and each ASCII
//!   lower-case letter the class of its upper-case letter: the matcher feeds
//!   an ASCII UTF-16 unit straight through the class map, with no decoding
//!   and no folding at run time.
//! - **Dense rows for the shallow states.** The first `D` states in
//!   breadth-first order (the root and the levels below it, as many as fit
//!   [`DENSE_BUDGET`]) carry a complete row of transitions (goto and failure
//!   already resolved) with bit 31 flagging targets that have outputs or are
//!   sparse (the matcher's hot loop leaves on it): one
//!   load per byte while the scan stays near the root, which is where it
//!   spends nearly all its time.
//! - **Sparse deeper states.** The other states keep their sorted labels
//!   (edge `k` leads to state `k + 1`), a failure link and their outputs:
//!   about 14 bytes each.
//! - **Outputs inherited along failure links**, so reporting a state's
//!   outputs is one contiguous run (no dictionary-link chain).

use std::collections::{BTreeMap, VecDeque};

/// Bytes of dense rows the writer allows (the root is always dense).
pub const DENSE_BUDGET: usize = 64 << 10;

/// An automaton ready to be written (see the module docs).
#[derive(Debug, Clone, Default)]
pub struct Prefilter {
    /// Class of each byte.
    pub classes: Vec<u8>,
    /// Number of classes.
    pub class_count: usize,
    /// Number of dense states.
    pub dense_count: usize,
    /// `dense_count × class_count` transitions, bit 31: target has outputs
    /// or is sparse.
    pub dense: Vec<u32>,
    /// `S + 1` edge starts.
    pub edge_start: Vec<u32>,
    /// `S` failure links.
    pub fail: Vec<u32>,
    /// `S + 1` output starts.
    pub out_start: Vec<u32>,
    /// Atom indices.
    pub outputs: Vec<u32>,
    /// `S − 1` labels (class ids).
    pub labels: Vec<u8>,
    /// `S` depths.
    pub depths: Vec<u8>,
}

impl Prefilter {
    /// Number of states.
    pub fn states(&self) -> usize {
        self.depths.len()
    }

    /// Builds the automaton of `literals` (folded bytes, atom index) with at
    /// most `dense_budget` bytes of dense rows.
    pub fn build(literals: &[(Vec<u8>, u32)], dense_budget: usize) -> Prefilter {
        // Byte classes: 0 for bytes in no literal, one per byte used.
        let mut used = [false; 256];
        for (lit, _) in literals {
            for &b in lit {
                used[usize::from(b)] = true;
            }
        }
        let mut classes = vec![0u8; 256];
        let mut class_count = 1usize;
        for b in 0..256 {
            if used[b] {
                classes[b] = class_count as u8;
                class_count += 1;
            }
        }
        // At most 256 classes: a byte never used keeps class 0, and 256 used
        // bytes would leave no class 0 — then 0 is simply one of them.
        if class_count > 256 {
            for (b, c) in classes.iter_mut().enumerate() {
                *c = b as u8;
            }
            class_count = 256;
        }
        for b in b'a'..=b'z' {
            classes[usize::from(b)] = classes[usize::from(b.to_ascii_uppercase())];
        }

        // Trie over classes, children sorted by class.
        let mut children: Vec<BTreeMap<u8, usize>> = vec![BTreeMap::new()];
        let mut own: Vec<Vec<u32>> = vec![Vec::new()];
        for (lit, atom) in literals {
            let mut s = 0;
            for &b in lit {
                let c = classes[usize::from(b)];
                s = match children[s].get(&c) {
                    Some(&n) => n,
                    None => {
                        children.push(BTreeMap::new());
                        own.push(Vec::new());
                        let n = children.len() - 1;
                        children[s].insert(c, n);
                        n
                    }
                };
            }
            own[s].push(*atom);
        }
        // Breadth-first numbering.
        let n = children.len();
        let mut order = Vec::with_capacity(n);
        let mut newid = vec![0u32; n];
        let mut depth = vec![0u8; n];
        let mut q = VecDeque::from([0usize]);
        while let Some(s) = q.pop_front() {
            newid[s] = order.len() as u32;
            order.push(s);
            for &c in children[s].values() {
                depth[c] = depth[s] + 1;
                q.push_back(c);
            }
        }
        // Failure links and inherited outputs, breadth-first (old ids).
        let mut fail = vec![0usize; n];
        let mut outs: Vec<Vec<u32>> = own;
        for &s in &order {
            for (&c, &ch) in &children[s] {
                if s != 0 {
                    let mut f = fail[s];
                    fail[ch] = loop {
                        if let Some(&t) = children[f].get(&c) {
                            break t;
                        }
                        if f == 0 {
                            break 0;
                        }
                        f = fail[f];
                    };
                }
            }
            if s != 0 {
                let inherited = outs[fail[s]].clone();
                let o = &mut outs[s];
                o.extend(inherited);
                o.sort_unstable();
                o.dedup();
            }
        }
        // Complete transitions: the goto, else the failure state's.
        fn delta_of(s: usize, c: u8, children: &[BTreeMap<u8, usize>], fail: &[usize]) -> usize {
            let mut s = s;
            loop {
                if let Some(&t) = children[s].get(&c) {
                    return t;
                }
                if s == 0 {
                    return 0;
                }
                s = fail[s];
            }
        }
        let row_bytes = class_count * channel_format::AUTOMATON_DENSE_ENTRY_LEN as usize;
        let dense_count = (dense_budget / row_bytes).clamp(1, n);
        let mut dense = Vec::with_capacity(dense_count * class_count);
        for &s in &order[..dense_count] {
            for c in 0..class_count {
                let t = delta_of(s, c as u8, &children, &fail);
                let flag = if outs[t].is_empty() && (newid[t] as usize) < dense_count {
                    0
                } else {
                    channel_format::DENSE_EXIT_FLAG
                };
                dense.push(newid[t] | flag);
            }
        }
        let mut p = Prefilter {
            classes,
            class_count,
            dense_count,
            dense,
            edge_start: Vec::with_capacity(n + 1),
            fail: Vec::with_capacity(n),
            out_start: Vec::with_capacity(n + 1),
            outputs: Vec::new(),
            labels: Vec::with_capacity(n.saturating_sub(1)),
            depths: Vec::with_capacity(n),
        };
        for &s in &order {
            p.edge_start.push(p.labels.len() as u32);
            p.fail.push(newid[fail[s]]);
            p.out_start.push(p.outputs.len() as u32);
            p.labels.extend(children[s].keys());
            p.depths.push(depth[s]);
            p.outputs.extend(&outs[s]);
        }
        p.edge_start.push(p.labels.len() as u32);
        p.out_start.push(p.outputs.len() as u32);
        p
    }

    /// Whether the four index arrays fit `u16` (FORMAT.md: NARROW).
    pub fn narrow(&self) -> bool {
        let fits = |v: &[u32]| v.iter().all(|&x| x <= u32::from(u16::MAX));
        self.states() <= 1 << 16
            && fits(&self.edge_start)
            && fits(&self.fail)
            && fits(&self.out_start)
            && fits(&self.outputs)
    }

    /// Appends the automaton for field `field` (header, arrays, padding)
    /// as [`channel_format::AutomatonLayout`] places them; `lazy`: scanned
    /// only when a candidate rule reads one of its atoms. `None` when it
    /// does not fit the format's `u32` sizes.
    pub fn write(&self, field: u16, lazy: bool, out: &mut Vec<u8>) -> Option<()> {
        use channel_format as fmt;
        let s = u32::try_from(self.states()).ok()?;
        let narrow = self.narrow();
        let layout = fmt::AutomatonLayout::new(
            s,
            u32::try_from(self.dense_count).ok()?,
            u32::try_from(self.class_count).ok()?,
            u32::try_from(self.outputs.len()).ok()?,
            narrow,
        )?;
        let mut flags = 0;
        if lazy {
            flags |= fmt::AUTOMATON_FLAG_LAZY;
        }
        if narrow {
            flags |= fmt::AUTOMATON_FLAG_NARROW;
        }
        let start = out.len();
        let head = fmt::AutomatonRecord {
            field,
            class_count: u16::try_from(self.class_count).ok()?,
            state_count: s,
            dense_count: u32::try_from(self.dense_count).ok()?,
            output_count: u32::try_from(self.outputs.len()).ok()?,
            flags,
            reserved: [0; 4],
        };
        out.extend_from_slice(&head.to_bytes());
        out.extend_from_slice(&self.classes);
        for w in &self.dense {
            out.extend_from_slice(&w.to_le_bytes());
        }
        for arr in [&self.edge_start, &self.fail, &self.out_start, &self.outputs] {
            for &w in arr.iter() {
                if narrow {
                    out.extend_from_slice(&(w as u16).to_le_bytes());
                } else {
                    out.extend_from_slice(&w.to_le_bytes());
                }
            }
        }
        out.extend_from_slice(&self.labels);
        out.extend_from_slice(&self.depths);
        debug_assert_eq!(out.len() - start, layout.depths_end as usize);
        out.resize(start + layout.end as usize, 0);
        Some(())
    }
}
