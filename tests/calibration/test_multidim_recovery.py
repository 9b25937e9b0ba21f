"""Seeded recovery of exploratory (up to rotation), nominal and bifactor models; rotations against brute force."""

import itertools

import numpy as np
import pytest

import adaptive
from adaptive.calibration.multidim_result import standardized_loadings
from adaptive.calibration.rotation import _criterion, rotate_loadings, tucker_congruence
from adaptive.exceptions import CalibrationError

pytestmark = pytest.mark.recovery


def _simple_structure(rng, n_dims, per, n_persons, corr=0.3):
    n_items = n_dims * per
    a = np.zeros((n_items, n_dims))
    for q in range(n_dims):
        a[q * per:(q + 1) * per, q] = rng.uniform(1.0, 2.0, per)
        a[q * per:(q + 1) * per, (q + 1) % n_dims] = rng.uniform(0.0, 0.3, per)  # small cross-loadings
    d = rng.normal(size=n_items)
    sigma = np.full((n_dims, n_dims), corr) + (1 - corr) * np.eye(n_dims)
    theta = rng.multivariate_normal(np.zeros(n_dims), sigma, size=n_persons)
    x = (rng.random((n_persons, n_items)) < 1 / (1 + np.exp(-(theta @ a.T + d)))).astype(float)
    return x, standardized_loadings(a, sigma)


def _matched_congruence(loadings, truth):
    k = truth.shape[1]
    best = max(itertools.permutations(range(k)), key=lambda p: np.abs(tucker_congruence(loadings[:, p], truth)).sum())
    return np.abs(tucker_congruence(loadings[:, best], truth))


def test_two_factor_exploratory_recovers_the_loadings_up_to_rotation():
    x, truth = _simple_structure(np.random.default_rng(7), 2, 10, 5000)
    fit = adaptive.calibrate(x, model="2pl", factors=2)
    assert fit.converged and fit.exploratory
    assert fit.slopes[0, 1] == 0.0  # mirt's identification: the first item loads on F1 only
    for method in ("oblimin", "geomin", "varimax"):
        rot = fit.rotate(method)
        assert _matched_congruence(rot.loadings, truth).min() >= 0.98, method
    obl = fit.rotate("oblimin")
    assert obl.factor_correlations[0, 1] == pytest.approx(0.3, abs=0.12)
    with pytest.raises(CalibrationError, match="rotation 'promax'"):
        fit.rotate("promax")


@pytest.mark.slow
def test_three_factor_exploratory_recovers_the_loadings_up_to_rotation():
    x, truth = _simple_structure(np.random.default_rng(8), 3, 8, 5000)
    fit = adaptive.calibrate(x, model="2pl", factors=3, quadrature=11)
    assert fit.converged
    for method in ("oblimin", "geomin"):
        assert _matched_congruence(fit.rotate(method).loadings, truth).min() >= 0.98, method


def test_nominal_recovery():
    rng = np.random.default_rng(3)
    n_items, n_persons = 12, 4000
    alpha = np.column_stack([np.zeros(n_items), rng.uniform(-0.8, 0.2, (n_items, 2)), rng.uniform(0.8, 1.8, n_items)])
    c = np.column_stack([np.zeros(n_items), rng.normal(0, 0.5, (n_items, 2)), rng.uniform(0.5, 1.5, n_items)])
    theta = rng.standard_normal(n_persons)
    z = theta[:, None, None] * alpha[None] + c[None]
    p = np.exp(z - z.max(axis=2, keepdims=True))
    p /= p.sum(axis=2, keepdims=True)
    x = (rng.random((n_persons, n_items, 1)) > np.cumsum(p, axis=2)).sum(axis=2).astype(float)
    fit = adaptive.calibrate(x, model="nominal")
    nom = fit.nominal_parameters()
    bock_slopes = nom["a1"][:, None] * nom["ak"]
    assert np.abs(bock_slopes - alpha).max() < 0.3
    assert np.corrcoef(bock_slopes[:, 1:].ravel(), alpha[:, 1:].ravel())[0, 1] > 0.95
    assert np.abs(nom["d"] - c).max() < 0.3


def _brute_force(loadings, method, oblique, n=721):
    """Minimum of the criterion over rotations of 2 factors on a fine grid of angles (orthogonal: one angle;
    oblique: each factor axis its own angle)."""
    angles = np.linspace(0, np.pi, n)
    best = np.inf
    for t1 in angles:
        for t2 in (angles if oblique else [t1 + np.pi / 2]):
            t = np.array([[np.cos(t1), np.cos(t2)], [np.sin(t1), np.sin(t2)]])
            if abs(np.linalg.det(t)) < 0.2:
                continue
            lam = loadings @ np.linalg.inv(t).T if oblique else loadings @ t
            best = min(best, _criterion(method, lam)[0])
    return best


