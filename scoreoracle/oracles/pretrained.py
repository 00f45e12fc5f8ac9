"""The pretrained DiScoFormer oracle and ``load()``.

Fitting whitens the samples in float64 on ``device`` and encodes the context once (every layer's
keys and values); queries are then streamed in chunks of ``chunk_size`` rows through the core in
``dtype``, so memory is O(chunk_size · n) and results do not depend on the chunk size (queries
never attend to each other).
"""

from __future__ import annotations

from pathlib import Path

import torch

from .. import weights as checkpoints
from ..contract import FittedOracle, Oracle
from ..distributions import random_rotations
from ..models import standard_normal_log_density
from ..validation import check_dimension, check_positive_int, effective_sample_size, resolve_device
from ..whitening import fit_whitening
from .adaptation import adapt_core


class DiScoFormerOracle(Oracle):
    """Oracle backed by one DiScoFormer core.

    Parameters
    ----------
    core : a trained core (:mod:`scoreoracle.models`); per-dimension cores serve their own d,
        equivariant cores every d.
    dim : pin the oracle to one dimension (samples of another d are refused); None = the core's.
    device : None → cuda when present, else cpu.
    dtype : dtype of the core computation (float32 default; whitening is always float64).
    chunk_size : rows per attention chunk, for both the context encoding and the queries.
    rotations : average a per-dimension core over this many fixed orthogonal frames of the
        whitened data (the first is the identity), at ``rotations``× the cost.  Such cores are
        only approximately rotation-invariant; the average cuts that error.  Equivariant cores are
        exactly invariant and accept only 1.
    progress : show progress bars for long calls (None: only when a call is large).
    """

    def __init__(self, core, *, dim: int | None = None, device=None, dtype=torch.float32,
                 chunk_size: int = 4096, rotations: int = 1, progress=None, name: str | None = None):
        self.device = resolve_device(device)
        self.dtype = dtype
        self.chunk_size = check_positive_int(chunk_size, "chunk_size")
        self.core = core.to(device=self.device, dtype=dtype).eval()
        self.rotations = check_positive_int(rotations, "rotations")
        self.progress = progress
        self.name = name
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
    def dim(self) -> int | None:
        """The dimension this oracle is pinned to (None: any)."""
        return None if self.dims is None else self.dims[0]

    def _frames(self, d: int):
        frames = random_rotations(self.rotations, d, torch.Generator().manual_seed(0))
        frames[0] = torch.eye(d, dtype=frames.dtype)
        return frames.to(self.device, self.dtype)

    def _fit(self, samples, weights):
        return FittedDiScoFormer(self, samples, weights)

    def adapt(self, samples, steps: int = 4, **options) -> "DiScoFormerOracle":
        """Test-time adaptation to one sample set: a copy of this oracle whose core was fine-tuned
        on ``samples`` with the label-free consistency loss (see
        :func:`scoreoracle.oracles.adaptation.adapt_core` for the options and the guard that keeps
        the original weights when adaptation does not help).  The returned oracle's
        ``adaptation`` attribute reports the held-out loss before and after."""
        fitted = self.fit(samples)
        core, report = adapt_core(self.core, fitted.z, steps, **options)
        oracle = DiScoFormerOracle(core, dim=self.dim, device=self.device, dtype=self.dtype,
                                   chunk_size=self.chunk_size, rotations=self.rotations, progress=self.progress,
                                   name=f"{self.name or 'core'}, adapted" if report.kept else self.name)
        oracle.adaptation = report
        return oracle

    def __repr__(self):
        where = "" if self.dim is None else f", d = {self.dim}"
        return f"DiScoFormerOracle({self.name or self.core.architecture}{where})"


