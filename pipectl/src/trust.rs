//! Signature status of a channel file, and what a driver would do with it.
//!
//! `verify` and `inspect` report, without any key given: unsigned, signed by
//! key id X (each signature checked against the public key it carries), or
//! tampered; and what a driver built from this tree with its default
//! settings would do: `RequireSignature` 1 and the keys built into it
//! (`driver/keys/*.pub`, embedded into `pipectl` by `build.rs`). It runs the
//! driver's own checks: `content_trust::verify` against those keys, then
//! `channel_parser::parse` for the version-1 sensor.

use content_trust::{TrustError, TrustedKey};
use serde_json::{json, Value};

// DRIVER_KEYS: &[(&str, &str)], file name and text of driver/keys/*.pub.
include!(concat!(env!("OUT_DIR"), "/driver_keys.rs"));

/// The public keys a driver built from this tree trusts (`driver/keys/*.pub`,
/// read with the driver build's own reader). A key file the driver build
/// would refuse is reported as an error.
pub fn driver_keys() -> Result<Vec<(String, TrustedKey)>, String> {
    DRIVER_KEYS
        .iter()
        .map(|(name, text)| {
            content_trust::keyfile::parse_public(text)
                .map(|public_key| (name.to_string(), TrustedKey { public_key }))
                .map_err(|e| format!("driver/keys/{name}: {e}"))
        })
        .collect()
}

/// One signature in the file.
#[derive(Debug, Clone)]
pub struct Sig {
    /// Key id written in the entry.
    pub key_id: String,
    /// Whether it verifies under the public key it carries.
    pub intact: bool,
}

/// The signature block, judged without any trusted key.
#[derive(Debug, Clone)]
pub enum Signature {
    /// No signature section (or one with no entries).
    Unsigned,
    /// Every signature verifies under its own public key.
    Signed(Vec<Sig>),
    /// At least one signature does not verify: a byte changed after signing.
    Tampered(Vec<Sig>),
    /// The signature block (or the frame) is malformed.
    Malformed(String),
}

impl Signature {
    /// Reads and checks the signature block.
    pub fn of(bytes: &[u8]) -> Signature {
        let entries: Vec<_> = match content_trust::entries(bytes) {
            Ok((_, it)) => it.collect(),
            Err(TrustError::Unsigned) => return Signature::Unsigned,
            Err(e) => return Signature::Malformed(format!("{e} [{}]", e.kind())),
        };
        let sigs: Vec<Sig> = entries
            .iter()
            .map(|e| Sig {
                key_id: e.key_id.to_string(),
                intact: content_trust::verify(
                    bytes,
                    &[TrustedKey {
                        public_key: e.public_key,
                    }],
                )
                .is_ok(),
            })
            .collect();
        if sigs.iter().all(|s| s.intact) {
            Signature::Signed(sigs)
        } else {
            Signature::Tampered(sigs)
        }
    }

    /// Whether a byte changed after signing (or the block is malformed):
    /// `verify` fails on these.
    pub fn is_bad(&self) -> bool {
        matches!(self, Signature::Tampered(_) | Signature::Malformed(_))
    }

    /// One line: `unsigned`, `signed by key id X`, `TAMPERED: ...`.
    pub fn text(&self) -> String {
        let ids = |s: &[Sig]| {
            s.iter()
                .map(|s| s.key_id.clone())
                .collect::<Vec<_>>()
                .join(", ")
        };
        match self {
            Signature::Unsigned => "unsigned".into(),
            Signature::Signed(s) => format!("signed by key id {} (intact)", ids(s)),
            Signature::Tampered(s) => format!(
                "TAMPERED: the signature by key id {} does not verify: the file was modified after it was signed",
                ids(&s.iter().filter(|s| !s.intact).cloned().collect::<Vec<_>>())
            ),
            Signature::Malformed(e) => format!("malformed signature block: {e}"),
        }
    }

    /// As JSON.
    pub fn json(&self) -> Value {
        let (status, sigs, error) = match self {
            Signature::Unsigned => ("unsigned", &[][..], None),
            Signature::Signed(s) => ("signed", &s[..], None),
            Signature::Tampered(s) => ("tampered", &s[..], None),
            Signature::Malformed(e) => ("malformed", &[][..], Some(e.clone())),
        };
        json!({
            "status": status,
            "signatures": sigs.iter().map(|s| json!({"key_id": s.key_id, "intact": s.intact})).collect::<Vec<_>>(),
            "error": error,
        })
    }
}

/// What a driver would do with the file.
#[derive(Debug, Clone)]
pub struct Admission {
    /// Who decides: "a default driver (RequireSignature 1, N keys built in
    /// from driver/keys: ids)" or "a driver trusting --key ...".
    pub who: String,
    /// The trusted key ids.
    pub keys: Vec<String>,
    /// Loads it (`Ok(signer)`), or refuses it (`Err((kind, reason))`).
    pub outcome: Result<String, (String, String)>,
}

impl Admission {
    /// Runs the driver's checks: signature against `keys`, then the parser.
    pub fn judge(bytes: &[u8], keys: &[TrustedKey], who: String) -> Admission {
        let outcome = match content_trust::verify(bytes, keys) {
            Err(e) => Err((e.kind().to_string(), e.to_string())),
            Ok(id) => {
                let aligned = pipe_compiler::AlignedBytes::new(bytes);
                match channel_parser::parse(
                    aligned.as_slice(),
                    &channel_parser::Capabilities::SENSOR,
                ) {
                    Ok(_) => Ok(id.to_string()),
                    Err(e) => Err((e.kind().to_string(), e.to_string())),
                }
            }
        };
        Admission {
            who,
            keys: keys.iter().map(|k| k.id().to_string()).collect(),
            outcome,
        }
    }

    /// A default driver built from this tree.
    pub fn default_driver(bytes: &[u8]) -> Result<Admission, String> {
        let keys = driver_keys()?;
        let who = if keys.is_empty() {
            "a default driver (RequireSignature 1; no key built in: driver/keys has no .pub)"
                .to_string()
        } else {
            format!(
                "a default driver (RequireSignature 1; built-in keys from driver/keys: {})",
                keys.iter()
                    .map(|(n, k)| format!("{} {n}", k.id()))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        let keys: Vec<TrustedKey> = keys.into_iter().map(|(_, k)| k).collect();
        Ok(Admission::judge(bytes, &keys, who))
    }

    /// One line.
    pub fn text(&self) -> String {
        match &self.outcome {
            Ok(id) => format!("{} loads it (signed by trusted key {id})", self.who),
            Err((kind, reason)) => {
                let hint = if kind == "wrong-key" {
                    "; to trust this key, copy its .pub into driver/keys and rebuild the driver"
                } else {
                    ""
                };
                format!("{} refuses it: {reason} [{kind}]{hint}", self.who)
            }
        }
    }

    /// As JSON.
    pub fn json(&self) -> Value {
        json!({
            "driver": self.who,
            "require_signature": true,
            "trusted_keys": self.keys,
            "loads": self.outcome.is_ok(),
            "signer": self.outcome.as_ref().ok(),
            "refusal": self.outcome.as_ref().err().map(|(k, r)| json!({"kind": k, "reason": r})),
        })
    }
}
