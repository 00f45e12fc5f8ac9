"""Ornstein–Uhlenbeck relaxation dX = −X dt + √2 dW by probability-flow particles.

Initial law N(0, 0.1·I) at t = 0; particles from t = 0.1 to 1.1 with each oracle's score; the
pathwise error against the exact flow map x·√(v(t₁)/v(t₀)) isolates the score error from the
sampling noise.  Run: python examples/ou_relaxation.py [--n 2000] [--d 2]
"""

from __future__ import annotations

import argparse

import numpy as np

from solvers.exact import ou_variance
from solvers.experiments import OU_T_SPAN, OU_V0, ou_relaxation, standard_oracles

from example_utils import default_out, figure, save


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--d", type=int, default=2)
    parser.add_argument("--out", default=default_out("ou_relaxation.png"))
    args = parser.parse_args(argv)
    results = ou_relaxation(standard_oracles(), args.n, args.d, trajectories=True)
    print(f"OU relaxation d = {args.d}, n = {args.n}, t ∈ [0.1, 1.1], Heun: pathwise error vs exact flow")
    for name, r in results.items():
        print(f"{name:<14}{r['pathwise_error_%']:>10.3f} %")
    fig, ax = figure(figsize=(6, 4))
    for name, r in results.items():
        traj = r["trajectory"]
        ax.plot(traj.times, np.trace(traj.diagnostics["covariance"], axis1=1, axis2=2) / args.d, label=name)
    t = np.linspace(*OU_T_SPAN, 50)
    ax.plot(t, ou_variance(t, OU_V0), "k--", label="exact variance")
    ax.set(xlabel="t", ylabel="variance per axis")
    ax.legend()
    save(fig, args.out)
    return results


if __name__ == "__main__":
    main()
