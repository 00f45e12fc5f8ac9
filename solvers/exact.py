"""Analytic reference solutions used to validate the solvers.

All are exact: Gaussian heat and Ornstein–Uhlenbeck flows, the Maxwell-molecule Landau
covariance law, and the BKW solutions of the Maxwell Landau equation, plus a dense numpy
reference of the Landau particle field.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from scoreoracle.contract import FittedOracle, Oracle



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
    """A time-dependent exact oracle built from the true solution's ``score(x, t)`` and optionally
    ``log_density(x, t)`` (numpy functions of x (m, d)).  Solvers call ``at_time(t)`` at every
    stage; the returned fixed-time oracle follows the oracle contract and ignores its samples."""

    def __init__(self, score, log_density=None):
        self._score, self._log_density = score, log_density

    def at_time(self, t) -> Oracle:
        return _FixedTime(self, float(t))


class _FixedTime(Oracle):
    reads_samples = False

    def __init__(self, flow: AnalyticFlowOracle, t: float):
        self.flow, self.t = flow, t

    def _fit(self, samples, weights):
        return _FittedFixedTime(samples, self.flow, self.t)


class _FittedFixedTime(FittedOracle):
    differentiable = False

    def __init__(self, samples, flow, t):
        super().__init__(samples, device="cpu")
        self.flow, self.t = flow, t

    def _evaluate(self, q):
        x = q.detach().cpu().numpy()
        score = torch.as_tensor(np.asarray(self.flow._score(x, self.t), dtype=np.float64))
        if self.flow._log_density is None:  # score-only references: log f is unknown (NaN)
            return torch.full((len(x),), math.nan, dtype=torch.float64), score
        return torch.as_tensor(np.asarray(self.flow._log_density(x, self.t), dtype=np.float64)), score


def landau_field_reference(v, s, gamma=0.0, C=1.0, regularization=0.0, masses=None, block=256):
    """Dense numpy reference of the Landau velocity U (n, d) and entropy production (float),
    the same quantities as :func:`solvers.landau_field`, in row blocks of ``block`` particles."""
    n = len(v)
    m = np.full(n, 1.0 / n) if masses is None else np.asarray(masses, dtype=float) / np.sum(masses)
    U, ent = np.empty_like(v, dtype=float), 0.0
    for i in range(0, n, block):
        z = v[i:i + block, None, :] - v[None, :, :]
        ds = s[i:i + block, None, :] - s[None, :, :]
        z2 = (z * z).sum(-1)
        zds = (z * ds).sum(-1)
        w = m * ((z2 + regularization ** 2) ** (gamma / 2) if (gamma or regularization) else 1.0)
        U[i:i + block] = -C * (w[..., None] * (z2[..., None] * ds - zds[..., None] * z)).sum(1)
        ent += -0.5 * C * (m[i:i + block] * (w * (z2 * (ds * ds).sum(-1) - zds ** 2)).sum(1)).sum()
    return U, float(ent)
