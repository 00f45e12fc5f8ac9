"""The shipped checkpoints: present, hash-verified, and better than tuned KDE on fixed seeds."""

import numpy as np
import pytest
import torch

import scoreoracle
from scoreoracle.training.evaluation import evaluate_estimators, protocol_cells, relative_score_error
from scoreoracle.weights import model_card, read_manifest

SHIPPED = {1, 2, 3, 10}
RETIRED = {2, 10}  # shipped, loadable by name, but these d are answered by the all-dimension core


def test_every_promised_dimension_is_shipped_with_a_card():
    manifest = read_manifest()
    per_dimension = {name: e for name, e in manifest.items() if e["dim"] is not None}
    assert {e["dim"] for e in per_dimension.values()} == SHIPPED
    for name, entry in per_dimension.items():
        card = model_card(name)
        assert card["dim"] == entry["dim"] and card["steps"] > 0 and card["evaluation"]
        assert card["architecture"] == entry["architecture"] == "transformer"


def test_load_picks_the_checkpoint_from_the_samples_dimension(rng):
    oracle = scoreoracle.load()
    assert {name for name, e in read_manifest().items() if e.get("retired")} == {f"d{d}" for d in RETIRED}
    for d in sorted(SHIPPED):
        x = rng.normal(size=(200, d))
        name = "equivariant" if d in RETIRED else f"d{d}"
        assert oracle.checkpoint_for(d) == name
        np.testing.assert_array_equal(oracle.score(x), scoreoracle.load(checkpoint=name).score(x))
    assert scoreoracle.load(1).dim == 1 and scoreoracle.load(1).name == "d1"
    assert scoreoracle.load(2).dim == 2 and scoreoracle.load(2).name == "equivariant"


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


@pytest.mark.parametrize("d,checkpoint", [(2, "d2"), (2, "equivariant"), (6, "equivariant")])
def test_score_head_is_more_accurate_than_the_gradient_of_the_log_density(d, checkpoint):
    """The score ŝ is the model's own head, not ∇ log f̂: the two heads are trained together and
    agree only to a few per cent, and the head is the better score (README, Autograd)."""
    oracle = scoreoracle.load(d, checkpoint=checkpoint)
    heads, gradients, exact = [], [], []
    for x, y, _, s, *_ in protocol_cells(d, 1024, 4, 512, seed=123):
        fitted = oracle.fit(x)
        q = y.clone().requires_grad_(True)
        gradients.append(torch.autograd.grad(fitted.log_density(q).sum(), q)[0])
        heads.append(fitted.score(y))
        exact.append(s)
    head, gradient, s = torch.cat(heads), torch.cat(gradients), torch.cat(exact)
    assert relative_score_error(head, s) < relative_score_error(gradient, s)
    gap = 100 * float(((gradient - head) ** 2).sum() / (s ** 2).sum())  # % of the exact score's norm
    assert gap < 15, gap


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
    """n = 16384, beyond every shipped core's training contexts, as a user calls it (``load(d)``:
    each checkpoint's context limit, the transformer cores' capped log-size feature): the score
    error must still beat best-h KDE (uncapped and with all samples, the d1/d2 cores extrapolated
    badly to large n)."""
    oracle = scoreoracle.load(d)
    table = evaluate_estimators({"model": oracle.log_density_and_score}, d, 16384, 8, n_queries=512, seed=7)
    assert table["model"]["rel_score"] < table["best-h kde"]["rel_score"], table


@pytest.mark.parametrize("d", [2, 3])
def test_weighted_oracle_beats_weighted_best_h_kde_on_importance_samples(d):
    """Draws from a proposal q (every GMM covariance widened 1.5×) weighted by p/q: the weighted
    oracle's pooled score error is below the weighted KDE's at its best bandwidth (chosen by the
    true error) and below the oracle on a weighted resample (what users do without weights)."""
    import torch

    from scoreoracle import GaussianMixture, KDEOracle, random_gmm
    from scoreoracle.gaussian import scott_factor
    from scoreoracle.training.evaluation import BANDWIDTH_MULTIPLIERS

    g = torch.Generator().manual_seed(11 + d)
    p = random_gmm(8, d, generator=g)
    q = GaussianMixture(p.weights, p.means, p.covariances * 1.5 ** 2)
    x = q.sample(1024, g)
    w = torch.exp(p.log_density(x) - q.log_density(x))
    y = p.sample(512, g)
    _, s = p.log_density_and_score(y)
    oracle = scoreoracle.load(d)
    rng = np.random.default_rng(0)
    err = {"weighted": 0.0, "resampled": 0.0, **{m: 0.0 for m in BANDWIDTH_MULTIPLIERS}}
    for i in range(8):
        xi, wi, yi, si = x[i].numpy(), w[i].numpy(), y[i].numpy(), s[i].numpy()
        err["weighted"] += ((oracle.score(xi, yi, weights=wi) - si) ** 2).sum()
        resampled = xi[rng.choice(len(xi), len(xi), p=wi / wi.sum())]
        with pytest.warns(scoreoracle.RepeatedSamplesWarning):  # resampling repeats samples: rightly warned
            err["resampled"] += ((oracle.score(resampled, yi) - si) ** 2).sum()
        n_eff = wi.sum() ** 2 / (wi ** 2).sum()
        for m in BANDWIDTH_MULTIPLIERS:
            kde = KDEOracle(m * scott_factor(n_eff, d), dtype=torch.float32)
            err[m] += ((kde.score(xi, yi, weights=wi) - si) ** 2).sum()
    best_kde = min(err[m] for m in BANDWIDTH_MULTIPLIERS)
    assert err["weighted"] < best_kde and err["weighted"] < err["resampled"], err


@pytest.mark.slow
@pytest.mark.parametrize("d", [2, 10])
def test_beyond_training_sizes_with_default_context_limits(d):
    """Paper Table 2 beyond training (n = 2^15, 2^17) with load()'s default context limit: below
    best-h KDE at both sizes, and the error at 2^17 not above the error at 2^15 by more than the
    spread between the cells' GMM draws (8 GMMs per cell: 25 %)."""
    oracle = scoreoracle.load()
    errors = {}
    for n in (2 ** 15, 2 ** 17):
        table = evaluate_estimators({"model": oracle.log_density_and_score}, d, n, 8, n_queries=256, seed=3)
        assert table["model"]["rel_score"] < table["best-h kde"]["rel_score"], (n, table)
        errors[n] = table["model"]["rel_score"]
    assert errors[2 ** 17] < 1.25 * errors[2 ** 15], errors