@pytest.mark.parametrize("method,oblique", [("varimax", False), ("oblimin", True), ("geomin", True)])
def test_rotation_reaches_the_brute_force_minimum(method, oblique):
    rng = np.random.default_rng(2)
    simple = np.zeros((12, 2))
    simple[:6, 0] = rng.uniform(0.5, 0.8, 6)
    simple[6:, 1] = rng.uniform(0.5, 0.8, 6)
    turn = np.array([[np.cos(0.6), -np.sin(0.6)], [np.sin(0.6), np.cos(0.6)]])
    unrotated = simple @ turn.T
    rot = rotate_loadings(unrotated, method)
    assert rot.converged
    assert rot.criterion <= _brute_force(unrotated, method, oblique, n=361 if oblique else 3601) + 1e-6
    # the rotated solution reproduces the same common part: L Φ Lᵀ is rotation invariant
    np.testing.assert_allclose(rot.loadings @ rot.factor_correlations @ rot.loadings.T, unrotated @ unrotated.T,
                               atol=1e-8)
    assert _matched_congruence(rot.loadings, simple).min() > 0.99


def _bifactor_data(rng, n_specific, per, n_persons):
    n_items = n_specific * per
    a_g, a_s, d = rng.uniform(1.0, 2.0, n_items), rng.uniform(0.6, 1.4, n_items), rng.normal(size=n_items)
    spec = np.repeat(np.arange(n_specific), per)
    g, s = rng.standard_normal(n_persons), rng.standard_normal((n_persons, n_specific))
    z = g[:, None] * a_g + s[:, spec] * a_s + d
    x = (rng.random(z.shape) < 1 / (1 + np.exp(-z))).astype(float)
    return x, spec, a_g, a_s, d


def test_bifactor_dimension_reduction_equals_the_full_product_grid():
    """Two specific factors: the reduced E-step (two 2-d integrals) against the confirmatory 3-d product-grid fit
    with uncorrelated factors (another code path) at the same 11 points per dimension, both to tol 1e-5."""
    x, spec, *_ = _bifactor_data(np.random.default_rng(11), 2, 6, 2000)
    bf = adaptive.calibrate(x, model="2pl", bifactor=[f"S{q + 1}" for q in spec], quadrature=11, tol=1e-5)
    ids = list(bf.item_ids)
    full = adaptive.calibrate(x, model="2pl", factors={"G": ids, "S1": ids[:6], "S2": ids[6:]}, correlated=False,
                              quadrature=11, tol=1e-5)
    assert bf.converged and full.converged
    assert bf.factor_names == ("G", "S1", "S2") and bf.integration.startswith("bifactor EM with dimension reduction")
    assert bf.loglik == pytest.approx(full.loglik, abs=2e-3)
    np.testing.assert_allclose(bf.slopes, full.slopes, atol=2e-3)
    np.testing.assert_allclose(bf.intercepts, full.intercepts, atol=2e-3)
    assert bf.n_parameters == full.n_parameters == 12 * 3


@pytest.mark.slow
def test_bifactor_with_four_specifics_recovers_the_generating_parameters():
    x, spec, a_g, a_s, d = _bifactor_data(np.random.default_rng(12), 4, 6, 5000)
    fit = adaptive.calibrate(x, model="2pl", bifactor=[f"S{q + 1}" for q in spec])
    assert fit.converged and len(fit.factor_names) == 5
    rows = np.arange(a_g.size)
    assert np.sqrt(np.mean((fit.slopes[:, 0] - a_g) ** 2)) < 0.12
    assert np.sqrt(np.mean((fit.slopes[rows, 1 + spec] - a_s) ** 2)) < 0.15
    assert np.sqrt(np.mean((fit.intercepts[:, 0] - d) ** 2)) < 0.1
    off = np.ones_like(fit.slopes, dtype=bool)
    off[:, 0] = False
    off[rows, 1 + spec] = False
    assert (fit.slopes[off] == 0).all()  # an item loads on its own specific factor only
    with pytest.raises(CalibrationError, match="fewer than 2 items"):
        adaptive.calibrate(x, model="2pl", bifactor=["S1"] + [None] * 23)


