"""Fisher information vs sample size: DiScoFormer, Scott KDE and the exact score (Monte Carlo
floor), on mixture M1 (I = 2.027591) and a correlated 2-D Gaussian (I = tr Σ⁻¹).
Run: python examples/fisher_vs_n.py [--sizes 200 1000 5000] [--seeds 5]
"""

from __future__ import annotations

import argparse

from solvers.experiments import FISHER_CASES, fisher_vs_n, standard_oracles

from example_utils import default_out, figure, save


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[200, 1000, 5000])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--out", default=default_out("fisher_vs_n.png"))
    args = parser.parse_args(argv)
    rows = fisher_vs_n(standard_oracles(include_blob=False), args.sizes, args.seeds, divergence=["DiScoFormer"])
    print(f"{'case':<14}{'n':>6}{'truth':>9}{'ours bias%':>12}{'ours rmse%':>12}{'KDE bias%':>11}{'exact rmse%':>13}{'ours −E∇·ŝ':>12}")
    for r in rows:
        print(f"{r['case']:<14}{r['n']:>6}{r['truth']:>9.4f}{r['DiScoFormer bias %']:>12.1f}{r['DiScoFormer rmse %']:>12.1f}"
              f"{r['KDE (Scott) bias %']:>11.1f}{r['exact score rmse %']:>13.1f}{r['DiScoFormer divergence form']:>12.4f}")
    fig, axes = figure(1, len(FISHER_CASES), figsize=(10, 3.8))
    for ax, name in zip(axes, FISHER_CASES):
        rs = [r for r in rows if r["case"] == name]
        for k in ["DiScoFormer", "KDE (Scott)", "exact score"]:
            ax.loglog([r["n"] for r in rs], [max(r[f"{k} rmse %"], 1e-3) for r in rs], "o-", label=k)
        ax.set(title=name, xlabel="n", ylabel="relative RMSE of Î (%)")
    axes[0].legend()
    save(fig, args.out)
    return rows


if __name__ == "__main__":
    main()
