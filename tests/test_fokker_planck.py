import numpy as np
import pytest

from scoreoracle import KDEOracle
from solvers import SolverDivergenceError, simulate_fokker_planck
from solvers.exact import AnalyticFlowOracle, heat_flow_map, ou_flow_map, ou_variance


def pathwise_error(x, exact):
    """RMS particle distance to the exact flow, relative to the RMS radius."""
    return np.sqrt(((x - exact) ** 2).sum(1).mean() / (exact ** 2).sum(1).mean())


def heat_oracle():  # data N(0, 2t·I): score −x/(2t)
    return AnalyticFlowOracle(lambda x, t: -x / (2 * t))


@pytest.mark.parametrize("d", [1, 2, 5])
def test_heat_flow_with_exact_score_is_pathwise_exact(d, rng):
    x0 = rng.normal(size=(2000, d)) * np.sqrt(2.0)
    traj = simulate_fokker_planck(x0, heat_oracle(), t_span=(1.0, 2.0), dt=0.01, method="heun")
    err = pathwise_error(traj.final, heat_flow_map(x0, 1.0, 2.0, 0.0))
    assert err < 1e-3  # target: ≤ 0.1 % with Heun; with the exact score only time-stepping error remains
    assert traj.times[0] == 1.0 and traj.times[-1] == 2.0 and traj.particles.shape[1:] == (2000, d)


def test_ou_flow_with_exact_score(rng):
    v0 = 0.1  # initial variance at t = 0
    oracle = AnalyticFlowOracle(lambda x, t: -x / ou_variance(t, v0))
    x0 = rng.normal(size=(2000, 2)) * np.sqrt(ou_variance(0.1, v0))
    traj = simulate_fokker_planck(x0, oracle, potential_gradient=lambda x: x, t_span=(0.1, 1.1), dt=0.01)
    assert pathwise_error(traj.final, ou_flow_map(x0, 0.1, 1.1, v0)) < 1e-3
    # and the OU covariance law 1 + (v0 − 1)e^{−2t} through the recorded diagnostics
    var = np.trace(traj.diagnostics["covariance"], axis1=1, axis2=2) / 2
    emp0 = np.trace(np.cov(x0.T, bias=True)) / 2
    expected = ou_variance(traj.times, v0) * emp0 / ou_variance(0.1, v0)
    np.testing.assert_allclose(var, expected, rtol=2e-3)


@pytest.mark.parametrize("method,order,tol", [("euler", 1, 2e-2), ("heun", 2, 1e-3), ("rk4", 4, 1e-5)])
def test_time_steppers_have_their_order(method, order, tol, rng):
    """Exact scores, so the error is the stepper's alone: small at dt = 0.05, and halving dt
    divides it by ≈ 2^order."""
    x0 = rng.normal(size=(500, 2)) * np.sqrt(2.0)
    exact = heat_flow_map(x0, 1.0, 2.0, 0.0)
    errors = [pathwise_error(simulate_fokker_planck(x0, heat_oracle(), t_span=(1.0, 2.0), dt=dt,
                                                    method=method).final, exact) for dt in (0.05, 0.025)]
    assert errors[0] < tol
    assert errors[0] / errors[1] == pytest.approx(2 ** order, rel=0.2), errors


def test_matrix_diffusion_and_drift(rng):
    """Anisotropic heat flow: D = diag(1, 0.25), data N(0, diag(2t, t/2)): exact map x·√(t1/t0)."""
    D = np.diag([1.0, 0.25])
    oracle = AnalyticFlowOracle(lambda x, t: -x / (2 * np.diag(D) * t))
    x0 = rng.normal(size=(1000, 2)) * np.sqrt(2 * np.diag(D))
    traj = simulate_fokker_planck(x0, oracle, diffusion=D, t_span=(1.0, 2.0), dt=0.02)
    assert pathwise_error(traj.final, x0 * np.sqrt(2.0)) < 1e-3
    # a constant drift b translates the same flow
    traj_b = simulate_fokker_planck(x0, AnalyticFlowOracle(lambda x, t: -(x - (t - 1) * np.array([1.0, 0])) /
                                                            (2 * np.diag(D) * t)),
                                    drift=lambda x, t: np.tile([1.0, 0.0], (len(x), 1)), diffusion=D,
                                    t_span=(1.0, 2.0), dt=0.02)
    assert pathwise_error(traj_b.final - [1.0, 0.0], x0 * np.sqrt(2.0)) < 1e-3


def test_kde_oracle_runs_and_is_worse_than_exact(rng):
    x0 = rng.normal(size=(1000, 2)) * np.sqrt(2.0)
    exact_map = heat_flow_map(x0, 1.0, 2.0, 0.0)
    kde = simulate_fokker_planck(x0, KDEOracle("silverman"), t_span=(1.0, 2.0), dt=0.05)
    err = pathwise_error(kde.final, exact_map)
    assert 1e-3 < err < 0.15  # KDE's smoothing bias: a few percent, far above the exact score's error


