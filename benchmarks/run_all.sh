#!/usr/bin/env bash
# Run every benchmark (about 30-40 minutes on 2 cores) and refresh RESULTS.md and the README summary.
set -euo pipefail
cd "$(dirname "$0")"
python3 training_report.py
python3 gmm_table.py
python3 summary.py
python3 speed.py
python3 equivariance.py
python3 ood.py
python3 solvers_bench.py
