"""The solvers' analytic test cases as runnable experiments.

Each function runs one case with known answer for the oracles it is given (a dict name → oracle)
and returns plain dicts or rows of numbers; it neither prints nor plots.  The examples print and
plot these results, the solver benchmark tabulates them.

Cases: anisotropic Maxwell–Landau relaxation (exact covariance law), the 2-D BKW solution of the
Maxwell Landau equation, Ornstein–Uhlenbeck relaxation by probability flow (exact flow map),
SD-KDE MISE on the test mixtures, and Fisher information against sample size.
"""

from __future__ import annotations

import numpy as np
import torch

from scoreoracle import ExactOracle, GaussianMixture, KDEOracle, load

from .blob import BlobOracle
from .exact import BKW, AnalyticFlowOracle, maxwell_covariance, ou_flow_map, ou_variance
from .fisher import fisher_information
from .fokker_planck import simulate_fokker_planck
from .landau import simulate_landau
from .sd_kde import sd_kde

LANDAU_C = 1 / 24  # collision constant C of the d = 3 Maxwell-molecule cases
SIGMA0 = np.diag([1.8, 0.2, 1.0])  # initial covariance (3, 3) of the anisotropic Landau case
OU_V0 = 0.1  # OU case: variance per axis of the initial law N(0, OU_V0·I) at t = 0
OU_T_SPAN = (0.1, 1.1)  # OU case: the particles run between these times
BEST_H_FACTORS = np.geomspace(0.05, 1.5, 24)  # bandwidth factors the best-h KDE picks from
M1_FISHER = 2.027591  # Fisher information ∫|∇log f|² f of mixture M1, by quadrature
GAUSS_COV = np.array([[1.0, 0.6], [0.6, 0.8]])  # covariance (2, 2) of the Gaussian Fisher case


def mixture(weights, means, covs) -> GaussianMixture:
    """A float64 Gaussian mixture from nested lists: weights (k,), means (k, d), covs (k, d, d)."""
    return GaussianMixture(torch.tensor(weights, dtype=torch.float64), torch.tensor(means, dtype=torch.float64),
                           torch.tensor(covs, dtype=torch.float64))


MIXTURES = {  # the SD-KDE test mixtures: M1–M3 in 1-D, one mixture in 2-D
    "M1": mixture([0.4, 0.6], [[-2.0], [2.0]], [[[0.25]], [[1.0]]]),
    "M2": mixture([0.3, 0.7], [[-2.0], [4.0]], [[[0.16]], [[2.25]]]),
    "M3": mixture([0.5, 0.5], [[0.0], [1.5]], [[[0.16]], [[2.25]]]),
    "2-D": mixture([0.5, 0.5], [[1.0, 1.0], [-1.0, -1.0]], [[[0.5, 0.1], [0.1, 0.5]], [[0.5, -0.1], [-0.1, 0.5]]]),
}

FISHER_CASES = {  # name → (distribution, its exact Fisher information)
    "M1": (MIXTURES["M1"], M1_FISHER),
    "2-D Gaussian": (mixture([1.0], [[0.0, 0.0]], [GAUSS_COV.tolist()]), float(np.trace(np.linalg.inv(GAUSS_COV)))),
}


def standard_oracles(include_blob: bool = True) -> dict:
    """The oracles the cases usually compare: the shipped DiScoFormer, Scott KDE and (optionally)
    the blob method."""
    oracles = {"DiScoFormer": load(), "KDE (Scott)": KDEOracle("scott")}
    if include_blob:
        oracles["blob"] = BlobOracle()
    return oracles


