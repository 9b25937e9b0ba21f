"""Standard errors of quasi-Monte Carlo fits: the QMC log-likelihood's analytic score (items by Fisher's identity,
correlations through the moving points) against central differences of the QMC log-likelihood itself, and the
Oakes SEs of a 2-factor model fitted by QMC against the same model on the 31 x 31 product grid."""

import numpy as np
import pytest

import adaptive


def _two_factors(rng, n=1500, per=6, corr=0.5):
    theta = rng.multivariate_normal([0, 0], [[1, corr], [corr, 1]], n)
    a = np.zeros((2 * per, 2))
    a[:per, 0], a[per:, 1] = rng.uniform(1, 2, per), rng.uniform(1, 2, per)
    x = (rng.random((n, 2 * per)) < 1 / (1 + np.exp(-(theta @ a.T + rng.normal(size=2 * per))))).astype(float)
    ids = [f"I{j}" for j in range(2 * per)]
    return x, ids, {"A": ids[:per], "B": ids[per:]}


@pytest.fixture(scope="module")
def fits():
    x, ids, spec = _two_factors(np.random.default_rng(71))
    qmc = adaptive.calibrate(x, model="2pl", item_ids=ids, factors=spec, integration="qmc", quadrature=2048, tol=1e-6)
    grid = adaptive.calibrate(x, model="2pl", item_ids=ids, factors=spec, tol=1e-6)
    return qmc, grid


def test_qmc_score_is_the_gradient_of_the_qmc_log_likelihood(fits):
    qmc, _ = fits
    problem = qmc.problem
    x0 = qmc.x + np.random.default_rng(2).normal(0, 0.05, qmc.x.size)  # away from the maximum: a real gradient
    analytic = problem.score(x0)
    h = 1e-5
    numeric = np.array([(problem.estep(x0 + h * e).loglik - problem.estep(x0 - h * e).loglik) / (2 * h)
                        for e in np.eye(x0.size)])
    assert np.abs(analytic).max() > 1.0
    np.testing.assert_allclose(analytic, numeric, rtol=1e-4, atol=1e-3)


def test_qmc_standard_errors_agree_with_the_product_grid(fits):
    qmc, grid = fits
    a, b = qmc.standard_errors(), grid.standard_errors()
    on = qmc.slopes != 0
    np.testing.assert_allclose(a.slopes[on], b.slopes[on], rtol=0.03)
    np.testing.assert_allclose(a.intercepts[:, 0], b.intercepts[:, 0], rtol=0.03)
    assert a.correlations[0, 1] == pytest.approx(b.correlations[0, 1], rel=0.03)


def _four_factor_fixed(rng, n):
    mean, sd = np.array([0.3, -0.2, 0.1, 0.4]), np.array([1.1, 0.9, 1.0, 1.2])
    cov = np.outer(sd, sd) * (0.5 + 0.5 * np.eye(4))
    theta = rng.multivariate_normal(mean, cov, n)
    a = np.zeros((20, 4))
    for q in range(4):
        a[5 * q:5 * q + 5, q] = rng.uniform(1.2, 2.0, 5)
    d = rng.normal(0, 1, 20)
    x = (rng.random((n, 20)) < 1 / (1 + np.exp(-(theta @ a.T + d)))).astype(float)
    ids = [f"I{j:02d}" for j in range(20)]
    anchor = [j for j in range(20) if j % 5 < 3]
    from adaptive.bank.multidim import MultidimBank

    rows = [{"item_id": ids[j], "model": "2pl", **{f"a{q + 1}": a[j, q] for q in range(4)}, "d": d[j]} for j in anchor]
    fixed = MultidimBank.from_rows(rows, ("F1", "F2", "F3", "F4"))
    factors = {f"F{q + 1}": [ids[j] for j in range(5 * q, 5 * q + 5) if j not in anchor] for q in range(4)}
    return x, ids, fixed, factors, mean, sd


def test_fixed_items_on_four_factors_by_qmc_recover_the_population_and_have_a_true_score():
    x, ids, fixed, factors, mean, sd = _four_factor_fixed(np.random.default_rng(73), 4000)
    fit = adaptive.calibrate(x, item_ids=ids, model="2pl", factors=factors, fixed=fixed, quadrature=2048)
    assert fit.integration.startswith("quasi-Monte Carlo") and "12 fixed items" in fit.integration
    np.testing.assert_allclose(fit.latent_mean, mean, atol=0.08)
    np.testing.assert_allclose(np.sqrt(np.diag(fit.latent_cov)), sd, atol=0.08)
    # the score in the means and (co)variances is the gradient of the QMC log-likelihood
    problem = fit.problem
    x0 = fit.x + np.random.default_rng(3).normal(0, 0.03, fit.x.size)
    latent = np.arange(problem.params.n_item_free, fit.x.size)          # the 10 (co)variances and 4 means
    analytic = problem.score(x0)[latent]
    h = 1e-5
    numeric = np.array([(problem.estep(x0 + h * e).loglik - problem.estep(x0 - h * e).loglik) / (2 * h)
                        for e in np.eye(fit.x.size)[latent]])
    np.testing.assert_allclose(analytic, numeric, rtol=1e-4, atol=1e-3)