def test_quasi_monte_carlo_em_agrees_with_the_product_grid():
    """The same 2-factor model integrated by QMC (2,048 Sobol points) and on the 31 x 31 grid."""
    x, _ = _simple_structure(np.random.default_rng(9), 2, 6, 2000, corr=0.5)
    ids = [f"I{j}" for j in range(12)]
    spec = {"A": ids[:6], "B": ids[6:]}
    grid = adaptive.calibrate(x, model="2pl", item_ids=ids, factors=spec)
    qmc = adaptive.calibrate(x, model="2pl", item_ids=ids, factors=spec, integration="qmc", quadrature=2048)
    assert qmc.integration.startswith("quasi-Monte Carlo EM on 2048") and qmc.converged
    assert qmc.latent_cov[0, 1] == pytest.approx(grid.latent_cov[0, 1], abs=0.01)
    np.testing.assert_allclose(qmc.slopes, grid.slopes, atol=0.03)
    np.testing.assert_allclose(qmc.intercepts, grid.intercepts, atol=0.02)
    with pytest.raises(CalibrationError, match="integration='qmc'"):
        adaptive.calibrate(x, model="2pl", item_ids=ids, factors={f"F{k}": ids[2 * k:2 * k + 2] for k in range(6)},
                           integration="grid")


@pytest.mark.slow
def test_six_correlated_domains_by_quasi_monte_carlo_em():
    """A CMCS-like structure: six correlated domain factors (more than a product grid holds), chosen
    automatically."""
    rng = np.random.default_rng(3)
    k, per, n = 6, 5, 3000
    sigma = np.full((k, k), 0.6) + 0.4 * np.eye(k)
    theta = rng.multivariate_normal(np.zeros(k), sigma, size=n)
    a = np.zeros((k * per, k))
    for q in range(k):
        a[q * per:(q + 1) * per, q] = rng.uniform(1, 2, per)
    x = (rng.random((n, k * per)) < 1 / (1 + np.exp(-(theta @ a.T + rng.normal(size=k * per))))).astype(float)
    ids = [f"Q{j}" for j in range(k * per)]
    fit = adaptive.calibrate(x, model="2pl", item_ids=ids, factors={f"D{q}": ids[q * per:(q + 1) * per]
                                                                    for q in range(k)}, quadrature=1024)
    assert fit.converged and fit.integration.startswith("quasi-Monte Carlo")
    assert np.abs(fit.latent_cov - sigma).max() < 0.08
    assert np.sqrt(np.mean((fit.slopes[a > 0] - a[a > 0]) ** 2)) < 0.15


def test_qmc_fit_scores_by_qmc_eap_and_refuses_m2():
    x, _ = _simple_structure(np.random.default_rng(10), 4, 4, 1500, corr=0.5)
    ids = [f"I{j}" for j in range(16)]
    fit = adaptive.calibrate(x, model="2pl", item_ids=ids, factors={f"F{q}": ids[4 * q:4 * q + 4] for q in range(4)},
                             quadrature=1024)
    assert fit.integration.startswith("quasi-Monte Carlo")
    eap = adaptive.estimate_ability(fit.bank, x[:50])
    mode = adaptive.estimate_ability(fit.bank, x[:50], method="map")
    assert eap.theta.shape == (50, 4) and np.corrcoef(eap.theta.ravel(), mode.theta.ravel())[0, 1] > 0.98
    with pytest.raises(CalibrationError, match="quasi-Monte Carlo"):
        fit.m2()


def test_m3pl_recovery_with_a_prior_on_c():
    rng = np.random.default_rng(21)
    n, per = 5000, 12
    theta = rng.multivariate_normal([0, 0], [[1, 0.5], [0.5, 1]], size=n)
    a = np.zeros((2 * per, 2))
    a[:per, 0], a[per:, 1] = rng.uniform(1, 2, per), rng.uniform(1, 2, per)
    d, c = rng.normal(size=2 * per), rng.uniform(0.1, 0.25, 2 * per)
    x = (rng.random((n, 2 * per)) < c + (1 - c) / (1 + np.exp(-(theta @ a.T + d)))).astype(float)
    ids = [f"Q{j}" for j in range(2 * per)]
    spec = {"A": ids[:per], "B": ids[per:]}
    with pytest.raises(CalibrationError, match="need a prior on the lower asymptote"):
        adaptive.calibrate(x, model="3pl", item_ids=ids, factors=spec)
    fit = adaptive.calibrate(x, model="3pl", item_ids=ids, factors=spec, priors="3pl")
    assert fit.converged and fit.latent_cov[0, 1] == pytest.approx(0.5, abs=0.05)
    rows = fit.bank.rows()
    c_hat = np.array([r["g"] for r in rows])
    assert np.sqrt(np.mean((fit.slopes[a > 0] - a[a > 0]) ** 2)) < 0.2
    assert np.sqrt(np.mean((c_hat - c) ** 2)) < 0.06
    from adaptive.bank.multidim import MultidimBank

    again = MultidimBank.from_rows(rows, latent_cov=fit.latent_cov)
    np.testing.assert_allclose(again.phi, fit.phi, atol=1e-12)
