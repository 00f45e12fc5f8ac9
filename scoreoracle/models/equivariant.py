"""Dimension-free, exactly O(d)-equivariant core: one network for every dimension d ≥ 1.

A token carries two kinds of state:

* invariant features h ∈ R^width, built only from rotation-invariant quantities (norms and inner
  products of whitened points divided by d, log n, d);
* equivariant vectors in R^d: its position z and a running score estimate s (initialised to the
  Gaussian fit's score −z, so an untrained core is exactly the whitened Gaussian fit).

Each layer's attention heads are data-adaptive Gaussian kernels (Prop. 3.5 of DiScoFormer, Ilin,
Sushko, Krishna 2025, arXiv:2511.05924, made
exact): the logit of token i for context point j in head a is

    q_a(h_i)·k_a(h_j)/√head_width + β_ai (c_ai·z_j − ‖z_j‖²/2) + log w_j,

a Gaussian kernel of precision β_ai > 0 (predicted from h_i around a rule-of-thumb bandwidth)
centred at c_ai = z_i + τ_ai s_i (the token's position probed along its score estimate by a
predicted τ_ai, zero at init), and log w_j the context weights (uniform by default; attention over
a weighted set is attention over the multiset).  Each head returns its value average, its
mean-shift vector β(μ − z_i) (μ = attention-weighted mean of z_j), the attention-weighted average
of the context's score estimates, and its log kernel density.  The inner products of all these vectors with one another
(divided by d) update h; a gated sum of them, with gates predicted from h, updates s.  Since
every vector is a combination of whitened points with invariant coefficients, the core is exactly
equivariant to any orthogonal map of the whitened data, and d appears in no weight's shape.

Outputs: the score is the final s; the log-density is the Gaussian fit's plus a learned mixture
of every head's (log KDE − log Gaussian) and a residual.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..gaussian import LOG_2PI, silverman_factor, standard_normal_log_density
from .config import ConfigDict, check_positive_ints, log_size



@dataclass(frozen=True)
class EquivariantConfig(ConfigDict):
    """Architecture of the equivariant core (no data dimension: d is a runtime number)."""

    width: int = 96
    depth: int = 4
    heads: int = 4
    head_width: int = 16
    ffn: int = 192
    bandwidth_multipliers: tuple = (0.35, 1.5)  # initial per-head bandwidths × Silverman's rule
    size_feature_max: int = 0  # cap of n in the log-size feature (0: no cap)
    local_gaussian_iterations: int = 0  # conjugate-gradient steps of the local-Gaussian head (0: no head)

    def __post_init__(self):
        check_positive_ints(self, ("width", "depth", "heads", "head_width", "ffn"))


@dataclass
class EncodedContext:
    """A context set encoded once; every query chunk reuses it.

    n_eff: effective sample size; log_n: log n for uniform weights (0 with normalised
    log-weights); layers: every layer's augmented keys and values; outputs: (log f_w − log N(z; 0, I)
    (B, n[+m]), s_w (B, n[+m], d)) at the context points (then at the queries encoded with them).
    """

    n_eff: float
    log_n: float
    layers: list
    outputs: tuple
    z: torch.Tensor | None = None  # (B, n, d) the context points (for the local-Gaussian head)
    log_weights: torch.Tensor | None = None


def gram_features(vectors: torch.Tensor) -> torch.Tensor:
    """Invariant features of c vectors (..., c, d): their inner products / d, log-compressed,
    upper triangle → (..., c(c+1)/2)."""
    c, d = vectors.shape[-2:]
    gram = vectors @ vectors.transpose(-1, -2) / d
    rows, cols = torch.triu_indices(c, c, device=vectors.device)
    g = gram[..., rows, cols]
    return torch.sign(g) * torch.log1p(g.abs())


def _pad_to(t, width):
    return F.pad(t, (0, width - t.shape[-1]))


def _attention_no_grad(q, k, v, chunk_size: int):
    """(softmax(q kᵀ) v, logsumexp(q kᵀ)) without autograd: torch's fused CPU kernel (which also
    returns the log-normaliser) where available, else logits chunk by chunk."""
    if q.device.type == "cpu" and hasattr(torch.ops.aten, "_scaled_dot_product_flash_attention_for_cpu"):
        width = max(q.shape[-1], v.shape[-1])
        out, lse = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu(
            _pad_to(q, width), _pad_to(k, width), _pad_to(v, width), 0.0, False, scale=1.0)
        return out[..., :v.shape[-1]], lse.to(q.dtype)
    outs, lses = [], []
    for qc in q.split(chunk_size, dim=-2):
        logits = qc @ k.transpose(-1, -2)
        lses.append(torch.logsumexp(logits, dim=-1))
        outs.append(torch.softmax(logits, dim=-1) @ v)
    return torch.cat(outs, dim=-2), torch.cat(lses, dim=-1)


def attention_with_lse(q, k, v, chunk_size: int = 1024):
    """Softmax attention with logits q·k (no scaling): outputs (…, L, Dv) and log-normalisers
    logsumexp_j q_i·k_j (…, L), both differentiable.

    With autograd, torch's fused attention does the work and the log-normaliser is read off an
    extra key whose logit is c_i, the log-normaliser computed without gradient: it takes exactly
    half the attention mass, and lse = c + log((1 − a₀)/a₀), with a₀ its weight, carries the exact
    gradient (the other outputs are rescaled by 1/(1 − a₀)).
    """
    with torch.no_grad():
        out, lse = _attention_no_grad(q, k, v, chunk_size)
    if not torch.is_grad_enabled() or not any(t.requires_grad for t in (q, k, v)):
        return out, lse
    dq, dv = q.shape[-1] + 1, v.shape[-1] + 1
    width = max(dq, dv)
    q_aug = _pad_to(torch.cat([q, lse.unsqueeze(-1)], dim=-1), width)
    extra_key = torch.zeros(*k.shape[:-2], 1, width, dtype=k.dtype, device=k.device)
    extra_key[..., dq - 1] = 1.0
    k_aug = torch.cat([_pad_to(k, width), extra_key], dim=-2)
    extra_value = torch.zeros(*v.shape[:-2], 1, width, dtype=v.dtype, device=v.device)
    extra_value[..., dv - 1] = 1.0
    v_aug = torch.cat([_pad_to(v, width), extra_value], dim=-2)
    out = F.scaled_dot_product_attention(q_aug, k_aug, v_aug, scale=1.0)
    a0 = out[..., dv - 1]
    return out[..., :dv - 1] / (1 - a0).unsqueeze(-1), lse + torch.log((1 - a0) / a0)


@dataclass
class LayerContext:
    """One layer's augmented context keys (B, H, n, hw + d + 2) and values (B, H, n, hw + 2d)."""

    keys: torch.Tensor
    values: torch.Tensor


