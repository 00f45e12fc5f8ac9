import numpy as np
import pytest

from scoreoracle import KDEOracle
from solvers import landau_field, simulate_landau
from solvers.exact import BKW, AnalyticFlowOracle, landau_field_reference, maxwell_covariance


@pytest.mark.parametrize("d", [2, 3])
@pytest.mark.parametrize("gamma,delta", [(0.0, 0.0), (-3.0, 1e-2)])
def test_kernel_matches_numpy(d, gamma, delta, rng):
    v = rng.normal(size=(300, d))
    s = rng.normal(size=(300, d))
    U, ent = landau_field(v, s, gamma, 0.1, delta)
    U_ref, ent_ref = landau_field_reference(v, s, gamma, 0.1, delta, block=64)
    np.testing.assert_allclose(U, U_ref, rtol=1e-10, atol=1e-12)
    assert ent == pytest.approx(ent_ref, rel=1e-10)


def test_momentum_is_conserved_and_energy_drift_is_first_order(rng):
    v0 = rng.normal(size=(400, 3)) * [1.3, 0.5, 1.0]
    drift = {}
    for dt in (0.1, 0.05):
        traj = simulate_landau(v0, KDEOracle(), C=1 / 24, t_span=(0.0, 1.0), dt=dt, method="euler")
        mom = traj.diagnostics["momentum"]
        # antisymmetric pair sum: momentum changes by round-off only
        assert np.abs(mom - mom[0]).max() < 1e-13
        drift[dt] = traj.diagnostics["energy"][-1] - traj.diagnostics["energy"][0]
    ratio = drift[0.1] / drift[0.05]
    assert 1.7 < ratio < 2.3, drift  # forward Euler: energy error ∝ dt
    heun = simulate_landau(v0, KDEOracle(), C=1 / 24, t_span=(0.0, 1.0), dt=0.1)
    assert abs(heun.diagnostics["energy"][-1] - heun.diagnostics["energy"][0]) < 0.2 * abs(drift[0.1])


def test_covariance_rate_with_exact_score_follows_maxwell_law():
    """dΣ/dt at t = 0 from the particle velocity with the exact Gaussian score equals
    4C(tr Σ I − dΣ) (the particle pair sum is an unbiased U-statistic)."""
    cov0 = np.diag([1.8, 0.2, 1.0])
    C = 1 / 24
    rates = []
    for seed in range(8):
        v = np.random.default_rng(seed).normal(size=(3000, 3)) * np.sqrt(np.diag(cov0))
        U, _ = landau_field(v, -v / np.diag(cov0), 0.0, C)
        rates.append((U.T @ v + v.T @ U) / len(v))
    exact = 4 * C * (np.trace(cov0) * np.eye(3) - 3 * cov0)
    # One set of 3000 particles has a sampling error of several percent of the largest entry;
    # averaging 8 independent sets divides it by √8, so 5 % is a tolerance of a few standard errors.
    np.testing.assert_allclose(np.mean(rates, axis=0), exact, atol=0.05 * np.abs(exact).max())
    # the law itself: Σ(t) = Σ∞ − (Σ∞ − Σ₀)e^{−4dCt} solves dΣ/dt = 4C(tr Σ I − dΣ)
    eps = 1e-6
    fd = (maxwell_covariance(eps, cov0, C) - maxwell_covariance(-eps, cov0, C)) / (2 * eps)
    np.testing.assert_allclose(fd, exact, atol=1e-8)


@pytest.mark.parametrize("d", [2, 3])
def test_bkw_moments_with_exact_score(d):
    bkw = BKW(d)
    t0 = bkw.t_start
    T = t0 + 1.0
    v0 = bkw.sample(1500, t0, seed=1)
    traj = simulate_landau(v0, bkw.oracle(), C=bkw.C, t_span=(t0, T), dt=0.05)
    m4 = traj.diagnostics["fourth_moment"]
    ratio = (m4[-1] - m4[0]) / (bkw.fourth_moment(T) - bkw.fourth_moment(t0))
    # the exact score drives the particles' E|v|⁴ up like the exact solution; finite-n noise of
    # the pair sum allows ±12 %
    assert 0.88 < ratio < 1.12, ratio
    # entropy production estimate vs the exact d/dt ∫f log f of the BKW solution
    # (2-D: −0.125 at t = 0; 3-D: −0.0737 at t = 5.5)
    exact_rate = -0.125 if d == 2 else -0.0737
    assert traj.diagnostics["entropy_production"][0] == pytest.approx(exact_rate, rel=0.1)
    assert (traj.diagnostics["entropy_production"] <= 0).all()
    # energy: E|v|² = d conserved
    assert np.abs(2 * traj.diagnostics["energy"] - 2 * traj.diagnostics["energy"][0]).max() < 1e-3


