"""Many sample sets in one call: (B, n, d) samples and (B, m, d) queries equal B separate calls."""

import numpy as np
import pytest
import torch

from scoreoracle import DiScoFormerOracle, ExactOracle, GaussianFitOracle, GaussianMixture, KDEOracle
from scoreoracle.models import EquivariantConfig, EquivariantCore

from conftest import random_core


def equivariant_oracle():
    torch.manual_seed(0)
    core = EquivariantCore(EquivariantConfig(width=32, depth=2, heads=2, head_width=8, ffn=64))
    for p in core.parameters():
        if p.ndim >= 2:
            torch.nn.init.normal_(p, std=0.05)
    return DiScoFormerOracle(core, dtype=torch.float64)


ORACLES = {
    "transformer": lambda: DiScoFormerOracle(random_core(2), dtype=torch.float64),
    "equivariant": equivariant_oracle,
    "kde": lambda: KDEOracle(),
    "gaussian fit": lambda: GaussianFitOracle(),
    "exact": lambda: ExactOracle(GaussianMixture(torch.ones(1), torch.zeros(1, 2), torch.eye(2)[None])),
}


@pytest.fixture
def sets():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 120, 2)) * np.array([[[1.0, 0.5]], [[2.0, 1.0]], [[0.3, 0.3]]]) + [[[0, 0]], [[5, 1]], [[-1, 2]]]
    return x, rng.normal(size=(3, 17, 2))


@pytest.mark.parametrize("name", sorted(ORACLES))
def test_batched_calls_equal_separate_calls(name, sets):
    oracle = ORACLES[name]()
    x, q = sets
    log_f, score = oracle.fit(x).log_density_and_score(q)
    assert log_f.shape == (3, 17) and score.shape == (3, 17, 2)
    at_samples = oracle.log_density_and_score(x)
    for b in range(3):
        lf_b, s_b = oracle.log_density_and_score(x[b], q[b])
        # float64 cores: one batched model call and B single calls agree to round-off
        np.testing.assert_allclose(log_f[b], lf_b, rtol=1e-10, atol=1e-10)
        np.testing.assert_allclose(score[b], s_b, rtol=1e-9, atol=1e-10)
        np.testing.assert_allclose(at_samples[1][b], oracle.score(x[b]), rtol=1e-9, atol=1e-10)
    lists = oracle.fit(list(x)).score(list(q))  # lists of equal-shape sets are batches too
    np.testing.assert_allclose(lists, score, rtol=1e-12, atol=1e-12)


def test_weighted_batches_equal_weighted_separate_calls(sets):
    x, q = sets
    w = np.random.default_rng(1).uniform(0.1, 1.0, size=(3, 120))
    oracle = ORACLES["transformer"]()
    score = oracle.fit(x, weights=w).score(q)
    for b in range(3):
        np.testing.assert_allclose(score[b], oracle.score(x[b], q[b], weights=w[b]), rtol=1e-9, atol=1e-10)


def test_bad_batches_are_refused_by_name(sets):
    x, q = sets
    oracle = KDEOracle()
    with pytest.raises(ValueError, match="ragged batch"):
        oracle.fit([x[0], x[1][:100]])
    fitted = oracle.fit(x)
    with pytest.raises(ValueError, match="hold 2 sets but 3 sample sets were fitted"):
        fitted.score(q[:2])
    shared = fitted.score(q[0])  # one (m, d) query set is asked of every fitted set
    np.testing.assert_allclose(shared[2], oracle.score(x[2], q[0]), rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match="fitted to one sample set"):
        oracle.fit(x[0]).score(q)
    with pytest.raises(ValueError, match="weights must have shape \\(3, 120\\)"):
        oracle.fit(x, weights=np.ones(120))
    with pytest.raises(ValueError, match="dimension"):
        fitted.score(np.zeros((3, 5, 3)))
