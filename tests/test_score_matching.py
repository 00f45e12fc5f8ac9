"""Held-out score matching: its loss estimates the Fisher divergence (up to a constant), so test-time
adaptation keeps an adapted copy when it lowers the true score error and refuses it when it raises
it, and ``select`` picks the checkpoint with the lower true error — on the paper's
out-of-distribution cases (Laplace, Student-t ν = 3) and on the GMM family."""

import numpy as np
import pytest
import torch

import scoreoracle
from scoreoracle import Laplace, StudentT
from scoreoracle.distributions import random_gmm
from scoreoracle.models import EquivariantConfig, EquivariantCore
from scoreoracle.oracles.score_matching import (MIN_HELD_OUT, Comparison, compare, cross_fitted_losses, held_out_split,
                                                score_matching_loss)

from conftest import random_core


class LinearScore(torch.nn.Module):
    """A stand-in core whose score is −z Aᵀ (A not symmetric): for z ~ N(0, I_d) the score-matching
    loss ½‖s‖² + tr ∇s has mean ½ tr(AᵀA) − tr A (the Fisher divergence ½‖A − I‖²_F minus d/2)."""

    def __init__(self, a: torch.Tensor):
        super().__init__()
        self.a = a

    def encode(self, context):
        return context

    def decode(self, queries, context):
        return -0.5 * (queries * queries).sum(-1), -queries @ self.a.T


@pytest.mark.parametrize("scale", [0.5, 1.0, 1.5])
def test_score_matching_loss_is_the_fisher_divergence_up_to_a_constant(scale):
    d = 4
    g = torch.Generator().manual_seed(0)
    a = scale * torch.eye(d, dtype=torch.float64) + 0.3 * torch.randn(d, d, generator=g, dtype=torch.float64)
    z = torch.randn(1, 20010, d, generator=g, dtype=torch.float64)
    loss = score_matching_loss(LinearScore(a), z[:, :10], z[:, 10:])
    assert loss.shape == (20000,)
    expected = 0.5 * float((a * a).sum()) - float(a.trace())
    assert abs(float(loss.mean()) - expected) < 4 * float(loss.std()) / np.sqrt(len(loss))


def _cores(d):
    torch.manual_seed(1)
    equivariant = EquivariantCore(EquivariantConfig(width=16, depth=2, heads=2, head_width=8, ffn=32,
                                                    local_gaussian_iterations=2))
    for module in equivariant.modules():  # non-zero gates and heads, so every path matters
        if isinstance(module, torch.nn.Linear):
            torch.nn.init.normal_(module.weight, std=0.2)
    return [random_core(d).double(), equivariant.double().eval()]


@pytest.mark.parametrize("core_index", [0, 1])
def test_score_matching_loss_matches_each_points_own_jacobian(core_index):
    """The per-point trace from d backward passes equals the trace of each point's own Jacobian
    (queries never attend to one another), for both architectures."""
    d = 3
    core = _cores(d)[core_index]
    g = torch.Generator().manual_seed(2)
    context, points = torch.randn(1, 40, d, generator=g, dtype=torch.float64), torch.randn(1, 5, d, generator=g,
                                                                                           dtype=torch.float64)
    loss = score_matching_loss(core, context, points)
    for i in range(points.shape[1]):
        def score_at(x):
            return core.decode(x.view(1, 1, d), core.encode(context))[1].view(d)
        jacobian = torch.autograd.functional.jacobian(score_at, points[0, i])
        s = score_at(points[0, i]).detach()
        torch.testing.assert_close(loss[i], 0.5 * (s * s).sum() + jacobian.trace(), rtol=1e-8, atol=1e-8)


def test_held_out_split_is_seeded_disjoint_and_bounded():
    z = torch.arange(100, dtype=torch.float64).view(100, 1)
    held, context = held_out_split(z, 0.25, 10, 50, seed=3)
    assert held.shape == (1, 10, 1) and context.shape == (1, 50, 1)
    assert not set(held.flatten().tolist()) & set(context.flatten().tolist())
    again = held_out_split(z, 0.25, 10, 50, seed=3)
    assert torch.equal(held, again[0]) and torch.equal(context, again[1])
    held, context = held_out_split(z[:2], 0.9, 10, 50, seed=0)
    assert held.shape[1] == 1 and context.shape[1] == 1
    for bad in (dict(max_held_out=0), dict(max_context=-1), dict(held_out_fraction=1.0)):
        with pytest.raises(ValueError, match=next(iter(bad))):
            held_out_split(z, **{"held_out_fraction": 0.25, "max_held_out": 10, "max_context": 50, "seed": 0, **bad})


