"""The pretrained DiScoFormer oracle and ``load()``.

Fitting whitens the samples in float64 on ``device`` and encodes the context once (every layer's
keys and values); queries are then streamed in chunks of ``chunk_size`` rows through the core in
``dtype``, so memory is O(chunk_size · n) and results depend on the chunk size only through
floating-point rounding (queries
never attend to each other).
"""

from __future__ import annotations

import copy
import math
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch

from .. import weights as checkpoints
from ..contract import FittedOracle, Oracle
from ..distributions import random_rotations
from ..fingerprint import fingerprint
from ..gaussian import standard_normal_log_density
from ..validation import (OutlierWarning, caller_stacklevel, check_dimension, check_positive_int, check_repeats,
                          check_sample_set, check_samples, effective_sample_size, resolve_device)
from ..whitening import canonical_rotation, fit_whitening
from .adaptation import adapt_core
from .score_matching import MIN_HELD_OUT, Comparison, compare, cross_fitted_losses

FAR_FIELD = (1.5, 2.5)
"""Whitened radii, in multiples of the samples' largest, between which the core's answer fades into
its power-law continuation (:func:`power_law_tail`).  Far beyond every sample the core
extrapolates badly (the six-layer core, rays from Gaussian samples at d = 1–100: log f̂ turning
upward from 4.9–6.2× that radius, the score outward from 11–27×); from 1.5× on, the continuation
is as good or better on heavy tails (Student-t ν = 3, 4 seeds, n = 256: log-density MSE 0.55 at
d = 10, 0.93 fading between 3× and 5×, 4.6 with no fade) and GMM-family queries hardly ever reach
it (the GMM protocol's answers at d = 1, 2, 5 are identical to a 3×–5× band's).  Fading into the
Gaussian fit instead gave heavy-tailed queries its linear score −z (2-D Student-t, n = 1024:
score MSE 0.48 instead of 0.03 with a 1×–2× band; d = 10, n = 256: 2.05 instead of 0.67 with 3×–5×)."""


def far_field_weight(z, radius):
    """Weight w (..., m) of the core's answer at whitened points z (..., m, d), given the samples'
    largest whitened radius (..., 1): 1 within ``FAR_FIELD[0]``·radius, 0 beyond ``FAR_FIELD[1]``·radius,
    between a polynomial with three continuous derivatives; and its gradient ∇w (..., m, d), which
    the blended score needs to be the gradient of the blended log-density (the score, holding ∇w,
    then has two continuous derivatives: its divergence is smooth enough for finite differences)."""
    inner, outer = FAR_FIELD
    norm = z.norm(dim=-1)
    t = ((norm / radius - inner) / (outer - inner)).clamp(0, 1)
    slope = -140 * (t * (1 - t)) ** 3 / ((outer - inner) * radius)  # dw/d‖z‖, 0 outside the band
    gradient = (slope / norm.clamp_min(torch.finfo(norm.dtype).tiny)).unsqueeze(-1) * z
    return 1 - t ** 4 * (35 - 84 * t + 70 * t * t - 20 * t ** 3), gradient


def power_law_tail(z, log_f_edge, score_edge, edge):
    """The answer at whitened points z (B, m, d) continued from the one at their projections
    p = edge·ẑ onto the sphere of radius edge (B, 1, 1) (log f (B, m), score (B, m, d) there) as a
    power law in every direction: log f(z) = log f(p) + κ·log(‖z‖/edge), score
    (edge/‖z‖)·(tangential part of s(p)) + (κ/‖z‖)·ẑ, with κ = edge·(s(p)·ẑ) — so log f and score
    are continuous at the sphere — capped at −(d + 1): normalisable, pointing inward.  A Student-t's
    tail has this form (κ → −(ν + d)), a Gaussian's falls faster.  The score is the gradient of
    log f up to log(‖z‖/edge)·∇κ, exactly so when κ does not vary with direction.  Points inside
    the sphere (other sets of a batch) get finite values for the caller to weight out."""
    norm = z.norm(dim=-1, keepdim=True).clamp_min(edge)
    direction = z / norm
    radial = (score_edge * direction).sum(-1, keepdim=True)
    kappa = (edge * radial).clamp(max=-(z.shape[-1] + 1.0))
    log_f = log_f_edge + (kappa * torch.log(norm / edge))[..., 0]
    score = (edge / norm) * (score_edge - radial * direction) + (kappa / norm) * direction
    return log_f, score


