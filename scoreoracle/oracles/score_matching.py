"""Held-out score matching: compare two cores' true score errors on one sample set, without labels.

Hyvärinen's (2005) loss ½‖s(x)‖² + tr ∇s(x), averaged over points x ~ f, equals the Fisher
divergence ½E‖s − ∇log f‖² minus a constant that does not depend on s.  Evaluated at samples held
out of the context, the difference of two cores' mean losses estimates the difference of their
score errors on that data.  Test-time adaptation (keep the adapted copy or not) and checkpoint
selection (which core suits this data) both decide with it (:class:`Comparison`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from scipy import stats
from scipy.stats import mstats

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


def cross_fitted_losses(cores, z, folds: int, max_held_out: int, max_context: int, seed: int):
    """Each core's score-matching loss at up to ``max_held_out`` of the whitened samples z (n, d),
    every point scored given a context that leaves it out.  The first min(n, max_held_out) points
    of a seeded permutation are dealt into ``folds`` folds; a fold is scored given the other
    samples (a seeded subset of at most ``max_context`` of them).  Returns one (m,) tensor per core,
    the points in the same order for every core.  For cores that are not trained on z: every
    sample counts, where one held-out split scores only a fraction of them."""
    folds = check_positive_int(folds, "folds")
    if folds < 2:
        raise ValueError(f"cross-fitting needs at least 2 folds, got {folds}")
    max_held_out = check_positive_int(max_held_out, "max_held_out")
    max_context = check_positive_int(max_context, "max_context")
    n = z.shape[0]
    if n < folds:
        raise ValueError(f"cross-fitting with {folds} folds needs at least {folds} samples, got {n}")
    g = torch.Generator().manual_seed(seed)
    order = torch.randperm(n, generator=g).to(z.device)
    held = order[:min(n, max_held_out)]
    losses = [[] for _ in cores]
    for k in range(min(folds, len(held))):
        fold = held[k::folds]
        outside = torch.ones(n, dtype=torch.bool, device=z.device)
        outside[fold] = False
        context = outside.nonzero().flatten()
        if len(context) > max_context:
            context = context[torch.randperm(len(context), generator=g)[:max_context].to(z.device)]
        for core, core_losses in zip(cores, losses):
            core_losses.append(score_matching_loss(core, z[context].unsqueeze(0), z[fold].unsqueeze(0)))
    return [torch.cat(core_losses) for core_losses in losses]


# Fraction of the per-point loss differences trimmed at each end for the bulk test.
TRIM = 0.1


@dataclass(frozen=True)
class Comparison:
    """Held-out score-matching comparison of a reference and a candidate core at the same m
    points: their mean losses, the standard error of the mean paired difference (candidate −
    reference), and the 10 %-trimmed mean of those differences with its standard error (Yuen's,
    from the winsorised differences; NaN when not computed).

    Two tests of "the candidate's score error is lower", both with at least ``MIN_HELD_OUT`` points
    and both passed by a finite candidate where the reference is not finite:

    * ``better``: the mean difference is below −2 standard errors.  For gains that sit in the
      tails: at d = 3 the all-dimension core beats the d = 3 checkpoint on Student-t data mainly
      there (``select`` decides with it).
    * ``better_in_the_bulk``: the mean is lower and the trimmed mean difference is below −2 of its
      standard errors.  For changes spread over all points, where a few tail points of heavy-tailed
      data only add noise to the mean and to its standard error (``adapt`` decides with it).
    """

    reference: float
    candidate: float
    standard_error: float
    points: int
    trimmed_difference: float = math.nan
    trimmed_standard_error: float = math.nan

    def _judged(self, significant: bool) -> bool:
        """A test's verdict: its significance, given finite losses and enough points."""
        if not math.isfinite(self.candidate):
            return False
        if not math.isfinite(self.reference):
            return True
        return self.points >= MIN_HELD_OUT and significant

    @property
    def better(self) -> bool:
        return self._judged(self.candidate - self.reference < -2 * self.standard_error)

    @property
    def better_in_the_bulk(self) -> bool:
        return self._judged(self.candidate < self.reference
                            and self.trimmed_difference < -2 * self.trimmed_standard_error)


def compare(reference_losses, candidate_losses) -> Comparison:
    """Paired comparison of per-point losses (m,) of two cores at the same held-out points."""
    reference, candidate = reference_losses.double().cpu().numpy(), candidate_losses.double().cpu().numpy()
    difference = candidate - reference
    m = len(difference)
    if m > 1 and np.isfinite(difference).all():
        standard_error = float(difference.std(ddof=1) / math.sqrt(m))
        trimmed = float(stats.trim_mean(difference, TRIM))
        trimmed_standard_error = float(mstats.trimmed_stde(difference, (TRIM, TRIM)))
    else:
        standard_error, trimmed, trimmed_standard_error = math.inf, math.nan, math.nan
    return Comparison(float(reference.mean()), float(candidate.mean()), standard_error, m, trimmed,
                      trimmed_standard_error)
