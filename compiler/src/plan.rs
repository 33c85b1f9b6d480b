//! Planning the prefilter: which fields are scanned on every event, which
//! atoms are in the automata, which of them are gates, which rules are
//! ALWAYS (FORMAT.md: ATOMS, PREFILTER).

use crate::lower::{AtomSpec, Lowered};
use channel_format::program;
use channel_format::{AtomKind, FieldId, STACK_DEPTH_CEILING};
use std::collections::{BTreeMap, HashMap};

/// Finds gates for a rule: atoms in the prefilter such that, with all of
/// them false, the rule's condition is false (Kleene logic, every other atom
/// unknown). The rules owning a reported gate are the candidates evaluated;
/// a rule with no such set is evaluated on every event (ALWAYS).
///
/// Starting from every prefilterable atom of `fields`, the poorest gates are
/// dropped one by one while the rule stays decided: Image atoms before
/// PipeName atoms (the image is longer), pattern gates and `contains` before
/// anchored literals, shorter literals before longer ones. An atom under a
/// `not` is never a useful gate and always goes. Returns `None` when the
/// rule cannot be decided (ALWAYS), else the gate flags.
fn find_gates(low: &Lowered, fields: &[FieldId], shared: &Shared) -> Option<Vec<bool>> {
    let mut gate: Vec<bool> = low
        .atoms
        .iter()
        .map(|a| a.prefilterable() && fields.contains(&a.field()))
        .collect();
    if kleene_may_be_true(low, &gate) {
        return None;
    }
    let mut order: Vec<usize> = (0..low.atoms.len()).filter(|&i| gate[i]).collect();
    order.sort_by_key(|&i| gate_rank(&low.atoms[i], shared));
    for i in order {
        gate[i] = false;
        if kleene_may_be_true(low, &gate) {
            gate[i] = true;
        }
    }
    Some(gate)
}

/// Most anchored literals (prefix, suffix, exact) the rules may need as
/// gates on a field that is then still not scanned on every event:
/// comparing a few literals with the start or end of a field costs less
/// than scanning the whole field (an image path is ~40 characters). Their
/// rules are evaluated on every event instead.
const DIRECT_GATES_MAX: usize = 4;

/// Plans the prefilter: which fields are scanned on every event (*eager*:
/// some rule needs a gate there), which are scanned only when a candidate
/// rule reads them (*lazy*), which atoms are in the automata, and which
/// rules are ALWAYS. Sets `prefiltered` and `always` of every rule and
/// returns the lazy fields.
///
/// - An eager field's automaton holds the gates (only they make a rule a
///   candidate), the pattern atoms' literals (which save running a
///   matcher) and every literal of ALWAYS rules (evaluated on every
///   event, where a lookup is the cheapest). A candidate rule's other
///   literals are compared directly: recording them on every event would
///   cost more than comparing them for the few candidates.
/// - A field whose needed gates are at most [`DIRECT_GATES_MAX`] anchored
///   literals is not eager: those rules become ALWAYS.
/// - A lazy field's automaton holds its `contains` literals and pattern
///   literals: scanned once, when a candidate rule first reads one of them,
///   it decides them all. Its anchored literals are compared directly.
/// - ALWAYS: the condition is not false with every gate false (the parser
///   recomputes it the same way).
pub(crate) fn plan_prefilter(lowered: &mut [Lowered]) -> Vec<FieldId> {
    let strings = [FieldId::PIPE_NAME, FieldId::IMAGE, FieldId::USER];
    let mut shared = Shared::new();
    for low in lowered.iter() {
        for a in &low.atoms {
            if let Some(l) = a.gate_literal() {
                *shared.entry((a.field(), l.to_string())).or_default() += 1;
            }
        }
    }
    let mut needed: BTreeMap<FieldId, (usize, bool)> = BTreeMap::new();
    for low in lowered.iter() {
        if let Some(g) = find_gates(low, &strings, &shared) {
            for (a, _) in low.atoms.iter().zip(&g).filter(|(_, &g)| g) {
                let e = needed.entry(a.field()).or_insert((0, true));
                e.0 += 1;
                e.1 &= a.is_anchored_literal();
            }
        }
    }
    let eager: Vec<FieldId> = needed
        .into_iter()
        .filter(|(_, (n, anchored))| !(*anchored && *n <= DIRECT_GATES_MAX))
        .map(|(f, _)| f)
        .collect();
    let lazy: Vec<FieldId> = strings.into_iter().filter(|f| !eager.contains(f)).collect();
    for low in lowered.iter_mut() {
        let gates = find_gates(low, &eager, &shared);
        low.always = gates.is_none();
        low.gates = gates.unwrap_or_else(|| vec![false; low.atoms.len()]);
        low.prefiltered = low
            .atoms
            .iter()
            .zip(&low.gates)
            .map(|(a, &gate)| {
                let literal = matches!(a, AtomSpec::Literal { .. });
                a.prefilterable()
                    && if eager.contains(&a.field()) {
                        gate || low.always || !literal
                    } else {
                        !a.is_anchored_literal()
                    }
            })
            .collect();
    }
    lazy
}

/// How many atoms of the rule set gate on each literal: a literal many
/// rules share is a common word of pipe names (`\\Win32Pipes`), a poor
/// gate.
type Shared = HashMap<(FieldId, String), usize>;

/// How good a gate an atom makes (higher is better): PipeName before
/// Image and User, a literal few atoms share before a common one, a literal that
/// must start or end the field before one anywhere, and before a pattern's
/// gate (which still has its matcher to run), the longer first.
fn gate_rank(a: &AtomSpec, shared: &Shared) -> (u8, std::cmp::Reverse<usize>, u8, usize) {
    let field = u8::from(a.field() == FieldId::PIPE_NAME);
    let common = a
        .gate_literal()
        .and_then(|l| shared.get(&(a.field(), l.to_string())))
        .copied()
        .unwrap_or(0);
    let (kind, len) = match a {
        AtomSpec::Literal { kind, lit, .. } => (
            match *kind {
                AtomKind::CONTAINS => 1,
                AtomKind::SUFFIX => 2,
                _ => 3,
            },
            lit.len(),
        ),
        AtomSpec::Glob { prefilter, .. } => (0, prefilter.as_ref().map_or(0, String::len)),
        AtomSpec::Regex { prefilters, .. } => {
            (0, prefilters.iter().map(String::len).min().unwrap_or(0))
        }
        AtomSpec::Num { .. } => (0, 0),
    };
    (field, std::cmp::Reverse(common), kind, len)
}

/// Whether the condition may be true with `false_atoms` false and every
/// other atom unknown (Kleene logic: the format's one implementation).
fn kleene_may_be_true(low: &Lowered, false_atoms: &[bool]) -> bool {
    let atoms = u32::try_from(low.atoms.len()).unwrap_or(u32::MAX);
    program::check(&low.program, 0..atoms, STACK_DEPTH_CEILING, |i| {
        false_atoms.get(i as usize).copied().unwrap_or(false)
    })
    // Lowering checked the program: an error cannot happen, and would mean
    // "evaluate always", the safe side.
    .unwrap_or(true)
}