# samples whose weight is below this share of the largest are no context: their mass is below any
# dtype's resolution of the density, and their whitened coordinates (up to ~‖z‖ ≤ √(d/w)) could
# overflow a float32 core
NEGLIGIBLE_WEIGHT = 1e-12


class DiScoFormerOracle(Oracle):
    """Oracle backed by one DiScoFormer core (identified by its weights, not by where they were read).

    Parameters
    ----------
    core : a trained core (:mod:`scoreoracle.models`); per-dimension cores serve their own d,
        equivariant cores every d.
    dim : pin the oracle to one dimension (samples of another d are refused); None = the core's.
    device : None → cuda when present, else cpu.
    dtype : dtype of the core computation (float32 default; whitening is always float64).
    chunk_size : rows per chunk: queries stream through the core this many at a time (memory
        O(chunk_size · n)), and the context is encoded in chunks of this many rows.
    rotations : average a per-dimension core over this many fixed orthogonal frames of the
        whitened data (the first is the identity), at ``rotations``× the cost.  Such cores are
        only approximately rotation-invariant; the average cuts that error.  Equivariant cores are
        exactly invariant and accept only 1.
    progress : show progress bars for long calls (None: only when a call is large).
    context_limit : above this many samples, the context is a seeded random subset of this size
        (cost O(limit² + m·limit) instead of O(n² + m·n), memory bounded by the chunk); the
        whitening still uses every sample.  None: always the exact all-samples context.
    ensembles : with more samples than ``context_limit``, average over this many independent
        subsets (lower variance, ``ensembles``× the cost).
    seed : seed of the subsets (results are reproducible).
    """

    not_identity = ("progress", "name", "source", "adaptation", "selection")  # reports, not settings

    def __init__(self, core, *, dim: int | None = None, device=None, dtype=torch.float32,
                 chunk_size: int = 4096, rotations: int = 1, progress=None, name: str | None = None,
                 context_limit: int | None = None, ensembles: int = 1, seed: int = 0, source: tuple | None = None):
        self.device = resolve_device(device)
        self.dtype = dtype
        settings = _checked_options(dict(chunk_size=chunk_size, rotations=rotations, context_limit=context_limit,
                                         ensembles=ensembles, seed=seed), auto_limit=False)
        self.chunk_size = settings["chunk_size"]
        reference = next(core.parameters())
        if reference.dtype != dtype or reference.device != self.device:  # never convert the caller's module
            core = copy.deepcopy(core).to(device=self.device, dtype=dtype)
        self.core = core
        self.rotations = settings["rotations"]
        self.progress = progress
        self.name = name
        self.source = source  # (checkpoint name, folder or None, SHA-256) when the core came from a checkpoint
        self.context_limit, self.ensembles, self.seed = (settings[k] for k in ("context_limit", "ensembles", "seed"))
        core_dim = getattr(core.config, "dim", None)
        if dim is not None:
            dim = check_dimension(dim)
            if core_dim is not None and dim != core_dim:
                raise ValueError(f"this checkpoint serves d = {core_dim} only, not d = {dim}")
        self.dims = None if (dim or core_dim) is None else (dim or core_dim,)
        if core_dim is None and self.rotations != 1:
            raise ValueError("rotations > 1 averages a per-dimension core over rotated frames; the "
                             "equivariant core is exactly rotation-invariant, so use rotations=1")

    @property
    def equivariant_core(self) -> bool:
        """The core serves every d, exactly O(d)-equivariant: fits hand it the canonical frame."""
        return getattr(self.core.config, "dim", None) is None

    @property
    def dim(self) -> int | None:
        """The dimension this oracle is pinned to (None: any)."""
        return None if self.dims is None else self.dims[0]

    def _frames(self, d: int):
        frames = random_rotations(self.rotations, d, torch.Generator().manual_seed(0))
        frames[0] = torch.eye(d, dtype=frames.dtype)
        return frames.to(self.device, self.dtype)

    def _context_subsets(self, n: int, d: int, carries=None) -> list:
        """Index tensors of the context subsets ([None]: all n samples, one context).  Only samples
        that carry weight (``carries``: (1, n) bool, None for uniform weights) are context: the
        others add nothing to the density, and far away they would overflow the core."""
        candidates = None if carries is None else torch.nonzero(carries[0].cpu())[:, 0]
        everyone = candidates is None or len(candidates) == n
        if everyone and (self.context_limit is None or n <= self.context_limit):
            return [None]
        if self.context_limit is not None and self.context_limit < d + 2:
            raise ValueError(f"context_limit = {self.context_limit} is below d + 2 = {d + 2} samples")
        candidates = torch.arange(n) if candidates is None else candidates
        if self.context_limit is None or len(candidates) <= self.context_limit:
            return [candidates.to(self.device)]
        g = torch.Generator().manual_seed(self.seed)
        return [candidates[torch.randperm(len(candidates), generator=g)[:self.context_limit]].sort().values
                .to(self.device) for _ in range(self.ensembles)]

    def _fit(self, samples, weights):
        return FittedDiScoFormer(self, samples, weights)

    def _fit_batch(self, samples, weights):
        """Unweighted batches are encoded in one model call; weighted sets one by one (each set's
        effective sample size enters the core)."""
        return FittedDiScoFormer(self, samples, None) if weights is None else super()._fit_batch(samples, weights)

    def adapt(self, samples, steps: int = 4, **options) -> "DiScoFormerOracle":
        """Test-time adaptation to one sample set: a copy of this oracle whose core was fine-tuned
        on ``samples`` with the label-free consistency loss (see
        :func:`scoreoracle.oracles.adaptation.adapt_core` for the options and the guard that keeps
        the original weights unless adaptation lowers the held-out score-matching loss).  The
        returned oracle's ``adaptation`` attribute reports that loss before and after
        (``.adaptation.held_out.reference`` / ``.candidate``).  The guard judges the bare core in
        the whitened frame, as :meth:`PretrainedOracle.select` does: with ``rotations`` > 1 or
        ``ensembles`` > 1 the returned oracle averages the adapted core over frames or context
        subsets, an average of what was judged, not itself judged."""
        fitted = self.fit(samples)
        if fitted.batch is not None:
            raise ValueError("adapt takes one sample set (n, d), not a batch")
        core, report = adapt_core(self.core, fitted.z64[0], steps, **options)
        oracle = DiScoFormerOracle(core, dim=self.dim, device=self.device, dtype=self.dtype,
                                   chunk_size=self.chunk_size, rotations=self.rotations, progress=self.progress,
                                   name=f"{self.name or 'core'}, adapted" if report.kept else self.name,
                                   source=None if report.kept else self.source,
                                   context_limit=self.context_limit, ensembles=self.ensembles, seed=self.seed)
        oracle.adaptation = report
        return oracle

    def __repr__(self):
        where = "" if self.dim is None else f", d = {self.dim}"
        return f"DiScoFormerOracle({self.name or self.core.architecture}{where})"


