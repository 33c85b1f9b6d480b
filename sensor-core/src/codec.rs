//! The control device's wire codec: the message header, a writer and a
//! reader of little-endian values over fixed buffers, fixed-size text
//! fields, and the error every decoder returns. A leaf module: it imports
//! nothing else from this crate, so every message module ([`crate::proto`],
//! [`crate::stream`], the guard's persisted state) builds on it and none of
//! them on each other for the codec. Never panics for any input.

/// `PSIO`, little-endian.
pub const PROTO_MAGIC: u32 = u32::from_le_bytes(*b"PSIO");
/// Protocol version; requests with another version are rejected.
pub const PROTO_VERSION: u16 = 1;
/// Header length.
pub const HEADER_LEN: usize = 8;

/// NTSTATUS values the protocol maps to.
pub mod status {
    /// STATUS_INVALID_PARAMETER
    pub const INVALID_PARAMETER: i32 = 0xC000_000Du32 as i32;
    /// STATUS_BUFFER_TOO_SMALL
    pub const BUFFER_TOO_SMALL: i32 = 0xC000_0023u32 as i32;
    /// STATUS_INVALID_DEVICE_REQUEST
    pub const INVALID_DEVICE_REQUEST: i32 = 0xC000_0010u32 as i32;
    /// STATUS_REVISION_MISMATCH
    pub const REVISION_MISMATCH: i32 = 0xC000_0059u32 as i32;
}

/// Why a message was rejected. Carries only static nouns and integers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProtoError {
    /// A length is wrong.
    BadLength {
        /// What was measured.
        what: &'static str,
        /// The length required (or the limit).
        expected: usize,
        /// The length found.
        found: usize,
    },
    /// The header's magic is wrong.
    BadMagic,
    /// The header's version is not [`PROTO_VERSION`].
    BadVersion {
        /// The version found.
        found: u16,
    },
    /// A field has a value this version does not define.
    BadValue {
        /// The field.
        what: &'static str,
    },
    /// The output buffer is too small for the response.
    BufferTooSmall {
        /// Bytes needed.
        needed: usize,
    },
    /// The IOCTL code is not one of ours.
    UnknownIoctl,
}

impl ProtoError {
    /// The NTSTATUS the driver completes the IRP with.
    pub const fn ntstatus(self) -> i32 {
        match self {
            ProtoError::BufferTooSmall { .. } => status::BUFFER_TOO_SMALL,
            ProtoError::BadVersion { .. } => status::REVISION_MISMATCH,
            ProtoError::UnknownIoctl => status::INVALID_DEVICE_REQUEST,
            _ => status::INVALID_PARAMETER,
        }
    }
}

impl core::fmt::Display for ProtoError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match *self {
            ProtoError::BadLength {
                what,
                expected,
                found,
            } => write!(f, "bad {what}: expected {expected}, found {found}"),
            ProtoError::BadMagic => f.write_str("bad magic"),
            ProtoError::BadVersion { found } => {
                write!(f, "protocol version {found}, expected {PROTO_VERSION}")
            }
            ProtoError::BadValue { what } => write!(f, "bad value for {what}"),
            ProtoError::BufferTooSmall { needed } => {
                write!(f, "output buffer too small: {needed} bytes needed")
            }
            ProtoError::UnknownIoctl => f.write_str("unknown IOCTL"),
        }
    }
}

/// Writes little-endian values into a fixed buffer; never panics.
#[derive(Debug)]
pub struct Writer<'a> {
    buf: &'a mut [u8],
    pos: usize,
}

