"""Scale: large sample sets, random-batch Landau up to 10⁶ particles, and Dask throughput.

* ``context``: relative score error of the oracle at n = 2¹⁵ … 2¹⁷ (d = 2, 10; paper Table 2
  beyond training) for context limits and ensembles, against best-h KDE.
* ``calls``: the time of one call with n = 2¹⁷ samples and 10³ queries against the closed-form KDE
  in the same run, and the peak resident memory of each call (fresh process per call).
* ``landau``: seconds per Heun step of random-batch Landau (d = 3, Maxwell, batch 64), split into
  oracle calls and particle update, for n = 10³ … 10⁶ (oracle on a 4096-point context), and a
  log–log plot.
* ``dask``: throughput of a fitted oracle on Dask query arrays with 1 and 2 local workers.

    python benchmarks/scale.py [context] [calls] [landau] [dask]
"""

from __future__ import annotations

import sys
import time

import numpy as np
import torch

import scoreoracle
from scoreoracle.training.evaluation import evaluate_estimators

from _common import OUT, machine_note, markdown_table, median_time, run_fresh, write_section

CALL_SCRIPT = """
import json, sys, time
import numpy as np, scoreoracle
from _common import peak_rss_mb
kind, n, d, limit = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
rng = np.random.default_rng(0)
x, q = rng.normal(size=(n, d)), rng.normal(size=(1000, d))
oracle = scoreoracle.KDEOracle(dtype=__import__("torch").float32) if kind == "kde" else \\
    scoreoracle.load(context_limit=None if limit == "none" else int(limit))
oracle.log_density_and_score(x[:2000], q[:10])  # warm-up
start = time.perf_counter()
oracle.log_density_and_score(x, q)
elapsed = time.perf_counter() - start
print(json.dumps({"seconds": elapsed, "peak_mb": peak_rss_mb()}))
"""


def context_section(limits=(2048, 4096, 8192), sizes=(2 ** 15, 2 ** 16, 2 ** 17), dims=(2, 10), gmms=8):
    rows = []
    for d in dims:
        for n in sizes:
            estimators = {}
            for limit in limits:
                for k in (1, 4):
                    oracle = scoreoracle.load(context_limit=limit, ensembles=k)
                    estimators[f"limit {limit} × {k}"] = oracle.log_density_and_score
            t = evaluate_estimators(estimators, d, n, gmms, n_queries=512)
            best = t["best-h kde"]["rel_score"]
            for name in estimators:
                rows.append([d, n, name, f"{t[name]['rel_score']:.2f}", f"{best:.2f}",
                             f"{t[name]['logf_mse']:.3g}", f"{t['best-h kde']['logf_mse']:.3g}"])
                print(rows[-1])
    return rows


def calls_section(limits=(2048, 4096, 8192)):
    # (the exact n = 2¹⁷ context is not timed: O(n²), minutes — the reason for the limit)
    calls = []
    for label, kind, limit in [("closed-form KDE", "kde", "none"),
                               *((f"oracle, context_limit={k}", "oracle", str(k)) for k in limits)]:
        r = run_fresh(CALL_SCRIPT, kind, 2 ** 17, 2, limit)
        calls.append([label, f"{r['seconds']:.2f}", f"{r['peak_mb']:.0f}"])
        print(calls[-1])
    return calls


def landau_section(sizes=(1_000, 10_000, 100_000, 1_000_000), batch=64, context=4096, d=3):
    from solvers import simulate_landau
    from solvers.collisions import RandomBatches, landau_field
    rows = []
    oracle = scoreoracle.load(d)
    for n in sizes:
        v = np.random.default_rng(0).normal(size=(n, d))
        subset = np.random.default_rng(1).choice(n, min(n, context), replace=False)
        t_oracle = median_time(lambda: oracle.fit(v[subset]).score(v), 3 if n < 10 ** 6 else 1, warmup=1)
        s = np.asarray(oracle.fit(v[subset]).score(v))
        batches = RandomBatches.draw(np.random.default_rng(2), n, batch)
        t_update = median_time(lambda: landau_field(v, s, 0.0, 1 / 24, 0.0, None, batches), 3)
        rows.append([n, f"{2 * t_oracle:.3f}", f"{2 * t_update:.4f}", f"{2 * (t_oracle + t_update):.3f}"])
        print(rows[-1])
    v0 = np.random.default_rng(3).normal(size=(100_000, d)) * [1.3, 0.6, 1.0]
    start = time.perf_counter()
    traj = simulate_landau(v0, oracle, C=1 / 24, t_span=(0.0, 0.2), dt=0.05, collisions="random_batch",
                           batch_size=batch, oracle_samples=context)
    run_seconds = time.perf_counter() - start
    mom = traj.diagnostics["momentum"]
    return rows, run_seconds, float(np.abs(mom - mom[0]).max())