class FittedDiScoFormer(FittedOracle):
    """Sample sets whitened and encoded once (per frame and per context subset); queries stream
    through the core.  Internally every tensor carries a leading set axis (B = 1 for one set).

    Pickling (e.g. to Dask workers) sends the encoded context; a core loaded from a checkpoint
    travels as its name and is loaded once per receiving process."""

    def __init__(self, oracle: DiScoFormerOracle, samples, weights):
        super().__init__(samples, device=oracle.device, chunk_size=oracle.chunk_size, progress=oracle.progress)
        self.core, self.dtype, self.source = oracle.core, oracle.dtype, oracle.source
        x = samples if self.batch is not None else samples.unsqueeze(0)  # (B, n, d)
        w = None if weights is None else (weights if self.batch is not None else weights.unsqueeze(0))
        carries = None if w is None else w > NEGLIGIBLE_WEIGHT * w.amax(-1, keepdim=True)  # (B, n)
        if carries is not None and not bool(carries.all()):  # negligible weights count for nothing, whitening too
            w = torch.where(carries, w, 0.0)
            w = w / w.sum(-1, keepdim=True)
        self.whitening = fit_whitening(x, w)
        if oracle.equivariant_core:  # every affine image of x reaches the core in the same coordinates
            self.whitening = self.whitening.refined(x, w)  # (to round-off, not to κ(C)·round-off)
            self.whitening = self.whitening.rotated(canonical_rotation(self.whitening.apply(x), w))
        self.z64 = self.whitening.apply(x)
        _warn_if_squeezed(self.z64, carries)
        radii = self.z64.norm(dim=-1)
        radii = radii if w is None else radii.masked_fill(~carries, 0)
        self.radius = radii.amax(-1, keepdim=True)  # (B, 1) the reach of the samples that carry weight
        # the context in a canonical order (by first whitened coordinate): attention sums, and the
        # context subsets drawn below, then do not depend on the order the samples came in
        order = torch.argsort(self.z64[..., 0], dim=-1, stable=True)  # (B, n)
        self.sample_order = torch.argsort(order, dim=-1)  # context order → the samples' order
        z_sorted = _along_samples(self.z64, order)
        w = None if w is None else torch.gather(w, -1, order)
        self.frames = oracle._frames(self.dim)
        carries = None if w is None else torch.gather(carries, -1, order)
        self.subsets = oracle._context_subsets(self.n, self.dim, carries)
        self.contexts = []
        with torch.no_grad():
            for subset in self.subsets:
                z = z_sorted if subset is None else z_sorted[:, subset]
                ws = None if w is None else (w if subset is None else w[:, subset])
                ws = None if ws is None else ws / ws.sum(-1, keepdim=True)
                n_eff = effective_sample_size(None if ws is None else ws[0], z.shape[1])  # weighted: one set
                log_weights = None if ws is None else torch.log(ws).to(self.dtype)
                for frame in self.frames:
                    self.contexts.append(self.core.encode(z.to(self.dtype) @ frame, log_weights, n_eff,
                                                          self.chunk_size))

    def __repr__(self):
        core = f"checkpoint {self.source[0]!r}" if self.source else f"in-memory {self.core.architecture} core"
        return super().__repr__().replace(">", f", {core}>")

    def _average(self, outputs):
        """The whitened outputs averaged over frames and subsets (frame Q: s_w(z) = s'(zQ)·Qᵀ), in
        float64: the core's excess over log N(z; 0, I) (B, m) and its score (B, m, d)."""
        frames = self.frames.repeat(len(self.subsets), 1, 1)
        excess = sum(o[0] for o in outputs).to(torch.float64) / len(outputs)
        score = sum(o[1] @ frame.T for o, frame in zip(outputs, frames)).to(torch.float64) / len(outputs)
        return excess, score

    def _decode(self, z64):
        """The core's outputs at whitened points z64 (B, m, d), one per frame and subset."""
        frames = self.frames.repeat(len(self.subsets), 1, 1)
        return [self.core.decode(z64.to(self.dtype) @ frame, ctx) for frame, ctx in zip(frames, self.contexts)]

    def _combine(self, outputs, z64, tail=None):
        """Average the whitened outputs, fade them beyond the samples' reach (:data:`FAR_FIELD`) into
        their power-law continuation (``tail``: the columns of z64 that reach the band, the band's
        inner radius, those points projected onto it and the outputs there), and map back to data space.  The
        faded score is the gradient of the faded log-density: log f = w·f_core + (1 − w)·f_tail
        gives s = w·s_core + (1 − w)·s_tail + (f_core − f_tail)·∇w."""
        excess, score = self._average(outputs)
        log_f = standard_normal_log_density(z64) + excess
        if tail is not None:
            columns, edge, edge_points, edge_outputs = tail
            edge_excess, edge_score = self._average(edge_outputs)
            tail_log_f, tail_score = log_f.clone(), score.clone()
            tail_log_f[:, columns], tail_score[:, columns] = power_law_tail(
                z64[:, columns], standard_normal_log_density(edge_points) + edge_excess, edge_score, edge)
            weight, weight_gradient = far_field_weight(z64, self.radius)
            score = (weight.unsqueeze(-1) * score + (1 - weight).unsqueeze(-1) * tail_score
                     + (log_f - tail_log_f).unsqueeze(-1) * weight_gradient)
            log_f = weight * log_f + (1 - weight) * tail_log_f
        log_f, score = self.whitening.unwhiten_outputs(log_f, score)
        return (log_f, score) if self.batch is not None else (log_f[0], score[0])

    def _evaluate(self, q):
        z64 = self.whitening.apply(q if self.batch is not None else q.unsqueeze(0))
        # the core never sees points beyond the far field, where its weight is 0: those are pulled
        # in to its edge (a query 1e10 out would overflow the core to NaN, and 0 · NaN is NaN)
        inner, outer = (bound * self.radius.unsqueeze(-1) for bound in FAR_FIELD)  # (B, 1, 1)
        norm = z64.norm(dim=-1, keepdim=True)
        pulled_in = z64 * (outer / norm.clamp_min(outer))
        columns = (norm > inner).any(0)[:, 0]  # queries beyond the inner edge in some set
        if not bool(columns.any()):
            return self._combine(self._decode(pulled_in), z64)
        edge_points = z64[:, columns] * (inner / norm[:, columns]).clamp(max=1)
        # one call for both: the rows then go through the same kernels whatever the chunking
        outputs = self._decode(torch.cat([pulled_in, edge_points], 1))
        m = z64.shape[1]
        return self._combine([(f[:, :m], s[:, :m]) for f, s in outputs], z64,
                             (columns, inner, edge_points, [(f[:, m:], s[:, m:]) for f, s in outputs]))

    def _at_samples(self):
        if self.subsets != [None]:  # the samples are not all context tokens: query them
            return self._evaluate_all(self.samples)
        back = self.sample_order
        outputs = [(torch.gather(ctx_f, -1, back), _along_samples(ctx_s, back))
                   for ctx_f, ctx_s in (self.core.at_context(ctx) for ctx in self.contexts)]
        return self._combine(outputs, self.z64)  # every sample is within reach: the core's answer

    def __getstate__(self):
        state = self.__dict__.copy()
        if self.source is not None:
            state["core"] = None
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        if self.core is None:
            self.core = checkpoints.cached_checkpoint(*self.source, str(self.device), str(self.dtype))


