"""The oracle contract: fit once, query many.

An oracle turns i.i.d. samples (n, d) of an unknown density f, optionally weighted, into a
*fitted* oracle that answers log f (m,) in nats and the score ∇ₓ log f (m, d) at any queries
(m, d).  ("Score" is the gradient of the log-density, as in score-based modelling; in
scikit-learn "score" means log-likelihood, so the fitted oracle's ``score_samples(q)`` is log f at
q, exactly as ``KernelDensity.fit(X).score_samples(q)``.)

    fitted = oracle.fit(samples, weights=None)        # whitening + encoded context, once
    log_f, s = fitted.log_density_and_score(queries)  # any number of times
    oracle.score(samples, queries)                    # shortcut: oracle.fit(samples).score(queries)
    oracle.score(samples)                             # queries = the samples
    oracle.fit(sets).score(queries)                   # B sets at once: (B, n, d) and (B, m, d)

Types and devices are handled here, once: numpy in → numpy out in the input's float dtype
(float32 stays float32; other dtypes give float64), torch in → torch out in the input's dtype on
its device.  Outputs follow the queries (the samples when queries are omitted).  Torch queries
that require grad give outputs differentiable with respect to the queries at a fixed fitted
context (``differentiable`` oracles only), so autograd gives ∇·ŝ and Hessians.

Weights (``weights=``, non-negative, any scale) are relative importances, as in
``scipy.stats.gaussian_kde``: the estimate targets Σ wᵢ δ(x − xᵢ)/Σ wᵢ, and sizes enter through
the effective sample size (Σw)²/Σw².  Integer weights are not frequencies: k copies of a point
and weight k give the same kernel sums but not the same covariance normalisation.

Samples are independent draws of a continuous density: exact repeats (MCMC output, whose
Metropolis steps repeat the state on rejection; resamples; rounded data) read as narrow peaks.
Fewer than d + 2 distinct samples are refused; when ≥ 1 % of the samples sit on points that occur
three or more times a ``RepeatedSamplesWarning`` says what to do (thin the chain, or pass the
distinct rows with their counts as weights).  Oracles whose answers ignore the samples (exact
references) skip the check.

``ScoreOracle`` and ``FittedScoreOracle`` are the protocols every oracle satisfies (the solvers
depend on nothing else); ``Oracle`` and ``FittedOracle`` are base classes that implement the
conversions, chunking and progress once, for oracles written in torch or numpy.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np
import torch

from .distributed import is_dask_array
from .fingerprint import fingerprint
from .validation import check_queries, check_repeats, check_samples, check_weights

PROGRESS_PAIRS = 2e9  # calls with more (query, sample) pairs than this show a progress bar by default


@runtime_checkable
class FittedScoreOracle(Protocol):
    """An oracle fitted to one sample set; queries (m, d) → log f (m,), score (m, d)."""

    dim: int
    differentiable: bool

    def log_density_and_score(self, queries): ...

    def log_density(self, queries): ...

    def score(self, queries): ...

    def density(self, queries): ...

    def score_samples(self, queries): ...


@runtime_checkable
class ScoreOracle(Protocol):
    """Samples (n, d) [+ weights (n,)] → a fitted oracle; two-argument calls are shortcuts."""

    def fit(self, samples, weights=None) -> FittedScoreOracle: ...

    def log_density_and_score(self, samples, queries=None, *, weights=None): ...

    def log_density(self, samples, queries=None, *, weights=None): ...

    def score(self, samples, queries=None, *, weights=None): ...

    def density(self, samples, queries=None, *, weights=None): ...


@dataclass(frozen=True)
class ArrayKind:
    """What the caller passed (numpy or torch, float dtype, device): outputs are returned as that."""

    is_torch: bool
    dtype: object
    device: torch.device | None = None

    @classmethod
    def of(cls, x) -> "ArrayKind":
        if isinstance(x, torch.Tensor):
            return cls(True, x.dtype if x.is_floating_point() else torch.float64, x.device)
        dtype = getattr(x, "dtype", None)
        return cls(False, dtype if dtype in (np.float32, np.float64) else np.float64)

    def restore(self, value: torch.Tensor):
        """A float64 result tensor as the caller's array type (one device transfer)."""
        if self.is_torch:
            return value.to(device=self.device, dtype=self.dtype)
        return value.detach().cpu().numpy().astype(self.dtype, copy=False)


