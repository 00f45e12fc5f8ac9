"""Fisher information vs sample size: DiScoFormer, Scott KDE and the exact score (Monte Carlo
floor), on mixture M1 (I = 2.027591) and a correlated 2-D Gaussian (I = tr Σ⁻¹).
Run: python examples/fisher_vs_n.py [--sizes 200 1000 5000] [--seeds 5]
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

import scoreoracle
from scoreoracle import ExactOracle, GaussianMixture, KDEOracle
from solvers import fisher_information

from example_utils import default_out, figure, save
from sd_kde_demo import MIXTURES

GAUSS_COV = torch.tensor([[1.0, 0.6], [0.6, 0.8]], dtype=torch.float64)
CASES = {
    "M1": (MIXTURES["M1"], 2.027591),
    "2-D Gaussian": (GaussianMixture(torch.ones(1, dtype=torch.float64), torch.zeros(1, 2, dtype=torch.float64),
                                     GAUSS_COV[None]), float(torch.trace(torch.linalg.inv(GAUSS_COV)))),
}


def run(sizes=(200, 1000, 5000), seeds=5):
    oracles = {"DiScoFormer": scoreoracle.load(), "KDE (Scott)": KDEOracle()}
    rows = []
    for name, (dist, truth) in CASES.items():
        for n in sizes:
            est = {k: [] for k in [*oracles, "exact score"]}
            div = []
            for seed in range(seeds):
                x = dist.sample(n, torch.Generator().manual_seed(seed)).numpy()
                for k, o in oracles.items():
                    r = fisher_information(x, o, divergence=(k == "DiScoFormer"))
                    est[k].append(r.value)
                    if k == "DiScoFormer":
                        div.append(r.divergence_form)
                est["exact score"].append(fisher_information(x, ExactOracle(dist), divergence=False).value)
            row = {"case": name, "n": n, "truth": truth}
            for k, v in est.items():
                v = np.asarray(v)
                row[f"{k} bias %"] = 100 * (v.mean() - truth) / truth
                row[f"{k} rmse %"] = 100 * np.sqrt(((v - truth) ** 2).mean()) / truth
            row["DiScoFormer divergence form"] = float(np.mean(div))
            rows.append(row)
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[200, 1000, 5000])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--out", default=default_out("fisher_vs_n.png"))
    args = parser.parse_args(argv)
    rows = run(args.sizes, args.seeds)
    print(f"{'case':<14}{'n':>6}{'truth':>9}{'ours bias%':>12}{'ours rmse%':>12}{'KDE bias%':>11}{'exact rmse%':>13}{'ours −E∇·ŝ':>12}")
    for r in rows:
        print(f"{r['case']:<14}{r['n']:>6}{r['truth']:>9.4f}{r['DiScoFormer bias %']:>12.1f}{r['DiScoFormer rmse %']:>12.1f}"
              f"{r['KDE (Scott) bias %']:>11.1f}{r['exact score rmse %']:>13.1f}{r['DiScoFormer divergence form']:>12.4f}")
    fig, axes = figure(1, len(CASES), figsize=(10, 3.8))
    for ax, name in zip(axes, CASES):
        rs = [r for r in rows if r["case"] == name]
        for k in ["DiScoFormer", "KDE (Scott)", "exact score"]:
            ax.loglog([r["n"] for r in rs], [max(r[f"{k} rmse %"], 1e-3) for r in rs], "o-", label=k)
        ax.set(title=name, xlabel="n", ylabel="relative RMSE of Î (%)")
    axes[0].legend()
    save(fig, args.out)
    return rows


if __name__ == "__main__":
    main()
