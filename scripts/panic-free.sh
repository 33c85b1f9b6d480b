#!/usr/bin/env bash
# Panic-free proof of channel_parser's entry points (tests/panic-free/).
#
# A no_std, no_main binary for x86_64-unknown-none calls parse(), evaluate()
# and for_each_match() on opaque input (core::hint::black_box). Its
# #[panic_handler] calls __pipe_sensor_panic_path_survived, which exists
# nowhere: built with panic=abort, fat LTO, opt-level 3, the binary links
# only if the optimiser removed every path to a panic.
#
# Steps (each must hold, else exit 1):
#  1. strict proof: parser + matcher + nom + core, with regex-automata
#     replaced by an opaque stub (tests/panic-free/stubbed): MUST LINK;
#  2. self-test: the same with --features inject-panic (one unchecked index
#     on the input): MUST FAIL with the undefined symbol;
#  3. audit with the real regex-automata (tests/panic-free): it does not
#     link; every surviving panic call site is listed with its inlined
#     source chain, and each must lie inside regex-automata (see
#     docs/fuzzing.md for why those are unreachable after validation).
#     Any site outside regex-automata fails the audit. Skipped with --quick.
#
# Usage: scripts/panic-free.sh [--quick] [--verbose]
set -uo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
dir="$root/tests/panic-free"
target_dir="${PANIC_FREE_TARGET_DIR:-$dir/target}"
quick=0; verbose=0
for a in "$@"; do
  case "$a" in
    --quick) quick=1 ;;
    --verbose) verbose=1 ;;
    *) echo "usage: $0 [--quick] [--verbose]" >&2; exit 2 ;;
  esac
done
SYMBOL=__pipe_sensor_panic_path_survived
build() { # manifest, extra args...
  local manifest=$1; shift
  cargo build --quiet --release --target x86_64-unknown-none --target-dir "$target_dir" \
    --manifest-path "$manifest" "$@" 2>&1
}
fail=0

echo "panic-free: 1. strict proof (parse, load_dfas, evaluate[_with], for_each_match[_with]; regex-automata stubbed)"
if out=$(build "$dir/stubbed/Cargo.toml"); then
  echo "panic-free:    PASS: linked, no panic path survives"
else
  echo "$out" | grep -E "undefined symbol|error" | head -5
  echo "panic-free:    FAIL: a panic path survives (locate it: scripts/panic-free.sh --verbose)" >&2
  fail=1
fi
echo "panic-free:    parse() alone:"
if build "$dir/stubbed/Cargo.toml" --no-default-features --features parse-only >/dev/null; then
  echo "panic-free:    PASS"
else
  echo "panic-free:    FAIL" >&2; fail=1
fi

echo "panic-free: 2. self-test: an unchecked index on the input must break the link"
if out=$(build "$dir/stubbed/Cargo.toml" --features inject-panic); then
  echo "panic-free:    FAIL: the injected panic linked: the check proves nothing" >&2
  fail=1
elif echo "$out" | grep -q "undefined symbol: $SYMBOL"; then
  echo "panic-free:    PASS: link failed with 'undefined symbol: $SYMBOL'"
else
  echo "$out" | tail -20 >&2
  echo "panic-free:    FAIL: the build failed for another reason" >&2
  fail=1
fi

if [ "$quick" = 0 ]; then
  echo "panic-free: 3. audit with the real regex-automata"
  if ! command -v addr2line >/dev/null || ! command -v python3 >/dev/null; then
    echo "panic-free:    FAIL: addr2line (binutils) or python3 missing: run scripts/setup.sh" >&2; fail=1
  elif ! CARGO_PROFILE_RELEASE_DEBUG=true CARGO_PROFILE_RELEASE_STRIP=none \
      build "$dir/Cargo.toml" --features locate >/dev/null; then
    echo "panic-free:    FAIL: locate build failed" >&2; fail=1
  else
    report="$target_dir/panic-sites.txt"
    tools="$(rustc +nightly --print sysroot)/lib/rustlib/x86_64-unknown-linux-gnu/bin"
    if python3 "$root/scripts/panic-sites.py" "$tools/llvm-objdump" \
        "$target_dir/x86_64-unknown-none/release/panic-free-proof" regex_automata:: >"$report"; then
      echo "panic-free:    PASS: $(tail -1 "$report")"
      echo "panic-free:    every surviving panic site is inside regex-automata (why they are"
      echo "panic-free:    unreachable after validation: docs/fuzzing.md); chains: $report"
    else
      grep -B30 "NOT ALLOWED" "$report" | grep -E "^site|owner|NOT ALLOWED" >&2
      echo "panic-free:    FAIL: $(tail -1 "$report"); panic sites outside regex-automata (above)" >&2
      fail=1
    fi
  fi
fi
if [ "$fail" = 0 ] && [ "$verbose" = 1 ] && [ -f "${report:-/nonexistent}" ]; then cat "$report"; fi
[ "$fail" = 0 ] && echo "panic-free: OK" || echo "panic-free: FAILED" >&2
exit "$fail"
