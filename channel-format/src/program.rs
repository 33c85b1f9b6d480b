//! The condition program (FORMAT.md §8): postfix bytecode over a stack of
//! booleans. This module is its only encoder and decoder, and holds the one
//! implementation of the "always evaluate" rule; the compiler writes
//! programs with [`Instr::encode`], and the parser, the matcher and
//! `pipectl inspect` read them with [`instructions`]; both sides decide the
//! ALWAYS flag with [`check`].

use core::fmt;
use core::ops::Range;

/// Opcodes (one byte each).
pub mod op {
    /// Push the truth of an atom: followed by a `u32` LE atom index.
    pub const ATOM: u8 = 1;
    /// Pop two values, push their conjunction.
    pub const AND: u8 = 2;
    /// Pop two values, push their disjunction.
    pub const OR: u8 = 3;
    /// Pop one value, push its negation.
    pub const NOT: u8 = 4;
    /// Push true.
    pub const TRUE: u8 = 5;
    /// Push false.
    pub const FALSE: u8 = 6;
}

/// Bytes of the ATOM operand (a little-endian atom index).
pub const ATOM_OPERAND_LEN: usize = 4;
/// The longest instruction: ATOM and its operand.
pub const MAX_INSTR_LEN: usize = 1 + ATOM_OPERAND_LEN;
/// The deepest evaluation stack any reader allows, whatever the limits say:
/// the evaluator's stack is one `u64`.
pub const STACK_DEPTH_CEILING: u32 = 64;

/// One instruction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Instr {
    /// Push the truth of the atom with this (file) index.
    Atom(u32),
    /// Pop two, push their conjunction.
    And,
    /// Pop two, push their disjunction.
    Or,
    /// Pop one, push its negation.
    Not,
    /// Push true.
    True,
    /// Push false.
    False,
}

impl Instr {
    /// Its opcode.
    pub const fn opcode(self) -> u8 {
        match self {
            Instr::Atom(_) => op::ATOM,
            Instr::And => op::AND,
            Instr::Or => op::OR,
            Instr::Not => op::NOT,
            Instr::True => op::TRUE,
            Instr::False => op::FALSE,
        }
    }

    /// Its encoded length in bytes.
    pub const fn encoded_len(self) -> usize {
        match self {
            Instr::Atom(_) => MAX_INSTR_LEN,
            _ => 1,
        }
    }

    /// How many values it pops (each instruction pushes one).
    pub const fn pops(self) -> u32 {
        match self {
            Instr::Atom(_) | Instr::True | Instr::False => 0,
            Instr::Not => 1,
            Instr::And | Instr::Or => 2,
        }
    }

    /// Its bytes.
    pub fn encode(self) -> Encoded {
        let mut bytes = [0u8; MAX_INSTR_LEN];
        if let Some((first, rest)) = bytes.split_first_mut() {
            *first = self.opcode();
            if let (Instr::Atom(a), Some(operand)) = (self, rest.first_chunk_mut::<4>()) {
                *operand = a.to_le_bytes();
            }
        }
        Encoded {
            bytes,
            len: self.encoded_len(),
        }
    }
}

impl fmt::Display for Instr {
    /// `atom<index>`, `and`, `or`, `not`, `true`, `false` (as `pipectl
    /// inspect` shows programs).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Instr::Atom(a) => write!(f, "atom{a}"),
            Instr::And => f.write_str("and"),
            Instr::Or => f.write_str("or"),
            Instr::Not => f.write_str("not"),
            Instr::True => f.write_str("true"),
            Instr::False => f.write_str("false"),
        }
    }
}

/// The bytes of one encoded instruction ([`Instr::encode`]).
#[derive(Debug, Clone, Copy)]
pub struct Encoded {
    bytes: [u8; MAX_INSTR_LEN],
    len: usize,
}

impl Encoded {
    /// The bytes.
    pub fn as_bytes(&self) -> &[u8] {
        self.bytes.get(..self.len).unwrap_or(&[])
    }
}

/// A malformed program: where (byte offset in the program) and what.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProgramError {
    /// Offset of the offending instruction (or the program's length for a
    /// problem at its end).
    pub at: u32,
    /// What is wrong.
    pub reason: &'static str,
}

/// Decodes a program instruction by instruction: `(offset, instruction)`,
/// or one error (an unknown opcode, an operand cut off) after which the
/// iterator ends. Callers must consume it to the end or to the error.
#[derive(Debug, Clone)]
pub struct Instructions<'a> {
    /// What is left to decode.
    rest: &'a [u8],
    /// The program's length: an instruction's offset is this minus the
    /// length of `rest` before it (computed only where it is used, so the
    /// matcher's evaluation loop pays nothing for it).
    len: usize,
}

/// The instructions of `program` (see [`Instructions`]). Never panics.
pub fn instructions(program: &[u8]) -> Instructions<'_> {
    Instructions {
        rest: program,
        len: program.len(),
    }
}

