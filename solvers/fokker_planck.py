"""Deterministic probability-flow particles for Fokker–Planck equations.

    ∂ρ/∂t = −∇·(b ρ) + ∇·(D ∇ρ)   ⇔   dX/dt = b(X, t) − D·∇log ρ_t(X)

The score ∇log ρ_t is asked of the oracle on the current particle cloud at every stage of the
time stepper; the particles themselves are the oracle's samples.
"""

from __future__ import annotations

import numpy as np

from .particles import check_particles, integrate


def oracle_score(oracle, x, t, oracle_samples=None, rng=None):
    """Score of the particle cloud x (n, d) at x and time t, float64 (n, d).

    An oracle with an ``at_time(t)`` method (an analytic reference such as
    :class:`solvers.exact.AnalyticFlowOracle`) is first specialised to time t.  With
    ``oracle_samples`` the oracle sees a random subset of that many particles as its samples
    (O(n·m) instead of O(n²)), drawn from ``rng``.
    """
    if hasattr(oracle, "at_time"):
        oracle = oracle.at_time(t)
    samples = x
    if oracle_samples is not None and oracle_samples < len(x):
        samples = x[rng.choice(len(x), oracle_samples, replace=False)]
        s = oracle.score(samples, x)
    else:
        s = oracle.score(x)
    s = np.asarray(s, dtype=np.float64)
    if s.shape != x.shape:
        raise ValueError(f"the oracle returned scores of shape {s.shape} for particles of shape {x.shape}")
    return s


class ParticleScores:
    """``scores(x, t)``: the oracle's score of the particle cloud, remembering the last state so
    a snapshot's diagnostics and the next step's first stage share one oracle call.

    The memory is used only without subsampling (then the oracle is a deterministic function of
    the state, so a resumed run, which starts with an empty memory, is bit-identical)."""

    def __init__(self, oracle, oracle_samples=None, rng=None):
        self.oracle, self.oracle_samples, self.rng = oracle, oracle_samples, rng
        self._last = None

    def __call__(self, x, t):
        last = self._last
        if last is not None and t == last[0] and np.array_equal(x, last[1]):
            return last[2]
        s = oracle_score(self.oracle, x, t, self.oracle_samples, self.rng)
        if self.oracle_samples is None:
            self._last = (t, x.copy(), s)
        return s


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


def simulate_fokker_planck(particles, oracle, drift=None, diffusion=1.0, t_span=(0.0, 1.0), dt=0.01,
                           method="heun", *, potential_gradient=None, oracle_samples=None, seed=0,
                           save_every=None, checkpoint=None, checkpoint_every=50, resume=False,
                           progress=False):
    """Probability-flow particle solution of a Fokker–Planck equation.

    Parameters
    ----------
    particles : (n, d) initial particles, i.i.d. from ρ(t_start).
    oracle : any object with ``score(samples, queries=None)`` (DiScoFormer, KDE, blob, exact…).
    drift : callable ``drift(x (n, d), t) -> (n, d)``, or None for b = 0.
    potential_gradient : alternatively ∇V as ``grad_V(x) -> (n, d)``; the drift is then −∇V.
    diffusion : scalar D or constant (d, d) matrix (symmetric positive semi-definite).
    t_span, dt, method : time interval, step (shrunk to divide t_span evenly), "euler" | "heun" | "rk4".
    oracle_samples, seed : give the oracle a random subset of this many particles (seeded).
    save_every, checkpoint, checkpoint_every, resume, progress : see :func:`solvers.particles.integrate`.

    Returns
    -------
    Trajectory with diagnostics ``mean`` (T, d), ``covariance`` (T, d, d) and ``fisher`` (T,)
    (the plug-in Fisher information mean‖ŝ‖² of the snapshot).
    """
    x0 = check_particles(particles)
    d = x0.shape[1]
    if drift is not None and potential_gradient is not None:
        raise ValueError("give either drift or potential_gradient, not both")
    if potential_gradient is not None:
        def drift(x, t):
            return -np.asarray(potential_gradient(x), dtype=np.float64)
    if drift is not None and not callable(drift):
        raise TypeError("drift must be a callable drift(x, t) -> (n, d)")
    D = _diffusion_matrix(diffusion, d)
    rng = np.random.default_rng(seed)
    scores = ParticleScores(oracle, oracle_samples, rng)

    def velocity(x, t):
        v = -scores(x, t) @ D.T
        if drift is not None:
            b = np.asarray(drift(x, t), dtype=np.float64)
            if b.shape != x.shape:
                raise ValueError(f"drift returned shape {b.shape}, expected {x.shape}")
            v += b
        return v

    def diagnostics(x, t):
        s = scores(x, t)
        return {"mean": x.mean(0), "covariance": np.cov(x.T).reshape(d, d), "fisher": (s * s).sum(1).mean()}

    return integrate(x0, velocity, diagnostics, t_span=t_span, dt=dt, method=method, save_every=save_every,
                     checkpoint=checkpoint, checkpoint_every=checkpoint_every, resume=resume,
                     progress=progress, desc="fokker-planck", rng_state=rng)
