#!/usr/bin/env bash
# Fuzz smoke test: runs every cargo-fuzz target for a bounded time and fails
# (exit 1) if any target crashes, panics, leaks past the RSS limit or times
# out. Crash inputs are left in fuzz/artifacts/<target>/ (minimize them with
# `cargo +nightly fuzz tmin <target> <file>` and keep them as regression
# tests, see docs/fuzzing.md).
#
# Usage: scripts/fuzz-smoke.sh [target...]
#   FUZZ_SECONDS  seconds per target (default 20; 9 targets ~3.5 minutes + build)
#   FUZZ_JOBS     parallel fuzzing jobs per target (default 1)
#
# Long runs (documented in docs/fuzzing.md), e.g. one hour per target on both
# cores:  FUZZ_SECONDS=3600 FUZZ_JOBS=2 scripts/fuzz-smoke.sh
# Working corpora persist in fuzz/corpus/<target>/ (git-ignored); the
# committed seeds in fuzz/seeds/<target>/ are read-only inputs.
set -uo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
secs="${FUZZ_SECONDS:-20}"
jobs="${FUZZ_JOBS:-1}"
all=(parse parse_framed structured differential roundtrip import_native import_sigma import_sysmon ioctl)
if [ "$#" -gt 0 ]; then targets=("$@"); else targets=("${all[@]}"); fi

dict_for() {
  case "$1" in
    import_native|import_sigma) echo "$root/fuzz/dict/yaml.dict" ;;
    import_sysmon) echo "$root/fuzz/dict/sysmon.dict" ;;
    ioctl) echo "$root/fuzz/dict/ioctl.dict" ;;
    *) echo "$root/fuzz/dict/channel.dict" ;;
  esac
}

command -v cargo-fuzz >/dev/null 2>&1 || { echo "fuzz-smoke: cargo-fuzz missing (run scripts/setup.sh)" >&2; exit 2; }

start=$(date +%s)
echo "fuzz-smoke: building ${#targets[@]} targets (nightly, ASan, release + debug assertions)"
if ! cargo +nightly fuzz build -O >/tmp/fuzz-smoke-build.log 2>&1; then
  tail -40 /tmp/fuzz-smoke-build.log >&2
  echo "fuzz-smoke: build failed" >&2
  exit 1
fi
echo "fuzz-smoke: built in $(( $(date +%s) - start )) s"

failed=()
printf '%-15s %8s %12s %8s %6s\n' target seconds executions exec/s cov
for t in "${targets[@]}"; do
  corpus="$root/fuzz/corpus/$t"
  seeds="$root/fuzz/seeds/$t"
  artifacts="$root/fuzz/artifacts/$t"
  mkdir -p "$corpus" "$artifacts"
  log="$root/fuzz/artifacts/$t.log"
  t0=$(date +%s)
  jflag=()
  if [ "$jobs" -gt 1 ]; then jflag=(-j"$jobs"); fi
  cargo +nightly fuzz run -O "$t" "$corpus" "$seeds" "${jflag[@]}" -- \
    -max_total_time="$secs" -dict="$(dict_for "$t")" -timeout=30 -rss_limit_mb=2560 \
    -print_final_stats=1 -artifact_prefix="$artifacts/" >"$log" 2>&1
  rc=$?
  execs=$(grep -h 'stat::number_of_executed_units' "$log" | awk '{s+=$2} END{print s+0}')
  rate=$(grep -h 'stat::average_exec_per_sec' "$log" | awk '{s+=$2} END{print s+0}')
  cov=$(grep -ho 'cov: [0-9]*' "$log" | tail -1 | awk '{print $2}')
  printf '%-15s %8s %12s %8s %6s\n' "$t" "$(( $(date +%s) - t0 ))" "$execs" "$rate" "${cov:-?}"
  if [ "$rc" != 0 ] || grep -qE '^(==[0-9]+== ?ERROR|SUMMARY: libFuzzer)|panicked at' "$log"; then
    failed+=("$t")
    echo "---- $t FAILED (rc=$rc); log: $log" >&2
    grep -E -A12 'panicked at|ERROR: ' "$log" | head -40 >&2
    ls "$artifacts" >&2
  fi
done
echo "fuzz-smoke: total $(( $(date +%s) - start )) s"
if [ "${#failed[@]}" -gt 0 ]; then
  echo "fuzz-smoke: FAILED: ${failed[*]}" >&2
  exit 1
fi
echo "fuzz-smoke: all ${#targets[@]} targets ran ${secs}s without a finding"
