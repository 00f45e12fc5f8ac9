"""The oracle's view of a particle cloud: each stage fits the oracle to the current particles
(or a random subset of them) once and reads their scores.

Oracles are anything satisfying :class:`scoreoracle.contract.ScoreOracle`, or a time-dependent
analytic oracle with ``at_time(t)`` returning one (:class:`solvers.exact.AnalyticFlowOracle`).
"""

from __future__ import annotations

import numpy as np

from scoreoracle.fingerprint import fingerprint
from scoreoracle.validation import check_weights

from .run import RunOptions, check_oracle_samples, oracle_fingerprint, step_rng


def check_oracle(oracle):
    """Refuse anything that is not a score oracle, naming what is missing."""
    if oracle is None:
        raise TypeError("oracle is None: pass a score oracle such as scoreoracle.load() or scoreoracle.KDEOracle()")
    if isinstance(oracle, type):
        raise TypeError(f"oracle is the class {oracle.__name__}: pass an instance, e.g. {oracle.__name__}()")
    if not (callable(getattr(oracle, "fit", None)) or callable(getattr(oracle, "at_time", None))):
        raise TypeError(f"oracle must be a score oracle (with fit(samples, weights=None) and score(samples, "
                        f"queries=None)), got {type(oracle).__name__}")
    return oracle


def cloud_score(oracle, x, t, *, weights=None, subset=None):
    """Score of the particle cloud x (n, d) at its own particles, float64 (n, d).

    ``weights`` (n,) are the particles' masses; ``subset`` an index array of the particles the
    oracle sees as its samples (all of them when None).
    """
    if hasattr(oracle, "at_time"):
        oracle = oracle.at_time(t)
    if subset is None:
        s = oracle.score(x, weights=weights)
    else:
        s = oracle.fit(x[subset], None if weights is None else weights[subset]).score(x)
    s = np.asarray(s, dtype=np.float64)
    if s.shape != x.shape:
        raise ValueError(f"the oracle returned scores of shape {s.shape} for particles of shape {x.shape}")
    return s


def check_particle_weights(weights, n: int, d: int):
    """Particle masses (n,) as a float64 array normalised to sum 1 (or None), checked as sample
    weights (:func:`scoreoracle.validation.check_weights`)."""
    w = check_weights(weights, n, d)
    return None if w is None else w.numpy()


def weighted_moments(x, w):
    """Mass-weighted mean (d,) and second central moment (d, d) of particles x (n, d) with
    normalised masses w (n,) or None: the moments of the particles' empirical measure (no n − 1
    correction), so tr Σ = 2E − |mean|² and splitting a particle into equal parts changes nothing."""
    return (x.mean(0) if w is None else w @ x), np.atleast_2d(np.cov(x.T, aweights=w, bias=True))


def kinetic_energies(v, masses=None) -> tuple:
    """(energy mean|v|²/2, thermal energy mean|v − v̄|²/2) of velocities v (n, d): numpy with
    normalised masses (n,) or None, or a Dask array (equal masses; the mean, then one pass)."""
    if hasattr(v, "compute"):
        import dask
        mean = v.mean(0).compute()
        sq, spread = dask.compute((v * v).sum(1).mean(), ((v - mean) ** 2).sum(1).mean())
        return 0.5 * float(sq), 0.5 * float(spread)
    mean, cov = weighted_moments(v, masses)
    thermal = 0.5 * float(np.trace(cov))
    return thermal + 0.5 * float(mean @ mean), thermal


class CloudScores:
    """Per-stage oracle scores of a (weighted) particle cloud, with the run's seeded subsets."""

    def __init__(self, oracle, weights, options: RunOptions, n: int, d: int):
        self.oracle, self.weights = check_oracle(oracle), weights
        self.oracle_samples = check_oracle_samples(options.oracle_samples, n, d)
        self.seed, self.rng = options.seed, None

    def begin_step(self, step):
        self.rng = step_rng(self.seed, step)

    def __call__(self, x, t):
        subset = None
        if self.oracle_samples is not None and self.oracle_samples < len(x):
            # among the particles of positive mass (massless ones add nothing to the density)
            candidates = np.arange(len(x)) if self.weights is None else np.flatnonzero(self.weights > 0)
            if self.oracle_samples < len(candidates):
                subset = np.sort(self.rng.choice(candidates, self.oracle_samples, replace=False))
            elif self.weights is not None:
                subset = candidates
        return cloud_score(self.oracle, x, t, weights=self.weights, subset=subset)

    def fingerprint(self):
        return {"oracle": oracle_fingerprint(self.oracle), "weights": fingerprint(self.weights)}
