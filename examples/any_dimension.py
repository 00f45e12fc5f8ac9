"""One oracle for every dimension: score errors from d = 2 to 64 on Gaussian mixtures and on
heavy-tailed Student-t data, and label-free checkpoint selection.

For each d, draws n samples from a random Gaussian mixture and from a Student-t law (ν = 3,
random covariance), asks `scoreoracle.load()` (a dimension's own checkpoint where it has one,
the all-dimension core elsewhere), `load().select(samples)` (whichever of the two has the lower
held-out score-matching loss), the all-dimension core, a Scott KDE and the single-Gaussian fit
for ∇log f at fresh queries, and compares with the exact score.  Prints a table, writes a figure.

    python examples/any_dimension.py [--dims 2 5 10 32 64] [--n 2048] [--out examples/out/any_dimension.png]
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

import scoreoracle
from scoreoracle import GaussianFitOracle, KDEOracle, StudentT
from scoreoracle.distributions import random_gmm
from scoreoracle.training.evaluation import relative_score_error

from example_utils import default_out, figure, save


def laws(d: int, g: torch.Generator) -> dict:
    """A random GMM of the training family and a correlated Student-t (ν = 3) in d dimensions."""
    factor = torch.randn(d, d, generator=g, dtype=torch.float64) / np.sqrt(d) + torch.eye(d, dtype=torch.float64)
    return {"Gaussian mixture": random_gmm(1, d, generator=g),
            "Student-t, ν = 3": StudentT(3, torch.zeros(d, dtype=torch.float64), factor @ factor.T)}


def draw(law, n: int, g: torch.Generator) -> np.ndarray:
    x = law.sample(n, g)
    return (x[0] if x.ndim == 3 else x).numpy()  # a batch-of-one GMM carries a set axis


def score_error(oracle, law, samples, queries) -> float:
    """The oracle's relative score error (%) at the queries, against the law's exact score."""
    exact = law.score(torch.from_numpy(queries)).numpy().reshape(queries.shape)
    return relative_score_error(oracle.score(samples, queries), exact)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dims", type=int, nargs="+", default=[2, 5, 10, 32, 64])
    parser.add_argument("--n", type=int, default=2048, help="samples per data set")
    parser.add_argument("--queries", type=int, default=1024)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=default_out("any_dimension.png"))
    args = parser.parse_args(argv)

    router = scoreoracle.load()
    methods = ["load()", "load().select(x)", "all-d core", "KDE (Scott)", "Gaussian fit"]
    fixed = {"all-d core": scoreoracle.load(checkpoint="equivariant"), "KDE (Scott)": KDEOracle(),
             "Gaussian fit": GaussianFitOracle()}
    g = torch.Generator().manual_seed(args.seed)
    errors = {}  # (law, method) → list over dims
    print(f"relative score error (%) at {args.queries} fresh queries, n = {args.n}")
    print(f"{'law':<18}{'d':>4}" + "".join(f"{m:>18}" for m in methods) + "   selected")
    for d in args.dims:
        for name, law in laws(d, g).items():
            samples, queries = draw(law, args.n, g), draw(law, args.queries, g)
            selected = router.select(samples, seed=args.seed)
            oracles = {"load()": router, "load().select(x)": selected, **fixed}
            row = {m: score_error(oracles[m], law, samples, queries) for m in methods}
            for m, value in row.items():
                errors.setdefault((name, m), []).append(value)
            print(f"{name:<18}{d:>4}" + "".join(f"{row[m]:>18.2f}" for m in methods) + f"   {selected.selection.chosen}")

    fig, axes = figure(1, 2, figsize=(12, 4.5))
    for ax, name in zip(axes, ["Gaussian mixture", "Student-t, ν = 3"]):
        for m, style in zip(methods, ["o-", "s--", "^:", "x-", "d-"]):
            ax.plot(args.dims, errors[(name, m)], style, label=m)
        ax.set(xscale="log", yscale="log", xlabel="dimension d", ylabel="relative score error (%)", title=name)
        ax.minorticks_off()
        ax.set_xticks(args.dims, [str(d) for d in args.dims])
        ax.legend(fontsize=8)
    save(fig, args.out)
    return errors


if __name__ == "__main__":
    main()
