"""Training runs against the shipped all-dimension core on the same draws: is a branch worth shipping?

For each cell (d, n) of the GMM protocol every candidate answers the same samples and queries, so
differences between candidates are differences of the models, not of the draws.  The cells are the
ones that decide shipping: where the core meets its bars with little margin (d ≤ 16) and where it
misses them (d = 64, 100, Table 5).  Prints one row per cell and writes out/compare_runs.json.

    python benchmarks/compare_runs.py runs/equivariant-highd [more runs …] [--gmms 16]
"""

from __future__ import annotations

import argparse
import json

import torch

from _common import OUT, markdown_table
from dimensions import candidate, cell, table5

CELLS = ((1, 1024, 1024), (2, 256, 1024), (2, 1024, 1024), (2, 4096, 1024), (3, 1024, 1024), (3, 4096, 1024),
         (10, 1024, 1024), (10, 4096, 1024), (16, 1024, 512), (64, 1024, 512), (100, 1024, 512), (100, 4096, 512))
"""(d, n, queries per GMM)."""


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", help="training run folders (their checkpoint.pt)")
    parser.add_argument("--gmms", type=int, default=16)
    args = parser.parse_args(argv)
    torch.set_num_threads(2)
    oracles = {"shipped": candidate(None), **{run: candidate(run) for run in args.runs}}
    names = list(oracles)
    estimators = {name: oracle.log_density_and_score for name, oracle in oracles.items()}
    header = ["d", "n", *(f"{name} % (ratio)" for name in names), "Gauss %", "best-h KDE %"]
    rows, results = [], []
    for d, n, queries in CELLS:
        t = cell(estimators, d, n, args.gmms, queries)
        results.append({"d": d, "n": n, **t})
        rows.append([d, n, *(f"{t[k]['rel_score']:.2f} ({t[k]['ratio']:.2f})" for k in names),
                     f"{t['gaussian fit']['rel_score']:.2f}", f"{t['best-h kde']['rel_score']:.2f}"])
        print(markdown_table(header, rows[-1:]), flush=True)
    t5 = table5(estimators, args.gmms)
    best = t5["best-h kde"]
    for name in names:
        r = t5[name]
        print(f"Table 5 {name}: {r['rel_score']:.2f} % (score ratio {best['rel_score'] / r['rel_score']:.2f}, "
              f"log f ratio {best['logf_mse'] / r['logf_mse']:.1f})", flush=True)
    OUT.mkdir(exist_ok=True)
    (OUT / "compare_runs.json").write_text(json.dumps({"candidates": [repr(o) for o in oracles.values()],
                                                       "gmms": args.gmms, "cells": results, "table5": t5}, indent=1))
    print(markdown_table(header, rows))


if __name__ == "__main__":
    main()
