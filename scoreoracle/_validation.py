"""Input checking shared by every public entry point.  Errors name the argument and the fix."""

from __future__ import annotations

import numpy as np
import torch


def as_points(x, name: str) -> torch.Tensor:
    """Convert an array-like of points to a float64 torch tensor of shape (n, d).

    Accepts numpy arrays, torch tensors and nested lists; a 1-D input is read as n points in
    d = 1.  Raises ``TypeError``/``ValueError`` for non-numeric, empty, wrong-rank or non-finite
    input.
    """
    if isinstance(x, torch.Tensor):
        t = x.detach()
    else:
        try:
            arr = np.asarray(x)
        except Exception as exc:  # ragged lists and the like
            raise TypeError(f"{name} must be an array of shape (n, d); could not convert: {exc}") from exc
        if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
            raise TypeError(f"{name} must be a numeric array of shape (n, d), got dtype {arr.dtype}")
        t = torch.from_numpy(np.ascontiguousarray(arr))
    if t.is_complex():
        raise TypeError(f"{name} must be real, got complex dtype {t.dtype}")
    if t.ndim == 1:
        t = t.unsqueeze(-1)
    if t.ndim != 2:
        raise ValueError(f"{name} must have shape (n, d) (sample-major); got an array of rank {t.ndim} "
                         f"with shape {tuple(t.shape)}")
    if t.shape[0] == 0 or t.shape[1] == 0:
        raise ValueError(f"{name} is empty: shape {tuple(t.shape)}")
    t = t.to(torch.float64)
    finite = torch.isfinite(t)
    if not bool(finite.all()):
        bad = (~finite).any(dim=1).nonzero()[:, 0]
        raise ValueError(f"{name} contains NaN or infinite values in {bad.numel()} row(s), "
                         f"first at row {bad[0].item()}; remove or impute them")
    return t


def check_samples(samples) -> torch.Tensor:
    """Validate a context set: (n, d) with n > d (the covariance must be estimable)."""
    x = as_points(samples, "samples")
    n, d = x.shape
    if d > n:
        raise ValueError(f"samples has shape {tuple(x.shape)}: more dimensions (d = {d}) than samples "
                         f"(n = {n}). Arrays are sample-major (n, d); if you passed (d, n) as scipy "
                         "uses, pass samples.T")
    if n < d + 2:
        raise ValueError(f"samples has n = {n} points in d = {d}: at least d + 2 = {d + 2} are needed "
                         "to estimate a non-singular covariance")
    return x


def check_queries(queries, dim: int) -> torch.Tensor:
    """Validate query points (m, d) against the samples' dimension."""
    q = as_points(queries, "queries")
    if q.shape[1] != dim:
        raise ValueError(f"queries have dimension {q.shape[1]} but samples have dimension {dim}: "
                         f"queries must be (m, {dim})")
    return q


def check_positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def resolve_device(device) -> torch.device:
    """None → cuda when present, else cpu."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)
