import json
from dataclasses import replace

import pytest
import torch

from scoreoracle.models import TransformerConfig, TransformerCore
from scoreoracle.training.data import Batch, make_batch
from scoreoracle.training.loop import TrainConfig, loss_terms, train

TINY = TransformerConfig(dim=2, width=32, depth=2, heads=2, ffn=64)


def fixed_loss(model, cfg, seed=99):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        return sum(loss_terms(model, make_batch(2, 8, 128, 64, generator=g), cfg)[0].item() for _ in range(4))


def test_batch_labels_are_whitened_exact_labels():
    g = torch.Generator().manual_seed(0)
    b = make_batch(3, 4, 256, 32, generator=g)
    assert b.context.shape == (4, 256, 3) and b.points.shape == (4, 288, 3)
    # whitened context: zero mean, identity covariance
    assert torch.allclose(b.context.mean(1), torch.zeros(4, 3), atol=1e-5)
    cov = b.context.transpose(1, 2) @ (b.context - b.context.mean(1, keepdim=True)) / 255
    assert torch.allclose(cov, torch.eye(3).expand(4, 3, 3), atol=1e-4)
    assert torch.isfinite(b.log_f).all() and torch.isfinite(b.score).all()


def test_short_training_lowers_the_loss(tmp_path):
    cfg = TrainConfig(steps=150, lr=3e-3, warmup=10, tokens_per_batch=1024, context_sizes=(64, 256),
                      n_queries=64, threads=1, eval_every=1000, checkpoint_minutes=100)
    torch.manual_seed(cfg.seed)
    before = fixed_loss(TransformerCore(TINY), cfg)
    model = train(tmp_path, TINY, cfg, progress=False)
    after = fixed_loss(model, cfg)
    # the untrained model is already the Gaussian fit; 150 tiny steps must still cut the loss by >10 %
    assert after < 0.9 * before, (before, after)
    metrics = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert metrics[-1]["step"] == 150 and (tmp_path / "checkpoint.pt").exists()


def test_resume_equals_uninterrupted_run(tmp_path):
    base = dict(lr=1e-3, warmup=0, decay_fraction=0.0, tokens_per_batch=512, context_sizes=(64, 128),
                n_queries=16, threads=1, eval_every=1000, checkpoint_minutes=100)
    full = train(tmp_path / "a", TINY, TrainConfig(steps=12, **base), progress=False)
    train(tmp_path / "b", TINY, TrainConfig(steps=6, **base), progress=False)
    resumed = train(tmp_path / "b", resume=True, overrides={"steps": 12}, progress=False)
    for (name, p), q in zip(full.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(p, q), name


def test_max_minutes_bounds_this_call_not_the_whole_run(tmp_path):
    base = dict(tokens_per_batch=256, context_sizes=(32, 64), n_queries=8, threads=1, eval_every=1000)
    train(tmp_path, TINY, TrainConfig(steps=2, **base), progress=False)
    state = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    state["elapsed_seconds"] = 10 * 3600.0  # a run that has already trained for hours
    torch.save(state, tmp_path / "checkpoint.pt")
    train(tmp_path, resume=True, overrides={"steps": 4}, progress=False, max_minutes=5)
    assert torch.load(tmp_path / "checkpoint.pt", weights_only=True)["step"] == 4


def test_cli_train_resume_and_refusals(tmp_path, capsys):
    from scoreoracle.training.cli import main
    tiny = ["--width", "16", "--depth", "1", "--heads", "2", "--ffn", "32", "--tokens-per-batch", "256",
            "--context-sizes", "32", "64", "--n-queries", "8", "--threads", "1", "--no-progress"]
    run = str(tmp_path / "run")
    main(["train", "--dim", "2", "--run-dir", run, "--steps", "3", *tiny])
    main(["train", "--run-dir", run, "--resume", "--steps", "5", "--no-progress"])
    state = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)
    assert state["step"] == 5 and tuple(state["train_config"]["context_sizes"]) == (32, 64)
    assert state["model_config"]["size_feature_max"] == 64  # follows the training contexts
    main(["train", "--run-dir", run, "--resume", "--steps", "6", "--context-sizes", "32", "128", "--no-progress"])
    assert torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)["model_config"]["size_feature_max"] == 128
    sessions = [json.loads(line) for line in (tmp_path / "run" / "sessions.jsonl").read_text().splitlines()]
    assert [(s["step"], s["resume"]) for s in sessions] == [(0, False), (3, True), (5, True)]
    assert sessions[2]["overrides"] == {"steps": 6, "context_sizes": [32, 128]}
    assert sessions[2]["train_config"]["context_sizes"] == [32, 128] and sessions[0]["train_config"]["steps"] == 3
    with pytest.raises(SystemExit):
        main(["train", "--run-dir", run, "--resume", "--width", "32"])
    with pytest.raises(SystemExit):
        main(["train", "--run-dir", run, "--steps", "3", "--bogus-flag", "1"])
    with pytest.raises(SystemExit):  # derived from --context-sizes, never set by hand
        main(["train", "--dim", "2", "--run-dir", str(tmp_path / "x"), "--size-feature-max", "8"])
    assert "stored architecture" in capsys.readouterr().err


