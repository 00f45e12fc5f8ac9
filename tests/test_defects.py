"""Regression tests for defects reported by new users (and a few found while writing these).

Each test checks the error TYPE and that the message names the problem.
"""

import functools
import math
import resource

import numpy as np
import pytest
import torch

import scoreoracle
import scoreoracle.contract
import scoreoracle.oracles.adaptation as adaptation
import solvers
from scoreoracle import DiScoFormerOracle, ExactOracle, GaussianFitOracle, GaussianMixture, KDEOracle
from solvers import SolverDivergenceError, Trajectory
from solvers.exact import AnalyticFlowOracle

from conftest import random_core


# one thread for torch and numba while this module runs (see conftest.single_thread)
pytestmark = pytest.mark.usefixtures("single_thread")


@pytest.fixture
def x2():
    return np.random.default_rng(0).normal(size=(60, 2))


# --- a. test-time adaptation ------------------------------------------------------------------------

@pytest.mark.parametrize("lr", [1e3, 1e2, 10.0])
def test_adapt_with_a_huge_learning_rate_never_gives_non_finite_outputs(lr):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(400, 2))
    queries = np.concatenate([x[:20], 10 * rng.normal(size=(20, 2)), 1e4 * rng.normal(size=(20, 2))])
    oracle = DiScoFormerOracle(random_core(2))
    adapted = oracle.adapt(x, lr=lr, max_queries=128)
    report = adapted.adaptation
    assert isinstance(report.kept, bool) and report.reason
    for lf, s in (adapted.log_density_and_score(x, queries), adapted.log_density_and_score(x)):
        assert np.isfinite(lf).all() and np.isfinite(s).all()
    if not report.kept:  # the original weights: the original outputs, exactly
        original = oracle.log_density_and_score(x, queries)
        np.testing.assert_array_equal(adapted.log_density(x, queries), original[0])
        np.testing.assert_array_equal(adapted.score(x, queries), original[1])


def test_adapt_stopped_by_a_non_finite_loss_reports_it_and_keeps_the_original(monkeypatch):
    monkeypatch.setattr(adaptation, "consistency_loss", lambda core, context, queries: torch.tensor(math.nan))
    x = np.random.default_rng(0).normal(size=(300, 2))
    oracle = DiScoFormerOracle(random_core(2))
    adapted = oracle.adapt(x, steps=2)
    report = adapted.adaptation
    assert not report.kept and report.reason == "non-finite training loss"
    assert math.isfinite(report.held_out.reference) and math.isnan(report.held_out.candidate)
    np.testing.assert_array_equal(adapted.score(x), oracle.score(x))


def test_adapt_with_too_few_held_out_points_refuses_before_training(monkeypatch, x2):
    """60 samples hold out 15 points: too few to judge, so no training step is taken; 256
    samples hold out 64, enough."""
    calls = []
    original = adaptation.consistency_loss
    monkeypatch.setattr(adaptation, "consistency_loss", lambda *args: calls.append(1) or original(*args))
    oracle = DiScoFormerOracle(random_core(2))
    adapted = oracle.adapt(x2, steps=2)
    report = adapted.adaptation
    assert not report.kept and report.held_out.points == 15 and not calls
    assert report.reason.startswith("too few held-out points") and str(adaptation.MIN_HELD_OUT_TO_ADAPT) in report.reason
    np.testing.assert_array_equal(adapted.score(x2), oracle.score(x2))
    report = oracle.adapt(np.random.default_rng(3).normal(size=(256, 2)), steps=2).adaptation
    assert report.held_out.points == adaptation.MIN_HELD_OUT_TO_ADAPT and len(calls) == 2


@pytest.mark.parametrize("max_queries", [0, -5])
def test_adapt_refuses_non_positive_max_queries(max_queries, x2):
    with pytest.raises(ValueError, match="max_queries"):
        DiScoFormerOracle(random_core(2)).adapt(x2, max_queries=max_queries)


def test_adapt_on_a_large_sample_uses_a_bounded_context(monkeypatch):
    seen = []
    original = adaptation.consistency_loss

    def recording(core, context, queries):
        seen.append((context.shape[1], queries.shape[1]))
        return original(core, context, queries)
    monkeypatch.setattr(adaptation, "consistency_loss", recording)
    x = np.random.default_rng(2).normal(size=(20000, 2))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    adapted = DiScoFormerOracle(random_core(2)).adapt(x, steps=1)
    growth_gib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 2 ** 20
    assert isinstance(adapted, DiScoFormerOracle) and adapted.adaptation is not None
    # default max_context = 2048, max_queries = 1024: the double backward is O(context · queries)
    assert seen and all(n <= 2048 and m <= 1024 for n, m in seen)
    # the full 20000² attention would need tens of GiB; the bounded one about 0.5 GiB (measured)
    assert growth_gib < 2.0


# --- b. diverging runs ----------------------------------------------------------------------------------

def nan_after(t_bad):
    def drift(x, t):
        return np.full_like(x, np.nan) if t > t_bad else -x
    return drift


def overflowing(x, t):
    return 1e200 * x


def run_diverging(solver, method, failure, x):
    """Fokker–Planck: the drift fails; Landau (which has no drift): the oracle's score fails."""
    common = dict(t_span=(0.0, 0.2), dt=0.02, method=method)
    bad = nan_after(0.05) if failure == "nan" else overflowing
    if solver == "fokker-planck":
        return solvers.simulate_fokker_planck(x, GaussianFitOracle(), drift=bad, **common)
    return solvers.simulate_landau(x, AnalyticFlowOracle(bad), **common)


DIVERGING = [pytest.param(solver, method, failure, id=f"{solver}-{method}-{failure}")
             for solver in ("fokker-planck", "landau") for method in ("heun", "rk4", "euler")
             for failure in ("nan", "overflow")]


@pytest.mark.parametrize("solver, method, failure", DIVERGING)
def test_diverging_runs_raise_solver_divergence_error(solver, method, failure, x2):
    with pytest.raises(SolverDivergenceError, match="non-finite|exploding") as info:
        run_diverging(solver, method, failure, x2)
    err = info.value
    assert not isinstance(err, ValueError)  # not a bad-input error (nor SingularSamplesError)
    traj = err.trajectory
    assert isinstance(traj, Trajectory) and len(traj.times) >= 1
    final = np.asarray(traj.final)
    assert final.shape == x2.shape and np.isfinite(final).all()
    assert traj.times[0] == 0.0
    if failure == "nan":  # the drift/score is finite up to t = 0.05: the run gets that far
        assert 0.04 - 1e-12 <= traj.times[-1] <= 0.05
    else:  # the very first step explodes: the trajectory is the initial state
        np.testing.assert_array_equal(final, x2)


def test_a_coulomb_run_in_other_velocity_units_is_the_same_run():
    """The default δ was 1e-3 in absolute units: in units 1000× smaller the same Coulomb problem
    relaxed ~25 % slower.  v → λv, t → λ³t (γ = −3) is an exact symmetry with δ ∝ the thermal speed."""
    v = np.random.default_rng(2).normal(size=(150, 3)) * [1.4, 0.6, 1.0]
    common = dict(oracle=GaussianFitOracle(), gamma=-3.0, C=1 / 24)
    unit = solvers.simulate_landau(v, t_span=(0.0, 0.5), dt=0.05, **common)
    scale = 1e-3
    small = solvers.simulate_landau(scale * v, t_span=(0.0, 0.5 * scale ** 3), dt=0.05 * scale ** 3, **common)
    np.testing.assert_allclose(np.asarray(small.final) / scale, np.asarray(unit.final), rtol=1e-9, atol=1e-9)


def test_a_weighted_run_keeps_its_masses_in_the_trajectory(tmp_path):
    """Weighted moments could not be recomputed from a loaded trajectory: the masses were not kept."""
    rng = np.random.default_rng(4)
    x, w = rng.normal(size=(50, 2)), rng.uniform(0.5, 2.0, size=50)
    traj = solvers.simulate_fokker_planck(x, KDEOracle(), weights=w, t_span=(0.0, 0.1), dt=0.05,
                                          checkpoint=tmp_path / "run")
    np.testing.assert_allclose(traj.weights, w / w.sum(), rtol=1e-14)
    for loaded in (Trajectory.load(tmp_path / "run"), _saved_and_loaded(traj, tmp_path / "copy")):
        np.testing.assert_array_equal(loaded.weights, traj.weights)
        np.testing.assert_allclose(loaded.weights @ np.asarray(loaded.final), traj.diagnostics["mean"][-1], rtol=1e-12)
    plain = solvers.simulate_fokker_planck(x, KDEOracle(), t_span=(0.0, 0.1), dt=0.05)
    assert plain.weights is None and _saved_and_loaded(plain, tmp_path / "plain").weights is None
    assert _saved_and_loaded(plain, tmp_path / "copy").weights is None  # over a weighted one: its masses go
    replaced = solvers.simulate_fokker_planck(x, KDEOracle(), t_span=(0.0, 0.1), dt=0.05, checkpoint=tmp_path / "run",
                                              overwrite=True)
    assert replaced.weights is None and Trajectory.load(tmp_path / "run").weights is None


def _saved_and_loaded(traj, folder):
    traj.save(folder)
    return Trajectory.load(folder)


