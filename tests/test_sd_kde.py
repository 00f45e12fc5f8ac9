import numpy as np
import pytest
import torch

from scoreoracle import ExactOracle, GaussianMixture, KDEOracle
from solvers import sd_kde
from solvers.sd_kde import sd_kde_bandwidth

M1 = GaussianMixture(torch.tensor([0.4, 0.6]), torch.tensor([[-2.0], [2.0]], dtype=torch.float64),
                     torch.tensor([[[0.25]], [[1.0]]]))
GRID = np.arange(-8, 8.0001, 0.05)[:, None]


def mise(estimate, truth=M1):
    """∫(f̂ − f)² on [−8, 8] by Riemann sum, step 0.05 (the SD-KDE paper's grid)."""
    f = torch.exp(truth.log_density(torch.from_numpy(GRID))).numpy()
    return float(((estimate.density(GRID) - f) ** 2).sum() * 0.05)


def test_estimate_is_a_density(rng):
    x = M1.sample(500, torch.Generator().manual_seed(0)).numpy()
    est = sd_kde(x, ExactOracle(M1))
    dens = est.density(GRID)
    assert (dens >= 0).all()
    assert dens.sum() * 0.05 == pytest.approx(1.0, abs=1e-6)


def test_bandwidth_rule_1d(rng):
    x = rng.normal(size=(1000, 1)) * 2.0
    std = x.std(ddof=1)
    iqr = np.subtract(*np.quantile(x, [0.75, 0.25], method="inverted_cdf"))
    assert sd_kde_bandwidth(x) == pytest.approx(0.4 * min(std, iqr / 1.34) * 1000 ** (-1 / 9))


def test_empirical_variant_is_half_a_mean_shift_step(rng):
    x = rng.normal(size=(300, 2))
    h = 0.5
    est = sd_kde(x, "empirical", bandwidth=h)
    w = np.exp(-((x[:, None] - x[None]) ** 2).sum(-1) / (2 * h * h))
    mean_shift = w @ x / w.sum(1, keepdims=True)
    np.testing.assert_allclose(est.centers, 0.5 * (x + mean_shift), atol=1e-12)


def test_exact_score_beats_kde_on_m1():
    """On M1 at n = 1000, SD-KDE with the exact score has a far smaller MISE than Silverman's KDE."""
    ratios = []
    for seed in range(5):
        x = M1.sample(1000, torch.Generator().manual_seed(seed)).numpy()
        sd = mise(sd_kde(x, ExactOracle(M1)))
        kde = mise(SilvermanKDE(x))
        ratios.append(kde / sd)
    assert np.median(ratios) > 5  # the gain is about an order of magnitude; 5 leaves room for seed noise


class SilvermanKDE:
    """1-D KDE with Silverman's rule h = 0.9·min(std, IQR/1.34)·n^(−1/5), as in the SD-KDE paper."""

    def __init__(self, x):
        iqr = np.subtract(*np.percentile(x, [75, 25]))
        self.x, self.h = x, 0.9 * min(x.std(ddof=1), iqr / 1.34) * len(x) ** (-0.2)

    def density(self, q):
        return np.exp(KDEOracle(self.h, isotropic=True).log_density(self.x, q))


def test_bad_inputs(rng):
    with pytest.raises(ValueError, match="bandwidth"):
        sd_kde(rng.normal(size=(100, 1)), "empirical", bandwidth=-1.0)
    with pytest.raises(ValueError, match="oracle"):
        sd_kde(rng.normal(size=(100, 1)), "exact")
    with pytest.raises(ValueError, match="NaN"):
        sd_kde(np.full((100, 1), np.nan))