impl<'a> Writer<'a> {
    /// Writes from the start of `buf`.
    pub fn new(buf: &'a mut [u8]) -> Self {
        Writer { buf, pos: 0 }
    }
    /// Bytes written so far.
    pub const fn written(&self) -> usize {
        self.pos
    }
    /// Appends raw bytes.
    ///
    /// # Errors
    /// [`ProtoError::BufferTooSmall`] when they do not fit (nothing written).
    pub fn bytes(&mut self, b: &[u8]) -> Result<(), ProtoError> {
        let end = self
            .pos
            .checked_add(b.len())
            .ok_or(ProtoError::BufferTooSmall { needed: usize::MAX })?;
        let dst = self
            .buf
            .get_mut(self.pos..end)
            .ok_or(ProtoError::BufferTooSmall { needed: end })?;
        dst.copy_from_slice(b);
        self.pos = end;
        Ok(())
    }
    /// Appends a `u8`.
    ///
    /// # Errors
    /// As [`Writer::bytes`].
    pub fn u8(&mut self, v: u8) -> Result<(), ProtoError> {
        self.bytes(&[v])
    }
    /// Appends a `u16`.
    ///
    /// # Errors
    /// As [`Writer::bytes`].
    pub fn u16(&mut self, v: u16) -> Result<(), ProtoError> {
        self.bytes(&v.to_le_bytes())
    }
    /// Appends a `u32`.
    ///
    /// # Errors
    /// As [`Writer::bytes`].
    pub fn u32(&mut self, v: u32) -> Result<(), ProtoError> {
        self.bytes(&v.to_le_bytes())
    }
    /// Appends a `u64`.
    ///
    /// # Errors
    /// As [`Writer::bytes`].
    pub fn u64(&mut self, v: u64) -> Result<(), ProtoError> {
        self.bytes(&v.to_le_bytes())
    }
    /// Appends UTF-16 units.
    ///
    /// # Errors
    /// As [`Writer::bytes`].
    pub fn units(&mut self, u: &[u16]) -> Result<(), ProtoError> {
        for &x in u {
            self.u16(x)?;
        }
        Ok(())
    }
    /// Appends `n` zero bytes.
    ///
    /// # Errors
    /// As [`Writer::bytes`].
    pub fn zeros(&mut self, n: usize) -> Result<(), ProtoError> {
        for _ in 0..n {
            self.u8(0)?;
        }
        Ok(())
    }
    /// Appends the message header.
    ///
    /// # Errors
    /// As [`Writer::bytes`].
    pub fn header(&mut self) -> Result<(), ProtoError> {
        self.u32(PROTO_MAGIC)?;
        self.u16(PROTO_VERSION)?;
        self.u16(0)
    }
}

/// Reads little-endian values from a shrinking slice; never panics.
#[derive(Debug)]
pub struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    /// Reads `b`.
    pub const fn new(b: &'a [u8]) -> Self {
        Reader { rest: b }
    }
    /// Takes `n` bytes.
    ///
    /// # Errors
    /// [`ProtoError::BadLength`] naming `what` when fewer are left.
    pub fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], ProtoError> {
        let (a, b) = self.rest.split_at_checked(n).ok_or(ProtoError::BadLength {
            what,
            expected: n,
            found: self.rest.len(),
        })?;
        self.rest = b;
        Ok(a)
    }
    fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], ProtoError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N, what)?);
        Ok(a)
    }
    /// Reads a `u8`.
    ///
    /// # Errors
    /// As [`Reader::take`].
    pub fn u8(&mut self, what: &'static str) -> Result<u8, ProtoError> {
        Ok(u8::from_le_bytes(self.array(what)?))
    }
    /// Reads a `u16`.
    ///
    /// # Errors
    /// As [`Reader::take`].
    pub fn u16(&mut self, what: &'static str) -> Result<u16, ProtoError> {
        Ok(u16::from_le_bytes(self.array(what)?))
    }
    /// Reads a `u32`.
    ///
    /// # Errors
    /// As [`Reader::take`].
    pub fn u32(&mut self, what: &'static str) -> Result<u32, ProtoError> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }
    /// Reads a `u64`.
    ///
    /// # Errors
    /// As [`Reader::take`].
    pub fn u64(&mut self, what: &'static str) -> Result<u64, ProtoError> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }
    /// Reads and checks the header.
    ///
    /// # Errors
    /// Bad length, magic or version.
    pub fn header(&mut self) -> Result<(), ProtoError> {
        if self.u32("header")? != PROTO_MAGIC {
            return Err(ProtoError::BadMagic);
        }
        let v = self.u16("header")?;
        if v != PROTO_VERSION {
            return Err(ProtoError::BadVersion { found: v });
        }
        let _reserved = self.u16("header")?;
        Ok(())
    }
    /// Bytes left.
    pub const fn left(&self) -> usize {
        self.rest.len()
    }
    /// Requires that everything was read.
    ///
    /// # Errors
    /// [`ProtoError::BadLength`] naming `what` when bytes are left.
    pub fn finish(self, what: &'static str) -> Result<(), ProtoError> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(ProtoError::BadLength {
                what,
                expected: 0,
                found: self.rest.len(),
            })
        }
    }
}

