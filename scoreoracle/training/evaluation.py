"""The GMM accuracy protocol of DiScoFormer's Table 2 (Ilin, Sushko, Krishna 2025,
arXiv:2511.05924) and its baselines.

For each cell (d, n): draw ``n_gmms`` random GMMs of the training family, n context samples and
``n_queries`` fresh queries from each, and compare estimates with the exact log-density and score:

    relative score MSE (%) = 100 · Σ‖ŝ − s‖² / Σ‖s‖²   (the zero predictor scores 100 %)
    log-density MSE        = mean (log f̂ − log f)²

Baselines: Scott KDE, best-h KDE (a grid of multipliers of Scott's factor, the best chosen per
cell and per metric by the *true* error — unattainable in practice), and the single-Gaussian fit.
"""

from __future__ import annotations

import numpy as np
import torch

from ..distributions import random_gmm
from ..oracles import DiScoFormerOracle, GaussianFitOracle, KDEOracle
from ..gaussian import scott_factor

TABLE5_FAMILY = {"modes": (2, 2), "rotated": False}  # the paper's Table 5 case at d = 100: two diagonal components
TABLE5_MULTIPLIERS = tuple(float(m) for m in np.geomspace(0.3, 3.0, 13))  # its tuned KDE's bandwidth grid
BANDWIDTH_MULTIPLIERS = (0.5, 0.6, 0.7, 0.85, 1.0, 1.2, 1.4, 1.7, 2.0, 2.8)  # smaller multipliers are left out: their KDE scores blow up between modes


def relative_score_error(score_hat, score) -> float:
    """100 · Σ‖ŝ − s‖² / Σ‖s‖² (percent)."""
    return 100.0 * float(((score_hat - score) ** 2).sum() / (score ** 2).sum())


def protocol_cells(d: int, n: int, n_gmms: int, n_queries: int = 1024, seed: int = 0, gmm_options=None):
    """Yield (samples (n, d), queries (m, d), exact log f (m,), exact score (m, d), k) per GMM,
    k being the GMM's number of modes; ``gmm_options`` are :func:`random_gmm` keywords (default:
    the training family)."""
    g = torch.Generator().manual_seed(1_000_003 * seed + 7919 * d + n)
    gmms = random_gmm(n_gmms, d, generator=g, **(gmm_options or {}))
    x = gmms.sample(n, g)
    y = gmms.sample(n_queries, g)
    log_f, score = gmms.log_density_and_score(y)
    ks = (gmms.weights > 0).sum(-1)
    for i in range(n_gmms):
        yield x[i], y[i], log_f[i], score[i], int(ks[i])


def _as_float64_array(a) -> np.ndarray:
    """numpy float64 copy of an array or a tensor (on any device, with or without autograd)."""
    return a.detach().cpu().double().numpy() if isinstance(a, torch.Tensor) else np.asarray(a, dtype=float)


class PooledErrors:
    """Squared errors of several estimators pooled over sample sets: ``add(name, log_f_hat,
    score_hat, log_f, score)`` per set (arrays or tensors (m,) and (m, d)); ``table()`` gives per
    estimator the relative score error (%) and the log-density MSE, with the KDE rows named
    "kde x<multiplier>" replaced by one best-h row: the best of them per metric, and the chosen
    multipliers as ``multiplier_score`` and ``multiplier_logf``."""

    def __init__(self):
        self.sums: dict = {}

    def add(self, name, log_f_hat, score_hat, log_f, score):
        s_hat, s, lf_hat, lf = (_as_float64_array(a) for a in (score_hat, score, log_f_hat, log_f))
        acc = self.sums.setdefault(name, np.zeros(4))
        acc += [((s_hat - s) ** 2).sum(), (s ** 2).sum(), ((lf_hat - lf) ** 2).sum(), len(lf)]

    def table(self, best_name: str = "best-h kde") -> dict:
        rows = {k: {"rel_score": float(100 * a[0] / a[1]), "logf_mse": float(a[2] / a[3])} for k, a in self.sums.items()}
        grid = {k: v for k, v in rows.items() if k.startswith("kde x")}
        if grid:
            best_s = min(grid, key=lambda k: grid[k]["rel_score"])
            best_f = min(grid, key=lambda k: grid[k]["logf_mse"])
            rows[best_name] = {"rel_score": grid[best_s]["rel_score"], "logf_mse": grid[best_f]["logf_mse"],
                               "multiplier_score": float(best_s[5:]), "multiplier_logf": float(best_f[5:])}
        return {k: v for k, v in rows.items() if k not in grid}


def evaluate_estimators(estimators: dict, d: int, n: int, n_gmms: int, *, n_queries: int = 1024,
                        seed: int = 0, kde_multipliers=BANDWIDTH_MULTIPLIERS, gmm_options=None) -> dict:
    """Errors of every estimator on one protocol cell (:func:`protocol_cells`), see
    :func:`evaluate_cells`."""
    return evaluate_cells(estimators, protocol_cells(d, n, n_gmms, n_queries, seed, gmm_options), kde_multipliers)


def evaluate_cells(estimators: dict, cells, kde_multipliers=BANDWIDTH_MULTIPLIERS) -> dict:
    """Errors of every estimator pooled over ``cells`` (tuples (samples (n, d), queries (m, d),
    exact log f (m,), exact score (m, d), ...)), plus Scott, best-h KDE (the best of
    ``kde_multipliers`` × Scott's factor) and Gaussian fit.

    ``estimators`` maps a name to ``f(samples, queries) -> (log f (m,), score (m, d))`` on
    float64 tensors.  Returns {name: {"rel_score": %, "logf_mse": float}}.
    """
    errors = PooledErrors()
    for x, y, log_f, score, *_ in cells:
        n, d = x.shape
        for name, estimate in estimators.items():
            errors.add(name, *estimate(x, y), log_f, score)
        errors.add("gaussian fit", *GaussianFitOracle().log_density_and_score(x, y), log_f, score)
        for mult in sorted({*kde_multipliers, 1.0}):
            kde = KDEOracle(mult * scott_factor(n, d), dtype=torch.float32)
            lf_kde, s_kde = kde.log_density_and_score(x, y)
            errors.add(f"kde x{float(mult)}", lf_kde, s_kde, log_f, score)
            if mult == 1.0:
                errors.add("scott kde", lf_kde, s_kde, log_f, score)
    return errors.table()


def evaluation_table(core, dims, *, sizes=(256, 1024, 4096), n_gmms: int = 32, seed: int = 0) -> list:
    """Model-card table: the core (through the full oracle) vs the baselines for each (d, n)."""
    oracle = DiScoFormerOracle(core, device="cpu")
    rows = []
    for d in dims:
        for n in sizes:
            t = evaluate_estimators({"discoformer": oracle.log_density_and_score}, d, n, n_gmms, seed=seed)
            rows.append({"d": d, "n": n, **{name: {k: round(v, 4) for k, v in r.items()} for name, r in t.items()},
                         "score_ratio_vs_best_h": round(t["best-h kde"]["rel_score"] / t["discoformer"]["rel_score"], 3)})
    return rows
