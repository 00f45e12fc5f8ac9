"""The shipped checkpoints: present, hash-verified, and better than tuned KDE on fixed seeds."""

import pytest

import scoreoracle
from scoreoracle.training.evaluation import evaluate_estimators
from scoreoracle.weights import model_card, read_manifest

SHIPPED = {1, 2, 3, 10}


def test_every_promised_dimension_is_shipped_with_a_card():
    manifest = read_manifest()
    assert {e["dim"] for e in manifest.values()} == SHIPPED
    for name, entry in manifest.items():
        card = model_card(name)
        assert card["dim"] == entry["dim"] and card["steps"] > 0 and card["evaluation"]
        assert card["architecture"] == entry["architecture"] == "transformer"


def test_load_picks_the_checkpoint_from_the_samples_dimension(rng):
    oracle = scoreoracle.load()
    for d in sorted(SHIPPED):
        x = rng.normal(size=(200, d))
        assert oracle.score(x).shape == (200, d)
    with pytest.raises(ValueError, match="available dimensions: \\[1, 2, 3, 10\\]"):
        oracle.score(rng.normal(size=(200, 4)))
    assert scoreoracle.load(2).dim == 2


@pytest.mark.parametrize("d", sorted(SHIPPED))
def test_checkpoint_beats_best_h_kde_on_fixed_seeds(d):
    """Bounded version of the Table 2 protocol: 16 GMMs, n = 1024, 512 fresh queries each.

    The best-h KDE picks its bandwidth with the true error, so this is a strict comparison.
    (With 8 GMMs the pooled log-density MSE is dominated by one or two sets: too noisy a claim.)"""
    oracle = scoreoracle.load(d)
    table = evaluate_estimators({"model": oracle.log_density_and_score}, d, 1024, 16, n_queries=512, seed=123)
    assert table["model"]["rel_score"] < table["best-h kde"]["rel_score"], table
    assert table["model"]["logf_mse"] < table["best-h kde"]["logf_mse"], table
    assert table["model"]["rel_score"] < table["gaussian fit"]["rel_score"], table


TARGETS = {1: 1.2, 2: 2.0, 3: 2.5, 10: 2.0}
CELLS = [(d, n) for d in sorted(SHIPPED) for n in (256, 1024, 4096)]


@pytest.mark.slow
@pytest.mark.parametrize("d,n", CELLS)
def test_score_error_ratio_targets(d, n):
    """The accuracy targets on the Table 2 protocol (32 GMMs per cell): best-h KDE / model score
    error ≥ 1.2 (d=1), 2 (d=2), 2.5 (d=3), 2 (d=10); log-density MSE below best-h KDE; score error
    below the single-Gaussian fit."""
    oracle = scoreoracle.load(d)
    table = evaluate_estimators({"model": oracle.log_density_and_score}, d, n, 32)
    ratio = table["best-h kde"]["rel_score"] / table["model"]["rel_score"]
    assert ratio >= TARGETS[d], (ratio, table)
    assert table["model"]["logf_mse"] < table["best-h kde"]["logf_mse"], table
    assert table["model"]["rel_score"] < table["gaussian fit"]["rel_score"], table


@pytest.mark.slow
@pytest.mark.parametrize("d", sorted(SHIPPED))
def test_no_collapse_beyond_the_training_context_sizes(d):
    """n = 16384 is 8× the largest training context: the score error must still beat best-h KDE
    (this guards the cap on the log-size feature: uncapped, the model extrapolated badly to large n)."""
    oracle = scoreoracle.load(d)
    table = evaluate_estimators({"model": oracle.log_density_and_score}, d, 16384, 8, n_queries=512, seed=7)
    assert table["model"]["rel_score"] < table["best-h kde"]["rel_score"], table
