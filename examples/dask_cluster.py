"""Beyond one machine: a fitted oracle and a Landau run on a Dask cluster.

Starts a LocalCluster (or connects to a running scheduler with ``--scheduler tcp://host:8786``:
that one address is all that changes on a real cluster), then

1. fits the shipped oracle to samples of a 3-D Gaussian and scores a row-chunked Dask array of
   queries on the workers, checked against the local call;
2. runs random-batch Maxwell–Landau particles given as a Dask array (sharded across the workers,
   snapshots in a Zarr folder) from an anisotropic Gaussian, and compares the covariance with the
   exact relaxation law; prints a table and writes a figure.

    python examples/dask_cluster.py [--n 20000] [--workers 2] [--scheduler ADDRESS]

Needs the optional extra: ``pip install -e .[dask]``.
"""

from __future__ import annotations

import argparse
import tempfile

import numpy as np

import scoreoracle
import solvers
from solvers.exact import maxwell_covariance

from example_utils import default_out, figure, save

SIGMA0 = np.diag([1.8, 0.2, 1.0])
C = 1 / 24


def run(n: int, workers: int, scheduler: str | None, t_end: float, dt: float, folder: str):
    import dask.array as da
    from distributed import Client, LocalCluster

    cluster = None if scheduler else LocalCluster(n_workers=workers, threads_per_worker=1, dashboard_address=None)
    with Client(scheduler or cluster) as client:
        rng = np.random.default_rng(0)
        samples = rng.normal(size=(4000, 3)) @ np.sqrt(SIGMA0)
        queries = da.from_array(rng.normal(size=(n, 3)), chunks=(max(1, n // (4 * workers)), 3))
        fitted = scoreoracle.load().fit(samples)
        score = fitted.score(queries).compute()
        local = fitted.score(np.asarray(queries))
        v0 = da.from_array(rng.normal(size=(n, 3)) * np.sqrt(np.diag(SIGMA0)), chunks=(n // (2 * workers), 3))
        traj = solvers.simulate_landau(v0, scoreoracle.load(), C=C, t_span=(0.0, t_end), dt=dt,
                                       collisions="random_batch", batch_size=64, oracle_samples=min(n, 4096),
                                       checkpoint=folder, save_every=1)
        n_workers = len(client.scheduler_info()["workers"])
    if cluster is not None:
        cluster.close()
    exact = maxwell_covariance(traj.times, np.cov(np.asarray(traj.particles[0]).T, bias=True), C)
    return {"workers": n_workers, "max |dask − local| score": float(np.abs(score - local).max()),
            "times": traj.times, "covariance": traj.diagnostics["covariance"], "exact": exact,
            "momentum drift": float(np.abs(traj.diagnostics["momentum"] - traj.diagnostics["momentum"][0]).max())}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--scheduler", default=None, help="address of a running Dask scheduler")
    parser.add_argument("--t-end", type=float, default=1.0)
    parser.add_argument("--dt", type=float, default=0.1)
    parser.add_argument("--out", default=default_out("dask_cluster.png"))
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        result = run(args.n, args.workers, args.scheduler, args.t_end, args.dt, folder)
    cov, exact = result["covariance"], result["exact"]
    print(f"workers: {result['workers']}; Dask vs local scores: max difference {result['max |dask − local| score']:.1e}")
    print(f"momentum drift {result['momentum drift']:.1e}")
    print(" t     Σ11 particles  Σ11 exact   Σ22 particles  Σ22 exact")
    for t, c, e in zip(result["times"], cov, exact):
        print(f"{t:5.2f}  {c[0, 0]:12.4f}  {e[0, 0]:9.4f}  {c[1, 1]:13.4f}  {e[1, 1]:9.4f}")
    fig, ax = figure()
    for i, name in ((0, "Σ11"), (1, "Σ22"), (2, "Σ33")):
        ax.plot(result["times"], cov[:, i, i], "o", label=f"{name} particles (Dask)")
        ax.plot(result["times"], exact[:, i, i], "-", color=ax.lines[-1].get_color(), label=f"{name} exact")
    ax.set_xlabel("t")
    ax.legend(fontsize=7)
    save(fig, args.out)
    return result


if __name__ == "__main__":
    main()
