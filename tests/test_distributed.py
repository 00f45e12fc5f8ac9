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