def test_relative_fisher_information_names_both_sets_when_their_dimensions_differ():
    x, y = np.random.default_rng(0).normal(size=(50, 3)), np.random.default_rng(1).normal(size=(50, 2))
    with pytest.raises(ValueError, match=r"samples_f \(d = 3\) and samples_g \(d = 2\) must have the same"):
        solvers.relative_fisher_information(x, y, KDEOracle())


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("d", [2, 12])
def test_the_all_dimension_core_runs_in_half_precision(dtype, d):
    """float16/bfloat16 failed at fit ('lu_cpu' not implemented for 'Half'); the CG path (d > 8)
    then gave NaN in float16 (its small denominators underflow).  Both solves run in float32."""
    x, q = torch.randn(400, d, generator=torch.Generator().manual_seed(d)), torch.randn(5, d)
    half = scoreoracle.load(checkpoint="equivariant", dtype=dtype).fit(x).score(q)
    full = scoreoracle.load(checkpoint="equivariant").fit(x).score(q)
    assert torch.isfinite(half).all()
    assert float(((half - full) ** 2).sum() / (full ** 2).sum()) < 1e-2


def test_loading_and_fitting_leave_the_global_random_stream_alone():
    """Building a core (random init, then its weights loaded) drew from torch's global generator:
    a seeded experiment's draws depended on whether and when the oracle was first used."""
    x = np.random.default_rng(0).normal(size=(200, 3))
    torch.manual_seed(1)
    expected = torch.randn(3)
    torch.manual_seed(1)
    scoreoracle.load().fit(x)
    scoreoracle.load(checkpoint="d3").fit(x)
    assert torch.equal(torch.randn(3), expected)


def test_a_fit_under_inference_mode_still_serves_autograd():
    """The fitted state was made of inference tensors: differentiating a later answer failed
    ('Inference tensors cannot be saved for backward') while ``differentiable`` said True."""
    with torch.inference_mode():
        fitted = scoreoracle.load().fit(torch.randn(300, 2))
    q = torch.randn(4, 2, requires_grad=True)
    gradient = torch.autograd.grad(fitted.score(q)[:, 0].sum(), q)[0]
    assert fitted.differentiable and torch.isfinite(gradient).all()


def test_a_landau_run_that_breaks_energy_conservation_is_stopped():
    """Euler at dt = 5 (Maxwell, C = 1) multiplied the energy by 1e8 and returned it as a
    trajectory: its extent grew too slowly per step for the divergence check."""
    v = np.random.default_rng(3).normal(size=(200, 3))
    with pytest.raises(SolverDivergenceError, match="energy drift") as info:
        solvers.simulate_landau(v, KDEOracle(), gamma=0.0, C=1.0, t_span=(0.0, 40.0), dt=5.0, method="euler",
                                save_every=1)
    energy = info.value.trajectory.diagnostics["energy"]
    assert abs(energy[-1] - energy[0]) <= 0.5 * energy[0]  # the trajectory ends at the last good snapshot
    solvers.simulate_landau(v, KDEOracle(), gamma=0.0, C=1.0, t_span=(0.0, 1.0), dt=0.1)  # a sound run passes


