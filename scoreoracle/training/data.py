"""Training data: a stream of fresh random distributions with closed-form labels (Algorithm 1 of
Ilin, Sushko, Krishna 2025, arXiv:2511.05924, widened to heavy-tailed and warped families).

Each batch draws ``batch`` context distributions of one family and one dimension d, samples the
context from each and the queries partly from it and partly from a second distribution of the
same family (so queries cover regions the context barely reaches).  Labels are the context
distribution's exact log-density and score at the context points and the queries.  The whole
set is randomly rotated, then whitened with the context's own statistics exactly as at
inference; labels are mapped to whitened coordinates.

Families (all with closed-form log-density and score):

* ``gmm`` — DiScoFormer's random GMMs (:func:`scoreoracle.distributions.random_gmm`);
* ``student_t`` — the same mixtures with Student-t components, ν = 2.5 + 17.5·u², u ~ U[0, 1]
  per component (in [2.5, 20], weighted toward heavy tails);
* ``warped`` — the same mixtures pushed through a coordinate-wise sinh/asinh warp
  (:class:`scoreoracle.distributions.WarpedMixture`), heavier or lighter tails per axis.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..distributions import StudentTMixture, WarpedMixture, random_gmm, random_rotations
from ..whitening import fit_whitening

FAMILY_DESCRIPTIONS = {  # for model cards; {lo}..{hi}: the run's range of mixture components
    "gmm": "random GMMs (scoreoracle.distributions.random_gmm): k ~ U{{{lo}..{hi}}}, means U[-3,3]^d, variances "
           "U[0.2,1] with a Haar rotation per component, weights ∝ U[0.1,1]",
    "student_t": "the same mixtures with Student-t components, ν = 2.5 + 17.5·u², u ~ U[0, 1] per component",
    "warped": "the same mixtures through a coordinate-wise sinh/asinh warp (scoreoracle.distributions.WarpedMixture)",
}
FAMILIES = tuple(FAMILY_DESCRIPTIONS)


@dataclass
class Batch:
    """Whitened training batch.  context (B, n, d); points (B, n + m, d) = context then fresh
    queries; labels log_f (B, n + m) and score (B, n + m, d) in whitened coordinates;
    to_data (B, d, d) maps whitened scores to the distribution's own coordinates (s = s_w @ to_data)."""

    context: torch.Tensor
    points: torch.Tensor
    log_f: torch.Tensor
    score: torch.Tensor
    to_data: torch.Tensor


def random_distribution(family: str, batch: int, d: int, *, modes=(1, 10), generator=None):
    """``batch`` independent random distributions of one family in d dimensions."""
    gmm = random_gmm(batch, d, modes=modes, generator=generator)
    if family == "gmm":
        return gmm
    if family == "student_t":
        df = 2.5 + 17.5 * torch.rand(gmm.weights.shape, generator=generator, dtype=torch.float64) ** 2
        return StudentTMixture(gmm.weights, gmm.means, gmm.covariances, df)
    if family == "warped":
        u = torch.rand(batch, d, generator=generator, dtype=torch.float64)
        a = torch.where(u < 0.4, 0.1 + u, torch.where(u < 0.8, -0.2 - (u - 0.4), torch.zeros_like(u)))
        return WarpedMixture(gmm, a)  # 40 % heavier tails (a ∈ [0.1, 0.5]), 40 % lighter, 20 % unwarped
    raise ValueError(f"unknown family {family!r}; known: {FAMILIES}")


def make_batch(d: int, batch: int, n: int, n_queries: int, *, family: str = "gmm", modes=(1, 10),
               other_fraction: float = 0.25, generator=None) -> Batch:
    """One whitened batch of ``batch`` independent context sets of size n (float32 tensors)."""
    dist = random_distribution(family, batch, d, modes=modes, generator=generator)
    other = random_distribution(family, batch, d, modes=modes, generator=generator)
    rot_t = random_rotations(batch, d, generator).transpose(-1, -2)
    n_other = int(round(other_fraction * n_queries))
    x = dist.sample(n + n_queries - n_other, generator)
    points = torch.cat([x, other.sample(n_other, generator)], dim=1)  # context, then queries
    log_f, score = dist.log_density_and_score(points)
    points, score = points @ rot_t, score @ rot_t  # x ↦ Qx maps f ↦ f∘Qᵀ and s ↦ Qs
    w = fit_whitening(points[:, :n])
    log_f_w, score_w = w.whiten_outputs(log_f, score)
    z = w.apply(points)
    return Batch(context=z[:, :n].float(), points=z.float(), log_f=log_f_w.float(), score=score_w.float(),
                 to_data=w.matrix.transpose(-1, -2).float())


def log_uniform_int(lo: int, hi: int, generator) -> int:
    """An integer log-uniform in [lo, hi]."""
    u = torch.rand((), generator=generator).item()
    return int(round(math.exp(math.log(lo) + (math.log(hi) - math.log(lo)) * u)))


def draw_dimension(dim_groups, generator) -> int:
    """d from groups ((lo, hi, weight), …): a group by weight, then d log-uniform inside it."""
    weights = torch.tensor([float(g[2]) for g in dim_groups])
    lo, hi, _ = dim_groups[int(torch.multinomial(weights, 1, generator=generator))]
    return log_uniform_int(int(lo), int(hi), generator)


def draw_family(families, generator) -> str:
    """A family name from ((name, weight), …)."""
    weights = torch.tensor([float(w) for _, w in families])
    return families[int(torch.multinomial(weights, 1, generator=generator))][0]
