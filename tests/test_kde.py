import numpy as np
import pytest
import scipy.stats as st
import torch

from scoreoracle import KDEOracle


@pytest.mark.parametrize("bandwidth", ["scott", "silverman", 0.4])
@pytest.mark.parametrize("d", [1, 3])
def test_log_density_equals_scipy(bandwidth, d, rng):
    x = rng.normal(size=(300, d)) @ np.triu(rng.normal(size=(d, d))) + 5.0
    q = x[:40] + rng.normal(size=(40, d))
    ref = st.gaussian_kde(x.T, bw_method=bandwidth).logpdf(q.T)
    # float64 throughout: agreement to round-off
    np.testing.assert_allclose(KDEOracle(bandwidth).log_density(x, q), ref, rtol=1e-10, atol=1e-10)


def test_score_equals_finite_difference_of_scipy(rng):
    x = rng.normal(size=(200, 2)) * [1.0, 3.0]
    q = rng.normal(size=(30, 2))
    kde = st.gaussian_kde(x.T)
    eps = 1e-5
    fd = np.stack([(kde.logpdf((q + eps * e).T) - kde.logpdf((q - eps * e).T)) / (2 * eps)
                   for e in np.eye(2)], axis=1)
    # central differences: O(eps²) truncation, ~1e-10/eps round-off
    np.testing.assert_allclose(KDEOracle().score(x, q), fd, atol=1e-6)


def test_chunk_size_does_not_change_results(rng):
    x = rng.normal(size=(500, 3))
    q = rng.normal(size=(123, 3))
    a = KDEOracle(chunk_size=7).log_density_and_score(x, q)
    b = KDEOracle(chunk_size=4096).log_density_and_score(x, q)
    np.testing.assert_allclose(a[0], b[0], rtol=1e-12)
    np.testing.assert_allclose(a[1], b[1], rtol=1e-12, atol=1e-12)


def test_bad_bandwidth_is_refused():
    for bad in ["scot", -1.0, 0.0, float("nan")]:
        with pytest.raises(ValueError, match="bandwidth"):
            KDEOracle(bad)


def test_float32_is_close_to_float64(rng):
    x = torch.from_numpy(rng.normal(size=(400, 2)))
    a = KDEOracle(dtype=torch.float32).score(x)
    b = KDEOracle().score(x)
    assert torch.allclose(a, b, atol=1e-4)
