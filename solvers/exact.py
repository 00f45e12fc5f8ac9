"""Analytic reference solutions used to validate the solvers.

All are exact: Gaussian heat and Ornstein–Uhlenbeck flows, the Maxwell-molecule Landau
covariance law, and the BKW solutions of the Maxwell Landau equation (downstream.md §2.6).
"""

from __future__ import annotations

import math

import numpy as np


def heat_flow_map(x0, t0, t1, variance0, D=1.0, mean=0.0):
    """Exact probability-flow map of ∂u/∂t = DΔu for isotropic Gaussian data N(mean, v(t)·I),
    v(t) = variance0 + 2Dt: X(t1) = mean + (X(t0) − mean)·√(v(t1)/v(t0))."""
    ratio = math.sqrt((variance0 + 2 * D * t1) / (variance0 + 2 * D * t0))
    return mean + (np.asarray(x0) - mean) * ratio


def ou_variance(t, variance0):
    """Variance of dX = −X dt + √2 dW started from N(0, variance0): 1 + (variance0 − 1)e^{−2t}."""
    return 1.0 + (variance0 - 1.0) * np.exp(-2.0 * np.asarray(t))


def ou_flow_map(x0, t0, t1, variance0):
    """Exact probability-flow map of the OU equation for isotropic N(0, variance0 at t=0) data."""
    return np.asarray(x0) * math.sqrt(ou_variance(t1, variance0) / ou_variance(t0, variance0))


def maxwell_covariance(t, cov0, C):
    """Σ(t) = Σ∞ − (Σ∞ − Σ₀)e^{−4dCt}, Σ∞ = tr Σ₀/d · I: Maxwell-molecule Landau, any initial law."""
    cov0 = np.asarray(cov0, dtype=float)
    d = cov0.shape[0]
    inf = np.trace(cov0) / d * np.eye(d)
    decay = np.exp(-4 * d * C * np.asarray(t, dtype=float))[..., None, None]
    return inf - (inf - cov0) * decay


class BKW:
    """BKW solution of the Maxwell Landau equation in d = 2 (C = 1/16, t ≥ 0) or d = 3
    (C = 1/24, t ≥ 5.5):  f = (2πK)^{−d/2} e^{−|v|²/2K} (P + Q|v|²),

    K(t) = 1 − ½e^{−t/8} (2-D) or 1 − e^{−t/6} (3-D), P = ((d+2)K − d)/(2K), Q = (1 − K)/(2K²).
    """

    def __init__(self, d: int):
        if d not in (2, 3):
            raise ValueError("BKW is implemented for d = 2 and d = 3")
        self.d = d
        self.C = 1 / 16 if d == 2 else 1 / 24
        self.t_start = 0.0 if d == 2 else 5.5

    def K(self, t):
        t = np.asarray(t, dtype=float)
        return 1 - 0.5 * np.exp(-t / 8) if self.d == 2 else 1 - np.exp(-t / 6)

    def _pq(self, t):
        K, d = self.K(t), self.d
        return K, ((d + 2) * K - d) / (2 * K), (1 - K) / (2 * K * K)

    def log_density(self, v, t):
        v = np.asarray(v, dtype=float)
        K, P, Q = self._pq(t)
        r2 = (v * v).sum(-1)
        return -0.5 * self.d * np.log(2 * np.pi * K) - r2 / (2 * K) + np.log(P + Q * r2)

    def score(self, v, t):
        v = np.asarray(v, dtype=float)
        K, P, Q = self._pq(t)
        r2 = (v * v).sum(-1, keepdims=True)
        return v * (-1 / K + 2 * Q / (P + Q * r2))

    def _radial(self, t, integrand):
        """∫_{R^d} integrand(r) f dv for radial integrands, by quadrature on r ∈ [0, 14√K]."""
        K = float(self.K(t))
        r = np.linspace(1e-9, 14 * math.sqrt(K), 400_001)
        v = np.zeros((len(r), self.d))
        v[:, 0] = r
        f = np.exp(self.log_density(v, t))
        surface = 2 * math.pi if self.d == 2 else 4 * math.pi * r ** 2
        surface = surface * (r if self.d == 2 else 1.0)
        return float(np.trapezoid(surface * integrand(v) * f, r))

    def fisher_information(self, t) -> float:
        """I(t) = E|∇log f|² (quadrature)."""
        return self._radial(t, lambda v: (self.score(v, t) ** 2).sum(1))

    def neg_entropy(self, t) -> float:
        """∫ f log f (quadrature); decreases in time (H-theorem)."""
        return self._radial(t, lambda v: self.log_density(v, t))

    def oracle(self) -> AnalyticFlowOracle:
        """The exact time-dependent BKW oracle."""
        return AnalyticFlowOracle(self.score, self.log_density)

    def fourth_moment(self, t):
        """E|v|⁴ = d(d+2)K(2 − K)."""
        K = self.K(t)
        return self.d * (self.d + 2) * K * (2 - K)

    def sample(self, n: int, t, seed=0):
        """n exact samples at time t: radius by inverse-CDF on a fine grid, uniform direction."""
        rng = np.random.default_rng(seed)
        K, P, Q = self._pq(t)
        r = np.linspace(0, 12 * math.sqrt(K), 200_001)
        radial = r ** (self.d - 1) * np.exp(-r * r / (2 * K)) * (P + Q * r * r)
        cdf = np.concatenate([[0], np.cumsum(0.5 * (radial[1:] + radial[:-1]) * np.diff(r))])
        radii = np.interp(rng.random(n), cdf / cdf[-1], r)
        direction = rng.normal(size=(n, self.d))
        direction /= np.linalg.norm(direction, axis=1, keepdims=True)
        return radii[:, None] * direction


class AnalyticFlowOracle:
    """A time-dependent exact oracle: ``score(x, t)`` and optionally ``log_density(x, t)`` of the
    true solution.  Solvers call ``at_time(t)`` at every stage and use the returned fixed-time
    oracle; the particles passed as samples are ignored."""

    def __init__(self, score, log_density=None):
        self._score, self._log_density = score, log_density

    def at_time(self, t):
        return _FixedTime(self, t)


class _FixedTime:
    def __init__(self, flow: AnalyticFlowOracle, t: float):
        self.flow, self.t = flow, t

    def score(self, samples, queries=None):
        return self.flow._score(np.asarray(samples if queries is None else queries, dtype=float), self.t)

    def log_density(self, samples, queries=None):
        if self.flow._log_density is None:
            raise NotImplementedError("this analytic oracle has no log-density")
        return self.flow._log_density(np.asarray(samples if queries is None else queries, dtype=float), self.t)

    def log_density_and_score(self, samples, queries=None):
        return self.log_density(samples, queries), self.score(samples, queries)
