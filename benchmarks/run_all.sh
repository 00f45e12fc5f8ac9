#!/usr/bin/env bash
# Run every benchmark (a long run: for one table, run its script alone) and refresh RESULTS.md and the
# README summary.
set -euo pipefail
cd "$(dirname "$0")"
python3 training_report.py
python3 gmm_table.py
python3 summary.py
python3 speed.py
python3 equivariance.py
python3 dimensions.py
python3 gaussian_data.py
python3 ood.py
python3 solvers_bench.py
python3 contract_bench.py
python3 weighted.py
python3 scale.py
