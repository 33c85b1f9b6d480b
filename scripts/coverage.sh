#!/usr/bin/env bash
# Parser line coverage under the fuzz corpus.
#
# Builds the parser-facing fuzz targets with coverage instrumentation
# (`cargo +nightly fuzz coverage`), replays their corpora (the working corpus
# fuzz/corpus/<target>/ left by fuzz-smoke.sh or long runs, plus the committed
# seeds fuzz/seeds/<target>/), merges the profiles and reports the line
# coverage of parser/src with llvm-cov from the nightly llvm-tools.
#
# Usage: scripts/coverage.sh [min percent, default 90] [targets...]
#   Writes fuzz/coverage/parser-report.txt and fuzz/coverage/parser-lines.txt
#   (per-line counts). Exit 1 when parser line coverage is below the minimum.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
min="${1:-90}"; shift || true
targets=("$@")
[ "${#targets[@]}" -gt 0 ] || targets=(parse parse_framed structured differential roundtrip)
tools="$(rustc +nightly --print sysroot)/lib/rustlib/x86_64-unknown-linux-gnu/bin"
[ -x "$tools/llvm-cov" ] || { echo "coverage: llvm-tools-preview missing on nightly (scripts/setup.sh)" >&2; exit 2; }
out="$root/fuzz/coverage"
mkdir -p "$out"
objects=()
profiles=()
for t in "${targets[@]}"; do
  dirs=()
  for d in "fuzz/corpus/$t" "fuzz/seeds/$t"; do
    [ -d "$d" ] && [ -n "$(ls -A "$d")" ] && dirs+=("$root/$d")
  done
  [ "${#dirs[@]}" -gt 0 ] || continue
  # cargo fuzz coverage takes one corpus dir: merge into a temporary one.
  merged="$out/$t-inputs"
  rm -rf "$merged"; mkdir -p "$merged"
  for d in "${dirs[@]}"; do cp -n "$d"/* "$merged"/ 2>/dev/null || true; done
  echo "coverage: $t: $(ls "$merged" | wc -l) inputs"
  cargo +nightly fuzz coverage "$t" "$merged" >"$out/$t.log" 2>&1 \
    || { tail -20 "$out/$t.log" >&2; echo "coverage: $t failed" >&2; exit 1; }
  rm -rf "$merged"
  profiles+=("$root/fuzz/coverage/$t/coverage.profdata")
  # Where cargo-fuzz put the instrumented binary (it names it when running).
  bin=$(grep -o "/[^ ]*/coverage/x86_64-unknown-linux-gnu/release/$t" "$out/$t.log" | head -1)
  [ -x "$bin" ] || { echo "coverage: cannot find the $t binary" >&2; exit 1; }
  if [ "${#objects[@]}" = 0 ]; then objects=("$bin"); else objects+=(-object "$bin"); fi
done
"$tools/llvm-profdata" merge -sparse "${profiles[@]}" -o "$out/merged.profdata"
sources=("$root"/parser/src/*.rs)
"$tools/llvm-cov" report "${objects[@]}" -instr-profile="$out/merged.profdata" \
  "${sources[@]}" >"$out/parser-report.txt"
"$tools/llvm-cov" show "${objects[@]}" -instr-profile="$out/merged.profdata" \
  "${sources[@]}" -show-line-counts-or-regions >"$out/parser-lines.txt"
cat "$out/parser-report.txt"
# TOTAL line: ... Lines  MissedLines  Cover ...
pct=$(awk '/^TOTAL/{print $(NF-3)}' "$out/parser-report.txt" | tr -d '%')
echo "coverage: parser line coverage ${pct}% (minimum ${min}%) over: ${targets[*]}"
awk -v p="$pct" -v m="$min" 'BEGIN{exit !(p+0 >= m+0)}' || { echo "coverage: below ${min}%" >&2; exit 1; }