def _along_samples(points, index):
    """points (B, n, d) reordered along n by index (B, n)."""
    return torch.gather(points, 1, index.unsqueeze(-1).expand(-1, -1, points.shape[-1]))


@dataclass(frozen=True)
class SelectionReport:
    """What :meth:`PretrainedOracle.select` compared: the checkpoint the d-routing picks
    (``default``), the one chosen, their held-out score-matching comparison (None when one
    checkpoint serves d) and why."""

    default: str
    chosen: str
    comparison: Comparison | None
    reason: str = ""


class PretrainedOracle(Oracle):
    """The checkpoints of a folder behind one oracle, chosen by the samples' d.

    A dimension with its own checkpoint uses it; every other d uses the folder's all-dimension
    checkpoint when it has one (else it is refused) — and so do sample sets smaller than the
    smallest context a dimension's own checkpoint trained on (its model card's ``context_sizes``;
    128 for the shipped ones), which it extrapolates to badly (d = 3, n = 16: relative score error
    115 % against the all-dimension core's 77 %).  A checkpoint whose manifest entry says
    ``"retired": true`` stays loadable by name but no longer answers: a retired per-dimension
    checkpoint hands its d to the all-dimension one, a retired all-dimension checkpoint makes way
    for its successor.  :meth:`checkpoint_for` says which serves a
    d; :meth:`select` picks between a dimension's own checkpoint and the all-dimension one by
    their estimated score error on the data.  Checkpoints load lazily (and are hash-checked) the
    first time they are used.
    """

    def __init__(self, directory=None, **options):
        self.directory = directory
        self.options = _checked_options(options)
        self.device = resolve_device(options.get("device"))
        manifest = checkpoints.read_manifest(directory)
        by_dim: dict[int, list] = {}
        for name, e in manifest.items():
            if _serves_one_dimension(e) and not e.get("retired"):
                by_dim.setdefault(e["dim"], []).append(name)
        for d, names in sorted(by_dim.items()):
            if len(names) > 1:
                raise ValueError(f"{directory or 'the package'} holds several checkpoints for d = {d} "
                                 f'{sorted(names)}: retire all but one (manifest "retired": true) or pass '
                                 "checkpoint=<name>")
        self._names = {d: names[0] for d, names in by_dim.items()}
        every_d = sorted(name for name, e in manifest.items() if not _serves_one_dimension(e) and not e.get("retired"))
        if len(every_d) > 1:
            raise ValueError(f"{directory or 'the package'} holds several all-dimension checkpoints {every_d}: "
                             'retire all but one (manifest "retired": true) or pass checkpoint=<name>')
        self.every_dimension = every_d[0] if every_d else None
        self.dims = None if self.every_dimension else tuple(sorted(self._names))
        self._oracles: dict[str, DiScoFormerOracle] = {}
        self._smallest: dict[str, int] = {}  # per-dimension checkpoint → its smallest training context

    def checkpoint_for(self, d: int, n: float | None = None) -> str:
        """The name of the checkpoint that answers d-dimensional samples — of (effective) size n,
        when given: below the smallest context d's own checkpoint trained on, the all-dimension one."""
        self._check_dim(d)
        own = self._names.get(d)
        if own is None or (n is not None and self.every_dimension is not None and n < self._smallest_context(own)):
            return self.every_dimension
        return own

    def _smallest_context(self, name: str) -> int:
        if name not in self._smallest:
            card = checkpoints.model_card(name, self.directory)
            self._smallest[name] = int(card.get("train_config", {}).get("context_sizes", [1])[0])
        return self._smallest[name]

    def for_dim(self, d: int, n: float | None = None) -> DiScoFormerOracle:
        """The oracle that answers d-dimensional samples (of size n; loaded on first use)."""
        return self._oracle(self.checkpoint_for(d, n))

    def _for_samples(self, samples, weights=None) -> DiScoFormerOracle:
        """The oracle for samples (…, n, d) with normalised weights (…, n) or None: by d and n_eff."""
        n = samples.shape[-2] if weights is None else float(1.0 / (weights * weights).sum(-1).max())
        return self.for_dim(samples.shape[-1], n)

    def _oracle(self, name: str) -> DiScoFormerOracle:
        if name not in self._oracles:
            entry = checkpoints.read_manifest(self.directory)[name]
            self._oracles[name] = DiScoFormerOracle(checkpoints.load_checkpoint(name, self.directory), name=name,
                                                    source=_source(name, self.directory, entry),
                                                    **_options_for(self.options, entry))
        return self._oracles[name]

    def _fit(self, samples, weights):
        return self._for_samples(samples, weights)._fit(samples, weights)

    def fingerprint(self) -> str:
        """The options and the SHA-256 of every checkpoint it may use."""
        manifest = checkpoints.read_manifest(self.directory)
        return fingerprint({"options": {k: v for k, v in self.options.items() if k != "progress"},
                            "weights": {name: manifest[name]["sha256"]
                                        for name in sorted({*self._names.values(), self.every_dimension} - {None})}})

    def _fit_batch(self, samples, weights):
        return self._for_samples(samples, weights)._fit_batch(samples, weights)

    def adapt(self, samples, steps: int = 4, **options) -> DiScoFormerOracle:
        """Test-time adaptation of the checkpoint for the samples' dimension and size."""
        return self._for_samples(check_samples(samples)).adapt(samples, steps, **options)

    def select(self, samples, *, folds: int = 4, max_held_out: int = 2048, max_context: int = 4096,
               seed: int = 0) -> DiScoFormerOracle:
        """The checkpoint that suits ``samples`` (n, d) best, by held-out score matching.

        Where d has its own checkpoint and the folder an all-dimension one, both score every
        whitened sample (at most ``max_held_out``) by cross-fitting: in ``folds`` turns, each fold
        given the other samples as context (at most ``max_context``).  The all-dimension checkpoint
        is chosen only if its score-matching loss — the true score error up to a constant — is
        lower by more than two standard errors, judged on at least 30 held-out points (fewer keep the
        default, unless its loss is not finite; ``.selection.reason`` says why) — heavy-tailed data,
        for instance, where the per-dimension checkpoints, trained on Gaussian mixtures only, do
        badly.  Cross-fitting scores four times the points one held-out quarter did: at d = 3 on
        Student-t data (ν = 3, 8 seeds), where the core's error is 6–12× lower, select now picks it in
        8/8 seeds at n = 256 and 1024 (one held-out quarter: 2/8 and 4/8), and on GMMs keeps d3 in
        8/8.  The losses are those of the bare cores in whitened coordinates (the score error
        weighted by the samples' covariance; the whitening uses every sample, an O(1/n) leak
        shared by both), without frame averaging or ensembles.  Costs ``folds`` encodings and d
        backward passes per checkpoint on the held-out points: call it once per data set, then fit
        and query the returned oracle.  Its ``selection`` attribute reports the comparison.  Only
        the d-routing oracle of ``load()`` selects; ``load(dim)`` and ``load(checkpoint=…)`` are
        pinned to one checkpoint.
        """
        x = check_sample_set(samples)
        check_repeats(x)  # copies on both sides of the held-out split would bias the comparison
        d = x.shape[-1]
        default, other = self.checkpoint_for(d, x.shape[0]), self.every_dimension
        chosen, comparison = default, None
        if other is not None and other != default:
            reference, candidate = self._oracle(default), self._oracle(other)
            z = fit_whitening(x).apply(x).to(device=reference.device, dtype=reference.dtype)
            comparison = compare(*cross_fitted_losses([reference.core, candidate.core], z, folds, max_held_out,
                                                      max_context, seed))
            chosen = other if comparison.better else default
        oracle = copy.copy(self._oracle(chosen))
        oracle.selection = SelectionReport(default, chosen, comparison, _selection_reason(comparison, other))
        return oracle

    def __repr__(self):
        serves = [f"{name} for d = {d}" for d, name in sorted(self._names.items())]
        if self.every_dimension:
            serves.append(f"{self.every_dimension} for every {'other ' if serves else ''}d"
                          + (" and smaller sample sets" if serves else ""))
        return f"PretrainedOracle({', '.join(serves)})"


