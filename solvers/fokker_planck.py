"""Deterministic probability-flow particles for Fokker–Planck equations.

    ∂ρ/∂t = −∇·(b ρ) + ∇·(D ∇ρ)   ⇔   dX/dt = b(X, t) − D·∇log ρ_t(X)

The score ∇log ρ_t is asked of the oracle on the current particle cloud at every stage of the
time stepper; the particles themselves (with their masses, if weighted) are the oracle's samples.
"""

from __future__ import annotations

import numpy as np

from scoreoracle.distributed import is_dask_array
from scoreoracle.fingerprint import fingerprint

from .cloud import CloudScores, check_particle_weights, weighted_moments
from .run import ParticleProblem, RunOptions, check_particles, drift_velocity, integrate


def _diffusion_matrix(diffusion, d):
    D = np.asarray(diffusion, dtype=np.float64)
    if D.ndim == 0:
        if not (np.isfinite(D) and D >= 0):
            raise ValueError(f"diffusion must be a non-negative scalar or a (d, d) matrix, got {diffusion!r}")
        return D * np.eye(d)
    if D.shape != (d, d) or not np.isfinite(D).all():
        raise ValueError(f"diffusion must be a scalar or a finite ({d}, {d}) matrix, got shape {D.shape}")
    if np.linalg.eigvalsh(0.5 * (D + D.T)).min() < -1e-12:
        raise ValueError("diffusion matrix must be positive semi-definite")
    return D


class FokkerPlanckProblem(ParticleProblem):
    def __init__(self, scores: CloudScores, drift, D):
        self.scores, self.drift, self.D = scores, drift, D

    def begin_step(self, step, t, x):
        self.scores.begin_step(step)

    def field(self, x, t):
        s = self.scores(x, t)
        v = -s @ self.D.T
        if self.drift is not None:
            v = v + drift_velocity(self.drift, x, t)
        return {"velocity": v, "score": s}

    def diagnostics(self, x, t, field):
        mean, cov = weighted_moments(x, self.scores.weights)
        s, w = field["score"], self.scores.weights
        with np.errstate(over="ignore"):  # a diverging score shows as inf here, not as a warning
            sq = (s * s).sum(1)
        return {"mean": mean, "covariance": cov, "fisher": sq.mean() if w is None else w @ sq}

    def fingerprint(self):
        return {"solver": "fokker-planck", **self.scores.fingerprint(), "drift": fingerprint(self.drift),
                "diffusion": self.D.tolist()}


def simulate_fokker_planck(particles, oracle, drift=None, diffusion=1.0, t_span=(0.0, 1.0), dt=0.01,
                           method=None, *, potential_gradient=None, weights=None, options=None, **run_options):
    """Probability-flow particle solution of a Fokker–Planck equation.

    Parameters
    ----------
    particles : (n, d) initial particles, i.i.d. from ρ(t_start) (or from a proposal, with ``weights``).
    oracle : a score oracle (:class:`scoreoracle.contract.ScoreOracle`: DiScoFormer, KDE, blob,
        exact…) or an analytic time-dependent one with ``at_time(t)``.
    drift : callable ``drift(x (n, d), t) -> (n, d)``, or None for b = 0.
    potential_gradient : alternatively ∇V as ``grad_V(x) -> (n, d)``; the drift is then −∇V.
    diffusion : scalar D or constant (d, d) matrix (symmetric positive semi-definite).
    t_span, dt, method : time interval, step (shrunk to divide t_span evenly), "euler" | "heun" | "rk4"
        (None: ``options.method`` when given, else "heun").
    weights : (n,) particle masses (importance weights), carried unchanged along the flow and kept
        (normalised) in the trajectory; not for particles given as a Dask array (sharded runs,
        :mod:`solvers.distributed`, carry equal masses).
    options : a :class:`solvers.RunOptions`, or its fields as keywords (save_every, checkpoint,
        checkpoint_every, resume, overwrite, oracle_samples, seed, progress, explode_factor,
        reshuffle_every, on_step).

    Returns
    -------
    Trajectory with diagnostics ``mean`` (T, d), ``covariance`` (T, d, d) = mean (x − x̄)(x − x̄)ᵀ
    and ``fisher`` (T,) (the plug-in Fisher information mean‖ŝ‖² of the snapshot), all
    mass-weighted (moments of the particles' empirical measure, no n − 1 correction).
    """
    options = RunOptions.for_call(method, options, run_options)
    distributed = is_dask_array(particles)
    x0 = (particles if particles.ndim != 1 else particles[:, None]) if distributed else check_particles(particles)
    n, d = x0.shape
    if drift is not None and potential_gradient is not None:
        raise ValueError("give either drift or potential_gradient, not both")
    if potential_gradient is not None:
        if not callable(potential_gradient):
            raise TypeError("potential_gradient must be a callable grad_V(x) -> (n, d)")

        def drift(x, t):
            return -np.asarray(potential_gradient(x), dtype=np.float64)
    if drift is not None and not callable(drift):
        raise TypeError("drift must be a callable drift(x, t) -> (n, d)")
    if distributed:
        from .distributed import ShardPhysics, simulate_distributed
        if weights is not None:
            raise ValueError("weights are not supported for particles given as a Dask array")
        physics = ShardPhysics("fokker-planck", drift=drift, D=_diffusion_matrix(diffusion, d), seed=options.seed)
        return simulate_distributed(x0, oracle, physics, options, t_span=t_span, dt=dt)
    scores = CloudScores(oracle, check_particle_weights(weights, n, d), options, n, d)
    problem = FokkerPlanckProblem(scores, drift, _diffusion_matrix(diffusion, d))
    return integrate(x0, problem, t_span=t_span, dt=dt, options=options, weights=scores.weights, desc="fokker-planck")
