//! Ed25519 key files for signing channel files.
//!
//! `NAME.key` holds the 32-byte secret seed and `NAME.pub` the 32-byte public
//! key, each as one line of lowercase hex. The key id (first 8 bytes of
//! SHA-256 of the public key) is what channel files and the driver's status
//! name.

use content_trust::{key_id, TrustedKey};
use ed25519_dalek::SigningKey;
use std::path::{Path, PathBuf};

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn read_hex32(path: &Path) -> Result<[u8; 32], String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let t = text.trim();
    if t.len() != 64 || !t.bytes().all(|c| c.is_ascii_hexdigit()) {
        return Err(format!(
            "{}: expected 64 hex digits (a 32-byte key), found {} characters",
            path.display(),
            t.len()
        ));
    }
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(&t[2 * i..2 * i + 2], 16)
            .map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(out)
}

/// Generates a key pair: writes `<prefix>.key` (mode 0600) and `<prefix>.pub`.
pub fn keygen(prefix: &Path) -> Result<(PathBuf, PathBuf, String), String> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| format!("no randomness: {e}"))?;
    let key = SigningKey::from_bytes(&seed);
    let public = key.verifying_key().to_bytes();
    let secret_path = prefix.with_extension("key");
    let public_path = prefix.with_extension("pub");
    if secret_path.exists() {
        return Err(format!(
            "{} exists: refusing to overwrite a key",
            secret_path.display()
        ));
    }
    write_secret(&secret_path, &format!("{}\n", hex(&seed)))?;
    std::fs::write(&public_path, format!("{}\n", hex(&public)))
        .map_err(|e| format!("{}: {e}", public_path.display()))?;
    Ok((secret_path, public_path, key_id(&public).to_string()))
}

#[cfg(unix)]
fn write_secret(path: &Path, text: &str) -> Result<(), String> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    f.write_all(text.as_bytes())
        .map_err(|e| format!("{}: {e}", path.display()))
}

#[cfg(not(unix))]
fn write_secret(path: &Path, text: &str) -> Result<(), String> {
    std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))
}

/// Reads a secret key file.
pub fn signing_key(path: &Path) -> Result<SigningKey, String> {
    Ok(SigningKey::from_bytes(&read_hex32(path)?))
}

/// Reads a public key file.
pub fn trusted_key(path: &Path) -> Result<TrustedKey, String> {
    Ok(TrustedKey {
        public_key: read_hex32(path)?,
    })
}