def test_size_feature_is_capped_at_the_largest_training_context():
    core = TransformerCore(TransformerConfig(dim=2, width=16, depth=1, heads=2, ffn=32, size_feature_max=1000))
    z = torch.randn(1, 5, 2)
    assert torch.equal(core._features(z, 1000), core._features(z, 50_000))
    assert not torch.allclose(core._features(z, 999), core._features(z, 1000))  # below the cap n still counts


def _batch_and_scoring_model(seed: int):
    """A d = 2 batch (3 sets, 64 context points, 16 queries) and a tiny core whose score head is
    non-zero, so both loss terms depend on the model."""
    batch = make_batch(2, 3, 64, 16, generator=torch.Generator().manual_seed(seed))
    torch.manual_seed(0)
    model = TransformerCore(TINY)
    torch.nn.init.normal_(model.head_score.weight, std=0.5)
    return batch, model


def test_relative_score_loss_weighs_each_set_by_its_score_scale():
    import torch.nn.functional as F

    batch, model = _batch_and_scoring_model(seed=4)
    cfg = TrainConfig(relative_score_loss=True, huber_delta=1.0)
    with torch.no_grad():
        _, _, l_s = loss_terms(model, batch, cfg)
        _, score_hat = model(batch.context, batch.points[:, 64:])
    manual = 0.0
    for b in range(3):
        scale = (batch.score[b, :64] ** 2).sum(-1).mean() / 2
        manual += F.huber_loss(score_hat[b], batch.score[b], delta=1.0, reduction="none").sum(-1).mean() / scale
    assert l_s.item() == pytest.approx(manual.item() / 3, rel=1e-5)


def test_spike_factor_skips_updates_on_outlier_batches(tmp_path):
    """With a spike factor below 1 every batch after the first counts as a spike: the weights
    after 5 steps equal those after 1, and the metrics count the skipped updates."""
    base = dict(lr=1e-3, warmup=0, tokens_per_batch=256, context_sizes=(32, 64), n_queries=8, threads=1,
                eval_every=5, checkpoint_minutes=100, spike_factor=1e-9)
    one = train(tmp_path / "a", TINY, TrainConfig(steps=1, **base), progress=False)
    five = train(tmp_path / "b", TINY, TrainConfig(steps=5, **base), progress=False)
    for (name, p), q in zip(one.state_dict().items(), five.state_dict().values()):
        assert torch.equal(p, q), name
    assert json.loads((tmp_path / "b" / "metrics.jsonl").read_text().splitlines()[-1])["skipped"] == 4


