import json

import numpy as np
import pytest
import torch

import scoreoracle
from scoreoracle import DiScoFormerOracle, WeightsIntegrityError
from scoreoracle.models import EquivariantConfig, EquivariantCore, TransformerConfig
from scoreoracle.training.export import export_run
from scoreoracle.training.loop import TrainConfig, train
from scoreoracle.weights import load_checkpoint, load_weights, model_card, register, save_weights, sha256

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
                      eval_every=1000, checkpoint_minutes=100, modes=(2, 4))
    train(tmp_path / "d1", TransformerConfig(dim=1, width=16, depth=1, heads=2, ffn=32), cfg, progress=False)
    out = tmp_path / "weights"  # created by the export
    path = export_run(tmp_path / "d1", out, eval_gmms=2)
    with pytest.raises(FileExistsError, match="already holds a checkpoint named 'd1'"):  # it overwrote silently
        export_run(tmp_path / "d1", out, eval_gmms=2)
    assert export_run(tmp_path / "d1", out, eval_gmms=2, replace=True) == path
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["d1"]["sha256"] == sha256(path)
    card = model_card("d1", out)
    assert card["steps"] == 3 and card["dim"] == 1 and card["seed"] == 0
    assert f"100% random GMMs (scoreoracle.distributions.random_gmm): k ~ U{{{cfg.modes[0]}..{cfg.modes[1]}}}" \
        in card["data_family"]  # the run's families, not a fixed text
    assert card["training_hardware"].startswith(f"{cfg.threads} CPU threads")
    assert [s["step"] for s in card["training_sessions"]] == [0] and card["training_log"][-1]["step"] == 3
    assert {row["n"] for row in card["evaluation"]} == {256, 1024, 4096}
    core = load_checkpoint("d1", out)
    assert core.config.dim == 1 and card["architecture"] == "transformer"
    with pytest.raises(ValueError, match="available"):
        load_checkpoint("d7", out)
    quick = export_run(tmp_path / "d1", tmp_path / "quick", eval_gmms=0)  # it raised KeyError
    assert model_card("d1", tmp_path / "quick")["evaluation"] == [] and quick.is_file()
    with pytest.raises(ValueError, match="eval_gmms must be ≥ 0"):
        export_run(tmp_path / "d1", tmp_path / "quick", eval_gmms=-1, replace=True)


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


def test_a_folder_routes_each_dimension_to_its_checkpoint_and_every_other_d_to_the_all_d_core(tmp_path, rng):
    """Per-dimension checkpoints answer their d; the all-dimension core answers the rest; a
    checkpoint marked default (or named) answers everything; the choice is visible."""
    all_d = EquivariantCore(EquivariantConfig(width=16, depth=1, heads=2, head_width=4, ffn=16))
    register(random_core(2), "d2", {"dim": 2}, tmp_path)
    with pytest.raises(ValueError, match="no checkpoint for dimension d = 3; available dimensions: \\[2\\]"):
        scoreoracle.load(path=tmp_path).score(rng.normal(size=(64, 3)))
    register(all_d, "every", {}, tmp_path)
    oracle = scoreoracle.load(path=tmp_path)
    assert oracle.checkpoint_for(2) == "d2" and oracle.checkpoint_for(7) == "every"
    assert "d2 for d = 2" in repr(oracle) and "every for every other d" in repr(oracle)
    x2, x7 = rng.normal(size=(64, 2)), rng.normal(size=(64, 7))
    np.testing.assert_array_equal(oracle.score(x2), scoreoracle.load(checkpoint="d2", path=tmp_path).score(x2))
    np.testing.assert_array_equal(oracle.score(x7), DiScoFormerOracle(all_d).score(x7))
    pinned = scoreoracle.load(7, path=tmp_path)
    assert pinned.name == "every" and pinned.dim == 7
    with pytest.raises(ValueError, match="d = 7"):
        pinned.score(x2)
    named = scoreoracle.load(checkpoint="every", path=tmp_path)
    np.testing.assert_array_equal(named.score(x2), DiScoFormerOracle(all_d).score(x2))

    manifest = json.loads((tmp_path / "manifest.json").read_text())
    manifest["every"]["default"] = True
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    assert scoreoracle.load(path=tmp_path).name == "every"

    register(all_d, "every2", {}, tmp_path)
    del manifest["every"]["default"]
    manifest["every2"] = json.loads((tmp_path / "manifest.json").read_text())["every2"]
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match="several all-dimension checkpoints"):
        scoreoracle.load(path=tmp_path)
    manifest["every"]["retired"] = True  # the predecessor retired: its successor answers
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    assert scoreoracle.load(path=tmp_path).checkpoint_for(7) == "every2"