def test_estimators_refuse_what_cannot_answer_and_flag_a_score_that_fails_its_check():
    """relative Fisher with an exact oracle returned exactly 0 (both scores the same law's);
    entropy(x, None) and a class instead of an instance gave AttributeErrors; divergence="no"
    computed it; intervals of a non-negative quantity went below 0; one gross outlier made the
    Fisher estimate 1e-8 of the truth with a tight interval and no word."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(600, 1))
    law = scoreoracle.GaussianMixture(torch.ones(1), torch.zeros(1, 1), torch.eye(1)[None])
    with pytest.raises(ValueError, match="ignores its samples"):
        solvers.relative_fisher_information(x, x + 1, ExactOracle(law))
    with pytest.raises(TypeError, match="oracle is None"):
        solvers.entropy(x, None)
    with pytest.raises(TypeError, match="pass an instance, e.g. KDEOracle()"):
        solvers.fisher_information(x, KDEOracle)
    with pytest.raises(TypeError, match="divergence must be True or False"):
        solvers.fisher_information(x, KDEOracle(), divergence="no")
    outlier = np.r_[x, [[1e5]]]
    with pytest.warns(solvers.ScoreCheckWarning, match="disagree"), pytest.warns(scoreoracle.OutlierWarning):
        est = solvers.fisher_information(outlier, scoreoracle.load())
    assert est.ci_low >= 0.0 and est.value < 1e-3  # (the truth of the bulk is 1)


def test_sd_kde_bandwidth_checks_its_input_like_sd_kde():
    """NaN samples were reported as 'no spread'; 1-D arrays, lists and bad weights gave numpy errors."""
    from solvers.sd_kde import sd_kde_bandwidth
    x = np.random.default_rng(0).normal(size=100)
    assert sd_kde_bandwidth(x) == sd_kde_bandwidth(x[:, None]) == sd_kde_bandwidth(x.tolist())
    with pytest.raises(ValueError, match="NaN"):
        sd_kde_bandwidth(np.where(np.arange(100) == 3, np.nan, x))
    with pytest.raises(ValueError, match="weights must have shape"):
        sd_kde_bandwidth(x, np.ones(99))
    with pytest.raises(ValueError, match="non-negative"):
        sd_kde_bandwidth(x, -np.ones(100))


def test_a_bulk_squeezed_by_outliers_is_flagged_at_fit():
    """Cauchy samples or one point 1e3 σ out: the sample covariance squeezes the bulk and the
    answers were off by orders of magnitude (entropy 9.2 for 2.5), silently."""
    import warnings
    rng = np.random.default_rng(0)
    cauchy = rng.standard_cauchy(size=(600, 1))
    outlier = np.r_[rng.normal(size=(600, 1)), [[1e3]]]
    for x in (cauchy, outlier):
        with pytest.warns(scoreoracle.OutlierWarning, match="median squared radius") as record:
            scoreoracle.load().fit(x)
        assert record[0].filename == __file__
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # tails the oracle was trained on, and no tails, pass
        scoreoracle.load().fit(scoreoracle.StudentT(2.5, torch.zeros(3), torch.eye(3)).sample(4000, torch.Generator()
                                                                                            .manual_seed(0)))
        scoreoracle.load().fit(rng.normal(size=(1000, 3)))


@pytest.mark.parametrize("d", [2, 10])
def test_a_bulk_squeezed_in_one_direction_is_flagged_at_fit(d):
    """One point 1e3 σ out, along an axis or obliquely, squeezes the bulk in that direction only:
    the median squared radius stays near d and nothing was said."""
    import warnings
    rng = np.random.default_rng(0)
    oblique = np.ones(d) / np.sqrt(d)
    for direction in (np.eye(d)[0], oblique):
        x = np.r_[rng.normal(size=(600, d)), 1e3 * direction[None]]
        with pytest.warns(scoreoracle.OutlierWarning, match="along one direction"):
            scoreoracle.load().fit(x)
    far_apart = np.r_[rng.normal(size=(950, d)) + 20 * np.eye(d)[0], rng.normal(size=(50, d)) - 20 * np.eye(d)[0]]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a small far cluster of 5 % is data, not an outlier
        scoreoracle.load().fit(far_apart)


def test_sample_sets_below_a_checkpoints_training_sizes_go_to_the_all_dimension_core():
    """The per-dimension checkpoints trained on n ≥ 128 and extrapolate badly below (the retired
    d10, n = 12: entropy −0.4 for a truth of 14.2; the all-d core 11.6); the router says so."""
    oracle = scoreoracle.load()
    assert oracle.checkpoint_for(3, 32) == "equivariant" and oracle.checkpoint_for(3, 128) == "d3"
    assert oracle.checkpoint_for(3) == "d3" and "smaller sample sets" in repr(oracle)
    rng = np.random.default_rng(0)
    small, large = rng.normal(size=(40, 3)), rng.normal(size=(300, 3))
    assert oracle.fit(small).source[0] == "equivariant" and oracle.fit(large).source[0] == "d3"
    w = np.r_[np.ones(100), np.full(200, 1e-3)]  # 300 rows, n_eff ≈ 107: the all-d core
    assert oracle.fit(large, weights=w).source[0] == "equivariant"
    assert scoreoracle.load(3).fit(small).source[0] == "d3"  # a pinned dimension stays pinned
    truth = 0.5 * 10 * np.log(2 * np.pi * np.e)
    assert abs(solvers.entropy(rng.normal(size=(20, 10)), oracle).value - truth) < 3.0


def test_a_translating_cold_beam_is_no_divergence():
    """The check measured |x| from the origin against the initial RMS radius: a cold beam moved
    by a uniform field (an exact translation) was stopped as 'an exploding state'."""
    x = 1e-6 * np.random.default_rng(0).normal(size=(200, 3))
    traj = solvers.simulate_fokker_planck(x, GaussianFitOracle(), drift=lambda x, t: np.tile([1.0, 0.0, 0.0], (len(x), 1)),
                                          diffusion=1e-13, t_span=(0.0, 2.0), dt=0.2)
    np.testing.assert_allclose(np.asarray(traj.final).mean(0), x.mean(0) + [2.0, 0.0, 0.0], atol=1e-9)
    assert solvers.RunOptions(explode_factor=math.inf).explode_factor == math.inf  # the check turned off


# --- c. resume ------------------------------------------------------------------------------------------

def base_drift(x, t):
    return -x


def closure_drift(a):
    return lambda x, t: -a * x


def scaled_drift(x, t, a):
    return -a * x


class LinearDrift:
    def __init__(self, a):
        self.a = a

    def __call__(self, x, t):
        return -self.a * x


def point_gaussian(scale):
    return GaussianMixture(torch.tensor([1.0], dtype=torch.float64), torch.zeros(1, 2, dtype=torch.float64),
                           scale * torch.eye(2, dtype=torch.float64)[None])


BASE_RUN = dict(oracle=GaussianFitOracle(), drift=base_drift, diffusion=1.0, t_span=(0.0, 0.1), dt=0.02)


def _other_particles():
    return dict(particles=np.random.default_rng(99).normal(size=(40, 2)))


OTHER_RUNS = {  # name: (first run's arguments, second run's arguments)
    "particles": ({}, _other_particles()),
    "oracle": ({}, dict(oracle=KDEOracle())),
    "oracle options": (dict(oracle=KDEOracle()), dict(oracle=KDEOracle("silverman"))),
    "drift code": ({}, dict(drift=lambda x, t: -2 * x)),
    "drift closure": (dict(drift=closure_drift(1.0)), dict(drift=closure_drift(3.0))),
    "no drift": ({}, dict(drift=None)),
    "diffusion": ({}, dict(diffusion=0.5)),
    "diffusion matrix": ({}, dict(diffusion=np.array([[1.0, 0.2], [0.2, 1.0]]))),
    "dt": ({}, dict(dt=0.01)),
    "t_span": ({}, dict(t_span=(0.0, 0.2))),
    "seed": ({}, dict(seed=3)),
    "method": ({}, dict(method="rk4")),
    "oracle_samples": ({}, dict(oracle_samples=20)),
    "save_every": ({}, dict(save_every=2)),
    "weights": ({}, dict(weights=np.linspace(1.0, 2.0, 40))),
    "core weights": (dict(oracle=DiScoFormerOracle(random_core(2, seed=0))),
                     dict(oracle=DiScoFormerOracle(random_core(2, seed=1)))),
    "exact distribution": (dict(oracle=ExactOracle(point_gaussian(1.0))),
                           dict(oracle=ExactOracle(point_gaussian(2.0)))),
    "drift partial": (dict(drift=functools.partial(scaled_drift, a=1.0)),
                      dict(drift=functools.partial(scaled_drift, a=3.0))),
    "drift object": (dict(drift=LinearDrift(1.0)), dict(drift=LinearDrift(3.0))),
}


def _fp(folder, particles, **overrides):
    args = {**BASE_RUN, **overrides}
    return solvers.simulate_fokker_planck(particles, checkpoint=folder, **args)


@pytest.mark.parametrize("case", list(OTHER_RUNS))
def test_resume_refuses_a_different_run(case, tmp_path):
    x = np.random.default_rng(0).normal(size=(40, 2))
    first, second = dict(OTHER_RUNS[case][0]), dict(OTHER_RUNS[case][1])
    x_first, x_second = first.pop("particles", x), second.pop("particles", x)
    folder = tmp_path / "run"
    done = _fp(folder, x_first, **first)
    with pytest.raises(ValueError, match="different run"):
        _fp(folder, x_second, resume=True, **second)
    # the folder is untouched and the same run still resumes (finished: returned as saved)
    again = _fp(folder, x_first, resume=True, **first)
    np.testing.assert_array_equal(again.times, done.times)
    np.testing.assert_array_equal(np.asarray(again.particles), np.asarray(done.particles))


def test_resume_refuses_a_different_landau_run(tmp_path, x2):
    folder = tmp_path / "landau"
    solvers.simulate_landau(x2, GaussianFitOracle(), gamma=0.0, t_span=(0.0, 0.1), dt=0.02, checkpoint=folder)
    with pytest.raises(ValueError, match="different run"):
        solvers.simulate_landau(x2, GaussianFitOracle(), gamma=-3.0, t_span=(0.0, 0.1), dt=0.02, checkpoint=folder,
                                resume=True)


class Interrupt(Exception):
    """Stands for a crash or Ctrl-C in the middle of a run."""


class InterruptibleKDE(KDEOracle):
    """A KDE oracle that raises Interrupt at its ``stop_at``-th fit (None: never).  Its fingerprint
    (the hook solvers use to identify an oracle) does not depend on ``stop_at``: interrupted and
    resumed runs are the same run."""

    def __init__(self, stop_at=None):
        super().__init__()
        self.stop_at, self.fits = stop_at, 0

    def fingerprint(self):
        return "interruptible Gaussian KDE, Scott's rule"

    def fit(self, samples, weights=None):
        self.fits += 1
        if self.stop_at is not None and self.fits >= self.stop_at:
            raise Interrupt
        return super().fit(samples, weights)


@pytest.mark.parametrize("solver", [solvers.simulate_fokker_planck, solvers.simulate_landau],
                         ids=["fokker-planck", "landau"])
def test_resume_continues_the_same_run_exactly(solver, tmp_path):
    x = np.random.default_rng(4).normal(size=(40, 2))
    # random oracle subsets (drawn per step from the seed) and snapshots and checkpoints out of phase
    options = dict(t_span=(0.0, 0.3), dt=0.02, oracle_samples=25, checkpoint_every=4, save_every=3)
    reference = solver(x, InterruptibleKDE(), **options)
    folder = tmp_path / "run"
    with pytest.raises(Interrupt):
        solver(x, InterruptibleKDE(stop_at=22), checkpoint=folder, **options)  # heun: 2 fits per step
    saved = Trajectory.load(folder)
    assert 0 < len(saved.times) < len(reference.times)  # it was interrupted midway
    resumed = solver(x, InterruptibleKDE(), checkpoint=folder, resume=True, **options)
    # the same arithmetic on the same numbers in the same order: bitwise equal
    np.testing.assert_array_equal(resumed.times, reference.times)
    np.testing.assert_array_equal(np.asarray(resumed.particles), np.asarray(reference.particles))
    for name, values in reference.diagnostics.items():
        np.testing.assert_array_equal(resumed.diagnostics[name], values)
    np.testing.assert_array_equal(np.asarray(Trajectory.load(folder).particles), np.asarray(reference.particles))


def test_a_new_run_in_a_used_folder_does_not_resume_the_old_state(tmp_path):
    rng = np.random.default_rng(5)
    x, y = rng.normal(size=(40, 2)), 5 + rng.normal(size=(40, 2))
    options = dict(drift=base_drift, t_span=(0.0, 0.3), dt=0.02, checkpoint_every=5)
    folder = tmp_path / "run"
    solvers.simulate_fokker_planck(x, InterruptibleKDE(), checkpoint=folder, **options)  # run A, finished
    reference = solvers.simulate_fokker_planck(y, InterruptibleKDE(), **options)  # run B, uninterrupted
    with pytest.raises(Interrupt):  # run B replacing A (resume=False) stops before its first checkpoint
        solvers.simulate_fokker_planck(y, InterruptibleKDE(stop_at=6), checkpoint=folder, overwrite=True, **options)
    resumed = solvers.simulate_fokker_planck(y, InterruptibleKDE(), checkpoint=folder, resume=True, **options)
    np.testing.assert_array_equal(resumed.times, reference.times)
    np.testing.assert_array_equal(resumed.final, reference.final)  # not run A's final state


def test_a_new_run_does_not_delete_a_saved_run_that_a_trajectory_still_reads(tmp_path):
    """Run B in run A's folder (resume=False) deleted A's snapshots: A's trajectory, read lazily,
    then returned B's particles beside A's times and diagnostics.  Refused unless overwrite=True."""
    rng = np.random.default_rng(5)
    x, y = rng.normal(size=(40, 2)), 5 + rng.normal(size=(40, 2))
    options = dict(drift=base_drift, t_span=(0.0, 0.1), dt=0.02, save_every=1)
    folder = tmp_path / "run"
    a = solvers.simulate_fokker_planck(x, KDEOracle(), checkpoint=folder, **options)
    first = np.array(a.particles[1])
    for resume in (False, True):  # B is another run: neither a new run nor a resume may touch A
        with pytest.raises((FileExistsError, ValueError), match="saved run|different run"):
            solvers.simulate_fokker_planck(y, KDEOracle(), checkpoint=folder, resume=resume, **options)
    np.testing.assert_array_equal(a.particles[1], first)
    with pytest.raises(FileExistsError, match="resume=True"):  # A itself again, without resume
        solvers.simulate_fokker_planck(x, KDEOracle(), checkpoint=folder, **options)
    again = solvers.simulate_fokker_planck(x, KDEOracle(), checkpoint=folder, resume=True, **options)
    np.testing.assert_array_equal(again.final, a.final)


def test_covariance_diagnostic_is_the_mass_weighted_moment_that_energy_uses():
    """It was the unbiased covariance (1/(1 − Σw²)): tr Σ ≠ 2E − |p|², and splitting a
    macro-particle into equal particles changed the temperature."""
    from solvers.exact import BKW
    rng = np.random.default_rng(3)
    v, w = rng.normal(size=(60, 2)), rng.integers(1, 4, size=60).astype(float)
    for gamma in (0.0, -3.0):  # Coulomb: the default δ follows the mass-weighted thermal speed
        options = dict(gamma=gamma, C=1 / 16, t_span=(0.0, 0.1), dt=0.05)
        weighted = solvers.simulate_landau(v, BKW(2).oracle(), weights=w, **options)
        split = solvers.simulate_landau(np.repeat(v, w.astype(int), axis=0), BKW(2).oracle(), **options)
        for name in ("covariance", "energy", "momentum"):
            np.testing.assert_allclose(weighted.diagnostics[name], split.diagnostics[name], rtol=1e-10, atol=1e-12)
    d = weighted.diagnostics
    np.testing.assert_allclose(np.trace(d["covariance"], axis1=1, axis2=2),
                               2 * d["energy"] - (d["momentum"] ** 2).sum(1), rtol=1e-10)


# --- d. checkpoint folder and interval ------------------------------------------------------------------

def test_checkpoint_folder_with_missing_parents_is_created_before_any_step(tmp_path, x2):
    folder = tmp_path / "does" / "not" / "exist" / "run"
    seen = []

    def drift(x, t):
        seen.append(folder.is_dir())
        return -x
    traj = solvers.simulate_fokker_planck(x2, GaussianFitOracle(), drift=drift, t_span=(0.0, 0.1), dt=0.02,
                                          checkpoint=folder)
    assert seen and all(seen)  # the folder existed at the very first drift evaluation
    loaded = Trajectory.load(folder)
    np.testing.assert_array_equal(loaded.times, traj.times)
    np.testing.assert_array_equal(np.asarray(loaded.particles), np.asarray(traj.particles))


def test_checkpoint_path_that_is_a_file_fails_before_any_step(tmp_path, x2):
    path = tmp_path / "a-file"
    path.write_text("not a folder")
    seen = []

    def drift(x, t):
        seen.append(t)
        return -x
    with pytest.raises(OSError, match="a-file"):
        solvers.simulate_fokker_planck(x2, GaussianFitOracle(), drift=drift, t_span=(0.0, 0.1), dt=0.02,
                                       checkpoint=path)
    assert not seen


@pytest.mark.parametrize("value", [0, -1, 2.5, True])
def test_checkpoint_every_must_be_a_positive_integer(value, tmp_path, x2):
    for solver in (solvers.simulate_fokker_planck, solvers.simulate_landau):
        with pytest.raises(ValueError, match="checkpoint_every"):
            solver(x2, GaussianFitOracle(), t_span=(0.0, 0.1), dt=0.02, checkpoint=tmp_path / "run",
                   checkpoint_every=value)


# --- e. time step types ---------------------------------------------------------------------------------

def test_numpy_float32_dt_is_accepted(x2):
    a = solvers.simulate_fokker_planck(x2, GaussianFitOracle(), t_span=(0.0, 0.2), dt=np.float32(0.05))
    b = solvers.simulate_fokker_planck(x2, GaussianFitOracle(), t_span=(0.0, 0.2), dt=0.05)
    # float32(0.05) = 0.05000000075 gives the same 4 steps, so the same run
    np.testing.assert_array_equal(a.times, b.times)
    np.testing.assert_array_equal(a.final, b.final)


@pytest.mark.parametrize("dt", [True, np.bool_(True), 0.0, -0.1, math.nan, math.inf, "0.1"])
def test_bad_dt_is_refused(dt, x2):
    for solver in (solvers.simulate_fokker_planck, solvers.simulate_landau):
        with pytest.raises(ValueError, match="dt"):
            solver(x2, GaussianFitOracle(), t_span=(0.0, 0.2), dt=dt)


# --- f. extreme scales, zero spread, argument names ----------------------------------------------------

@pytest.mark.parametrize("scale", [1e155, 1e-155])
def test_kde_at_extreme_scales(scale):
    x = np.random.default_rng(6).normal(size=(200, 2))
    q = x[:30] + 0.1
    lf, s = KDEOracle().log_density_and_score(x, q)
    lf_scaled, s_scaled = KDEOracle().log_density_and_score(x * scale, q * scale)
    assert np.isfinite(s_scaled).all() and np.isfinite(lf_scaled).all()
    # exact scale equivariance; float64 whitening rescales first, so only round-off remains
    np.testing.assert_allclose(s_scaled, s / scale, rtol=1e-9)
    np.testing.assert_allclose(lf_scaled, lf - 2 * np.log(scale), rtol=1e-9)
    np.testing.assert_allclose(KDEOracle().score(x * scale), KDEOracle().score(x) / scale, rtol=1e-9)


def test_sd_kde_with_zero_iqr_on_one_axis():
    rng = np.random.default_rng(7)
    x = rng.normal(size=(200, 2))
    x[:180, 1] = 0.0  # 90 % of the values equal: the IQR of axis 1 is zero, its std is not
    kde = solvers.sd_kde(x)
    # independent reference of the documented rule: c·mean(min(std, IQR/1.34), or std when IQR = 0)·n^(−1/(d+8))
    std = x.std(axis=0, ddof=1)
    iqr = np.subtract(*np.quantile(x, [0.75, 0.25], axis=0, method="inverted_cdf")) / 1.34
    spread = np.where(iqr > 0, np.minimum(std, iqr), std)
    assert iqr[1] == 0
    assert kde.bandwidth == pytest.approx(0.65 * spread.mean() * 200 ** (-1 / 10), rel=1e-12)
    density = kde.density(np.concatenate([x[:10], [[0.0, 0.0], [0.3, -0.2]]]))
    assert np.isfinite(density).all() and (density > 0).all()


def test_sd_kde_on_a_constant_coordinate_names_the_problem():
    x = np.random.default_rng(8).normal(size=(100, 2))
    x[:, 1] = 3.0
    with pytest.raises(ValueError, match="no spread"):
        solvers.sd_kde(x)


def test_repeated_samples_warn_and_their_counts_as_weights_recover_the_answer():
    """A Metropolis chain repeats its state on rejection: 250 points each repeated 8 times read as
    2000 independent draws gave narrow peaks (relative score error 0.59 vs 0.02), silently."""
    import warnings

    from scoreoracle.validation import RepeatedSamplesWarning
    g = scoreoracle.GaussianMixture(torch.ones(1), torch.zeros(1, 5), torch.eye(5)[None])
    points = g.sample(250, torch.Generator().manual_seed(0)).numpy()
    q = g.sample(200, torch.Generator().manual_seed(1))
    truth = g.score(q).numpy()
    repeated = np.repeat(points, 8, axis=0)
    with pytest.warns(RepeatedSamplesWarning, match="2000 of the 2000 samples sit on points that occur three"):
        bad = scoreoracle.load().fit(repeated).score(q.numpy())
    u, c = np.unique(repeated, axis=0, return_counts=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # distinct rows: no warning
        good = scoreoracle.load().fit(u, weights=c).score(q.numpy())

    def error(s):
        return ((s - truth) ** 2).sum(1).mean() / (truth ** 2).sum(1).mean()
    assert error(good) < 0.1 < error(bad)


def test_the_repeat_warning_spares_float32_rounding_and_the_exact_oracle():
    """Plain float32 draws in d = 1 collide in pairs by rounding (1.5 % of 5·10⁵ uniform draws) and
    drew the warning; an exact oracle, which ignores its samples, warned on split particles."""
    import warnings
    x = torch.rand(500_000, 1, generator=torch.Generator().manual_seed(0))  # float32
    assert len(torch.unique(x)) < 0.99 * len(x)  # the rounding pairs are there
    split = np.repeat(np.random.default_rng(0).normal(size=(50, 2)), 4, axis=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        scoreoracle.GaussianFitOracle().fit(x)
        ExactOracle(scoreoracle.GaussianMixture(torch.ones(1), torch.zeros(1, 2), torch.eye(2)[None])).fit(split)
    with pytest.warns(scoreoracle.RepeatedSamplesWarning) as record:  # pointed at the caller, not the library
        scoreoracle.KDEOracle().score(split, split[:3])
    assert record[0].filename == __file__


@pytest.mark.parametrize("weights,covariance,message", [
    ([0.5], np.eye(2), "must sum to 1 \\(got 0.5\\)"),
    ([3.0], np.eye(2), "must sum to 1"),
    ([-1.0], np.eye(2), "non-negative"),
    ([1.0], -np.eye(2), "positive definite; component 0"),
    ([1.0], [[1.0, 2.0], [0.0, 1.0]], "symmetric"),
    ([0.5, 0.5], np.eye(2), "weights \\(..., k\\)"),
])
def test_a_reference_mixture_refuses_parameters_that_would_answer_wrongly(weights, covariance, message):
    """A user's closed-form reference: weights 0.5 were off by log 0.5 silently, a negative one gave
    NaN, a covariance that is not positive definite a raw torch error."""
    with pytest.raises(ValueError, match=message):
        scoreoracle.GaussianMixture(torch.tensor(weights), torch.zeros(1, 2), torch.tensor(covariance)[None])


def test_an_estimate_reports_the_effective_sample_size_of_its_weights():
    """``n`` was the number of rows: 1000 with only 7 of them weighted (now the 7 that carry weight)."""
    g = scoreoracle.GaussianMixture(torch.ones(1), torch.zeros(1, 2), torch.eye(2)[None])
    x = g.sample(1000, torch.Generator().manual_seed(0)).numpy()
    w = np.r_[np.ones(7), np.zeros(993)]
    est = solvers.entropy(x, ExactOracle(g), weights=w)
    assert est.n == 7 and est.n_eff == pytest.approx(7.0)
    assert solvers.entropy(x, ExactOracle(g)).n_eff == 1000


def test_kde_score_far_away_is_finite_and_points_back():
    """Beyond |x| ~ 1e154 the squared distances overflowed: log f −inf (right: below float64's
    range) and a NaN score (wrong: it points back to the samples)."""
    x = np.random.default_rng(0).normal(size=(300, 3))
    far = np.array([[1e200, 0.0, 0.0], [0.0, -1e160, 1e160]])
    log_f, score = KDEOracle().fit(x).log_density_and_score(far)
    unit = score / np.abs(score).max(1, keepdims=True)
    assert np.isfinite(score).all() and ((unit * far / 1e160).sum(1) < 0).all()
    assert (log_f < -1e300).all()


def test_sd_kde_blames_the_oracle_for_its_nan_scores_not_the_samples():
    """It said 'samples contains NaN or infinite values … remove or impute them' of finite samples."""
    class Broken:
        def score(self, x, weights=None):
            return np.full(np.shape(x), np.nan)

    with pytest.raises(ValueError, match=r"the oracle returned non-finite scores \(200 of 200"):
        solvers.sd_kde(np.random.default_rng(8).normal(size=(100, 2)), Broken())


def test_load_with_a_string_dimension():
    with pytest.raises(TypeError, match="'2'") as info:
        scoreoracle.load(dim="2")
    assert "no checkpoint" not in str(info.value)


def test_relative_fisher_information_names_the_mismatched_arguments():
    rng = np.random.default_rng(9)
    with pytest.raises(ValueError, match="samples_f.*samples_g|samples_g.*samples_f") as info:
        solvers.relative_fisher_information(rng.normal(size=(50, 2)), rng.normal(size=(50, 3)), KDEOracle())
    assert "queries" not in str(info.value)


ONE_POINT_CALLS = {
    "kde": lambda x: KDEOracle().score(x),
    "discoformer": lambda x: DiScoFormerOracle(random_core(2)).fit(x),
    "blob": lambda x: solvers.BlobOracle().score(x),
    "sd_kde": lambda x: solvers.sd_kde(x),
    "entropy": lambda x: solvers.entropy(x, KDEOracle()),
    "fisher": lambda x: solvers.fisher_information(x, KDEOracle()),
    "fokker-planck": lambda x: solvers.simulate_fokker_planck(x, KDEOracle()),
    "landau": lambda x: solvers.simulate_landau(x, KDEOracle()),
}


@pytest.mark.parametrize("call", sorted(ONE_POINT_CALLS))
def test_a_single_point_is_refused_without_suggesting_a_transpose(call):
    with pytest.raises(ValueError, match="d \\+ 2") as info:
        ONE_POINT_CALLS[call](np.array([[1.0, 2.0]]))
    message = str(info.value)
    assert "transpos" not in message and ".T" not in message  # (2, 1) would not be valid either


@pytest.mark.parametrize("as_type", [np.asarray, torch.tensor], ids=["numpy", "torch"])
def test_one_query_as_a_1d_array_says_how_to_pass_it(as_type):
    fitted = KDEOracle().fit(np.random.default_rng(0).normal(size=(60, 3)))
    with pytest.raises(ValueError, match=r"read as m points in d = 1 .* shape \(1, 3\)"):
        fitted.score(as_type([0.1, 0.2, 0.3]))
    with pytest.raises(ValueError, match="dimension 1") as info:  # not d values: no such hint
        fitted.score(as_type([0.1, 0.2]))
    assert "read as" not in str(info.value)


# --- g. empty queries, solver arguments, oracle output shapes ------------------------------------------

@pytest.mark.parametrize("make", [KDEOracle, lambda: DiScoFormerOracle(random_core(2)), solvers.BlobOracle,
                                  GaussianFitOracle], ids=["kde", "discoformer", "blob", "gaussian-fit"])
def test_empty_queries_give_empty_results(make, x2):
    fitted = make().fit(x2)
    lf, s = fitted.log_density_and_score(np.zeros((0, 2)))
    assert lf.shape == (0,) and s.shape == (0, 2)
    lf, s = make().log_density_and_score(x2, torch.zeros(0, 2))
    assert isinstance(lf, torch.Tensor) and tuple(lf.shape) == (0,) and tuple(s.shape) == (0, 2)
    sd = solvers.sd_kde(x2)
    assert sd.log_density(np.zeros((0, 2))).shape == (0,) and sd.density(np.zeros((0, 2))).shape == (0,)


@pytest.mark.parametrize("value", [-1, 0, 50.5, True, "20"])
@pytest.mark.parametrize("solver", [solvers.simulate_fokker_planck, solvers.simulate_landau])
def test_bad_oracle_samples_are_named(solver, value, x2):
    with pytest.raises((ValueError, TypeError), match="oracle_samples"):
        solver(x2, GaussianFitOracle(), t_span=(0.0, 0.1), dt=0.02, oracle_samples=value)


@pytest.mark.parametrize("solver", [solvers.simulate_fokker_planck, solvers.simulate_landau])
def test_a_missing_oracle_is_named(solver, x2):
    with pytest.raises(TypeError, match="oracle"):
        solver(x2, None, t_span=(0.0, 0.1), dt=0.02)
    with pytest.raises(TypeError, match="oracle"):
        solver(x2, "kde", t_span=(0.0, 0.1), dt=0.02)


class WrongShapeOracle:
    """A user oracle whose log_density has the wrong shape."""

    def __init__(self, shape):
        self.shape = shape

    def fit(self, samples, weights=None):
        return self

    def log_density(self, samples, queries=None, *, weights=None):
        return np.zeros(self.shape(len(samples)))

    def score(self, samples, queries=None, *, weights=None):
        return np.zeros(np.shape(samples))


@pytest.mark.parametrize("shape", [lambda n: (n, 1), lambda n: (n - 1,), lambda n: ()], ids=["n,1", "n-1", "scalar"])
def test_entropy_refuses_log_densities_of_the_wrong_shape(shape, x2):
    with pytest.raises(ValueError, match="shape"):
        solvers.entropy(x2, WrongShapeOracle(shape))


@pytest.mark.parametrize("solver", [solvers.simulate_fokker_planck, solvers.simulate_landau])
def test_unknown_run_options_are_named(solver, tmp_path, x2):
    with pytest.raises(TypeError, match="chekpoint"):
        solver(x2, GaussianFitOracle(), t_span=(0.0, 0.1), dt=0.02, chekpoint=tmp_path / "run")
    assert not (tmp_path / "run").exists()


# --- h. progress of long calls ------------------------------------------------------------------------

@pytest.mark.parametrize("make", [lambda: KDEOracle(chunk_size=10, progress=None),
                                  lambda: DiScoFormerOracle(random_core(2), chunk_size=10, progress=None)],
                         ids=["kde", "discoformer"])
def test_a_long_call_shows_progress_by_default(make, monkeypatch, capsys, x2):
    q = np.random.default_rng(10).normal(size=(50, 2))  # 5 chunks of 10; 50 · 60 = 3000 pairs
    make().fit(x2).score(q)
    assert capsys.readouterr().err == ""  # below the default threshold: silent
    monkeypatch.setattr(scoreoracle.contract, "PROGRESS_PAIRS", 1000)
    make().fit(x2).score(q)
    err = capsys.readouterr().err
    assert "scoreoracle queries" in err and "/5 [" in err
    make().fit(x2).score(q[:10])  # a single chunk shows nothing, however many pairs
    assert capsys.readouterr().err == ""


# --- found while writing these tests -------------------------------------------------------------------

def test_oracles_sharing_a_core_do_not_interfere(x2):
    q = x2[:7] + 0.1
    core = random_core(2)
    single = DiScoFormerOracle(core)  # float32
    before = single.score(x2, q)
    double = DiScoFormerOracle(core, dtype=torch.float64)
    np.testing.assert_allclose(double.score(x2, q), before, rtol=1e-4, atol=1e-4)  # float32 vs float64
    np.testing.assert_array_equal(single.score(x2, q), before)  # the first oracle is unchanged
    assert next(core.parameters()).dtype == torch.float32  # and so is the caller's module


# --- found in review ---------------------------------------------------------------------------------

def test_euler_blow_up_between_snapshots_still_reports_the_trajectory(x2):
    """A velocity that turns NaN at a state that is not a snapshot: SolverDivergenceError with the
    trajectory, not an internal exception."""
    from solvers.exact import AnalyticFlowOracle
    bad = AnalyticFlowOracle(lambda x, t: np.full_like(x, np.nan) if t >= 0.3 else -x)
    with pytest.raises(solvers.SolverDivergenceError) as info:
        solvers.simulate_fokker_planck(x2, bad, t_span=(0.0, 1.0), dt=0.1, method="euler", save_every=5)
    assert np.isfinite(info.value.trajectory.final).all()


def test_options_object_and_step_hook(x2):
    seen = []
    options = solvers.RunOptions(method="euler", seed=2, on_step=lambda step, t, x: seen.append((step, t, x.shape)))
    traj = solvers.simulate_fokker_planck(x2, KDEOracle(), t_span=(0.0, 0.1), dt=0.05, options=options)
    assert [s for s, _, _ in seen] == [1, 2] and seen[-1][1] == 0.1 and traj.times[-1] == 0.1
    with pytest.raises(TypeError, match="not both"):
        solvers.simulate_fokker_planck(x2, KDEOracle(), t_span=(0.0, 0.1), dt=0.05, options=options, seed=3)


def test_weighted_context_subsets_skip_zero_weights(x2):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3000, 2))
    w = np.zeros(3000)
    w[:40] = 1.0  # only 40 samples carry weight
    oracle = DiScoFormerOracle(random_core(2), context_limit=500)
    log_f, score = oracle.fit(x, weights=w).log_density_and_score(x[:5])
    np.testing.assert_allclose(score, DiScoFormerOracle(random_core(2)).fit(x[:40]).score(x[:5]), rtol=1e-5, atol=1e-5)
    assert np.isfinite(log_f).all()


@pytest.mark.parametrize("far_weight", [0.0, 5e-13, 1e-30, 1e-300])
def test_samples_without_weight_far_away_do_not_turn_the_answer_to_nan(far_weight):
    """Burn-in rows masked by weight 0 (or 1e-300) 1e10 away: every answer was NaN (float32
    overflow in the context); they are no context now, and the answer is that of the other rows."""
    rng = np.random.default_rng(0)
    x, q = rng.normal(size=(1000, 5)), rng.normal(size=(5, 5))
    x[:100] = 1e10 + rng.normal(size=(100, 5))
    w = np.r_[np.full(100, far_weight), np.ones(900)]
    fitted, kept = scoreoracle.load().fit(x, weights=w), scoreoracle.load().fit(x[100:])
    for a, b in zip(fitted.log_density_and_score(q), kept.log_density_and_score(q)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
    log_f, score = scoreoracle.load().log_density_and_score(x, weights=w)  # at every sample, weightless too
    assert np.isfinite(log_f).all() and np.isfinite(score).all() and (log_f[:100] < log_f[100:].min()).all()


@pytest.mark.parametrize("d", [2, 3, 5])
def test_far_queries_get_a_decreasing_density_and_an_inward_score(d):
    """Beyond every sample a core extrapolates (the all-d core's log f̂ turned upward from ~6× the
    samples' radius and its score outward from ~10×); the oracle continues it as a power law from 1.5×."""
    x = np.random.default_rng(1).normal(size=(300, d))
    fitted = scoreoracle.load().fit(x)
    direction = np.ones(d) / np.sqrt(d)
    log_f, score = fitted.log_density_and_score(np.geomspace(1, 1e4, 40)[:, None] * 4 * direction)
    assert np.isfinite(log_f).all() and np.isfinite(score).all()
    assert (np.diff(log_f) < 0).all()
    assert (score @ direction < 0).all()


@pytest.mark.parametrize("d,n,seed", [(2, 1024, 1), (2, 1024, 3), (10, 256, 2), (10, 256, 3)])
def test_heavy_tailed_queries_beyond_the_samples_get_a_heavy_tail(d, n, seed):
    """Student-t (ν = 3) queries fall beyond the largest sample (2-D, n = 1024: up to 2.5× its
    radius on these draws), where the Gaussian fit's linear score is wrong.  Fading into the fit
    from 1× the radius made the 2-D score MSE 0.94; from 3× it still made the d = 10 one 3.3 / 1.7
    and the log-density MSE 6745 / 884 on these draws (now 0.66 / 0.77 and 0.57 / 0.51)."""
    dist = scoreoracle.StudentT(3, torch.zeros(d), torch.eye(d))
    g = torch.Generator().manual_seed(seed)
    x, y = dist.sample(n, g).numpy(), dist.sample(1024, g).numpy()
    log_f, score = scoreoracle.load().log_density_and_score(x, y)
    truth = dist.score(torch.from_numpy(y)).numpy()
    true_log_f = dist.log_density(torch.from_numpy(y)).numpy()
    assert ((score - truth) ** 2).sum(1).mean() < (0.1 if d == 2 else 1.0)
    assert ((log_f - true_log_f) ** 2).mean() < 1.0


def test_far_field_weight_is_one_within_reach_zero_beyond_and_smooth_between():
    from scoreoracle.oracles.pretrained import FAR_FIELD, far_field_weight
    inner, outer = FAR_FIELD
    radii = torch.linspace(0, 3 * outer, 301, dtype=torch.float64)
    z = (radii[:, None] * torch.tensor([[0.6, 0.8]], dtype=torch.float64)).requires_grad_(True)
    weight, gradient = far_field_weight(z, torch.tensor([1.0]))
    assert (weight[radii <= inner] == 1).all() and (weight[radii >= outer] == 0).all()
    assert (weight.diff() <= 0).all()
    midpoint, _ = far_field_weight(torch.tensor([[0.5 * (inner + outer)]]), torch.tensor([1.0]))
    assert float(midpoint) == pytest.approx(0.5)
    torch.testing.assert_close(gradient, torch.autograd.grad(weight.sum(), z)[0])


@pytest.mark.parametrize("make", [GaussianFitOracle, KDEOracle, scoreoracle.load])
def test_a_constant_coordinate_among_the_weighted_samples_is_singular(make):
    """Zero-weight samples spread that coordinate; the weighted covariance is singular all the same
    (it used to pass on the round-off of the weighted mean and give scores of 1e16)."""
    x = np.random.default_rng(0).normal(size=(200, 2))
    x[:100, 1] = 0.1
    with pytest.raises(scoreoracle.SingularSamplesError, match=r"constant coordinate \(column\(s\) \[1\]"):
        make().fit(x, weights=np.r_[np.ones(100), np.zeros(100)])


def test_shipped_weights_are_frozen_and_query_gradients_still_flow():
    """Differentiating an answer gives gradients for the queries and leaves the shared core alone."""
    oracle = scoreoracle.load()
    x = np.random.default_rng(0).normal(size=(100, 2))
    queries = torch.tensor(x[:5], requires_grad=True)
    oracle.fit(x).score(queries).sum().backward()
    assert queries.grad is not None and torch.isfinite(queries.grad).all()
    core = oracle.for_dim(2).core
    assert all(not p.requires_grad and p.grad is None for p in core.parameters())


@pytest.mark.parametrize("option,value,message", [
    ("chunk_size", 0, "chunk_size must be a positive integer"),
    ("ensembles", 0, "ensembles must be a positive integer"),
    ("seed", -1, "seed must be a non-negative integer"),
    ("context_limit", "Auto", 'context_limit must be "auto", None or a positive integer'),
])
def test_load_refuses_bad_options_at_once(option, value, message):
    with pytest.raises(ValueError, match=message):
        scoreoracle.load(**{option: value})


@pytest.mark.parametrize("option,value,message", [
    ("context_limit", "auto", "context_limit must be None or a positive integer"),
    ("rotations", 0, "rotations must be a positive integer"),
    ("seed", 1.5, "seed must be a non-negative integer"),
])
def test_an_oracle_built_directly_refuses_the_same_bad_options(option, value, message):
    """load()'s "auto" context limit is resolved per checkpoint; a core passed directly has none."""
    with pytest.raises(ValueError, match=message):
        DiScoFormerOracle(random_core(2), **{option: value})


@pytest.mark.parametrize("dim", [None, 2, 5])
def test_rotations_are_ignored_by_the_all_dimension_core_whichever_way_it_is_loaded(dim):
    """load()'s docstring: the all-dimension core, exactly invariant, always uses one frame."""
    x = np.random.default_rng(0).normal(size=(100, 5 if dim is None else dim))
    np.testing.assert_array_equal(scoreoracle.load(dim, rotations=4).fit(x).score(x[:3]),
                                  scoreoracle.load(dim, rotations=1).fit(x).score(x[:3]))


def test_blob_oracle_far_from_every_sample_is_finite_and_matches_its_formula_near():
    """M(y) = Σ w_j exp(−|y − x_j|²/ε) underflowed far out: log f̂ was −inf and the score NaN."""
    rng = np.random.default_rng(0)
    x, w = rng.normal(size=(100, 2)), rng.uniform(0.5, 1.5, size=100)
    fitted = solvers.BlobOracle(epsilon=0.3).fit(x, weights=w)
    w = w / w.sum()
    near = x[:3] + 0.1
    kernel = np.exp(-((near[:, None] - x[None]) ** 2).sum(-1) / 0.3)  # (3, 100)
    mass = kernel @ w
    sample_mass = np.exp(-((x[:, None] - x[None]) ** 2).sum(-1) / 0.3) @ w
    score = -2 / 0.3 * np.einsum("ij,ijk->ik", w * kernel * (1 / mass[:, None] + 1 / sample_mass),
                                 near[:, None] - x[None])
    log_f, s = fitted.log_density_and_score(near)
    np.testing.assert_allclose(log_f, np.log(mass) - np.log(np.pi * 0.3), rtol=1e-12)
    np.testing.assert_allclose(s, score, rtol=1e-10)
    far = np.array([[40.0, 0.0], [0.0, -1e3]])
    log_f, s = fitted.log_density_and_score(far)
    assert np.isfinite(log_f).all() and np.isfinite(s).all()
    assert (log_f < -1000).all() and (np.einsum("ik,ik->i", s, far) < 0).all()


GAIN = 1.0


def _drift_with_a_global_gain(x, t):
    return -GAIN * x


def test_fingerprints_tell_drifts_apart_by_the_names_and_globals_they_read(monkeypatch):
    """Resume compares fingerprints: −sin and −cos, or one drift reading a changed module-level
    constant, used to fingerprint alike, so a different run was resumed."""
    from scoreoracle.fingerprint import fingerprint
    assert fingerprint(lambda x, t: -np.sin(x)) != fingerprint(lambda x, t: -np.cos(x))
    before = fingerprint(_drift_with_a_global_gain)
    assert fingerprint(_drift_with_a_global_gain) == before
    monkeypatch.setitem(_drift_with_a_global_gain.__globals__, "GAIN", 2.0)
    assert fingerprint(_drift_with_a_global_gain) != before


def test_fingerprints_see_keyword_defaults_numpy_scalars_object_arrays_and_submodule_settings():
    """Keyword-only defaults were not hashed (a drift with k = 2 resumed a k = 1 run); np.float64
    hashed by its numpy-2 repr ("np.float64(1.5)"), unlike the float it equals; object arrays by
    their pointers (another process, another hash); a submodule's settings not at all."""
    from scoreoracle.fingerprint import fingerprint

    def gain_one(x, t, *, k=1.0):
        return -k * x

    def gain_two(x, t, *, k=2.0):
        return -k * x
    gain_two.__qualname__ = gain_one.__qualname__
    assert fingerprint(gain_one) != fingerprint(gain_two)
    assert fingerprint(np.float64(1.5)) == fingerprint(1.5) == fingerprint(np.float32(1.5))
    assert fingerprint(np.array([{"a": 1}], dtype=object)) == fingerprint(np.array([{"a": 1}], dtype=object))
    assert fingerprint(np.array([{"a": 1}], dtype=object)) != fingerprint(np.array([{"a": 2}], dtype=object))

    class Scale(torch.nn.Module):
        def __init__(self, factor):
            super().__init__()
            self.factor = factor

        def forward(self, x):
            return self.factor * x

    def wrapped(factor):
        top = torch.nn.Module()
        top.inner = Scale(factor)
        return top
    assert fingerprint(wrapped(1.0)) == fingerprint(wrapped(1.0)) != fingerprint(wrapped(2.0))
    # torch's own modules count by name, not by their code (which changes with the torch version)
    from scoreoracle.fingerprint import describe
    assert torch.nn.Linear.forward.__code__.co_code.hex() not in describe(torch.nn.Linear(2, 2), set())


def test_a_run_saved_under_other_fingerprint_rules_is_named_as_such_not_as_a_different_run(tmp_path, x2):
    """Fingerprint rules change between versions; resuming such a run said "belongs to a different
    run (other particles, oracle, …)" of the very same run."""
    import json
    kw = dict(potential_gradient=lambda x: x, t_span=(0.0, 0.2), dt=0.1, checkpoint=tmp_path / "run")
    solvers.simulate_fokker_planck(x2, GaussianFitOracle(), **kw)
    record = json.loads((tmp_path / "run" / "run.json").read_text())
    (tmp_path / "run" / "run.json").write_text(json.dumps({"fingerprint": record["fingerprint"]}))
    with pytest.raises(ValueError, match="saved by an older scoreoracle"):
        solvers.simulate_fokker_planck(x2, GaussianFitOracle(), resume=True, **kw)


def test_a_new_run_refuses_a_folder_of_other_files_and_deletes_nothing(tmp_path, x2):
    (tmp_path / "snapshots").mkdir()
    (tmp_path / "snapshots" / "important.txt").write_text("mine")
    with pytest.raises(ValueError, match="holds no run"):
        solvers.simulate_fokker_planck(x2, GaussianFitOracle(), drift=lambda x, t: -x, t_span=(0.0, 0.1), dt=0.05,
                                       checkpoint=tmp_path)
    assert (tmp_path / "snapshots" / "important.txt").read_text() == "mine"


@pytest.mark.parametrize("gamma,regularization,message", [
    (-3.0, 0.0, "gamma < 0 needs a positive regularization"),  # was NaN velocities, no error
    (0.0, float("nan"), "regularization δ must be finite"),
    (0.0, float("inf"), "regularization δ must be finite"),  # froze the particles
    (0.0, -1.0, "regularization δ must be finite and non-negative"),
])
def test_landau_collision_parameters_are_checked_in_the_field_and_the_solver(gamma, regularization, message, x2):
    with pytest.raises(ValueError, match=message):
        solvers.landau_field(x2, -x2, gamma=gamma, regularization=regularization)
    with pytest.raises(ValueError, match=message):
        solvers.simulate_landau(x2, GaussianFitOracle(), gamma=gamma, regularization=regularization,
                                t_span=(0.0, 0.1), dt=0.05)


def test_entropy_from_an_oracle_without_log_densities_is_refused(x2):
    """A score-only reference answers log f with NaN: entropy used to return NaN as its estimate."""
    score_only = AnalyticFlowOracle(lambda x, t: -x).at_time(0.0)
    with pytest.raises(ValueError, match="non-finite log-densities"):
        solvers.entropy(x2, score_only)


def test_an_explicit_method_is_never_overridden_by_the_options(x2):
    """method="heun" (the default's value) beside options=RunOptions(method="euler") used to run Euler."""
    options = solvers.RunOptions(method="euler")
    run = functools.partial(solvers.simulate_fokker_planck, x2, KDEOracle(), drift=lambda x, t: -x, t_span=(0.0, 0.1),
                            dt=0.05)
    with pytest.raises(ValueError, match="conflicts with options.method='euler'"):
        run(method="heun", options=options)
    np.testing.assert_array_equal(run(options=options).final, run(method="euler").final)


# --- defects found by trying the library as a new user (2026-11-26) ---------------------------------

@pytest.mark.parametrize("checkpoint,d", [(None, 2), ("d3", 3)])
def test_a_query_far_beyond_the_samples_gets_a_power_law_tail_not_nan(checkpoint, d):
    """Queries ~1e10 whitened units out overflowed the float32 core to NaN, and the far-field weight 0
    times NaN stayed NaN; the core now sees such points pulled in to the edge of its far field.
    Out there the answer is the power law log f(m + t·u) = c(u) + κ(u)·log t, κ ≤ −(d + 1)."""
    x = 1e-5 * np.random.default_rng(0).normal(size=(500, d))
    direction = np.eye(d)[:1]
    q = x.mean(0) + np.array([[1e5], [1e7], [-3e7]]) * direction
    oracle = scoreoracle.load(checkpoint=checkpoint)
    log_f, score = oracle.fit(x).log_density_and_score(q)
    assert np.isfinite(log_f).all() and np.isfinite(score).all()
    kappa = np.einsum("ik,ik->i", score, q - x.mean(0))  # s·(x − m) = s_z·z: whitening is affine
    assert kappa[0] == pytest.approx(kappa[1], rel=1e-6) and kappa.max() <= -(d + 1) + 1e-9
    assert log_f[1] - log_f[0] == pytest.approx(kappa[0] * np.log(100), rel=1e-6)
    queries = torch.tensor(q, requires_grad=True)
    oracle.fit(x).log_density(queries).sum().backward()
    assert torch.isfinite(queries.grad).all()


@pytest.mark.parametrize("make", [GaussianFitOracle, KDEOracle, solvers.BlobOracle, scoreoracle.load])
def test_weights_piled_on_one_sample_are_refused_by_their_effective_sample_size(make):
    """One weight 1e20 times the rest: 1 − Σw² rounded to 0 in the unbiased weighted covariance
    (NaN from the Gaussian fit and KDE, −inf from the blob oracle)."""
    x = np.random.default_rng(0).normal(size=(500, 2))
    w = np.ones(500)
    w[0] = 1e20
    with pytest.raises(ValueError, match="effective sample size"):
        make().fit(x, weights=w)
    huge = np.full(500, 1e308)  # any scale: the sum no longer overflows (the float32 core's weighted path: 1e-7)
    np.testing.assert_allclose(make().fit(x, weights=huge).log_density(x[:3]), make().fit(x).log_density(x[:3]),
                               rtol=1e-6)


@pytest.mark.parametrize("call", [
    lambda x: solvers.fisher_information(x, KDEOracle(), divergence=False),
    lambda x: solvers.entropy(x, KDEOracle()),
    lambda x: solvers.relative_fisher_information(x, x, KDEOracle()),
    lambda x: solvers.sd_kde(x),
])
def test_estimators_of_one_sample_set_refuse_a_batch(call):
    """fisher_information(divergence=False) returned a number for a batch (3, 200, 2)."""
    with pytest.raises(ValueError, match="one sample set"):
        call(np.random.default_rng(0).normal(size=(3, 200, 2)))


def test_exact_oracle_answers_each_set_of_a_batch_with_its_own_law():
    """A batched law fitted to a batch gave (B, B, m) results; fitted to one set, (B, m)."""
    law = scoreoracle.random_gmm(3, 2, generator=torch.Generator().manual_seed(0))
    x, q = law.sample(400), law.sample(10)
    log_f, score = ExactOracle(law).fit(x).log_density_and_score(q)
    true_log_f, true_score = law.log_density_and_score(q)
    torch.testing.assert_close(log_f, true_log_f.double())
    torch.testing.assert_close(score, true_score.double())
    with pytest.raises(ValueError, match="batched law"):
        ExactOracle(law).fit(x[0]).log_density(q[0])


def test_exact_oracle_takes_a_law_that_answers_in_numpy():
    class StandardNormal:
        dim = 2

        def log_density_and_score(self, q):
            q = np.asarray(q)
            return -0.5 * (q * q).sum(-1) - np.log(2 * np.pi), -q

    q = np.array([[0.5, -1.0]])
    fitted = ExactOracle(StandardNormal()).fit(np.random.default_rng(0).normal(size=(10, 2)))
    log_f, score = fitted.log_density_and_score(q)
    np.testing.assert_allclose(log_f, [-0.625 - np.log(2 * np.pi)])
    np.testing.assert_allclose(score, -q)


def test_isotropic_kde_keeps_its_precision_under_a_large_offset():
    """The isotropic KDE expanded ‖q‖² + ‖x‖² − 2q·x about the origin: 0.03 nats off at offset 1e7."""
    rng = np.random.default_rng(0)
    x, q, h = rng.normal(size=(300, 2)), rng.normal(size=(5, 2)), 0.3
    d2 = ((q[:, None] - x[None]) ** 2).sum(-1)
    exact = np.log(np.exp(-d2 / (2 * h * h)).mean(1)) - np.log(2 * np.pi * h * h)
    log_f = KDEOracle(h, isotropic=True).fit(x + 1e7).log_density(q + 1e7)
    np.testing.assert_allclose(log_f, exact, atol=1e-7)  # float64 holds x + 1e7 to ~2e-9


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
@pytest.mark.parametrize("make", [lambda: scoreoracle.load(device="cuda"), lambda: KDEOracle(device="cuda:0"),
                                  lambda: DiScoFormerOracle(random_core(2), device="cuda")])
def test_a_cuda_device_the_machine_lacks_is_refused_when_asked_for(make):
    """It was accepted, and the first fit failed with torch's "not compiled with CUDA"."""
    with pytest.raises(ValueError, match="'cuda(:0)?' is not available"):
        make()


def test_empty_list_queries_and_read_only_arrays():
    import warnings
    x = np.random.default_rng(0).normal(size=(300, 2))
    fitted = GaussianFitOracle().fit(x)
    assert fitted.score([]).shape == (0, 2) and fitted.log_density(np.array([])).shape == (0,)
    read_only = x.copy()
    read_only.flags.writeable = False
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # torch warned on sharing memory with a non-writable array
        np.testing.assert_array_equal(GaussianFitOracle().fit(read_only, weights=np.ones(300)).score(read_only[:4]),
                                      fitted.score(x[:4]))


def test_one_dimensional_dask_queries_in_d1_as_numpy_ones():
    da = pytest.importorskip("dask.array")
    x = np.random.default_rng(0).normal(size=300)
    fitted, q = GaussianFitOracle().fit(x), np.linspace(-1, 1, 10)
    log_f, score = fitted.log_density_and_score(da.from_array(q, chunks=4))
    np.testing.assert_array_equal(log_f.compute(), fitted.log_density(q))
    np.testing.assert_array_equal(score.compute(), fitted.score(q))


def test_a_drift_with_a_comprehension_or_nested_lambda_can_be_checkpointed():
    """Run fingerprints could not describe a nested code object: `checkpoint=` failed with "cannot
    fingerprint a code" for a drift with a list comprehension, while the same run without it worked."""
    from scoreoracle.fingerprint import fingerprint

    def drift(x, t):
        return np.stack([-x[:, i] for i in range(x.shape[1])], 1)

    def twice(x, t):
        return np.stack([-2 * x[:, i] for i in range(x.shape[1])], 1)

    assert fingerprint(drift) == fingerprint(drift) != fingerprint(twice)


class _ConsistentCore(torch.nn.Module):
    """A stand-in all-d core whose score is exactly the gradient of its log-density, and isotropic
    (so is its power-law continuation): excess e(z) = a·sin(‖z‖²/8) over N(0, I), score
    −z + a·cos(‖z‖²/8)·z/4."""

    architecture = "test"

    def __init__(self, a=0.7):
        super().__init__()
        self.config = type("Config", (), {"dim": None})()
        self.a = torch.nn.Parameter(torch.tensor(a, dtype=torch.float64), requires_grad=False)

    def decode(self, z, ctx=None, chunk_size=None):
        phase = (z * z).sum(-1) / 8
        return self.a * torch.sin(phase), -z + (self.a * torch.cos(phase)).unsqueeze(-1) * z / 4

    def encode(self, z, log_weights=None, n_eff=None, chunk_size=None):
        return self.decode(z)

    def at_context(self, ctx):
        return ctx


def test_the_faded_score_is_the_gradient_of_the_faded_log_density():
    """Between 1× and 2× the samples' reach the log-density was faded with the weight w but the score
    without the excess·∇w term: up to 3× off the slope of the returned log f (2-D Student-t).  The
    power-law continuation beyond is exactly consistent too when the core is isotropic."""
    x = np.random.default_rng(0).normal(size=(300, 2)) * [1.0, 3.0]
    fitted = DiScoFormerOracle(_ConsistentCore(), dtype=torch.float64).fit(x)
    reach = np.abs(x).max() * 3  # well into the band and beyond, along three rays
    rays = np.linspace(0.2, 1.2, 41)[:, None, None] * reach * np.array([[0.6, 0.8], [-1.0, 0.1], [0.3, -0.9]])
    queries = torch.tensor(rays.reshape(-1, 2), requires_grad=True)
    log_f, score = fitted.log_density_and_score(queries)
    gradient, = torch.autograd.grad(log_f.sum(), queries)
    torch.testing.assert_close(score, gradient, rtol=1e-9, atol=1e-9)


# --- defects found by a third new-user trial (estimators, reports, docs) ---------------------------

def test_fisher_information_takes_finite_differences_of_a_law_that_answers_in_numpy():
    """ExactOracle claimed autograd for any law; fisher_information's divergence form then crashed
    on a numpy law ("Can't call numpy() on Tensor that requires grad")."""
    class StandardNormal:
        dim = 2

        def log_density_and_score(self, q):
            q = np.asarray(q)
            return -0.5 * (q * q).sum(-1) - np.log(2 * np.pi), -q

    x = np.random.default_rng(0).normal(size=(500, 2))
    assert not ExactOracle(StandardNormal()).fit(x).differentiable
    est = solvers.fisher_information(x, ExactOracle(StandardNormal()))
    assert est.divergence_form == pytest.approx(2.0, rel=1e-6)  # −∇·(−x) = d exactly
    assert ExactOracle(GaussianMixture(torch.ones(1), torch.zeros(1, 2), torch.eye(2)[None])).fit(x).differentiable


def test_select_says_why_it_kept_the_default():
    """With fewer than 30 held-out points select kept the default silently, even when the other
    checkpoint's loss was 5 standard errors lower."""
    oracle = scoreoracle.load()
    x = scoreoracle.StudentT(2, torch.zeros(3), torch.eye(3)).sample(130, torch.Generator().manual_seed(0)).numpy()
    report = oracle.select(x, max_held_out=13).selection  # (n ≥ 128: d3 is the default)
    assert report.chosen == report.default and report.reason.startswith("too few held-out points to judge (13 < 30)")
    assert oracle.select(np.random.default_rng(0).normal(size=(100, 2))).selection.reason == \
        "one checkpoint serves samples of this dimension and size"


def test_select_reason_agrees_with_the_choice_when_a_loss_is_not_finite():
    """A non-finite default loss picks the other checkpoint even on 15 held-out points; the reason
    said 'too few held-out points: the default is kept'."""
    from scoreoracle.oracles.pretrained import _selection_reason
    from scoreoracle.oracles.score_matching import Comparison
    broken_default = Comparison(math.inf, 1.0, math.nan, 15)
    assert broken_default.better
    assert _selection_reason(broken_default, "equivariant") == \
        "the default's held-out score-matching loss is not finite, equivariant's is"
    assert not Comparison(1.0, math.nan, math.nan, 100).better
    assert "not finite" in _selection_reason(Comparison(1.0, math.nan, math.nan, 100), "equivariant")


def test_sd_kde_bandwidth_of_uniform_weights_is_the_unweighted_one():
    """Unweighted quantiles interpolated, weighted ones did not (h 0.21752 vs 0.21633 at n = 100);
    and weights of another scale gave another n_eff."""
    from solvers.sd_kde import sd_kde_bandwidth
    x = np.random.default_rng(0).normal(size=(100, 2))
    h = sd_kde_bandwidth(x)
    assert sd_kde_bandwidth(x, np.full(100, 0.01)) == pytest.approx(h, rel=1e-12)
    assert sd_kde_bandwidth(x, np.full(100, 7.0)) == pytest.approx(h, rel=1e-12)


def test_scalar_masked_and_long_double_inputs():
    fitted = GaussianFitOracle().fit(np.random.default_rng(0).normal(size=(300, 1)))
    for scalar in (np.float64(0.5), torch.tensor(0.5), 0.5):  # numpy's scalar was one point, torch's refused
        with pytest.raises(ValueError, match="is a scalar"):
            fitted.log_density(scalar)
    with pytest.raises(ValueError, match="masked array with 1 masked value"):  # the mask was ignored
        fitted.log_density(np.ma.masked_array([[1.0], [99.0]], mask=[[0], [1]]))
    np.testing.assert_array_equal(fitted.log_density(np.array([[0.5]], dtype=np.longdouble)),
                                  fitted.log_density([[0.5]]))  # was torch's raw TypeError


def test_model_card_of_an_unknown_name_lists_the_available_ones():
    from scoreoracle.weights import model_card
    with pytest.raises(ValueError, match=r"no model card for a checkpoint named 'nope'.*available: \["):
        model_card("nope")


def test_an_estimate_formats_like_its_value():
    est = solvers.entropy(np.random.default_rng(0).normal(size=(300, 2)), GaussianFitOracle())
    assert f"{est:.3f}" == f"{est.value:.3f}"


def test_a_streamed_trajectory_indexes_like_the_array_it_stands_for(tmp_path):
    """A SnapshotStack refused fancy indices, [..., 0] and had no ndim."""
    particles = np.random.default_rng(0).normal(size=(5, 7, 2))
    Trajectory(np.arange(5.0), particles, {}).save(tmp_path)
    stack = Trajectory.load(tmp_path).particles
    assert stack.ndim == 3 and stack.shape == particles.shape
    for index in (2, -1, slice(1, 4), [0, -1], np.array([True, False, True, False, True]), (3, 0), (slice(None), 2, 1),
                  (..., 0), ([1, 3], slice(None), 1), (-2, [0, 6]), slice(4, 2)):
        np.testing.assert_array_equal(stack[index], particles[index])
    with pytest.raises(IndexError, match="out of range for 5 snapshots"):
        stack[5]


def test_a_drift_returning_nan_is_named_not_blamed_on_the_particles():
    """It was reported as "the initial particles give a non-finite velocity"."""
    x0 = np.random.default_rng(0).normal(size=(300, 2))
    with pytest.raises(FloatingPointError, match="the drift returned non-finite values at t = 0"):
        solvers.simulate_fokker_planck(x0, GaussianFitOracle(), drift=lambda x, t: np.full_like(x, np.nan),
                                       t_span=(0, 0.3), dt=0.1)
    with pytest.raises(SolverDivergenceError, match="the drift returned non-finite values at t = 0.2") as info:
        solvers.simulate_fokker_planck(x0, GaussianFitOracle(), drift=nan_after(0.15), t_span=(0, 0.3), dt=0.1)
    np.testing.assert_allclose(info.value.trajectory.times, [0.0, 0.1], rtol=1e-12)