def landau_anisotropic(oracles: dict, n: int = 2000, t_end: float = 1.0, dt: float = 0.05, seed: int = 0,
                       trajectories: bool = False) -> dict:
    """Maxwell–Landau relaxation in d = 3 from centred Gaussian velocities of covariance SIGMA0,
    C = LANDAU_C, Heun steps of dt from 0 to t_end.  The exact covariance law holds for any initial
    law, so how far Σ₂₂ relaxes toward it tests the score.

    Returns ``{"initial_covariance": (3, 3) sample covariance at 0, "exact_covariance": (3, 3) at
    t_end, "oracles": {name: {"relaxation_%": change of Σ₂₂ in % of the exact change,
    "cov_error": ‖Σ − Σ_exact‖₂ at t_end}}}``; each oracle's dict also holds its
    ``"trajectory"`` if ``trajectories``.
    """
    v0 = np.random.default_rng(seed).normal(size=(n, 3)) * np.sqrt(np.diag(SIGMA0))
    v0 -= v0.mean(0)
    cov0 = np.cov(v0.T, bias=True)  # the particles' second moment, as the run's diagnostic
    exact_end = maxwell_covariance(t_end, cov0, LANDAU_C)
    results = {}
    for name, oracle in oracles.items():
        traj = simulate_landau(v0, oracle, C=LANDAU_C, t_span=(0.0, t_end), dt=dt)
        cov = traj.diagnostics["covariance"]
        results[name] = {"relaxation_%": 100 * (cov[-1, 1, 1] - cov0[1, 1]) / (exact_end[1, 1] - cov0[1, 1]),
                         "cov_error": float(np.linalg.norm(cov[-1] - exact_end, 2))}
        if trajectories:
            results[name]["trajectory"] = traj
    return {"initial_covariance": cov0, "exact_covariance": exact_end, "oracles": results}


def landau_bkw(oracles: dict, n: int = 2000, t_end: float = 1.0, dt: float = 0.05, seed: int = 0,
               trajectories: bool = False) -> dict:
    """The 2-D BKW solution of the Maxwell Landau equation (``solvers.exact.BKW(2)``, C = 1/16):
    n particles from f(0), Heun steps of dt to t_end, driven by the exact score and by each oracle.

    Returns ``{name: {"m4_increment_ratio": E|v|⁴(t_end) − E|v|⁴(0) over the exact increment,
    "fisher_end": particles' Fisher information at t_end, "entropy_rate_start": entropy production
    estimate d/dt∫f log f at 0, "momentum_drift": max |Δ momentum|, "energy_drift": energy change}}``,
    first for ``"exact"``; each dict also holds the ``"trajectory"`` if ``trajectories``.
    """
    bkw = BKW(2)
    v0 = bkw.sample(n, 0.0, seed=seed)
    exact_increment = bkw.fourth_moment(t_end) - bkw.fourth_moment(0.0)
    results = {}
    for name, oracle in {"exact": bkw.oracle(), **oracles}.items():
        traj = simulate_landau(v0, oracle, C=bkw.C, t_span=(0.0, t_end), dt=dt)
        diag = traj.diagnostics
        m4 = diag["fourth_moment"]
        results[name] = {"m4_increment_ratio": (m4[-1] - m4[0]) / exact_increment,
                         "fisher_end": diag["fisher"][-1],
                         "entropy_rate_start": diag["entropy_production"][0],
                         "momentum_drift": float(np.abs(diag["momentum"] - diag["momentum"][0]).max()),
                         "energy_drift": float(diag["energy"][-1] - diag["energy"][0])}
        if trajectories:
            results[name]["trajectory"] = traj
    return results


def ou_relaxation(oracles: dict, n: int = 2000, d: int = 2, dt: float = 0.02, seed: int = 0,
                  trajectories: bool = False) -> dict:
    """OU relaxation dX = −X dt + √2 dW from N(0, OU_V0·I) at t = 0: probability-flow particles in
    d dimensions over OU_T_SPAN (Heun steps of dt), driven by the exact score and by each oracle.
    The pathwise error against the exact flow map isolates the score error from sampling noise.

    Returns ``{name: {"pathwise_error_%": RMS distance to the exact map over RMS norm of the exact
    map, in %}}``, first for ``"exact"``; each dict also holds the ``"trajectory"`` if ``trajectories``.
    """
    t0, t1 = OU_T_SPAN
    x0 = np.random.default_rng(seed).normal(size=(n, d)) * np.sqrt(ou_variance(t0, OU_V0))
    exact_map = ou_flow_map(x0, t0, t1, OU_V0)
    results = {}
    for name, oracle in {"exact": AnalyticFlowOracle(lambda x, t: -x / ou_variance(t, OU_V0)), **oracles}.items():
        traj = simulate_fokker_planck(x0, oracle, potential_gradient=lambda x: x, t_span=(t0, t1), dt=dt)
        err = np.sqrt(((traj.final - exact_map) ** 2).sum(1).mean() / (exact_map ** 2).sum(1).mean())
        results[name] = {"pathwise_error_%": 100 * err}
        if trajectories:
            results[name]["trajectory"] = traj
    return results


