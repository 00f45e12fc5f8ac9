"""The oracle contract, checked against independent references.

Protocols, fitted vs two-argument calls, array types and devices, autograd against finite
differences and closed forms, weights against scipy's weighted KDE and numpy's weighted moments,
weighted attention against the multiset it stands for, exact affine equivariance of the
equivariant core, the runtime's independence from the training code, and progress bars.

Everything runs on tiny untrained cores (``random_core`` and ``equivariant_core``); no shipped
checkpoint is needed except in the subprocess of ``test_load_imports_no_training_code``.
"""

import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from scipy.stats import gaussian_kde

import scoreoracle
import scoreoracle.oracles
import solvers
from scoreoracle import (ExactOracle, FittedScoreOracle, GaussianFitOracle, GaussianMixture, KDEOracle,
                         ScoreOracle)
from scoreoracle.models import EquivariantConfig, EquivariantCore
from scoreoracle.whitening import canonical_rotation, fit_whitening
from solvers.fisher import score_and_divergence

from conftest import random_core

D = 2
MU = np.array([0.5, -1.0])
SIGMA = np.array([[1.0, 0.6], [0.6, 1.0]])


# one thread for torch and numba while this module runs (see conftest.single_thread)
pytestmark = pytest.mark.usefixtures("single_thread")


def equivariant_core(seed: int = 0) -> EquivariantCore:
    """A small untrained equivariant core whose 2-D weights are N(0, 0.05²), so that its outputs
    depend on every weight (a fresh core is exactly the Gaussian fit).  (With std 0.1 this seed
    gives log f ≈ +350 at the data, whose density overflows float32: 0.05 keeps |log f| ≈ 10.)"""
    torch.manual_seed(seed)
    core = EquivariantCore(EquivariantConfig(width=32, depth=2, heads=2, head_width=8, ffn=64))
    with torch.no_grad():
        for p in core.parameters():
            if p.ndim == 2:
                torch.nn.init.normal_(p, std=0.05)
    return core.eval()


def gaussian(mu=MU, sigma=SIGMA) -> GaussianMixture:
    return GaussianMixture(torch.tensor([1.0], dtype=torch.float64), torch.tensor(mu)[None],
                           torch.tensor(sigma)[None])


# every oracle kind; each factory builds a fresh oracle (and a fresh core: a core is moved to the
# oracle's dtype in place, so cores are never shared between oracles here)
ORACLES = {
    "discoformer": lambda: scoreoracle.DiScoFormerOracle(random_core(D)),
    "equivariant": lambda: scoreoracle.oracles.DiScoFormerOracle(equivariant_core()),
    "kde": lambda: KDEOracle(),
    "exact": lambda: ExactOracle(gaussian()),
    "gaussian-fit": lambda: GaussianFitOracle(),
    "blob": lambda: solvers.BlobOracle(),
}

# float32 cores: the untrained equivariant core is sharp (|score| up to ~60), and its float32
# outputs differ from the float64 ones by ~1e-6 of their largest magnitude; any change of the
# summation order (chunks, the at-samples path) moves them by as much.  So float32 results are
# compared at 1e-5 × the largest |value| (~100 float32 ulps); float64 oracles at round-off.
FLOAT32_CORE = {"discoformer", "equivariant"}


def assert_close(actual, expected, name, float64_tol=1e-10):
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape
    if name in FLOAT32_CORE:
        scale = max(1.0, float(np.abs(expected).max(initial=0.0)))
        np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-5 * scale)
    else:
        np.testing.assert_allclose(actual, expected, rtol=float64_tol, atol=float64_tol)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    x = MU + rng.normal(size=(80, D)) @ np.linalg.cholesky(SIGMA).T
    q = MU + 1.5 * rng.normal(size=(13, D))
    return x, q


# --- 1. protocols -----------------------------------------------------------------------------

