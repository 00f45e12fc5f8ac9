"""Dask arrays through the oracle contract: Dask array in → Dask array out.

A fitted oracle answers a ``dask.array`` of queries (rows chunked, (m, d)) block by block: the
fitted oracle is one node of the task graph, sent once to each worker that needs it (a core
loaded from a checkpoint travels as its name and is loaded once per worker process), and every
block is a pure function of (fitted oracle, query rows), so results equal the local call up to
floating-point rounding whatever the chunking, and a task lost with a worker is simply recomputed.

Dask is an optional extra (``pip install scoreoracle[dask]``); nothing here is imported unless a
Dask array is passed.
"""

from __future__ import annotations

import numpy as np


def is_dask_array(x) -> bool:
    """True for a ``dask.array.Array`` (checked without importing Dask)."""
    return type(x).__module__.split(".")[0] == "dask" and hasattr(x, "chunks")


def shared(obj):
    """``obj`` as one node every task can depend on: scattered once to the workers when a
    distributed client is running (so it is not embedded in the task graph), else a delayed value."""
    import dask

    if dask.config.get("scheduler", None) in ("dask.distributed", "distributed"):
        from distributed import get_client
        return get_client().scatter(obj, broadcast=True, hash=False)
    return dask.delayed(obj, pure=True, traverse=False)  # threads or synchronous scheduler


def _block(queries, fitted, dtype):
    log_f, score = fitted.log_density_and_score(np.asarray(queries))
    return np.concatenate([np.asarray(log_f)[..., None], np.asarray(score)], axis=-1).astype(dtype, copy=False)


def log_density_and_score(fitted, queries):
    """(log f (m,), score (m, d)) as Dask arrays for Dask queries (m, d) chunked along rows ((m,) in d = 1)."""
    import dask.array as da

    if fitted.batch is not None:
        raise ValueError("Dask queries are supported for a single fitted sample set, not a batch")
    if queries.ndim == 1 and fitted.dim == 1:  # m points in d = 1, as numpy queries may be
        queries = queries[:, None]
    if queries.ndim != 2 or queries.shape[1] != fitted.dim:
        raise ValueError(f"queries must be a Dask array of shape (m, {fitted.dim}), got {queries.shape}")
    queries = queries.rechunk({1: -1})
    dtype = queries.dtype if queries.dtype in (np.float32, np.float64) else np.float64
    out = da.map_blocks(_block, queries, shared(fitted), dtype, dtype=dtype,
                        chunks=(queries.chunks[0], (fitted.dim + 1,)), meta=np.empty((0, 0), dtype=dtype))
    return out[:, 0], out[:, 1:]