class ContextRecorder(LinearScore):
    """A LinearScore that records, for every call, the context it was given and the points scored."""

    def __init__(self, a):
        super().__init__(a)
        self.calls = []

    def decode(self, queries, context):
        self.calls.append((context[0].detach().clone(), queries[0].detach().clone()))
        return super().decode(queries, context)


def test_cross_fitting_scores_each_point_once_given_a_context_without_it():
    z = torch.arange(90, dtype=torch.float64).view(30, 3) / 30
    cores = [ContextRecorder(torch.eye(3, dtype=torch.float64)), ContextRecorder(2 * torch.eye(3, dtype=torch.float64))]
    first, second = cross_fitted_losses(cores, z, folds=4, max_held_out=30, max_context=100, seed=5)
    scored = torch.cat([points for _, points in cores[0].calls])
    assert len(cores[0].calls) == 4 and first.shape == second.shape == (30,)
    assert sorted(scored[:, 0].tolist()) == sorted(z[:, 0].tolist())  # every sample exactly once
    for context, points in cores[0].calls:
        assert len(context) == 30 - len(points) and not set(points[:, 0].tolist()) & set(context[:, 0].tolist())
    torch.testing.assert_close(first, 0.5 * (scored ** 2).sum(-1) - 3)  # the same point order for both cores
    torch.testing.assert_close(second, 2.0 * (scored ** 2).sum(-1) - 6)
    again = cross_fitted_losses(cores, z, folds=4, max_held_out=30, max_context=100, seed=5)[0]
    assert torch.equal(first, again)