def test_protocols_are_runtime_checkable():
    for protocol in (ScoreOracle, FittedScoreOracle):
        assert getattr(protocol, "_is_runtime_protocol", False)
    assert not isinstance(object(), ScoreOracle)  # the isinstance checks below can fail
    assert not isinstance(object(), FittedScoreOracle)


@pytest.mark.parametrize("name", sorted(ORACLES))
def test_every_oracle_satisfies_the_protocols(name, data):
    x, _ = data
    oracle = ORACLES[name]()
    assert isinstance(oracle, ScoreOracle)
    fitted = oracle.fit(x)
    assert isinstance(fitted, FittedScoreOracle)
    assert not isinstance(fitted, ScoreOracle)  # a fitted oracle cannot be refitted
    assert fitted.dim == D and isinstance(fitted.differentiable, bool)


# --- 2. fitted vs two-argument calls, one-argument form, chunking -----------------------------

@pytest.mark.parametrize("name", sorted(ORACLES))
def test_fitted_calls_equal_two_argument_calls(name, data):
    x, q = data
    oracle = ORACLES[name]()
    fitted = oracle.fit(x)
    for method in ("score", "log_density", "density"):
        assert_close(getattr(fitted, method)(q), getattr(oracle, method)(x, q), name)
    lf, s = fitted.log_density_and_score(q)
    lf2, s2 = oracle.log_density_and_score(x, q)
    assert_close(lf, lf2, name)
    assert_close(s, s2, name)
    # the one-argument form answers at the samples (a separate, cheaper code path)
    for method in ("score", "log_density", "density"):
        assert_close(getattr(oracle, method)(x), getattr(fitted, method)(x), name)
    lf0, s0 = oracle.log_density_and_score(x)
    lf1, s1 = fitted.log_density_and_score(x)
    assert_close(lf0, lf1, name)
    assert_close(s0, s1, name)
    # scikit-learn's name for log f is on the fitted oracle only
    assert not hasattr(oracle, "score_samples")
    np.testing.assert_array_equal(fitted.score_samples(q), fitted.log_density(q))
    np.testing.assert_allclose(fitted.density(q), np.exp(fitted.log_density(q)), rtol=1e-15)


def _chunked(factory, chunk):
    return factory() if chunk is None else factory(chunk_size=chunk)


CHUNKED = {
    "discoformer": lambda **kw: scoreoracle.DiScoFormerOracle(random_core(D), **kw),
    "equivariant": lambda **kw: scoreoracle.DiScoFormerOracle(equivariant_core(), **kw),
    "kde": lambda **kw: KDEOracle(**kw),
}


@pytest.mark.parametrize("chunk", [1, 7])
@pytest.mark.parametrize("name", sorted(CHUNKED))
def test_chunk_size_does_not_change_results(name, chunk, data):
    x, q = data
    default = _chunked(CHUNKED[name], None)
    chunked = _chunked(CHUNKED[name], chunk)
    assert chunked.chunk_size == chunk and default.chunk_size > len(x)
    # chunks change only the summation order: float32 cores see float32 round-off (see
    # assert_close), the float64 KDE round-off only (1e-12)
    for queries in (q, None):
        a = default.log_density_and_score(x, queries)
        b = chunked.log_density_and_score(x, queries)
        assert_close(b[0], a[0], name, 1e-12)
        assert_close(b[1], a[1], name, 1e-12)


# --- 3. array types, dtypes and devices ---------------------------------------------------------

def _kind(value):
    if isinstance(value, torch.Tensor):
        return ("torch", value.dtype, value.device.type)
    assert isinstance(value, np.ndarray), type(value)
    return ("numpy", value.dtype)


def _check_outputs(oracle, samples, queries, expected, m):
    """Every output of the two-argument, fitted and (queries=None) forms has the expected kind."""
    fitted = oracle.fit(samples)
    calls = [oracle.log_density_and_score(samples, queries), fitted.log_density_and_score(queries)]
    for lf, s in calls:
        assert _kind(lf) == expected and _kind(s) == expected
        assert tuple(lf.shape) == (m,) and tuple(s.shape) == (m, D)
    for out in (oracle.score(samples, queries), oracle.log_density(samples, queries),
                oracle.density(samples, queries), fitted.score(queries), fitted.density(queries),
                fitted.score_samples(queries)):
        assert _kind(out) == expected


