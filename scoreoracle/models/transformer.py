"""Per-dimension DiScoFormer core: a pre-LN transformer on whitened points (one checkpoint per d).

Context tokens self-attend; query tokens attend to the context only, so a query's output never
depends on other queries and chunking queries is exact.  There are no positional encodings, so
the model is permutation-equivariant in the context and in the queries.

Token features (whitened point z ∈ R^d): [z, ‖z‖²/d − 1, log-size], where the squared-norm lift
is the construction of DiScoFormer's Prop. 3.5 (Ilin, Sushko, Krishna 2025, arXiv:2511.05924: it
lets attention form exact Gaussian kernels) and
log-size = (log n − log 1024)/2 tells every token how large the context is (attention alone
cannot count, yet the right bandwidth depends on n).  n is capped at the largest context seen in
training (``size_feature_max``): the model extrapolates well to smaller n but not to larger ones.
With weighted samples n is the effective sample size and the log-weights are added to every
attention logit over the context (attention over the multiset).

With ``kernel_heads > 0`` the embedding is followed by a kernel-attention layer whose heads are
*exactly* Gaussian kernels over the context (the same construction):
q = [z/h, 1], k = [z/h, −‖z‖²/2h²] give logits −‖z_i − z_j‖²/2h² + const_i, with a learnable
bandwidth h per head (initialised log-spaced and scaled by (n/1024)^(−1/(d+4)) like a KDE
bandwidth rule).  The model thus starts out able to localise, which plain attention learns only
slowly in higher dimensions.

Outputs are a residual on the standard Gaussian N(0, I), which is the single-Gaussian fit in
whitened coordinates: log f_w = −‖z‖²/2 − (d/2)·log 2π + Δ(z), s_w = −z + δ(z).  The heads start
at zero, so an untrained model is exactly the Gaussian fit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from ..gaussian import standard_normal_log_density
from .config import REFERENCE_SIZE, ConfigDict, check_positive_ints, log_size



@dataclass(frozen=True)
class TransformerConfig(ConfigDict):
    """Architecture of the core.  ``dim`` is the data dimension d."""

    dim: int
    width: int = 64
    depth: int = 3
    heads: int = 4
    ffn: int = 256
    kernel_heads: int = 0  # 0: no kernel-attention layer
    kernel_bandwidths: tuple = (0.15, 2.0)  # initial range of h (whitened units, at n = 1024)
    size_feature_max: int = 2048  # largest training context; larger n enter the log-size feature as this

    def __post_init__(self):
        check_positive_ints(self, ("dim", "width", "depth", "heads", "ffn"))
        if self.width % self.heads:
            raise ValueError(f"width = {self.width} must be a multiple of heads = {self.heads}")


class Block(nn.Module):
    """Pre-LN block: tokens ← tokens + Attn(LN(tokens), LN(context)); tokens ← tokens + FFN(LN(tokens))."""

    def __init__(self, cfg: TransformerConfig):
        super().__init__()
        self.heads = cfg.heads
        self.norm_attn = nn.LayerNorm(cfg.width)
        self.query = nn.Linear(cfg.width, cfg.width)
        self.key_value = nn.Linear(cfg.width, 2 * cfg.width)
        self.out = nn.Linear(cfg.width, cfg.width)
        self.norm_ffn = nn.LayerNorm(cfg.width)
        self.ffn = nn.Sequential(nn.Linear(cfg.width, cfg.ffn), nn.GELU(), nn.Linear(cfg.ffn, cfg.width))

    def _split(self, t):  # (B, L, W) -> (B, heads, L, W/heads)
        b, length, w = t.shape
        return t.view(b, length, self.heads, w // self.heads).transpose(1, 2)

    def keys_values(self, context):
        """Per-head keys and values of the context tokens, each (B, heads, n, W/heads)."""
        k, v = self.key_value(self.norm_attn(context)).chunk(2, dim=-1)
        return self._split(k), self._split(v)

    def forward(self, tokens, keys, values, mask=None):
        """Update tokens (B, L, W) attending to precomputed context keys/values; ``mask``
        (B, 1, 1, n) is added to the logits (the context log-weights)."""
        q = self._split(self.query(self.norm_attn(tokens)))
        att = F.scaled_dot_product_attention(q, keys, values, attn_mask=mask)  # (B, heads, L, W/heads)
        b, _, length, _ = att.shape
        tokens = tokens + self.out(att.transpose(1, 2).reshape(b, length, -1))
        return tokens + self.ffn(self.norm_ffn(tokens))


class KernelAttention(nn.Module):
    """Residual attention whose heads are exact Gaussian kernels over the context positions."""

    def __init__(self, cfg: TransformerConfig):
        super().__init__()
        self.heads = cfg.kernel_heads
        self.dim = cfg.dim
        lo, hi = cfg.kernel_bandwidths
        self.log_bandwidth = nn.Parameter(torch.linspace(math.log(lo), math.log(hi), cfg.kernel_heads))
        self.norm = nn.LayerNorm(cfg.width)
        self.value = nn.Linear(cfg.width, cfg.width)
        self.out = nn.Linear(cfg.width, cfg.width)

    def _qk(self, z, h, query: bool):  # (B, L, d) -> (B, heads, L, d + 1)
        zh = z.unsqueeze(1) / h.view(1, -1, 1, 1)
        extra = torch.ones_like(zh[..., :1]) if query else -0.5 * (zh * zh).sum(-1, keepdim=True)
        return torch.cat([zh, extra], dim=-1)

    def context_terms(self, context_z, context_tokens, n: int):
        """Keys (B, heads, n, d+1) and values (B, heads, n, W/heads) of the context."""
        h = self.bandwidths(n)
        b, length, w = context_tokens.shape
        v = self.value(self.norm(context_tokens)).view(b, length, self.heads, w // self.heads).transpose(1, 2)
        return self._qk(context_z, h, query=False), v, h

    def bandwidths(self, n: float):
        return torch.exp(self.log_bandwidth) * (n / REFERENCE_SIZE) ** (-1.0 / (self.dim + 4))

    def forward(self, z, tokens, keys, values, h, mask=None):
        """tokens (B, L, W) at positions z (B, L, d) attend to the context with Gaussian weights."""
        dv, dqk = values.shape[-1], keys.shape[-1]
        # torch's fused attention needs equal q/k and v head widths: zero-pad the narrower one
        # (zeros change neither the logits nor the kept output columns)
        q = F.pad(self._qk(z, h, query=True), (0, max(0, dv - dqk)))
        att = F.scaled_dot_product_attention(q, F.pad(keys, (0, max(0, dv - dqk))),
                                             F.pad(values, (0, max(0, dqk - dv))), attn_mask=mask, scale=1.0)[..., :dv]
        b, _, length, _ = att.shape
        return tokens + self.out(att.transpose(1, 2).reshape(b, length, -1))


@dataclass
class TransformerContext:
    """A context set encoded once: z (B, n, d), n_eff, the attention mask (B, 1, 1, n) from the
    log-weights (or None), per-layer cached keys/values, and the final context tokens (B, n, W)."""

    z: torch.Tensor
    n_eff: float
    mask: torch.Tensor | None
    cache: list = field(default_factory=list)
    tokens: torch.Tensor | None = None


class TransformerCore(nn.Module):
    """Maps whitened context (B, n, d) and queries (B, m, d) to log f_w (B, m) and s_w (B, m, d)."""

    architecture = "transformer"

    def __init__(self, cfg: TransformerConfig):
        super().__init__()
        self.config = cfg
        self.embed = nn.Linear(cfg.dim + 2, cfg.width)
        self.kernel = KernelAttention(cfg) if cfg.kernel_heads > 0 else None
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.depth))
        self.norm_out = nn.LayerNorm(cfg.width)
        self.head_log_density = nn.Linear(cfg.width, 1)
        self.head_score = nn.Linear(cfg.width, cfg.dim)
        for head in (self.head_log_density, self.head_score):
            nn.init.zeros_(head.weight)
            nn.init.zeros_(head.bias)

    def n_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def _features(self, z, n_context: float):
        d = z.shape[-1]
        lift = (z * z).sum(-1, keepdim=True) / d - 1.0
        size = torch.full_like(lift, log_size(n_context, self.config.size_feature_max))
        return self.embed(torch.cat([z, lift, size], dim=-1))

    def _heads(self, tokens, z):
        """(log f_w − log N(z; 0, I), s_w): residuals on the whitened Gaussian fit."""
        h = self.norm_out(tokens)
        return self.head_log_density(h).squeeze(-1), -z + self.head_score(h)

    def forward(self, context, queries=None, log_weights=None, n_eff=None):
        """Training pass: outputs at the context points, then at ``queries`` if given
        ((B, n[+m]) and (B, n[+m], d)).  The same code path as inference, in a single chunk."""
        ctx = self.encode(context, log_weights, n_eff, chunk_size=context.shape[1])
        excess, score = self.at_context(ctx)
        points = context
        if queries is not None:
            excess_q, score_q = self.decode(queries, ctx)
            excess, score = torch.cat([excess, excess_q], dim=1), torch.cat([score, score_q], dim=1)
            points = torch.cat([context, queries], dim=1)
        return standard_normal_log_density(points) + excess, score

    # --- encode the context once (in row chunks), then stream query chunks: memory O(chunk · n) ---

    def encode(self, context, log_weights=None, n_eff=None, chunk_size: int = 4096) -> TransformerContext:
        """Per-layer context keys/values, computed in chunks of context rows.  ``log_weights``
        (B, n) are added to every attention logit; ``n_eff`` (default n) feeds the size feature."""
        n = context.shape[-2]
        n_eff = float(n if n_eff is None else n_eff)
        mask = None if log_weights is None else log_weights[:, None, None, :].to(context.dtype)
        ctx = TransformerContext(z=context, n_eff=n_eff, mask=mask)
        z_chunks = context.split(chunk_size, dim=1)
        tokens = torch.cat([self._features(c, n_eff) for c in z_chunks], dim=1)
        if self.kernel is not None:
            keys, values, h = self.kernel.context_terms(context, tokens, n_eff)
            ctx.cache.append((keys, values, h))
            tokens = torch.cat([self.kernel(zc, c, keys, values, h, mask)
                                for zc, c in zip(z_chunks, tokens.split(chunk_size, dim=1))], dim=1)
        for block in self.blocks:
            k, v = block.keys_values(tokens)
            ctx.cache.append((k, v))
            tokens = torch.cat([block(c, k, v, mask) for c in tokens.split(chunk_size, dim=1)], dim=1)
        ctx.tokens = tokens
        return ctx

    def decode(self, queries, ctx: TransformerContext):
        """Outputs at one chunk of queries (B, m, d) given the encoded context (log-density
        relative to N(0, I), score)."""
        tokens = self._features(queries, ctx.n_eff)
        cache = ctx.cache
        if self.kernel is not None:
            tokens = self.kernel(queries, tokens, *cache[0], ctx.mask)
            cache = cache[1:]
        for block, (k, v) in zip(self.blocks, cache):
            tokens = block(tokens, k, v, ctx.mask)
        return self._heads(tokens, queries)

    def at_context(self, ctx: TransformerContext):
        """Outputs at the context points themselves (queries == the samples)."""
        return self._heads(ctx.tokens, ctx.z)
