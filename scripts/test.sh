#!/usr/bin/env bash
# The project's test command (README, .ci/run). Runs every check and exits
# non-zero on the first failure. Nothing is skipped: a missing tool is an
# error (run scripts/setup.sh first).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never

step() { printf '\n==> %s\n' "$*"; }
start=$(date +%s)

step "format"
cargo fmt --all -- --check

step "clippy (workspace; the parser denies indexing, unwrap, expect, panic and unchecked arithmetic)"
cargo clippy --workspace --all-targets -- -D warnings

step "the parser builds with no std and no alloc (x86_64-unknown-none)"
cargo build -p channel-parser --target x86_64-unknown-none --release

step "tests"
cargo test --workspace

for extra in scripts/test.d/*.sh; do
  [ -e "$extra" ] || continue
  step "$extra"
  bash "$extra"
done

echo
echo "all checks passed in $(( $(date +%s) - start )) s"
