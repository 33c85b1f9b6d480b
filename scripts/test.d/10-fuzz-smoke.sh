#!/usr/bin/env bash
# 60 s on the raw parse target (issue 2), then every other target briefly.
set -euo pipefail
cd "$(dirname "$0")/../.."
FUZZ_SECONDS=60 bash scripts/fuzz-smoke.sh parse
FUZZ_SECONDS="${FUZZ_SECONDS_OTHERS:-20}" bash scripts/fuzz-smoke.sh parse_framed structured differential roundtrip import_native import_sigma import_sysmon ioctl
