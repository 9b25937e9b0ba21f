"""Two-tier models (Cai 2010): correlated general factors plus orthogonal specific factors, by dimension reduction.

The independent reference is brute force: the marginal log-likelihood summed over the full four-dimensional
product grid by plain numpy in this file (no project code), and the project's other estimation path (the
confirmatory product-grid problem of :mod:`adaptive.calibration.multidim`) for the score and the SEs."""

import numpy as np
import pytest
from scipy.special import logsumexp

import adaptive
from adaptive.calibration.multidim import LinearProblem, free_mask
from adaptive.irt.linear import KIND_OF_MODEL

R_GENERAL = 0.4


def _two_tier_data(rng, n_persons, spec):
    """Two general factors (the first half of the items on G1, the rest on G2), correlation 0.4; item j on
    specific factor ``spec[j]``."""
    spec = np.asarray(spec)
    n_items, n_spec = spec.size, int(spec.max()) + 1
    gen = np.repeat([0, 1], n_items // 2)
    a_g, a_s, d = rng.uniform(1.0, 2.0, n_items), rng.uniform(0.6, 1.3, n_items), rng.normal(0, 0.8, n_items)
    cov = np.array([[1.0, R_GENERAL], [R_GENERAL, 1.0]])
    g = rng.multivariate_normal(np.zeros(2), cov, n_persons)
    s = rng.standard_normal((n_persons, n_spec))
    z = g[:, gen] * a_g + s[:, spec] * a_s + d
    x = (rng.random(z.shape) < 1 / (1 + np.exp(-z))).astype(float)
    ids = [f"I{j:02d}" for j in range(n_items)]
    general = {"G1": ids[:n_items // 2], "G2": ids[n_items // 2:]}
    return x, ids, general, [f"S{q + 1}" for q in spec], (a_g, a_s, d)


def _brute_force_loglik(x, slopes, intercepts, cov, axis):
    """log L summed over persons on the full product grid of ``axis`` in every dimension, weights N(0, cov)
    normalized over the grid (numpy only)."""
    k = slopes.shape[1]
    nodes = np.stack([m.ravel() for m in np.meshgrid(*([axis] * k), indexing="ij")], axis=1)
    lw = -0.5 * np.einsum("qk,kl,ql->q", nodes, np.linalg.inv(cov), nodes)
    lw -= logsumexp(lw)
    z = nodes @ slopes.T + intercepts                       # (Q, I)
    log1, log0 = -np.logaddexp(0, -z), -np.logaddexp(0, z)
    table = x @ log1.T + (1 - x) @ log0.T + lw              # complete data
    return float(logsumexp(table, axis=1).sum())


@pytest.fixture(scope="module")
def small_fit():
    """Four dimensions (2 general; 2 specific, each with items of both general factors) on 9 points each: the full
    grid (6,561 nodes) stays small enough for brute force."""
    x, ids, general, labels, _ = _two_tier_data(np.random.default_rng(31), 1000, [0] * 4 + [1] * 4 + [0] * 4 + [1] * 4)
    fit = adaptive.calibrate(x, item_ids=ids, model="2pl", factors=general, bifactor=labels, quadrature=9, tol=1e-6)
    return x, fit


def test_two_tier_loglik_is_the_brute_force_sum_over_all_four_dimensions(small_fit):
    x, fit = small_fit
    assert fit.converged and fit.factor_names == ("G1", "G2", "S1", "S2")
    assert fit.integration.startswith("two-tier (2 general factors) EM with dimension reduction: 2 3-dimensional")
    brute = _brute_force_loglik(x, fit.slopes, fit.intercepts[:, 0], fit.latent_cov, np.linspace(-6, 6, 9))
    assert fit.problem.estep(fit.x).loglik == pytest.approx(brute, abs=1e-6)
    assert fit.loglik == pytest.approx(brute, abs=1e-3)
    np.testing.assert_array_equal(fit.latent_cov[2:, 2:], np.eye(2))
    np.testing.assert_array_equal(fit.latent_cov[:2, 2:], 0.0)
    assert (fit.slopes[:8, 1] == 0).all() and (fit.slopes[8:, 0] == 0).all()
    assert ((fit.slopes[:, 2:] != 0).sum(axis=1) == 1).all()


def _full_grid_problem(x, fit):
    """The same model as a confirmatory problem on the full 4-d product grid, only the G1-G2 correlation free."""
    pattern = fit.slopes != 0
    kinds = np.array([KIND_OF_MODEL["2pl"]] * x.shape[1])
    n_cat = np.full(x.shape[1], 2)
    corr_free = np.zeros((4, 4), dtype=bool)
    corr_free[0, 1] = True
    nodes = adaptive.irt.linear.product_grid(4, 9)
    problem = LinearProblem(x, kinds, n_cat, fit.phi, free_mask(kinds, n_cat, pattern), nodes, fit.latent_cov,
                            corr_free)
    return problem, problem.params.pack(fit.phi, fit.latent_cov)


def test_two_tier_estimate_is_a_stationary_point_of_the_full_grid_likelihood_with_the_same_ses(small_fit):
    x, fit = small_fit
    problem, x_full = _full_grid_problem(x, fit)
    assert problem.estep(x_full).loglik == pytest.approx(fit.loglik, abs=1e-3)
    score = problem.score(x_full)
    assert np.abs(score).max() < 0.05                    # N = 1,000: a per-person score below 5e-5
    full_se = np.sqrt(np.diag(np.linalg.inv(problem.observed_information(x_full))))
    se = fit.standard_errors()
    mine = np.concatenate([np.nan_to_num(se.slopes)[fit.slopes != 0], se.intercepts[:, 0]])
    flat = np.full(problem.params.phi0.size, np.nan)
    flat[problem.params.free_idx] = full_se[:problem.params.n_item_free]
    flat = flat.reshape(problem.params.phi0.shape)
    np.testing.assert_allclose(mine, np.concatenate([flat[:, :4][fit.slopes != 0], flat[:, 4]]), rtol=1e-3)
    assert se.correlations[0, 1] == pytest.approx(full_se[-1], rel=1e-3)


@pytest.mark.recovery
def test_two_tier_recovers_the_generating_parameters_and_the_general_correlation():
    """24 items, 2 correlated general factors, 4 specific factors each spanning both general factors; N = 5,000 at
    the default 11 points per dimension."""
    spec = np.tile(np.repeat(np.arange(4), 3), 2)
    x, ids, general, labels, (a_g, a_s, d) = _two_tier_data(np.random.default_rng(32), 5000, spec)
    fit = adaptive.calibrate(x, item_ids=ids, model="2pl", factors=general, bifactor=labels)
    assert fit.converged and "11 x 11 x 11" in fit.integration
    assert fit.latent_cov[0, 1] == pytest.approx(R_GENERAL, abs=0.05)
    general_slopes = fit.slopes[:, :2].sum(axis=1)
    specific_slopes = fit.slopes[:, 2:].sum(axis=1)
    assert np.sqrt(np.mean((general_slopes - a_g) ** 2)) < 0.1
    assert np.sqrt(np.mean((specific_slopes - a_s) ** 2)) < 0.15
    assert np.sqrt(np.mean((fit.intercepts[:, 0] - d) ** 2)) < 0.08
    assert np.corrcoef(specific_slopes, a_s)[0, 1] > 0.8
