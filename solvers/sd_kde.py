"""Score-debiased kernel density estimation (SD-KDE, Epstein et al. 2025).

Shift every sample one step along the score, then run a plain Gaussian KDE with the same h:

    x̃_i = x_i + (h²/2)·ŝ(x_i),     f̂(y) = (1/n) Σ_i φ_h(y − x̃_i)

The shift cancels the KDE's leading O(h²) bias, so MISE falls as n^(−8/(d+8)) instead of
n^(−4/(d+4)).  The estimate is non-negative and integrates to 1.  With the KDE's own score
(``oracle="empirical"``) this is Emp-SD-KDE, the classical baseline.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from scoreoracle._validation import check_samples
from scoreoracle.kde import KDEOracle


def sd_kde_bandwidth(samples: np.ndarray) -> float:
    """h = c·σ̂·n^(−1/(d+8)) with σ̂ = mean over axes of min(std, IQR/1.34); c = 0.4 (d = 1, the
    SD-KDE paper's rule) or 0.65 (d ≥ 2, its 2-D code)."""
    n, d = samples.shape
    std = samples.std(axis=0, ddof=1)
    iqr = np.subtract(*np.percentile(samples, [75, 25], axis=0))
    sigma = float(np.mean(np.minimum(std, iqr / 1.34)))
    return (0.4 if d == 1 else 0.65) * sigma * n ** (-1.0 / (d + 8))


@dataclass(frozen=True)
class SDKDE:
    """A fitted SD-KDE: shifted centres (n, d) and isotropic bandwidth h (data units)."""

    centers: np.ndarray
    bandwidth: float
    chunk_size: int = 4096

    def log_density(self, queries):
        """log f̂ at queries (m, d), nats."""
        kde = KDEOracle(self.bandwidth, isotropic=True, chunk_size=self.chunk_size)
        return kde.log_density(self.centers, queries)

    def density(self, queries):
        """f̂ at queries (m, d)."""
        return np.exp(self.log_density(queries))


def sd_kde(samples, oracle="empirical", bandwidth=None) -> SDKDE:
    """Score-debiased KDE of samples (n, d).

    oracle : an oracle (its ``score(samples)`` is used), or "empirical" for the Gaussian KDE's
        own score at the same bandwidth (Emp-SD-KDE).
    bandwidth : isotropic kernel standard deviation h in data units; default
        :func:`sd_kde_bandwidth` (∝ n^(−1/(d+8))).
    """
    x = check_samples(samples).numpy()
    h = sd_kde_bandwidth(x) if bandwidth is None else float(bandwidth)
    if not (math.isfinite(h) and h > 0):
        raise ValueError(f"bandwidth must be a positive float, got {bandwidth!r}")
    if isinstance(oracle, str):
        if oracle != "empirical":
            raise ValueError(f"oracle must be an oracle object or 'empirical', got {oracle!r}")
        score = KDEOracle(h, isotropic=True).score(x)
    else:
        score = np.asarray(oracle.score(x), dtype=np.float64)
    return SDKDE(centers=x + 0.5 * h * h * score, bandwidth=h)

