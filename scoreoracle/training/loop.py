"""The training loop: AdamW on a stream of fresh random distributions, resumable across sessions.

The loss is computed in whitened coordinates on the context points and the queries:

    loss = α·Huber(log f_w) + (1 − α)·Huber(s_w)

Huber rather than squared error keeps far-tail queries (log f hundreds of nats below the bulk, huge scores) from
drowning the typical ones.  Outputs at the context points themselves are supervised too: they
are computed anyway and are what particle solvers query.  The loop knows nothing of the core's
architecture beyond ``core(context, queries) -> (log f_w, s_w)``; per-dimension cores train at
their own d, dimension-free cores at a d drawn per step from ``dim_groups``.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import threading
import time
import warnings
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch
import torch.nn.functional as F

from ..distributions import random_gmm
from ..models import ARCHITECTURES, build_core
from ..models.config import ConfigDict, check_positive_ints
from ..validation import check_positive_float
from ..whitening import fit_whitening
from .data import FAMILIES, Batch, draw_dimension, draw_family, log_uniform_int, make_batch

SCORE_METRICS = ("whitened", "data")  # where TrainConfig.score_metric measures score errors


RUN_FILES = ("checkpoint.pt", "config.json", "metrics.jsonl", "sessions.jsonl")  # what a run folder holds


@dataclass(frozen=True)
class TrainConfig(ConfigDict):
    """Everything that defines a training run (besides the model architecture)."""

    steps: int = 20_000
    lr: float = 1e-3
    min_lr_ratio: float = 0.05
    warmup: int = 300
    decay_fraction: float = 0.3  # warm-up, constant, then linear decay over the last 30 % of steps
    weight_decay: float = 1e-4
    grad_clip: float = 1.0
    spike_factor: float = 0.0  # skip the update of a batch whose loss exceeds this × the running loss (0: never)
    alpha: float = 0.3  # weight of the log-density loss
    huber_delta: float = 2.0
    relative_score_loss: bool = False  # divide each context set's score loss by its mean ‖s‖²/d
    score_metric: str = "whitened"  # score errors in "whitened" coordinates or in the distribution's own ("data")
    context_sizes: tuple = (128, 2048)  # log-uniform range of n (lower end at least 4d)
    long_context_share: float = 0.0  # share of steps whose n is log-uniform in (context_sizes[1], long_context_max]
    long_context_max: int = 8192
    tokens_per_batch: int = 4096  # batch size B = tokens_per_batch // n
    dim_groups: tuple = ()  # ((lo, hi, weight), …) for dimension-free cores; d log-uniform in a group
    families: tuple = (("gmm", 1.0),)  # ((family, weight), …), see training.data
    per_dimension_losses: bool = False  # divide the log-density loss by √d and the score loss by d
    query_weight: float = 0.0  # share of the loss on fresh queries (0: every point alike)
    n_queries: int = 128
    other_gmm_fraction: float = 0.25  # fraction of queries from the second GMM
    modes: tuple = (1, 10)
    seed: int = 0
    threads: int = 2
    checkpoint_minutes: float = 4.0
    eval_every: int = 500
    eval_gmms: int = 16

    def __post_init__(self):
        if self.score_metric not in SCORE_METRICS:
            raise ValueError(f"score_metric must be one of {SCORE_METRICS}, got {self.score_metric!r}")
        check_positive_ints(self, ("steps", "tokens_per_batch", "n_queries", "eval_every", "eval_gmms", "threads"))
        check_positive_float(self.lr, "lr")
        check_positive_float(self.checkpoint_minutes, "checkpoint_minutes")
        sizes = self.context_sizes
        if len(sizes) != 2 or not all(isinstance(n, int) and n >= 1 for n in sizes) or sizes[0] > sizes[1]:
            raise ValueError(f"context_sizes must be two sizes (smallest, largest) with 1 ≤ smallest ≤ largest, "
                             f"got {sizes!r}")
        if self.long_context_share > 0 and self.long_context_max <= sizes[1]:
            raise ValueError(f"long_context_max = {self.long_context_max} must exceed the largest context size "
                             f"{sizes[1]} when long_context_share > 0")
        for name in ("alpha", "query_weight", "other_gmm_fraction", "long_context_share", "min_lr_ratio",
                     "decay_fraction"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{name} is a fraction in [0, 1], got {getattr(self, name)!r}")
        for group in self.dim_groups:
            if len(group) != 3 or not (1 <= group[0] <= group[1]) or not (math.isfinite(group[2]) and group[2] > 0):
                raise ValueError(f"dim_groups are (lo, hi, weight) with 1 ≤ lo ≤ hi and a positive weight, got "
                                 f"{tuple(group)!r}")
        for family, weight in self.families:
            if family not in FAMILIES or not (math.isfinite(weight) and weight > 0):
                raise ValueError(f"families are (name, positive weight) with a name in {FAMILIES}, got "
                                 f"{(family, weight)!r}")


def loss_terms(model, batch: Batch, cfg: TrainConfig):
    """(total loss, log-density Huber, score Huber) on one batch.

    With ``cfg.relative_score_loss`` each context set's score term is divided by the mean
    squared score of its context points: whitening makes multimodal sets' scores large, and
    without this they dominate the loss although the relative error metric weighs sets alike.
    With ``cfg.score_metric == "data"`` score errors are measured in the distribution's own
    coordinates, as the evaluation protocol (and the paper) measures them: whitening stretches the
    tight directions between mixture components, so in whitened coordinates those dominate the loss
    while the protocol weighs the within-component directions.
    With ``cfg.query_weight`` > 0 the fresh queries carry that share of each term and the context
    points the rest (else every point counts alike, so the context points, which see themselves
    in the attention, dominate whenever n ≫ m).
    """
    n = batch.context.shape[1]
    log_f_hat, score_hat = model(batch.context, batch.points[:, n:])
    per_point_f = F.huber_loss(log_f_hat, batch.log_f, delta=cfg.huber_delta, reduction="none")  # (B, L)
    score = batch.score
    if cfg.score_metric == "data":
        score_hat, score = score_hat @ batch.to_data, score @ batch.to_data
    per_point = F.huber_loss(score_hat, score, delta=cfg.huber_delta, reduction="none").sum(-1)  # (B, L)
    if cfg.relative_score_loss:
        scale = (score[:, :n] ** 2).sum(-1).mean(-1, keepdim=True) / score.shape[-1]
        per_point = per_point / scale.clamp_min(1e-3)

    def pooled(values):
        if cfg.query_weight <= 0:
            return values.mean()
        return (1 - cfg.query_weight) * values[:, :n].mean() + cfg.query_weight * values[:, n:].mean()
    l_f, l_s = pooled(per_point_f), pooled(per_point)
    if cfg.per_dimension_losses:
        d = batch.score.shape[-1]
        l_f, l_s = l_f / math.sqrt(d), l_s / d
    return cfg.alpha * l_f + (1 - cfg.alpha) * l_s, l_f, l_s


def draw_context_size(cfg: TrainConfig, d: int, generator) -> int:
    """n for one step: log-uniform in ``cfg.context_sizes`` (both ends at least 4d), or, for a
    ``cfg.long_context_share`` of the steps, log-uniform above that range up to ``cfg.long_context_max``
    (such a step holds one sample set; at 8192 points it takes ~10 s at d = 10, ~30 s at d = 100 on
    2 cores)."""
    lo, hi = max(cfg.context_sizes[0], 4 * d), max(cfg.context_sizes[1], 4 * d)
    if cfg.long_context_share > 0 and torch.rand((), generator=generator).item() < cfg.long_context_share:
        lo, hi = hi, max(cfg.long_context_max, hi)
    return log_uniform_int(lo, hi, generator)


def learning_rate(step: int, cfg: TrainConfig) -> float:
    """Warm-up, constant, then linear decay to ``min_lr_ratio`` (resumable: depends on step only)."""
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    decay_start = cfg.steps * (1 - cfg.decay_fraction)
    if step < decay_start:
        return cfg.lr
    frac = min(1.0, (step - decay_start) / max(1.0, cfg.steps - decay_start))
    return cfg.lr * (1 - (1 - cfg.min_lr_ratio) * frac)


def _parameter_groups(model) -> list:
    """Names of the weight-decayed (matrices) and undecayed parameters, in optimizer order."""
    return [[name for name, p in model.named_parameters() if p.ndim >= 2],
            [name for name, p in model.named_parameters() if p.ndim < 2]]


def make_optimizer(model, cfg: TrainConfig):
    params = dict(model.named_parameters())
    decay, no_decay = ([params[name] for name in group] for group in _parameter_groups(model))
    return torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                              {"params": no_decay, "weight_decay": 0.0}], lr=cfg.lr)


def extend_core(model, changes: dict):
    """A core whose config has ``changes`` applied, holding ``model``'s weights, computing the same
    function (:meth:`~scoreoracle.models.EquivariantCore.load_grown`: more layers appended as the
    identity, the local-Gaussian head gated at zero), so training continues with more capacity."""
    growable = getattr(model, "growable", ())
    if not set(changes) <= set(growable):
        raise ValueError(f"the {model.architecture} core can grow only {list(growable)}, not "
                         f"{sorted(set(changes) - set(growable))}")
    config = model.config.from_dict({**model.config.to_dict(), **changes})
    extended = build_core(model.architecture, config.to_dict())
    extended.load_grown(model)
    return extended


def _optimizer_state_by_name(model, old_model, old_state: dict) -> dict:
    """``old_state`` (an AdamW state dict of ``old_model``) re-indexed for ``model``'s parameters:
    the moments of parameters both share (same name and shape) are kept, new or reshaped ones
    start fresh."""
    old_names = [name for group in _parameter_groups(old_model) for name in group]
    moments = {old_names[index]: value for index, value in old_state["state"].items()}
    params = dict(model.named_parameters())
    new_names = [name for group in _parameter_groups(model) for name in group]
    state = {index: moments[name] for index, name in enumerate(new_names)
             if name in moments and moments[name]["exp_avg"].shape == params[name].shape}
    groups, start = [], 0
    for template, names in zip(old_state["param_groups"], _parameter_groups(model)):
        groups.append({**template, "params": list(range(start, start + len(names)))})
        start += len(names)
    return {"state": state, "param_groups": groups}


@torch.no_grad()
def evaluate(model, d: int, sizes=(256, 1024), n_gmms=16, n_queries=512, seed=12345):
    """Relative score MSE (%) and log-density MSE on fixed fresh GMMs, queries from the context GMM."""
    g = torch.Generator().manual_seed(seed + d)
    out = {}
    for n in sizes:
        gmm = random_gmm(n_gmms, d, generator=g)
        x = gmm.sample(n, g)
        y = gmm.sample(n_queries, g)
        log_f, score = gmm.log_density_and_score(y)
        w = fit_whitening(x)
        lf_w, s_w = model(w.apply(x).float(), w.apply(y).float())
        lf_hat, s_hat = w.unwhiten_outputs(lf_w[:, n:], s_w[:, n:])
        suffix = f"{n}" if getattr(model.config, "dim", None) else f"d{d}_{n}"
        out[f"rel_score_{suffix}"] = 100 * ((s_hat - score) ** 2).sum().item() / (score ** 2).sum().item()
        out[f"logf_mse_{suffix}"] = ((lf_hat - log_f) ** 2).mean().item()
    return out


def save_checkpoint(path: Path, model, optimizer, step, train_cfg, generator, elapsed, running_loss=None, skipped=0):
    """Atomic save of a resumable training state (loads with ``weights_only=True``), including the
    running loss the spike filter compares with and the batches skipped since the last record, so
    a resumed run decides exactly as an uninterrupted one."""
    state = {
        "schema": 2,
        "architecture": model.architecture,
        "model_config": model.config.to_dict(),
        "train_config": asdict(train_cfg),
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "step": step,
        "generator": generator.get_state(),
        "elapsed_seconds": elapsed,
        "running_loss": running_loss,
        "skipped": skipped,
    }
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: Path):
    """(core, state) of a training checkpoint (runs saved before architecture tags: transformer)."""
    state = torch.load(path, weights_only=True)
    model = build_core(state.get("architecture", "transformer"), state["model_config"])
    model.load_state_dict(state["model"])
    return model, state


def _core_for_config(model_cfg):
    for core_class, config_class in ARCHITECTURES.values():
        if isinstance(model_cfg, config_class):
            return core_class(model_cfg)
    raise TypeError(f"not a core config: {model_cfg!r}")


def train(run_dir, model_cfg=None, cfg: TrainConfig | None = None, *,
          resume: bool = False, overrides: dict | None = None, extend: dict | None = None, progress: bool = True,
          max_minutes: float | None = None):
    """Train (or resume) a core (``model_cfg``: a config of :mod:`scoreoracle.models`); returns it.

    ``run_dir`` receives ``checkpoint.pt`` every ``cfg.checkpoint_minutes`` and at the end,
    ``metrics.jsonl`` (one line per evaluation), ``config.json`` and ``sessions.jsonl`` (one line
    per call: its starting step, the overrides/extensions it applied and the resulting config, so
    a run whose configuration changed along the way keeps the record).  With ``resume=True`` the
    model, optimizer, step and data-stream state are restored and the stored ``TrainConfig`` is
    used with ``overrides`` applied (e.g. ``{"steps": 20000}``); ``extend`` grows the stored
    architecture (:func:`extend_core`, e.g. ``{"local_gaussian_iterations": 8}``).  ``max_minutes``
    bounds this call (not the run's total time): it saves and returns early, to be resumed later.
    """
    from tqdm.auto import tqdm

    run_dir = Path(run_dir)
    ckpt_path = run_dir / "checkpoint.pt"
    if resume and not ckpt_path.exists():
        raise FileNotFoundError(f"nothing to resume: {ckpt_path} does not exist (start a new run without --resume)")
    existing = [name for name in RUN_FILES if (run_dir / name).exists()]
    if not resume and ckpt_path.exists():
        raise FileExistsError(f"{run_dir} already holds a run ({', '.join(existing)}): resume it (--resume) or "
                              "train into another folder; a new run would overwrite its checkpoint and mix its logs")
    if not resume and model_cfg is None:
        raise ValueError("a new run needs a core config (scoreoracle.models)")
    if not resume and existing:  # the logs of a start that saved no checkpoint (it failed): nothing to resume
        warnings.warn(f"{run_dir} holds {', '.join(existing)} but no checkpoint.pt (a start that failed before "
                      "saving): replaced by this run's", stacklevel=2)
        for name in existing:
            (run_dir / name).unlink()
    if resume and "seed" in (overrides or {}):
        raise ValueError("a resumed run continues its stored random stream: seed cannot be overridden "
                         "(start a new run, or branch one, for another seed)")
    run_dir.mkdir(parents=True, exist_ok=True)
    generator = torch.Generator()
    running, skipped = None, 0  # running loss (the spike filter's reference), batches skipped since the last record
    if resume:
        model, state = load_checkpoint(ckpt_path)
        cfg = replace(TrainConfig.from_dict(state["train_config"]), **(overrides or {}))
        optimizer_state = state["optimizer"]
        if extend:
            old_model, model = model, extend_core(model, extend)
            optimizer_state = _optimizer_state_by_name(model, old_model, optimizer_state)
        optimizer = make_optimizer(model, cfg)
        optimizer.load_state_dict(optimizer_state)
        generator.set_state(state["generator"])
        step, elapsed = state["step"], state["elapsed_seconds"]
        running, skipped = state.get("running_loss"), state.get("skipped", 0)  # (absent before 2026-11-26)
    else:
        cfg = cfg or TrainConfig()
        torch.manual_seed(cfg.seed)
        generator.manual_seed(cfg.seed)
        model = _core_for_config(model_cfg)
        optimizer = make_optimizer(model, cfg)
        step, elapsed = 0, 0.0
    if model.architecture == "transformer":  # the size feature is capped at the largest context it trains on
        largest = max(cfg.context_sizes[1], cfg.long_context_max if cfg.long_context_share > 0 else 0)
        model.config = replace(model.config, size_feature_max=largest)
    fixed_dim = getattr(model.config, "dim", None)
    if fixed_dim is None and not cfg.dim_groups:
        raise ValueError("a dimension-free core needs dim_groups (--dim-groups lo hi weight …): the dimensions to "
                         "train on")
    eval_dims = (fixed_dim,) if fixed_dim else (2, 10, 50)
    torch.set_num_threads(cfg.threads)
    (run_dir / "config.json").write_text(json.dumps(
        {"model": model.config.to_dict(), "train": asdict(cfg),
         "parameters": model.n_parameters()}, indent=2))
    with (run_dir / "sessions.jsonl").open("a") as sessions:
        sessions.write(json.dumps({"step": step, "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                                   "resume": bool(resume), "overrides": overrides or {},
                                   "extend": extend or {}, "train_config": asdict(cfg)}) + "\n")
    if extend:  # the grown core is the run's from now on, even if no step follows
        save_checkpoint(ckpt_path, model, optimizer, step, cfg, generator, elapsed, running, skipped)
    if step >= cfg.steps:
        warnings.warn(f"nothing to train: the run is at step {step} of {cfg.steps} (raise steps to continue)",
                      stacklevel=2)
    metrics = (run_dir / "metrics.jsonl").open("a")
    started = time.time() - elapsed  # training time summed over all sessions of this run
    session_start = time.time()
    last_save = time.time()
    bar = tqdm(total=cfg.steps, initial=step, disable=not progress, desc="train")
    model.train()
    with _StopRequest() as stop:  # Ctrl-C / SIGTERM: finish the step, save, return
        while step < cfg.steps:
            d = fixed_dim or draw_dimension(cfg.dim_groups, generator)
            family = draw_family(cfg.families, generator) if len(cfg.families) > 1 else cfg.families[0][0]
            n = draw_context_size(cfg, d, generator)
            batch = make_batch(d, max(1, cfg.tokens_per_batch // n), n, cfg.n_queries, family=family, modes=cfg.modes,
                               other_fraction=cfg.other_gmm_fraction, generator=generator)
            for group in optimizer.param_groups:
                group["lr"] = learning_rate(step, cfg)
            loss, l_f, l_s = loss_terms(model, batch, cfg)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"non-finite training loss at step {step}; last checkpoint kept")
            if cfg.spike_factor > 0 and running is not None and step >= cfg.warmup \
                    and loss.item() > cfg.spike_factor * running:
                skipped += 1  # a rare far-tail batch: its gradient would dominate Adam's moments
            else:
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
                optimizer.step()
                running = loss.item() if running is None else 0.98 * running + 0.02 * loss.item()
            step += 1
            bar.update(1)
            bar.set_postfix(loss=f"{running:.4f}")
            done = step >= cfg.steps
            if step % cfg.eval_every == 0 or done:
                model.eval()
                record = {"step": step, "minutes": (time.time() - started) / 60, "loss": running, "skipped": skipped}
                skipped = 0
                for d_eval in eval_dims:
                    record.update(evaluate(model, d_eval, n_gmms=cfg.eval_gmms))
                model.train()
                metrics.write(json.dumps(record) + "\n")
                metrics.flush()
            out_of_time = max_minutes is not None and (time.time() - session_start) / 60 >= max_minutes
            if done or out_of_time or stop.requested or time.time() - last_save >= 60 * cfg.checkpoint_minutes:
                save_checkpoint(ckpt_path, model, optimizer, step, cfg, generator, time.time() - started, running, skipped)
                last_save = time.time()
            if out_of_time or stop.requested:
                break
    bar.close()
    metrics.close()
    model.eval()
    if stop.requested:
        print(f"interrupted: saved at step {step} in {ckpt_path}; continue with --resume", flush=True)
    return model


class _StopRequest(contextlib.AbstractContextManager):
    """While active (main thread only), SIGINT and SIGTERM ask the training loop to finish its
    step, save a checkpoint and return, instead of dying between checkpoints."""

    def __init__(self):
        self.requested = False
        self._previous = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self._previous = {sig: signal.signal(sig, self._request) for sig in (signal.SIGINT, signal.SIGTERM)}
        return self

    def _request(self, signum, frame):
        self.requested = True

    def __exit__(self, *exc):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
