"""Importance-weighted samples: the oracle on draws from a wider proposal with weights p/q.

For each random GMM p of the paper's family, n draws come from the proposal q = the same mixture
with every covariance scaled by ``widen``², weighted by p/q (exact).  Errors are measured at fresh
queries from p.  Baselines get the same weights: the weighted KDE (scipy's weighted
``gaussian_kde`` semantics) at the best bandwidth multiplier chosen by the true error, and the
weighted single-Gaussian fit.  A resampled (unweighted) call shows what users do today.

    python benchmarks/weighted.py [--dims 2 3] [--sizes 1024 4096] [--gmms 16]
"""

from __future__ import annotations

import argparse
import warnings

import numpy as np
import torch

import scoreoracle
from scoreoracle.distributions import GaussianMixture, random_gmm
from scoreoracle.gaussian import scott_factor
from scoreoracle.training.evaluation import BANDWIDTH_MULTIPLIERS, PooledErrors

from _common import machine_note, markdown_table, write_section


def weighted_cells(d: int, n: int, gmms: int, queries: int = 1024, widen: float = 1.5, seed: int = 0):
    """Yield (samples (n, d), weights (n,), queries (m, d), exact log f (m,), exact score (m, d))."""
    g = torch.Generator().manual_seed(7919 * d + n + 104729 * seed)
    p = random_gmm(gmms, d, generator=g)
    q = GaussianMixture(p.weights, p.means, p.covariances * widen ** 2)
    x = q.sample(n, g)
    w = torch.exp(p.log_density(x) - q.log_density(x))
    y = p.sample(queries, g)
    log_f, score = p.log_density_and_score(y)
    for i in range(gmms):
        yield x[i].numpy(), w[i].numpy(), y[i].numpy(), log_f[i].numpy(), score[i].numpy()


def evaluate(d: int, n: int, gmms: int, seed: int = 0) -> dict:
    """Pooled relative score error (%) and log-density MSE of each estimator on one cell."""
    oracle = scoreoracle.load()
    errors = PooledErrors()
    add = errors.add
    rng = np.random.default_rng(seed)
    for x, w, y, lf, s in weighted_cells(d, n, gmms, seed=seed):
        add("DiScoFormer, weighted", *oracle.log_density_and_score(x, y, weights=w), lf, s)
        resampled = x[rng.choice(n, n, p=w / w.sum())]
        with warnings.catch_warnings():  # resampling repeats samples, which is what this row shows
            warnings.simplefilter("ignore", scoreoracle.RepeatedSamplesWarning)
            add("DiScoFormer, resampled", *oracle.log_density_and_score(resampled, y), lf, s)
        add("Gaussian fit, weighted", *scoreoracle.GaussianFitOracle().log_density_and_score(x, y, weights=w), lf, s)
        n_eff = w.sum() ** 2 / (w ** 2).sum()
        for mult in BANDWIDTH_MULTIPLIERS:
            kde = scoreoracle.KDEOracle(mult * scott_factor(n_eff, d), dtype=torch.float32)
            add(f"kde x{float(mult)}", *kde.log_density_and_score(x, y, weights=w), lf, s)
    return errors.table("best-h KDE, weighted")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dims", type=int, nargs="+", default=[2, 3])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1024, 4096])
    parser.add_argument("--gmms", type=int, default=16)
    args = parser.parse_args(argv)
    rows = []
    for d in args.dims:
        for n in args.sizes:
            t = evaluate(d, n, args.gmms)
            for name, r in t.items():
                rows.append([d, n, name, f"{r['rel_score']:.1f}", f"{r['logf_mse']:.3g}"])
            print(markdown_table(["d", "n", "estimator", "rel. score error %", "log f MSE"], rows[-len(t):]))
    body = ("## Importance-weighted samples\n\n"
            f"Machine: {machine_note()}. Draws from a proposal with every GMM covariance widened 1.5×, weights "
            f"p/q; {args.gmms} GMMs per cell, 1024 fresh queries from p each; best-h KDE picks its bandwidth "
            "by the true error, with the same weights (scipy's weighted gaussian_kde, bandwidth rules on the "
            "effective sample size).  'resampled' draws n points with probabilities ∝ w and calls the oracle "
            "without weights.\n\n"
            + markdown_table(["d", "n", "estimator", "rel. score error %", "log f MSE"], rows))
    write_section("weighted", body)


if __name__ == "__main__":
    main()