SQUEEZED = 0.01
"""Median squared whitened coordinate, along the bulk's narrowest direction or averaged over all d,
below which the bulk counts as squeezed (0.45 for Gaussian data; Student-t with ν ≥ 2.5, as trained
on, ≥ 0.1)."""


def _warn_if_squeezed(z, carries) -> None:
    """Warn when half the samples (B, n, d) that carry weight sit within a sliver of the whitened
    centre, in every direction or in one: a few far samples (outliers, Cauchy-like tails) set the
    covariance.  The narrow direction is the least-spread axis of the inner half of the samples
    (looked for with at least 8d samples)."""
    d = z.shape[-1]
    for b in range(z.shape[0]):
        points = z[b] if carries is None else z[b][carries[b]]
        r2 = (points * points).sum(-1)
        median = float(r2.median())
        bulk = points[r2 <= median]
        along = math.inf  # a bulk of fewer than 4d points is thin in some direction by chance
        if len(bulk) >= 4 * d:
            narrowest = torch.linalg.eigh(bulk.T @ bulk)[1][:, 0]  # (d,) least second moment of the bulk
            along = float(((points @ narrowest) ** 2).median())
        if median < SQUEEZED * d:
            where = (f"within {median ** 0.5:.2g} whitened units of their centre (median squared radius "
                     f"{median:.2g}, near d = {d} without outliers)")
        elif along < SQUEEZED:
            where = (f"within {along ** 0.5:.2g} whitened units of their centre along one direction (median "
                     f"squared coordinate {along:.2g}, near 0.45 without outliers)")
        else:
            continue
        warnings.warn(f"half the samples lie {where}: a few far samples "
                      "(outliers, or tails heavier than the oracle was trained on, e.g. Cauchy) set the "
                      "covariance it whitens with, and its answers can be off by orders of magnitude; remove "
                      "the outliers", OutlierWarning, stacklevel=caller_stacklevel())
        return


