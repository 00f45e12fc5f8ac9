"""Landau collision sums of a particle cloud: all n² pairs, or pairs inside random batches.

    U_p = −C Σ_q m_q w(z)(|z|² Δs − (z·Δs) z),   z = v_p − v_q, Δs = ŝ_p − ŝ_q, w(z) = (|z|² + δ²)^{γ/2}

The random batch method (Jin, Li & Liu, J. Comput. Phys. 400 (2020); for Landau: Carrillo, Jin
& Tang, and Du & Li, arXiv:2408.16252) keeps only the pairs inside random batches of p particles:
O(n·p) instead of O(n²), with momentum conserved exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from scoreoracle.validation import check_points

from ._kernels import landau_velocity, landau_velocity_batched
from .cloud import check_particle_weights

COLLISIONS = ("full", "random_batch")
BATCH_STREAM = 1  # random stream of the batch partitions (stream 0 draws oracle subsets)


@dataclass(frozen=True)
class RandomBatches:
    """A partition of n particles into batches: batch b is ``members[starts[b]:starts[b+1]]``, and
    ``kappa[b]`` = (n − 1)/(n_b − 1) rescales its pair sums: a pair shares a batch with probability
    (n_b − 1)/(n − 1) whatever the masses, so the rescaled batch sum is an unbiased estimate of the
    full sum (and κ is one number per batch, so momentum stays exact)."""

    members: np.ndarray
    starts: np.ndarray
    kappa: np.ndarray

    @classmethod
    def draw(cls, rng: np.random.Generator, n: int, size: int) -> "RandomBatches":
        """A random partition of n particles into batches of ``size`` (the last one takes the rest)."""
        members = rng.permutation(n)
        n_batches = max(1, n // size)  # the remainder joins the last batch (no batch of one)
        starts = np.minimum(np.arange(n_batches + 1) * size, n)
        starts[-1] = n
        kappa = (n - 1) / (np.diff(starts) - 1.0)
        return cls(members, starts, kappa)


def check_collision_parameters(gamma, C, regularization) -> tuple:
    """(γ, C, δ) as floats: γ finite, C positive, δ finite and ≥ 0 — positive when γ < 0, where the
    kernel (|z|² + δ²)^{γ/2} is infinite at z = 0 (a particle's pair with itself)."""
    gamma, C, delta = float(gamma), float(C), float(regularization)
    if not (np.isfinite(gamma) and np.isfinite(C) and C > 0):
        raise ValueError(f"gamma must be finite and C positive, got gamma={gamma!r}, C={C!r}")
    if not (np.isfinite(delta) and delta >= 0):
        raise ValueError(f"the regularization δ must be finite and non-negative, got {delta!r}")
    if gamma < 0 and delta == 0:
        raise ValueError("gamma < 0 needs a positive regularization δ")
    return gamma, C, delta


def energy_drift(energy: float, initial_energy: float, thermal_energy: float) -> str | None:
    """The Landau equation conserves energy: a drift beyond half the initial thermal energy is no
    step error but a diverging run — said in words, or None."""
    drift = abs(float(energy) - initial_energy)
    if drift <= 0.5 * thermal_energy:
        return None
    return (f"an energy drift of {drift:.3g} (the Landau equation conserves energy; the initial thermal energy "
            f"is {thermal_energy:.3g})")


def landau_field(v, s, gamma=0.0, C=1.0, regularization=0.0, weights=None, batches: RandomBatches | None = None):
    """Landau velocities U (n, d) and entropy production d/dt ∫f log f (float) for particles v
    and scores s, both (n, d), with optional masses ``weights`` (n,); with ``batches`` the pair
    sums run inside the random batches only."""
    v = check_points(v, "v").numpy()
    s = check_points(s, "s").numpy()
    if s.shape != v.shape:
        raise ValueError(f"scores have shape {s.shape} but particles {v.shape}")
    m = check_particle_weights(weights, *v.shape)
    return _collisions(v, s, m, *check_collision_parameters(gamma, C, regularization), batches)


def _collisions(v, s, m, gamma: float, C: float, delta: float, batches: RandomBatches | None):
    """The numba pair sums behind :func:`landau_field`, without input checks (inside a run a
    non-finite score must surface as a non-finite velocity, which the run layer reports)."""
    m = np.full(len(v), 1.0 / len(v)) if m is None else m
    if batches is None:
        U, ent = landau_velocity(np.ascontiguousarray(v.T), np.ascontiguousarray(s.T), m, gamma, delta * delta, C)
        return U, float(ent.sum())
    # gather the particles batch by batch, so every batch is contiguous in memory, then scatter back
    order = batches.members
    U_sorted, ent = landau_velocity_batched(np.ascontiguousarray(v[order].T), np.ascontiguousarray(s[order].T),
                                            m[order], np.repeat(np.arange(len(batches.kappa)), np.diff(batches.starts)),
                                            batches.starts, batches.kappa, gamma, delta * delta, C)
    U = np.empty_like(U_sorted)
    U[order] = U_sorted
    return U, float(ent.sum())
