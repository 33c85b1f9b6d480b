#!/usr/bin/env bash
# The no_std crates' tests under Miri.
set -euo pipefail
cd "$(dirname "$0")/../.."
bash scripts/miri.sh
