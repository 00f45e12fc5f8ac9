"""Reference oracles: the exact law of a known distribution, and the single-Gaussian fit."""

from __future__ import annotations

import torch

from ..contract import FittedOracle, Oracle
from ..gaussian import standard_normal_log_density
from ..whitening import fit_whitening


class ExactOracle(Oracle):
    """Oracle for a known distribution (anything with ``dim`` and ``log_density_and_score``, e.g.
    a :class:`~scoreoracle.distributions.GaussianMixture`).  The samples (and their weights) are
    validated but otherwise ignored: this is the reference every estimate is compared against."""

    reads_samples = False

    def __init__(self, distribution):
        self.distribution = distribution
        self.dims = (distribution.dim,)

    def _check_dim(self, d: int):
        if d != self.distribution.dim:
            raise ValueError(f"samples have dimension {d} but the distribution has dimension "
                             f"{self.distribution.dim}")

    def _fit(self, samples, weights):
        return _FittedExact(samples, self.distribution)

    def _fit_batch(self, samples, weights):
        """A batch of B sets is answered by one call of the law on queries (B, m, d): a batched law
        (B distributions, e.g. ``random_gmm(B, d)``) answers set b with distribution b."""
        return _FittedExact(samples, self.distribution)

    def __repr__(self):
        return f"ExactOracle({type(self.distribution).__name__}, d = {self.distribution.dim})"


class _FittedExact(FittedOracle):
    def __init__(self, samples, distribution):
        super().__init__(samples, device=samples.device)
        self.distribution = distribution
        # differentiable only if the law answers a query that requires grad with a graph (a law
        # computing in numpy does not: solvers then take finite differences of its score)
        probe = samples[..., :1, :].detach().clone().requires_grad_(True)
        try:
            with torch.enable_grad():
                log_f = distribution.log_density_and_score(probe)[0]
        except (RuntimeError, TypeError):  # e.g. numpy() refused on a tensor that requires grad
            log_f = None
        self.differentiable = isinstance(log_f, torch.Tensor) and log_f.requires_grad

    def _evaluate(self, q):
        """The law at queries q (m, d) or (B, m, d); its answers may be torch or numpy arrays."""
        log_f, score = self.distribution.log_density_and_score(q)
        log_f, score = (torch.as_tensor(t, dtype=torch.float64, device=q.device) for t in (log_f, score))
        if log_f.shape != q.shape[:-1] or score.shape != q.shape:
            sets = "one sample set (n, d)" if q.ndim == 2 else f"a batch of {q.shape[0]} sample sets"
            raise ValueError(f"the distribution answered queries of shape {tuple(q.shape)} with log-densities "
                             f"{tuple(log_f.shape)} and scores {tuple(score.shape)}, expected "
                             f"{tuple(q.shape[:-1])} and {tuple(q.shape)}: a batched law (one distribution per "
                             f"set) must be fitted to a batch of as many sets, and {sets} was fitted")
        return log_f, score


class GaussianFitOracle(Oracle):
    """The single-Gaussian fit N(mean, covariance) of the (weighted) samples, unbiased covariance.
    A parametric baseline; exact when the data are Gaussian.  Evaluated in whitened coordinates,
    where it is N(0, I), so it is exactly affine-equivariant."""

    def _fit(self, samples, weights):
        return _FittedGaussian(samples, fit_whitening(samples, weights))


class _FittedGaussian(FittedOracle):
    def __init__(self, samples, whitening):
        super().__init__(samples, device=samples.device)
        self.whitening = whitening

    def _evaluate(self, q):
        z = self.whitening.apply(q)
        return self.whitening.unwhiten_outputs(standard_normal_log_density(z), -z)
