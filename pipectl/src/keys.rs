//! Ed25519 key files for signing channel files.
//!
//! `NAME.key` holds the secret seed and `NAME.pub` the public key, each
//! with its own header line (`content_trust::keyfile`), so that one cannot
//! be taken for the other. The key id (first 8 bytes of SHA-256 of the public
//! key) is what channel files and the driver's status name.

use content_trust::keyfile::{self, KeyFile, KeyFileError};
use content_trust::{key_id, KeyId, TrustedKey};
use ed25519_dalek::SigningKey;
use std::path::{Path, PathBuf};

fn read_text(path: &Path) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))
}

fn key_error(path: &Path, e: KeyFileError) -> String {
    let e = e.to_string();
    // The legacy message speaks of PREFIX: name the real one.
    let prefix = path.with_extension("");
    format!(
        "{}: {}",
        path.display(),
        e.replace("PREFIX", &prefix.display().to_string())
    )
}

fn public_text(public: &[u8; 32]) -> String {
    let mut s = String::new();
    let _ = keyfile::write_public(&mut s, public);
    s
}

fn secret_text(seed: &[u8; 32], public: &[u8; 32]) -> String {
    let mut s = String::new();
    let _ = keyfile::write_secret(&mut s, seed, public);
    s
}

/// Creates the parent directory of `path` if it is missing.
pub fn create_parent(path: &Path) -> Result<(), String> {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => {
            std::fs::create_dir_all(p).map_err(|e| format!("{}: {e}", p.display()))
        }
        _ => Ok(()),
    }
}

/// Generates a key pair: writes `<prefix>.key` (mode 0600) and `<prefix>.pub`,
/// creating the directory if needed. Returns the two paths and the key id.
pub fn keygen(prefix: &Path) -> Result<(PathBuf, PathBuf, KeyId), String> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| format!("no randomness: {e}"))?;
    let key = SigningKey::from_bytes(&seed);
    let public = key.verifying_key().to_bytes();
    let secret_path = prefix.with_extension("key");
    let public_path = prefix.with_extension("pub");
    for p in [&secret_path, &public_path] {
        if p.exists() {
            return Err(format!(
                "{} exists: refusing to overwrite a key",
                p.display()
            ));
        }
    }
    create_parent(&secret_path)?;
    write_secret(&secret_path, &secret_text(&seed, &public))?;
    std::fs::write(&public_path, public_text(&public))
        .map_err(|e| format!("{}: {e}", public_path.display()))?;
    Ok((secret_path, public_path, key_id(&public)))
}

/// What `keygen --upgrade` did.
#[derive(Debug)]
pub struct Upgraded {
    /// Files rewritten, with what they now hold.
    pub rewritten: Vec<(PathBuf, &'static str)>,
    /// The key id.
    pub id: KeyId,
    /// Whether the pair was checked (the .pub is the .key's public half).
    pub pair_checked: bool,
}

fn legacy_hex(path: &Path) -> Result<Option<[u8; 32]>, String> {
    if !path.exists() {
        return Ok(None);
    }
    let text = read_text(path)?;
    match keyfile::parse(&text) {
        Err(KeyFileError::Legacy) => {}
        Ok(k) => {
            return Err(format!(
                "{}: already a {} key file in the current format",
                path.display(),
                k.kind().name()
            ))
        }
        Err(e) => return Err(key_error(path, e)),
    }
    let t = text.trim();
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        *o = t
            .get(2 * i..2 * i + 2)
            .and_then(|h| u8::from_str_radix(h, 16).ok())
            .ok_or_else(|| format!("{}: not 64 hex digits", path.display()))?;
    }
    Ok(Some(out))
}

/// Rewrites `<prefix>.key` / `<prefix>.pub` written before key files had a
/// header. When both exist, the `.pub` must be the public half of the
/// `.key` (so neither can be the other mislabelled); a lone `.key` also gets
/// its `.pub`; a lone `.pub` is rewritten as what its name says.
pub fn upgrade(prefix: &Path) -> Result<Upgraded, String> {
    let secret_path = prefix.with_extension("key");
    let public_path = prefix.with_extension("pub");
    let seed = legacy_hex(&secret_path)?;
    let public = legacy_hex(&public_path)?;
    match (seed, public) {
        (None, None) => Err(format!(
            "neither {} nor {} exists",
            secret_path.display(),
            public_path.display()
        )),
        (Some(seed), public) => {
            let derived = SigningKey::from_bytes(&seed).verifying_key().to_bytes();
            if let Some(p) = public {
                if p != derived {
                    return Err(format!(
                        "{} is not the public half of {} (key ids {} and {}): nothing rewritten; \
                         if the files were swapped, rename them and run this again",
                        public_path.display(),
                        secret_path.display(),
                        key_id(&p),
                        key_id(&derived)
                    ));
                }
            }
            std::fs::write(&secret_path, secret_text(&seed, &derived))
                .map_err(|e| format!("{}: {e}", secret_path.display()))?;
            std::fs::write(&public_path, public_text(&derived))
                .map_err(|e| format!("{}: {e}", public_path.display()))?;
            Ok(Upgraded {
                rewritten: vec![(secret_path, "secret"), (public_path, "public")],
                id: key_id(&derived),
                pair_checked: public.is_some(),
            })
        }
        (None, Some(p)) => {
            std::fs::write(&public_path, public_text(&p))
                .map_err(|e| format!("{}: {e}", public_path.display()))?;
            Ok(Upgraded {
                rewritten: vec![(public_path, "public")],
                id: key_id(&p),
                pair_checked: false,
            })
        }
    }
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

/// Reads a secret key file for signing. Refuses a public key file, a
/// secret file whose `id` line is not its key's, and a secret key whose
/// sibling `.pub` (same name) holds another key.
pub fn signing_key(path: &Path) -> Result<(SigningKey, KeyId), String> {
    let (seed, stated) =
        keyfile::parse_secret(&read_text(path)?).map_err(|e| key_error(path, e))?;
    let key = SigningKey::from_bytes(&seed);
    let public = key.verifying_key().to_bytes();
    let id = key_id(&public);
    if let Some(s) = stated.filter(|s| *s != id) {
        return Err(format!(
            "{}: the `id` line says {s} but the key's id is {id}: the file was edited or mixed up",
            path.display()
        ));
    }
    let sibling = path.with_extension("pub");
    if sibling != path && sibling.exists() {
        if let Ok(KeyFile::Public { public_key }) = keyfile::parse(&read_text(&sibling)?) {
            if public_key != public {
                return Err(format!(
                    "{} signs as key id {id}, but {} beside it holds key id {}: \
                     the pair is mixed up (nothing signed)",
                    path.display(),
                    sibling.display(),
                    key_id(&public_key)
                ));
            }
        }
    }
    Ok((key, id))
}

/// Reads a public key file. Refuses a secret key file.
pub fn trusted_key(path: &Path) -> Result<TrustedKey, String> {
    Ok(TrustedKey {
        public_key: keyfile::parse_public(&read_text(path)?).map_err(|e| key_error(path, e))?,
    })
}
