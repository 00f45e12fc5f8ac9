"""2-D BKW solution of the Maxwell Landau equation: particles driven by each oracle's score.

C = 1/16, t from 0 to 1, f₀ = |v|²e^{−|v|²}/π.  Compares E|v|⁴, Fisher information and the
entropy-production estimate with the exact BKW values, and reports momentum/energy conservation.
Run: python examples/landau_bkw.py [--n 2000] [--t-end 1.0]
"""

from __future__ import annotations

from solvers.exact import BKW
from solvers.experiments import landau_bkw, standard_oracles

from example_utils import figure, landau_arguments, save


def main(argv=None):
    args = landau_arguments(__doc__, "landau_bkw.png", argv)
    bkw = BKW(2)
    results = landau_bkw(standard_oracles(), args.n, args.t_end, args.dt, trajectories=True)
    print(f"2-D BKW, n = {args.n}, t ∈ [0, {args.t_end}], Heun dt = {args.dt}")
    print(f"exact: E|v|⁴ {bkw.fourth_moment(0):.3f} → {bkw.fourth_moment(args.t_end):.3f}, "
          f"Fisher at end {bkw.fisher_information(args.t_end):.4f}, d/dt∫f log f at 0 = −0.125")
    print(f"{'oracle':<14}{'E|v|⁴ incr. ratio':>19}{'Fisher end':>12}{'dH/dt(0)':>11}{'|Δmomentum|':>13}{'Δenergy':>11}")
    for name, r in results.items():
        print(f"{name:<14}{r['m4_increment_ratio']:>19.3f}{r['fisher_end']:>12.4f}{r['entropy_rate_start']:>11.4f}"
              f"{r['momentum_drift']:>13.1e}{r['energy_drift']:>11.1e}")
    plot(bkw, results, args.out)
    return results


def plot(bkw, results, out):
    fig, axes = figure(1, 2, figsize=(10, 3.8))
    t = next(iter(results.values()))["trajectory"].times
    axes[0].plot(t, bkw.fourth_moment(t), "k--", label="exact law")
    axes[1].plot(t, [bkw.fisher_information(s) for s in t], "k--", label="exact")
    for name, r in results.items():
        traj = r["trajectory"]
        axes[0].plot(traj.times, traj.diagnostics["fourth_moment"], label=name)
        axes[1].plot(traj.times, traj.diagnostics["fisher"], label=name)
    axes[0].set(title="E|v|⁴ (particles)", xlabel="t")
    axes[1].set(title="Fisher information mean‖ŝ‖²", xlabel="t")
    axes[0].legend()
    save(fig, out)


if __name__ == "__main__":
    main()