class FittedDiScoFormer(FittedOracle):
    """A sample set whitened and encoded once (per frame); queries stream through the core."""

    def __init__(self, oracle: DiScoFormerOracle, samples, weights):
        super().__init__(samples, device=oracle.device, chunk_size=oracle.chunk_size, progress=oracle.progress)
        self.core, self.dtype = oracle.core, oracle.dtype
        self.whitening = fit_whitening(samples, weights)
        self.z64 = self.whitening.apply(samples)
        self.z = self.z64.to(self.dtype)
        n_eff = effective_sample_size(weights, self.n)
        log_weights = None if weights is None else torch.log(weights).to(self.dtype).unsqueeze(0)
        self.frames = oracle._frames(self.dim)
        with torch.no_grad():
            self.contexts = [self.core.encode((self.z @ frame).unsqueeze(0), log_weights, n_eff, self.chunk_size)
                             for frame in self.frames]

    def _combine(self, outputs, z64):
        """Average per-frame whitened outputs (frame Q: s_w(z) = s'(zQ)·Qᵀ), add the standard normal
        log-density in float64, and map back to data space."""
        excess = sum(o[0] for o in outputs)[0].to(torch.float64) / len(outputs)
        score = sum(o[1] @ frame.T for o, frame in zip(outputs, self.frames))[0] / len(outputs)
        return self.whitening.unwhiten_outputs(standard_normal_log_density(z64) + excess, score)

    def _evaluate(self, q):
        z64 = self.whitening.apply(q)
        zq = z64.to(self.dtype)
        return self._combine([self.core.decode((zq @ frame).unsqueeze(0), ctx)
                              for frame, ctx in zip(self.frames, self.contexts)], z64)

    def _at_samples(self):
        return self._combine([self.core.at_context(ctx) for ctx in self.contexts], self.z64)


class PretrainedOracle(Oracle):
    """Per-dimension checkpoints behind one oracle: picks the checkpoint from the samples' d.

    Checkpoints load lazily (and are hash-checked) the first time a dimension is used.
    """

    def __init__(self, directory=None, **options):
        self.directory = directory
        self.options = options
        self.device = resolve_device(options.get("device"))
        self._names = {e["dim"]: name for name, e in checkpoints.read_manifest(directory).items() if e.get("dim")}
        self.dims = tuple(sorted(self._names))
        self._oracles: dict[int, DiScoFormerOracle] = {}

    def for_dim(self, d: int) -> DiScoFormerOracle:
        """The single-dimension oracle for d (loaded on first use)."""
        self._check_dim(d)
        if d not in self._oracles:
            name = self._names[d]
            self._oracles[d] = DiScoFormerOracle(checkpoints.load_checkpoint(name, self.directory), name=name,
                                                 **self.options)
        return self._oracles[d]

    def _fit(self, samples, weights):
        return self.for_dim(samples.shape[1])._fit(samples, weights)

    def adapt(self, samples, steps: int = 4, **options) -> DiScoFormerOracle:
        """Test-time adaptation of the checkpoint for the samples' dimension."""
        return self.for_dim(self.fit(samples).dim).adapt(samples, steps, **options)

    def __repr__(self):
        return f"PretrainedOracle(per-dimension checkpoints for d in {list(self.dims)})"


def load(dim: int | None = None, *, checkpoint: str | None = None, path=None, device=None,
         dtype=torch.float32, chunk_size: int = 4096, rotations: int = 1, progress=None) -> Oracle:
    """A pretrained oracle.

    checkpoint : name of one checkpoint (``scoreoracle info`` lists them); default: the
        checkpoint folder's default (an all-dimension core when there is one, else the
        per-dimension checkpoints chosen by the samples' d).
    dim : pin the oracle to one dimension (for code that wants an error on any other d).
    path : a checkpoint folder written by ``scoreoracle export`` (weights, model card and a
        manifest with SHA-256 hashes), instead of the checkpoints shipped with the package.
    device, dtype, chunk_size, rotations, progress : see :class:`DiScoFormerOracle`.
    """
    directory = None if path is None else Path(path)
    if directory is not None and not (directory / checkpoints.MANIFEST).is_file():
        raise FileNotFoundError(f"{directory} is not a checkpoint folder: it has no {checkpoints.MANIFEST} "
                                "(write one with `scoreoracle export RUN_DIR --out FOLDER`)")
    if dim is not None:
        dim = check_dimension(dim)
    options = dict(device=device, dtype=dtype, chunk_size=chunk_size, rotations=rotations, progress=progress)
    manifest = checkpoints.read_manifest(directory)
    if checkpoint is None:
        defaults = [name for name, entry in manifest.items() if entry.get("default")]
        checkpoint = defaults[0] if defaults else None
    if checkpoint is not None:
        core = checkpoints.load_checkpoint(checkpoint, directory)
        return DiScoFormerOracle(core, dim=dim, name=checkpoint, **options)
    router = PretrainedOracle(directory, **options)
    return router if dim is None else router.for_dim(dim)


__all__ = ["DiScoFormerOracle", "PretrainedOracle", "load"]