def progress_chunks(chunks, enabled: bool, desc: str):
    """Iterate over chunks, with a tqdm bar when ``enabled``."""
    if not enabled:
        return chunks
    from tqdm.auto import tqdm
    return tqdm(chunks, desc=desc, leave=False)


class FittedOracle:
    """Base of fitted oracles.  Subclasses implement ``_evaluate(q)`` on one chunk of queries
    (float64 tensor (c, d) on ``self.device``, or (B, c, d) for a fitted batch of B sets),
    returning float64 (log f (…, c), score (…, c, d)), and may override ``_at_samples()`` when
    outputs at the fitted samples are cheaper than a query pass.
    """

    differentiable = True  # outputs carry autograd to torch queries that require grad

    def __init__(self, samples: torch.Tensor, *, device, chunk_size: int = 4096, progress=None):
        self.samples = samples  # (n, d) or (B, n, d) float64 on device, validated
        self.batch = samples.shape[0] if samples.ndim == 3 else None
        self.n, self.dim = samples.shape[-2:]
        self.device = torch.device(device)
        self.chunk_size = chunk_size
        self.progress = progress

    def _evaluate(self, q: torch.Tensor):
        raise NotImplementedError

    def _at_samples(self):
        return self._evaluate_all(self.samples)

    def _show_progress(self, m: int) -> bool:
        if self.progress is not None:
            return bool(self.progress)
        return m > self.chunk_size and m * self.n * (self.batch or 1) > PROGRESS_PAIRS

    def _evaluate_all(self, q: torch.Tensor):
        m = q.shape[-2]
        if m == 0:
            return q.new_zeros(q.shape[:-1]), q.new_zeros(q.shape)
        parts = [self._evaluate(c) for c in
                 progress_chunks(q.split(self.chunk_size, dim=-2), self._show_progress(m), "scoreoracle queries")]
        return torch.cat([p[0] for p in parts], dim=-1), torch.cat([p[1] for p in parts], dim=-2)

    def log_density_and_score(self, queries):
        """(log f (m,), ∇log f (m, d)) at the queries; (B, m) and (B, m, d) for a fitted batch.
        Dask queries give Dask results, computed block by block (:mod:`scoreoracle.distributed`)."""
        if is_dask_array(queries):
            from .distributed import log_density_and_score
            return log_density_and_score(self, queries)
        kind = ArrayKind.of(queries)
        q = check_queries(queries, self.dim, batch=self.batch)
        if q.requires_grad and not self.differentiable:
            raise TypeError(f"{type(self).__name__} is not differentiable with respect to the queries; "
                            "pass queries without requires_grad (or use finite differences)")
        with torch.set_grad_enabled(q.requires_grad):
            log_f, score = self._evaluate_all(q.to(self.device))
        return kind.restore(log_f), kind.restore(score)

    def at_samples(self, kind: ArrayKind | None = None):
        """(log f (n,), score (n, d)) at the fitted samples themselves."""
        with torch.no_grad():
            log_f, score = self._at_samples()
        kind = kind or ArrayKind(False, np.float64)
        return kind.restore(log_f), kind.restore(score)

    def log_density(self, queries):
        """log f at the queries, (m,) nats ((B, m) for a fitted batch)."""
        return self.log_density_and_score(queries)[0]

    def score(self, queries):
        """∇ₓ log f at the queries, (m, d) ((B, m, d) for a fitted batch)."""
        return self.log_density_and_score(queries)[1]

    def score_samples(self, queries):
        """log f at the queries (scikit-learn's name for the log-density), (m,) or (B, m)."""
        return self.log_density(queries)

    def density(self, queries):
        """f at the queries, (m,) or (B, m)."""
        return _exp(self.log_density(queries))

    def __repr__(self):
        sets = "" if self.batch is None else f"{self.batch} sets of "
        return f"<{type(self).__name__}: {sets}n = {self.n} samples in d = {self.dim}>"


class FittedBatch(FittedOracle):
    """B independently fitted sets behind one fitted oracle: queries (B, m, d), set b answers row b."""

    def __init__(self, samples, fitted: list):
        first = fitted[0]
        super().__init__(samples, device=first.device, chunk_size=first.chunk_size, progress=first.progress)
        self.fitted = fitted
        self.differentiable = all(f.differentiable for f in fitted)

    def _evaluate(self, q):
        outs = [f._evaluate(q_b) for f, q_b in zip(self.fitted, q.unbind(0))]
        return torch.stack([o[0] for o in outs]), torch.stack([o[1] for o in outs])

    def _at_samples(self):
        outs = [f._at_samples() for f in self.fitted]
        return torch.stack([o[0] for o in outs]), torch.stack([o[1] for o in outs])


