"""numba all-pairs kernels.  Parallel over target particles (``prange``), each thread owns its
output row and accumulates in scalars/private arrays: no scatter-adds, no races.

Inputs are float64 and structure-of-arrays where it helps the inner loop: ``xt`` is (d, n).
``fastmath`` is limited to reassociation, contraction and approximate reciprocals (no
``nnan``/``ninf``), so NaN/inf still propagate and are caught by the solvers' finiteness checks.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

FAST = {"reassoc", "contract", "arcp"}


@njit(parallel=True, fastmath=FAST, cache=True)
def landau_velocity(vt, st, m, gamma, delta2, C):
    """Landau particle velocity and entropy production for particles of masses m (Σm = 1).

    U_p = −C Σ_q m_q w(z) (|z|² Δs − (z·Δs) z),  z = v_p − v_q, Δs = s_p − s_q,
    w(z) = (|z|² + δ²)^{γ/2}  (δ = 0 and γ = 0 give Maxwell molecules exactly).

    vt, st: (d, n) velocities and scores; m: (n,).  Returns U (n, d) and the per-particle entropy
    production e_p = −(C/2) m_p Σ_q m_q w(z)(|z|²|Δs|² − (z·Δs)²), whose sum estimates d/dt ∫f log f.
    Momentum Σ_p m_p U_p is conserved exactly (the pair terms are antisymmetric).

    Per target p the pair quantities |z|², z·Δs, |Δs|² are built component by component in
    contiguous scratch rows, so every inner loop runs over q and vectorises for any d.
    """
    d, n = vt.shape
    out = np.empty((n, d))
    ent = np.empty(n)
    maxwell = gamma == 0.0 and delta2 == 0.0
    half_gamma = 0.5 * gamma
    for p in prange(n):
        z2 = np.zeros(n)
        zds = np.zeros(n)
        ds2 = np.zeros(n)
        for k in range(d):
            vp = vt[k, p]
            sp = st[k, p]
            for q in range(n):
                z = vp - vt[k, q]
                ds = sp - st[k, q]
                z2[q] += z * z
                zds[q] += z * ds
                ds2[q] += ds * ds
        e = 0.0
        if maxwell:  # fold the masses into z2 and zds for the velocity pass
            for q in range(n):
                e += m[q] * (z2[q] * ds2[q] - zds[q] * zds[q])
                z2[q] *= m[q]
                zds[q] *= m[q]
        else:  # fold the collision weight w(z) and the masses
            for q in range(n):
                w = m[q] * (z2[q] + delta2) ** half_gamma
                e += w * (z2[q] * ds2[q] - zds[q] * zds[q])
                z2[q] *= w
                zds[q] *= w
        for k in range(d):
            vp = vt[k, p]
            sp = st[k, p]
            acc = 0.0
            for q in range(n):
                acc += z2[q] * (sp - st[k, q]) - zds[q] * (vp - vt[k, q])
            out[p, k] = -C * acc
        ent[p] = -0.5 * C * m[p] * e
    return out, ent


@njit(parallel=True, fastmath=FAST, cache=True)
def gaussian_log_masses(qt, xt, log_w, inv_eps):
    """log M_i, M_i = Σ_j w_j exp(−|q_i − x_j|²·inv_eps), for queries qt (d, m), samples xt (d, n) and
    log-weights log_w (n,) (−inf for weight 0): a running log-sum-exp, so a query far from every
    sample (all terms below float64's range) still gets its finite log M."""
    d, m = qt.shape
    n = xt.shape[1]
    out = np.empty(m)
    for i in prange(m):
        top, acc = -math.inf, 0.0
        for j in range(n):
            if log_w[j] == -math.inf:
                continue
            r2 = 0.0
            for k in range(d):
                z = qt[k, i] - xt[k, j]
                r2 += z * z
            e = log_w[j] - r2 * inv_eps
            if e > top:
                acc = acc * math.exp(top - e) + 1.0
                top = e
            else:
                acc += math.exp(e - top)
        out[i] = top + math.log(acc)
    return out


@njit(parallel=True, fastmath=FAST, cache=True)
def blob_score(qt, xt, log_w, log_sample_masses, log_query_masses, inv_eps):
    """Blob score s_i = −2·inv_eps Σ_j w_j K_ij (q_i − x_j)(1/M(q_i) + 1/M_j), K = exp(−|q−x|²·inv_eps).

    Carrillo–Craig–Patacchini: the gradient of the mollified entropy's first variation, for
    samples of weights w (Σw = 1; log-weights log_w).  Each w_j K_ij / M is formed as one exponential of log-masses
    (:func:`gaussian_log_masses`), so it stays finite however far q_i is.  Returns (m, d).
    """
    d, m = qt.shape
    n = xt.shape[1]
    out = np.empty((m, d))
    for i in prange(m):
        acc = np.zeros(d)
        for j in range(n):
            if log_w[j] == -math.inf:
                continue
            r2 = 0.0
            for k in range(d):
                z = qt[k, i] - xt[k, j]
                r2 += z * z
            e = log_w[j] - r2 * inv_eps
            c = math.exp(e - log_query_masses[i]) + math.exp(e - log_sample_masses[j])
            for k in range(d):
                acc[k] += c * (qt[k, i] - xt[k, j])
        for k in range(d):
            out[i, k] = -2.0 * inv_eps * acc[k]
    return out


@njit(parallel=True, fastmath=FAST, cache=True)
def landau_velocity_batched(vt, st, m, batch_of, starts, kappa, gamma, delta2, C):
    """Random-batch Landau velocity and entropy production: pair sums only inside each batch.

    The particles come gathered batch by batch: batch b holds particles ``starts[b]:starts[b+1]``
    and particle p belongs to batch ``batch_of[p]``.  U_p = −C κ_b Σ_{q∈b} m_q w(z)(|z|² Δs − (z·Δs) z),
    with κ_b the batch's rescaling (the same for every pair of a batch, so momentum is conserved exactly).  Returns
    U (n, d) and the per-particle entropy production.  Cost O(n · batch size).
    """
    d, n = vt.shape
    out = np.empty((n, d))
    ent = np.empty(n)
    maxwell = gamma == 0.0 and delta2 == 0.0
    half_gamma = 0.5 * gamma
    for p in prange(n):
        b = batch_of[p]
        acc = np.zeros(d)
        e = 0.0
        for q in range(starts[b], starts[b + 1]):
            z2 = 0.0
            zds = 0.0
            ds2 = 0.0
            for k in range(d):
                z = vt[k, p] - vt[k, q]
                ds = st[k, p] - st[k, q]
                z2 += z * z
                zds += z * ds
                ds2 += ds * ds
            w = m[q] if maxwell else m[q] * (z2 + delta2) ** half_gamma
            e += w * (z2 * ds2 - zds * zds)
            for k in range(d):
                acc[k] += w * (z2 * (st[k, p] - st[k, q]) - zds * (vt[k, p] - vt[k, q]))
        for k in range(d):
            out[p, k] = -C * kappa[b] * acc[k]
        ent[p] = -0.5 * C * kappa[b] * m[p] * e
    return out, ent
