"""Input checks shared by every public entry point (oracles and solvers).

Errors name the argument, what was expected and what was received, and say how to fix it.
Point sets are converted to float64 torch tensors of shape (n, d) on their own device; a torch
input that requires grad keeps its autograd graph.
"""

from __future__ import annotations

import math
import numbers
import sys
import warnings

import numpy as np
import torch

REPEATS_WARNED = 0.01  # share of samples on points occurring 3+ times that draws a RepeatedSamplesWarning


class OutlierWarning(UserWarning):
    """A few far samples dominate the covariance the oracle whitens with, squeezing the bulk."""


class RepeatedSamplesWarning(UserWarning):
    """Samples repeat one another exactly (MCMC output, rounded data): not independent draws of a
    continuous density, so an estimator reads the repeats as narrow peaks."""


def _tensor_of(arr: np.ndarray) -> torch.Tensor:
    """A numpy array as a torch tensor, sharing memory where it can; read-only arrays (Dask
    blocks, memory maps) are copied rather than shared (torch warns on those)."""
    arr = np.ascontiguousarray(arr)
    return torch.from_numpy(arr if arr.flags.writeable else arr.copy())


def check_points(x, name: str, *, allow_empty: bool = False) -> torch.Tensor:
    """An array-like of points as a float64 tensor (n, d).

    Accepts numpy arrays, torch tensors and nested lists; a 1-D input is read as n points in
    d = 1.  Raises ``TypeError``/``ValueError`` for non-numeric, wrong-rank or non-finite input,
    and for empty input unless ``allow_empty`` (then m = 0 rows are fine, d must still be > 0).
    """
    if isinstance(x, torch.Tensor):
        t = x
    else:
        if x is None:
            raise TypeError(f"{name} must be an array of shape (n, d), got None")
        if np.ma.is_masked(x):
            raise ValueError(f"{name} is a masked array with {int(np.ma.count_masked(x))} masked value(s): the mask "
                             "would be ignored; drop the masked rows first")
        try:
            arr = np.asarray(x)
        except Exception as exc:  # ragged lists and the like
            raise TypeError(f"{name} must be an array of shape (n, d); could not convert: {exc}") from exc
        if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
            raise TypeError(f"{name} must be a numeric array of shape (n, d), got dtype {arr.dtype}")
        if arr.dtype.kind == "f" and arr.dtype.itemsize > 8:  # long double: torch has none; the work is float64
            arr = arr.astype(np.float64)
        t = torch.from_numpy(arr.copy()) if arr.ndim == 0 else _tensor_of(arr)  # (contiguous makes 0-d 1-d)
    if t.is_complex():
        raise TypeError(f"{name} must be real, got complex dtype {t.dtype}")
    if t.ndim == 0:
        raise ValueError(f"{name} is a scalar; points are arrays of shape (n, d) (one point in d = 1: [[x]])")
    if t.ndim == 1:
        t = t.unsqueeze(-1)
    if t.ndim != 2:
        raise ValueError(f"{name} must have shape (n, d) (sample-major; a batch of sets is (B, n, d)); got an "
                         f"array of rank {t.ndim} with shape {tuple(t.shape)}")
    if t.shape[1] == 0 or (t.shape[0] == 0 and not allow_empty):
        raise ValueError(f"{name} is empty: shape {tuple(t.shape)}")
    t = t.to(torch.float64)
    finite = torch.isfinite(t.detach())
    if not bool(finite.all()):
        bad = (~finite).any(dim=1).nonzero()[:, 0]
        raise ValueError(f"{name} contains NaN or infinite values in {bad.numel()} row(s), "
                         f"first at row {bad[0].item()}; remove or impute them")
    return t


def check_samples(samples, name: str = "samples") -> torch.Tensor:
    """A context set (n, d) — or a batch of B sets (B, n, d) — with n ≥ d + 2 (so its covariance
    is estimable)."""
    x = check_batch(samples, name) if is_batch(samples) else check_points(samples, name)
    n, d = x.shape[-2:]
    if n < d + 2:
        hint = ""
        if d >= n + 2:  # the transpose would be a valid set: probably scipy's (d, n) layout
            hint = (f" Arrays are sample-major (n, d); if you passed (d, n) as scipy does, pass "
                    f"{name}.T")
        raise ValueError(f"{name} has shape {tuple(x.shape)}: n = {n} point(s) in d = {d} dimensions, but at "
                         f"least d + 2 = {d + 2} are needed to estimate a non-singular covariance.{hint}")
    return x


def _row_counts(x: torch.Tensor) -> torch.Tensor:
    """How often each distinct row of x (n, d) occurs."""
    if x.device.type != "cpu":
        return torch.unique(x, dim=0, return_counts=True)[1]
    rows = np.ascontiguousarray((x + 0.0).numpy())  # (+ 0.0: −0.0 and 0.0 are one value, as on other devices)
    return torch.from_numpy(np.unique(rows.view(np.dtype((np.void, rows.dtype.itemsize * rows.shape[1]))).ravel(),
                                      return_counts=True)[1])


