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
//!   matcher (`pipectl test`, the documentation and fuzz checks).
//!
//! Everything here may allocate and panic: it runs in tests and tools, never
//! in the kernel.
pub mod cases;
pub mod malformed;
pub mod reference;
