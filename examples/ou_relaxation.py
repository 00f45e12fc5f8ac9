"""Ornstein–Uhlenbeck relaxation dX = −X dt + √2 dW by probability-flow particles.

Initial law N(0, 0.1·I) at t = 0; particles from t = 0.1 to 1.1 with each oracle's score; the
pathwise error against the exact flow map x·√(v(t₁)/v(t₀)) isolates the score error from the
sampling noise.  Run: python examples/ou_relaxation.py [--n 2000] [--d 2]
"""

from __future__ import annotations

import argparse

import numpy as np

from solvers import simulate_fokker_planck
from solvers.exact import AnalyticFlowOracle, ou_flow_map, ou_variance

from example_utils import default_out, figure, save, standard_oracles

V0 = 0.1


def run(n=2000, d=2, dt=0.02, seed=0, oracles=None):
    x0 = np.random.default_rng(seed).normal(size=(n, d)) * np.sqrt(ou_variance(0.1, V0))
    exact_map = ou_flow_map(x0, 0.1, 1.1, V0)
    oracles = {"exact": AnalyticFlowOracle(lambda x, t: -x / ou_variance(t, V0)), **(oracles or standard_oracles())}
    results = {}
    for name, oracle in oracles.items():
        traj = simulate_fokker_planck(x0, oracle, potential_gradient=lambda x: x, t_span=(0.1, 1.1), dt=dt)
        err = np.sqrt(((traj.final - exact_map) ** 2).sum(1).mean() / (exact_map ** 2).sum(1).mean())
        results[name] = {"trajectory": traj, "pathwise_error_%": 100 * err}
    return results


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--d", type=int, default=2)
    parser.add_argument("--out", default=default_out("ou_relaxation.png"))
    args = parser.parse_args(argv)
    results = run(args.n, args.d)
    print(f"OU relaxation d = {args.d}, n = {args.n}, t ∈ [0.1, 1.1], Heun: pathwise error vs exact flow")
    for name, r in results.items():
        print(f"{name:<14}{r['pathwise_error_%']:>10.3f} %")
    fig, ax = figure(figsize=(6, 4))
    for name, r in results.items():
        traj = r["trajectory"]
        ax.plot(traj.times, np.trace(traj.diagnostics["covariance"], axis1=1, axis2=2) / args.d, label=name)
    t = np.linspace(0.1, 1.1, 50)
    ax.plot(t, ou_variance(t, V0), "k--", label="exact variance")
    ax.set(xlabel="t", ylabel="variance per axis")
    ax.legend()
    save(fig, args.out)
    return results


if __name__ == "__main__":
    main()
