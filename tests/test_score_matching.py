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
from scoreoracle.oracles.score_matching import score_matching_loss


class ScaledGaussianScore(torch.nn.Module):
    """A stand-in core whose score is −a·z: for z ~ N(0, I_d) the score-matching loss
    ½‖s‖² + tr ∇s has mean d(a²/2 − a), the Fisher divergence d(1 − a)²/2 minus d/2."""

    def __init__(self, a: float):
        super().__init__()
        self.a = a

    def forward(self, context, queries):
        points = torch.cat([context, queries], dim=1)
        return -0.5 * (points * points).sum(-1), -self.a * points


@pytest.mark.parametrize("a", [0.5, 1.0, 1.5])
def test_score_matching_loss_is_the_fisher_divergence_up_to_a_constant(a):
    d = 4
    z = torch.randn(1, 20010, d, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    loss = score_matching_loss(ScaledGaussianScore(a), z[:, :10], z[:, 10:])
    assert loss.shape == (20000,)
    standard_error = float(loss.std()) / np.sqrt(len(loss))
    assert abs(float(loss.mean()) - d * (a * a / 2 - a)) < 4 * standard_error


def _true_error(oracle, dist, x, y):
    truth = dist.score(torch.from_numpy(y)).numpy().reshape(y.shape)  # a batch-of-one GMM adds a set axis
    return float(((oracle.score(x, y) - truth) ** 2).sum(1).mean())


def _draw(dist, n, seed):
    g = torch.Generator().manual_seed(seed)
    return dist.sample(n, g).numpy(), dist.sample(2048, g).numpy()


def test_adaptation_that_raises_the_true_error_is_refused():
    """2-D Laplace, lr 1e-3, 8 steps: the adapted copy's true score MSE is 0.58 → 0.93 (measured with
    the guard bypassed); the guard refuses it and the oracle answers with the original weights."""
    dist = Laplace(torch.zeros(2), torch.ones(2))
    x, y = _draw(dist, 1024, 0)
    oracle = scoreoracle.load(2)
    adapted = oracle.adapt(x, steps=8, lr=1e-3, seed=0)
    report = adapted.adaptation
    assert not report.kept and report.held_out_after > report.held_out_before + 2 * report.standard_error
    np.testing.assert_array_equal(adapted.score(x, y), oracle.score(x, y))


def test_adaptation_that_lowers_the_true_error_is_kept():
    """Student-t (ν = 3) at d = 10, n = 512, on the d = 10 checkpoint (far off its training family):
    adaptation lowers the true score MSE (6.9 → 5.8 measured) and the guard keeps it."""
    dist = StudentT(3, torch.zeros(10), torch.eye(10))
    x, y = _draw(dist, 512, 1)
    oracle = scoreoracle.load(10)
    adapted = oracle.adapt(x, steps=8, lr=1e-4, seed=1)
    assert adapted.adaptation.kept
    assert _true_error(adapted, dist, x, y) < 0.9 * _true_error(oracle, dist, x, y)


def _gmm_draw(d, n, seed):
    g = torch.Generator().manual_seed(seed)
    gmm = random_gmm(1, d, generator=g)
    return gmm, gmm.sample(n, g)[0].numpy(), gmm.sample(2048, g)[0].numpy()


@pytest.mark.parametrize("family", ["student-t", "gmm"])
def test_select_picks_the_checkpoint_with_the_lower_true_error(family):
    """d = 10, n = 1024: on Student-t (ν = 3) the all-dimension core's relative score error is ~10×
    lower than the d = 10 checkpoint's, on a GMM of the training family ~2× higher (measured):
    ``select`` must choose accordingly, and the chosen oracle answers like that checkpoint."""
    if family == "student-t":
        dist = StudentT(3, torch.zeros(10), torch.eye(10))
        x, y = _draw(dist, 1024, 0)
    else:
        dist, x, y = _gmm_draw(10, 1024, 0)
    router = scoreoracle.load()
    chosen = router.select(x)
    report = chosen.selection
    assert report.default == "d10" and report.comparison is not None
    expected = "equivariant" if family == "student-t" else "d10"
    assert report.chosen == expected == chosen.name, report
    errors = {name: _true_error(scoreoracle.load(checkpoint=name), dist, x, y) for name in ("d10", "equivariant")}
    assert errors[report.chosen] == min(errors.values()), errors
    np.testing.assert_array_equal(chosen.score(x, y), scoreoracle.load(checkpoint=expected).score(x, y))


def test_select_where_one_checkpoint_serves_d_and_refuses_batches():
    x = np.random.default_rng(0).normal(size=(64, 5))
    chosen = scoreoracle.load().select(x)
    assert chosen.selection.chosen == chosen.selection.default == "equivariant" and chosen.selection.comparison is None
    with pytest.raises(ValueError, match="one sample set"):
        scoreoracle.load().select(np.stack([x, x]))