def _selection_reason(comparison: Comparison | None, other: str | None) -> str:
    if comparison is None:
        return "one checkpoint serves samples of this dimension and size"
    if not math.isfinite(comparison.candidate):
        return f"{other}'s held-out score-matching loss is not finite"
    if not math.isfinite(comparison.reference):
        return f"the default's held-out score-matching loss is not finite, {other}'s is"
    if comparison.points < MIN_HELD_OUT:
        return (f"too few held-out points to judge ({comparison.points} < {MIN_HELD_OUT}): the default is kept "
                "(more samples or a larger max_held_out)")
    if comparison.better:
        return f"{other}'s held-out score-matching loss is lower by more than two standard errors"
    return f"{other}'s held-out score-matching loss is not lower by more than two standard errors"


def _serves_one_dimension(entry: dict) -> bool:
    return entry.get("dim") not in (None, "any")


def _source(name: str, directory, entry: dict) -> tuple:
    """(name, folder or None, SHA-256): what a fitted oracle needs to rebuild its core elsewhere,
    and to refuse weights that changed since."""
    return name, None if directory is None else str(Path(directory).resolve()), entry["sha256"]


def _checked_options(options: dict, *, auto_limit: bool = True) -> dict:
    """Oracle options (any subset of :class:`DiScoFormerOracle`'s), with the integer settings
    checked and made plain ints; ``context_limit`` may also be "auto" where ``auto_limit`` (``load()``,
    which resolves it per checkpoint).  ``load()`` calls it so malformed options fail at once, not at
    the first fit."""
    checked = dict(options)
    for name in ("chunk_size", "rotations", "ensembles", "seed"):
        if name in options:
            checked[name] = check_positive_int(options[name], name, allow_zero=name == "seed")
    limit = options.get("context_limit")
    if limit is not None and not (auto_limit and limit == "auto"):
        try:
            checked["context_limit"] = check_positive_int(limit, "context_limit")
        except ValueError:
            allowed = '"auto", None' if auto_limit else "None"
            raise ValueError(f"context_limit must be {allowed} or a positive integer, got {limit!r}") from None
    return checked