/// Why an instruction does not decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeError {
    /// The opcode is not one of [`op`].
    UnknownOpcode,
    /// The program ends inside an ATOM operand.
    TruncatedOperand,
}

impl DecodeError {
    /// The reason as [`ProgramError`] and the parser's `BadProgram` give it.
    pub const fn reason(self) -> &'static str {
        match self {
            DecodeError::UnknownOpcode => "unknown opcode",
            DecodeError::TruncatedOperand => "truncated atom operand",
        }
    }
}

/// Decodes the instruction at the start of `rest`, moves `rest` past it and
/// hands it to `visit`: `None` at the end of the program, `Some(Err(_))` for
/// an unknown opcode or an operand cut off (then `rest` is left as it was and
/// `visit` is not called). The one decoder of the format: [`decode`],
/// [`Instructions`] and the matcher's evaluation loop all go through it.
/// `visit` is called from each opcode's own branch with a constant
/// instruction, so that once inlined the caller's own `match` on the
/// instruction folds into the decoder's (one dispatch per instruction on
/// the matching path). Never panics.
#[inline(always)]
pub fn step(rest: &mut &[u8], visit: impl FnOnce(Instr)) -> Option<Result<(), DecodeError>> {
    let program = *rest;
    let opcode = *program.first()?;
    let instr = match opcode {
        op::ATOM => match program.get(1..MAX_INSTR_LEN) {
            Some(&[a, b, c, d]) => Instr::Atom(u32::from_le_bytes([a, b, c, d])),
            _ => return Some(Err(DecodeError::TruncatedOperand)),
        },
        op::AND => Instr::And,
        op::OR => Instr::Or,
        op::NOT => Instr::Not,
        op::TRUE => Instr::True,
        op::FALSE => Instr::False,
        _ => return Some(Err(DecodeError::UnknownOpcode)),
    };
    *rest = program.get(instr.encoded_len()..).unwrap_or(&[]);
    visit(instr);
    Some(Ok(()))
}

/// Decodes the instruction at the start of `rest` and moves `rest` past it
/// ([`step`] returning the instruction).
#[inline]
pub fn decode(rest: &mut &[u8]) -> Option<Result<Instr, DecodeError>> {
    let mut out = Instr::False;
    match step(rest, |i| out = i)? {
        Ok(()) => Some(Ok(out)),
        Err(e) => Some(Err(e)),
    }
}

impl Iterator for Instructions<'_> {
    type Item = Result<(u32, Instr), ProgramError>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        let at = u32::try_from(self.len.wrapping_sub(self.rest.len())).unwrap_or(u32::MAX);
        match decode(&mut self.rest)? {
            Ok(instr) => Some(Ok((at, instr))),
            Err(e) => {
                self.rest = &[];
                Some(Err(ProgramError {
                    at,
                    reason: e.reason(),
                }))
            }
        }
    }
}

/// Validates a condition program and computes its ALWAYS flag.
///
/// Checks, in program order (FORMAT.md §8): the program is not empty; every
/// opcode is known and no operand is cut off; every atom operand lies in
/// `atoms`; no instruction pops more values than the stack holds; the stack
/// never grows deeper than `max_depth` (itself at most
/// [`STACK_DEPTH_CEILING`]); exactly one value is left at the end.
///
/// `prefiltered(atom)` says whether an atom is known to be false when the
/// prefilter reports nothing (literals, and patterns gated by a literal).
/// Returns the ALWAYS flag: whether the condition is *not* false under Kleene
/// three-valued logic with those atoms false and every other atom unknown,
/// i.e. whether the rule can match without the prefilter reporting any of its
/// atoms.
///
/// # Errors
/// The first problem, with its offset in the program.
///
/// # Panics
/// Never panics. Allocates nothing; linear in the program's length.
pub fn check(
    program: &[u8],
    atoms: Range<u32>,
    max_depth: u32,
    mut prefiltered: impl FnMut(u32) -> bool,
) -> Result<bool, ProgramError> {
    let max_depth = max_depth.min(STACK_DEPTH_CEILING);
    if program.is_empty() {
        return Err(ProgramError {
            at: 0,
            reason: "empty program",
        });
    }
    let mut st = KleeneStack::default();
    for item in instructions(program) {
        let (at, instr) = item?;
        let bad = |reason| ProgramError { at, reason };
        if st.depth < instr.pops() {
            return Err(bad("stack underflow"));
        }
        match instr {
            Instr::Atom(idx) => {
                if !atoms.contains(&idx) {
                    return Err(bad("atom operand outside the rule's atoms"));
                }
                // Known false when the prefilter reports nothing; else unknown.
                st.push(!prefiltered(idx), true);
            }
            Instr::True => st.push(true, false),
            Instr::False => st.push(false, true),
            Instr::Not => {
                let (t, f) = st.pop();
                st.push(f, t);
            }
            Instr::And | Instr::Or => {
                let (bt, bf) = st.pop();
                let (at_, af) = st.pop();
                if instr == Instr::And {
                    st.push(at_ && bt, af || bf);
                } else {
                    st.push(at_ || bt, af && bf);
                }
            }
        }
        if st.depth > max_depth {
            return Err(bad("stack deeper than the limit"));
        }
    }
    if st.depth != 1 {
        return Err(ProgramError {
            at: u32::try_from(program.len()).unwrap_or(u32::MAX),
            reason: "program must leave exactly one value",
        });
    }
    Ok(st.pop().0)
}

