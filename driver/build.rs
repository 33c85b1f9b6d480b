//! Collects the trusted content-signing keys into `$OUT_DIR/trusted_keys.bin`
//! (32 bytes per key), which `content.rs` includes:
//! * every `keys/*.pub` (as `pipectl keygen` writes them: 64 hex digits),
//! * the file named by `PIPESENSOR_TEST_KEY`, when set at build time (the
//!   CI test key of `scripts/driver-test.sh`; never set it for a release).
use std::path::Path;

fn read_key(path: &Path) -> [u8; 32] {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let hex = text.trim();
    assert!(
        hex.len() == 64,
        "{}: expected 64 hex digits",
        path.display()
    );
    let mut key = [0u8; 32];
    for (i, b) in key.iter_mut().enumerate() {
        *b = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    }
    key
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
    if let Some(p) = std::env::var_os("PIPESENSOR_TEST_KEY") {
        let p = std::path::PathBuf::from(p);
        println!("cargo:rerun-if-changed={}", p.display());
        paths.push(p);
    }
    assert!(paths.len() <= 16, "at most 16 trusted keys");
    for p in &paths {
        out.extend_from_slice(&read_key(p));
    }
    let dest = Path::new(&std::env::var("OUT_DIR").unwrap()).join("trusted_keys.bin");
    std::fs::write(dest, out).unwrap();
}
