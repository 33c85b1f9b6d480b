#!/usr/bin/env bash
# Runs the no_std crates' tests under Miri (nightly): the channel-file parser
# and matcher, the format crate, and sensor-core (IOCTL decoding, name
# normalization, ring, store, guard). Undefined behaviour, out-of-bounds
# access and arithmetic overflow in these tests fail the run.
#
# Tests too slow under Miri are marked #[cfg_attr(miri, ignore)] in the
# source (listed in docs/fuzzing.md); everything else runs.
#
# Usage: scripts/miri.sh [extra cargo-miri args]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
rustup component list --toolchain nightly --installed 2>/dev/null | grep -q '^miri' \
  || { echo "miri.sh: nightly miri missing (run scripts/setup.sh)" >&2; exit 2; }
packages=(-p channel-format -p channel-parser)
if [ -f sensor-core/Cargo.toml ]; then packages+=(-p sensor-core); fi
start=$(date +%s)
# A separate target dir keeps Miri's builds from contending with the
# workspace build lock.
export CARGO_TARGET_DIR="${MIRI_TARGET_DIR:-$root/target/miri-sec}"
# Isolation off: the fuzz-regression replay lists its directory.
export MIRIFLAGS="${MIRIFLAGS:-} -Zmiri-strict-provenance -Zmiri-disable-isolation"
cargo +nightly miri setup >/dev/null 2>&1 || cargo +nightly miri setup
cargo +nightly miri test "${packages[@]}" "$@"
echo "miri.sh: passed in $(( $(date +%s) - start )) s"
