#!/usr/bin/env bash
# Regenerates the committed seed corpora in fuzz/seeds/<target>/ from the
# compiler (the vendored Sigma rules and Sysmon configs of third_party/ compiled, the documented native example,
# small generated sets), the rule sources and encoded IOCTL requests.
# Deterministic. Usage: fuzz/seeds.sh [out dir, default fuzz/seeds]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"
out="${1:-$here/seeds}"
rm -rf "$out"
cargo +nightly run --quiet --release --manifest-path "$here/Cargo.toml" \
  --target-dir "$here/target/seeds" --bin gen-seeds -- "$out" "$root" "$root/docs/rules.md"