/// Text cut to `N` bytes (at a char boundary), for messages in fixed fields.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct FixedText<const N: usize> {
    buf: [u8; N],
    len: usize,
}

impl<const N: usize> core::fmt::Debug for FixedText<N> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        core::fmt::Debug::fmt(self.as_str(), f)
    }
}

impl<const N: usize> Default for FixedText<N> {
    fn default() -> Self {
        FixedText {
            buf: [0; N],
            len: 0,
        }
    }
}

impl<const N: usize> FixedText<N> {
    /// The empty text.
    pub const fn empty() -> Self {
        FixedText {
            buf: [0; N],
            len: 0,
        }
    }
    /// The text (empty if the stored bytes are not UTF-8).
    pub fn as_str(&self) -> &str {
        self.buf
            .get(..self.len)
            .and_then(|b| core::str::from_utf8(b).ok())
            .unwrap_or("")
    }
    /// The whole zero-padded field.
    pub const fn raw(&self) -> &[u8; N] {
        &self.buf
    }
    /// From a zero-padded field (stops at the first NUL; invalid UTF-8 gives "").
    pub fn from_raw(raw: [u8; N]) -> Self {
        let len = raw.iter().position(|&b| b == 0).unwrap_or(N);
        let ok = raw
            .get(..len)
            .is_some_and(|b| core::str::from_utf8(b).is_ok());
        FixedText {
            buf: raw,
            len: if ok { len } else { 0 },
        }
    }
    /// From a string, cut to fit.
    pub fn new(s: &str) -> Self {
        let mut t = Self::default();
        let _ = core::fmt::Write::write_str(&mut t, s);
        t
    }
}

impl<const N: usize> core::fmt::Write for FixedText<N> {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        for c in s.chars() {
            let mut tmp = [0u8; 4];
            let e = c.encode_utf8(&mut tmp).as_bytes();
            let end = self.len.checked_add(e.len()).ok_or(core::fmt::Error)?;
            let Some(dst) = self.buf.get_mut(self.len..end) else {
                // Full: drop the rest silently (the field is a summary).
                return Ok(());
            };
            dst.copy_from_slice(e);
            self.len = end;
        }
        Ok(())
    }
}

/// Requires `buf` to be exactly `len` bytes.
///
/// # Errors
/// [`ProtoError::BadLength`] naming `what` otherwise.
pub fn exact(buf: &[u8], len: usize, what: &'static str) -> Result<(), ProtoError> {
    if buf.len() == len {
        Ok(())
    } else {
        Err(ProtoError::BadLength {
            what,
            expected: len,
            found: buf.len(),
        })
    }
}

/// Copies UTF-16LE `bytes` into `out` as units, returning the units written.
///
/// # Errors
/// [`ProtoError::BadLength`] when `bytes` has an odd length or does not fit.
pub fn utf16le_into<'o>(bytes: &[u8], out: &'o mut [u16]) -> Result<&'o [u16], ProtoError> {
    let pairs = bytes.chunks_exact(2);
    let n = pairs.len();
    if !pairs.remainder().is_empty() || n > out.len() {
        return Err(ProtoError::BadLength {
            what: "UTF-16 text",
            expected: out.len(),
            found: bytes.len(),
        });
    }
    for (o, p) in out.iter_mut().zip(pairs) {
        *o = u16::from_le_bytes([
            p.first().copied().unwrap_or(0),
            p.get(1).copied().unwrap_or(0),
        ]);
    }
    out.get(..n).ok_or(ProtoError::BadLength {
        what: "UTF-16 text",
        expected: out.len(),
        found: bytes.len(),
    })
}