CASTS = {  # name: (cast of an array, expected output kind)
    "numpy-float32": (lambda a: a.astype(np.float32), ("numpy", np.dtype(np.float32))),
    "numpy-float64": (lambda a: a, ("numpy", np.dtype(np.float64))),
    "numpy-int": (lambda a: np.round(1000 * a).astype(np.int64), ("numpy", np.dtype(np.float64))),  # no repeats
    "torch-float32": (lambda a: torch.tensor(a, dtype=torch.float32), ("torch", torch.float32, "cpu")),
    "torch-float64": (lambda a: torch.tensor(a, dtype=torch.float64), ("torch", torch.float64, "cpu")),
    "list": (lambda a: a.tolist(), ("numpy", np.dtype(np.float64))),
}


@pytest.mark.parametrize("cast", sorted(CASTS))
@pytest.mark.parametrize("name", sorted(ORACLES))
def test_outputs_follow_the_input_type(name, cast, data):
    x, q = data
    to, expected = CASTS[cast]
    oracle = ORACLES[name]()
    _check_outputs(oracle, to(x), to(q), expected, len(q))
    lf, s = oracle.log_density_and_score(to(x))  # queries omitted: outputs follow the samples
    assert _kind(lf) == expected and _kind(s) == expected and tuple(s.shape) == (len(x), D)
    # the values do not depend on the container (float32 inputs are rounded, hence the loose check)
    ref = oracle.score(np.asarray(to(x), dtype=np.float64), np.asarray(to(q), dtype=np.float64))
    np.testing.assert_allclose(np.asarray(oracle.score(to(x), to(q)), dtype=np.float64), ref,
                               rtol=1e-3 if "float32" in cast else 1e-10,
                               atol=1e-3 * np.abs(ref).max() if "float32" in cast else 1e-10)


@pytest.mark.parametrize("name", sorted(ORACLES))
def test_outputs_follow_the_queries_not_the_samples(name, data):
    x, q = data
    oracle = ORACLES[name]()
    _check_outputs(oracle, x, torch.tensor(q, dtype=torch.float32), ("torch", torch.float32, "cpu"), len(q))
    _check_outputs(oracle, torch.tensor(x), q.astype(np.float32), ("numpy", np.dtype(np.float32)), len(q))
    _check_outputs(oracle, x.astype(np.float32), q, ("numpy", np.dtype(np.float64)), len(q))


@pytest.mark.parametrize("name", sorted(ORACLES))
def test_empty_queries(name, data):
    x, _ = data
    oracle = ORACLES[name]()
    for empty, expected in ((np.zeros((0, D)), ("numpy", np.dtype(np.float64))),
                            (np.zeros((0, D), dtype=np.float32), ("numpy", np.dtype(np.float32))),
                            (torch.zeros(0, D, dtype=torch.float32), ("torch", torch.float32, "cpu")),
                            (torch.zeros(0, D, dtype=torch.float64), ("torch", torch.float64, "cpu"))):
        _check_outputs(oracle, x, empty, expected, 0)


# --- 4. autograd ------------------------------------------------------------------------------

DIFFERENTIABLE = {
    "discoformer": lambda: scoreoracle.DiScoFormerOracle(random_core(D), dtype=torch.float64),
    "equivariant": lambda: scoreoracle.DiScoFormerOracle(equivariant_core(), dtype=torch.float64),
    "kde": lambda: KDEOracle(),
    "exact": lambda: ExactOracle(gaussian()),
    "gaussian-fit": lambda: GaussianFitOracle(),
}


