"""Score-based particle solver for the homogeneous Landau equation of plasma physics.

    ∂f/∂t = ∇·∫ A(v − w)(∇log f(v) − ∇log f(w)) f(v) f(w) dw,   A(z) = C |z|^γ (|z|² I − z zᵀ)

Particles of masses m_q (uniform 1/n by default) move with
U_p = −C Σ_q m_q |z|^γ (|z|² I − z zᵀ)(ŝ_p − ŝ_q), z = v_p − v_q, where ŝ comes from the oracle.
Momentum Σ m_p v_p is conserved exactly (antisymmetry) for any score; energy is conserved by the
continuous flow (A(z)z = 0), so its drift measures time-stepping error.  γ = 0: Maxwell
molecules; γ = −3: Coulomb, regularised as |z|^γ → (|z|² + δ²)^{γ/2}.

``collisions="random_batch"`` replaces the O(n²) pair sum by sums inside random batches of p
particles (:mod:`solvers.collisions`), drawn once per step and shared by every stage of the step.
"""

from __future__ import annotations

import math

import numpy as np

from scoreoracle.distributed import is_dask_array
from scoreoracle.validation import check_positive_int

from .cloud import CloudScores, check_particle_weights, kinetic_energies, weighted_moments
from .collisions import BATCH_STREAM, COLLISIONS, RandomBatches, _collisions, check_collision_parameters, energy_drift
from .run import ParticleProblem, RunOptions, check_particles, integrate, step_rng

class LandauProblem(ParticleProblem):
    """The collision field; its kernel pass gives the velocity and the entropy production at once."""

    def __init__(self, scores: CloudScores, gamma, C, delta, energies: tuple, batch_size: int | None = None):
        self.scores, self.gamma, self.C, self.delta = scores, gamma, C, delta
        self.batch_size, self.batches = batch_size, None
        self.energy, self.thermal_energy = energies  # of the initial velocities

    def begin_step(self, step, t, v):
        self.scores.begin_step(step)
        if self.batch_size is not None:  # one partition for every stage of the step
            self.batches = RandomBatches.draw(step_rng(self.scores.seed, step, BATCH_STREAM), len(v), self.batch_size)

    def field(self, v, t):
        s = self.scores(v, t)
        U, ent = _collisions(v, s, self.scores.weights, self.gamma, self.C, self.delta, self.batches)
        return {"velocity": U, "score": s, "entropy_production": ent}

    def diagnostics(self, v, t, field):
        w = self.scores.weights
        sq = (v * v).sum(1)
        with np.errstate(over="ignore"):  # a diverging score shows as inf here, not as a warning
            s2 = (field["score"] ** 2).sum(1)
        mean, cov = weighted_moments(v, w)

        def average(a):
            return a.mean() if w is None else w @ a
        return {"momentum": mean, "energy": 0.5 * average(sq), "covariance": cov,
                "fourth_moment": average(sq * sq), "fisher": average(s2),
                "entropy_production": field["entropy_production"]}

    def broken_invariant(self, diagnostics):
        return energy_drift(diagnostics["energy"], self.energy, self.thermal_energy)

    def fingerprint(self):
        return {"solver": "landau", **self.scores.fingerprint(), "gamma": self.gamma, "C": self.C,
                "delta": self.delta, "batch_size": self.batch_size}


def simulate_landau(particles, oracle, gamma=0.0, C=1.0 / 24, t_span=(0.0, 1.0), dt=0.01, method=None, *,
                    regularization=None, weights=None, collisions="full", batch_size=None, options=None,
                    **run_options):
    """Deterministic score-based particle solution of the homogeneous Landau equation.

    Parameters
    ----------
    particles : (n, d) initial velocities, i.i.d. from f(t_start) (or from a proposal, with ``weights``), d ≥ 2.
    oracle : a score oracle (:class:`scoreoracle.contract.ScoreOracle`) or an analytic one with ``at_time``.
    gamma : collision exponent (0 Maxwell, −3 Coulomb); C : collision constant.
    regularization : δ in (|z|² + δ²)^{γ/2} (velocity units); default 0 for γ ≥ 0 and, for γ < 0,
        1e-3 × the initial thermal speed √(mean|v − v̄|²) (mass-weighted), so that the default run
        does not depend on the velocity units.
    weights : (n,) particle masses (importance weights), constant in time, kept (normalised) in
        the trajectory.
    collisions : "full" (all n² pairs) or "random_batch" (pairs inside random batches of
        ``batch_size`` particles, reshuffled every step: O(n·batch_size)).

    Particles given as a Dask array (rows chunked; equal masses, no ``weights``) run sharded across
    the workers: see :mod:`solvers.distributed` (snapshots go to a Zarr ``checkpoint`` folder; pair
    sums stay inside each shard, in random batches with ``collisions="random_batch"``).
    options : a :class:`solvers.RunOptions`, or its fields as keywords (save_every, checkpoint,
        checkpoint_every, resume, overwrite, oracle_samples, seed, progress, explode_factor,
        reshuffle_every, on_step).

    Returns
    -------
    Trajectory with diagnostics ``momentum`` (T, d), ``energy`` (T,) = mean|v|²/2,
    ``covariance`` (T, d, d) = mean (v − v̄)(v − v̄)ᵀ (so tr = 2·energy − |momentum|²),
    ``fourth_moment`` (T,) = mean|v|⁴, ``fisher`` (T,) = mean‖ŝ‖² and ``entropy_production`` (T,) —
    the particle estimate of d/dt ∫f log f (≤ 0); means are mass-weighted.
    """
    options = RunOptions.for_call(method, options, run_options)
    distributed = is_dask_array(particles)
    v0 = (particles if particles.ndim != 1 else particles[:, None]) if distributed else check_particles(particles)
    n, d = v0.shape
    if d < 2:
        raise ValueError("the Landau equation needs d ≥ 2 (its collision kernel vanishes in d = 1)")
    masses = None if distributed else check_particle_weights(weights, n, d)
    energies = kinetic_energies(v0, masses)  # (energy, thermal energy) of the initial velocities
    if regularization is None:  # γ < 0: 1e-3 × the initial thermal speed √(mean|v − v̄|²) (no units of its own)
        regularization = 0.0 if float(gamma) >= 0 else 1e-3 * math.sqrt(2 * energies[1])
    gamma, C, delta = check_collision_parameters(gamma, C, regularization)
    if collisions not in COLLISIONS:
        raise ValueError(f"collisions must be one of {COLLISIONS}, got {collisions!r}")
    if collisions == "random_batch":
        batch_size = check_positive_int(batch_size, "batch_size")
        if batch_size < 2:
            raise ValueError(f"batch_size must be at least 2 (a pair), got {batch_size}")
    elif batch_size is not None:
        raise ValueError("batch_size applies to collisions='random_batch' only")
    if distributed:
        from .distributed import ShardPhysics, simulate_distributed
        if weights is not None:
            raise ValueError("weights are not supported for particles given as a Dask array")
        physics = ShardPhysics("landau", gamma, C, delta, batch_size, seed=options.seed)
        return simulate_distributed(v0, oracle, physics, options, t_span=t_span, dt=dt, energies=energies)
    scores = CloudScores(oracle, masses, options, n, d)
    problem = LandauProblem(scores, gamma, C, delta, energies, batch_size)
    return integrate(v0, problem, t_span=t_span, dt=dt, options=options, weights=scores.weights, desc="landau")