class Oracle:
    """Base of oracles: validates samples and weights, then ``_fit(samples, weights)`` builds
    the fitted oracle (samples: float64 (n, d) on ``self.device``; weights: normalised float64
    (n,) or None).  A batch of sets (B, n, d) goes to ``_fit_batch``, which fits each set unless
    an oracle overrides it with one batched computation."""

    device = torch.device("cpu")
    dims: tuple | None = None  # dimensions this oracle supports (None = any)
    not_identity = ("progress",)  # attributes that do not change the oracle's answers
    reads_samples = True  # False: answers that do not depend on the samples (no check for repeats)

    def _fit(self, samples: torch.Tensor, weights: torch.Tensor | None) -> FittedOracle:
        raise NotImplementedError

    def _fit_batch(self, samples: torch.Tensor, weights: torch.Tensor | None) -> FittedOracle:
        return FittedBatch(samples, [self._fit(x, None if weights is None else weights[b])
                                     for b, x in enumerate(samples.unbind(0))])

    def _check_dim(self, d: int):
        if self.dims is not None and d not in self.dims:
            raise ValueError(f"{self!r} has no checkpoint for dimension d = {d}; "
                             f"available dimensions: {sorted(self.dims)}")

    def fit(self, samples, weights=None) -> FittedOracle:
        """Fit to samples (n, d) with optional non-negative weights (n,); returns a fitted oracle.
        A batch of B sample sets (B, n, d) (weights (B, n)) gives a fitted batch answering (B, m, d).
        Samples and weights are constants of the fit (detached: no gradient flows back to them)."""
        with torch.inference_mode(False):  # a fit made under inference_mode still serves autograd later
            return self._fit_checked(samples, weights)

    def _fit_checked(self, samples, weights) -> FittedOracle:
        if is_dask_array(samples):  # the context is held in memory (see context_limit for large n)
            samples = samples.compute()
        x = check_samples(samples).detach().clone()  # the fit must not change when the caller's array does
        if self.reads_samples:
            for one_set in (x if x.ndim == 3 else [x]):
                check_repeats(one_set)
        self._check_dim(x.shape[-1])
        batch = x.shape[0] if x.ndim == 3 else None
        w = check_weights(weights, x.shape[-2], x.shape[-1], batch)
        x, w = x.to(self.device), None if w is None else w.to(self.device)
        return self._fit(x, w) if batch is None else self._fit_batch(x, w)

    def log_density_and_score(self, samples, queries=None, *, weights=None):
        """(log f (m,), ∇log f (m, d)) at ``queries`` (default: the samples themselves)."""
        fitted = self.fit(samples, weights)
        if queries is None and is_dask_array(samples):
            return fitted.log_density_and_score(samples)  # Dask in, Dask out
        if queries is None:
            if isinstance(samples, torch.Tensor) and samples.requires_grad:
                return fitted.log_density_and_score(samples)  # derivatives w.r.t. the query points
            return fitted.at_samples(ArrayKind.of(samples))
        return fitted.log_density_and_score(queries)

    def log_density(self, samples, queries=None, *, weights=None):
        """log f at ``queries`` (default: the samples), (m,) nats."""
        return self.log_density_and_score(samples, queries, weights=weights)[0]

    def score(self, samples, queries=None, *, weights=None):
        """Score ∇ₓ log f at ``queries`` (default: the samples), (m, d)."""
        return self.log_density_and_score(samples, queries, weights=weights)[1]

    def density(self, samples, queries=None, *, weights=None):
        """f at ``queries`` (default: the samples), (m,)."""
        return _exp(self.log_density(samples, queries, weights=weights))

    def fingerprint(self) -> str:
        """Content hash of the oracle's settings and weights (what determines its answers)."""
        return fingerprint({"type": type(self), **{k: v for k, v in vars(self).items()
                                                   if not k.startswith("_") and k not in self.not_identity}})

    def __repr__(self):
        return f"{type(self).__name__}()"


def _exp(log_f):
    """f from log f, in the type it came in (numpy or torch)."""
    return torch.exp(log_f) if isinstance(log_f, torch.Tensor) else np.exp(log_f)


__all__ = ["ScoreOracle", "FittedScoreOracle", "Oracle", "FittedOracle", "FittedBatch", "ArrayKind"]
