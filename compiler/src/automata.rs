//! The automata the writer serializes: a regex atom's dense DFA
//! (regex-automata) and the Aho-Corasick prefilter over the folded literals.
//! Separate from the writer so that their construction can change without
//! touching the layout.

use regex_automata::dfa::dense;
use std::collections::{BTreeMap, VecDeque};

/// Why a regex atom has no DFA.
pub(crate) enum RegexBuildError {
    /// Determinization went past the size budget.
    TooBig,
    /// Syntax or unsupported construct (e.g. Unicode word boundaries).
    Invalid(String),
}

/// Builds the DFA of a regex atom, giving up early once it grows well past
/// `budget` bytes.
pub(crate) fn build_regex_dfa(
    source: &str,
    ci: bool,
    budget: usize,
) -> Result<Vec<u8>, RegexBuildError> {
    use regex_automata::dfa::StartKind;
    use regex_automata::nfa::thompson;
    use regex_automata::util::syntax;
    let dfa = dense::Builder::new()
        .syntax(
            syntax::Config::new()
                .case_insensitive(ci)
                .unicode(true)
                .utf8(true),
        )
        .thompson(thompson::Config::new().utf8(true))
        .configure(
            dense::Config::new()
                .start_kind(StartKind::Unanchored)
                .minimize(false)
                .dfa_size_limit(Some(budget.saturating_mul(4)))
                .determinize_size_limit(Some(budget.saturating_mul(16).max(1 << 20))),
        )
        .build(source)
        .map_err(|e| {
            if e.to_string().contains("size limit") {
                RegexBuildError::TooBig
            } else {
                RegexBuildError::Invalid(e.to_string())
            }
        })?;
    let (bytes, pad) = dfa.to_bytes_little_endian();
    Ok(bytes[pad..].to_vec())
}

/// An Aho-Corasick automaton laid out as FORMAT.md describes.
pub(crate) struct AcBuild {
    /// (first_edge, fail, dict, first_output) per state, breadth-first.
    pub(crate) states: Vec<[u32; 4]>,
    /// One label per edge; edge `k` leads to state `k + 1`.
    pub(crate) labels: Vec<u8>,
    /// The depth of each state.
    pub(crate) depths: Vec<u8>,
    /// Atom indices, in state order.
    pub(crate) outputs: Vec<u32>,
}

/// Builds the Aho-Corasick automaton of `literals` (folded bytes, atom index).
pub(crate) fn build_ac(literals: &[(Vec<u8>, u32)]) -> AcBuild {
    // Trie with BTreeMap children (sorted labels), then renumber breadth-first.
    let mut children: Vec<BTreeMap<u8, usize>> = vec![BTreeMap::new()];
    let mut outs: Vec<Vec<u32>> = vec![Vec::new()];
    for (lit, atom) in literals {
        let mut s = 0;
        for &b in lit {
            s = match children[s].get(&b) {
                Some(&n) => n,
                None => {
                    children.push(BTreeMap::new());
                    outs.push(Vec::new());
                    let n = children.len() - 1;
                    children[s].insert(b, n);
                    n
                }
            };
        }
        outs[s].push(*atom);
    }
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
    // Failure and dictionary links (in old ids), breadth-first.
    let mut fail = vec![0usize; n];
    let mut dict = vec![0usize; n];
    for &s in &order {
        for (&b, &c) in &children[s] {
            if s != 0 {
                let mut f = fail[s];
                loop {
                    if let Some(&t) = children[f].get(&b) {
                        fail[c] = t;
                        break;
                    }
                    if f == 0 {
                        fail[c] = 0;
                        break;
                    }
                    f = fail[f];
                }
            }
            let f = fail[c];
            dict[c] = if !outs[f].is_empty() { f } else { dict[f] };
        }
    }
    let mut b = AcBuild {
        states: Vec::with_capacity(n),
        labels: Vec::new(),
        depths: Vec::with_capacity(n),
        outputs: Vec::new(),
    };
    for &s in &order {
        let mut o = outs[s].clone();
        o.sort_unstable();
        o.dedup();
        b.states.push([
            b.labels.len() as u32,
            newid[fail[s]],
            newid[dict[s]],
            b.outputs.len() as u32,
        ]);
        b.labels.extend(children[s].keys());
        b.depths.push(depth[s]);
        b.outputs.extend(o);
    }
    b
}