def check_repeats(x: torch.Tensor, name: str = "samples") -> None:
    """Refuse a set x (n, d) of fewer than d + 2 distinct points; warn (``RepeatedSamplesWarning``)
    when ≥ ``REPEATS_WARNED`` of its rows sit on points that occur three or more times — MCMC
    chains, resampled or rounded data, not the rare pairs that float32 rounding makes.  Exact, and
    one sort of the first coordinate when that already rules both out."""
    n, d = x.shape
    x = x.detach()
    first = torch.unique(x[:, 0], return_counts=True)[1]
    if len(first) >= d + 2 and int(first[first >= 3].sum()) < REPEATS_WARNED * n:
        return  # a point occurs at most as often as its first coordinate's value
    counts = _row_counts(x)
    if len(counts) < d + 2:
        raise ValueError(f"{name} holds only {len(counts)} distinct point(s) among its {n} rows in d = {d} "
                         f"dimensions: at least d + 2 = {d + 2} distinct points are needed to estimate a "
                         "non-singular covariance")
    piled = int(counts[counts >= 3].sum())
    if piled >= REPEATS_WARNED * n:
        warnings.warn(f"{piled} of the {n} {name} sit on points that occur three or more times: the oracles assume "
                      "independent draws from a continuous density and read repeats as narrow peaks.  For MCMC "
                      "output (a Metropolis chain repeats its state on every rejection) thin the chain, or pass the "
                      "distinct rows with their counts as weights (u, c = np.unique(x, axis=0, return_counts=True); "
                      "oracle.fit(u, weights=c): the counts' effective sample size (Σc)²/Σc² then stands for the "
                      "chain's); for rounded data add uniform jitter within the rounding step", RepeatedSamplesWarning,
                      stacklevel=caller_stacklevel())


def caller_stacklevel() -> int:
    """The ``stacklevel`` that points a warning at the first caller outside this library."""
    frame, level = sys._getframe(1), 1
    while frame is not None and frame.f_globals.get("__name__", "").split(".")[0] in ("scoreoracle", "solvers"):
        frame, level = frame.f_back, level + 1
    return level


def check_sample_set(samples, name: str = "samples") -> torch.Tensor:
    """One sample set (n, d), as :func:`check_samples`, for functions that take no batch of sets."""
    if is_batch(samples):
        raise ValueError(f"{name} must be one sample set (n, d), not a batch of sets: got shape "
                         f"{tuple(np.shape(samples))}; call once per set")
    return check_samples(samples, name)


def is_batch(x) -> bool:
    """True for a stack of sample sets (B, n, d) (a 3-D array or a list of 2-D arrays)."""
    if isinstance(x, (torch.Tensor, np.ndarray)):
        return x.ndim == 3
    return isinstance(x, (list, tuple)) and len(x) > 0 and all(np.ndim(e) == 2 for e in x)


def check_batch(x, name: str, *, allow_empty: bool = False) -> torch.Tensor:
    """A stack of B point sets (B, n, d) as one float64 tensor; ragged stacks are refused."""
    if isinstance(x, (list, tuple)):
        sizes = {tuple(np.shape(e)) for e in x}
        if len(sizes) > 1:
            raise ValueError(f"{name} is a ragged batch: its sets have shapes {sorted(sizes)}; batched calls "
                             "need equal (n, d) per set (or fit each set on its own)")
        x = torch.stack([torch.as_tensor(e) for e in x]) if isinstance(x[0], torch.Tensor) else np.asarray(x)
    if not isinstance(x, torch.Tensor):
        x = _tensor_of(np.asarray(x))
    if x.ndim != 3 or x.shape[0] == 0:
        raise ValueError(f"{name} must be a batch of shape (B, n, d), got shape {tuple(x.shape)}")
    return torch.stack([check_points(e, f"{name}[{i}]", allow_empty=allow_empty) for i, e in enumerate(x.unbind(0))])


def check_queries(queries, dim: int, name: str = "queries", against: str = "samples",
                  batch: int | None = None) -> torch.Tensor:
    """Query points (m, d) in the dimension of the fitted samples, or (B, m, d) for a fitted batch
    of B sets (one (m, d) set is then asked of every fitted set); m = 0 is allowed."""
    if batch is not None:
        if not is_batch(queries):  # the same queries for every set
            q = check_points(queries, name, allow_empty=True)
            return check_queries(q.unsqueeze(0).expand(batch, *q.shape), dim, name, against, batch)
        q = check_batch(queries, name, allow_empty=True)
        if q.shape[0] != batch:
            raise ValueError(f"{name} hold {q.shape[0]} sets but {batch} sample sets were fitted: "
                             f"{name} must be (B = {batch}, m, {dim})")
    else:
        if is_batch(queries):
            raise ValueError(f"{name} is a batch (B, m, d) but the oracle was fitted to one sample set: "
                             f"fit a batch of sample sets (B, n, d) to query batches")
        q = check_points(queries, name, allow_empty=True)
        if q.shape == (0, 1) and np.ndim(queries) == 1:  # [] holds no points, in any d
            q = q.reshape(0, dim)
    if q.shape[-1] != dim:
        one_point = (f"; a 1-D array is read as m points in d = 1 — for one point in d = {dim} pass it "
                     f"as shape (1, {dim})" if np.ndim(queries) == 1 and len(queries) == dim else "")
        raise ValueError(f"{name} have dimension {q.shape[-1]} but {against} have dimension {dim}: "
                         f"{name} must be (m, {dim}){one_point}")
    return q


