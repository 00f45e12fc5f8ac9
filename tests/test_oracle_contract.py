"""The oracle contract (shapes, types, chunking, equivariance, bad input) on an untrained core."""

import numpy as np
import pytest
import torch

from scoreoracle import DiScoFormerOracle, ExactOracle, GaussianMixture, KDEOracle, SingularSamplesError

from conftest import random_core


@pytest.fixture
def oracle():
    return DiScoFormerOracle(random_core(3), device="cpu", dtype=torch.float64)


@pytest.fixture
def data(rng):
    x = rng.normal(size=(200, 3)) @ np.array([[1.0, 0.3, 0.0], [0.0, 0.7, 0.2], [0.0, 0.0, 1.5]])
    return x, rng.normal(size=(37, 3))


def test_shapes_and_types(oracle, data):
    x, q = data
    lf, s = oracle.log_density_and_score(x, q)
    assert isinstance(lf, np.ndarray) and lf.shape == (37,) and s.shape == (37, 3)
    assert oracle.log_density(x).shape == (200,) and oracle.score(x).shape == (200, 3)
    t_lf, t_s = oracle.log_density_and_score(torch.tensor(x), torch.tensor(q, dtype=torch.float32))
    assert isinstance(t_lf, torch.Tensor) and t_lf.dtype == torch.float32  # outputs follow the queries
    np.testing.assert_allclose(t_lf.numpy(), lf, rtol=1e-5, atol=1e-5)
    lst = oracle.log_density(x.tolist(), q.tolist())
    np.testing.assert_allclose(lst, lf)
    np.testing.assert_allclose(oracle.fit(x).score_samples(q), lf)
    assert not hasattr(oracle, "score_samples")  # only the fitted oracle has scikit-learn's name
    np.testing.assert_allclose(oracle.density(x, q), np.exp(lf))