def _options_for(options: dict, entry: dict) -> dict:
    """The options for one checkpoint (its manifest entry): ``context_limit="auto"`` becomes its
    measured limit (else none), and an all-dimension core, exactly rotation-invariant, uses one
    frame (frame averaging is for per-dimension cores)."""
    options = dict(options)
    if options.get("context_limit") == "auto":
        options["context_limit"] = entry.get("context_limit")
    if not _serves_one_dimension(entry):
        options["rotations"] = 1
    return options


def load(dim: int | None = None, *, checkpoint: str | None = None, path=None, device=None,
         dtype=torch.float32, chunk_size: int = 4096, rotations: int = 1, progress=None,
         context_limit: int | str | None = "auto", ensembles: int = 1, seed: int = 0) -> Oracle:
    """A pretrained oracle.

    checkpoint : name of one checkpoint (``scoreoracle info`` lists them), used for every call;
        default: the folder's default checkpoint when it marks one, else a
        :class:`PretrainedOracle` choosing by the samples' d and size (a dimension's own checkpoint
        where there is one, from its smallest training context on; the all-dimension checkpoint for
        every other d and for smaller sample sets).
    dim : pin the oracle to one dimension (for code that wants an error on any other d): that
        dimension's checkpoint (or the folder's default one, when it marks one) answers every
        sample size (no routing of small sets to the core).
    path : a checkpoint folder written by ``scoreoracle export`` (weights, model card and a
        manifest with SHA-256 hashes), instead of the checkpoints shipped with the package.
    context_limit : "auto" (default): each checkpoint's measured limit, the context size beyond which
        its accuracy stops improving (recorded in its manifest entry; none if unmeasured); an
        integer; or None for the exact all-samples context.
    rotations : frames averaged by the per-dimension checkpoints (the all-dimension core, exactly
        invariant, always uses one).
    device, dtype, chunk_size, progress, ensembles, seed : see :class:`DiScoFormerOracle`.
    """
    directory = None if path is None else Path(path)
    if directory is not None and not (directory / checkpoints.MANIFEST).is_file():
        raise FileNotFoundError(f"{directory} is not a checkpoint folder: it has no {checkpoints.MANIFEST} "
                                "(write one with `scoreoracle export RUN_DIR --out FOLDER`)")
    if dim is not None:
        dim = check_dimension(dim)
    options = _checked_options(dict(device=device, dtype=dtype, chunk_size=chunk_size, rotations=rotations,
                                    progress=progress, context_limit=context_limit, ensembles=ensembles, seed=seed))
    manifest = checkpoints.read_manifest(directory)
    if checkpoint is None:
        checkpoint = next((name for name, entry in manifest.items() if entry.get("default")), None)
    if checkpoint is None and dim is not None:
        checkpoint = PretrainedOracle(directory, **options).checkpoint_for(dim)
    if checkpoint is not None:
        core = checkpoints.load_checkpoint(checkpoint, directory)
        entry = manifest[checkpoint]
        return DiScoFormerOracle(core, dim=dim, name=checkpoint, source=_source(checkpoint, directory, entry),
                                 **_options_for(options, entry))
    return PretrainedOracle(directory, **options)


__all__ = ["DiScoFormerOracle", "PretrainedOracle", "load"]
