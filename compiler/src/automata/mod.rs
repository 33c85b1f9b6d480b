//! The automata the compiler writes: the per-field literal prefilter and the
//! character-level DFAs of regex atoms. Both are built here and only here;
//! the parser validates and runs them (FORMAT.md, PREFILTER and DFAS).
pub mod dfa;
pub mod prefilter;