def loglog_slopes(rows, from_n=10_000):
    """Least-squares slopes of log(seconds) against log(n) for n ≥ from_n, per timing column."""
    kept = [r for r in rows if r[0] >= from_n]
    log_n = np.log([r[0] for r in kept])
    return [(label, np.polyfit(log_n, np.log([float(r[col]) for r in kept]), 1)[0])
            for col, label in ((1, "oracle"), (2, "particle update"), (3, "total"))]


def landau_plot(rows):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    n = np.array([r[0] for r in rows], dtype=float)
    fig, ax = plt.subplots(figsize=(5, 4))
    for col, label in ((1, "oracle calls"), (2, "particle update"), (3, "step")):
        ax.loglog(n, [float(r[col]) for r in rows], "o-", label=label)
    ax.loglog(n, float(rows[0][3]) * n / n[0], "k:", label="∝ n")
    ax.set_xlabel("particles n")
    ax.set_ylabel("seconds per Heun step")
    ax.legend()
    OUT.mkdir(exist_ok=True)
    fig.savefig(OUT / "landau_scaling.png", dpi=110)


def dask_section(n=4000, m=400_000, d=3, chunk=20_000):
    import dask.array as da
    from distributed import Client, LocalCluster
    x = np.random.default_rng(0).normal(size=(n, d))
    q = da.random.default_rng(1).normal(size=(m, d), chunks=(chunk, d))
    fitted = scoreoracle.load(d).fit(x)
    rows = []
    for workers in (1, 2):
        with LocalCluster(n_workers=workers, threads_per_worker=2 // workers, dashboard_address=None) as cluster, \
                Client(cluster):
            fitted.log_density_and_score(q[:chunk])[1].compute()  # warm-up: weights loaded on the workers
            seconds = median_time(lambda: fitted.log_density_and_score(q)[1].compute(), 3, warmup=0)
            rows.append([workers, 2 // workers, m, f"{seconds:.2f}", f"{m / seconds:,.0f}"])
            print(rows[-1])
    return rows


def main(argv=None):
    parts = set(argv if argv is not None else sys.argv[1:]) or {"context", "calls", "landau", "dask"}
    torch.set_num_threads(2)
    if "context" in parts:
        write_section("scale-context", "## Large sample sets: context limits\n\n"
                      f"Machine: {machine_note()}.  Paper Table 2 protocol beyond the training sizes (8 GMMs per "
                      "cell, 512 fresh queries each); every estimator on the same draws.\n\n"
                      + markdown_table(["d", "n", "oracle", "rel. score error %", "best-h KDE %", "log f MSE",
                                        "log f MSE best-h"], context_section()))
    if "calls" in parts:
        write_section("scale-calls", "## Large sample sets: one call\n\n"
                      f"Machine: {machine_note()}.  One call, n = 2¹⁷ samples, 10³ queries, d = 2, each in a "
                      "fresh process.\n\n"
                      + markdown_table(["method", "seconds", "peak RSS MB"], calls_section()))
    if "landau" in parts:
        rows, run_seconds, drift = landau_section()
        landau_plot(rows)
        write_section("scale-landau", "## Random-batch Landau at scale\n\n"
                      f"Machine: {machine_note()}.  d = 3, Maxwell, batches of 64; the oracle (the shipped d = 3 "
                      "checkpoint) is fitted to a 4096-particle context and queried at every particle; Heun "
                      "(two stages per step); medians of 3 (1 at 10⁶).  The script also draws the log–log plot "
                      "`benchmarks/out/landau_scaling.png`.\n\n"
                      + markdown_table(["particles", "oracle s/step", "particle update s/step", "total s/step"], rows)
                      + "\n\nLog–log slopes of time per step against n (10⁴–10⁶; 1 = linear): "
                      + ", ".join(f"{label} {slope:.2f}" for label, slope in loglog_slopes(rows))
                      + f".\n\nA 10⁵-particle run of 4 Heun steps took {run_seconds:.1f} s; momentum drift "
                      f"{drift:.1e} (round-off).")
    if "dask" in parts:
        rows = dask_section()
        write_section("scale-dask", "## Dask: a fitted oracle on a query array\n\n"
                      f"Machine: {machine_note()}.  A d = 3 oracle fitted to 4000 samples answers 4·10⁵ queries "
                      "(chunks of 2·10⁴ rows) on a LocalCluster; both configurations use the machine's 2 cores.  "
                      "Per node expect throughput to scale with the cores given to the workers (each block is "
                      "independent); a cluster adds nodes by pointing the Client at their scheduler.\n\n"
                      + markdown_table(["workers", "threads each", "queries", "seconds", "queries / s"], rows))


if __name__ == "__main__":
    main()
