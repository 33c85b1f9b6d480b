//! Signing channel files (the writer side of `content-trust`).

use crate::compile::assemble;
use crate::AlignedBytes;
use channel_format::SectionKind;
use channel_format::{self as fmt, SignatureEntryRecord, SignatureRecord};
use content_trust::{message, signed_digest, MAX_SIGNATURES, SIGNATURE_VERSION};
use ed25519_dalek::{Signer, SigningKey};

/// Signs a valid channel file with one to four keys: the SIGNATURE section is
/// replaced by a block holding one entry per key, moved to the end of the
/// file, and each entry signs every other byte of the file.
///
/// # Errors
/// The input is not a valid channel file, or the key count is out of range.
pub fn sign(unsigned: &[u8], keys: &[SigningKey]) -> Result<Vec<u8>, String> {
    if keys.is_empty() || keys.len() > MAX_SIGNATURES as usize {
        return Err(format!(
            "between 1 and {MAX_SIGNATURES} signing keys are needed, got {}",
            keys.len()
        ));
    }
    let aligned = AlignedBytes::new(unsigned);
    let file = channel_parser::parse(
        aligned.as_slice(),
        &channel_parser::Capabilities::from_fields(channel_format::FieldId::KNOWN),
    )
    .map_err(|e| format!("not a valid channel file: {e}"))?;
    let header = file.header();
    let mut sections: Vec<(SectionKind, u32, Vec<u8>)> = file
        .sections()
        .filter(|s| s.kind != SectionKind::SIGNATURE)
        .map(|s| {
            (
                s.kind,
                s.flags,
                unsigned[s.offset as usize..(s.offset + s.len) as usize].to_vec(),
            )
        })
        .collect();
    let head = SignatureRecord {
        version: SIGNATURE_VERSION,
        count: keys.len() as u32,
    };
    let mut block = head.to_bytes().to_vec();
    block.resize(
        fmt::signature::LEN + keys.len() * fmt::signature_entry::LEN,
        0,
    );
    sections.push((SectionKind::SIGNATURE, 0, block));
    let mut out = assemble(header.sequence, header.optional_flags, &sections);
    fmt::header::FORMAT_MINOR
        .set(&mut out, header.format_minor)
        .ok_or("file shorter than its header")?;
    let digest = signed_digest(&out).map_err(|e| e.to_string())?;
    let msg = message(&digest);
    let frame = channel_parser::parse_frame(&out).map_err(|e| e.to_string())?;
    let (sig_off, _) = frame
        .section(SectionKind::SIGNATURE)
        .ok_or("signature section missing after assembly")?;
    let entries = &mut out[sig_off as usize + fmt::signature::LEN..];
    for (i, key) in keys.iter().enumerate() {
        let public = key.verifying_key().to_bytes();
        let entry = SignatureEntryRecord {
            key_id: content_trust::key_id(&public).0,
            public_key: public,
            signature: key.sign(&msg).to_bytes(),
        };
        SignatureEntryRecord::nth_mut(entries, i)
            .and_then(|slot| entry.write(slot))
            .ok_or("signature block shorter than its entries")?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use content_trust::{verify, TrustError, TrustedKey};

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32])
    }

    fn trusted(k: &SigningKey) -> TrustedKey {
        TrustedKey {
            public_key: k.verifying_key().to_bytes(),
        }
    }

    #[test]
    fn signed_files_verify_and_every_tampering_is_detected() {
        let unsigned = test_kit::malformed::fixture_file();
        assert_eq!(
            verify(&unsigned, &[trusted(&key(1))]),
            Err(TrustError::Unsigned)
        );
        let signed = sign(&unsigned, &[key(1)]).unwrap();
        // Still a valid channel file, same content.
        let aligned = AlignedBytes::new(&signed);
        let f = channel_parser::parse(aligned.as_slice(), &channel_parser::Capabilities::SENSOR)
            .unwrap();
        assert_eq!(f.sequence(), 7);
        let id = content_trust::key_id(&key(1).verifying_key().to_bytes());
        assert_eq!(
            verify(&signed, &[trusted(&key(2)), trusted(&key(1))]),
            Ok(id)
        );
        // Wrong key: intact, validly signed by key 1, checked against key 2.
        assert_eq!(
            verify(&signed, &[trusted(&key(2))]),
            Err(TrustError::WrongKey { key_id: id })
        );
        // Every byte outside the signature block, each changed in turn: tampered
        // (or, in the frame, a frame error).
        let frame = channel_parser::parse_frame(&signed).unwrap();
        let (sig_off, _) = frame.section(SectionKind::SIGNATURE).unwrap();
        for i in 0..sig_off as usize {
            let mut t = signed.clone();
            t[i] ^= 0x01;
            match verify(&t, &[trusted(&key(1))]) {
                Err(TrustError::Tampered { .. }) | Err(TrustError::Frame(_)) => {}
                // A flip in the SIGNATURE section's table entry can turn it
                // into an unknown, ignorable section: the file then carries
                // no signature, and is rejected as unsigned.
                Err(TrustError::Unsigned)
                    if channel_parser::parse_frame(&t)
                        .is_ok_and(|f| f.section(SectionKind::SIGNATURE).is_none()) => {}
                other => panic!("byte {i}: {other:?}"),
            }
        }
        // A corrupted signature under an untrusted key: unknown key.
        let mut t = sign(&unsigned, &[key(3)]).unwrap();
        let n = t.len();
        t[n - 1] ^= 0xFF;
        assert!(matches!(
            verify(&t, &[trusted(&key(1))]),
            Err(TrustError::UnknownKey { .. })
        ));
        // Signature bytes of a trusted key corrupted: tampered.
        let mut t = signed.clone();
        let n = t.len();
        t[n - 1] ^= 0xFF;
        assert!(matches!(
            verify(&t, &[trusted(&key(1))]),
            Err(TrustError::Tampered { .. })
        ));
        // Key id not matching its key.
        let mut t = signed.clone();
        let key_id = sig_off as usize
            + channel_format::signature::LEN
            + channel_format::signature_entry::KEY_ID.offset();
        t[key_id] ^= 1;
        assert!(matches!(
            verify(&t, &[trusted(&key(1))]),
            Err(TrustError::BadSignatureBlock { .. })
        ));
    }

    #[test]
    fn two_signatures_for_key_rotation() {
        let signed = sign(&test_kit::malformed::fixture_file(), &[key(1), key(2)]).unwrap();
        assert!(verify(&signed, &[trusted(&key(2))]).is_ok());
        assert!(verify(&signed, &[trusted(&key(1))]).is_ok());
        assert!(sign(&signed, &[]).is_err());
    }
}
