#!/usr/bin/env bash
# Install scoreoracle for development: torch 2.13.0 first, so the project's torch range is already
# satisfied and pip pulls no other build (on the project's machines a local CPU build; elsewhere
# pip's default build — add --index-url https://download.pytorch.org/whl/cpu for the CPU one), then
# the package with its extras.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install -q torch==2.13.0
python3 -m pip install -q -e ".[test,bench,dask]"