/// Kleene values as two bits each (may be true, may be false), at most
/// [`STACK_DEPTH_CEILING`] deep.
#[derive(Default)]
struct KleeneStack {
    may_true: u64,
    may_false: u64,
    depth: u32,
}

impl KleeneStack {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(prog: &[Instr]) -> ([u8; 128], usize) {
        let mut out = [0u8; 128];
        let mut n = 0;
        for i in prog {
            for &b in i.encode().as_bytes() {
                out[n] = b;
                n += 1;
            }
        }
        (out, n)
    }

    #[test]
    fn encode_decode_round_trip() {
        let prog = [
            Instr::Atom(7),
            Instr::Atom(0x0102_0304),
            Instr::Or,
            Instr::Not,
            Instr::True,
            Instr::And,
            Instr::False,
            Instr::Or,
        ];
        let (b, n) = enc(&prog);
        assert_eq!(&b[..6], &[1, 7, 0, 0, 0, 1]);
        let mut got = [Instr::True; 8];
        let mut k = 0;
        let mut pcs = [0u32; 8];
        for item in instructions(&b[..n]) {
            let (pc, i) = item.unwrap();
            got[k] = i;
            pcs[k] = pc;
            k += 1;
        }
        assert_eq!(k, 8);
        assert_eq!(got, prog);
        assert_eq!(pcs, [0, 5, 10, 11, 12, 13, 14, 15]);
    }

    #[test]
    fn decode_errors_end_the_iteration() {
        let mut it = instructions(&[op::TRUE, 0x7F, op::TRUE]);
        assert_eq!(it.next(), Some(Ok((0, Instr::True))));
        assert_eq!(
            it.next(),
            Some(Err(ProgramError {
                at: 1,
                reason: "unknown opcode"
            }))
        );
        assert_eq!(it.next(), None);
        let mut it = instructions(&[op::TRUE, op::ATOM, 1, 2, 3]);
        it.next();
        assert_eq!(
            it.next(),
            Some(Err(ProgramError {
                at: 1,
                reason: "truncated atom operand"
            }))
        );
        assert_eq!(it.next(), None);
    }

    #[test]
    fn kleene_always_flag() {
        let run = |prog: &[Instr], pre: &[bool]| {
            let (b, n) = enc(prog);
            check(&b[..n], 0..pre.len() as u32, 64, |i| pre[i as usize])
        };
        use Instr::*;
        // A prefiltered atom alone: false without the prefilter.
        assert_eq!(run(&[Atom(0)], &[true]), Ok(false));
        // An unprefiltered atom: unknown, so evaluated always.
        assert_eq!(run(&[Atom(0)], &[false]), Ok(true));
        // not(prefiltered) is true without the prefilter.
        assert_eq!(run(&[Atom(0), Not], &[true]), Ok(true));
        // prefiltered and unknown: false.
        assert_eq!(run(&[Atom(0), Atom(1), And], &[true, false]), Ok(false));
        // prefiltered or unknown: unknown.
        assert_eq!(run(&[Atom(0), Atom(1), Or], &[true, false]), Ok(true));
        assert_eq!(run(&[False, Not, Atom(0), And], &[true]), Ok(false));
        assert_eq!(run(&[True], &[]), Ok(true));
    }

    #[test]
    fn structural_errors() {
        use Instr::*;
        let err = |prog: &[Instr], atoms: Range<u32>, depth: u32| {
            let (b, n) = enc(prog);
            check(&b[..n], atoms, depth, |_| true).unwrap_err()
        };
        assert_eq!(
            check(&[], 0..0, 64, |_| true).unwrap_err().reason,
            "empty program"
        );
        assert_eq!(err(&[And], 0..0, 64).reason, "stack underflow");
        assert_eq!(err(&[True, Not, Or], 0..0, 64).at, 2);
        assert_eq!(
            err(&[Atom(3)], 0..3, 64).reason,
            "atom operand outside the rule's atoms"
        );
        assert_eq!(err(&[True, True], 0..0, 64).at, 2);
        assert_eq!(
            err(&[True, True, True, And, And], 0..0, 2),
            ProgramError {
                at: 2,
                reason: "stack deeper than the limit"
            }
        );
        // The ceiling applies whatever the caller asks for.
        let deep = [True; 65];
        assert_eq!(
            err(&deep, 0..0, u32::MAX).reason,
            "stack deeper than the limit"
        );
    }
}