def autograd_divergence(fitted, q):
    """Σ_k ∂s_k/∂q_k at q (m, d) by autograd, and the score."""
    qt = torch.tensor(q, dtype=torch.float64, requires_grad=True)
    s = fitted.score(qt)
    assert s.requires_grad and s.grad_fn is not None
    div = sum(torch.autograd.grad(s[:, k].sum(), qt, retain_graph=True)[0][:, k] for k in range(q.shape[1]))
    return div.detach().numpy(), s.detach().numpy()


def finite_difference_divergence(fitted, q, h=1e-4):
    """Σ_k ∂s_k/∂q_k by the 5-point central stencil (truncation O(h⁴))."""
    div = np.zeros(len(q))
    for k in range(q.shape[1]):
        e = np.zeros(q.shape[1])
        e[k] = h
        sk = [fitted.score(q + c * e)[:, k] for c in (2, 1, -1, -2)]
        div += (-sk[0] + 8 * sk[1] - 8 * sk[2] + sk[3]) / (12 * h)
    return div


@pytest.mark.parametrize("name", sorted(DIFFERENTIABLE))
def test_autograd_divergence_equals_finite_differences(name, data):
    x, q = data
    fitted = DIFFERENTIABLE[name]().fit(x)
    assert fitted.differentiable
    lf = fitted.log_density(torch.tensor(q, requires_grad=True))
    assert lf.requires_grad and lf.dtype == torch.float64
    div, s = autograd_divergence(fitted, q)
    np.testing.assert_allclose(s, fitted.score(q), rtol=1e-12, atol=1e-12)  # grad mode changes nothing
    fd = finite_difference_divergence(fitted, q)
    # 5-point stencil at h = 1e-4: truncation h⁴·|∂⁵s| (the sharp untrained equivariant core has
    # |∇·s| ≈ 100 and converges as h⁴, measured 2e-8 relative at h = 3e-4), round-off
    # ε·|s|/h ≈ 1e-10; 1e-6 of the largest |divergence| covers both with margin
    np.testing.assert_allclose(div, fd, rtol=0, atol=1e-6 * max(1.0, np.abs(div).max()))


def test_exact_gaussian_divergence_is_minus_the_trace_of_the_precision(data):
    x, q = data
    div, _ = autograd_divergence(ExactOracle(gaussian()).fit(x), q)
    # ∇·(−Σ⁻¹(x − μ)) = −tr Σ⁻¹ everywhere; autograd of the closed form: round-off only
    np.testing.assert_allclose(div, -np.trace(np.linalg.inv(SIGMA)), rtol=1e-13)


@pytest.mark.parametrize("name", ["kde", "exact", "gaussian-fit"])
def test_gradient_of_log_density_is_the_score(name, data):
    """The closed-form scores are the gradients of the closed-form log-densities."""
    x, q = data
    fitted = DIFFERENTIABLE[name]().fit(x)
    qt = torch.tensor(q, requires_grad=True)
    lf, s = fitted.log_density_and_score(qt)
    grad, = torch.autograd.grad(lf.sum(), qt)
    # two float64 evaluations of the same function: round-off of O(1) values
    np.testing.assert_allclose(grad.numpy(), s.detach().numpy(), rtol=1e-10, atol=1e-12)


def test_non_differentiable_oracle_refuses_requires_grad(data):
    x, q = data
    oracle = solvers.BlobOracle()
    fitted = oracle.fit(x)
    assert fitted.differentiable is False
    qt = torch.tensor(q, requires_grad=True)
    for call in (lambda: fitted.score(qt), lambda: fitted.log_density_and_score(qt),
                 lambda: oracle.score(x, qt), lambda: oracle.log_density(torch.tensor(x, requires_grad=True))):
        with pytest.raises(TypeError, match="not differentiable"):
            call()
    fitted.score(qt.detach())  # without requires_grad it answers


class NonDifferentiableProxy:
    """A fitted oracle seen through a proxy that declares it non-differentiable."""

    differentiable = False

    def __init__(self, fitted):
        self._fitted = fitted

    def __getattr__(self, name):
        return getattr(self._fitted, name)


