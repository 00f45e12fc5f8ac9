"""The pretrained DiScoFormer oracle and ``load()``.

The whitening wrapper runs in float64 on the CPU (so data far from the origin loses nothing);
the core then runs in ``dtype`` on ``device``.  The context is encoded once per call and the
queries are streamed in chunks of ``chunk_size`` rows, so memory is O(chunk_size · n) and
results do not depend on the chunk size (queries never attend to each other).
"""

from __future__ import annotations

import copy

import torch

from ._validation import check_positive_int, check_samples, resolve_device
from .checkpoint import available_checkpoints, load_shipped
from .distributions import random_rotations
from .model import DiScoFormerCore
from .oracle import Oracle
from .whitening import fit_whitening


class DiScoFormerOracle(Oracle):
    """Oracle backed by one DiScoFormer core (one data dimension).

    Parameters
    ----------
    core : a trained :class:`~scoreoracle.model.DiScoFormerCore`.
    device : None → cuda when present, else cpu.
    dtype : dtype of the transformer computation (float32 default; whitening is always float64).
    chunk_size : rows per attention chunk, for both the context encoding and the queries.
    rotations : average the model over this many fixed orthogonal frames of the whitened data
        (the first is the identity).  The core is only approximately rotation-invariant; the
        average cuts that error and acts as an ensemble (d = 2: log-density MSE −35 % with 8),
        at ``rotations``× the cost.
    """

    def __init__(self, core: DiScoFormerCore, *, device=None, dtype=torch.float32, chunk_size: int = 4096,
                 rotations: int = 1):
        self.device = resolve_device(device)
        self.dtype = dtype
        self.chunk_size = check_positive_int(chunk_size, "chunk_size")
        self.core = core.to(device=self.device, dtype=dtype).eval()
        self.dims = (core.config.dim,)
        self.rotations = check_positive_int(rotations, "rotations")
        frames = random_rotations(self.rotations, self.dim, torch.Generator().manual_seed(0))
        frames[0] = torch.eye(self.dim, dtype=frames.dtype)
        self._frames = frames.to(self.device, dtype)

    @property
    def dim(self) -> int:
        return self.core.config.dim

    def _evaluate(self, samples, queries):
        w = fit_whitening(samples)
        z = w.apply(samples).to(self.device, self.dtype).unsqueeze(0)
        zq = None if queries is None else w.apply(queries).to(self.device, self.dtype).unsqueeze(0)
        log_f, score = 0.0, 0.0
        with torch.inference_mode():
            for frame in self._frames:  # s_w(z) = s'(zQ)·Qᵀ for the model run in frame Q
                lf, s = self._whitened_outputs(z @ frame, None if zq is None else zq @ frame)
                log_f, score = log_f + lf, score + s @ frame.T
        k = len(self._frames)
        return w.unwhiten_outputs((log_f / k)[0].cpu(), (score / k)[0].cpu())

    def _whitened_outputs(self, z, zq):
        """Core outputs (1, m) and (1, m, d) at zq (or at z itself when zq is None)."""
        cache, ctx = self.core.encode_context(z, self.chunk_size)
        if zq is None:
            return self.core.outputs_at_context(ctx, z)
        parts = [self.core.decode_queries(c, cache, z.shape[1]) for c in zq.split(self.chunk_size, dim=1)]
        return torch.cat([p[0] for p in parts], dim=1), torch.cat([p[1] for p in parts], dim=1)

    def adapt(self, samples, steps: int = 4, *, lr: float = 1e-4, max_queries: int = 1024, seed: int = 0):
        """Test-time adaptation: a copy of this oracle fine-tuned on ``samples`` alone.

        Minimises the label-free consistency loss mean‖S(X, Q) − ∇_Q T(X, Q)‖² (score head vs the
        gradient of the density head) over the weights with Adam for ``steps`` steps; the context
        X is the (whitened) samples, the queries Q up to ``max_queries`` of them.  The adapted
        copy is meant for this sample set; the original oracle is unchanged.
        """
        steps = check_positive_int(steps, "steps")
        x = check_samples(samples)
        self._check_dim(x.shape[1])
        w = fit_whitening(x)
        z = w.apply(x).to(self.device, torch.float32).unsqueeze(0)
        g = torch.Generator().manual_seed(seed)
        pick = torch.randperm(z.shape[1], generator=g)[:max_queries]
        core = copy.deepcopy(self.core).to(torch.float32).train()
        opt = torch.optim.Adam(core.parameters(), lr=lr)
        for _ in range(steps):
            opt.zero_grad()
            consistency_loss(core, z, z[:, pick]).backward()
            opt.step()
        return DiScoFormerOracle(core.eval(), device=self.device, dtype=self.dtype,
                                 chunk_size=self.chunk_size, rotations=self.rotations)


def consistency_loss(core: DiScoFormerCore, context, queries):
    """mean‖S(X, Q) − ∇_Q T(X, Q)‖² in whitened coordinates (differentiable in the weights).

    Uses the math attention backend: torch's fused CPU attention has no double backward."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    queries = queries.detach().clone().requires_grad_(True)
    with sdpa_kernel(SDPBackend.MATH):
        log_f, score = core(context.detach(), queries)
        n = context.shape[1]
        grad_q, = torch.autograd.grad(log_f[:, n:].sum(), queries, create_graph=True)
        return ((score[:, n:] - grad_q) ** 2).sum(-1).mean()


class PretrainedOracle(Oracle):
    """The shipped oracle for every trained dimension: picks the checkpoint from the samples' d.

    Checkpoints load lazily (and are hash-checked) the first time a dimension is used.
    """

    def __init__(self, *, device=None, dtype=torch.float32, chunk_size: int = 4096, rotations: int = 1):
        self.device = resolve_device(device)
        self.dtype = dtype
        self.chunk_size = check_positive_int(chunk_size, "chunk_size")
        self.rotations = check_positive_int(rotations, "rotations")
        self._names = {dim: name for name, dim in available_checkpoints().items()}
        self.dims = tuple(sorted(self._names))
        self._oracles: dict[int, DiScoFormerOracle] = {}

    def for_dim(self, d: int) -> DiScoFormerOracle:
        """The single-dimension oracle for d (loaded on first use)."""
        self._check_dim(d)
        if d not in self._oracles:
            self._oracles[d] = DiScoFormerOracle(load_shipped(self._names[d]), device=self.device, dtype=self.dtype,
                                                 chunk_size=self.chunk_size, rotations=self.rotations)
        return self._oracles[d]

    def _evaluate(self, samples, queries):
        return self.for_dim(samples.shape[1])._evaluate(samples, queries)

    def adapt(self, samples, steps: int = 4, **kwargs) -> DiScoFormerOracle:
        """Test-time adaptation of the checkpoint for the samples' dimension (see
        :meth:`DiScoFormerOracle.adapt`)."""
        x = check_samples(samples)
        return self.for_dim(x.shape[1]).adapt(x, steps, **kwargs)


def load(dim: int | None = None, *, device=None, dtype=torch.float32, chunk_size: int = 4096, rotations: int = 1):
    """The default pretrained oracle.

    With ``dim=None`` the returned oracle serves every shipped dimension, choosing the checkpoint
    from the samples it is given; with ``dim`` it is that dimension's oracle, loaded now.
    ``rotations`` > 1 averages over that many whitened frames (more accurate, proportionally slower).
    """
    oracle = PretrainedOracle(device=device, dtype=dtype, chunk_size=chunk_size, rotations=rotations)
    return oracle if dim is None else oracle.for_dim(dim)


__all__ = ["DiScoFormerOracle", "PretrainedOracle", "load"]
