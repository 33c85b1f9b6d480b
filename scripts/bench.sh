#!/usr/bin/env bash
# Runs every benchmark of issue 5 and regenerates the results section of
# docs/performance.md (between the `results` markers).
#
#   scripts/bench.sh            # everything (~10 minutes on 2 cores)
#
# Steps:
#   1. pipe-bench stats: compile time, file sizes, per-name latency
#      distribution; writes the compiled channel files.
#   2. criterion benches (`cargo bench -p pipe-bench`): matching side by
#      side (ours, RegexSet, aho-corasick, sigma-rust, naive loop) and
#      validation vs memcpy.
#   3. callgrind: instructions per `evaluate` call at each rule count
#      (valgrind --toggle-collect on the `decide` wrapper), per byte of
#      validation of the 10k-rule file (the `validate_file` wrapper), and per image-path
#      NT -> DOS rewrite (the `dos_rewrite` wrapper).
#   4. pipe-bench render: the tables.
#
# Uses $CARGO_TARGET_DIR when set (default: target/). Needs valgrind
# (scripts/setup.sh installs it). Run it on a quiet machine: criterion numbers
# move with load; the callgrind counts do not.
set -euo pipefail
cd "$(dirname "$0")/.."

TARGET="${CARGO_TARGET_DIR:-$PWD/target}"
OUT="$TARGET/pipe-bench"
export PIPE_BENCH_OUT="$OUT"
mkdir -p "$OUT"

echo "== build"
cargo build --release -q -p pipe-bench --bin pipe-bench
cargo bench -q -p pipe-bench --no-run
BIN="$TARGET/release/pipe-bench"

echo "== stats (compile time, sizes, per-name latency)"
"$BIN" stats "$OUT"

echo "== criterion"
cargo bench -q -p pipe-bench --bench validate
cargo bench -q -p pipe-bench --bench matchers

echo "== callgrind"
if command -v valgrind >/dev/null 2>&1; then
  for w in sigma mthcht synth-10 synth-100 synth-1000 synth-10000 synth-10000-noregex synth-10000-asciidigits; do
    valgrind --tool=callgrind --toggle-collect='*decide*' \
      --callgrind-out-file="$OUT/cg-$w.out" \
      "$BIN" callgrind "$OUT/$w.sys" 1 >"$OUT/cg-$w.calls" 2>"$OUT/cg-$w.log"
    echo "$w: $(cat "$OUT/cg-$w.calls")"
  done
  # Validation of the 10k-rule file: instructions per byte of `parse`.
  valgrind --tool=callgrind --toggle-collect='*validate_file*' \
    --callgrind-out-file="$OUT/cg-parse.out" \
    "$BIN" callgrind-parse "$OUT/synth-10000.sys" 1 >"$OUT/cg-parse.calls" 2>"$OUT/cg-parse.log"
  echo "parse (synth-10000): $(cat "$OUT/cg-parse.calls")"
  # The image-path part of the decision path (NT -> DOS rewrite), beside it.
  valgrind --tool=callgrind --toggle-collect='*dos_rewrite*' \
    --callgrind-out-file="$OUT/cg-dos.out" \
    "$BIN" callgrind-dos 1 >"$OUT/cg-dos.calls" 2>"$OUT/cg-dos.log"
  echo "dos rewrite: $(cat "$OUT/cg-dos.calls")"
else
  echo "valgrind not installed: skipping instruction counts (scripts/setup.sh installs it)"
fi

echo "== render"
"$BIN" render "$OUT" "$TARGET/criterion" docs/performance.md
