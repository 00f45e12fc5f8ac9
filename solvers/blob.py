"""The blob method's score (Carrillo–Craig–Patacchini 2019) as an oracle: a classical baseline.

With K_ε(z) = exp(−|z|²/ε), sample weights w (Σw = 1) and M(y) = Σ_j w_j K_ε(y − x_j):

    ŝ(y) = −(2/ε) Σ_j w_j K_ε(y − x_j)(y − x_j)(1/M(y) + 1/M(x_j)),
    log f̂(y) = log M(y) − (d/2)·log(πε)        (the mollified density)

Default ε = 4·(Π_k Var_k)^{1/d}·n_eff^{−2/(d+6)} (the rule of Ilin, Hu & Wang, "Score-based
transport modeling for the Landau equation", arXiv:2405.10392).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from scoreoracle.contract import FittedOracle, Oracle
from scoreoracle.validation import check_positive_float, effective_sample_size

from ._kernels import blob_score, gaussian_log_masses


def blob_epsilon(samples: np.ndarray, weights: np.ndarray | None = None) -> float:
    """The default mollification ε for samples (n, d) with optional normalised weights (n,)."""
    n, d = samples.shape
    var = np.diag(np.atleast_2d(np.cov(samples.T, aweights=weights)))
    n_eff = effective_sample_size(None if weights is None else torch.from_numpy(weights), n)
    return 4.0 * float(np.exp(np.log(var).mean())) * n_eff ** (-2.0 / (d + 6))


class BlobOracle(Oracle):
    """Blob-method score and mollified log-density.  ``epsilon=None`` uses :func:`blob_epsilon`.
    Computed by numba kernels: not differentiable with respect to the queries."""

    def __init__(self, epsilon: float | None = None):
        self.epsilon = None if epsilon is None else check_positive_float(epsilon, "epsilon")

    def _fit(self, samples, weights):
        return FittedBlob(samples, weights, self.epsilon)

    def __repr__(self):
        return f"BlobOracle(epsilon={self.epsilon!r})"


class FittedBlob(FittedOracle):
    differentiable = False

    def __init__(self, samples, weights, epsilon):
        super().__init__(samples, device="cpu")
        self.x = np.ascontiguousarray(samples.cpu().numpy())
        n = len(self.x)
        self.w = np.full(n, 1.0 / n) if weights is None else weights.cpu().numpy()
        self.eps = epsilon or blob_epsilon(self.x, None if weights is None else self.w)
        self.xt = np.ascontiguousarray(self.x.T)
        with np.errstate(divide="ignore"):
            self.log_w = np.log(self.w)  # −inf for zero weights: the kernels skip those samples
        self.log_sample_masses = gaussian_log_masses(self.xt, self.xt, self.log_w, 1.0 / self.eps)

    def _evaluate(self, q):
        qt = np.ascontiguousarray(q.cpu().numpy().T)
        return self._outputs(qt, gaussian_log_masses(qt, self.xt, self.log_w, 1.0 / self.eps))

    def _at_samples(self):
        return self._outputs(self.xt, self.log_sample_masses)

    def _outputs(self, qt, log_query_masses):
        score = blob_score(qt, self.xt, self.log_w, self.log_sample_masses, log_query_masses, 1.0 / self.eps)
        log_f = log_query_masses - 0.5 * self.dim * math.log(math.pi * self.eps)
        return torch.from_numpy(log_f), torch.from_numpy(score)