class EquivariantLayer(nn.Module):
    """One attention + feed-forward layer acting on (h, s) of query tokens given a context."""

    def __init__(self, cfg: EquivariantConfig):
        super().__init__()
        H, hw = cfg.heads, cfg.head_width
        self.heads, self.head_width = H, hw
        self.norm = nn.LayerNorm(cfg.width)
        self.query = nn.Linear(cfg.width, H * hw)
        self.key_value = nn.Linear(cfg.width, 2 * H * hw)
        lo, hi = cfg.bandwidth_multipliers
        self.log_precision = nn.Linear(cfg.width, H)  # log β relative to the rule, per head
        nn.init.zeros_(self.log_precision.weight)
        with torch.no_grad():
            self.log_precision.bias.copy_(-2 * torch.linspace(math.log(lo), math.log(hi), H))
        self.probe = nn.Linear(cfg.width, H)  # kernel centre offset along the token's score, per head
        nn.init.zeros_(self.probe.weight)
        nn.init.zeros_(self.probe.bias)
        n_vectors = 2 + 2 * H  # z, s, and per head: mean shift, attended scores
        n_invariants = n_vectors * (n_vectors + 1) // 2 + H
        self.update = nn.Linear(H * hw + n_invariants, cfg.width)
        self.gates = nn.Linear(cfg.width, n_vectors)
        nn.init.zeros_(self.gates.weight)
        nn.init.zeros_(self.gates.bias)
        self.norm_ffn = nn.LayerNorm(cfg.width)
        self.ffn = nn.Sequential(nn.Linear(cfg.width, cfg.ffn), nn.GELU(), nn.Linear(cfg.ffn, cfg.width))

    def context_terms(self, h_ctx, z_ctx, s_ctx, log_weights) -> LayerContext:
        """Augmented keys [k/√hw, z_j, −‖z_j‖²/2, log w_j] and values [v, z_j, s_j] of the context."""
        b, n, _ = h_ctx.shape
        H = self.heads
        k, v = self.key_value(self.norm(h_ctx)).view(b, n, 2, H, self.head_width).unbind(2)
        lw = torch.zeros(b, n, dtype=z_ctx.dtype, device=z_ctx.device) if log_weights is None else log_weights
        geometry = torch.cat([z_ctx, -0.5 * (z_ctx * z_ctx).sum(-1, keepdim=True), lw.unsqueeze(-1)], dim=-1)
        keys = torch.cat([k / math.sqrt(self.head_width), geometry.unsqueeze(2).expand(b, n, H, -1)], dim=-1)
        values = torch.cat([v, torch.cat([z_ctx, s_ctx], dim=-1).unsqueeze(2).expand(b, n, H, -1)], dim=-1)
        return LayerContext(keys.transpose(1, 2), values.transpose(1, 2))

    def forward(self, h, s, z, lc: LayerContext, rule: float, log_n: float, chunk_size: int = 1024):
        """Update query tokens: h (B, L, W), s (B, L, d) at positions z (B, L, d).

        ``log_n`` is subtracted from the log-normalisers (log n for uniform weights, 0 for
        normalised weights).  Returns (h, s, log KDE − log Gaussian (B, L, H)).
        """
        b, L, d = z.shape
        H, hw = self.heads, self.head_width
        x = self.norm(h)
        q = self.query(x).view(b, L, H, hw)
        beta = torch.exp(self.log_precision(x)) / (rule * rule)  # (B, L, H)
        # each head's kernel centre c = z + τ·s: probing off the token along its score estimate
        # gives the layer the local covariance's action on s (differences of attended means)
        center = z.unsqueeze(2) + self.probe(x).unsqueeze(-1) * s.unsqueeze(2)  # (B, L, H, d)
        # logit = q·k/√hw + β(c_i·z_j − ‖z_j‖²/2) + log w_j: a Gaussian kernel of precision β at c_i, reweighted
        q_aug = torch.cat([q, beta.unsqueeze(-1) * center, beta.unsqueeze(-1), torch.ones_like(beta).unsqueeze(-1)],
                          dim=-1)
        out, lse = attention_with_lse(q_aug.transpose(1, 2), lc.keys, lc.values, chunk_size)
        value, mu, attended_scores = out[..., :hw], out[..., hw:hw + d], out[..., hw + d:]  # (B, H, L, ·)
        shift = beta.transpose(1, 2).unsqueeze(-1) * (mu - z.unsqueeze(1))  # mean-shift vectors (B, H, L, d)
        # log Σ_j w_j N(c_i; z_j, β⁻¹I) (exact when the q·k term vanishes) relative to log N(z_i; 0, I)
        log_kde = (lse.transpose(1, 2) - log_n - 0.5 * beta * (center * center).sum(-1)
                   + 0.5 * d * torch.log(beta / (2 * math.pi)))
        log_kde = log_kde + 0.5 * (z * z).sum(-1, keepdim=True) + 0.5 * d * LOG_2PI  # (B, L, H)
        vectors = torch.cat([z.unsqueeze(2), s.unsqueeze(2), shift.transpose(1, 2), attended_scores.transpose(1, 2)],
                            dim=2)  # (B, L, 2 + 2H, d)
        invariants = torch.cat([value.transpose(1, 2).reshape(b, L, -1), gram_features(vectors),
                                log_kde / math.sqrt(d)], dim=-1)
        h = h + self.update(invariants)
        s = s + (self.gates(self.norm_ffn(h)).unsqueeze(-1) * vectors).sum(2)
        h = h + self.ffn(self.norm_ffn(h))
        return h, s, log_kde