def test_query_weight_splits_the_loss_between_context_points_and_queries():
    import torch.nn.functional as F
    batch, model = _batch_and_scoring_model(seed=5)
    with torch.no_grad():
        log_f_hat, score_hat = model(batch.context, batch.points[:, 64:])
        for w in (0.0, 0.3, 1.0):
            _, l_f, l_s = loss_terms(model, batch, TrainConfig(query_weight=w, huber_delta=1.0))
            f = F.huber_loss(log_f_hat, batch.log_f, delta=1.0, reduction="none")
            s = F.huber_loss(score_hat, batch.score, delta=1.0, reduction="none").sum(-1)
            expect_f = f.mean() if w == 0 else (1 - w) * f[:, :64].mean() + w * f[:, 64:].mean()
            expect_s = s.mean() if w == 0 else (1 - w) * s[:, :64].mean() + w * s[:, 64:].mean()
            assert l_f.item() == pytest.approx(expect_f.item(), rel=1e-6)
            assert l_s.item() == pytest.approx(expect_s.item(), rel=1e-6)


def test_extending_a_run_keeps_its_function_and_optimizer_moments(tmp_path):
    """Growing the equivariant core mid-run (the local-Gaussian head, gated at zero): the extended
    core computes exactly what the stored one did, keeps every trained weight and Adam moment, and
    trains on."""
    from scoreoracle.models import EquivariantConfig
    from scoreoracle.training.loop import extend_core, load_checkpoint
    tiny = EquivariantConfig(width=16, depth=1, heads=2, head_width=4, ffn=16)
    cfg = TrainConfig(steps=3, tokens_per_batch=256, context_sizes=(32, 64), n_queries=8, threads=1,
                      eval_every=1000, dim_groups=((1, 3, 1.0),))
    train(tmp_path, tiny, cfg, progress=False)
    stored, state = load_checkpoint(tmp_path / "checkpoint.pt")
    grown = extend_core(stored, {"local_gaussian_iterations": 2})
    z, q = torch.randn(1, 40, 3), torch.randn(1, 5, 3)
    with torch.no_grad():
        for a, b in zip(stored(z, q), grown(z, q)):
            assert torch.equal(a, b)
    from scoreoracle.training.loop import _optimizer_state_by_name, _parameter_groups
    moved = _optimizer_state_by_name(grown, stored, state["optimizer"])
    old_names = [n for group in _parameter_groups(stored) for n in group]
    new_names = [n for group in _parameter_groups(grown) for n in group]
    for index, name in enumerate(new_names):
        if name in old_names:
            old = state["optimizer"]["state"][old_names.index(name)]
            assert torch.equal(moved["state"][index]["exp_avg_sq"], old["exp_avg_sq"]), name
        else:
            assert index not in moved["state"] and name.startswith("local.")
    model = train(tmp_path, resume=True, overrides={"steps": 5}, extend={"local_gaussian_iterations": 2},
                  progress=False)
    assert model.local is not None and torch.load(tmp_path / "checkpoint.pt", weights_only=True)["step"] == 5
    resumed = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    assert resumed["model_config"]["local_gaussian_iterations"] == 2
    with pytest.raises(ValueError, match="drop trained weights"):
        extend_core(grown, {"local_gaussian_iterations": 0})
    with pytest.raises(ValueError, match="can grow only"):
        extend_core(grown, {"width": 32})


