#!/usr/bin/env bash
# The rule-author examples of README.md and docs/*.md, run as written in a
# fresh copy of the repository (scripts/docs-examples.sh).
set -euo pipefail
cd "$(dirname "$0")/../.."
bash scripts/docs-examples.sh