def test_bkw_exact_score_is_gradient_of_log_density():
    bkw = BKW(2)
    v = bkw.sample(50, 1.0, seed=0)
    eps = 1e-6
    fd = np.stack([(bkw.log_density(v + eps * e, 1.0) - bkw.log_density(v - eps * e, 1.0)) / (2 * eps)
                   for e in np.eye(2)], axis=1)
    np.testing.assert_allclose(bkw.score(v, 1.0), fd, atol=1e-6)
    # samples have the exact fourth moment (Monte Carlo, 2e5 samples; tolerance: several standard errors)
    assert (np.sum(bkw.sample(200_000, 1.0) ** 2, 1) ** 2).mean() == pytest.approx(bkw.fourth_moment(1.0), abs=0.15)


def test_coulomb_run_is_finite_and_conservative(rng):
    v0 = rng.normal(size=(300, 2)) * [1.4, 0.6]
    traj = simulate_landau(v0, KDEOracle(), gamma=-3.0, C=1 / 16, t_span=(0.0, 0.5), dt=0.05)
    assert np.isfinite(traj.particles).all()
    assert np.abs(traj.diagnostics["momentum"] - traj.diagnostics["momentum"][0]).max() < 1e-12
    cov = traj.diagnostics["covariance"]
    assert cov[-1, 0, 0] < cov[0, 0, 0] and cov[-1, 1, 1] > cov[0, 1, 1]  # relaxes toward isotropy


@pytest.mark.parametrize("kwargs,match", [
    (dict(gamma=-3.0, regularization=0.0), "regularization"),
    (dict(C=-1.0), "C positive"),
    (dict(dt=float("nan")), "dt must be a positive"),
    (dict(t_span=(1.0, 1.0)), "t_span must increase"),
])
def test_bad_arguments(kwargs, match, rng):
    args = dict(t_span=(0.0, 0.1), dt=0.05)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        simulate_landau(rng.normal(size=(50, 2)), KDEOracle(), **args)


def test_one_dimensional_velocities_are_refused(rng):
    with pytest.raises(ValueError, match="d ≥ 2"):
        simulate_landau(rng.normal(size=(50, 1)), KDEOracle(), t_span=(0, 0.1), dt=0.05)


def test_exploding_score_stops_with_last_good_state(rng):
    from solvers import SolverDivergenceError
    # a cubic score (linear ones give zero Landau velocity) that jumps by 1e12 after t = 0.1
    bad = AnalyticFlowOracle(lambda x, t: -x ** 3 * (1e12 if t > 0.1 else 1.0))
    with pytest.raises(SolverDivergenceError) as info:
        simulate_landau(rng.normal(size=(50, 2)), bad, t_span=(0.0, 1.0), dt=0.05, method="euler")
    assert "exploding" in str(info.value)
    traj = info.value.trajectory
    assert np.isfinite(traj.final).all() and traj.times[-1] == pytest.approx(0.15)


@pytest.mark.parametrize("d,t,fisher,neg_entropy", [(2, 0.0, 4.000, -2.72195), (2, 1.0, 2.6014, -2.78905),
                                                    (3, 5.5, 3.8847, -4.19305), (3, 6.5, 3.2564, -4.23311)])
def test_bkw_quadrature_matches_reference_table(d, t, fisher, neg_entropy):
    """Fisher information and ∫f log f of the BKW solutions against the BKW reference table
    (an independent radial quadrature, 4-5 digits)."""
    bkw = BKW(d)
    assert bkw.fisher_information(t) == pytest.approx(fisher, abs=2e-4)
    assert bkw.neg_entropy(t) == pytest.approx(neg_entropy, abs=2e-5)


