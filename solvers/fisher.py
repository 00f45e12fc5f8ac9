"""Plug-in Fisher information, relative Fisher information and entropy from a score oracle.

    I(f) = E‖∇log f‖² ≈ (1/n) Σ ‖ŝ(x_i)‖²                (plug-in)
    I(f) = −E[∇·∇log f] ≈ −(1/n) Σ ∇·ŝ(x_i)            (Hyvärinen/divergence form)
    I(f‖g) = E_f‖∇log f − ∇log g‖² ≈ (1/n) Σ ‖ŝ_X(x_i) − ŝ_Y(x_i)‖²
    h(f) = −E log f ≈ −(1/n) Σ log f̂(x_i)               (differential entropy, nats)

Agreement of the plug-in and divergence forms is a label-free check of the score (with the exact
score both are unbiased).  Confidence intervals are normal-approximation intervals over the n
per-sample terms, conditional on the estimated score/log-density (they do not include the
estimator's own bias).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from scoreoracle._validation import check_queries, check_samples

Z95 = 1.959963984540054


@dataclass(frozen=True)
class Estimate:
    """A scalar estimate with its standard error and 95 % interval; ``float(est)`` is the value."""

    value: float
    stderr: float
    ci_low: float
    ci_high: float
    n: int
    divergence_form: float | None = None  # −mean ∇·ŝ (Fisher information only)

    def __float__(self):
        return self.value


def _mean_estimate(terms: np.ndarray, **extra) -> Estimate:
    n = len(terms)
    value = float(terms.mean())
    se = float(terms.std(ddof=1) / math.sqrt(n))
    return Estimate(value, se, value - Z95 * se, value + Z95 * se, n, **extra)


def score_divergence(samples: np.ndarray, oracle, step: float = 1e-3) -> np.ndarray:
    """∇·ŝ at the samples (n,), by central differences of the oracle's score along each axis
    (queries x ± h·e_k, h = step × the axis' standard deviation; O(h²) accurate)."""
    n, d = samples.shape
    h = step * samples.std(axis=0, ddof=1)
    div = np.zeros(n)
    for k in range(d):
        e = np.zeros(d)
        e[k] = h[k]
        plus = np.asarray(oracle.score(samples, samples + e))[:, k]
        minus = np.asarray(oracle.score(samples, samples - e))[:, k]
        div += (plus - minus) / (2 * h[k])
    return div


def fisher_information(samples, oracle, *, divergence: bool = True) -> Estimate:
    """Fisher information I(f) of the density that produced ``samples`` (n, d).

    ``float(result)`` is the plug-in mean‖ŝ‖²; ``result.divergence_form`` is −mean ∇·ŝ (finite
    differences of the oracle's score; set ``divergence=False`` to skip its 2d extra calls).
    """
    x = check_samples(samples).numpy()
    s = np.asarray(oracle.score(x), dtype=np.float64)
    div = -float(score_divergence(x, oracle).mean()) if divergence else None
    return _mean_estimate((s * s).sum(1), divergence_form=div)


def relative_fisher_information(samples_f, samples_g, oracle) -> Estimate:
    """I(f‖g) = E_f‖∇log f − ∇log g‖² from samples of f (n, d) and of g (n', d)."""
    x = check_samples(samples_f).numpy()
    y = check_samples(samples_g).numpy()
    check_queries(x, y.shape[1])
    s_f = np.asarray(oracle.score(x), dtype=np.float64)
    s_g = np.asarray(oracle.score(y, x), dtype=np.float64)
    return _mean_estimate(((s_f - s_g) ** 2).sum(1))


def entropy(samples, oracle) -> Estimate:
    """Differential entropy h(f) = −E log f in nats, plug-in −mean log f̂(x_i)."""
    x = check_samples(samples).numpy()
    return _mean_estimate(-np.asarray(oracle.log_density(x), dtype=np.float64))
