#!/usr/bin/env bash
# Set up and run the default test suite (slow accuracy checks: add `-m slow`).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
python3 -m pytest -q "$@"
