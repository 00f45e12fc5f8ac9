"""Affine whitening of a (weighted) context set and the exact change of variables back.

z = (x − m)·A with A = D^{-1/2} R^{-1/2}, where m and C are the (weighted) mean and covariance,
D = diag(C) and R the correlation matrix; AAᵀ = C^{-1}.  Because any two matrices with AAᵀ = C^{-1}
differ by an orthogonal factor, an affine map of the data turns the whitened points by an
orthogonal matrix: translation and scaling are exact symmetries of any core, and a core that is
exactly O(d)-equivariant makes every affine map one — in exact arithmetic.  For float32 cores,
:meth:`Whitening.refined` removes the conditioning-amplified round-off and :func:`canonical_rotation`
fixes that orthogonal factor from the data, so every affine image of a data set reaches the core in
the same coordinates (to float64 round-off).  Densities and scores map back by

    log f(x) = log f_w(z) + log|det A|,    ∇log f(x) = ∇log f_w(z)·Aᵀ.

Weights follow ``scipy.stats.gaussian_kde``: normalised w (Σw = 1), m = Σ wᵢxᵢ and
C = Σ wᵢ(xᵢ − m)(xᵢ − m)ᵀ / (1 − Σwᵢ²) (unbiased for reliability weights; 1/(n−1) when uniform).

Everything here runs in float64, and coordinates are rescaled by their largest deviation before
any product is formed, so data far from the origin or of extreme scale (1e±150) lose nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

MAX_CONDITION = 1e12  # correlation matrices worse than this are treated as singular


@dataclass(frozen=True)
class Whitening:
    """z = (x − mean)·matrix.  mean (..., 1, d), matrix (..., d, d), log_det (...,) float64."""

    mean: torch.Tensor
    matrix: torch.Tensor
    log_det: torch.Tensor

    def apply(self, x):
        """Whiten points x (..., m, d) → (..., m, d), float64."""
        return (x.to(self.matrix.dtype) - self.mean) @ self.matrix

    def unwhiten_outputs(self, log_f_w, score_w):
        """Map whitened-space log-density (..., m) and score (..., m, d) back to data space (float64)."""
        return (log_f_w.to(self.matrix.dtype) + self.log_det.unsqueeze(-1),
                score_w.to(self.matrix.dtype) @ self.matrix.transpose(-1, -2))

    def refined(self, x, weights=None):
        """The same whitening with its matrix corrected to round-off: whitening its own output
        (covariance ≈ I, so well conditioned) removes the κ(C)-amplified error of the first pass,
        up to an orthogonal factor.  x (..., n, d) the samples it was fitted to, weights as there."""
        second = fit_whitening(self.apply(x), weights)
        return Whitening(mean=self.mean, matrix=self.matrix @ second.matrix, log_det=self.log_det + second.log_det)

    def rotated(self, rotation):
        """The same whitening followed by an orthogonal map (..., d, d): z ↦ z·rotation (|det| = 1,
        so log_det is unchanged)."""
        return Whitening(mean=self.mean, matrix=self.matrix @ rotation.to(self.matrix.dtype), log_det=self.log_det)

    def whiten_outputs(self, log_f, score):
        """Inverse of :meth:`unwhiten_outputs`: data-space labels → whitened-space labels."""
        return (log_f - self.log_det.unsqueeze(-1),
                torch.linalg.solve(self.matrix, score.transpose(-1, -2)).transpose(-1, -2))


class SingularSamplesError(ValueError):
    """The samples do not span R^d (duplicates, a constant coordinate, collinear points)."""


def fit_whitening(samples: torch.Tensor, weights: torch.Tensor | None = None) -> Whitening:
    """Whitening of a context set (..., n, d) with optional normalised weights (..., n), in float64."""
    x = samples.to(torch.float64)
    n = x.shape[-2]
    w = torch.full(x.shape[:-1], 1.0 / n, dtype=torch.float64, device=x.device) if weights is None \
        else weights.to(torch.float64)
    mean = (w.unsqueeze(-1) * x).sum(-2, keepdim=True)
    if not bool(torch.isfinite(mean).all()):
        raise SingularSamplesError("the samples' mean overflows float64: values are too large to whiten")
    xc = x - mean
    # (..., d) largest deviation per coordinate among the samples that carry weight
    scale = torch.where((w > 0).unsqueeze(-1), xc.abs(), 0.0).amax(-2)
    constant = scale <= 1e-13 * mean.abs().squeeze(-2)  # (..., d) zero spread up to the mean's round-off
    if bool(constant.any()):
        columns = sorted({int(c) for c in torch.nonzero(constant)[:, -1]})
        raise SingularSamplesError(f"samples have a constant coordinate (column(s) {columns}: no spread beyond "
                                   "the round-off of their mean): the covariance is singular and cannot be "
                                   "whitened; drop or reparametrise those columns")
    if not bool(torch.isfinite(scale).all()):
        raise SingularSamplesError("the samples' spread overflows float64: values are too large to whiten")
    u = xc / scale.unsqueeze(-2)  # entries in [−1, 1]
    cov = (w.unsqueeze(-1) * u).transpose(-1, -2) @ u / (1 - (w * w).sum(-1))[..., None, None]
    std = torch.sqrt(torch.diagonal(cov, dim1=-2, dim2=-1))  # (..., d), in units of scale
    if bool((std <= 0).any()):
        raise SingularSamplesError("samples have a coordinate with zero (weighted) variance: "
                                   "the covariance is singular and cannot be whitened")
    corr = cov / (std.unsqueeze(-1) * std.unsqueeze(-2))
    evals, evecs = torch.linalg.eigh(0.5 * (corr + corr.transpose(-1, -2)))
    if bool((evals.min(-1).values <= evals.max(-1).values / MAX_CONDITION).any()):
        raise SingularSamplesError(
            "samples lie (numerically) in a lower-dimensional subspace: their correlation matrix is "
            f"singular (eigenvalues {evals.min().item():.3g} … {evals.max().item():.3g}); "
            "remove duplicate or collinear points or a redundant coordinate")
    inv_sqrt_corr = evecs @ torch.diag_embed(evals.rsqrt()) @ evecs.transpose(-1, -2)
    sigma = std * scale  # per-coordinate standard deviation in data units
    matrix = inv_sqrt_corr / sigma.unsqueeze(-1)  # D^{-1/2} R^{-1/2}
    log_det = -torch.log(std).sum(-1) - torch.log(scale).sum(-1) - 0.5 * torch.log(evals).sum(-1)
    return Whitening(mean=mean, matrix=matrix, log_det=log_det)


def canonical_rotation(z: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
    """An orthogonal frame (..., d, d) fixed by whitened points z (..., n, d) themselves, float64:
    the eigenvectors of the fourth-moment matrix Σ wⱼ‖zⱼ‖² zⱼzⱼᵀ (ascending eigenvalues), each
    signed so the points' third moment along it is ≥ 0.  Turning z by any orthogonal Q turns the
    frame by Qᵀ, so z·frame does not change: the same data in any orientation reaches a core in
    the same coordinates, and float32 rounding no longer depends on the orientation (an exactly
    O(d)-equivariant core gives the same answer in every frame, up to that rounding)."""
    z = z.to(torch.float64)
    n = z.shape[-2]
    w = torch.full(z.shape[:-1], 1.0 / n, dtype=z.dtype, device=z.device) if weights is None \
        else weights.to(z.dtype)
    weighted = z * (w * (z * z).sum(-1)).unsqueeze(-1)
    fourth = weighted.transpose(-1, -2) @ z
    frame = torch.linalg.eigh(0.5 * (fourth + fourth.transpose(-1, -2)))[1]
    third = (w.unsqueeze(-1) * (z @ frame) ** 3).sum(-2)  # (..., d)
    return frame * torch.where(third < 0, -1.0, 1.0).to(frame.dtype).unsqueeze(-2)
