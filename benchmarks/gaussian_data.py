"""Gaussian data: the all-dimension core's error floor where the solvers spend their time (near
equilibrium, densities close to a Gaussian).

An exactly affine-equivariant oracle sees every Gaussian sample set as a standard-normal one, so
standard-normal samples cover all Gaussians.  Against the exact score −x, per (d, n), mean over
seeds: relative score MSE Σ‖ŝ(q) + q‖² / Σ‖q‖² at fresh queries q; relative bias of the plug-in
Fisher information mean‖ŝ(xᵢ)‖² (exact: d) at the samples; at the largest n, the radial score at
the samples by shell of radius (chi quantiles, so the shells hold the same share at every d),
Σ ŝ·x / Σ −‖x‖² − 1 over the shell (a ratio of sums: the centre's small ‖x‖ do not blow it
up).  The Gaussian fit (sample mean and covariance) is the reference.

    python benchmarks/gaussian_data.py [RUN_DIR …] [--seeds 12]
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from scipy import stats

import scoreoracle

from _common import markdown_table, write_section
from dimensions import candidates

DIMS = (2, 10)
SIZES = (200, 1000, 2000, 5000)
QUERIES = 2000
SHELLS = (0.0, 0.25, 0.5, 0.75, 0.9, 0.99, 1.0)
"""Radius shells as quantiles of the chi distribution with d degrees of freedom."""


def measure(oracle, d: int, n: int, seeds: int) -> dict:
    """Relative score MSE (%), Fisher bias (%, with its standard error) and, per shell, the radial
    score's relative deviation (%) of ``oracle`` on standard-normal samples."""
    edges = stats.chi(d).ppf(SHELLS)
    errors, fisher = [], []
    projected, squared = np.zeros(len(SHELLS) - 1), np.zeros(len(SHELLS) - 1)  # Σ ŝ·x and Σ ‖x‖² per shell
    for seed in range(seeds):
        rng = np.random.default_rng(seed)
        x, q = rng.normal(size=(n, d)), rng.normal(size=(QUERIES, d))
        fitted = oracle.fit(x)
        s_q, s_x = fitted.score(q), fitted.score(x)
        errors.append(((s_q + q) ** 2).sum() / (q ** 2).sum())
        fisher.append((s_x ** 2).sum(1).mean() / d - 1)
        r2 = (x ** 2).sum(1)
        shell = np.digitize(np.sqrt(r2), edges[1:-1])
        projected += np.bincount(shell, (s_x * x).sum(1), minlength=len(projected))
        squared += np.bincount(shell, r2, minlength=len(squared))
    return {"rel_score": 100 * np.mean(errors), "fisher_bias": 100 * np.mean(fisher),
            "fisher_se": 100 * np.std(fisher, ddof=1) / np.sqrt(seeds),
            "radial": list(100 * (projected / -squared - 1))}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="*", help="training run folders to compare (their checkpoint.pt)")
    parser.add_argument("--seeds", type=int, default=12)
    args = parser.parse_args(argv)
    torch.set_num_threads(2)
    oracles = {**candidates(args.runs), "Gaussian fit": scoreoracle.GaussianFitOracle()}
    rows, shells = [], []
    for d in DIMS:
        for n in SIZES:
            results = {name: measure(oracle, d, n, args.seeds) for name, oracle in oracles.items()}
            rows.append([d, n, *(f"{r['rel_score']:.2f}" for r in results.values()),
                         *(f"{r['fisher_bias']:+.1f} ± {r['fisher_se']:.1f}" for r in results.values())])
            print(markdown_table(header(oracles), rows[-1:]), flush=True)
            if n == SIZES[-1]:
                shells += [[d, n, name, *(f"{v:+.1f}" for v in r["radial"])] for name, r in results.items()]
    shell_header = ["d", "n", "oracle", *(f"r in chi q{lo:g}–{hi:g}" for lo, hi in zip(SHELLS, SHELLS[1:]))]
    command = " ".join(["python benchmarks/gaussian_data.py", *args.runs, f"--seeds {args.seeds}"])
    body = ("## Gaussian data: the core's error floor\n\n"
            f"`{command}`: standard-normal samples (every Gaussian, to an "
            "affine-equivariant oracle), exact score −x.  Relative score MSE (%) at 2000 fresh queries and the "
            "plug-in Fisher information's relative bias (%, ± standard error over seeds) at the samples:\n\n"
            + markdown_table(header(oracles), rows)
            + "\n\nRadial score at the samples, Σ ŝ·x / Σ −‖x‖² − 1 over each radius shell (%), "
            f"n = {SIZES[-1]}:\n\n"
            + markdown_table(shell_header, shells))
    print(body)
    write_section("gaussian-data", body)


def header(oracles) -> list:
    return ["d", "n", *(f"{name} score %" for name in oracles), *(f"{name} Fisher bias %" for name in oracles)]


if __name__ == "__main__":
    main()
