"""The Gaussian reference shared by the cores, the oracles and the distributions: the standard
normal log-density and the normal-reference bandwidth rules (for unit-covariance data)."""

from __future__ import annotations

import math

LOG_2PI = math.log(2 * math.pi)


def standard_normal_log_density(z):
    """log N(z; 0, I) of points z (..., d), in z's dtype."""
    return -0.5 * (z * z).sum(-1) - 0.5 * z.shape[-1] * LOG_2PI


def scott_factor(n: float, d: int) -> float:
    """Scott's rule n^(−1/(d+4)) (n: the effective sample size)."""
    return n ** (-1.0 / (d + 4))


def silverman_factor(n: float, d: int) -> float:
    """Silverman's rule (n(d+2)/4)^(−1/(d+4)) (n: the effective sample size)."""
    return (n * (d + 2) / 4.0) ** (-1.0 / (d + 4))
