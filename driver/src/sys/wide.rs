//! UTF-16 strings in fixed buffers (`UNICODE_STRING` arguments).

use super::*;

/// A UTF-16 copy of an ASCII string, NUL-terminated, in a fixed buffer.
pub struct Wide<const N: usize> {
    buf: [u16; N],
    len: usize,
}

impl<const N: usize> Wide<N> {
    /// The empty string.
    pub const fn empty() -> Self {
        Wide {
            buf: [0; N],
            len: 0,
        }
    }
    /// Replaces the contents with `u` (cut to N-1), in place.
    pub fn set_units(&mut self, u: &[u16]) {
        self.buf = [0; N];
        self.len = 0;
        self.push_units(u);
    }
    /// Converts `s` (cut to N-1 units).
    pub fn new(s: &str) -> Self {
        let mut w = Wide {
            buf: [0; N],
            len: 0,
        };
        w.push_str(s);
        w
    }
    /// From UTF-16 units (cut to N-1).
    pub fn from_units(u: &[u16]) -> Self {
        let mut w = Wide {
            buf: [0; N],
            len: 0,
        };
        w.push_units(u);
        w
    }
    /// Appends `s`.
    pub fn push_str(&mut self, s: &str) {
        for u in s.encode_utf16() {
            self.push_units(&[u]);
        }
    }
    /// Appends units.
    pub fn push_units(&mut self, u: &[u16]) {
        for &x in u {
            if self.len + 1 >= N {
                return;
            }
            if let Some(slot) = self.buf.get_mut(self.len) {
                *slot = x;
                self.len += 1;
            }
        }
    }
    /// The units (without the NUL).
    pub fn units(&self) -> &[u16] {
        self.buf.get(..self.len).unwrap_or(&[])
    }
    /// A `UNICODE_STRING` describing the buffer; valid while `self` is.
    pub(super) fn unicode(&self) -> UNICODE_STRING {
        let bytes = (self.len * 2) as u16;
        UNICODE_STRING {
            Length: bytes,
            MaximumLength: bytes,
            Buffer: self.buf.as_ptr() as *mut u16,
        }
    }
}
