"""Checkpoint files: safetensors weights, JSON model cards and a SHA-256 manifest.

A checkpoint is ``<name>.safetensors`` (tensors only, so loading executes no code; the metadata
holds the architecture tag and the model config), ``<name>.json`` (the model card: config, steps,
data family, seed, training time, evaluation table) and an entry of ``manifest.json`` mapping the
file to its SHA-256, which is checked at every load.  The shipped checkpoints live in this
package folder; a user's own exported checkpoints live in any folder of the same shape.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import warnings
from importlib import resources
from pathlib import Path

from safetensors import safe_open
from safetensors.torch import load_file, save_file

from ..models import build_core

MANIFEST = "manifest.json"


class WeightsIntegrityError(RuntimeError):
    """A weights file does not match its recorded SHA-256."""


def shipped_dir() -> Path:
    """The folder of the checkpoints shipped inside the package."""
    return Path(str(resources.files(__name__)))


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def read_manifest(directory: Path | None = None) -> dict:
    """{name: entry} of a checkpoint folder (shipped by default); an entry holds "file", "sha256",
    "architecture", "dim" (null for an all-dimension core; absent or "any" in older manifests) and
    optionally "context_limit", "retired" and "default"."""
    path = Path(directory or shipped_dir()) / MANIFEST
    return json.loads(path.read_text()) if path.exists() else {}


def save_weights(core, path: Path) -> str:
    """Write a core's weights, architecture tag and config to a safetensors file; returns its SHA-256."""
    tensors = {k: v.detach().contiguous().cpu() for k, v in core.state_dict().items()}
    save_file(tensors, str(path), metadata={"architecture": core.architecture,
                                            "model_config": json.dumps(core.config.to_dict())})
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)  # as any file written here (safetensors writes 0600: unreadable to other users)
    return sha256(path)


def load_weights(path, expected_sha256: str | None):
    """Rebuild a core from a safetensors file, refusing it if its SHA-256 differs."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no weights file at {path}")
    if expected_sha256 is not None:
        actual = sha256(path)
        if actual != expected_sha256:
            raise WeightsIntegrityError(f"{path.name}: SHA-256 {actual} does not match the recorded "
                                        f"{expected_sha256}; the file is corrupted or was modified")
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata() or {}
    if "architecture" not in meta or "model_config" not in meta:
        raise ValueError(f"{path.name} is not a scoreoracle checkpoint: its metadata has no architecture "
                         "tag and model config (export checkpoints with `scoreoracle export`)")
    core = build_core(meta["architecture"], json.loads(meta["model_config"]))
    core.load_state_dict(load_file(str(path)))
    return core.eval().requires_grad_(False)  # frozen: gradients of answers flow to queries only


def load_checkpoint(name: str, directory: Path | None = None):
    """Load checkpoint ``name`` of a checkpoint folder (shipped by default), verifying its hash."""
    directory = Path(directory or shipped_dir())
    manifest = read_manifest(directory)
    if name not in manifest:
        raise ValueError(f"no checkpoint named {name!r} in {directory}; available: {sorted(manifest)}")
    entry = manifest[name]
    return load_weights(directory / entry["file"], entry["sha256"])


@functools.lru_cache(maxsize=8)
def cached_checkpoint(name: str, directory: str | None, expected_sha256: str, device: str, dtype: str):
    """One shared, read-only core per (checkpoint, hash, device, dtype) and process: what a worker
    process uses to rebuild fitted oracles sent to it without their weights.  Refused if the
    folder's checkpoint ``name`` is no longer the one with ``expected_sha256`` (re-exported since)."""
    import torch
    folder = Path(directory or shipped_dir())
    entry = read_manifest(folder).get(name, {})
    if entry.get("sha256") != expected_sha256:
        raise WeightsIntegrityError(f"checkpoint {name!r} in {directory or 'the package'} has changed since this "
                                    f"fitted oracle was made (SHA-256 {entry.get('sha256')} instead of "
                                    f"{expected_sha256}): fit it again")
    core = load_weights(folder / entry["file"], expected_sha256)  # the file itself checked against that hash
    return core.to(device=torch.device(device), dtype=getattr(torch, dtype.split(".")[-1])).eval()


def model_card(name: str, directory: Path | None = None) -> dict:
    """The model card of checkpoint ``name`` (configs, training record, evaluation) of a checkpoint
    folder (shipped by default)."""
    path = Path(directory or shipped_dir()) / f"{name}.json"
    if not path.is_file():
        raise ValueError(f"no model card for a checkpoint named {name!r} in {path.parent}; available: "
                         f"{sorted(read_manifest(directory))}")
    return json.loads(path.read_text())


def register(core, name: str, card: dict, directory: Path, default: bool = False) -> Path:
    """Write ``core`` as checkpoint ``name`` into ``directory``: weights, model card, manifest entry
    (with ``default``, the folder's default checkpoint).  All three are written to temporary files
    first and renamed into place together, so a failure leaves the folder as it was.  Replacing a
    checkpoint keeps its "default" flag and drops what belonged to the old weights ("retired", and
    "context_limit", measured on them: a warning says so)."""
    directory = Path(directory)
    manifest = read_manifest(directory)
    check_checkpoint_name(name, manifest)
    directory.mkdir(parents=True, exist_ok=True)
    old = manifest.get(name, {})
    if "context_limit" in old:
        warnings.warn(f"checkpoint {name!r} is replaced: its context_limit ({old['context_limit']}, measured on the "
                      "old weights) is dropped, so context_limit='auto' uses every sample until the new weights' "
                      "limit is measured and recorded", stacklevel=2)
    final = {"weights": directory / f"{name}.safetensors", "card": directory / f"{name}.json",
             "manifest": directory / MANIFEST}
    staged = {key: path.with_name(path.name + ".tmp") for key, path in final.items()}
    try:
        digest = save_weights(core, staged["weights"])
        manifest[name] = {**{k: v for k, v in old.items() if k == "default"}, "file": final["weights"].name,
                          "dim": core.config.to_dict().get("dim"), "sha256": digest,
                          "architecture": core.architecture}
        if default:
            for key, entry in manifest.items():
                entry["default"] = key == name
        card = {**card, "name": name, "architecture": core.architecture, "sha256": digest}
        staged["card"].write_text(json.dumps(card, indent=2) + "\n")
        staged["manifest"].write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
        for key in ("weights", "card", "manifest"):  # the manifest last: it names what is valid
            os.replace(staged[key], final[key])
    finally:
        for path in staged.values():
            path.unlink(missing_ok=True)
    return final["weights"]


def check_checkpoint_name(name: str, manifest: dict | None = None) -> str:
    """A checkpoint name is a plain file stem (letters, digits, '_', '.', '-'; not "manifest"),
    distinct from the folder's other checkpoints' names also where file names ignore case."""
    reserved = Path(MANIFEST).stem
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", name) \
            or name.casefold() == reserved:
        raise ValueError(f"checkpoint name {name!r} must be a plain file name (letters, digits, '_', '.', '-', "
                         f"not starting with '.' or '-') other than {reserved!r}")
    clash = [other for other in manifest or {} if other != name and other.casefold() == name.casefold()]
    if clash:
        raise ValueError(f"checkpoint name {name!r} differs from the folder's {clash[0]!r} only in case: on "
                         "case-insensitive file systems they are the same files; choose another name")
    return name
