"""Score-based particle solver for the homogeneous Landau equation of plasma physics.

    ∂f/∂t = ∇·∫ A(v − w)(∇log f(v) − ∇log f(w)) f(v) f(w) dw,   A(z) = C |z|^γ (|z|² I − z zᵀ)

Particles move with U_p = −(C/n) Σ_q |z|^γ (|z|² I − z zᵀ)(ŝ_p − ŝ_q), z = v_p − v_q, where ŝ
comes from the oracle.  Momentum is conserved exactly (antisymmetry) for any score; energy is
conserved by the continuous flow (A(z)z = 0), so its drift measures time-stepping error.
γ = 0: Maxwell molecules; γ = −3: Coulomb, regularised as |z|^γ → (|z|² + δ²)^{γ/2}.
"""

from __future__ import annotations

import numpy as np

from ._kernels import landau_velocity
from .fokker_planck import ParticleScores
from .particles import check_particles, integrate


def landau_field(v, s, gamma=0.0, C=1.0, regularization=0.0):
    """Landau velocities U (n, d) and entropy production d/dt ∫f log f (float) for particles v
    and scores s, both (n, d)."""
    U, ent = landau_velocity(np.ascontiguousarray(v.T), np.ascontiguousarray(s.T), float(gamma),
                             float(regularization) ** 2, float(C))
    return U, float(ent.sum())


def simulate_landau(particles, oracle, gamma=0.0, C=1.0 / 24, t_span=(0.0, 1.0), dt=0.01, method="heun", *,
                    regularization=None, oracle_samples=None, seed=0, save_every=None, checkpoint=None,
                    checkpoint_every=50, resume=False, progress=False):
    """Deterministic score-based particle solution of the homogeneous Landau equation.

    Parameters
    ----------
    particles : (n, d) initial velocities, i.i.d. from f(t_start), d ≥ 2.
    oracle : any object with ``score(samples, queries=None)``.
    gamma : collision exponent (0 Maxwell, −3 Coulomb); C : collision constant.
    regularization : δ in (|z|² + δ²)^{γ/2}; default 0 for γ ≥ 0 and 1e-3 for γ < 0.
    Other parameters as :func:`solvers.simulate_fokker_planck`.

    Returns
    -------
    Trajectory with diagnostics ``momentum`` (T, d), ``energy`` (T,) = mean|v|²/2,
    ``covariance`` (T, d, d), ``fourth_moment`` (T,) = mean|v|⁴, ``fisher`` (T,) = mean‖ŝ‖² and
    ``entropy_production`` (T,) — the particle estimate of d/dt ∫f log f (≤ 0).
    """
    v0 = check_particles(particles)
    d = v0.shape[1]
    if d < 2:
        raise ValueError("the Landau equation needs d ≥ 2 (its collision kernel vanishes in d = 1)")
    if not (np.isfinite(gamma) and np.isfinite(C) and C > 0):
        raise ValueError(f"gamma must be finite and C positive, got gamma={gamma!r}, C={C!r}")
    delta = (1e-3 if gamma < 0 else 0.0) if regularization is None else float(regularization)
    if gamma < 0 and delta <= 0:
        raise ValueError("gamma < 0 needs a positive regularization δ")
    rng = np.random.default_rng(seed)
    scores = ParticleScores(oracle, oracle_samples, rng)

    def velocity(v, t):
        return landau_field(v, scores(v, t), gamma, C, delta)[0]

    def diagnostics(v, t):
        s = scores(v, t)
        sq = (v * v).sum(1)
        return {"momentum": v.mean(0), "energy": 0.5 * sq.mean(), "covariance": np.cov(v.T),
                "fourth_moment": (sq * sq).mean(), "fisher": (s * s).sum(1).mean(),
                "entropy_production": landau_field(v, s, gamma, C, delta)[1]}

    return integrate(v0, velocity, diagnostics, t_span=t_span, dt=dt, method=method, save_every=save_every,
                     checkpoint=checkpoint, checkpoint_every=checkpoint_every, resume=resume,
                     progress=progress, desc="landau", rng_state=rng)