MIN_EFFECTIVE_SAMPLES = 2.0
"""Smallest Kish effective sample size accepted: the unbiased weighted covariance scales by
1/(1 − Σw²) = n_eff/(n_eff − 1), which diverges as the weight piles onto one sample."""


def check_weights(weights, n: int, dim: int, batch: int | None = None) -> torch.Tensor | None:
    """Sample weights (n,) — (B, n) for a batch of sets: non-negative, finite, any scale; returned
    normalised to sum 1 per set (float64), or None for uniform weights.  At least d + 2 per set
    must be positive, and the effective sample size must be at least ``MIN_EFFECTIVE_SAMPLES``."""
    if weights is None:
        return None
    w = weights.detach() if isinstance(weights, torch.Tensor) else _tensor_of(np.asarray(weights, dtype=np.float64))
    w = w.to(torch.float64)
    shape = (n,) if batch is None else (batch, n)
    if batch is None and w.ndim == 2 and 1 in w.shape:
        w = w.reshape(-1)
    if tuple(w.shape) != shape:
        raise ValueError(f"weights must have shape {shape}, one per sample; got shape {tuple(w.shape)}")
    if not bool(torch.isfinite(w).all()):
        raise ValueError("weights contain NaN or infinite values")
    if bool((w < 0).any()):
        raise ValueError(f"weights must be non-negative; the smallest is {w.min().item():.3g}")
    positive = int((w > 0).sum(-1).min())
    if positive < dim + 2:
        raise ValueError(f"only {positive} weight(s) are positive: at least d + 2 = {dim + 2} samples must "
                         "carry weight to estimate a non-singular covariance")
    w = w / w.amax(-1, keepdim=True)  # no overflow in the sum for weights near the float64 limit
    w = w / w.sum(-1, keepdim=True)
    n_eff = 1.0 / (w * w).sum(-1)
    if bool((n_eff < MIN_EFFECTIVE_SAMPLES).any()):
        raise ValueError(f"the weights' effective sample size (Σw)²/Σw² is {float(n_eff.min()):.4g}, below "
                         f"{MIN_EFFECTIVE_SAMPLES:g}: nearly all the weight sits on one sample (importance weights "
                         "spanning many orders of magnitude?); temper or resample them")
    return w


def effective_sample_size(weights: torch.Tensor | None, n: int) -> float:
    """Kish's n_eff = (Σw)²/Σw² of one set's normalised weights (n,) (n for uniform weights), as
    scipy's ``gaussian_kde.neff``."""
    if weights is not None and weights.ndim != 1:
        raise ValueError(f"effective_sample_size takes one set's weights (n,), got shape {tuple(weights.shape)}")
    return float(n) if weights is None else float(1.0 / (weights * weights).sum())


def check_positive_int(value, name: str, *, allow_zero: bool = False) -> int:
    """An integer > 0 (≥ 0 with ``allow_zero``); bools and non-integral numbers are refused."""
    ok = isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))
    if not ok or value < (0 if allow_zero else 1):
        what = "a non-negative" if allow_zero else "a positive"
        raise ValueError(f"{name} must be {what} integer, got {value!r}")
    return int(value)


def check_positive_float(value, name: str) -> float:
    """A finite real number > 0 (numpy scalars included, bools refused)."""
    ok = isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))
    if not ok or not math.isfinite(float(value)) or float(value) <= 0:
        raise ValueError(f"{name} must be a positive, finite number, got {value!r}")
    return float(value)


def check_dimension(value, name: str = "dim") -> int:
    """A data dimension: a positive integer (strings such as '2' are refused by name)."""
    if isinstance(value, str):
        raise TypeError(f"{name} must be an integer, got the string {value!r}; pass {name}={value.strip()}"
                        if value.strip().isdigit() else f"{name} must be an integer, got the string {value!r}")
    return check_positive_int(value, name)


def resolve_device(device) -> torch.device:
    """None → cuda when present, else cpu; a CUDA device this machine lacks is refused at once."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(device)
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0 or (device.index is not None and device.index >= count):
            raise ValueError(f"device {str(device)!r} is not available: this machine has {count} CUDA "
                             "device(s); use device=None (CUDA when present, else the CPU) or 'cpu'")
    return device
