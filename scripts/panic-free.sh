#!/usr/bin/env bash
# Panic-free proof of channel_parser's entry points (tests/panic-free/).
#
# A no_std, no_main binary for x86_64-unknown-none calls parse(), evaluate()
# and for_each_match() on opaque input (core::hint::black_box). Its
# #[panic_handler] calls __pipe_sensor_panic_path_survived, which exists
# nowhere: built with panic=abort, fat LTO, opt-level 3, the binary links
# only if the optimiser removed every path to a panic.
#
# Since format 2 the parser has no regex-automata: its DFAs are read in place
# by its own code, so the proof covers the whole real binary (parser,
# matcher, DFAs, nom, core) with no stub and no audit of a dependency.
#
# Steps (each must hold, else exit 1):
#  1. strict proof: parse + matching, and parse() alone: MUST LINK;
#  2. self-test: the same with --features inject-panic (one unchecked index
#     on the input): MUST FAIL with the undefined symbol.
# With --verbose, a failing step 1 is followed by the list of surviving panic
# call sites with their inlined source chains (scripts/panic-sites.py).
#
# Usage: scripts/panic-free.sh [--quick] [--verbose]   (--quick: accepted, same run)
set -uo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
dir="$root/tests/panic-free"
target_dir="${PANIC_FREE_TARGET_DIR:-$dir/target}"
verbose=0
for a in "$@"; do
  case "$a" in
    --quick) ;;
    --verbose) verbose=1 ;;
    *) echo "usage: $0 [--quick] [--verbose]" >&2; exit 2 ;;
  esac
done
SYMBOL=__pipe_sensor_panic_path_survived
build() { # extra args...
  cargo build --quiet --release --target x86_64-unknown-none --target-dir "$target_dir" \
    --manifest-path "$dir/Cargo.toml" "$@" 2>&1
}
locate() {
  if ! command -v addr2line >/dev/null || ! command -v python3 >/dev/null; then
    echo "panic-free:    (addr2line or python3 missing: run scripts/setup.sh)" >&2; return
  fi
  CARGO_PROFILE_RELEASE_DEBUG=true CARGO_PROFILE_RELEASE_STRIP=none build --features locate >/dev/null || return
  local tools
  tools="$(rustc +nightly --print sysroot)/lib/rustlib/x86_64-unknown-linux-gnu/bin"
  python3 "$root/scripts/panic-sites.py" "$tools/llvm-objdump" \
    "$target_dir/x86_64-unknown-none/release/panic-free-proof" >&2
}
fail=0

echo "panic-free: 1. strict proof (parse, evaluate, for_each_match; the real parser, DFAs included)"
if out=$(build); then
  echo "panic-free:    PASS: linked, no panic path survives"
else
  echo "$out" | grep -E "undefined symbol|error" | head -5
  echo "panic-free:    FAIL: a panic path survives (locate it: scripts/panic-free.sh --verbose)" >&2
  [ "$verbose" = 1 ] && locate
  fail=1
fi
echo "panic-free:    parse() alone:"
if build --no-default-features --features parse-only >/dev/null; then
  echo "panic-free:    PASS"
else
  echo "panic-free:    FAIL" >&2; fail=1
fi

echo "panic-free: 2. self-test: an unchecked index on the input must break the link"
if out=$(build --features inject-panic); then
  echo "panic-free:    FAIL: the injected panic linked: the check proves nothing" >&2
  fail=1
elif echo "$out" | grep -q "undefined symbol: $SYMBOL"; then
  echo "panic-free:    PASS: link failed with 'undefined symbol: $SYMBOL'"
else
  echo "$out" | tail -20 >&2
  echo "panic-free:    FAIL: the build failed for another reason" >&2
  fail=1
fi
[ "$fail" = 0 ] && echo "panic-free: OK" || echo "panic-free: FAILED" >&2
exit "$fail"
