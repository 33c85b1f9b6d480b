//! Collects the trusted content-signing keys into `$OUT_DIR/trusted_keys.bin`
//! (32 bytes per key), which `content.rs` includes:
//! * every `keys/*.pub` (public key files as `pipectl keygen` writes them,
//!   read by `content_trust::keyfile`: a secret key file is refused),
//! * the file named by `PIPESENSOR_TEST_KEY`, when set at build time (the
//!   CI test key of `scripts/driver-test.sh`; never set it for a release).
//!
//! With no key at all the driver refuses every content file while
//! `RequireSignature` is 1 (the default): the build says so with a warning.
use std::path::Path;

fn read_key(path: &Path) -> [u8; 32] {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    content_trust::keyfile::parse_public(&text)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn main() {
    println!("cargo:rerun-if-changed=keys");
    println!("cargo:rerun-if-env-changed=PIPESENSOR_TEST_KEY");
    let mut out = Vec::new();
    let mut paths: Vec<_> = std::fs::read_dir("keys")
        .map(|d| {
            d.filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "pub"))
                .collect()
        })
        .unwrap_or_default();
    paths.sort();
    for p in &paths {
        println!("cargo:rerun-if-changed={}", p.display());
    }
    if let Some(p) = std::env::var_os("PIPESENSOR_TEST_KEY") {
        let p = std::path::PathBuf::from(p);
        println!("cargo:rerun-if-changed={}", p.display());
        paths.push(p);
    }
    assert!(paths.len() <= 16, "at most 16 trusted keys");
    if paths.is_empty() {
        println!(
            "cargo:warning=no content-signing key built in (driver/keys/*.pub is empty): \
             with RequireSignature 1 (the default) this driver refuses every content file. \
             Copy your release key's .pub into driver/keys/ and rebuild (docs/install.md)."
        );
    }
    for p in &paths {
        out.extend_from_slice(&read_key(p));
    }
    let dest = Path::new(&std::env::var("OUT_DIR").unwrap()).join("trusted_keys.bin");
    std::fs::write(dest, out).unwrap();
}
