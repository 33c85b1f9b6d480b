#!/usr/bin/env bash
# Link-time proof that parse() and the matcher keep no panic path.
set -euo pipefail
cd "$(dirname "$0")/../.."
bash scripts/panic-free.sh
