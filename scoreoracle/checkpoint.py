"""Shipped weights: safetensors files + JSON model cards + a SHA-256 manifest.

``scoreoracle/weights/<name>.safetensors`` holds the tensors (loads without executing code) and
the architecture in its metadata; ``<name>.json`` is the model card (config, steps, data family,
seed, training time, evaluation table); ``manifest.json`` maps each file to its SHA-256, checked
at every load, so a corrupted or tampered file is refused.
"""

from __future__ import annotations

import hashlib
import json
from importlib import resources
from pathlib import Path

from safetensors.torch import load_file, save_file

from .model import DiScoFormerCore, ModelConfig

WEIGHTS_PACKAGE = "scoreoracle.weights"


class WeightsIntegrityError(RuntimeError):
    """A weights file does not match its recorded SHA-256."""


def weights_dir() -> Path:
    return Path(str(resources.files(WEIGHTS_PACKAGE)))


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def read_manifest(directory: Path | None = None) -> dict:
    path = (directory or weights_dir()) / "manifest.json"
    return json.loads(path.read_text()) if path.exists() else {}


def available_checkpoints(directory: Path | None = None) -> dict:
    """{name: dim} of the shipped checkpoints."""
    return {name: entry["dim"] for name, entry in read_manifest(directory).items()}


def save_weights(model: DiScoFormerCore, path: Path):
    """Write a core's weights and architecture to a safetensors file; returns its SHA-256."""
    tensors = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    save_file(tensors, str(path), metadata={"model_config": json.dumps(model.config.to_dict())})
    return sha256(path)


def load_weights(path: Path, expected_sha256: str | None) -> DiScoFormerCore:
    """Rebuild a core from a safetensors file, refusing it if its SHA-256 differs."""
    path = Path(path)
    if expected_sha256 is not None:
        actual = sha256(path)
        if actual != expected_sha256:
            raise WeightsIntegrityError(f"{path.name}: SHA-256 {actual} does not match the recorded "
                                        f"{expected_sha256}; the file is corrupted or was modified")
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        config = ModelConfig.from_dict(json.loads(f.metadata()["model_config"]))
    model = DiScoFormerCore(config)
    model.load_state_dict(load_file(str(path)))
    return model.eval()


def load_shipped(name: str, directory: Path | None = None) -> DiScoFormerCore:
    """Load a shipped checkpoint by name (e.g. ``"d2"``), verifying its hash."""
    directory = directory or weights_dir()
    manifest = read_manifest(directory)
    if name not in manifest:
        raise ValueError(f"no shipped checkpoint named {name!r}; available: {sorted(manifest)}")
    entry = manifest[name]
    return load_weights(directory / entry["file"], entry["sha256"])


def model_card(name: str, directory: Path | None = None) -> dict:
    return json.loads(((directory or weights_dir()) / f"{name}.json").read_text())


def export_run(run_dir, *, name: str | None = None, eval_gmms: int = 32, directory: Path | None = None):
    """Export a training run's latest checkpoint into the package: weights, card, manifest entry."""
    from .evaluation import evaluation_table
    from .training import load_checkpoint

    run_dir = Path(run_dir)
    model, state = load_checkpoint(run_dir / "checkpoint.pt")
    model.eval()
    d = model.config.dim
    name = name or f"d{d}"
    directory = directory or weights_dir()
    path = directory / f"{name}.safetensors"
    digest = save_weights(model, path)
    card = {
        "name": name,
        "dim": d,
        "architecture": "DiScoFormer core (pre-LN transformer, context self-attention, query "
                        "cross-attention, Gaussian-residual heads) inside the affine whitening wrapper",
        "model_config": model.config.to_dict(),
        "parameters": model.n_parameters(),
        "train_config": state["train_config"],
        "steps": state["step"],
        "training_minutes": round(state["elapsed_seconds"] / 60, 1),
        "training_hardware": "2 CPU cores (torch CPU build)",
        "data_family": "random GMMs (scoreoracle.distributions.random_gmm): k ~ U{1..10}, means "
                       "U[-3,3]^d, variances U[0.2,1] with a Haar rotation per component, "
                       "weights ∝ U[0.1,1]; whole set randomly rotated",
        "seed": state["train_config"]["seed"],
        "evaluation": evaluation_table(model, d, n_gmms=eval_gmms),
        "sha256": digest,
    }
    (directory / f"{name}.json").write_text(json.dumps(card, indent=2) + "\n")
    manifest = read_manifest(directory)
    manifest[name] = {"file": path.name, "dim": d, "sha256": digest}
    (directory / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return path
