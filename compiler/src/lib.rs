//! The rule compiler: imports rule sources into [`model::RuleSet`] and writes
//! channel files that `channel_parser::parse` accepts.
pub mod automata;
pub mod compile;
pub mod import;
mod lower;
pub mod model;
mod model_display;
mod plan;
pub mod protect;
pub mod sign;
pub mod user;
mod write;

pub use compile::{
    compile, compile_unchecked, fold, CompileError, CompileErrorKind, CompileOptions,
};

/// A copy of a byte buffer at an 8-byte-aligned address, for
/// `channel_parser::parse` (DFAs are read in place and need 4-byte alignment).
#[derive(Debug, Clone)]
pub struct AlignedBytes {
    words: Vec<u64>,
    len: usize,
}

impl AlignedBytes {
    /// Copies `bytes`.
    pub fn new(bytes: &[u8]) -> Self {
        let mut words = vec![0u64; bytes.len().div_ceil(8)];
        for (w, chunk) in words.iter_mut().zip(bytes.chunks(8)) {
            let mut b = [0u8; 8];
            b[..chunk.len()].copy_from_slice(chunk);
            *w = u64::from_ne_bytes(b);
        }
        AlignedBytes {
            words,
            len: bytes.len(),
        }
    }

    /// The bytes.
    pub fn as_slice(&self) -> &[u8] {
        let all: &[u8] = bytemuck::cast_slice(&self.words);
        &all[..self.len]
    }
}
