import math

import numpy as np
import pytest
import scipy.stats as st
import torch

from scoreoracle.distributions import GaussianMixture, Laplace, StudentT, WarpedMixture, random_gmm


def autograd_score(dist, x):
    x = x.clone().requires_grad_(True)
    g, = torch.autograd.grad(dist.log_density(x).sum(), x)
    return g


@pytest.mark.parametrize("d", [1, 2, 3, 10])
def test_gmm_score_is_gradient_of_log_density(d):
    g = torch.Generator().manual_seed(d)
    gmm = random_gmm(4, d, generator=g)
    x = gmm.sample(64, g)
    # float64 autograd vs closed form: agreement to round-off
    assert torch.allclose(gmm.score(x), autograd_score(gmm, x), atol=1e-10, rtol=1e-10)


def test_gmm_log_density_matches_scipy():
    rng = np.random.default_rng(1)
    w = np.array([0.3, 0.7])
    mu = rng.normal(size=(2, 3))
    a = rng.normal(size=(2, 3, 3))
    cov = a @ a.transpose(0, 2, 1) + 0.5 * np.eye(3)
    x = rng.normal(size=(50, 3))
    ref = np.log(sum(w[c] * st.multivariate_normal(mu[c], cov[c]).pdf(x) for c in range(2)))
    got = GaussianMixture(w, mu, cov).log_density(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-12)


def test_gmm_sampling_moments():
    g = torch.Generator().manual_seed(3)
    w = torch.tensor([0.25, 0.75], dtype=torch.float64)
    mu = torch.tensor([[-2.0, 0.0], [1.0, 1.0]], dtype=torch.float64)
    cov = torch.stack([torch.eye(2), torch.tensor([[1.0, 0.5], [0.5, 2.0]])]).double()
    x = GaussianMixture(w, mu, cov).sample(200_000, g)
    mean = (w[:, None] * mu).sum(0)
    second = sum(w[c] * (cov[c] + torch.outer(mu[c], mu[c])) for c in range(2))
    true_cov = second - torch.outer(mean, mean)
    # Monte Carlo standard error of the mean ≈ sqrt(3/2e5) ≈ 0.004; 5 SE tolerance
    assert torch.allclose(x.mean(0), mean, atol=0.02)
    assert torch.allclose(torch.cov(x.T), true_cov, atol=0.05)


def test_random_gmm_family_matches_algorithm_1():
    g = torch.Generator().manual_seed(0)
    gmm = random_gmm(200, 3, generator=g)
    k = (gmm.weights > 0).sum(-1)
    assert k.min() >= 1 and k.max() <= 10 and len(torch.unique(k)) == 10
    active = gmm.weights > 0
    assert gmm.means[active].abs().max() <= 3.0
    eig = torch.linalg.eigvalsh(gmm.covariances[active])
    assert eig.min() >= 0.2 - 1e-9 and eig.max() <= 1.0 + 1e-9
    assert torch.allclose(gmm.weights.sum(-1), torch.ones(200, dtype=torch.float64))


def test_random_gmm_without_rotations_is_the_paper_table5_family():
    gmm = random_gmm(50, 100, modes=(2, 2), rotated=False, generator=torch.Generator().manual_seed(0))
    assert bool((gmm.weights > 0).all()) and gmm.weights.shape == (50, 2)
    variances = torch.diagonal(gmm.covariances, dim1=-2, dim2=-1)
    assert torch.equal(gmm.covariances, torch.diag_embed(variances))
    assert variances.min() >= 0.2 and variances.max() <= 1.0 and gmm.means.abs().max() <= 3.0


def test_student_t_matches_scipy_and_autograd():
    scale = torch.tensor([[2.0, 0.3], [0.3, 0.5]], dtype=torch.float64)
    t = StudentT(3, torch.tensor([1.0, -1.0]), scale)
    x = t.sample(1000, torch.Generator().manual_seed(0))
    ref = st.multivariate_t(loc=[1.0, -1.0], shape=scale.numpy(), df=3).logpdf(x.numpy())
    np.testing.assert_allclose(t.log_density(x).numpy(), ref, rtol=1e-10)
    assert torch.allclose(t.score(x), autograd_score(t, x), atol=1e-10)
    # Heavy tails: a KS test of the first coordinate against the marginal t law
    marginal = st.t(df=3, loc=1.0, scale=math.sqrt(2.0))
    assert st.kstest(x[:, 0].numpy(), marginal.cdf).pvalue > 1e-3


def test_laplace_matches_scipy_and_autograd():
    lap = Laplace(torch.tensor([0.5, -1.0]), torch.tensor([1.0, 2.0]))
    x = lap.sample(2000, torch.Generator().manual_seed(0))
    ref = st.laplace(loc=[0.5, -1.0], scale=[1.0, 2.0]).logpdf(x.numpy()).sum(-1)
    np.testing.assert_allclose(lap.log_density(x).numpy(), ref, rtol=1e-12)
    assert torch.allclose(lap.score(x), autograd_score(lap, x))
    assert st.kstest(x[:, 1].numpy(), st.laplace(loc=-1.0, scale=2.0).cdf).pvalue > 1e-3


@pytest.mark.parametrize("y", [3.0, 1e3, 2e3, 1e200])
def test_heavy_warp_is_finite_and_exact_far_out(y):
    """ψ(t) = sinh(a t)/a with a = 0.5: the closed form at y, far beyond where sinh(a y) overflows
    (the unselected branch used to turn the score into NaN from |a y| > 710)."""
    a = 0.5
    base = GaussianMixture(torch.ones(1, dtype=torch.float64), torch.zeros(1, 1, dtype=torch.float64),
                           torch.eye(1, dtype=torch.float64)[None])
    log_f, score = WarpedMixture(base, torch.tensor([a], dtype=torch.float64)).log_density_and_score(
        torch.tensor([[y]], dtype=torch.float64))
    x, stretch = math.asinh(a * y) / a, math.hypot(1.0, a * y)
    assert log_f.item() == pytest.approx(-0.5 * x * x - 0.5 * math.log(2 * math.pi) - math.log(stretch), rel=1e-12)
    assert score.item() == pytest.approx(-x / stretch - a * (a * y / stretch) / stretch, rel=1e-12)
