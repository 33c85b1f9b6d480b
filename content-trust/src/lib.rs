//! Signature verification of channel files.
//!
//! A signed channel file carries, in its SIGNATURE section (FORMAT.md §14),
//! one to four entries of: key id (8 bytes: the first 8 bytes of SHA-256 of
//! the public key), Ed25519 public key (32 bytes), signature (64 bytes) —
//! `channel_format::SignatureRecord` and `SignatureEntryRecord`, the only
//! definition of that layout. Each signature is over
//!
//! ```text
//! "pipe-sensor channel file signature v1\0" || SHA-256(file bytes, minus the SIGNATURE section's body)
//! ```
//!
//! so it covers every byte of the file but the signature block itself —
//! including the header, the section table (which fixes where the signature
//! block is and how long) and all padding.
//!
//! [`verify`] checks the signature after validating only the frame (header
//! and section table) and before anything in the sections is trusted: the
//! kernel calls it first and parses the content only when it returns `Ok`.
//!
//! `no_std`, no allocation, `#![forbid(unsafe_code)]`. Never panics.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(
    not(test),
    deny(
        clippy::indexing_slicing,
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::arithmetic_side_effects
    )
)]

pub mod keyfile;

use channel_format::{signature, SectionKind, SignatureEntryRecord, SignatureRecord};
use channel_parser::{parse_frame, ParseError};
use ed25519_dalek::{Signature, Verifier, VerifyingKey};
use sha2::{Digest, Sha256};

/// Domain separation prefix of the signed message.
pub const DOMAIN: &[u8] = b"pipe-sensor channel file signature v1\0";
/// Length of one signature entry ([`SignatureEntryRecord`]).
pub const ENTRY_LEN: usize = channel_format::signature_entry::LEN;
/// Most signatures one file may carry (key rotation: old and new key).
pub const MAX_SIGNATURES: u32 = channel_format::MAX_SIGNATURES;
/// Version word of the SIGNATURE section this crate reads and writes.
pub const SIGNATURE_VERSION: u32 = channel_format::SIGNATURE_VERSION;

/// The id of a public key: the first 8 bytes of its SHA-256.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId(pub [u8; 8]);

impl core::fmt::Debug for KeyId {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        core::fmt::Display::fmt(self, f)
    }
}

impl core::fmt::Display for KeyId {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

/// The key id of an Ed25519 public key.
pub fn key_id(public_key: &[u8; 32]) -> KeyId {
    let d = Sha256::digest(public_key);
    let mut id = [0u8; 8];
    for (o, i) in id.iter_mut().zip(d.iter()) {
        *o = *i;
    }
    KeyId(id)
}

/// A public key the sensor trusts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrustedKey {
    /// Ed25519 public key bytes.
    pub public_key: [u8; 32],
}

impl TrustedKey {
    /// Its key id.
    pub fn id(&self) -> KeyId {
        key_id(&self.public_key)
    }
}

/// Why a file is not trusted.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TrustError {
    /// The header or section table is malformed.
    #[error("{0}")]
    Frame(ParseError),
    /// The file has no signature.
    #[error("the file is not signed")]
    Unsigned,
    /// The signature block is malformed.
    #[error("offset {offset}: signature block: {reason}")]
    BadSignatureBlock {
        /// Where.
        offset: u32,
        /// What is wrong.
        reason: &'static str,
    },
    /// A trusted key's signature does not verify: some byte changed after signing.
    #[error("signature by trusted key {key_id} does not verify: the file was modified after it was signed")]
    Tampered {
        /// The key.
        key_id: KeyId,
    },
    /// The file is intact and validly signed, but by a key that is not trusted
    /// (e.g. signed with a test key, checked against production keys).
    #[error("the file is signed by key {key_id}, which is not a trusted key (wrong key)")]
    WrongKey {
        /// The signer.
        key_id: KeyId,
    },
    /// The file names a key that is not trusted, and its signature does not
    /// even verify under that key.
    #[error("the file names unknown key {key_id} and its signature is not valid under it")]
    UnknownKey {
        /// The named key.
        key_id: KeyId,
    },
}

impl TrustError {
    /// A short stable name of the variant.
    pub fn kind(&self) -> &'static str {
        match self {
            TrustError::Frame(e) => e.kind(),
            TrustError::Unsigned => "unsigned",
            TrustError::BadSignatureBlock { .. } => "bad-signature-block",
            TrustError::Tampered { .. } => "tampered",
            TrustError::WrongKey { .. } => "wrong-key",
            TrustError::UnknownKey { .. } => "unknown-key",
        }
    }
}

/// One signature entry.
#[derive(Debug, Clone, Copy)]
pub struct SignatureEntry {
    /// The key id written in the entry.
    pub key_id: KeyId,
    /// The public key.
    pub public_key: [u8; 32],
    /// The signature.
    pub signature: [u8; 64],
}

fn arr<const N: usize>(b: &[u8]) -> [u8; N] {
    let mut out = [0u8; N];
    for (o, i) in out.iter_mut().zip(b.iter()) {
        *o = *i;
    }
    out
}

