"""Export a training run as a checkpoint: weights (safetensors), model card and manifest entry.

The checkpoint goes to a folder of the user's choosing (``scoreoracle.load(path=folder)`` loads
it); the package's own shipped folder is written only by the maintainers' release step, which
passes it explicitly.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from .. import weights as checkpoints
from .data import FAMILY_DESCRIPTIONS
from .evaluation import evaluation_table
from .loop import load_checkpoint

EQUIVARIANT_EVAL_DIMS = (2, 3, 10, 32)


def export_run(run_dir, out_dir, *, name: str | None = None, eval_gmms: int = 32, default: bool = False,
               replace: bool = False) -> Path:
    """Write ``run_dir``'s latest checkpoint into the checkpoint folder ``out_dir``; returns the
    weights path.  A checkpoint of the same name there is refused unless ``replace``.  The model
    card records configs, steps, seed, training time, the training log (``metrics.jsonl``), its
    sessions and configuration changes (``sessions.jsonl``) and an evaluation table on the GMM
    protocol of :mod:`.evaluation` with ``eval_gmms`` mixtures per cell (0: no table, a quick export)."""
    run_dir = Path(run_dir)
    if eval_gmms < 0:
        raise ValueError(f"eval_gmms must be ≥ 0 (0: no evaluation table), got {eval_gmms}")
    if not (run_dir / "checkpoint.pt").is_file():
        raise FileNotFoundError(f"{run_dir} is not a training run folder: it holds no checkpoint.pt")
    name = checkpoints.check_checkpoint_name(name or Path(os.path.abspath(run_dir)).name,  # `export .` too
                                             checkpoints.read_manifest(out_dir))
    if name in checkpoints.read_manifest(out_dir) and not replace:
        raise FileExistsError(f"{out_dir} already holds a checkpoint named {name!r}: pass --replace (replace=True) "
                              "to overwrite it, or export under another --name")
    core, state = load_checkpoint(run_dir / "checkpoint.pt")
    core.eval()
    dim = getattr(core.config, "dim", None)
    train_config = state["train_config"]
    families = train_config.get("families") or [["gmm", 1.0]]
    modes = train_config.get("modes", (1, 10))
    metrics, sessions = run_dir / "metrics.jsonl", run_dir / "sessions.jsonl"
    card = {
        "dim": dim if dim is not None else "any",
        "model_config": core.config.to_dict(),
        "parameters": core.n_parameters(),
        "train_config": train_config,
        "steps": state["step"],
        "training_minutes": round(state["elapsed_seconds"] / 60, 1),
        "training_hardware": f"{train_config.get('threads', 2)} CPU threads (torch CPU build)",
        "data_family": data_family(families, modes),
        "families": families,
        "seed": train_config["seed"],
        "training_log": _json_lines(metrics),
        "training_sessions": _json_lines(sessions),
        "evaluation": (evaluation_table(core, (dim,) if dim else EQUIVARIANT_EVAL_DIMS, n_gmms=eval_gmms)
                       if eval_gmms else []),
    }
    return checkpoints.register(core, name, card, Path(out_dir), default=default)


def data_family(families, modes) -> str:
    """The training distributions in words: each family ([name, weight] pairs) with its share."""
    total = sum(weight for _, weight in families)
    parts = [f"{weight / total:.0%} {FAMILY_DESCRIPTIONS[name].format(lo=modes[0], hi=modes[1])}"
             for name, weight in families]
    return "; ".join(parts) + "; whole set randomly rotated"


def _json_lines(path: Path) -> list:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
