#!/usr/bin/env bash
# The driver: .sys build, image checks, layout probe, Windows client, Wine
# tests, packaging.
set -euo pipefail
cd "$(dirname "$0")/../.."
bash scripts/driver-test.sh
