"""Test-time adaptation: fine-tune a copy of a core on one sample set without labels.

DiScoFormer's label-free consistency loss (Ilin, Sushko, Krishna 2025, arXiv:2511.05924)
‖S(X, Q) − ∇_Q T(X, Q)‖² (score head vs the gradient of the
log-density head at queries Q) is minimised over the weights with Adam.  Guards make it safe to
call on anything:

* memory is bounded like inference: the context is a seeded random subset of at most
  ``max_context`` samples (the loss needs double backward through the attention, O(context²));
* the samples are split into a context, training queries and held-out points (disjoint); the
  adapted core is kept only if it lowers the held-out *score-matching* loss
  ½‖s(x)‖² + tr ∇s(x) (Hyvärinen 2005) by more than twice its standard error.  Averaged over
  points x ~ f not in the context, that loss is the Fisher divergence ½E‖s − ∇log f‖² up to a
  constant that does not depend on s, so the guard compares the two cores' true score errors
  without labels (the consistency loss, which adaptation lowers by construction, does not);
* a non-finite loss or weight at any step returns the original core.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import torch

from ..validation import check_positive_float, check_positive_int


@dataclass(frozen=True)
class AdaptationReport:
    """Held-out score-matching loss (mean over the held-out points, whitened coordinates) of the
    original and the adapted core, the standard error of their paired difference, and whether the
    adapted copy was kept."""

    held_out_before: float
    held_out_after: float
    standard_error: float
    kept: bool
    reason: str


def consistency_loss(core, context, queries):
    """mean‖S(X, Q) − ∇_Q T(X, Q)‖² in whitened coordinates, differentiable in the weights.
    context (1, n, d), queries (1, m, d).  Uses the math attention backend: torch's fused CPU
    attention has no double backward."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    queries = queries.detach().clone().requires_grad_(True)
    with sdpa_kernel(SDPBackend.MATH):
        log_f, score = core(context.detach(), queries)
        n = context.shape[1]
        grad_q, = torch.autograd.grad(log_f[:, n:].sum(), queries, create_graph=True)
        return ((score[:, n:] - grad_q) ** 2).sum(-1).mean()


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


def adapt_core(core, z, steps: int = 4, *, lr: float = 1e-4, max_queries: int = 1024,
               max_context: int = 2048, held_out_fraction: float = 0.25, seed: int = 0):
    """Adapt ``core`` to whitened samples z (n, d).  Returns (core, AdaptationReport): a
    fine-tuned copy, or ``core`` itself when adaptation did not lower the held-out score-matching
    loss significantly.  A ``held_out_fraction`` of the samples (at most ``max_queries``) is held
    out of the context (at most ``max_context`` of the rest); the training queries (at most
    ``max_queries``) are context points, as in the paper's consistency loss."""
    steps = check_positive_int(steps, "steps")
    lr = check_positive_float(lr, "lr")
    max_queries = check_positive_int(max_queries, "max_queries")
    max_context = check_positive_int(max_context, "max_context")
    held_out_fraction = check_positive_float(held_out_fraction, "held_out_fraction")
    if held_out_fraction >= 1:
        raise ValueError(f"held_out_fraction must be in (0, 1), got {held_out_fraction!r}")
    z = z.detach().to(torch.float32)
    n = z.shape[0]
    if n < 2:
        raise ValueError(f"adaptation needs at least 2 samples (context and held-out points), got {n}")
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    n_held = min(max_queries, max(1, int(round(held_out_fraction * n))))
    held, rest = z[order[:n_held]].unsqueeze(0), order[n_held:]
    context, train = z[rest[:max_context]].unsqueeze(0), z[rest[:max_queries]].unsqueeze(0)
    original_dtype = next(core.parameters()).dtype
    adapted = copy.deepcopy(core).to(torch.float32).train()
    before = score_matching_loss(copy.deepcopy(core).to(torch.float32).eval(), context, held)
    opt = torch.optim.Adam(adapted.parameters(), lr=lr)
    for _ in range(steps):
        opt.zero_grad()
        loss = consistency_loss(adapted, context, train)
        if not torch.isfinite(loss):
            return core, AdaptationReport(float(before.mean()), math.nan, math.nan, False, "non-finite training loss")
        loss.backward()
        opt.step()
        if not all(bool(torch.isfinite(p).all()) for p in adapted.parameters()):
            return core, AdaptationReport(float(before.mean()), math.nan, math.nan, False,
                                          "non-finite weights (lr too large?)")
    after = score_matching_loss(adapted.eval(), context, held)
    difference = after.double() - before.double()
    standard_error = float(difference.std() / math.sqrt(n_held)) if n_held > 1 else math.inf
    report = (float(before.mean()), float(after.mean()), standard_error)
    if not bool(torch.isfinite(after).all()) or not float(difference.mean()) < -2 * standard_error:
        return core, AdaptationReport(*report, False, "held-out score-matching loss did not fall significantly")
    return adapted.to(original_dtype), AdaptationReport(*report, True, "held-out score-matching loss fell")
