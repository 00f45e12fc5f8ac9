import pytest
import torch

from scoreoracle import ExactOracle, GaussianFitOracle, GaussianMixture, KDEOracle
from solvers import entropy, fisher_information, relative_fisher_information


def gaussian(cov, mean=None):
    cov = torch.as_tensor(cov, dtype=torch.float64)
    d = cov.shape[0]
    mean = torch.zeros(1, d, dtype=torch.float64) if mean is None else torch.as_tensor(mean)[None].double()
    return GaussianMixture(torch.ones(1), mean, cov[None])


def test_gaussian_fisher_information_exact_score():
    cov = torch.tensor([[2.0, 0.5], [0.5, 1.0]])
    g = gaussian(cov)
    x = g.sample(20_000, torch.Generator().manual_seed(0)).numpy()
    est = fisher_information(x, ExactOracle(g))
    truth = float(torch.trace(torch.linalg.inv(cov)))
    assert est.ci_low < truth < est.ci_high
    assert float(est) == est.value
    # the divergence of an exact Gaussian score is the constant −tr Σ⁻¹ (by autograd): only round-off remains
    assert est.divergence_form == pytest.approx(truth, rel=1e-6)


def test_mixture_fisher_information_m1():
    m1 = GaussianMixture(torch.tensor([0.4, 0.6]), torch.tensor([[-2.0], [2.0]]), torch.tensor([[[0.25]], [[1.0]]]))
    x = m1.sample(50_000, torch.Generator().manual_seed(1)).numpy()
    est = fisher_information(x, ExactOracle(m1))
    truth = 2.027591  # Fisher information of M1 by numerical quadrature
    assert abs(est.value - truth) < 4 * est.stderr
    assert est.divergence_form == pytest.approx(truth, rel=0.03)  # the divergence form has its own Monte Carlo error


def test_kde_plug_in_is_biased_low_as_stam_predicts(rng):
    x = rng.normal(size=(2000, 1))
    assert fisher_information(x, KDEOracle("silverman"), divergence=False).value < 0.95


def test_gaussian_entropy():
    cov = torch.diag(torch.tensor([0.5, 2.0, 1.0]))
    g = gaussian(cov)
    x = g.sample(20_000, torch.Generator().manual_seed(2)).numpy()
    est = entropy(x, ExactOracle(g))
    truth = 0.5 * float(torch.logdet(2 * torch.pi * torch.e * cov))
    assert est.ci_low < truth < est.ci_high


def test_relative_fisher_information_of_two_gaussians():
    """I(f‖g) = |Σ⁻¹(μ_f − μ_g)|² for two Gaussians with equal covariances."""
    cov = torch.tensor([[1.0, 0.3], [0.3, 0.5]])
    mu = torch.tensor([0.5, -0.2])
    f, g = gaussian(cov, mu), gaussian(cov)
    gen = torch.Generator().manual_seed(3)
    x, y = f.sample(20_000, gen).numpy(), g.sample(20_000, gen).numpy()
    truth = float((torch.linalg.solve(cov, mu) ** 2).sum())
    est = relative_fisher_information(x, y, GaussianFitOracle())
    assert est.value == pytest.approx(truth, rel=0.05)  # parametric fit: O(1/√n) error


def test_dimension_mismatch(rng):
    with pytest.raises(ValueError, match="dimension"):
        relative_fisher_information(rng.normal(size=(50, 2)), rng.normal(size=(50, 3)), KDEOracle())