class LocalGaussianHead(nn.Module):
    """The score of a Gaussian fitted around each token: −(C + λI)⁻¹(z − μ), where μ and C are the
    mean and covariance of the context under a Gaussian kernel centred on the token (precision β
    and ridge λ predicted from its features), solved by conjugate gradients with C·v products
    formed by one pass over the context each (no d × d matrix) — or, for d ≤ the number of CG
    steps, where those steps solve it exactly, by one d × d solve per token (one pass, not one per
    step).  With a kernel as wide as a mixture component this is that component's own (anisotropic)
    score — what an isotropic kernel cannot give in high d.  Its contribution to the score is gated
    (zero at init)."""

    def __init__(self, cfg: EquivariantConfig):
        super().__init__()
        self.iterations = cfg.local_gaussian_iterations
        self.norm = nn.LayerNorm(cfg.width)
        self.controls = nn.Linear(cfg.width, 3)  # log β (× rule⁻²), log λ, gate
        nn.init.zeros_(self.controls.weight)
        with torch.no_grad():
            self.controls.bias.copy_(torch.tensor([-2 * math.log(3.0), math.log(0.1), 0.0]))

    def forward(self, h, z, ctx: EncodedContext, rule: float, chunk_size: int = 1024):
        """Score update (B, L, d) for tokens h (B, L, W) at z (B, L, d)."""
        controls = self.controls(self.norm(h))
        beta = torch.exp(controls[..., 0]) / (rule * rule)  # (B, L)
        ridge = torch.exp(controls[..., 1]).unsqueeze(-1)  # (B, L, 1)
        zc = ctx.z
        zc_sq = (zc * zc).sum(-1)
        d = zc.shape[-1]
        outer = (zc.unsqueeze(-1) * zc.unsqueeze(-2)).flatten(-2) if d <= self.iterations else None  # (B, n, d²)
        parts = []
        for zi, bi, ri in zip(z.split(chunk_size, 1), beta.split(chunk_size, 1), ridge.split(chunk_size, 1)):
            logits = bi.unsqueeze(-1) * (zi @ zc.transpose(-1, -2) - 0.5 * zc_sq.unsqueeze(1))  # (B, c, n)
            if ctx.log_weights is not None:
                logits = logits + ctx.log_weights.unsqueeze(1)
            a = torch.softmax(logits, dim=-1)
            mu = a @ zc
            if d <= self.iterations:
                parts.append(-self._direct_solve(a, mu, ri, zi - mu, outer))
            else:
                parts.append(-self._conjugate_gradients(a, zc, mu, ri, zi - mu))
        return controls[..., 2:3] * torch.cat(parts, dim=1)

    def _conjugate_gradients(self, a, zc, mu, ridge, r):
        """x (B, c, d) with (C + λI) x = r, C = Σ_j a_j (z_j − μ)(z_j − μ)ᵀ, by ``iterations`` CG
        steps from x₀ = 0, each one pass over the context (a (B, c, n), zc (B, n, d), μ (B, c, d))."""
        out_dtype = r.dtype  # half precision cannot hold CG's small denominators: at least float32
        a, zc, mu, ridge, r = (t.to(torch.promote_types(out_dtype, torch.float32)) for t in (a, zc, mu, ridge, r))

        def apply(v):
            return (a * (v @ zc.transpose(-1, -2))) @ zc - mu * (mu * v).sum(-1, keepdim=True) + ridge * v

        x, res, direction = torch.zeros_like(r), r, r
        rr = (res * res).sum(-1, keepdim=True)
        for _ in range(self.iterations):
            step_dir = apply(direction)
            alpha = rr / (direction * step_dir).sum(-1, keepdim=True).clamp_min(1e-30)
            x = x + alpha * direction
            res = res - alpha * step_dir
            rr_new = (res * res).sum(-1, keepdim=True)
            direction = res + (rr_new / rr.clamp_min(1e-30)) * direction
            rr = rr_new
        return x.to(out_dtype)

    @staticmethod
    def _direct_solve(a, mu, ridge, r, outer):
        """The same x for d ≤ ``iterations``, where those CG steps already solve the system exactly
        (CG ends in at most d steps): C formed once per token from the context's outer products
        ``outer`` (B, n, d²), one pass instead of ``iterations``, then a d × d solve."""
        d = r.shape[-1]
        system = (a @ outer).unflatten(-1, (d, d)) - mu.unsqueeze(-1) * mu.unsqueeze(-2)
        system = system + ridge.unsqueeze(-1) * torch.eye(d, dtype=r.dtype, device=r.device)
        work = torch.promote_types(r.dtype, torch.float32)  # torch has no half-precision solve
        return torch.linalg.solve(system.to(work), r.unsqueeze(-1).to(work)).squeeze(-1).to(r.dtype)


