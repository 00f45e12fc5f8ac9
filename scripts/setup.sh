#!/usr/bin/env bash
# Install scoreoracle for development: the CPU torch build first (so the project's torch range is
# already satisfied and no CUDA build is downloaded), then the package with its extras.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install -q torch==2.13.0
python3 -m pip install -q -e ".[test,bench,dask]"
