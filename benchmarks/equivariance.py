"""Equivariance errors (paper Table 1): relative MSE of the score after a transform,
Σ‖s_T − s_expected‖²/Σ‖s‖², and the largest |Δ log f|, over random GMM sample sets.

Permutation, translation and (an)isotropic scaling are exact by construction for every core
(whitening, no positional encodings); rotation, reflection and general affine maps are exact for the
equivariant core and learned from augmentation by the per-dimension checkpoints (paper: rotation
5e-4, full affine 1e-4).

    python benchmarks/equivariance.py [--trials 20]
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

import scoreoracle
from scoreoracle.distributions import random_gmm, random_rotations

from _common import markdown_table, write_section

ALL_D = "equivariant"  # the shipped all-dimension checkpoint


def transforms(d, rng, g):
    rot = random_rotations(1, d, g)[0].numpy()
    scale = np.exp(rng.uniform(-2, 2, size=d))
    shift = rng.normal(size=d) * 100
    mirror = np.eye(d) - 2 * np.outer(*(2 * [rot[0]]))  # reflection across a random hyperplane
    general = rng.normal(size=(d, d))  # a general invertible map (shear and all)
    return {  # name: (map on points, expected score map s ↦ s', log-density offset)
        "permutation": (lambda x: x[::-1].copy(), lambda s: s[::-1], 0.0),
        "translation": (lambda x: x + shift, lambda s: s, 0.0),
        "isotropic scaling": (lambda x: 7.0 * x, lambda s: s / 7.0, -d * np.log(7.0)),
        "anisotropic scaling": (lambda x: x * scale, lambda s: s / scale, -np.log(scale).sum()),
        "rotation": (lambda x: x @ rot.T, lambda s: s @ rot.T, 0.0),
        "full affine": (lambda x: (x @ rot.T) * scale + shift, lambda s: (s @ rot.T) / scale, -np.log(scale).sum()),
        "reflection": (lambda x: x @ mirror, lambda s: s @ mirror, 0.0),
        "general affine": (lambda x: x @ general.T + shift, lambda s: s @ np.linalg.inv(general),
                           -np.linalg.slogdet(general)[1]),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--n", type=int, default=1024)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    g = torch.Generator().manual_seed(0)
    rows = []
    cases = [(f"d{d}", d, scoreoracle.load(checkpoint=f"d{d}")) for d in (2, 10)]
    cases += [(ALL_D, d, scoreoracle.load(checkpoint=ALL_D)) for d in (2, 10, 100)]
    for label, d, oracle in cases:
        errs = {}
        for _ in range(args.trials):
            x = random_gmm(1, d, generator=g).sample(args.n, g)[0].numpy()
            log_f, s = oracle.log_density_and_score(x)
            for name, (fx, fs, offset) in transforms(d, rng, g).items():
                log_f2, s2 = oracle.log_density_and_score(fx(x))
                expected_s = fs(s)
                expected_f = (log_f[::-1] if name == "permutation" else log_f) + offset
                e = errs.setdefault(name, [0.0, 0.0, 0.0])
                e[0] += ((s2 - expected_s) ** 2).sum()
                e[1] += (expected_s ** 2).sum()
                e[2] = max(e[2], np.abs(log_f2 - expected_f).max())
        rows += [[label, d, name, f"{e[0] / e[1]:.1e}", f"{e[2]:.1e}"] for name, e in errs.items()]
        print(rows[-len(errs):], flush=True)
    write_section("equivariance", "## Equivariance (paper Table 1)\n\nRelative score MSE after the transform "
                  f"and max |Δ log f|, {args.trials} random GMM sample sets (n = {args.n}) per d; float32 cores "
                  f"(whitening in float64); 'dN' = the per-dimension checkpoint, '{ALL_D}' = the all-dimension core. "
                  "Paper: 0 for all but rotation (5e-4) and full affine (1e-4).\n\n"
                  + markdown_table(["oracle", "d", "transform", "relative score MSE", "max |Δ log f|"], rows))


if __name__ == "__main__":
    main()
