"""Shared helpers for the benchmark scripts: timing, markdown tables, RESULTS.md sections."""

from __future__ import annotations

import re
import statistics
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).parent
OUT = HERE / "out"
RESULTS = HERE / "RESULTS.md"


def median_time(fn, repeats: int = 3, warmup: int = 1) -> float:
    """Median wall-clock seconds of ``fn()`` over ``repeats`` runs after ``warmup`` runs."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def markdown_table(header, rows) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def write_section(name: str, body: str):
    """Replace (or append) the section ``<!-- name -->…<!-- /name -->`` of RESULTS.md."""
    text = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n\nWritten by the scripts in this folder; rerun them to refresh.\n"
    block = f"<!-- {name} -->\n{body.strip()}\n<!-- /{name} -->"
    pattern = re.compile(rf"<!-- {re.escape(name)} -->.*?<!-- /{re.escape(name)} -->", re.S)
    text = pattern.sub(lambda _: block, text) if pattern.search(text) else text.rstrip() + "\n\n" + block + "\n"
    RESULTS.write_text(text)


def machine_note() -> str:
    import os
    import platform

    import torch
    return (f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__} "
            f"({torch.get_num_threads()} threads)")


class PooledErrors:
    """Squared errors of several estimators pooled over sample sets: ``add(name, log_f_hat,
    score_hat, log_f, score)`` per set (arrays (m,) and (m, d)); ``table(best_of="kde x")`` gives
    per estimator the relative score error (%) and the log-density MSE, plus a "best-h" row taking the best of the estimators named with that prefix (per metric)
    and dropping them."""

    def __init__(self):
        self.sums: dict = {}

    def add(self, name, log_f_hat, score_hat, log_f, score):
        s_hat, s, lf_hat, lf = (np.asarray(a, dtype=float) for a in (score_hat, score, log_f_hat, log_f))
        acc = self.sums.setdefault(name, np.zeros(4))
        acc += [((s_hat - s) ** 2).sum(), (s ** 2).sum(), ((lf_hat - lf) ** 2).sum(), len(lf)]

    def table(self, best_of: str = "kde x", best_name: str = "best-h KDE") -> dict:
        rows = {k: {"rel_score": 100 * a[0] / a[1], "logf_mse": a[2] / a[3]} for k, a in self.sums.items()}
        grid = {k: v for k, v in rows.items() if k.startswith(best_of)}
        if grid:
            rows[best_name] = {metric: min(v[metric] for v in grid.values()) for metric in ("rel_score", "logf_mse")}
        return {k: v for k, v in rows.items() if k not in grid}