/// The signature entries of a file (validated frame), or why there are none.
///
/// # Errors
/// `Frame`, `Unsigned`, `BadSignatureBlock`.
pub fn entries(
    bytes: &[u8],
) -> Result<(u32, impl Iterator<Item = SignatureEntry> + '_), TrustError> {
    let (_, count, it) = entries_at(bytes)?;
    Ok((count, it))
}

/// [`entries`] with the file offset of the signature section.
fn entries_at(
    bytes: &[u8],
) -> Result<(u32, u32, impl Iterator<Item = SignatureEntry> + '_), TrustError> {
    let frame = parse_frame(bytes).map_err(TrustError::Frame)?;
    let (offset, _) = frame
        .section(SectionKind::SIGNATURE)
        .ok_or(TrustError::Unsigned)?;
    let body = frame
        .section_bytes(SectionKind::SIGNATURE)
        .ok_or(TrustError::Unsigned)?;
    let bad = |reason| TrustError::BadSignatureBlock { offset, reason };
    let head = SignatureRecord::read(body).ok_or(bad("shorter than 8 bytes"))?;
    if head.version != SIGNATURE_VERSION {
        return Err(bad("unknown version"));
    }
    if head.count > MAX_SIGNATURES {
        return Err(bad("more than 4 signatures"));
    }
    let rest = body.get(signature::LEN..).unwrap_or(&[]);
    if rest.len() != (head.count as usize).saturating_mul(ENTRY_LEN) {
        return Err(bad("length does not match the signature count"));
    }
    if head.count == 0 {
        return Err(TrustError::Unsigned);
    }
    let it = rest.chunks_exact(ENTRY_LEN).filter_map(|e| {
        let r = SignatureEntryRecord::read(e)?;
        Some(SignatureEntry {
            key_id: KeyId(r.key_id),
            public_key: r.public_key,
            signature: r.signature,
        })
    });
    Ok((offset, head.count, it))
}

/// SHA-256 of every byte of the file except the SIGNATURE section's body.
///
/// # Errors
/// `Frame` when the header or section table is malformed.
pub fn signed_digest(bytes: &[u8]) -> Result<[u8; 32], TrustError> {
    let frame = parse_frame(bytes).map_err(TrustError::Frame)?;
    let mut h = Sha256::new();
    match frame.section(SectionKind::SIGNATURE) {
        Some((off, len)) => {
            let (off, end) = (off as usize, (off as usize).saturating_add(len as usize));
            h.update(bytes.get(..off).unwrap_or(&[]));
            h.update(bytes.get(end..).unwrap_or(&[]));
        }
        None => h.update(bytes),
    }
    Ok(arr(&h.finalize()))
}

/// The message an Ed25519 signature covers, for a digest.
pub fn message(digest: &[u8; 32]) -> [u8; 70] {
    let mut m = [0u8; 70];
    for (o, i) in m.iter_mut().zip(DOMAIN.iter().chain(digest.iter())) {
        *o = *i;
    }
    m
}

/// Verifies a channel file's signature against the trusted keys. Returns the
/// id of the trusted key that signed it.
///
/// Only the frame (header and section table) is validated before the check;
/// the sections are trusted only after `Ok`.
///
/// # Errors
/// See [`TrustError`]: unsigned, tampered, wrong-key and unknown-key files
/// give distinct errors.
///
/// # Panics
/// Never panics, for any input. Allocates nothing.
pub fn verify(bytes: &[u8], trusted: &[TrustedKey]) -> Result<KeyId, TrustError> {
    let (section, _, entries) = entries_at(bytes)?;
    let msg = message(&signed_digest(bytes)?);
    let mut first_untrusted: Option<SignatureEntry> = None;
    for (i, e) in (0u32..).zip(entries) {
        let offset = section
            .saturating_add(signature::LEN_U32)
            .saturating_add(i.saturating_mul(channel_format::signature_entry::LEN_U32));
        if key_id(&e.public_key) != e.key_id {
            return Err(TrustError::BadSignatureBlock {
                offset,
                reason: "a key id does not match its public key",
            });
        }
        if trusted.iter().any(|t| t.public_key == e.public_key) {
            let vk = VerifyingKey::from_bytes(&e.public_key)
                .map_err(|_| TrustError::Tampered { key_id: e.key_id })?;
            return match vk.verify(&msg, &Signature::from_bytes(&e.signature)) {
                Ok(()) => Ok(e.key_id),
                Err(_) => Err(TrustError::Tampered { key_id: e.key_id }),
            };
        }
        if first_untrusted.is_none() {
            first_untrusted = Some(e);
        }
    }
    match first_untrusted {
        Some(e) => {
            let valid = VerifyingKey::from_bytes(&e.public_key).is_ok_and(|vk| {
                vk.verify(&msg, &Signature::from_bytes(&e.signature))
                    .is_ok()
            });
            Err(if valid {
                TrustError::WrongKey { key_id: e.key_id }
            } else {
                TrustError::UnknownKey { key_id: e.key_id }
            })
        }
        None => Err(TrustError::Unsigned),
    }
}