# (not the untrained equivariant core: its curvature is so sharp that the solver's fixed step
# 1e-3 × std leaves a 1e-3 relative truncation error, a property of the step, not a defect)
@pytest.mark.parametrize("name", ["kde", "discoformer", "gaussian-fit"])
def test_score_and_divergence_autograd_equals_finite_differences(name, data):
    x, _ = data
    fitted = DIFFERENTIABLE[name]().fit(x)
    s_ad, div_ad = score_and_divergence(fitted, x)
    s_fd, div_fd = score_and_divergence(NonDifferentiableProxy(fitted), x)
    np.testing.assert_allclose(s_ad, s_fd, rtol=1e-12, atol=1e-12)  # the same scores either way
    # the finite-difference path is 2nd order at h = 1e-3 × std: truncation h²/6·|∂³s|, which
    # for these data is < 1e-5 of the largest |divergence| (measured 1.5e-6 for the KDE)
    np.testing.assert_allclose(div_fd, div_ad, rtol=0, atol=1e-4 * np.abs(div_ad).max())


# --- 5. weights ---------------------------------------------------------------------------------

def weighted_data(d, n=60, seed=1):
    rng = np.random.default_rng(seed + d)
    mixing = np.eye(d) + 0.4 * rng.normal(size=(d, d))  # well-conditioned, correlated
    x = 2.0 + rng.normal(size=(n, d)) @ mixing
    w = rng.uniform(0.1, 3.0, size=n)
    q = 2.0 + 1.3 * rng.normal(size=(25, d)) @ mixing
    return x, w, q


