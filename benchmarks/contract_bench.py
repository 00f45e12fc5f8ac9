"""The oracle contract in numbers: fit once / query many, and streamed particle runs.

* Fit once, query many: seconds for 200 queries on a 4000-point 3-D sample set, as a
  two-argument call (fit + query, what every call cost before fitted oracles) and as queries to
  an already fitted oracle; medians of 5 runs in one process.
* Streamed snapshots: peak RSS of a 10⁵-particle Fokker–Planck run (exact OU score, d = 3) with
  10 and 100 snapshots, snapshots kept in memory vs streamed to a run folder; each run in a fresh
  subprocess so the peak belongs to that run alone.

    python benchmarks/contract_bench.py
"""

from __future__ import annotations

import numpy as np

from _common import machine_note, markdown_table, median_time, run_fresh, write_section

RUN_SCRIPT = """
import json, sys, tempfile
import numpy as np
from _common import peak_rss_mb
from solvers import simulate_fokker_planck
from solvers.exact import AnalyticFlowOracle, ou_variance
n, snapshots, streamed = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3] == "1"
x0 = np.random.default_rng(0).normal(size=(n, 3)) * np.sqrt(ou_variance(0.1, 0.1))
oracle = AnalyticFlowOracle(lambda x, t: -x / ou_variance(t, 0.1))
before = peak_rss_mb()
with tempfile.TemporaryDirectory() as folder:
    traj = simulate_fokker_planck(x0, oracle, potential_gradient=lambda x: x, t_span=(0.1, 1.1),
                                  dt=1.0 / snapshots, method="heun", save_every=1,
                                  checkpoint=folder if streamed else None)
    assert len(traj.times) == snapshots + 1
print(json.dumps({"before_mb": before, "peak_mb": peak_rss_mb()}))
"""


def fit_once_rows(n=4000, m=200, d=3):
    import scoreoracle
    rng = np.random.default_rng(0)
    x, q = rng.normal(size=(n, d)), rng.normal(size=(m, d))
    rows = []
    for name, oracle in {"DiScoFormer": scoreoracle.load(), "KDE (Scott)": scoreoracle.KDEOracle()}.items():
        t_call = median_time(lambda: oracle.score(x, q), 5)
        fitted = oracle.fit(x)
        t_query = median_time(lambda: fitted.score(q), 5)
        t_fit = median_time(lambda: oracle.fit(x), 5)
        rows.append([name, n, m, f"{t_call:.4f}", f"{t_fit:.4f}", f"{t_query:.4f}", f"**{t_call / t_query:.0f}×**"])
    return rows


def streamed_rows(n=100_000):
    rows = []
    for streamed in (0, 1):
        for snapshots in (10, 100):
            r = run_fresh(RUN_SCRIPT, n, snapshots, streamed)
            rows.append(["streamed to a run folder" if streamed else "in memory", n, snapshots,
                         f"{r['peak_mb']:.0f}", f"{r['peak_mb'] - r['before_mb']:.0f}"])
    return rows


def main():
    fit = fit_once_rows()
    print(markdown_table(["oracle", "n", "queries", "two-argument call s", "fit s", "fitted query s", "ratio"], fit))
    runs = streamed_rows()
    print(markdown_table(["snapshot storage", "particles", "snapshots", "peak RSS MB", "increase MB"], runs))
    body = ("## The oracle contract: fit once, query many; streamed runs\n\n"
            f"Machine: {machine_note()}. Medians of 5 calls in one process.\n\n"
            "Fit once, query many (d = 3): a two-argument call fits (whitens and encodes the samples) and "
            "then queries; a fitted oracle answers new queries without re-encoding.\n\n"
            + markdown_table(["oracle", "n", "queries", "two-argument call s", "fit s", "fitted query s",
                              "two-argument / fitted"], fit)
            + "\n\nPeak resident memory of a 10⁵-particle Fokker–Planck run (exact OU score, d = 3, Heun, "
              "one snapshot per step), each run in a fresh process:\n\n"
            + markdown_table(["snapshot storage", "particles", "snapshots", "peak RSS MB", "increase during the run MB"],
                             runs))
    write_section("contract", body)


if __name__ == "__main__":
    main()