def mise_grid(d: int):
    """The grid on which the MISE is summed and its cell size: (m, d) points and the cell's length
    (d = 1: step 0.05 on [−8, 8]) or area (d = 2: 81 × 81 points on [−4, 4]²)."""
    if d == 1:
        return np.arange(-8, 8.0001, 0.05)[:, None], 0.05
    xs = np.linspace(-4, 4, 81)
    return np.stack(np.meshgrid(xs, xs), -1).reshape(-1, 2), (xs[1] - xs[0]) ** 2


def sd_kde_mise(oracles: dict, sizes=(200, 1000), seeds: int = 5, names=tuple(MIXTURES)) -> list[dict]:
    """MISE ∫(f̂ − f)² on ``mise_grid`` of SD-KDE with each oracle's score, against Emp-SD-KDE (KDE
    score), the best-bandwidth KDE (bandwidth factor from BEST_H_FACTORS, chosen with the truth) and
    SD-KDE with the exact score; mean over samples of size n drawn with seeds 0 … seeds − 1.

    Returns one row a mixture of ``names`` (keys of MIXTURES) and size: ``{"mixture", "n",
    "SD-KDE (<name>)" for each oracle, "Emp-SD-KDE", "best-h KDE", "SD-KDE (exact score)"}``.
    """
    rows = []
    for name in names:
        gmm = MIXTURES[name]
        grid, cell = mise_grid(gmm.dim)
        truth = torch.exp(gmm.log_density(torch.from_numpy(grid))).numpy()

        def mise(values):
            return float(((values - truth) ** 2).sum() * cell)
        for n in sizes:
            acc = {**{f"SD-KDE ({k})": [] for k in oracles}, "Emp-SD-KDE": [], "best-h KDE": [],
                   "SD-KDE (exact score)": []}
            for seed in range(seeds):
                x = gmm.sample(n, torch.Generator().manual_seed(seed)).numpy()
                for k, oracle in oracles.items():
                    acc[f"SD-KDE ({k})"].append(mise(sd_kde(x, oracle).density(grid)))
                acc["Emp-SD-KDE"].append(mise(sd_kde(x, "empirical").density(grid)))
                acc["SD-KDE (exact score)"].append(mise(sd_kde(x, ExactOracle(gmm)).density(grid)))
                acc["best-h KDE"].append(min(mise(np.exp(KDEOracle(f).log_density(x, grid))) for f in BEST_H_FACTORS))
            rows.append({"mixture": name, "n": n, **{k: float(np.mean(v)) for k, v in acc.items()}})
    return rows


def fisher_vs_n(oracles: dict, sizes=(200, 1000, 5000), seeds: int = 5, divergence=()) -> list[dict]:
    """Plug-in Fisher information mean‖ŝ‖² of each case of FISHER_CASES from samples of size n
    (seeds 0 … seeds − 1), with each oracle's score and with the exact score (the Monte Carlo floor).

    Returns one row a case and size: ``{"case", "n", "truth", "<name> bias %", "<name> rmse %"}``
    for each oracle and ``"exact score"`` (relative to the truth, in %), and for each oracle named
    in ``divergence`` its divergence form −mean ∇·ŝ, mean over seeds, as ``"<name> divergence form"``.
    """
    unknown = [k for k in divergence if k not in oracles]
    if unknown:
        raise ValueError(f"divergence names oracles that are not compared: {unknown}")
    rows = []
    for case, (dist, truth) in FISHER_CASES.items():
        for n in sizes:
            est = {k: [] for k in [*oracles, "exact score"]}
            div = {k: [] for k in divergence}
            for seed in range(seeds):
                x = dist.sample(n, torch.Generator().manual_seed(seed)).numpy()
                for k, oracle in oracles.items():
                    r = fisher_information(x, oracle, divergence=k in div)
                    est[k].append(r.value)
                    if k in div:
                        div[k].append(r.divergence_form)
                est["exact score"].append(fisher_information(x, ExactOracle(dist), divergence=False).value)
            row = {"case": case, "n": n, "truth": truth}
            for k, v in est.items():
                v = np.asarray(v)
                row[f"{k} bias %"] = 100 * (v.mean() - truth) / truth
                row[f"{k} rmse %"] = 100 * np.sqrt(((v - truth) ** 2).mean()) / truth
            for k, v in div.items():
                row[f"{k} divergence form"] = float(np.mean(v))
            rows.append(row)
    return rows
