"""Test-time adaptation's guard: the held-out score-matching loss estimates the Fisher divergence
(up to a constant), so the adapted copy is kept when it lowers the true score error and refused
when it raises it, on the paper's out-of-distribution cases (Laplace, Student-t ν = 3)."""

import numpy as np
import pytest
import torch

import scoreoracle
from scoreoracle import Laplace, StudentT
from scoreoracle.oracles.adaptation import score_matching_loss


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
    truth = dist.score(torch.from_numpy(y)).numpy()
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
