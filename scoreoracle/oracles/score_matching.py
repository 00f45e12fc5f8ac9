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

from ..validation import check_positive_float, check_positive_int


MIN_HELD_OUT = 30  # fewer held-out points make the standard error itself too noisy to decide on


def score_matching_loss(core, context, points):
    """Hyvärinen's loss ½‖s(x)‖² + tr ∇s(x) at each of ``points`` (1, m, d), with the score s of
    ``core`` given ``context`` (1, n, d) → (m,).  The context is encoded once without autograd;
    the trace is exact (d backward passes through the queries; query tokens never attend to one
    another, so each pass gives every point's own derivative).  The points must not be in the
    context for the mean to estimate the Fisher divergence."""
    with torch.no_grad():
        encoded = core.encode(context)
    points = points.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        score = core.decode(points, encoded)[1][0]
        trace = sum(torch.autograd.grad(score[:, k].sum(), points, retain_graph=True)[0][0, :, k]
                    for k in range(score.shape[1]))
    return (0.5 * (score * score).sum(-1) + trace).detach()


def held_out_split(z, held_out_fraction: float, max_held_out: int, max_context: int, seed: int):
    """Seeded split of whitened samples z (n, d) into held-out points (1, h, d) — a fraction of n,
    at most ``max_held_out`` — and a disjoint context (1, ≤ max_context, d) from the rest."""
    held_out_fraction = check_positive_float(held_out_fraction, "held_out_fraction")
    if held_out_fraction >= 1:
        raise ValueError(f"held_out_fraction must be in (0, 1), got {held_out_fraction!r}")
    max_held_out = check_positive_int(max_held_out, "max_held_out")
    max_context = check_positive_int(max_context, "max_context")
    n = z.shape[0]
    if n < 2:
        raise ValueError(f"a held-out comparison needs at least 2 samples (context and held-out points), got {n}")
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).to(z.device)
    n_held = min(max_held_out, n - 1, max(1, int(round(held_out_fraction * n))))
    return z[order[:n_held]].unsqueeze(0), z[order[n_held:][:max_context]].unsqueeze(0)


@dataclass(frozen=True)
class Comparison:
    """Mean held-out score-matching loss of a reference and a candidate core at the same m
    points, and the standard error of their paired difference.  The candidate is ``better`` when
    its loss is lower by more than two standard errors (with at least ``MIN_HELD_OUT`` points), or
    finite where the reference's is not."""

    reference: float
    candidate: float
    standard_error: float
    points: int

    @property
    def better(self) -> bool:
        if not math.isfinite(self.candidate):
            return False
        if not math.isfinite(self.reference):
            return True
        return self.points >= MIN_HELD_OUT and self.candidate - self.reference < -2 * self.standard_error


def compare(reference_losses, candidate_losses) -> Comparison:
    """Paired comparison of per-point losses (m,) of two cores at the same held-out points."""
    difference = candidate_losses.double() - reference_losses.double()
    m = len(difference)
    standard_error = float(difference.std() / math.sqrt(m)) if m > 1 else math.inf
    return Comparison(float(reference_losses.double().mean()), float(candidate_losses.double().mean()),
                      standard_error, m)
