"""Speed: the oracle's log f + score against the closed-form Gaussian KDE (log f + score),
n = m, same machine and threads, median of several runs; for each d the checkpoint ``load()``
uses and the all-dimension checkpoint (at its measured context limit and at 4096 points).

    python benchmarks/speed.py [--sizes 1000 10000] [--dims 2 3 10 100] [--repeats 3]
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

import scoreoracle
from scoreoracle import KDEOracle
from scoreoracle.weights import read_manifest

from _common import machine_note, markdown_table, median_time, write_section


def _configurations(d: int, n: int) -> list:
    """(checkpoint, context limit) pairs to time: the default checkpoint for d and the all-d core at
    their measured limits, and the core also at 4096 points when its limit is larger (the speed setting)."""
    pairs = [(scoreoracle.load().checkpoint_for(d), "auto"), ("equivariant", "auto")]
    if n > 4096 and (read_manifest()["equivariant"].get("context_limit") or n) > 4096:
        pairs.append(("equivariant", 4096))
    return list(dict.fromkeys(pairs))  # d without a checkpoint of its own: the core once


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--dims", type=int, nargs="+", default=[2, 3, 10, 100])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    rows = []
    for d in args.dims:
        for n in args.sizes:
            x = rng.normal(size=(n, d))
            q = rng.normal(size=(n, d))
            t_kde32 = median_time(lambda: KDEOracle(dtype=torch.float32).log_density_and_score(x, q), args.repeats)
            t_kde64 = median_time(lambda: KDEOracle().log_density_and_score(x, q), args.repeats)
            for name, limit in _configurations(d, n):
                oracle = scoreoracle.load(d, checkpoint=name, context_limit=limit)
                t_or = median_time(lambda: oracle.log_density_and_score(x, q), args.repeats)
                t_self = median_time(lambda: oracle.log_density_and_score(x), args.repeats)
                row = [d, n, name, oracle.context_limit or "none", f"{t_or:.3f}", f"{t_self:.3f}", f"{t_kde32:.3f}",
                       f"{t_kde64:.3f}", f"**{t_or / t_kde32:.2f}**", f"{t_self / t_kde32:.2f}"]
                rows.append(row)
                print(row, flush=True)
    header = ["d", "n = m", "checkpoint", "context limit", "oracle, fresh queries (s)", "oracle, queries = samples (s)", "KDE float32 (s)",
              "KDE float64 (s)", "ratio oracle/KDE32", "ratio (queries = samples)"]
    body = ("## Speed: log f + score, oracle vs closed-form KDE\n\n"
            f"Median of {args.repeats} runs after a warm-up; {machine_note()}; chunk size 4096; oracle in float32 "
            "(whitening in float64).\n\n" + markdown_table(header, rows))
    write_section("speed", body)


if __name__ == "__main__":
    main()
