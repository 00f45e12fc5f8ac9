"""Training runs against the shipped all-dimension core on the same draws: is a branch worth shipping?

For each cell (d, n) of the GMM protocol every candidate answers the same samples and queries, so
differences between candidates are differences of the models, not of the draws.  The cells are the
ones that decide shipping: where the core meets its bars with little margin (d ≤ 16) and where it
misses them (d = 64, 100, Table 5).  Where a per-dimension checkpoint exists (d = 1, 2, 3, 10) it
answers the same draws too: the core must reach ≥ 0.9× its ratio there before it replaces it.
Prints one row per cell and writes out/compare_runs.json.

    python benchmarks/compare_runs.py runs/equivariant-highd [more runs …] [--gmms 16]
"""

from __future__ import annotations

import argparse
import json

import torch

import scoreoracle

from _common import OUT, markdown_table
from dimensions import SEEN, candidates, cell, table5

CELLS = ((1, 1024, 1024), (2, 256, 1024), (2, 1024, 1024), (2, 4096, 1024), (3, 256, 1024), (3, 1024, 1024),
         (3, 4096, 1024), (10, 256, 1024), (10, 1024, 1024), (10, 4096, 1024), (16, 1024, 512), (64, 1024, 512),
         (100, 1024, 512), (100, 4096, 512))
"""(d, n, queries per GMM)."""


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", help="training run folders (their checkpoint.pt)")
    parser.add_argument("--gmms", type=int, default=16)
    args = parser.parse_args(argv)
    torch.set_num_threads(2)
    oracles = candidates(args.runs)
    names = list(oracles)
    estimators = {name: oracle.log_density_and_score for name, oracle in oracles.items()}
    header = ["d", "n", *(f"{name} % (ratio; log f ratio)" for name in names), "own-d checkpoint % (ratio; log f ratio)",
              "Gauss %", "best-h KDE %"]
    own = {d: scoreoracle.load(checkpoint=f"d{d}") for d in SEEN}
    rows, results = [], []
    for d, n, queries in CELLS:
        extra = {"own-d checkpoint": own[d].log_density_and_score} if d in own else {}
        t = cell({**estimators, **extra}, d, n, args.gmms, queries)
        results.append({"d": d, "n": n, **t})
        own_d = t.get("own-d checkpoint")
        rows.append([d, n, *(_entry(t[k]) for k in names), _entry(own_d) if own_d else "—",
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


def _entry(r: dict) -> str:
    """One method's cell: relative score error %, its ratio to best-h KDE and the log f MSE ratio."""
    return f"{r['rel_score']:.2f} ({r['ratio']:.2f}; {r['logf_ratio']:.1f})"


if __name__ == "__main__":
    main()
