"""Score-debiased kernel density estimation (SD-KDE, Epstein et al. 2025).

Shift every sample one step along the score, then run a plain Gaussian KDE with the same h:

    x̃_i = x_i + (h²/2)·ŝ(x_i),     f̂(y) = (1/n) Σ_i φ_h(y − x̃_i)

The shift cancels the KDE's leading O(h²) bias, so MISE falls as n^(−8/(d+8)) instead of
n^(−4/(d+4)).  The estimate is non-negative and integrates to 1.  With the KDE's own score
(``oracle="empirical"``) this is Emp-SD-KDE, the classical baseline.
"""

from __future__ import annotations

import numpy as np
import torch

from scoreoracle import KDEOracle
from scoreoracle.validation import check_positive_float, check_sample_set, check_weights, effective_sample_size
from .fisher import checked_output


def sd_kde_bandwidth(samples: np.ndarray, weights: np.ndarray | None = None) -> float:
    """h = c·σ̂·n_eff^(−1/(d+8)) with σ̂ = mean over axes of min(std, IQR/1.34) (the std alone on
    axes whose IQR is zero; quartiles by the inverted CDF, with or without weights); c = 0.4 (d = 1)
    or 0.65 (d ≥ 2), the constants of the SD-KDE authors' 1-D rule and 2-D experiments (Epstein et
    al. 2025, arXiv:2504.19084).  samples (n, d) or (n,); weights (n,): non-negative, any scale."""
    samples = check_sample_set(samples).detach().cpu().numpy()
    n, d = samples.shape
    checked = check_weights(weights, n, d)
    weights = None if checked is None else checked.numpy()
    # weights of any scale, rescaled to mean 1: uniform weights are then exactly 1 and, with one
    # quantile definition for both (numpy's weighted quantiles need the inverted CDF), give the
    # unweighted bandwidth
    weights = None if weights is None else np.asarray(weights, dtype=np.float64) * (n / np.sum(weights))
    std = np.sqrt(np.diag(np.atleast_2d(np.cov(samples.T, aweights=weights))))
    q75, q25 = (np.quantile(samples, q, axis=0, weights=weights, method="inverted_cdf") for q in (0.75, 0.25))
    iqr = (q75 - q25) / 1.34
    spread = np.where(iqr > 0, np.minimum(std, iqr), std)
    if not (spread > 0).all():
        raise ValueError("samples have a coordinate with no spread (zero variance): SD-KDE has no bandwidth; "
                         "pass bandwidth= explicitly or drop the constant coordinate")
    n_eff = effective_sample_size(None if weights is None else torch.from_numpy(weights / n), n)
    return (0.4 if d == 1 else 0.65) * float(spread.mean()) * n_eff ** (-1.0 / (d + 8))


class SDKDE:
    """A fitted SD-KDE: shifted centres (n, d), their weights and the isotropic bandwidth h (data
    units).  The KDE over the centres is fitted once; evaluate it at any queries (m, d)."""

    def __init__(self, centers: np.ndarray, bandwidth: float, weights: np.ndarray | None = None,
                 chunk_size: int = 4096):
        self.centers, self.bandwidth, self.weights = centers, bandwidth, weights
        self._kde = KDEOracle(bandwidth, isotropic=True, chunk_size=chunk_size).fit(centers, weights)

    def log_density(self, queries):
        """log f̂ at queries (m, d), nats."""
        return self._kde.log_density(queries)

    def density(self, queries):
        """f̂ at queries (m, d)."""
        return self._kde.density(queries)


def sd_kde(samples, oracle="empirical", bandwidth=None, *, weights=None) -> SDKDE:
    """Score-debiased KDE of samples (n, d) with optional importance weights (n,).

    oracle : a score oracle (its score at the samples is used), or "empirical" for the Gaussian
        KDE's own score at the same bandwidth (Emp-SD-KDE).
    bandwidth : isotropic kernel standard deviation h in data units; default
        :func:`sd_kde_bandwidth` (∝ n_eff^(−1/(d+8))).
    """
    x = check_sample_set(samples).detach().cpu().numpy()
    w = check_weights(weights, x.shape[0], x.shape[1])
    w = None if w is None else w.numpy()
    h = sd_kde_bandwidth(x, w) if bandwidth is None else check_positive_float(bandwidth, "bandwidth")
    if isinstance(oracle, str):
        if oracle != "empirical":
            raise ValueError(f"oracle must be a score oracle or 'empirical', got {oracle!r}")
        oracle = KDEOracle(h, isotropic=True)
    score = checked_output(oracle.score(x, weights=w), x.shape, "scores")
    return SDKDE(x + 0.5 * h * h * score, h, w)
