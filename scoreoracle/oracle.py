"""The oracle contract shared by the pretrained model, KDE and exact oracles.

An oracle maps i.i.d. samples (n, d) of an unknown density f and query points (m, d) to
log f (m,) in nats and the score ∇ₓ log f (m, d).  (In scikit-learn "score" means total
log-likelihood; here it is the gradient of the log-density, as in score-based modelling.
``score_samples`` is offered as the scikit-learn-style name of the log-density.)

Conversions live here once: numpy (or lists) in → numpy float64 out; torch in → torch out, in
the samples' dtype and device.  Subclasses implement ``_evaluate`` on validated float64 CPU
tensors.
"""

from __future__ import annotations

import numpy as np
import torch

from ._validation import check_queries, check_samples


class Oracle:
    """Base class: subclasses implement ``_evaluate(samples, queries) -> (log_f, score)``."""

    dims: tuple | None = None  # dimensions this oracle supports (None = any)

    def _evaluate(self, samples: torch.Tensor, queries: torch.Tensor | None):
        """samples (n, d) float64; queries (m, d) float64 or None (= samples).
        Returns float64 tensors ((m,), (m, d))."""
        raise NotImplementedError

    def _check_dim(self, d: int):
        if self.dims is not None and d not in self.dims:
            raise ValueError(f"{type(self).__name__} has no checkpoint for dimension d = {d}; "
                             f"available dimensions: {sorted(self.dims)}")

    def log_density_and_score(self, samples, queries=None):
        """(log f (m,), ∇log f (m, d)) at ``queries`` (default: the samples themselves)."""
        x = check_samples(samples)
        self._check_dim(x.shape[1])
        q = None if queries is None else check_queries(queries, x.shape[1])
        log_f, score = self._evaluate(x, q)
        return _like(samples, log_f), _like(samples, score)

    def log_density(self, samples, queries=None):
        """log f at ``queries`` (default: the samples), shape (m,)."""
        return self.log_density_and_score(samples, queries)[0]

    def score(self, samples, queries=None):
        """Score ∇ₓ log f at ``queries`` (default: the samples), shape (m, d)."""
        return self.log_density_and_score(samples, queries)[1]

    def score_samples(self, samples, queries=None):
        """scikit-learn-style alias of :meth:`log_density`."""
        return self.log_density(samples, queries)

    def density(self, samples, queries=None):
        """f at ``queries`` (default: the samples), shape (m,)."""
        log_f = self.log_density(samples, queries)
        return torch.exp(log_f) if isinstance(log_f, torch.Tensor) else np.exp(log_f)


def _like(reference, value: torch.Tensor):
    """Return ``value`` as the reference's array type (torch keeps dtype/device, else numpy)."""
    if isinstance(reference, torch.Tensor):
        dtype = reference.dtype if reference.is_floating_point() else torch.float64
        return value.to(device=reference.device, dtype=dtype)
    return value.detach().cpu().numpy()


class ExactOracle(Oracle):
    """Oracle for a known distribution (anything with ``log_density_and_score``, e.g. a
    :class:`~scoreoracle.distributions.GaussianMixture`).  The samples are validated but otherwise
    ignored: this is the reference every estimate is compared against."""

    def __init__(self, distribution):
        self.distribution = distribution
        self.dims = (distribution.dim,)

    def _check_dim(self, d: int):
        if d != self.distribution.dim:
            raise ValueError(f"samples have dimension {d} but the distribution has dimension "
                             f"{self.distribution.dim}")

    def _evaluate(self, samples, queries):
        q = samples if queries is None else queries
        log_f, score = self.distribution.log_density_and_score(q)
        return log_f.to(torch.float64), score.to(torch.float64)


class GaussianFitOracle(Oracle):
    """The single-Gaussian fit: the score and log-density of N(mean, covariance) of the samples
    (unbiased covariance).  A parametric baseline; exact when the data are Gaussian."""

    def _evaluate(self, samples, queries):
        from .distributions import GaussianMixture

        fit = GaussianMixture(torch.ones(1, dtype=torch.float64), samples.mean(0, keepdim=True),
                              torch.cov(samples.T).reshape(1, samples.shape[1], samples.shape[1]))
        return fit.log_density_and_score(samples if queries is None else queries)