def test_queries_default_to_samples(oracle, data):
    x, _ = data
    a = oracle.log_density_and_score(x)
    b = oracle.log_density_and_score(x, x)
    np.testing.assert_allclose(a[0], b[0], rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(a[1], b[1], rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("chunk", [1, 7, 64])
def test_chunked_equals_unchunked(data, chunk):
    x, q = data
    core = random_core(3)
    full = DiScoFormerOracle(core, dtype=torch.float64, chunk_size=4096)
    part = DiScoFormerOracle(core, dtype=torch.float64, chunk_size=chunk)
    for queries in (q, None):
        a, b = full.log_density_and_score(x, queries), part.log_density_and_score(x, queries)
        np.testing.assert_allclose(a[0], b[0], rtol=1e-10, atol=1e-10)
        np.testing.assert_allclose(a[1], b[1], rtol=1e-10, atol=1e-10)


def test_queries_do_not_affect_each_other(oracle, data, rng):
    x, q = data
    lf, s = oracle.log_density_and_score(x, q)
    other = np.concatenate([q[:5], rng.normal(size=(50, 3)) * 10])
    lf2, s2 = oracle.log_density_and_score(x, other)
    np.testing.assert_allclose(lf2[:5], lf[:5], rtol=1e-10)
    np.testing.assert_allclose(s2[:5], s[:5], rtol=1e-10, atol=1e-12)


def test_permutation_equivariance(oracle, data, rng):
    x, q = data
    lf, s = oracle.log_density_and_score(x, q)
    px = rng.permutation(len(x))
    pq = rng.permutation(len(q))
    lf2, s2 = oracle.log_density_and_score(x[px], q[pq])
    np.testing.assert_allclose(lf2, lf[pq], rtol=1e-10)
    np.testing.assert_allclose(s2, s[pq], rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("kind", ["translation", "isotropic", "anisotropic"])
def test_affine_equivariance_is_exact(oracle, data, kind):
    x, q = data
    lf, s = oracle.log_density_and_score(x, q)
    if kind == "translation":
        scale, shift = np.ones(3), np.array([5.0, -3.0, 100.0])
    elif kind == "isotropic":
        scale, shift = np.full(3, 7.5), np.zeros(3)
    else:
        scale, shift = np.array([0.01, 3.0, 250.0]), np.array([1.0, 2.0, 3.0])
    lf2, s2 = oracle.log_density_and_score(x * scale + shift, q * scale + shift)
    # log f'(Sx + b) = log f(x) − log|det S|;  s' = s S⁻¹.  float64 core: round-off only
    np.testing.assert_allclose(lf2, lf - np.log(scale).sum(), rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(s2, s / scale, rtol=1e-8, atol=1e-10)


def test_far_from_origin_float64_inputs(data):
    """Shift 1e4, spread 1e-3: whitening in float64 before the float32 core loses nothing."""
    x, q = data
    oracle = DiScoFormerOracle(random_core(3))  # float32 core
    lf, s = oracle.log_density_and_score(x, q)
    lf2, s2 = oracle.log_density_and_score(1e4 + 1e-3 * x, 1e4 + 1e-3 * q)
    np.testing.assert_allclose(lf2, lf - 3 * np.log(1e-3), rtol=1e-6, atol=1e-5)
    np.testing.assert_allclose(s2, s / 1e-3, rtol=1e-5, atol=1e-2)


BAD_SAMPLES = {
    "nan": (lambda x: np.where(np.arange(len(x))[:, None] == 3, np.nan, x), ValueError, "NaN"),
    "inf": (lambda x: np.where(np.arange(len(x))[:, None] == 3, np.inf, x), ValueError, "infinite"),
    "rank": (lambda x: x[None, None], ValueError, "rank 4"),
    "transposed": (lambda x: x.T, ValueError, "transposing|samples.T"),
    "too few": (lambda x: x[:4], ValueError, "at least d \\+ 2"),
    "duplicates": (lambda x: np.repeat(x[:1], 50, axis=0), ValueError, "only 1 distinct point"),
    "few distinct": (lambda x: np.repeat(x[:4], 10, axis=0), ValueError, "only 4 distinct point"),
    "collinear": (lambda x: np.outer(np.arange(50.0), [1.0, 2.0, 3.0]), SingularSamplesError, "subspace"),
    "strings": (lambda x: np.array([["a", "b", "c"]] * 10), TypeError, "numeric"),
}


@pytest.mark.parametrize("case", sorted(BAD_SAMPLES))
@pytest.mark.parametrize("make_oracle", [lambda: DiScoFormerOracle(random_core(3)), lambda: KDEOracle()])
def test_bad_samples_get_clear_errors(case, make_oracle, data):
    x, _ = data
    transform, exc, pattern = BAD_SAMPLES[case]
    with pytest.raises(exc, match=pattern):
        make_oracle().log_density_and_score(transform(x))


def test_mismatched_query_dimension(oracle, data):
    x, _ = data
    with pytest.raises(ValueError, match="queries have dimension 2"):
        oracle.score(x, np.zeros((5, 2)))
    with pytest.raises(ValueError, match="NaN"):
        oracle.score(x, np.full((5, 3), np.nan))


def test_unsupported_dimension_names_the_available_ones(data):
    with pytest.raises(ValueError, match="no checkpoint for dimension d = 3.*available dimensions: \\[2\\]"):
        DiScoFormerOracle(random_core(2)).score(data[0])
    # a checkpoint folder without an all-dimension core: tests/test_checkpoint.py


def test_exact_oracle_returns_the_distribution(data):
    x, q = data
    gmm = GaussianMixture(torch.tensor([1.0]), torch.zeros(1, 3), torch.eye(3)[None])
    lf, s = ExactOracle(gmm).log_density_and_score(x, q)
    np.testing.assert_allclose(s, -q, atol=1e-12)
    np.testing.assert_allclose(lf, -0.5 * (q ** 2).sum(1) - 1.5 * np.log(2 * np.pi), atol=1e-12)


def test_adapt_lowers_consistency_loss_and_returns_a_copy(data):
    from scoreoracle.oracles.adaptation import consistency_loss
    from scoreoracle.whitening import fit_whitening
    x, q = data
    oracle = DiScoFormerOracle(random_core(3))
    before = oracle.log_density_and_score(x, q)
    adapted = oracle.adapt(x, steps=8, lr=1e-3, held_out_fraction=0.35)  # 70 of 200 held out
    assert adapted.adaptation.kept and adapted.adaptation.held_out.candidate < adapted.adaptation.held_out.reference
    z = fit_whitening(torch.from_numpy(x)).apply(torch.from_numpy(x)).float().unsqueeze(0)
    assert consistency_loss(adapted.core, z, z) < 0.9 * consistency_loss(oracle.core, z, z)
    after = oracle.log_density_and_score(x, q)  # the original is untouched
    np.testing.assert_array_equal(before[0], after[0])
    assert not np.allclose(adapted.log_density(x, q), before[0])
    with pytest.raises(ValueError, match="steps"):
        oracle.adapt(x, steps=0)


def test_rotation_average_is_exact_for_translation_and_scaling_and_chunking(data):
    x, q = data
    core = random_core(3)
    avg = DiScoFormerOracle(core, dtype=torch.float64, rotations=4)
    lf, s = avg.log_density_and_score(x, q)
    lf2, s2 = avg.log_density_and_score(3.0 * x + 1.0, 3.0 * q + 1.0)
    np.testing.assert_allclose(lf2, lf - 3 * np.log(3.0), rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(s2, s / 3.0, rtol=1e-8, atol=1e-10)
    chunked = DiScoFormerOracle(core, dtype=torch.float64, rotations=4, chunk_size=5).log_density_and_score(x, q)
    np.testing.assert_allclose(chunked[1], s, rtol=1e-10, atol=1e-12)
    # the frame average differs from the single frame (the untrained core is not rotation invariant)
    single = DiScoFormerOracle(core, dtype=torch.float64).log_density_and_score(x, q)
    assert not np.allclose(single[1], s)


def test_rotation_average_reduces_rotation_error(data):
    from scoreoracle.distributions import random_rotations
    x, q = data
    rot = random_rotations(1, 3, torch.Generator().manual_seed(5))[0].numpy()

    def rotation_error(oracle):
        s = oracle.score(x, q)
        s_rot = oracle.score(x @ rot.T, q @ rot.T)
        return ((s_rot - s @ rot.T) ** 2).sum() / (s ** 2).sum()
    core = random_core(3)
    single = rotation_error(DiScoFormerOracle(core, dtype=torch.float64))
    many = rotation_error(DiScoFormerOracle(core, dtype=torch.float64, rotations=16))
    assert many < 0.5 * single
