//! A stand-in for the part of regex-automata 0.4 that `channel-parser` uses,
//! for the strict panic-free proof (`tests/panic-free/stubbed`). Every
//! result goes through `core::hint::black_box`, so the optimiser must keep
//! every path of the caller that the real crate could lead to: a DFA that
//! validates or not, any `nread`, any state, match or not. What this removes
//! from the proof is regex-automata's own code, whose remaining panic paths
//! are listed by `scripts/panic-free.sh --audit` and discussed in
//! docs/fuzzing.md.
#![no_std]

use core::hint::black_box;

/// `regex_automata::Anchored`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Anchored {
    /// Unanchored.
    No,
    /// Anchored.
    Yes,
}

/// `regex_automata::util`.
pub mod util {
    /// `regex_automata::util::start`.
    pub mod start {
        /// Start configuration.
        #[derive(Debug, Clone, Copy)]
        pub struct Config(pub u8);
        impl Config {
            /// A default configuration.
            pub fn new() -> Config {
                Config(0)
            }
            /// Sets the anchor mode.
            pub fn anchored(self, a: crate::Anchored) -> Config {
                Config(core::hint::black_box(a as u8))
            }
        }
    }
    /// `regex_automata::util::primitives`.
    pub mod primitives {
        /// A state identifier.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub struct StateID(pub u32);
    }
}

/// `regex_automata::dfa`.
pub mod dfa {
    use super::black_box;
    use crate::util::primitives::StateID;

    /// Start-state error.
    #[derive(Debug)]
    pub struct StartError;

    /// The automaton trait (the methods the matcher calls).
    pub trait Automaton {
        /// Start state.
        fn start_state(&self, c: &crate::util::start::Config) -> Result<StateID, StartError>;
        /// Transition.
        fn next_state(&self, s: StateID, b: u8) -> StateID;
        /// End-of-input transition.
        fn next_eoi_state(&self, s: StateID) -> StateID;
        /// Special state?
        fn is_special_state(&self, s: StateID) -> bool;
        /// Match state?
        fn is_match_state(&self, s: StateID) -> bool;
        /// Dead state?
        fn is_dead_state(&self, s: StateID) -> bool;
        /// Quit state?
        fn is_quit_state(&self, s: StateID) -> bool;
    }

    /// `regex_automata::dfa::dense`.
    pub mod dense {
        use super::{black_box, Automaton, StartError, StateID};

        /// Deserialization error.
        #[derive(Debug)]
        pub struct DeserializeError;

        /// A dense DFA borrowing its transition table.
        #[derive(Debug, Clone, Copy)]
        pub struct DFA<T>(T);

        impl<'a> DFA<&'a [u32]> {
            /// Validating deserialization: an opaque outcome and `nread`.
            pub fn from_bytes(b: &'a [u8]) -> Result<(DFA<&'a [u32]>, usize), DeserializeError> {
                if black_box(b.len() % 7 == 3) {
                    Err(DeserializeError)
                } else {
                    Ok((DFA(black_box(&[][..])), black_box(b.len())))
                }
            }
        }

        impl<T> Automaton for DFA<T> {
            fn start_state(&self, c: &crate::util::start::Config) -> Result<StateID, StartError> {
                if black_box(c).0 == 9 {
                    Err(StartError)
                } else {
                    Ok(StateID(black_box(1)))
                }
            }
            fn next_state(&self, s: StateID, b: u8) -> StateID {
                StateID(black_box(s.0 ^ u32::from(b)))
            }
            fn next_eoi_state(&self, s: StateID) -> StateID {
                StateID(black_box(s.0))
            }
            fn is_special_state(&self, s: StateID) -> bool {
                black_box(s.0 & 1 == 1)
            }
            fn is_match_state(&self, s: StateID) -> bool {
                black_box(s.0 & 2 == 2)
            }
            fn is_dead_state(&self, s: StateID) -> bool {
                black_box(s.0 & 4 == 4)
            }
            fn is_quit_state(&self, s: StateID) -> bool {
                black_box(s.0 & 8 == 8)
            }
        }
    }
}
