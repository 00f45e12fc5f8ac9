"""One oracle for every dimension: the equivariant core against the per-dimension checkpoints,
best-h KDE and the Gaussian fit, at the dimensions with and without a per-dimension checkpoint, and
the paper's Table 5 case.  (The core trains on every d in 1–100, so no d here is unseen in training.)

* dimensions with a per-dimension checkpoint (d = 1, 2, 3, 10; n = 256, 1024, 4096): the new core and the old checkpoint
  of that d on the same draws; the ratio that matters is best-h KDE / model;
* large n (d = 2, 10; n = 4096, 16384, 65536 as nested prefixes of one draw): does the error keep falling with n;
* dimensions without one (d = 4, 5, 7, 16, 32, 64, 100; n = 1024, 4096);
* Table 5: d = 100, random two-component diagonal GMMs (means U[−3, 3]^d, variances U[0.2, 1]),
  n = 2048 context points, 256 queries, KDE at the bandwidth that minimises the true error.

    python benchmarks/dimensions.py [--run runs/equivariant] [--gmms 32] [--quick]
"""

from __future__ import annotations

import argparse
import json

import torch

import scoreoracle
from scoreoracle.distributions import GaussianMixture
from scoreoracle.oracles import DiScoFormerOracle
from scoreoracle.training.evaluation import (TABLE5_FAMILY, TABLE5_MULTIPLIERS, evaluate_cells, evaluate_estimators,
                                             protocol_cells)

from _common import OUT, machine_note, markdown_table, write_section

SEEN = (1, 2, 3, 10)
OTHER_DIMS = (4, 5, 7, 16, 32, 64, 100)


def candidate(run: str | None):
    """The oracle under test: a training run's latest checkpoint, or the shipped all-dimension one."""
    if run is None:
        return scoreoracle.load(checkpoint="equivariant")
    from scoreoracle.training.loop import load_checkpoint
    core, state = load_checkpoint(f"{run}/checkpoint.pt")
    print(f"candidate: {run} at step {state['step']}")
    return DiScoFormerOracle(core, name=f"{run}@{state['step']}")


def candidates(runs) -> dict:
    """The shipped all-dimension oracle ("shipped"), then each training run's, by run folder."""
    return {"shipped": candidate(None), **{run: candidate(run) for run in runs}}


def cell(estimators, d, n, gmms, queries=1024):
    """Errors and ratios to best-h KDE on one protocol cell."""
    return with_ratios(evaluate_estimators(estimators, d, n, gmms, n_queries=queries))


def with_ratios(table):
    """An :func:`evaluate_cells` table with each method's ratios to best-h KDE (score and log f)."""
    best = table["best-h kde"]
    return {name: {"rel_score": r["rel_score"], "logf_mse": r["logf_mse"],
                   "ratio": best["rel_score"] / r["rel_score"], "logf_ratio": best["logf_mse"] / r["logf_mse"]}
            for name, r in table.items()}


def growing_samples(d, sizes, gmms, queries=512):
    """For each n in ``sizes``, the cells of the same GMMs and queries with the first n of one draw
    of max(sizes) samples: only n changes from row to row."""
    cells = list(protocol_cells(d, max(sizes), gmms, queries))
    return {n: [(x[:n], *rest) for x, *rest in cells] for n in sizes}


class _UnbiasedScoreMixture(GaussianMixture):
    """A Gaussian mixture whose component scores are scaled by per-component factors (..., k)."""

    def __init__(self, weights, means, covariances, score_factors):
        super().__init__(weights, means, covariances)
        self.score_factors = torch.as_tensor(score_factors, dtype=self.means.dtype, device=self.means.device)

    def _radial(self, q):
        return -0.5 * q, self.score_factors.unsqueeze(-2).expand_as(q)


def two_gaussians_fit(x, y):
    """Table 5 reference (x (n, d), y (m, d) float64 → log f (m,), score (m, d)): split the samples at
    their mean along the top principal axis (this family's two components lie far apart along it),
    fit each half a Gaussian, and answer with the mixture of the two; each score uses the unbiased
    precision (n_k − d − 2)/(n_k − 1)·S_k⁻¹.  Given the split it is affine-equivariant, like the
    oracle, so it shows what an equivariant estimator reaches when it knows the components: the
    diagonal covariances of the family are invisible to such an estimator (any two covariances are
    diagonal after some affine map)."""
    n, d = x.shape
    centred = x - x.mean(0)
    axis = torch.linalg.eigh(centred.T @ centred)[1][:, -1]
    side = centred @ axis > 0
    halves = (x[side], x[~side])
    sizes = torch.tensor([len(h) for h in halves], dtype=x.dtype)
    mixture = _UnbiasedScoreMixture(sizes / n, torch.stack([h.mean(0) for h in halves]),
                                    torch.stack([torch.cov(h.T) for h in halves]), (sizes - d - 2) / (sizes - 1))
    return mixture.log_density_and_score(y)


