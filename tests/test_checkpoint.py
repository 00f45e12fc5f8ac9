import json

import numpy as np
import pytest
import torch

from scoreoracle import DiScoFormerOracle, WeightsIntegrityError
from scoreoracle.models import TransformerConfig
from scoreoracle.training.export import export_run
from scoreoracle.training.loop import TrainConfig, train
from scoreoracle.weights import load_checkpoint, load_weights, model_card, save_weights, sha256

from conftest import random_core


def test_round_trip_gives_identical_outputs(tmp_path, rng):
    core = random_core(2)
    digest = save_weights(core, tmp_path / "w.safetensors")
    again = load_weights(tmp_path / "w.safetensors", digest)
    x = rng.normal(size=(100, 2))
    a = DiScoFormerOracle(core).log_density_and_score(x)
    b = DiScoFormerOracle(again).log_density_and_score(x)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])


def test_tampered_weights_are_refused(tmp_path):
    path = tmp_path / "w.safetensors"
    digest = save_weights(random_core(2), path)
    raw = bytearray(path.read_bytes())
    raw[-3] ^= 0x01  # flip one bit of the last tensor
    path.write_bytes(bytes(raw))
    with pytest.raises(WeightsIntegrityError, match="does not match"):
        load_weights(path, digest)


def test_export_writes_weights_card_and_manifest(tmp_path):
    cfg = TrainConfig(steps=3, tokens_per_batch=256, context_sizes=(32, 64), n_queries=8, threads=1,
                      eval_every=1000, checkpoint_minutes=100)
    train(tmp_path / "d1", TransformerConfig(dim=1, width=16, depth=1, heads=2, ffn=32), cfg, progress=False)
    out = tmp_path / "weights"  # created by the export
    path = export_run(tmp_path / "d1", out, eval_gmms=2)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["d1"]["sha256"] == sha256(path)
    card = model_card("d1", out)
    assert card["steps"] == 3 and card["dim"] == 1 and card["seed"] == 0
    assert {row["n"] for row in card["evaluation"]} == {256, 1024, 4096}
    core = load_checkpoint("d1", out)
    assert core.config.dim == 1 and card["architecture"] == "transformer"
    with pytest.raises(ValueError, match="available"):
        load_checkpoint("d7", out)


def test_weights_load_without_pickle(tmp_path):
    """safetensors holds tensors and a JSON config only: no code can run at load."""
    path = tmp_path / "w.safetensors"
    save_weights(random_core(2), path)
    header_len = int.from_bytes(path.read_bytes()[:8], "little")
    header = json.loads(path.read_bytes()[8:8 + header_len])
    assert json.loads(header["__metadata__"]["model_config"])["dim"] == 2
    assert header["__metadata__"]["architecture"] == "transformer"
    assert all(v["dtype"] == "F32" for k, v in header.items() if k != "__metadata__")
    assert torch.float32 == load_weights(path, None).embed.weight.dtype