def test_a_deeper_core_grown_from_a_run_computes_the_same_function_and_trains(tmp_path):
    """Appending layers (as the identity, their log-density coefficients at zero): the grown core
    answers exactly as the stored one, reshaped parameters start with fresh Adam moments, and the
    new layers leave the identity once it trains."""
    from scoreoracle.models import EquivariantConfig
    from scoreoracle.training.loop import _optimizer_state_by_name, _parameter_groups, extend_core, load_checkpoint
    tiny = EquivariantConfig(width=16, depth=1, heads=2, head_width=4, ffn=16, local_gaussian_iterations=2)
    cfg = TrainConfig(steps=3, tokens_per_batch=256, context_sizes=(32, 64), n_queries=8, threads=1,
                      eval_every=1000, dim_groups=((1, 3, 1.0),))
    train(tmp_path, tiny, cfg, progress=False)
    stored, state = load_checkpoint(tmp_path / "checkpoint.pt")
    grown = extend_core(stored, {"depth": 3})
    assert len(grown.layers) == 3
    for d in (1, 3, 12):  # 12 > the CG steps: the local head's other path
        z, q = torch.randn(2, 40, d), torch.randn(2, 5, d)
        with torch.no_grad():
            for a, b in zip(stored(z, q), grown(z, q)):
                torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-6)
    moved = _optimizer_state_by_name(grown, stored, state["optimizer"])
    params = dict(grown.named_parameters())
    names = [name for group in _parameter_groups(grown) for name in group]
    assert all(m["exp_avg"].shape == params[names[i]].shape for i, m in moved["state"].items())
    assert not any(names[i].startswith(("head_log_density", "layers.1", "layers.2")) for i in moved["state"])
    model = train(tmp_path, resume=True, overrides={"steps": 6}, extend={"depth": 3}, progress=False)
    assert model.config.depth == 3 and model.layers[2].update.weight.abs().sum() > 0
    with pytest.raises(ValueError, match="cannot shrink"):
        extend_core(model, {"depth": 2})
    with pytest.warns(UserWarning, match="nothing to train: the run is at step 6 of 6"):  # grown all the same
        train(tmp_path, resume=True, extend={"depth": 4}, progress=False)
    assert torch.load(tmp_path / "checkpoint.pt", weights_only=True)["model_config"]["depth"] == 4



def test_an_interrupted_run_saves_its_step_and_resumes(tmp_path):
    """SIGINT (Ctrl-C) or SIGTERM: the loop finishes its step, saves and exits cleanly."""
    import signal
    import subprocess
    import sys
    import time

    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "scoreoracle.training.cli", "train", "--dim", "1", "--run-dir", str(run),
           "--steps", "1000000", "--width", "8", "--depth", "1", "--heads", "2", "--ffn", "8",
           "--tokens-per-batch", "64", "--context-sizes", "16", "32", "--n-queries", "4", "--threads", "1",
           "--eval-every", "1000000", "--no-progress"]
    process = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not (run / "metrics.jsonl").exists() and time.time() < deadline:  # the loop has started
        time.sleep(0.2)
    time.sleep(1.0)
    process.send_signal(signal.SIGINT)
    out, _ = process.communicate(timeout=120)
    assert process.returncode == 0 and "interrupted: saved at step" in out
    step = torch.load(run / "checkpoint.pt", weights_only=True)["step"]
    assert 0 < step < 1_000_000 and f"step {step}" in out
    train(run, resume=True, overrides={"steps": step + 2}, progress=False)
    assert torch.load(run / "checkpoint.pt", weights_only=True)["step"] == step + 2


def test_long_context_share_draws_sizes_above_the_range_and_leaves_other_runs_unchanged():
    from scoreoracle.training.data import log_uniform_int
    from scoreoracle.training.loop import draw_context_size
    plain = TrainConfig(context_sizes=(128, 2048))
    g, g_ref = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    # share 0 (every stored run): the same stream as before the option existed
    assert [draw_context_size(plain, 10, g) for _ in range(50)] == \
        [log_uniform_int(128, 2048, g_ref) for _ in range(50)]
    always = TrainConfig(context_sizes=(128, 2048), long_context_share=1.0, long_context_max=8192)
    sizes = [draw_context_size(always, 10, g) for _ in range(200)]
    assert min(sizes) >= 2048 and max(sizes) <= 8192 and max(sizes) > 6000
    some = TrainConfig(context_sizes=(128, 2048), long_context_share=0.1)
    share = sum(draw_context_size(some, 10, g) > 2048 for _ in range(2000)) / 2000
    assert 0.07 < share < 0.13
    assert min(draw_context_size(plain, 1000, g) for _ in range(20)) == 4000  # both ends at least 4d


