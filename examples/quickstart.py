"""Quickstart: the shipped DiScoFormer oracle vs Gaussian KDE on a known 2-D mixture.

Draws samples from a 3-component Gaussian mixture, asks the pretrained oracle and a Scott-rule
KDE for log f and ∇log f at fresh query points, compares both with the exact answer, prints a
table and writes a figure (density contours and score errors).

    python examples/quickstart.py [--n 1024] [--out examples/out/quickstart.png]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

import scoreoracle
from scoreoracle import ExactOracle, GaussianMixture, KDEOracle

from example_utils import default_out, figure, save


def example_mixture() -> GaussianMixture:
    """A 3-mode 2-D mixture with one narrow, one wide and one elongated component."""
    return GaussianMixture(
        torch.tensor([0.3, 0.5, 0.2], dtype=torch.float64),
        torch.tensor([[-2.0, 0.0], [1.5, 1.0], [0.5, -2.5]], dtype=torch.float64),
        torch.tensor([[[0.3, 0.1], [0.1, 0.3]], [[1.0, -0.4], [-0.4, 0.6]], [[0.8, 0.0], [0.0, 0.15]]],
                     dtype=torch.float64))


def compare(oracles: dict, samples, queries, exact):
    rows = {}
    for name, oracle in oracles.items():
        start = time.perf_counter()
        log_f, score = oracle.log_density_and_score(samples, queries)
        seconds = time.perf_counter() - start
        rel = 100 * ((score - exact[1]) ** 2).sum() / (exact[1] ** 2).sum()
        rows[name] = {"rel_score_%": rel, "logf_mse": ((log_f - exact[0]) ** 2).mean(), "seconds": seconds,
                      "score": score, "log_f": log_f}
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1024, help="number of samples")
    parser.add_argument("--queries", type=int, default=2000, help="number of fresh query points")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=default_out("quickstart.png"))
    args = parser.parse_args(argv)

    gmm = example_mixture()
    g = torch.Generator().manual_seed(args.seed)
    samples = gmm.sample(args.n, g).numpy()
    queries = gmm.sample(args.queries, g).numpy()
    exact = ExactOracle(gmm).log_density_and_score(samples, queries)

    rows = compare({"DiScoFormer (shipped)": scoreoracle.load(), "KDE (Scott)": KDEOracle("scott")},
                   samples, queries, exact)
    print(f"2-D three-mode mixture, n = {args.n} samples, {args.queries} fresh queries; exact answer known")
    print(f"{'method':<24}{'rel. score MSE %':>18}{'log-density MSE':>18}{'seconds':>10}")
    for name, r in rows.items():
        print(f"{name:<24}{r['rel_score_%']:>18.2f}{r['logf_mse']:>18.4f}{r['seconds']:>10.3f}")
    (disco, kde) = rows.values()
    print(f"score error ratio KDE / DiScoFormer: {kde['rel_score_%'] / disco['rel_score_%']:.2f}")

    plot(gmm, samples, args.out)
    return rows


def plot(gmm, samples, out):
    xs = np.linspace(-4.5, 4.5, 120)
    grid = np.stack(np.meshgrid(xs, xs), -1).reshape(-1, 2)
    fields = {"exact": ExactOracle(gmm).log_density_and_score(samples, grid),
              "DiScoFormer": scoreoracle.load().log_density_and_score(samples, grid),
              "KDE (Scott)": KDEOracle().log_density_and_score(samples, grid)}
    fig, axes = figure(2, 3, figsize=(13, 8))
    exact_s = fields["exact"][1]
    for col, (name, (log_f, score)) in enumerate(fields.items()):
        ax = axes[0, col]
        ax.contourf(xs, xs, np.exp(log_f).reshape(120, 120), levels=20, cmap="viridis")
        ax.scatter(samples[:300, 0], samples[:300, 1], s=2, c="w", alpha=0.5)
        ax.set_title(f"density: {name}")
        ax = axes[1, col]
        if name == "exact":
            u, v = score[:, 0].reshape(120, 120), score[:, 1].reshape(120, 120)
            ax.streamplot(xs, xs, u, v, density=1.2, color=np.hypot(u, v), cmap="Greys", linewidth=0.7)
            ax.set_title("exact score field ∇log f")
        else:
            err = np.linalg.norm(score - exact_s, axis=1) / (1 + np.linalg.norm(exact_s, axis=1))
            im = ax.pcolormesh(xs, xs, err.reshape(120, 120), vmin=0, vmax=1, cmap="magma")
            ax.set_title(f"score error |ŝ−s|/(1+|s|): {name}")
            fig.colorbar(im, ax=ax)
    save(fig, out)


if __name__ == "__main__":
    main()
