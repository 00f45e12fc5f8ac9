"""Affine whitening of a context set and the exact change of variables back.

z = (x − m)·A with A = D^{-1/2} R_ε^{-1/2}, where D = diag(Cov) and R the correlation matrix,
R_ε = (R + εI)/(1 + ε).  Standardising each axis before the symmetric whitening makes
translation, isotropic *and* per-axis (anisotropic) scaling exact symmetries; only a residual
rotation is left to the network.  Densities and scores map back by

    log f(x) = log f_w(z) + log|det A|,    ∇log f(x) = ∇log f_w(z)·Aᵀ.

Everything here runs in float64 so inputs far from the origin lose no precision before any
lower-precision model call.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

EPS_CORRELATION = 1e-6  # ridge on the correlation matrix (dimensionless)
MAX_CONDITION = 1e10  # correlation matrices worse than this are treated as singular


@dataclass(frozen=True)
class Whitening:
    """z = (x − mean)·matrix.  mean (..., 1, d), matrix (..., d, d), log_det (...,) float64."""

    mean: torch.Tensor
    matrix: torch.Tensor
    log_det: torch.Tensor

    def apply(self, x):
        """Whiten points x (..., m, d) → (..., m, d)."""
        return (x.to(self.matrix.dtype) - self.mean) @ self.matrix

    def unwhiten_outputs(self, log_f_w, score_w):
        """Map whitened-space log-density (..., m) and score (..., m, d) back to data space."""
        return (log_f_w.to(self.matrix.dtype) + self.log_det.unsqueeze(-1),
                score_w.to(self.matrix.dtype) @ self.matrix.transpose(-1, -2))

    def whiten_outputs(self, log_f, score):
        """Inverse of :meth:`unwhiten_outputs`: data-space labels → whitened-space labels."""
        return (log_f - self.log_det.unsqueeze(-1),
                torch.linalg.solve(self.matrix, score.transpose(-1, -2)).transpose(-1, -2))


class SingularSamplesError(ValueError):
    """The samples do not span R^d (duplicates, a constant coordinate, collinear points)."""


def fit_whitening(samples: torch.Tensor, eps: float = EPS_CORRELATION) -> Whitening:
    """Whitening of a context set (..., n, d), computed in float64 (unbiased covariance)."""
    x = samples.to(torch.float64)
    n = x.shape[-2]
    mean = x.mean(-2, keepdim=True)
    xc = x - mean
    cov = xc.transpose(-1, -2) @ xc / (n - 1)
    std = torch.sqrt(torch.diagonal(cov, dim1=-2, dim2=-1))  # (..., d)
    if bool((std <= 0).any()) or not bool(torch.isfinite(std).all()):
        raise SingularSamplesError("samples have a constant coordinate (zero variance): "
                                   "the covariance is singular and cannot be whitened")
    corr = cov / (std.unsqueeze(-1) * std.unsqueeze(-2))
    evals, evecs = torch.linalg.eigh(0.5 * (corr + corr.transpose(-1, -2)))
    if bool((evals.min(-1).values <= evals.max(-1).values / MAX_CONDITION).any()):
        raise SingularSamplesError(
            "samples lie (numerically) in a lower-dimensional subspace: their correlation matrix is "
            f"singular (eigenvalues {evals.min().item():.3g} … {evals.max().item():.3g}); "
            "remove duplicate or collinear points or a redundant coordinate")
    evals = (evals + eps) / (1 + eps)
    inv_sqrt_corr = evecs @ torch.diag_embed(evals.rsqrt()) @ evecs.transpose(-1, -2)
    matrix = inv_sqrt_corr / std.unsqueeze(-1)  # D^{-1/2} R^{-1/2}
    log_det = -torch.log(std).sum(-1) - 0.5 * torch.log(evals).sum(-1)
    return Whitening(mean=mean, matrix=matrix, log_det=log_det)