def test_data_space_score_loss_weighs_errors_as_the_protocol_does():
    g = torch.Generator().manual_seed(1)
    batch = make_batch(3, 2, 64, 16, generator=g)
    error = torch.zeros_like(batch.score)
    error[..., 0] = 0.3  # a score error along the first whitened axis only

    def predict(context, queries):
        return batch.log_f, batch.score + error

    cfg = TrainConfig(relative_score_loss=True, huber_delta=1e6, alpha=0.0)
    whitened = loss_terms(predict, batch, cfg)[2]
    # the data map is the whitening's inverse: data-space labels are the whitened ones mapped back
    assert batch.to_data.shape == (2, 3, 3)
    data = replace(cfg, score_metric="data")
    scaled = Batch(batch.context, batch.points, batch.log_f, batch.score, 5.0 * torch.eye(3).expand(2, 3, 3))
    assert torch.allclose(loss_terms(predict, scaled, data)[2], whitened, rtol=1e-5)  # a scalar map: no change
    shrink = torch.diag(torch.tensor([0.1, 1.0, 1.0])).expand(2, 3, 3)
    shrunk = Batch(batch.context, batch.points, batch.log_f, batch.score, shrink)
    assert loss_terms(predict, shrunk, data)[2] < 0.2 * whitened  # errors along a shrunk axis count less
    with pytest.raises(ValueError, match="score_metric"):
        loss_terms(predict, batch, replace(cfg, score_metric="raw"))