def table5(estimators: dict, gmms: int, n: int = 2048, queries: int = 256):
    """Relative score error and log-density MSE of ``estimators`` ({name: f(samples, queries)}) and the
    baselines on the paper's Table 5 family (see the module doc)."""
    return evaluate_estimators({**estimators, "two-Gaussian fit (reference)": two_gaussians_fit}, 100, n, gmms,
                               n_queries=queries,
                               kde_multipliers=TABLE5_MULTIPLIERS, gmm_options=TABLE5_FAMILY)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", default=None, help="evaluate a training run's checkpoint instead of the shipped one")
    parser.add_argument("--gmms", type=int, default=32)
    parser.add_argument("--quick", action="store_true", help="8 GMMs, fewer cells (a progress check)")
    args = parser.parse_args(argv)
    torch.set_num_threads(2)
    new = candidate(args.run)
    gmms = 8 if args.quick else args.gmms
    results = {"seen": [], "large_n": [], "other_dims": [], "table5": {}}
    seen_rows, large_rows, other_rows = [], [], []
    for d in SEEN:
        old = scoreoracle.load(checkpoint=f"d{d}")
        for n in ((1024,) if args.quick else (256, 1024, 4096)):
            t = cell({"new": new.log_density_and_score, "old": old.log_density_and_score}, d, n, gmms)
            results["seen"].append({"d": d, "n": n, **t})
            seen_rows.append([d, n, f"{t['new']['rel_score']:.1f}", f"{t['old']['rel_score']:.1f}",
                              f"{t['best-h kde']['rel_score']:.1f}", f"{t['gaussian fit']['rel_score']:.1f}",
                              f"**{t['new']['ratio']:.2f}**", f"{t['old']['ratio']:.2f}",
                              f"{t['new']['ratio'] / t['old']['ratio']:.2f}",
                              f"{t['new']['logf_mse']:.3g}", f"{t['old']['logf_mse']:.3g}", f"{t['best-h kde']['logf_mse']:.3g}"])
            print(markdown_table(["d", "n", "new %", "old %", "best-h KDE %", "Gauss %", "ratio new", "ratio old",
                                  "new/old", "log f new", "log f old", "log f KDE"], seen_rows[-1:]))
    for d in (2, 10):
        sizes = (4096, 16384) if args.quick else (4096, 16384, 65536)
        for n, cells in growing_samples(d, sizes, max(2, gmms // 4)).items():
            t = with_ratios(evaluate_cells({"new": new.log_density_and_score}, cells))
            results["large_n"].append({"d": d, "n": n, **t})
            large_rows.append([d, n, f"{t['new']['rel_score']:.2f}", f"{t['best-h kde']['rel_score']:.2f}",
                               f"{t['new']['logf_mse']:.3g}", f"{t['best-h kde']['logf_mse']:.3g}"])
            print(markdown_table(["d", "n", "new %", "best-h KDE %", "log f new", "log f KDE"], large_rows[-1:]))
    for d in ((7, 32, 100) if args.quick else OTHER_DIMS):
        for n in ((1024,) if args.quick else (1024, 4096)):
            t = cell({"new": new.log_density_and_score}, d, n, gmms, queries=512)
            results["other_dims"].append({"d": d, "n": n, **t})
            other_rows.append([d, n, f"{t['new']['rel_score']:.1f}", f"{t['best-h kde']['rel_score']:.1f}",
                                f"{t['gaussian fit']['rel_score']:.1f}", f"**{t['new']['ratio']:.2f}**",
                                f"{t['new']['logf_mse']:.3g}", f"{t['best-h kde']['logf_mse']:.3g}",
                                f"{t['new']['logf_ratio']:.1f}"])
            print(markdown_table(["d", "n", "new %", "best-h KDE %", "Gauss %", "ratio", "log f new", "log f KDE",
                                  "log f ratio"], other_rows[-1:]))
    t5 = table5({"DiScoFormer": new.log_density_and_score}, 4 if args.quick else 16)
    results["table5"] = t5
    t5_rows = [[name, f"{r['rel_score']:.2f}", f"{r['logf_mse']:.3g}"] for name, r in t5.items()]
    ratio_s = t5["best-h kde"]["rel_score"] / t5["DiScoFormer"]["rel_score"]
    ratio_f = t5["best-h kde"]["logf_mse"] / t5["DiScoFormer"]["logf_mse"]
    print(markdown_table(["method", "rel. score error %", "log f MSE"], t5_rows), f"ratios {ratio_s:.2f} / {ratio_f:.1f}")
    if args.quick or args.run:
        return results
    OUT.mkdir(exist_ok=True)
    (OUT / "dimensions.json").write_text(json.dumps(results, indent=1))
    body = ("## One oracle for every dimension\n\n"
            f"Machine: {machine_note()}. Candidate: {new!r}. Paper Table 2 protocol ({gmms} GMMs per cell, "
            "1024 fresh queries each; 512 at large n and at the other d); every method on the same draws.  "
            "'old' is the per-dimension checkpoint of that d; ratio = best-h KDE / model relative score error.\n\n"
            "Dimensions with a per-dimension checkpoint:\n\n"
            + markdown_table(["d", "n", "new %", "old %", "best-h KDE %", "Gauss %", "ratio new", "ratio old",
                              "new/old", "log f MSE new", "log f MSE old", "log f MSE best-h"], seen_rows)
            + f"\n\nLarge n (the default settings; {max(2, gmms // 4)} GMMs and 512 queries per d, the rows nested "
              "prefixes of one draw, so only n changes):\n\n"
            + markdown_table(["d", "n", "new %", "best-h KDE %", "log f MSE new", "log f MSE best-h"], large_rows)
            + "\n\nDimensions without a per-dimension checkpoint:\n\n"
            + markdown_table(["d", "n", "new %", "best-h KDE %", "Gauss %", "ratio", "log f MSE new",
                              "log f MSE best-h", "log f ratio"], other_rows)
            + "\n\nPaper Table 5 (d = 100, two-component diagonal GMMs, n = 2048, 256 queries, 16 GMMs; best-h "
              "KDE: the best of 13 bandwidths, 0.3–3× Scott's, by the true error; on the same draws the ratio of "
              "relative score errors is the ratio of score MSEs):\n\n"
            + markdown_table(["method", "rel. score error %", "log f MSE"], t5_rows)
            + f"\n\nRatios best-h KDE / DiScoFormer: score {ratio_s:.2f}×, log-density {ratio_f:.1f}× "
              "(paper: 6.5×, 37.5×).")
    write_section("dimensions", body)
    return results


if __name__ == "__main__":
    main()