@pytest.mark.parametrize("bandwidth", ["scott", "silverman", 0.4])
@pytest.mark.parametrize("d", [1, 2, 3])
def test_weighted_kde_equals_scipy(d, bandwidth):
    x, w, q = weighted_data(d)
    reference = gaussian_kde(x.T, bw_method=bandwidth, weights=w)
    fitted = KDEOracle(bandwidth).fit(x, weights=w)
    assert fitted.h == pytest.approx(reference.factor, rel=1e-14)  # scipy's n_eff-based factor
    # the same estimator in two float64 implementations: round-off of O(10) log-densities
    np.testing.assert_allclose(fitted.log_density(q), reference.logpdf(q.T), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(fitted.density(q), reference.pdf(q.T), rtol=1e-11, atol=0)
    # weights are relative: any positive scale gives the same estimate
    for c in (1e-7, 3.0, 1e9):
        rescaled = KDEOracle(bandwidth).fit(x, weights=c * w)
        np.testing.assert_allclose(rescaled.log_density(q), fitted.log_density(q), rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(rescaled.score(q), fitted.score(q), rtol=1e-11, atol=1e-12)


@pytest.mark.parametrize("bandwidth", ["scott", 0.4])
@pytest.mark.parametrize("d", [1, 2, 3])
def test_zero_weights_drop_samples(d, bandwidth):
    x, w, q = weighted_data(d)
    w[::3] = 0.0
    keep = w > 0
    with_zeros = KDEOracle(bandwidth).fit(x, weights=w)
    dropped = KDEOracle(bandwidth).fit(x[keep], weights=w[keep])
    assert with_zeros.h == pytest.approx(dropped.h, rel=1e-14)  # same n_eff, same factor
    # round-off only (the whitening rescales by the largest deviation of all rows)
    np.testing.assert_allclose(with_zeros.log_density(q), dropped.log_density(q), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(with_zeros.score(q), dropped.score(q), rtol=1e-10, atol=1e-12)
    reference = gaussian_kde(x[keep].T, bw_method=bandwidth, weights=w[keep]).logpdf(q.T)
    np.testing.assert_allclose(with_zeros.log_density(q), reference, rtol=1e-12, atol=1e-12)


BAD_WEIGHTS = {
    "negative": lambda w: np.where(np.arange(len(w)) == 3, -1.0, w),
    "nan": lambda w: np.where(np.arange(len(w)) == 3, np.nan, w),
    "inf": lambda w: np.where(np.arange(len(w)) == 3, np.inf, w),
    "wrong length": lambda w: w[:-1],
    "matrix": lambda w: np.ones((len(w), 2)),
    "all zero": lambda w: np.zeros_like(w),
    "too few positive": lambda w: np.where(np.arange(len(w)) < 3, 1.0, 0.0),  # 3 < d + 2 = 4
}


@pytest.mark.parametrize("case", sorted(BAD_WEIGHTS))
@pytest.mark.parametrize("name", ["kde", "discoformer", "gaussian-fit"])
def test_bad_weights_raise_value_error_naming_weights(name, case):
    x, w, _ = weighted_data(2)
    with pytest.raises(ValueError, match="weight"):
        ORACLES[name]().fit(x, weights=BAD_WEIGHTS[case](w))
    with pytest.raises(ValueError, match="weight"):
        ORACLES[name]().score(x, weights=BAD_WEIGHTS[case](w))


@pytest.mark.parametrize("d", [1, 2, 3])
def test_weighted_whitening_moments_equal_numpy(d):
    x, w, _ = weighted_data(d)
    whitening = fit_whitening(torch.tensor(x), torch.tensor(w / w.sum()))
    mean = whitening.mean.numpy().reshape(d)
    matrix = whitening.matrix.numpy()
    covariance = np.linalg.inv(matrix @ matrix.T)  # A Aᵀ = C⁻¹
    # float64 moments of O(1) data; the covariance passes through one d × d inversion
    np.testing.assert_allclose(mean, np.average(x, axis=0, weights=w), rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(covariance, np.atleast_2d(np.cov(x.T, aweights=w)), rtol=1e-11, atol=1e-13)
    # and the whitened weighted sample has mean 0 and covariance I under the same weights
    z = whitening.apply(torch.tensor(x)).numpy()
    np.testing.assert_allclose(np.atleast_2d(np.cov(z.T, aweights=w)), np.eye(d), atol=1e-12)


def test_refined_whitening_is_exact_to_round_off_on_ill_conditioned_samples():
    """Correlated samples with scales 1 … 1e-5 (κ(C) = 1e10): the covariance pass whitens them to
    2e-7; whitening its own output once more leaves 1e-12, with the log-determinant kept exact."""
    rng = np.random.default_rng(0)
    d = 20
    basis = np.linalg.qr(rng.normal(size=(d, d)))[0]
    x = torch.tensor((rng.normal(size=(500, d)) * np.logspace(0, -5, d)) @ basis.T)
    first = fit_whitening(x)
    refined = first.refined(x)
    def error(w):
        return float((torch.cov(w.apply(x).T) - torch.eye(d, dtype=torch.float64)).abs().max())
    assert error(first) > 1e-8 and error(refined) < 1e-11
    assert abs(float(refined.log_det - torch.linalg.slogdet(refined.matrix)[1])) < 1e-10


@pytest.mark.parametrize("d", [1, 3, 20])
def test_canonical_rotation_fixes_the_coordinates_of_any_orientation(d):
    """The frame is orthogonal, signs every axis so the third moment along it is ≥ 0, and turns
    with the data: z·Q and z reach the same coordinates (float64 round-off); with weights, the
    frame of the weighted set is that of the set with repeated points."""
    rng = np.random.default_rng(d)
    x = torch.tensor(rng.gamma(2.0, size=(300, d)) @ rng.normal(size=(d, d)))
    z = fit_whitening(x).apply(x)
    frame = canonical_rotation(z)
    np.testing.assert_allclose((frame.T @ frame).numpy(), np.eye(d), atol=1e-12)
    assert bool(((z @ frame) ** 3).mean(0).min() >= 0)
    q = torch.linalg.qr(torch.tensor(rng.normal(size=(d, d))))[0]
    np.testing.assert_allclose((z @ q @ canonical_rotation(z @ q)).numpy(), (z @ frame).numpy(), atol=1e-9)
    counts = torch.tensor(rng.integers(1, 4, size=300))
    weighted = canonical_rotation(z, counts.double() / counts.sum())
    np.testing.assert_allclose(weighted.numpy(), canonical_rotation(z.repeat_interleave(counts, 0)).numpy(), atol=1e-9)


# --- 6. weighted attention is attention over the multiset ---------------------------------------

CORES = {"transformer": lambda: random_core(D).double(), "equivariant": lambda: equivariant_core().double()}


@pytest.mark.parametrize("kind", sorted(CORES))
def test_weighted_context_equals_duplicated_context(kind):
    """Points repeated c_i times (N rows, uniform) = the unique points with weights c_i/N, at the
    same size feature n_eff = N: the core sees no whitening here, only whitened points."""
    rng = np.random.default_rng(3)
    core = CORES[kind]()
    unique = torch.tensor(rng.normal(size=(30, D)))
    counts = torch.tensor(rng.integers(1, 5, size=30))
    N = int(counts.sum())
    duplicated = torch.repeat_interleave(unique, counts, dim=0)
    first = torch.cumsum(counts, 0) - counts  # row of the first copy of each unique point
    assert torch.equal(duplicated[first], unique)
    log_weights = torch.log(counts.to(torch.float64) / N).unsqueeze(0)  # (1, n), float64
    queries = torch.tensor(2 * rng.normal(size=(1, 11, D)))
    with torch.no_grad():
        multiset = core.encode(duplicated.unsqueeze(0))  # n_eff = N by default
        weighted = core.encode(unique.unsqueeze(0), log_weights, float(N))
        uniform = core.encode(unique.unsqueeze(0), None, float(N))
        lf_at, s_at = core.at_context(multiset)
        pairs = [((lf_at[:, first], s_at[:, first]), core.at_context(weighted)),  # first copies
                 (core.decode(queries, multiset), core.decode(queries, weighted))]
        for (lf_m, s_m), (lf_w, s_w) in pairs:
            # the same sums in another order, float64: round-off of O(10) outputs
            np.testing.assert_allclose(lf_w.numpy(), lf_m.numpy(), rtol=1e-11, atol=1e-11)
            np.testing.assert_allclose(s_w.numpy(), s_m.numpy(), rtol=1e-11, atol=1e-11)
        # the weights matter: the unweighted unique set gives other outputs
        assert not np.allclose(core.decode(queries, uniform)[1].numpy(), core.decode(queries, weighted)[1].numpy(),
                               atol=1e-3)


@pytest.mark.parametrize("kind", ["discoformer", "equivariant"])
def test_weighted_oracle_weights_are_relative(kind):
    """Through the oracle: weights at any scale give the same result (float64 core)."""
    x, w, q = weighted_data(D)
    oracle = scoreoracle.DiScoFormerOracle(CORES["transformer" if kind == "discoformer" else kind](),
                                           dtype=torch.float64)
    a = oracle.fit(x, weights=w).log_density_and_score(q)
    b = oracle.fit(x, weights=1e6 * w).log_density_and_score(q)
    np.testing.assert_allclose(b[0], a[0], rtol=1e-10, atol=1e-10)  # float64 round-off
    np.testing.assert_allclose(b[1], a[1], rtol=1e-10, atol=1e-10)
    assert not np.allclose(oracle.fit(x).score(q), a[1], atol=1e-3)  # and they do matter


# --- 7. exact affine equivariance of the equivariant core ------------------------------------

@pytest.mark.parametrize("d", [2, 10, 100])
def test_equivariant_core_is_affine_equivariant_through_the_oracle(d):
    rng = np.random.default_rng(d)
    n = 300
    x = rng.normal(size=(n, d)) * rng.uniform(0.5, 2.0, size=d) + rng.normal(size=d)
    q = rng.normal(size=(25, d)) * 1.2
    b = 3.0 * rng.normal(size=d)
    orthogonal, _ = np.linalg.qr(rng.normal(size=(d, d)))
    general = rng.normal(size=(d, d))  # invertible with probability one, not orthogonal
    oracle = scoreoracle.DiScoFormerOracle(equivariant_core(), dtype=torch.float64)
    lf, s = oracle.log_density_and_score(x, q)
    lf_at, s_at = oracle.log_density_and_score(x)
    for A in (orthogonal, general):
        cond = np.linalg.cond(A)
        log_det = np.linalg.slogdet(A)[1]
        inv_t = np.linalg.inv(A).T
        # float64 round-off amplified by the conditioning of the map (whitening of x·A) and by the
        # network: 1e-14·cond² relative to the output scale (cond ≈ 400 at d = 100, where the
        # measured error is 1e-11 relative), floored at 1e-11
        tol = 1e-11 + 1e-14 * cond ** 2
        lf2, s2 = oracle.log_density_and_score(x @ A + b, q @ A + b)
        # x' = xA + b: f'(x') = f(x)/|det A|, ∇log f'(x') = ∇log f(x)·A⁻ᵀ
        np.testing.assert_allclose(lf2, lf - log_det, rtol=0, atol=tol * np.abs(lf).max())
        np.testing.assert_allclose(s2, s @ inv_t, rtol=0, atol=tol * np.abs(s @ inv_t).max())
        lf2, s2 = oracle.log_density_and_score(x @ A + b)  # at the samples themselves
        np.testing.assert_allclose(lf2, lf_at - log_det, rtol=0, atol=tol * np.abs(lf_at).max())
        np.testing.assert_allclose(s2, s_at @ inv_t, rtol=0, atol=tol * np.abs(s_at @ inv_t).max())


@pytest.mark.parametrize("kind", sorted(CORES))
@pytest.mark.parametrize("case", ["plain", "weighted", "subsets"])
def test_shuffling_the_samples_shuffles_the_outputs_exactly_in_float32(kind, case):
    """The context is encoded in a canonical order, so the float32 attention sums (and the
    context subsets) do not depend on the order the samples came in: queries get the same answer
    and the samples' own outputs follow the shuffle, to float64 round-off in the whitening."""
    x, w, q = weighted_data(D, n=300)
    core = CORES[kind]().float()
    oracle = scoreoracle.DiScoFormerOracle(core, context_limit=200 if case == "subsets" else None)
    weights = w if case == "weighted" else None
    shuffle = np.random.default_rng(5).permutation(len(x))
    for points in (q, None):
        before = oracle.log_density_and_score(x, points, weights=weights)
        after = oracle.log_density_and_score(x[shuffle], points,
                                             weights=None if weights is None else weights[shuffle])
        order = slice(None) if points is not None else shuffle
        for b, a in zip(before, after):
            np.testing.assert_allclose(a, b[order], rtol=0, atol=1e-9 * np.abs(b).max())


# --- 8. the runtime does not import the training code ------------------------------------------

def test_load_imports_no_training_code():
    script = textwrap.dedent("""
        import sys
        import numpy as np
        import scoreoracle
        oracle = scoreoracle.load()
        x = np.random.default_rng(0).normal(size=(64, 2))
        s = oracle.fit(x).score(x[:5])
        assert s.shape == (5, 2) and np.isfinite(s).all()
        training = sorted(m for m in sys.modules if m.startswith("scoreoracle.training"))
        print("TRAINING-MODULES", training)
        assert not training, training
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "TRAINING-MODULES []" in result.stdout


# --- 9. progress bars -----------------------------------------------------------------------------

def test_progress_bar_on_stderr_when_asked(data, capsys):
    x, q = data
    many = np.concatenate([q] * 4)  # 52 queries in chunks of 8: 7 chunks
    KDEOracle(chunk_size=8, progress=True).fit(x).score(many)
    err = capsys.readouterr().err
    assert "scoreoracle queries" in err and "/7 [" in err  # a bar over the 7 chunks
    KDEOracle(chunk_size=8, progress=False).fit(x).score(many)
    assert capsys.readouterr().err == ""
    KDEOracle(chunk_size=8).fit(x).score(many)  # default: a small call shows nothing
    assert capsys.readouterr().err == ""
