"""Dask arrays through the oracle contract, on a 2-worker LocalCluster."""

import os
import signal
import threading
import time

import numpy as np
import pytest

import scoreoracle

da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
    with distributed.Client(cluster) as c:
        yield c
    cluster.close()


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    return rng.normal(size=(1500, 2)) * [1.0, 0.4], rng.normal(size=(900, 2))


@pytest.mark.parametrize("chunks", [100, 333, 900])
def test_dask_queries_equal_the_local_call_for_any_chunking(client, data, chunks):
    x, q = data
    fitted = scoreoracle.load().fit(x)
    log_f, score = fitted.log_density_and_score(da.from_array(q, chunks=(chunks, 2)))
    assert isinstance(score, da.Array) and score.chunks[0] == da.from_array(q, chunks=(chunks, 2)).chunks[0]
    local = fitted.log_density_and_score(q)
    # float32 core: CPU matmul kernels round differently for different block heights, so rows
    # agree to float32 precision (~1e-7 relative), not bit for bit
    np.testing.assert_allclose(log_f.compute(), local[0], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(score.compute(), local[1], rtol=1e-6, atol=1e-6)


def test_dask_samples_give_dask_outputs_for_every_oracle(client, data):
    x, _ = data
    for oracle in (scoreoracle.KDEOracle(), scoreoracle.GaussianFitOracle()):
        score = oracle.score(da.from_array(x, chunks=(500, 2)))
        assert isinstance(score, da.Array)
        np.testing.assert_allclose(score.compute(), oracle.score(x, x), rtol=1e-12, atol=1e-12)


def test_checkpoint_travels_by_name_and_loads_once_per_worker(client, data):
    import pickle
    x, q = data
    fitted = scoreoracle.load().fit(x)
    blob = pickle.dumps(fitted)
    assert len(blob) < 0.5 * len(pickle.dumps(fitted.core)) + len(pickle.dumps(fitted.contexts)) + 10_000
    fitted.log_density_and_score(da.from_array(q, chunks=(100, 2)))[1].compute()

    def loads():
        from scoreoracle.weights import cached_checkpoint
        return cached_checkpoint.cache_info().misses
    assert set(client.run(loads).values()) <= {0, 1}  # at most one load of the checkpoint per worker


class SlowKDE(scoreoracle.KDEOracle):
    """A KDE whose fitted queries take a while, so a worker can be killed mid-call."""

    def _fit(self, samples, weights):
        fitted = super()._fit(samples, weights)
        evaluate = fitted._evaluate

        def slow(q):
            time.sleep(0.2)
            return evaluate(q)
        fitted._evaluate = slow
        return fitted


def test_a_worker_killed_mid_call_costs_a_retry_not_the_result(client, data):
    x, q = data
    fitted = SlowKDE().fit(x)
    expected = scoreoracle.KDEOracle().fit(x).score(q)
    future = client.compute(fitted.log_density_and_score(da.from_array(q, chunks=(50, 2)))[1])
    victim = sorted(client.scheduler_info()["workers"])[0]
    pid = client.run(os.getpid, workers=[victim])[victim]

    def kill():
        time.sleep(1.0)
        os.kill(pid, signal.SIGKILL)  # a hard crash mid-call; the nanny starts a new worker
    threading.Thread(target=kill).start()
    np.testing.assert_allclose(future.result(timeout=120), expected, rtol=1e-12, atol=1e-12)


def landau_case(n=800, shards=4):
    from solvers.exact import AnalyticFlowOracle, maxwell_covariance
    cov0 = np.diag([1.8, 0.2, 1.0])
    v0 = np.random.default_rng(3).normal(size=(n, 3)) * np.sqrt(np.diag(cov0))
    oracle = AnalyticFlowOracle(lambda v, t: -v / np.diag(maxwell_covariance(t, cov0, 1 / 24)))
    return da.from_array(v0, chunks=(n // shards, 3)), v0, oracle


RUN = dict(C=1 / 24, t_span=(0.0, 0.4), dt=0.05, collisions="random_batch", batch_size=25, oracle_samples=300,
           reshuffle_every=3, save_every=2, checkpoint_every=3)


def test_sharded_landau_run_is_scheduler_independent_and_conservative(client, tmp_path):
    import dask

    import solvers
    particles, _, oracle = landau_case()
    on_cluster = solvers.simulate_landau(particles, oracle, checkpoint=tmp_path / "a", **RUN)
    with dask.config.set(scheduler="sync"):
        local = solvers.simulate_landau(particles, oracle, checkpoint=tmp_path / "b", **RUN)
    assert isinstance(on_cluster.particles, da.Array) and on_cluster.particles.shape == (5, 800, 3)
    # every task is the same pure function of the same inputs: identical up to round-off
    np.testing.assert_allclose(np.asarray(on_cluster.particles), np.asarray(local.particles), rtol=1e-12, atol=1e-12)
    mom = on_cluster.diagnostics["momentum"]
    assert np.abs(mom - mom[0]).max() < 1e-14  # batch sums are antisymmetric within every shard
    # the covariance relaxes toward isotropy as the Maxwell law says (a short run: direction only)
    cov = on_cluster.diagnostics["covariance"]
    assert cov[-1, 0, 0] < cov[0, 0, 0] and cov[-1, 1, 1] > cov[0, 1, 1]
    # snapshots are stored in the original particle order despite the reshuffles
    np.testing.assert_array_equal(np.asarray(on_cluster.particles[0]), np.asarray(particles))


def test_a_sharded_landau_run_that_breaks_energy_conservation_is_stopped(client):
    """As local runs: Euler at dt = 5 multiplies the energy; the run stops at the last good snapshot."""
    import solvers
    particles, _, _ = landau_case(n=400, shards=2)
    with pytest.raises(solvers.SolverDivergenceError, match="energy drift") as info:
        solvers.simulate_landau(particles, scoreoracle.KDEOracle(), C=1.0, t_span=(0.0, 40.0), dt=5.0,
                                method="euler", save_every=1, oracle_samples=400)
    energy = info.value.trajectory.diagnostics["energy"]
    assert abs(energy[-1] - energy[0]) <= 0.5 * energy[0]


def test_one_shard_with_full_context_is_the_full_pair_sum_run(client):
    import solvers
    particles, v0, oracle = landau_case(n=300, shards=1)
    kw = dict(C=1 / 24, t_span=(0.0, 0.3), dt=0.05)
    sharded = solvers.simulate_landau(particles, oracle, oracle_samples=300, **kw)
    local = solvers.simulate_landau(v0, oracle, **kw)
    np.testing.assert_allclose(np.asarray(sharded.final), local.final, rtol=1e-13, atol=1e-13)


def test_resumed_sharded_run_equals_the_uninterrupted_one(client, tmp_path):
    import solvers
    from solvers.exact import AnalyticFlowOracle

    particles, _, oracle = landau_case()

    class Interrupting(AnalyticFlowOracle):
        def __init__(self, calls):
            super().__init__(oracle._score)
            self.calls = calls

        def at_time(self, t):
            self.calls -= 1
            if self.calls < 0:
                raise KeyboardInterrupt
            return super().at_time(t)

        def fingerprint(self):  # the same oracle: only the run is killed
            from scoreoracle.fingerprint import fingerprint
            return fingerprint(oracle)
    with pytest.raises(KeyboardInterrupt):
        solvers.simulate_landau(particles, Interrupting(11), checkpoint=tmp_path / "run", **RUN)
    resumed = solvers.simulate_landau(particles, oracle, checkpoint=tmp_path / "run", resume=True, **RUN)
    whole = solvers.simulate_landau(particles, oracle, checkpoint=tmp_path / "whole", **RUN)
    np.testing.assert_array_equal(resumed.times, whole.times)
    np.testing.assert_allclose(np.asarray(resumed.particles), np.asarray(whole.particles), rtol=0, atol=0)
    with pytest.raises(ValueError, match="different run"):
        solvers.simulate_landau(particles, oracle, checkpoint=tmp_path / "run", resume=True, **{**RUN, "seed": 5})
    with pytest.raises(FileExistsError, match="holds a saved run"):  # a new run does not delete a saved one
        solvers.simulate_landau(particles, oracle, checkpoint=tmp_path / "whole", **RUN)
    # killed before its first checkpoint, the same run resumed starts over (it was refused as 'a saved run')
    with pytest.raises(KeyboardInterrupt):
        solvers.simulate_landau(particles, Interrupting(3), checkpoint=tmp_path / "early", **{**RUN, "checkpoint_every": 50})
    again = solvers.simulate_landau(particles, oracle, checkpoint=tmp_path / "early", resume=True,
                                    **{**RUN, "checkpoint_every": 50})
    np.testing.assert_allclose(np.asarray(again.particles), np.asarray(whole.particles), rtol=0, atol=0)


def test_sharded_fokker_planck_follows_the_ou_law(client):
    import solvers
    from solvers.exact import AnalyticFlowOracle, ou_variance
    x0 = np.random.default_rng(1).normal(size=(1200, 2)) * np.sqrt(ou_variance(0.1, 0.1))
    oracle = AnalyticFlowOracle(lambda x, t: -x / ou_variance(t, 0.1))
    traj = solvers.simulate_fokker_planck(da.from_array(x0, chunks=(300, 2)), oracle, potential_gradient=lambda x: x,
                                          t_span=(0.1, 0.6), dt=0.05, oracle_samples=400)
    local = solvers.simulate_fokker_planck(x0, oracle, potential_gradient=lambda x: x, t_span=(0.1, 0.6), dt=0.05)
    # the field is pointwise here (exact score): the sharded run is the local run
    np.testing.assert_allclose(np.asarray(traj.particles), local.particles, rtol=1e-13, atol=1e-13)
    var = np.trace(traj.diagnostics["covariance"], axis1=1, axis2=2) / 2
    expected = ou_variance(traj.times, 0.1) * np.trace(np.cov(x0.T, bias=True)) / 2 / ou_variance(0.1, 0.1)
    np.testing.assert_allclose(var, expected, rtol=1e-2)  # Heun at dt = 0.05: O(dt²) error


def test_sharded_runs_call_on_step_and_show_progress(client, capsys):
    """Both options were accepted and silently ignored for Dask particles."""
    import solvers
    x0 = np.random.default_rng(2).normal(size=(600, 2))
    seen = []
    traj = solvers.simulate_fokker_planck(
        da.from_array(x0, chunks=(150, 2)), scoreoracle.GaussianFitOracle(), potential_gradient=lambda x: x, t_span=(0.0, 0.2),
        dt=0.05, progress=True, on_step=lambda step, t, x: seen.append((step, t, np.asarray(x))))
    assert [(step, round(t, 12)) for step, t, _ in seen] == [(1, 0.05), (2, 0.1), (3, 0.15), (4, 0.2)]
    np.testing.assert_array_equal(seen[-1][2], np.asarray(traj.final))
    assert "fokker-planck (dask)" in capsys.readouterr().err


def _sharded(x0, **kwargs):
    import solvers
    return solvers.simulate_fokker_planck(da.from_array(x0, chunks=(100, 2)), scoreoracle.KDEOracle(),
                                          t_span=(0.0, 0.5), dt=0.1, **kwargs)


def test_a_sharded_run_refuses_a_drift_of_the_wrong_shape_as_a_local_run_does(client):
    """A drift answering (r, 1) was broadcast onto every axis: the run completed with other physics."""
    x0 = np.random.default_rng(3).normal(size=(400, 2))
    for drift in (lambda x, t: -x[:, :1], lambda x, t: -x.mean(0)):
        with pytest.raises(ValueError, match=r"drift returned shape \((100, 1|2,)\), expected \(100, 2\)"):
            _sharded(x0, drift=drift)


def test_a_sharded_run_that_collapses_keeps_its_trajectory_and_bad_particles_are_named(client, tmp_path):
    """A collapse onto a line raised a bare SingularSamplesError (no trajectory); NaN particles a bare
    FloatingPointError — the local run gives SolverDivergenceError and a message naming the rows.
    Its folder kept only the last periodic checkpoint's record (a local run saves the last good state)."""
    import solvers
    x0 = np.random.default_rng(4).normal(size=(400, 2))
    with pytest.raises(solvers.SolverDivergenceError) as info:
        _sharded(x0, drift=lambda x, t: np.c_[0 * x[:, 0], -10 * x[:, 1]], diffusion=0, method="euler",
                 checkpoint=tmp_path / "run", checkpoint_every=50)
    np.testing.assert_array_equal(info.value.trajectory.times, [0.0, 0.1])
    np.testing.assert_array_equal(solvers.Trajectory.load(tmp_path / "run").times, [0.0, 0.1])
    x0[2] = np.nan
    with pytest.raises(ValueError, match="particles contain NaN"):
        _sharded(x0)


def test_trajectory_load_reads_a_sharded_runs_folder(client, tmp_path):
    """RunOptions.checkpoint says Trajectory.load(folder) reads the run back; for a sharded run's
    Zarr folder it raised "holds no trajectory (no times.npy)"."""
    import solvers
    x0 = np.random.default_rng(5).normal(size=(400, 2))
    run = _sharded(x0, potential_gradient=lambda x: x, checkpoint=tmp_path / "run")
    loaded = solvers.Trajectory.load(tmp_path / "run")
    np.testing.assert_array_equal(loaded.times, run.times)
    np.testing.assert_array_equal(np.asarray(loaded.particles), np.asarray(run.particles))
    for name, values in run.diagnostics.items():
        np.testing.assert_array_equal(loaded.diagnostics[name], values)


class _ExactGaussianScore:
    """A fitted oracle stand-in: the score −x/σ² of N(0, diag(σ²)) (an anisotropic one: for an
    isotropic Gaussian every Landau velocity vanishes)."""

    variances = np.array([2.25, 0.25, 1.0])

    def score(self, x):
        return -x / self.variances


def test_shard_velocities_and_entropy_production_estimate_the_full_pair_sums_whatever_the_shard_size():
    """Shards had masses 1/r: on average a shard's velocity was (r − 1)n / (r(n − 1)) of the full
    pair sum (0.76 for shards of 4 out of 60), so Landau runs relaxed slower with smaller chunks,
    and the entropy production was a plain mean of the shard estimates (not weighted by size)."""
    import solvers
    from solvers.distributed import ShardPhysics, shard_field
    n, r, partitions = 60, 4, 600
    rng = np.random.default_rng(0)
    v = rng.normal(size=(n, 3)) * np.sqrt(_ExactGaussianScore.variances)
    full_u, full_ent = solvers.landau_field(v, _ExactGaussianScore().score(v))
    physics = ShardPhysics("landau", gamma=0.0, C=1.0)
    mean_u, mean_ent = np.zeros_like(v), 0.0
    for _ in range(partitions):
        perm = rng.permutation(n)
        for shard, rows in enumerate(np.split(perm, n // r)):
            block = shard_field(v[rows], _ExactGaussianScore(), physics, 0, 0.0, shard, n)
            mean_u[rows] += block[:, :3] / partitions
            mean_ent += block[:, 4].sum() / n / partitions  # the run's diagnostic: the mean over rows
    ratio = (mean_u * full_u).sum() / (full_u * full_u).sum()
    assert abs(ratio - 1) < 0.02  # was 0.76
    assert abs(mean_ent / full_ent - 1) < 0.02
    batched, mean_u = ShardPhysics("landau", gamma=0.0, C=1.0, batch_size=4), np.zeros_like(v)
    for step in range(partitions):  # shards of 12 with random batches of 4 inside: unbiased too
        for shard, rows in enumerate(np.split(rng.permutation(n), n // 12)):
            mean_u[rows] += shard_field(v[rows], _ExactGaussianScore(), batched, step, 0.0, shard, n)[:, :3] / partitions
    assert abs((mean_u * full_u).sum() / (full_u * full_u).sum() - 1) < 0.03
    one_shard = shard_field(v, _ExactGaussianScore(), physics, 0, 0.0, 0, n)  # the whole population: exact
    np.testing.assert_allclose(one_shard[:, :3], full_u, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(one_shard[:, 4], full_ent, rtol=1e-12)


def test_a_sharded_run_diagnoses_entropy_production_with_shards_weighted_by_size(client):
    import solvers
    particles = np.random.default_rng(6).normal(size=(500, 2)) * [1.4, 0.6]
    kw = dict(C=1.0, t_span=(0.0, 0.1), dt=0.1, oracle_samples=500, save_every=1)
    sharded = solvers.simulate_landau(da.from_array(particles, chunks=((497, 3), 2)), scoreoracle.GaussianFitOracle(), **kw)
    local = solvers.simulate_landau(particles, scoreoracle.GaussianFitOracle(), **kw)
    # a shard of 3 is a noisy estimate, weighted 3/500 (it was weighted 1/2, like the 497 others)
    np.testing.assert_allclose(sharded.diagnostics["entropy_production"][0], local.diagnostics["entropy_production"][0],
                               rtol=0.05)
    with pytest.raises(ValueError, match="at least 2 particles to collide"):
        solvers.simulate_landau(da.from_array(particles, chunks=((499, 1), 2)), scoreoracle.GaussianFitOracle(), **kw)


def test_a_sharded_run_failing_at_its_first_step_names_the_input_as_a_local_run_does(client):
    """It raised "Need array(s) to stack" (an empty trajectory being assembled)."""
    import solvers
    line = np.random.default_rng(7).normal(size=(40, 1)) * [1.0, 2.0]
    with pytest.raises(scoreoracle.SingularSamplesError):
        solvers.simulate_fokker_planck(line, scoreoracle.GaussianFitOracle(), t_span=(0, 0.1), dt=0.05)
    with pytest.raises(scoreoracle.SingularSamplesError):
        solvers.simulate_fokker_planck(da.from_array(line, chunks=(20, 2)), scoreoracle.GaussianFitOracle(),
                                       t_span=(0, 0.1), dt=0.05)
    x0 = np.random.default_rng(7).normal(size=(40, 2))
    for particles in (x0, da.from_array(x0, chunks=(20, 2))):  # the drift is named, not the particles
        with pytest.raises(FloatingPointError, match="the drift returned non-finite values at t = 0"):
            solvers.simulate_fokker_planck(particles, scoreoracle.GaussianFitOracle(), t_span=(0, 0.1), dt=0.05,
                                           drift=lambda x, t: np.full_like(x, np.nan))


def test_resume_compares_what_a_zarr_input_holds_not_its_path(client, tmp_path):
    """Dask names an array read from Zarr by its path: rewriting the file and resuming continued the
    old run with the old particles' energy as the conservation baseline."""
    import solvers
    x0 = np.random.default_rng(8).normal(size=(400, 2))
    store = str(tmp_path / "particles.zarr")
    da.from_array(x0, chunks=(100, 2)).to_zarr(store)
    kw = dict(potential_gradient=lambda x: x, t_span=(0.0, 0.2), dt=0.1, checkpoint=tmp_path / "run")
    solvers.simulate_fokker_planck(da.from_zarr(store), scoreoracle.GaussianFitOracle(), **kw)
    solvers.simulate_fokker_planck(da.from_zarr(store), scoreoracle.GaussianFitOracle(), resume=True, **kw)  # same
    da.from_array(2 * x0, chunks=(100, 2)).to_zarr(store, overwrite=True)
    with pytest.raises(ValueError, match="different run"):
        solvers.simulate_fokker_planck(da.from_zarr(store), scoreoracle.GaussianFitOracle(), resume=True, **kw)
    import zarr
    del zarr.open_group(str(tmp_path / "run"), mode="a").attrs["fingerprint_scheme"]  # saved by an older version
    with pytest.raises(ValueError, match="saved by an older scoreoracle"):
        solvers.simulate_fokker_planck(da.from_zarr(store), scoreoracle.GaussianFitOracle(), resume=True, **kw)


def test_a_run_folder_of_the_other_kind_is_named_as_such(client, tmp_path):
    """A local run's folder was "a non-empty folder that holds no run" to a sharded run, and back."""
    import solvers
    x0 = np.random.default_rng(9).normal(size=(400, 2))
    kw = dict(potential_gradient=lambda x: x, t_span=(0.0, 0.2), dt=0.1)
    solvers.simulate_fokker_planck(x0, scoreoracle.GaussianFitOracle(), checkpoint=tmp_path / "local", **kw)
    solvers.simulate_fokker_planck(da.from_array(x0, chunks=(100, 2)), scoreoracle.GaussianFitOracle(),
                                   checkpoint=tmp_path / "sharded", **kw)
    with pytest.raises(ValueError, match="holds a local run"):
        solvers.simulate_fokker_planck(da.from_array(x0, chunks=(100, 2)), scoreoracle.GaussianFitOracle(),
                                       checkpoint=tmp_path / "local", resume=True, **kw)
    with pytest.raises(ValueError, match="holds a sharded run"):
        solvers.simulate_fokker_planck(x0, scoreoracle.GaussianFitOracle(), checkpoint=tmp_path / "sharded",
                                       resume=True, **kw)


def test_shards_are_random_batches_from_the_first_step_whatever_the_input_order(client):
    """Shards were first permuted at step reshuffle_every: two beams given one per shard did not
    collide with each other for the first 10 steps (each beam's momentum stayed exactly constant)."""
    import solvers
    rng = np.random.default_rng(10)
    beams = np.r_[rng.normal(size=(200, 2)) + [1.5, 0], rng.normal(size=(200, 2)) - [1.5, 0]]
    kw = dict(C=1.0, t_span=(0.0, 0.05), dt=0.05, method="euler", oracle_samples=400)
    sharded = solvers.simulate_landau(da.from_array(beams, chunks=(200, 2)), scoreoracle.GaussianFitOracle(), **kw)
    local = solvers.simulate_landau(beams, scoreoracle.GaussianFitOracle(), **kw)
    drag = [traj.particles[-1][:200, 0].mean() - beams[:200, 0].mean() for traj in (sharded, local)]
    assert local.particles is not None and drag[1] < 0
    np.testing.assert_allclose(float(drag[0]), drag[1], rtol=0.25)  # was exactly 0