class EquivariantCore(nn.Module):
    """Whitened context (B, n, d) and queries (B, m, d) → log f_w (B, m) and s_w (B, m, d), any d."""

    architecture = "equivariant"
    growable = ("depth", "local_gaussian_iterations")  # config fields :meth:`load_grown` can raise

    def __init__(self, cfg: EquivariantConfig):
        super().__init__()
        self.config = cfg
        self.embed = nn.Sequential(nn.Linear(6, cfg.width), nn.GELU(), nn.Linear(cfg.width, cfg.width))
        self.layers = nn.ModuleList(EquivariantLayer(cfg) for _ in range(cfg.depth))
        self.norm_out = nn.LayerNorm(cfg.width)
        self.head_log_density = nn.Linear(cfg.width, cfg.depth * cfg.heads + 1)
        nn.init.zeros_(self.head_log_density.weight)
        nn.init.zeros_(self.head_log_density.bias)
        self.local = LocalGaussianHead(cfg) if cfg.local_gaussian_iterations > 0 else None

    def n_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def load_grown(self, smaller: "EquivariantCore"):
        """Take the weights of ``smaller``, a core of this config but with fewer layers and/or no
        local-Gaussian head, so that this core computes exactly its function: the layers beyond
        ``smaller``'s are appended as the identity (their token updates, feed-forward outputs and
        score gates zero) with zero log-density coefficients, the head's gate is zero."""
        old_depth, heads = smaller.config.depth, self.config.heads
        if old_depth > self.config.depth:
            raise ValueError(f"a core of depth {old_depth} cannot shrink to {self.config.depth}")
        state = dict(smaller.state_dict())
        coefficients = [state.pop(f"head_log_density.{name}") for name in ("weight", "bias")]
        result = self.load_state_dict(state, strict=False)
        if result.unexpected_keys:
            raise ValueError(f"growing would drop trained weights {result.unexpected_keys}")
        with torch.no_grad():
            for new, old in zip((self.head_log_density.weight, self.head_log_density.bias), coefficients):
                new.zero_()
                new[:old_depth * heads] = old[:-1]
                new[-1] = old[-1]
            for layer in self.layers[old_depth:]:
                for p in (layer.update.weight, layer.update.bias, layer.ffn[2].weight, layer.ffn[2].bias):
                    p.zero_()

    def _initial_state(self, z, n_eff: float):
        d = z.shape[-1]
        z_sq = (z * z).sum(-1, keepdim=True)
        const = torch.tensor([log_size(n_eff, self.config.size_feature_max), math.log(d) / 2, 1.0 / d, 1.0],
                             dtype=z.dtype, device=z.device).expand(*z.shape[:-1], 4)
        features = torch.cat([torch.asinh((z_sq - d) / math.sqrt(2 * d)), z_sq / d, const], dim=-1)
        return self.embed(features), -z

    def _outputs(self, h, s, z, log_kdes, ctx: EncodedContext, rule: float, chunk_size: int):
        """(log f_w − log N(z; 0, I), s_w): a learned mixture of the heads' log-KDE excesses over the
        Gaussian fit plus a residual; the score channel plus the local-Gaussian head's gated score."""
        coef = self.head_log_density(self.norm_out(h))  # (B, L, depth·H + 1)
        excess = (coef[..., :-1] * torch.cat(log_kdes, dim=-1)).sum(-1) + math.sqrt(z.shape[-1]) * coef[..., -1]
        if self.local is not None:
            s = s + self.local(h, z, ctx, rule, chunk_size)
        return excess, s

    def _run(self, z, ctx: EncodedContext, chunk_size: int = 1024):
        """Outputs at whitened points z (B, L, d) for a fully encoded context."""
        h, s = self._initial_state(z, ctx.n_eff)
        rule = silverman_factor(ctx.n_eff, z.shape[-1])
        log_kdes = []
        for layer, lc in zip(self.layers, ctx.layers):
            h, s, log_kde = layer(h, s, z, lc, rule, ctx.log_n, chunk_size)
            log_kdes.append(log_kde)
        return self._outputs(h, s, z, log_kdes, ctx, rule, chunk_size)

    def encode(self, context, log_weights=None, n_eff: float | None = None, chunk_size: int = 1024,
               queries=None) -> EncodedContext:
        """Encode whitened context points (B, n, d) once: every layer's keys and values, and the
        outputs at the context points (memory O(chunk_size · n)); ``log_weights`` (B, n) are
        normalised log-weights, n_eff the effective sample size (default n).

        With ``queries`` (B, m, d) the query tokens ride along in the same attention calls (one
        call per layer instead of two, as in training) and ``outputs`` covers context then queries.
        """
        n, d = context.shape[-2:]
        n_eff = float(n if n_eff is None else n_eff)
        ctx = EncodedContext(n_eff=n_eff, log_n=math.log(n) if log_weights is None else 0.0, layers=[], outputs=(),
                             z=context, log_weights=log_weights)
        rule = silverman_factor(n_eff, d)
        z = context if queries is None else torch.cat([context, queries], dim=1)
        h, s = self._initial_state(z, n_eff)
        log_kdes = []
        for layer in self.layers:
            lc = layer.context_terms(h[:, :n], context, s[:, :n], log_weights)
            ctx.layers.append(lc)
            h, s, log_kde = layer(h, s, z, lc, rule, ctx.log_n, chunk_size)
            log_kdes.append(log_kde)
        ctx.outputs = self._outputs(h, s, z, log_kdes, ctx, rule, chunk_size)  # relative to N(0, I)
        return ctx

    def decode(self, queries, ctx: EncodedContext, chunk_size: int = 1024):
        """Outputs at whitened queries (B, m, d): (log f_w − log N(0, I) (B, m), s_w (B, m, d))."""
        return self._run(queries, ctx, chunk_size)

    def at_context(self, ctx: EncodedContext):
        """Outputs at the context points themselves (queries == samples)."""
        return ctx.outputs

    def forward(self, context, queries=None, log_weights=None, n_eff=None):
        """Training pass: outputs at the context points, then at ``queries`` if given
        ((B, n[+m]) and (B, n[+m], d))."""
        excess, score = self.encode(context, log_weights, n_eff, queries=queries).outputs
        points = context if queries is None else torch.cat([context, queries], dim=1)
        return standard_normal_log_density(points) + excess, score
