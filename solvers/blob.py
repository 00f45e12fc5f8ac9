"""The blob method's score (Carrillo–Craig–Patacchini 2019) as an oracle: a classical baseline.

With K_ε(z) = exp(−|z|²/ε) and M(y) = Σ_j K_ε(y − x_j):

    ŝ(y) = −(2/ε) Σ_j K_ε(y − x_j)(y − x_j)(1/M(y) + 1/M(x_j)),
    log f̂(y) = log(M(y)/n) − (d/2)·log(πε)        (the mollified density)

Default ε = 4·(Π_k Var_k)^{1/d}·n^{−2/(d+6)} (the rule of Ilin et al.).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from scoreoracle.oracle import Oracle

from ._kernels import blob_score, gaussian_masses


def blob_epsilon(samples: np.ndarray) -> float:
    n, d = samples.shape
    var = samples.var(axis=0, ddof=1)
    return 4.0 * float(np.exp(np.log(var).mean())) * n ** (-2.0 / (d + 6))


class BlobOracle(Oracle):
    """Blob-method score and mollified log-density.  ``epsilon=None`` uses :func:`blob_epsilon`."""

    def __init__(self, epsilon: float | None = None):
        if epsilon is not None and not (math.isfinite(epsilon) and epsilon > 0):
            raise ValueError(f"epsilon must be a positive float, got {epsilon!r}")
        self.epsilon = epsilon

    def _evaluate(self, samples, queries):
        x = samples.numpy()
        q = x if queries is None else queries.numpy()
        eps = self.epsilon or blob_epsilon(x)
        xt, qt = np.ascontiguousarray(x.T), np.ascontiguousarray(q.T)
        m_x = gaussian_masses(xt, xt, 1.0 / eps)
        m_q = m_x if queries is None else gaussian_masses(qt, xt, 1.0 / eps)
        score = blob_score(qt, xt, m_x, m_q, 1.0 / eps)
        log_f = np.log(m_q / len(x)) - 0.5 * x.shape[1] * math.log(math.pi * eps)
        return torch.from_numpy(log_f), torch.from_numpy(score)
