//! Test tooling for pipe-sensor channel files, kept out of the published
//! compiler crate:
//!
//! - [`malformed`]: the malformed corpus, channel files built by code from a
//!   valid one, each with the parser error it must be rejected with (the
//!   parser's tests, `pipectl gen-malformed`, the driver's Wine tests, fuzz
//!   seeds);
//! - [`reference`](mod@reference): an independent evaluator of the rule model, the oracle
//!   of the differential tests, the fuzzers and the benchmarks;
//! - [`cases`]: the runner of rules' embedded test cases on the kernel
//!   matcher (`pipectl test`, the documentation and fuzz checks);
//! - [`build`]: short constructors of the rule model for tests.
//!
//! Everything here may allocate and panic: it runs in tests and tools, never
//! in the kernel.
pub mod build;
pub mod cases;
pub mod malformed;
pub mod reference;

/// A deterministic xorshift32 generator for randomized tests: each call
/// returns a value below `n` (`n` > 0). Not for anything but tests.
pub fn xorshift(mut seed: u32) -> impl FnMut(usize) -> usize {
    move |n| {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        seed as usize % n
    }
}