def test_resume_keeps_the_spike_filter_state(tmp_path):
    """The filter skips a batch whose loss exceeds spike_factor × the running loss; a resumed run
    used to restart that average (and never skip its first batch), so it trained differently."""
    base = dict(lr=1e-3, warmup=0, decay_fraction=0.0, tokens_per_batch=512, context_sizes=(64, 128),
                n_queries=16, threads=1, eval_every=1000, checkpoint_minutes=100, spike_factor=1.02)
    full = train(tmp_path / "a", TINY, TrainConfig(steps=12, **base), progress=False)
    train(tmp_path / "b", TINY, TrainConfig(steps=6, **base), progress=False)
    resumed = train(tmp_path / "b", resume=True, overrides={"steps": 12}, progress=False)
    for (name, p), q in zip(full.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(p, q), name
    a, b = (torch.load(tmp_path / run / "checkpoint.pt", weights_only=True) for run in ("a", "b"))
    assert a["running_loss"] == b["running_loss"]
    skipped = [json.loads(line)["skipped"] for line in (tmp_path / "a" / "metrics.jsonl").read_text().splitlines()]
    assert skipped[-1] > 0  # the filter was at work


def test_resume_refuses_a_missing_checkpoint_and_a_new_seed(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing to resume"):
        train(tmp_path / "none", resume=True, progress=False)
    assert not (tmp_path / "none").exists()
    train(tmp_path, TINY, TrainConfig(steps=1, tokens_per_batch=256, context_sizes=(32, 64), n_queries=8, threads=1,
                                      eval_every=1000), progress=False)
    with pytest.raises(ValueError, match="seed cannot be overridden"):
        train(tmp_path, resume=True, overrides={"steps": 2, "seed": 3}, progress=False)


def test_a_transformer_caps_its_size_feature_at_the_largest_context_it_trains_on(tmp_path):
    cfg = TrainConfig(steps=1, tokens_per_batch=256, context_sizes=(32, 64), n_queries=8, threads=1, eval_every=1000,
                      long_context_share=0.5, long_context_max=256)
    assert train(tmp_path, TINY, cfg, progress=False).config.size_feature_max == 256
    cfg = replace(cfg, long_context_share=0.0)
    assert train(tmp_path / "short", TINY, cfg, progress=False).config.size_feature_max == 64


def test_a_new_run_replaces_the_logs_of_a_start_that_saved_no_checkpoint(tmp_path):
    """A start that failed before its first checkpoint left logs that made a new run refuse the
    folder ('resume it') while --resume refused it too ('nothing to resume')."""
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "sessions.jsonl").write_text('{"step": 0}\n')
    cfg = TrainConfig(steps=1, tokens_per_batch=256, context_sizes=(32, 64), n_queries=8, threads=1, eval_every=1000)
    with pytest.raises(ValueError, match="needs a core config"):  # refused before the logs are touched
        train(tmp_path, None, cfg, progress=False)
    assert (tmp_path / "config.json").read_text() == "{}"
    with pytest.warns(UserWarning, match="no checkpoint.pt"):
        train(tmp_path, TINY, cfg, progress=False)
    assert (tmp_path / "checkpoint.pt").exists() and len((tmp_path / "sessions.jsonl").read_text().splitlines()) == 1


def test_a_new_run_refuses_a_folder_that_holds_a_run(tmp_path):
    """Without --resume a second `train` into a run folder overwrote its checkpoint and appended a new
    run to its logs (exit 0, no warning)."""
    cfg = TrainConfig(steps=2, tokens_per_batch=256, context_sizes=(32, 64), n_queries=8, threads=1, eval_every=1000)
    train(tmp_path, TINY, cfg, progress=False)
    before = {name: (tmp_path / name).read_bytes() for name in ("checkpoint.pt", "sessions.jsonl", "config.json")}
    with pytest.raises(FileExistsError, match="already holds a run"):
        train(tmp_path, TINY, replace(cfg, steps=1), progress=False)
    assert all((tmp_path / name).read_bytes() == data for name, data in before.items())


@pytest.mark.parametrize("make,message", [
    (lambda: TrainConfig(steps=-5), "steps must be a positive integer"),
    (lambda: TrainConfig(context_sizes=(64, 16)), "context_sizes must be two sizes"),
    (lambda: TrainConfig(lr=0.0), "lr must be a positive"),
    (lambda: TrainConfig(long_context_share=0.1, long_context_max=1024), "long_context_max"),
    (lambda: TransformerConfig(dim=0), "dim must be a positive integer"),
    (lambda: TransformerConfig(dim=1, width=8, heads=3), "multiple of heads"),
    (lambda: TrainConfig(alpha=2.0), "alpha is a fraction"),  # trained to maximise the score error
    (lambda: TrainConfig(dim_groups=((3, 1, 1.0),)), "1 ≤ lo ≤ hi"),
    (lambda: TrainConfig(dim_groups=((0, 3, 1.0),)), "1 ≤ lo ≤ hi"),  # a math domain error in the first step
    (lambda: TrainConfig(dim_groups=((1, 3, -1.0),)), "positive weight"),  # a raw torch.multinomial error
    (lambda: TrainConfig(families=(("foo", 1.0),)), "families are"),
])
def test_bad_training_settings_are_refused_by_name_before_anything_is_written(make, message):
    """They failed deep in the first step (torch.multinomial, a reshape) after the run files were
    written, or — steps = −5 — ran nothing and exited 0."""
    with pytest.raises(ValueError, match=message):
        make()


def test_cli_reports_bad_settings_and_folders_without_a_traceback(tmp_path, capsys):
    from scoreoracle.training.cli import main
    for argv in (["train", "--dim", "0", "--run-dir", str(tmp_path / "a")],
                 ["export", str(tmp_path / "nowhere"), "--out", str(tmp_path / "out")]):
        with pytest.raises(SystemExit) as exit_info:
            main(argv)
        assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "train: error: dim must be a positive integer" in err and "holds no checkpoint.pt" in err
    assert not (tmp_path / "a").exists()
