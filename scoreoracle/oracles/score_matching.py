"""Held-out score matching: compare two cores' true score errors on one sample set, without labels.

Hyvärinen's (2005) loss ½‖s(x)‖² + tr ∇s(x), averaged over points x ~ f, equals the Fisher
divergence ½E‖s − ∇log f‖² minus a constant that does not depend on s.  Evaluated at samples held
out of the context, the difference of two cores' mean losses estimates the difference of their
score errors on that data; the per-point differences give its standard error.  Test-time
adaptation (keep the adapted copy or not) and checkpoint selection (which core suits this data)
both decide with it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch


def score_matching_loss(core, context, points):
    """Hyvärinen's loss ½‖s(x)‖² + tr ∇s(x) at each of ``points`` (1, m, d), with the score s of
    ``core`` given ``context`` (1, n, d) → (m,).  The trace is exact (d backward passes; query
    tokens never attend to each other, so each pass gives every point's own derivative).  The
    points must not be in the context for the mean to estimate the Fisher divergence."""
    points = points.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        _, score = core(context.detach(), points)
        score = score[0, context.shape[1]:]
        trace = sum(torch.autograd.grad(score[:, k].sum(), points, retain_graph=True)[0][0, :, k]
                    for k in range(score.shape[1]))
    return (0.5 * (score * score).sum(-1) + trace).detach()


def held_out_split(z, held_out_fraction: float, max_held_out: int, max_context: int, seed: int):
    """Seeded split of whitened samples z (n, d) into held-out points (1, h, d) — a fraction of n,
    at most ``max_held_out`` — and a disjoint context (1, ≤ max_context, d) from the rest."""
    n = z.shape[0]
    if n < 2:
        raise ValueError(f"a held-out comparison needs at least 2 samples (context and held-out points), got {n}")
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    n_held = min(max_held_out, n - 1, max(1, int(round(held_out_fraction * n))))
    return z[order[:n_held]].unsqueeze(0), z[order[n_held:][:max_context]].unsqueeze(0)


@dataclass(frozen=True)
class Comparison:
    """Mean held-out score-matching loss of a reference and a candidate core, and the standard
    error of their paired difference; the candidate is ``better`` when its loss is lower by more
    than two standard errors."""

    reference: float
    candidate: float
    standard_error: float

    @property
    def better(self) -> bool:
        return math.isfinite(self.candidate) and self.candidate - self.reference < -2 * self.standard_error


def compare(reference_losses, candidate_losses) -> Comparison:
    """Paired comparison of per-point losses (m,) of two cores at the same held-out points."""
    difference = candidate_losses.double() - reference_losses.double()
    m = len(difference)
    standard_error = float(difference.std() / math.sqrt(m)) if m > 1 else math.inf
    if not bool(torch.isfinite(difference).all()):
        return Comparison(float(reference_losses.mean()), math.nan, standard_error)
    return Comparison(float(reference_losses.mean()), float(candidate_losses.mean()), standard_error)