class InterruptingKDE(KDEOracle):
    """A KDE oracle that raises KeyboardInterrupt on its n-th call (a killed run)."""

    def __init__(self, calls_before_interrupt):
        super().__init__()
        self.calls_left = calls_before_interrupt

    def _fit(self, samples, weights):
        self.calls_left -= 1
        if self.calls_left < 0:
            raise KeyboardInterrupt
        return super()._fit(samples, weights)

    def fingerprint(self):  # the same oracle as KDEOracle(): only the process dies
        return KDEOracle().fingerprint()


def test_resume_equals_uninterrupted_run(tmp_path, rng):
    x0 = rng.normal(size=(300, 2))
    kw = dict(potential_gradient=lambda x: x, t_span=(0.0, 0.5), dt=0.01, save_every=5, checkpoint_every=7)
    ck = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        simulate_fokker_planck(x0, InterruptingKDE(50), checkpoint=ck, **kw)
    with np.load(ck / "state.npz") as f:
        assert 0 < int(f["step"]) < 50  # interrupted midway, after some checkpoints
    resumed = simulate_fokker_planck(x0, KDEOracle(), checkpoint=ck, resume=True, **kw)
    uninterrupted = simulate_fokker_planck(x0, KDEOracle(), **kw)
    np.testing.assert_array_equal(resumed.times, uninterrupted.times)
    np.testing.assert_array_equal(resumed.particles, uninterrupted.particles)
    for k in uninterrupted.diagnostics:
        np.testing.assert_array_equal(resumed.diagnostics[k], uninterrupted.diagnostics[k])


def test_subsampled_oracle_is_reproducible_with_a_seed(rng):
    x0 = rng.normal(size=(400, 2))
    kw = dict(potential_gradient=lambda x: x, t_span=(0.0, 0.1), dt=0.02, oracle_samples=100)
    a = simulate_fokker_planck(x0, KDEOracle(), seed=3, **kw)
    b = simulate_fokker_planck(x0, KDEOracle(), seed=3, **kw)
    c = simulate_fokker_planck(x0, KDEOracle(), seed=4, **kw)
    np.testing.assert_array_equal(a.final, b.final)
    assert not np.array_equal(a.final, c.final)


def test_divergence_stops_with_last_good_state(rng):
    x0 = rng.normal(size=(100, 2))
    blow_up = AnalyticFlowOracle(lambda x, t: np.where(t > 0.05, np.nan, -x))
    with pytest.raises(SolverDivergenceError, match="non-finite") as info:
        simulate_fokker_planck(x0, blow_up, t_span=(0.0, 1.0), dt=0.01, method="euler")
    traj = info.value.trajectory
    assert np.isfinite(traj.final).all() and 0.04 < traj.times[-1] <= 0.06


@pytest.mark.parametrize("kwargs,match", [
    (dict(dt=0.0), "dt must be a positive"),
    (dict(dt=-0.1), "dt must be a positive"),
    (dict(t_span=(1.0, 0.0)), "t_span must increase"),
    (dict(method="leapfrog"), "method must be one of"),
    (dict(diffusion=np.eye(3)), "diffusion"),
    (dict(drift=lambda x, t: x[:, :1]), "drift returned shape"),
])
def test_bad_arguments(kwargs, match, rng):
    args = dict(t_span=(0.0, 0.1), dt=0.01)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        simulate_fokker_planck(rng.normal(size=(50, 2)), KDEOracle(), **args)


def test_bad_particles(rng):
    with pytest.raises(ValueError, match="NaN"):
        simulate_fokker_planck(np.full((50, 2), np.nan), KDEOracle(), t_span=(0, 0.1), dt=0.01)
    with pytest.raises(ValueError, match="particles.T"):
        simulate_fokker_planck(rng.normal(size=(2, 50)), KDEOracle(), t_span=(0, 0.1), dt=0.01)


def test_oracle_dimension_mismatch(rng):
    from scoreoracle import ExactOracle, GaussianMixture
    import torch
    gmm = GaussianMixture(torch.ones(1), torch.zeros(1, 3), torch.eye(3)[None])
    with pytest.raises(ValueError, match="dimension"):
        simulate_fokker_planck(rng.normal(size=(50, 2)), ExactOracle(gmm), t_span=(0, 0.1), dt=0.01)


class CountingKDE(KDEOracle):
    """Counts fits: one fit = one encoding of a particle set."""

    calls = 0

    def _fit(self, samples, weights):
        CountingKDE.calls += 1
        return super()._fit(samples, weights)


def test_snapshot_diagnostics_share_the_next_steps_oracle_call(rng):
    """Heun with a snapshot every step: 2 oracle calls per step plus 1 for the initial state."""
    CountingKDE.calls = 0
    simulate_fokker_planck(rng.normal(size=(100, 2)), CountingKDE(), t_span=(0.0, 0.1), dt=0.01, save_every=1)
    assert CountingKDE.calls == 2 * 10 + 1
