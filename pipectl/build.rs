//! Embeds the public keys a driver built from this tree trusts
//! (`driver/keys/*.pub`, the same files `driver/build.rs` reads) so that
//! `pipectl verify` and `inspect` can say what a default driver would do
//! with a file (src/trust.rs). `PIPESENSOR_TEST_KEY` is deliberately not
//! read: it only exists in CI's test driver.
use std::path::PathBuf;

fn main() {
    let dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap()).join("../driver/keys");
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|d| {
            d.filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "pub"))
                .collect()
        })
        .unwrap_or_default();
    paths.sort();
    let mut out = String::from("/// `driver/keys/*.pub`: file name and text.\npub const DRIVER_KEYS: &[(&str, &str)] = &[\n");
    for p in &paths {
        println!("cargo:rerun-if-changed={}", p.display());
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        out.push_str(&format!(
            "    ({name:?}, include_str!({:?})),\n",
            p.display().to_string()
        ));
    }
    out.push_str("];\n");
    let dest = PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("driver_keys.rs");
    std::fs::write(dest, out).unwrap();
}
