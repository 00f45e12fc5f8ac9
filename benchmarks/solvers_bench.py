"""Solver benchmarks: pair-kernel throughput, time per step split into oracle call and particle
update, and validation tables of the particle solvers, SD-KDE and the Fisher-information
estimator with DiScoFormer, KDE, blob and exact oracles side by side.

    python benchmarks/solvers_bench.py [--skip-validation]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from _common import machine_note, markdown_table, median_time, write_section

LANDAU_C = 1 / 24
SIGMA0 = np.diag([1.8, 0.2, 1.0])  # anisotropic Maxwell–Landau start, d = 3
OU_V0 = 0.1  # OU relaxation: initial variance at t = 0
M1_FISHER = 2.027591  # Fisher information of mixture M1, by quadrature
GAUSS_COV = np.array([[1.0, 0.6], [0.6, 0.8]])


def standard_oracles() -> dict:
    """The shipped DiScoFormer, Scott KDE and the blob method."""
    from scoreoracle import KDEOracle, load
    from solvers import BlobOracle
    return {"DiScoFormer": load(), "KDE (Scott)": KDEOracle("scott"), "blob": BlobOracle()}


def mixture(weights, means, covs):
    from scoreoracle import GaussianMixture
    return GaussianMixture(torch.tensor(weights, dtype=torch.float64), torch.tensor(means, dtype=torch.float64),
                           torch.tensor(covs, dtype=torch.float64))


def sd_kde_mixtures() -> dict:
    """The 1-D mixtures M1–M3 and the 2-D mixture of the SD-KDE validation."""
    return {
        "M1": mixture([0.4, 0.6], [[-2.0], [2.0]], [[[0.25]], [[1.0]]]),
        "M2": mixture([0.3, 0.7], [[-2.0], [4.0]], [[[0.16]], [[2.25]]]),
        "M3": mixture([0.5, 0.5], [[0.0], [1.5]], [[[0.16]], [[2.25]]]),
        "2-D": mixture([0.5, 0.5], [[1.0, 1.0], [-1.0, -1.0]],
                       [[[0.5, 0.1], [0.1, 0.5]], [[0.5, -0.1], [-0.1, 0.5]]]),
    }


def kernel_throughput(n=4000, d=3, repeats=5):
    from solvers import landau_field
    from solvers.exact import landau_field_reference
    rng = np.random.default_rng(0)
    v, s = rng.normal(size=(n, d)), rng.normal(size=(n, d))
    t_numba = median_time(lambda: landau_field(v, s, 0.0, LANDAU_C), repeats)
    t_numpy = median_time(lambda: landau_field_reference(v, s, 0.0, LANDAU_C), max(1, repeats // 2))
    return [["Landau velocity + entropy production (numba, prange)", n, d, f"{t_numba * 1e3:.1f}",
             f"**{n * n / t_numba / 1e6:.0f}**"],
            ["Landau velocity + entropy production (numpy reference, 256-row blocks)", n, d,
             f"{t_numpy * 1e3:.1f}", f"{n * n / t_numpy / 1e6:.0f}"]]


def step_split(sizes=(500, 2000, 8000), d=3):
    """Seconds per Heun step: oracle calls vs particle update (Landau, Maxwell)."""
    import scoreoracle
    from scoreoracle import KDEOracle
    from solvers import landau_field
    rows = []
    rng = np.random.default_rng(1)
    for name, oracle in {"DiScoFormer": scoreoracle.load(d), "KDE (Scott)": KDEOracle()}.items():
        for n in sizes:
            v = rng.normal(size=(n, d))
            t_or = median_time(lambda: oracle.score(v), 3)
            s = np.asarray(oracle.score(v))
            t_up = median_time(lambda: landau_field(v, s, 0.0, LANDAU_C), 3)
            rows.append([name, n, f"{2 * t_or:.3f}", f"{2 * t_up:.4f}", f"{100 * t_or / (t_or + t_up):.0f} %"])
    return rows


def landau_anisotropic(n=2000, t_end=1.0, dt=0.05, seed=0, oracles=None):
    """Anisotropic Maxwell–Landau relaxation in d = 3 from Σ₀ = diag(1.8, 0.2, 1): how far Σ₂₂
    relaxes toward the exact covariance law, and the covariance error at t_end, per oracle."""
    from solvers import simulate_landau
    from solvers.exact import maxwell_covariance
    v0 = np.random.default_rng(seed).normal(size=(n, 3)) * np.sqrt(np.diag(SIGMA0))
    v0 -= v0.mean(0)
    cov0 = np.cov(v0.T)
    exact_end = maxwell_covariance(t_end, cov0, LANDAU_C)
    results = {}
    for name, oracle in (oracles or standard_oracles()).items():
        cov = simulate_landau(v0, oracle, C=LANDAU_C, t_span=(0.0, t_end), dt=dt).diagnostics["covariance"]
        results[name] = {"relaxation_%": 100 * (cov[-1, 1, 1] - cov0[1, 1]) / (exact_end[1, 1] - cov0[1, 1]),
                         "cov_error": float(np.linalg.norm(cov[-1] - exact_end, 2))}
    return results


def landau_bkw(n=2000, t_end=1.0, dt=0.05, seed=0, oracles=None):
    """2-D BKW solution of the Maxwell Landau equation: E|v|⁴ increment relative to the exact one,
    Fisher information at t_end, entropy production at 0 and momentum drift, per oracle."""
    from solvers import simulate_landau
    from solvers.exact import BKW
    bkw = BKW(2)
    v0 = bkw.sample(n, 0.0, seed=seed)
    exact_increment = bkw.fourth_moment(t_end) - bkw.fourth_moment(0.0)
    results = {}
    for name, oracle in {"exact": bkw.oracle(), **(oracles or standard_oracles())}.items():
        diag = simulate_landau(v0, oracle, C=bkw.C, t_span=(0.0, t_end), dt=dt).diagnostics
        m4 = diag["fourth_moment"]
        results[name] = {"m4_increment_ratio": (m4[-1] - m4[0]) / exact_increment,
                         "fisher_end": diag["fisher"][-1],
                         "entropy_rate_start": diag["entropy_production"][0],
                         "momentum_drift": float(np.abs(diag["momentum"] - diag["momentum"][0]).max())}
    return results


def ou_relaxation(n=2000, d=2, dt=0.02, seed=0, oracles=None):
    """OU relaxation by probability-flow particles from t = 0.1 to 1.1: pathwise error (%) against
    the exact flow map, per oracle."""
    from solvers import simulate_fokker_planck
    from solvers.exact import AnalyticFlowOracle, ou_flow_map, ou_variance
    x0 = np.random.default_rng(seed).normal(size=(n, d)) * np.sqrt(ou_variance(0.1, OU_V0))
    exact_map = ou_flow_map(x0, 0.1, 1.1, OU_V0)
    oracles = {"exact": AnalyticFlowOracle(lambda x, t: -x / ou_variance(t, OU_V0)), **(oracles or standard_oracles())}
    results = {}
    for name, oracle in oracles.items():
        final = simulate_fokker_planck(x0, oracle, potential_gradient=lambda x: x, t_span=(0.1, 1.1), dt=dt).final
        err = np.sqrt(((final - exact_map) ** 2).sum(1).mean() / (exact_map ** 2).sum(1).mean())
        results[name] = {"pathwise_error_%": 100 * err}
    return results


def sd_kde_mise(sizes=(200, 1000), seeds=5, names=None):
    """MISE on a grid of SD-KDE with the DiScoFormer score, Emp-SD-KDE, the best-bandwidth KDE
    (tuned with the truth) and SD-KDE with the exact score, mean over seeds."""
    import scoreoracle
    from scoreoracle import ExactOracle, KDEOracle
    from solvers import sd_kde
    oracle = scoreoracle.load()
    mixtures = sd_kde_mixtures()
    rows = []
    for name in names or mixtures:
        gmm = mixtures[name]
        if gmm.dim == 1:
            grid, cell = np.arange(-8, 8.0001, 0.05)[:, None], 0.05
        else:
            xs = np.linspace(-4, 4, 81)
            grid, cell = np.stack(np.meshgrid(xs, xs), -1).reshape(-1, 2), (xs[1] - xs[0]) ** 2
        truth = torch.exp(gmm.log_density(torch.from_numpy(grid))).numpy()

        def mise(values):
            return float(((values - truth) ** 2).sum() * cell)
        for n in sizes:
            acc = {"SD-KDE (DiScoFormer)": [], "Emp-SD-KDE": [], "best-h KDE": [], "SD-KDE (exact score)": []}
            for seed in range(seeds):
                x = gmm.sample(n, torch.Generator().manual_seed(seed)).numpy()
                acc["SD-KDE (DiScoFormer)"].append(mise(sd_kde(x, oracle).density(grid)))
                acc["Emp-SD-KDE"].append(mise(sd_kde(x, "empirical").density(grid)))
                acc["SD-KDE (exact score)"].append(mise(sd_kde(x, ExactOracle(gmm)).density(grid)))
                acc["best-h KDE"].append(min(mise(np.exp(KDEOracle(f).log_density(x, grid)))
                                             for f in np.geomspace(0.05, 1.5, 24)))
            rows.append({"mixture": name, "n": n, **{k: float(np.mean(v)) for k, v in acc.items()}})
    return rows


def fisher_vs_n(sizes=(200, 1000, 5000), seeds=5):
    """Fisher information of mixture M1 and a correlated 2-D Gaussian: relative bias and RMSE (%)
    of DiScoFormer, Scott KDE and the exact score (the Monte Carlo floor)."""
    import scoreoracle
    from scoreoracle import ExactOracle, KDEOracle
    from solvers import fisher_information
    cases = {"M1": (sd_kde_mixtures()["M1"], M1_FISHER),
             "2-D Gaussian": (mixture([1.0], [[0.0, 0.0]], [GAUSS_COV.tolist()]), float(np.trace(np.linalg.inv(GAUSS_COV))))}
    oracles = {"DiScoFormer": scoreoracle.load(), "KDE (Scott)": KDEOracle()}
    rows = []
    for name, (dist, truth) in cases.items():
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


def validation(n_landau=2000, seeds=3):
    from solvers.exact import BKW

    sections = {}
    rows = [landau_anisotropic(n=n_landau, seed=seed) for seed in range(seeds)]
    table = [[k, f"{np.median([r[k]['relaxation_%'] for r in rows]):.1f}",
              f"{np.median([r[k]['cov_error'] for r in rows]):.4f}"] for k in rows[0]]
    sections["P7 anisotropic Maxwell–Landau, d = 3, n = %d, T = 1 (median of %d seeds; target ≥ 90 %%)" % (n_landau, seeds)] = \
        markdown_table(["oracle", "Σ₂₂ relaxation %", "‖Cov − exact‖₂"], table)

    rows = [landau_bkw(n=n_landau, seed=seed) for seed in range(seeds)]
    table = [[k, f"{np.median([r[k]['m4_increment_ratio'] for r in rows]):.3f}",
              f"{np.median([r[k]['fisher_end'] for r in rows]):.4f}",
              f"{np.median([r[k]['entropy_rate_start'] for r in rows]):.4f}",
              f"{max(r[k]['momentum_drift'] for r in rows):.1e}"] for k in rows[0]]
    sections["P5 2-D BKW, C = 1/16, t ∈ [0, 1], n = %d (median of %d seeds; target ratio ∈ [0.9, 1.1]; exact Fisher at t=1: %.4f, dH/dt(0) = −0.125)"
             % (n_landau, seeds, BKW(2).fisher_information(1.0))] = \
        markdown_table(["oracle", "E|v|⁴ increment ratio", "Fisher at t = 1", "dH/dt at 0", "max |Δmomentum|"], table)

    res = ou_relaxation(n=n_landau)
    sections["P2 OU relaxation d = 2, n = %d, t ∈ [0.1, 1.1], Heun: pathwise error vs the exact flow (target ≤ 1.5 %%)" % n_landau] = \
        markdown_table(["oracle", "pathwise error %"], [[k, f"{r['pathwise_error_%']:.3f}"] for k, r in res.items()])

    rows = sd_kde_mise(sizes=(200, 1000), seeds=10)
    keys = ["SD-KDE (DiScoFormer)", "Emp-SD-KDE", "best-h KDE", "SD-KDE (exact score)"]
    sections["S1/S4 SD-KDE MISE (mean of 10 seeds; target: ours below Emp-SD-KDE and best-h KDE for n ≥ 200 in 1-D, within 2× of exact-score SD-KDE in 2-D)"] = \
        markdown_table(["case", "n", *keys], [[r["mixture"], r["n"], *[f"{r[k]:.3e}" for k in keys]] for r in rows])

    rows = fisher_vs_n(sizes=(200, 1000, 5000), seeds=10)
    sections["F1/F2 Fisher information, relative bias and RMSE % (10 seeds; target: M1 bias ≤ 5 % at n ≥ 1000, Gaussians within 1.5× of the exact-score Monte Carlo floor)"] = \
        markdown_table(["case", "n", "truth", "ours bias %", "ours RMSE %", "KDE bias %", "exact-score RMSE % (floor)", "ours −mean ∇·ŝ"],
                       [[r["case"], r["n"], f"{r['truth']:.4f}", f"{r['DiScoFormer bias %']:.1f}", f"{r['DiScoFormer rmse %']:.1f}",
                         f"{r['KDE (Scott) bias %']:.1f}", f"{r['exact score rmse %']:.1f}", f"{r['DiScoFormer divergence form']:.4f}"]
                        for r in rows])
    return sections


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-validation", action="store_true")
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args(argv)
    start = time.time()
    body = [f"## Solvers\n\n{machine_note()}.\n", "### Pair-kernel throughput (median of 5 runs)\n",
            markdown_table(["kernel", "n", "d", "ms per call", "Mpairs/s"], kernel_throughput()),
            "\n### Time per Heun step (2 oracle calls + 2 Landau updates), d = 3\n",
            markdown_table(["oracle", "n", "oracle s/step", "update s/step", "oracle share"], step_split())]
    print("\n".join(body), flush=True)
    if not args.skip_validation:
        for title, table in validation(seeds=args.seeds).items():
            body += [f"\n### {title}\n", table]
            print(title, "\n", table, flush=True)
    body.append(f"\n(total benchmark time {time.time() - start:.0f} s)")
    write_section("solvers", "\n".join(body))


if __name__ == "__main__":
    main()
