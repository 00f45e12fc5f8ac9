"""Full-covariance Gaussian KDE with a closed-form score (the classical baseline).

Matches ``scipy.stats.gaussian_kde``, weights included: the kernel covariance is factor² × the
(weighted, unbiased) sample covariance, with Scott's factor n_eff^(−1/(d+4)) or Silverman's
(n_eff(d+2)/4)^(−1/(d+4)), n_eff = (Σw)²/Σw² the effective sample size.  Evaluated in whitened
coordinates z = (x − m)·A (AᵀCA = I), where the kernel is isotropic with bandwidth h = factor:

    log f̂(y) = logsumexp_j(log w_j − ‖z_y − z_j‖²/2h²) − (d/2)·log(2πh²) + log|det A|
    ∇log f̂(y) = [(Σ_j a_j z_j − z_y)/h²]·Aᵀ,   a = softmax_j(log w_j − ‖z_y − z_j‖²/2h²)

(w normalised to Σw = 1).  Memory is O(chunk_size · n): queries are processed in row chunks.
"""

from __future__ import annotations

import math
import numbers

import torch

from ..contract import FittedOracle, Oracle
from ..gaussian import scott_factor, silverman_factor
from ..validation import check_positive_int, effective_sample_size, resolve_device
from ..whitening import Whitening, fit_whitening


BANDWIDTH_RULES = {"scott": scott_factor, "silverman": silverman_factor}


class KDEOracle(Oracle):
    """Gaussian KDE oracle.

    Parameters
    ----------
    bandwidth : "scott" (default), "silverman", or a positive float — the dimensionless factor
        multiplying the data's covariance square root, exactly as scipy's ``bw_method``.
    isotropic : if True, the kernel is h²·I with h = ``bandwidth`` (a float, in data units)
        instead of factor² × the data covariance.
    chunk_size : query rows per chunk (bounds memory; results change only by rounding).
    dtype : torch dtype of the kernel sums (float64 default; float32 is faster on CPU).
    device : None → cuda when present, else cpu.
    """

    def __init__(self, bandwidth="scott", *, isotropic: bool = False, chunk_size: int = 2048,
                 dtype=torch.float64, device=None, progress=None):
        if isinstance(bandwidth, str):
            if bandwidth not in BANDWIDTH_RULES:
                raise ValueError(f"bandwidth must be one of {sorted(BANDWIDTH_RULES)} or a positive "
                                 f"float, got {bandwidth!r}")
        elif not (isinstance(bandwidth, numbers.Real) and not isinstance(bandwidth, bool)
                  and math.isfinite(bandwidth) and bandwidth > 0):
            raise ValueError(f"bandwidth must be 'scott', 'silverman' or a positive float, got {bandwidth!r}")
        if isotropic and isinstance(bandwidth, str):
            raise ValueError("an isotropic KDE needs a float bandwidth h in data units")
        self.bandwidth = bandwidth if isinstance(bandwidth, str) else float(bandwidth)
        self.isotropic = isotropic
        self.chunk_size = check_positive_int(chunk_size, "chunk_size")
        self.dtype = dtype
        self.device = resolve_device(device)
        self.progress = progress

    def factor(self, n_eff: float, d: int) -> float:
        """The bandwidth factor used for n_eff (effective) samples in d dimensions."""
        if isinstance(self.bandwidth, str):
            return BANDWIDTH_RULES[self.bandwidth](n_eff, d)
        return float(self.bandwidth)

    def _fit(self, samples, weights):
        n, d = samples.shape
        if self.isotropic:  # centred at the samples' mean: no round-off from a large common offset
            mean = samples.mean(0, keepdim=True) if weights is None else weights @ samples
            w = Whitening(mean=mean.reshape(1, d),
                          matrix=torch.eye(d, dtype=torch.float64, device=samples.device),
                          log_det=torch.zeros((), dtype=torch.float64, device=samples.device))
        else:
            w = fit_whitening(samples, weights)
        return FittedKDE(samples, w, weights, self.factor(effective_sample_size(weights, n), d), self)

    def __repr__(self):
        kind = "isotropic, h" if self.isotropic else "bandwidth"
        return f"KDEOracle({kind}={self.bandwidth!r})"


class FittedKDE(FittedOracle):
    """A KDE fitted to samples: whitened centres, log-weights and the bandwidth factor h."""

    def __init__(self, samples, whitening: Whitening, weights, h: float, oracle: KDEOracle):
        super().__init__(samples, device=oracle.device, chunk_size=oracle.chunk_size, progress=oracle.progress)
        self.whitening, self.h, self.dtype = whitening, h, oracle.dtype
        self.z = whitening.apply(samples).to(self.dtype)
        self.z_sq = (self.z * self.z).sum(-1)
        n = samples.shape[0]
        self.log_weights = (torch.full((n,), -math.log(n), dtype=self.dtype, device=self.device)
                            if weights is None else torch.log(weights).to(self.dtype))

    def _evaluate(self, q):
        zq = self.whitening.apply(q).to(self.dtype)
        h2 = self.h * self.h
        # −‖zq − z_j‖²/2h² without its per-query term −‖zq‖²/2h², which the softmax ignores and
        # which is added after the log-sum-exp (far queries: ‖zq‖² may overflow, the rest does not)
        logits = self.log_weights + (zq @ self.z.T - 0.5 * self.z_sq) / h2  # (c, n)
        log_f = (torch.logsumexp(logits, dim=-1) - 0.5 * (zq * zq).sum(-1) / h2
                 - 0.5 * self.dim * math.log(2 * math.pi * h2))
        score = (torch.softmax(logits, dim=-1) @ self.z - zq) / h2
        return self.whitening.unwhiten_outputs(log_f, score)
