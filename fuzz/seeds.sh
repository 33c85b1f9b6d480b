#!/usr/bin/env bash
# Regenerates the committed seed corpora in fuzz/seeds/<target>/ from the
# compiler (Sigma and Sysmon corpus compiled, the documented native example,
# small generated sets), the rule sources and encoded IOCTL requests.
# Deterministic. Usage: fuzz/seeds.sh [out dir, default fuzz/seeds]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"
out="${1:-$here/seeds}"
corpus="${PIPE_SENSOR_CORPUS:-$root/../shared/corpus}"
rm -rf "$out"
cargo +nightly run --quiet --release --manifest-path "$here/Cargo.toml" \
  --target-dir "$here/target/seeds" --bin gen-seeds -- "$out" "$corpus" "$root/docs/rules.md"