def test_cross_fitting_bounds_the_points_and_the_context_and_checks_its_arguments():
    z = torch.randn(200, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    core = ContextRecorder(torch.eye(2, dtype=torch.float64))
    losses, = cross_fitted_losses([core], z, folds=3, max_held_out=50, max_context=40, seed=0)
    assert losses.shape == (50,) and all(len(context) == 40 for context, _ in core.calls)
    for bad, message in ((dict(folds=1), "at least 2 folds"), (dict(max_held_out=0), "max_held_out"),
                         (dict(max_context=0), "max_context")):
        with pytest.raises(ValueError, match=message):
            cross_fitted_losses([core], z, **{"folds": 4, "max_held_out": 50, "max_context": 40, "seed": 0, **bad})
    with pytest.raises(ValueError, match="at least 4 samples"):
        cross_fitted_losses([core], z[:3], folds=4, max_held_out=50, max_context=40, seed=0)


def test_comparison_needs_enough_points_and_a_finite_candidate():
    assert Comparison(1.0, 0.0, 0.1, MIN_HELD_OUT).better
    assert not Comparison(1.0, 0.0, 0.1, MIN_HELD_OUT - 1).better
    assert not Comparison(1.0, 0.9, 0.1, MIN_HELD_OUT).better
    assert not Comparison(1.0, float("nan"), 0.1, MIN_HELD_OUT).better
    assert Comparison(float("inf"), 1.0, float("nan"), MIN_HELD_OUT).better


def test_the_bulk_test_needs_a_lower_mean_a_trimmed_gain_and_enough_points():
    assert Comparison(1.0, 0.9, 1.0, MIN_HELD_OUT, -1.0, 0.1).better_in_the_bulk
    assert not Comparison(1.0, 0.9, 1.0, MIN_HELD_OUT - 1, -1.0, 0.1).better_in_the_bulk
    assert not Comparison(1.0, 0.9, 1.0, MIN_HELD_OUT, -0.1, 0.1).better_in_the_bulk  # within 2 SE
    assert not Comparison(1.0, 1.1, 1.0, MIN_HELD_OUT, -1.0, 0.1).better_in_the_bulk  # the mean rose
    assert not Comparison(1.0, float("nan"), 1.0, MIN_HELD_OUT).better_in_the_bulk
    assert Comparison(float("inf"), 1.0, float("nan"), MIN_HELD_OUT).better_in_the_bulk
    assert not Comparison(1.0, 0.9, 1.0, MIN_HELD_OUT).better_in_the_bulk  # no trimmed statistics


def _losses(difference):
    reference = torch.linspace(-3.0, 1.0, len(difference), dtype=torch.float64)
    return reference, reference + torch.as_tensor(difference, dtype=torch.float64)


def test_a_gain_hidden_by_a_few_heavy_tail_points_is_found_in_the_bulk():
    """Every point gains 0.05 but four tail points swing by ±40 (heavy-tailed data: their
    score-matching losses dominate).  The mean difference is −0.05, far within two of its own
    standard errors (0.40); the 10 %-trimmed mean is −0.05 with a standard error of 0.0015."""
    difference = np.full(200, -0.05) + np.random.default_rng(0).normal(0, 0.02, 200)
    difference[:4] += [40.0, -40.0, 40.0, -40.0]
    mean, standard_error = difference.mean(), difference.std(ddof=1) / np.sqrt(200)
    result = compare(*_losses(difference))
    assert result.candidate - result.reference == pytest.approx(mean) and mean < 0
    assert result.standard_error == pytest.approx(standard_error) and not result.better
    assert result.better_in_the_bulk and result.trimmed_difference == pytest.approx(-0.05, abs=0.01)


def test_a_loss_in_a_few_tail_points_is_not_hidden_by_trimming():
    """Most points gain a little, but three tail points lose so much that the mean rises: the
    trimmed differences alone would keep the candidate, the mean refuses it."""
    difference = np.full(200, -0.05) + np.random.default_rng(1).normal(0, 0.02, 200)
    difference[:3] += 10.0
    result = compare(*_losses(difference))
    assert result.trimmed_difference < -2 * result.trimmed_standard_error and result.candidate > result.reference
    assert not result.better_in_the_bulk


def test_trimmed_difference_and_its_standard_error_match_a_direct_computation():
    """Yuen's statistics: the mean of the differences without the lowest and highest 10 %, and the
    standard deviation of the winsorised differences / (0.8 √m)."""
    difference = np.random.default_rng(2).standard_t(2, 150)
    result = compare(*_losses(difference))
    ordered, cut = np.sort(difference), 15
    winsorised = np.clip(difference, ordered[cut], ordered[-cut - 1])
    assert result.trimmed_difference == pytest.approx(ordered[cut:-cut].mean(), rel=1e-9)
    assert result.trimmed_standard_error == pytest.approx(winsorised.std(ddof=1) / (0.8 * np.sqrt(150)), rel=1e-9)
    assert result.points == 150


def _true_error(oracle, dist, x, y):
    truth = dist.score(torch.from_numpy(y)).numpy().reshape(y.shape)  # a batch-of-one GMM adds a set axis
    return float(((oracle.score(x, y) - truth) ** 2).sum(1).mean())


def _draw(dist, n, seed):
    g = torch.Generator().manual_seed(seed)
    return dist.sample(n, g).numpy(), dist.sample(2048, g).numpy()


def test_adaptation_that_raises_the_true_error_is_refused():
    """2-D Laplace, lr 1e-3, 8 steps, on the (retired) d = 2 checkpoint: the adapted copy's true
    score MSE is 0.58 → 0.93 (measured with the guard bypassed); the guard refuses it and the
    oracle answers with the original weights."""
    dist = Laplace(torch.zeros(2), torch.ones(2))
    x, y = _draw(dist, 1024, 0)
    oracle = scoreoracle.load(checkpoint="d2")
    adapted = oracle.adapt(x, steps=8, lr=1e-3, seed=0)
    report = adapted.adaptation
    held_out = report.held_out
    assert not report.kept and held_out.candidate > held_out.reference
    np.testing.assert_array_equal(adapted.score(x, y), oracle.score(x, y))


def test_adaptation_that_lowers_the_true_error_is_kept():
    """Student-t (ν = 3) at d = 10, n = 512, on the d = 10 checkpoint (far off its training family):
    adaptation lowers the true score MSE (6.9 → 5.8 measured) and the guard keeps it."""
    dist = StudentT(3, torch.zeros(10), torch.eye(10))
    x, y = _draw(dist, 512, 1)
    oracle = scoreoracle.load(checkpoint="d10")  # retired from routing, loadable by name
    adapted = oracle.adapt(x, steps=8, lr=1e-4, seed=1)
    assert adapted.adaptation.kept
    assert _true_error(adapted, dist, x, y) < 0.9 * _true_error(oracle, dist, x, y)


def test_adaptation_whose_gain_the_tails_hide_from_the_mean_is_kept():
    """Student-t (ν = 3) at d = 5, n = 1024, seed 0, 4 steps, on the shipped default: the adapted
    copy lowers the true score MSE by a third (0.284 → 0.190 on 1024 fresh queries), but a few
    tail points leave the held-out mean within two of its standard errors.  The bulk test keeps
    it."""
    dist = StudentT(3, torch.zeros(5), torch.eye(5))
    x, y = _draw(dist, 1024, 0)
    oracle = scoreoracle.load()
    adapted = oracle.adapt(x, steps=4, seed=0)
    assert adapted.adaptation.kept and not adapted.adaptation.held_out.better
    assert _true_error(adapted, dist, x, y) < 0.8 * _true_error(oracle, dist, x, y)


def test_adaptation_that_only_the_tails_favour_is_refused(monkeypatch):
    """Student-t (ν = 3) at d = 5, n = 256, seed 6, 8 steps: the held-out mean falls by more than
    two standard errors, so the mean test kept the copy, yet its true score MSE is higher (+16 %
    measured).  The bulk test refuses it; bypassing the guard shows the copy is worse."""
    dist = StudentT(3, torch.zeros(5), torch.eye(5))
    x, y = _draw(dist, 256, 6)
    oracle = scoreoracle.load()
    refused = oracle.adapt(x, steps=8, seed=6)
    assert not refused.adaptation.kept and refused.adaptation.held_out.better
    np.testing.assert_array_equal(refused.score(x, y), oracle.score(x, y))
    monkeypatch.setattr(Comparison, "better_in_the_bulk", property(lambda self: True))
    kept = oracle.adapt(x, steps=8, seed=6)
    assert kept.adaptation.kept and _true_error(kept, dist, x, y) > 1.05 * _true_error(oracle, dist, x, y)


def _gmm_draw(d, n, seed):
    g = torch.Generator().manual_seed(seed)
    gmm = random_gmm(1, d, generator=g)
    return gmm, gmm.sample(n, g)[0].numpy(), gmm.sample(2048, g)[0].numpy()


@pytest.mark.parametrize("family,seed", [("student-t", 0), ("student-t", 1), ("student-t", 2), ("student-t", 3),
                                         ("gmm", 0), ("gmm", 1)])
def test_select_picks_the_checkpoint_with_the_lower_true_error(family, seed):
    """d = 3, n = 1024: on Student-t (ν = 3) the all-dimension core's score MSE is ~12× lower than
    the d = 3 checkpoint's (0.045 vs 0.54 over 8 seeds), on GMMs of the training family d3's is
    lower (0.27 vs 0.33): ``select`` must choose accordingly, and the chosen oracle answers like
    that checkpoint.  Scoring one held-out quarter, select kept d3 on Student-t draws in half the
    seeds (heavy tails make the loss noisy); cross-fitting scores every sample."""
    if family == "student-t":
        dist = StudentT(3, torch.zeros(3), torch.eye(3))
        x, y = _draw(dist, 1024, seed)
    else:
        dist, x, y = _gmm_draw(3, 1024, seed)
    router = scoreoracle.load()
    chosen = router.select(x)
    report = chosen.selection
    assert report.default == "d3" and report.comparison is not None
    expected = "equivariant" if family == "student-t" else "d3"
    assert report.chosen == expected == chosen.name, report
    errors = {name: _true_error(scoreoracle.load(checkpoint=name), dist, x, y) for name in ("d3", "equivariant")}
    assert errors[report.chosen] == min(errors.values()), errors
    np.testing.assert_array_equal(chosen.score(x, y), scoreoracle.load(checkpoint=expected).score(x, y))


def test_select_where_one_checkpoint_serves_d_and_refuses_batches():
    x = np.random.default_rng(0).normal(size=(64, 5))
    chosen = scoreoracle.load().select(x)
    assert chosen.selection.chosen == chosen.selection.default == "equivariant" and chosen.selection.comparison is None
    with pytest.raises(ValueError, match="one sample set"):
        scoreoracle.load().select(np.stack([x, x]))


def test_selection_and_adaptation_reports_do_not_change_the_fingerprint():
    """They describe a choice; the chosen oracle answers exactly like its checkpoint."""
    x = np.random.default_rng(0).normal(size=(64, 5))
    unchanged = scoreoracle.load(checkpoint="equivariant").fingerprint()
    assert scoreoracle.load().select(x).fingerprint() == unchanged
    adapted = scoreoracle.load().adapt(x)  # refused (too few held-out points): the checkpoint itself
    assert not adapted.adaptation.kept and adapted.fingerprint() == unchanged


def test_the_router_with_frame_averaging_still_serves_every_d():
    """rotations=8 averages the per-dimension checkpoints; the all-d core (exactly invariant) uses one frame."""
    router = scoreoracle.load(rotations=8)
    x = np.random.default_rng(0).normal(size=(64, 5))
    np.testing.assert_array_equal(router.score(x, x[:4]), scoreoracle.load(checkpoint="equivariant").score(x, x[:4]))
    assert router.for_dim(3).rotations == 8