def test_random_batches_partition_and_rescale_exactly(rng):
    """Each batch's pair sum, rescaled by κ_b, equals the dense reference on that batch; one batch
    of all n particles is the full sum; momentum Σ m_p U_p vanishes for any masses."""
    from solvers.collisions import RandomBatches
    n = 103
    v, s = rng.normal(size=(n, 3)), rng.normal(size=(n, 3))
    masses = rng.uniform(0.5, 2.0, n)
    masses /= masses.sum()
    batches = RandomBatches.draw(rng, n, 10)
    assert sorted(batches.members) == list(range(n)) and np.diff(batches.starts).min() >= 10
    U, _ = landau_field(v, s, 0.0, 0.1, 0.0, masses, batches)
    for b in range(len(batches.starts) - 1):
        members = batches.members[batches.starts[b]:batches.starts[b + 1]]
        ref, _ = landau_field_reference(v[members], s[members], 0.0, 0.1, 0.0, masses=masses[members])
        m_b = masses[members].sum()  # the reference normalises the batch's masses to 1
        np.testing.assert_allclose(U[members], ref * batches.kappa[b] * m_b, rtol=1e-10, atol=1e-13)
    assert np.abs(masses @ U).max() < 1e-15  # round-off of a sum of O(1) terms
    full = RandomBatches.draw(rng, n, n)
    np.testing.assert_allclose(landau_field(v, s, 0.0, 0.1, 0.0, masses, full)[0],
                               landau_field(v, s, 0.0, 0.1, 0.0, masses)[0], rtol=1e-12, atol=1e-14)


def test_random_batch_run_conserves_momentum_and_is_reproducible(rng):
    v0 = rng.normal(size=(500, 3)) * [1.3, 0.5, 1.0]
    kw = dict(C=1 / 24, t_span=(0.0, 0.5), dt=0.05, collisions="random_batch", batch_size=20, seed=1)
    a = simulate_landau(v0, KDEOracle(), **kw)
    b = simulate_landau(v0, KDEOracle(), **kw)
    np.testing.assert_array_equal(a.final, b.final)
    mom = a.diagnostics["momentum"]
    assert np.abs(mom - mom[0]).max() < 1e-14  # antisymmetric batch sums: round-off only
    with pytest.raises(ValueError, match="batch_size"):
        simulate_landau(v0, KDEOracle(), t_span=(0, 0.1), dt=0.05, collisions="random_batch", batch_size=1)
    with pytest.raises(ValueError, match="collisions"):
        simulate_landau(v0, KDEOracle(), t_span=(0, 0.1), dt=0.05, collisions="nearest")


@pytest.mark.slow
@pytest.mark.parametrize("case", ["anisotropic", "bkw"])
def test_random_batch_matches_the_full_pair_sum(case):
    """n = 4000, exact scores: the random-batch run's covariance relaxation (anisotropic Maxwell)
    or fourth-moment growth (3-D BKW) is within 5 % of the full pair sum's."""
    if case == "anisotropic":
        cov0 = np.diag([1.8, 0.2, 1.0])
        v0 = np.random.default_rng(0).normal(size=(4000, 3)) * np.sqrt(np.diag(cov0))
        oracle = AnalyticFlowOracle(lambda v, t: -v / np.diag(maxwell_covariance(t, cov0, 1 / 24)))
        kw = dict(C=1 / 24, t_span=(0.0, 4.0), dt=0.1)

        def change(traj):
            return traj.diagnostics["covariance"][-1, 0, 0] - traj.diagnostics["covariance"][0, 0, 0]
    else:
        bkw = BKW(3)
        v0 = bkw.sample(4000, bkw.t_start, seed=2)
        oracle = bkw.oracle()
        kw = dict(C=bkw.C, t_span=(bkw.t_start, bkw.t_start + 2.0), dt=0.1)

        def change(traj):
            return traj.diagnostics["fourth_moment"][-1] - traj.diagnostics["fourth_moment"][0]
    full = change(simulate_landau(v0, oracle, **kw))
    batched = change(simulate_landau(v0, oracle, collisions="random_batch", batch_size=40, **kw))
    assert batched == pytest.approx(full, rel=0.05), (batched, full)


def test_random_batch_sums_are_unbiased_for_unequal_masses(rng):
    """Averaged over many partitions, the rescaled batch sums equal the full pair sum for strongly
    unequal masses (a pair shares a batch with probability (n_b − 1)/(n − 1) whatever the masses)."""
    from solvers.collisions import RandomBatches
    n = 60
    v, s = rng.normal(size=(n, 2)), rng.normal(size=(n, 2))
    masses = rng.exponential(size=n) ** 3
    masses /= masses.sum()
    full, _ = landau_field(v, s, 0.0, 1.0, 0.0, masses)
    draws = 4000
    mean = sum(landau_field(v, s, 0.0, 1.0, 0.0, masses, RandomBatches.draw(rng, n, 12))[0] for _ in range(draws)) / draws
    # Monte Carlo: 4000 partitions leave a relative error of a few percent; a mass-dependent
    # rescaling was biased by tens of percent here
    assert np.linalg.norm(mean - full) < 0.05 * np.linalg.norm(full)