def test_a_retired_checkpoint_is_loadable_by_name_but_no_longer_answers_its_dimension(tmp_path, rng):
    """``"retired": true`` in a per-dimension checkpoint's manifest entry hands its d to the
    all-dimension core (routing, pinning, selection), while ``load(checkpoint=name)`` still works."""
    all_d = EquivariantCore(EquivariantConfig(width=16, depth=1, heads=2, head_width=4, ffn=16))
    own = random_core(2)
    register(own, "d2", {"dim": 2}, tmp_path)
    register(all_d, "every", {}, tmp_path)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    manifest["d2"]["retired"] = True
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    x2 = rng.normal(size=(64, 2))
    oracle = scoreoracle.load(path=tmp_path)
    assert oracle.checkpoint_for(2) == "every" and "d2" not in repr(oracle)
    np.testing.assert_array_equal(oracle.score(x2), DiScoFormerOracle(all_d).score(x2))
    assert scoreoracle.load(2, path=tmp_path).name == "every"
    assert oracle.select(x2).selection.comparison is None  # one checkpoint serves d = 2 now
    np.testing.assert_array_equal(scoreoracle.load(checkpoint="d2", path=tmp_path).score(x2),
                                  DiScoFormerOracle(own).score(x2))


def test_two_checkpoints_for_one_dimension_are_refused_not_picked_by_manifest_order(tmp_path):
    register(random_core(2), "first", {"dim": 2}, tmp_path)
    register(random_core(2, seed=1), "second", {"dim": 2}, tmp_path)
    with pytest.raises(ValueError, match=r"several checkpoints for d = 2 \['first', 'second'\]"):
        scoreoracle.load(path=tmp_path)
    assert scoreoracle.load(checkpoint="second", path=tmp_path).name == "second"


def test_a_pickled_fitted_oracle_refuses_weights_re_exported_under_its_name(tmp_path, rng):
    """It rebuilt its core by (name, folder) alone: re-exported weights were silently mixed with the
    old weights' encoding of the samples; a worker's cache kept serving stale weights."""
    import pickle
    from scoreoracle.weights import cached_checkpoint
    register(random_core(2), "core", {"dim": 2}, tmp_path)
    x = rng.normal(size=(64, 2))
    fitted = scoreoracle.load(path=tmp_path).fit(x)
    blob = pickle.dumps(fitted)
    np.testing.assert_array_equal(pickle.loads(blob).score(x[:3]), fitted.score(x[:3]))
    register(random_core(2, seed=1), "core", {"dim": 2}, tmp_path)
    # a process that holds the weights of that hash keeps answering with them, as fitted
    np.testing.assert_array_equal(pickle.loads(blob).score(x[:3]), fitted.score(x[:3]))
    cached_checkpoint.cache_clear()  # a fresh worker process: the folder no longer has those weights
    with pytest.raises(WeightsIntegrityError, match="has changed since this fitted oracle was made"):
        pickle.loads(blob)


def test_exported_weights_are_readable_like_any_file_written_here(tmp_path):
    """safetensors writes 0600: workers running as another user on a shared folder could not read them."""
    import os
    register(random_core(2), "core", {"dim": 2}, tmp_path)
    umask = os.umask(0)
    os.umask(umask)
    assert (tmp_path / "core.safetensors").stat().st_mode & 0o777 == 0o666 & ~umask


def test_a_replaced_checkpoint_drops_the_old_weights_flags_and_names_are_plain(tmp_path):
    """Re-registering merged into the old manifest entry: the new weights inherited the old ones'
    measured context_limit and 'retired' (so they never answered).  A name 'manifest' overwrote the
    manifest with a model card; '../x' wrote outside the folder; `export .` named the files '.json'."""
    register(random_core(2), "core", {"dim": 2}, tmp_path, default=True)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    manifest["core"].update(context_limit=64, retired=True)
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.warns(UserWarning, match="context_limit .64, measured on the old weights. is dropped"):
        register(random_core(2, seed=1), "core", {"dim": 2}, tmp_path)
    entry = json.loads((tmp_path / "manifest.json").read_text())["core"]
    assert entry["default"] is True and "context_limit" not in entry and "retired" not in entry
    for name in ("manifest", "Manifest", "../x", "", ".", "a/b", "-x"):
        with pytest.raises(ValueError, match="plain file name"):
            register(random_core(2), name, {"dim": 2}, tmp_path)
    with pytest.raises(ValueError, match="only in case"):
        register(random_core(2), "CORE", {"dim": 2}, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["core.json", "core.safetensors", "manifest.json"]


def test_a_failed_re_export_leaves_the_checkpoint_as_it_was(tmp_path):
    """The weights were replaced before the card and manifest were written: a failure in between left
    new weights under the old hash (the checkpoint no longer loaded) and a stray temporary file."""
    register(random_core(2), "core", {"dim": 2}, tmp_path)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    with pytest.raises(TypeError):
        register(random_core(2, seed=1), "core", {"dim": 2, "note": object()}, tmp_path)  # a card JSON cannot hold
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before
    scoreoracle.load(checkpoint="core", path=tmp_path)
