"""Fixed-item calibration with factors= (anchors keep their parameters; the latent means, variances and
correlation are estimated): seeded recovery of a shifted, rescaled population and of the new items, and the
estimate as a stationary point of a brute-force grid log-likelihood (numpy only, central differences)."""

import numpy as np
import pytest
from scipy.special import logsumexp

import adaptive
from adaptive.bank.multidim import MultidimBank
from adaptive.exceptions import CalibrationError

MEAN = np.array([0.5, -0.3])
SD = np.array([1.2, 0.8])
R = 0.4


def _data(rng, n):
    """24 items: I00-I05 and I12-I17 anchors (fixed), the rest new; items 0-11 on F1, 12-23 on F2."""
    cov = np.outer(SD, SD) * np.array([[1, R], [R, 1]])
    theta = rng.multivariate_normal(MEAN, cov, n)
    a = np.zeros((24, 2))
    a[:12, 0], a[12:, 1] = rng.uniform(1.0, 2.0, 12), rng.uniform(1.0, 2.0, 12)
    d = rng.normal(0, 1, 24)
    x = (rng.random((n, 24)) < 1 / (1 + np.exp(-(theta @ a.T + d)))).astype(float)
    ids = [f"I{j:02d}" for j in range(24)]
    anchor = [j for j in range(24) if j % 12 < 6]
    rows = [{"item_id": ids[j], "model": "2pl", "a1": a[j, 0], "a2": a[j, 1], "d": d[j]} for j in anchor]
    fixed = MultidimBank.from_rows(rows, ("F1", "F2"))
    factors = {"F1": [i for j, i in enumerate(ids) if j < 12 and j not in anchor],
               "F2": [i for j, i in enumerate(ids) if j >= 12 and j not in anchor]}
    return x, ids, fixed, factors, a, d


@pytest.mark.recovery
def test_fixed_items_carry_their_scale_to_the_population_and_the_new_items():
    x, ids, fixed, factors, a, d = _data(np.random.default_rng(81), 5000)
    fit = adaptive.calibrate(x, item_ids=ids, model="2pl", factors=factors, fixed=fixed)
    assert fit.converged and "12 fixed items set the scale" in fit.integration
    np.testing.assert_allclose(fit.latent_mean, MEAN, atol=0.06)
    np.testing.assert_allclose(np.sqrt(np.diag(fit.latent_cov)), SD, atol=0.06)
    assert fit.latent_correlations[0, 1] == pytest.approx(R, abs=0.05)
    anchor = np.array([j % 12 < 6 for j in range(24)])
    np.testing.assert_array_equal(fit.slopes[anchor], a[anchor])           # kept exactly
    new = ~anchor
    assert np.sqrt(np.mean((fit.slopes[new] - a[new]) ** 2)) < 0.12
    assert np.sqrt(np.mean((fit.intercepts[new, 0] - d[new]) ** 2)) < 0.1
    assert fit.bank.latent_mean == pytest.approx(fit.latent_mean)
    assert "latent means and SDs" in fit.summary()


def _brute_loglik(x, slopes, d, mean, cov, axis):
    nodes = np.stack([m.ravel() for m in np.meshgrid(axis, axis, indexing="ij")], axis=1)
    c = nodes - mean
    lw = -0.5 * np.einsum("qk,kl,ql->q", c, np.linalg.inv(cov), c)
    lw -= logsumexp(lw)
    z = nodes @ slopes.T + d
    table = x @ (-np.logaddexp(0, -z)).T + (1 - x) @ (-np.logaddexp(0, z)).T + lw
    return logsumexp(table, axis=1).sum()


def test_the_estimate_is_a_stationary_point_of_the_grid_log_likelihood():
    x, ids, fixed, factors, *_ = _data(np.random.default_rng(82), 800)
    fit = adaptive.calibrate(x, item_ids=ids, model="2pl", factors=factors, fixed=fixed, tol=1e-7)
    new = np.array([j % 12 >= 6 for j in range(24)])
    pattern = fit.slopes != 0
    axis = np.linspace(-6, 6, 31)
    gamma = np.concatenate([fit.slopes[new & pattern.any(axis=1)][pattern[new]], fit.intercepts[new, 0],
                            fit.latent_mean, [fit.latent_cov[0, 0], fit.latent_cov[1, 1], fit.latent_cov[0, 1]]])

    def f(g):
        slopes, d = fit.slopes.copy(), fit.intercepts[:, 0].copy()
        sub = slopes[new]
        sub[pattern[new]] = g[:12]
        slopes[new] = sub
        d[new] = g[12:24]
        cov = np.array([[g[26], g[28]], [g[28], g[27]]])
        return _brute_loglik(x, slopes, d, g[24:26], cov, axis)

    assert f(gamma) == pytest.approx(fit.loglik, abs=1e-6)
    h = 1e-5
    grad = np.array([(f(gamma + h * e) - f(gamma - h * e)) / (2 * h) for e in np.eye(gamma.size)])
    assert np.abs(grad).max() < 5e-3
    se = fit.standard_errors()
    assert np.all(np.isfinite(se.slopes[new & pattern.any(axis=1)][pattern[new]]))
    assert np.all(se.means > 0) and np.all(np.isfinite(se.correlations))   # means, variances and covariance
    assert np.isnan(se.slopes[~new]).all()                                   # the fixed items have none


def test_fixed_item_calibration_refuses_what_it_cannot_do():
    x, ids, fixed, factors, *_ = _data(np.random.default_rng(83), 300)
    cases = [
        ({"factors": 2, "fixed": fixed}, "need a confirmatory model"),
        ({"factors": {"A": factors["F1"], "B": factors["F2"]}, "fixed": fixed}, "are not factors of this model"),
        ({"factors": factors, "fixed": MultidimBank.from_rows([{"item_id": "Z", "model": "2pl", "a1": 1, "a2": 0,
                                                                 "d": 0}], ("F1", "F2"))}, "none of the fixed"),
        ({"factors": factors, "fixed": "bank.json"}, "fixed is a MultidimBank"),
        ({"bifactor": ["S"] * 24, "fixed": fixed}, "not available"),
    ]
    for kwargs, message in cases:
        with pytest.raises(CalibrationError, match=message):
            adaptive.calibrate(x, item_ids=ids, model="2pl", **kwargs)


def test_every_item_fixed_estimates_the_population_alone_and_an_empty_factor_is_refused():
    x, ids, fixed, factors, a, d = _data(np.random.default_rng(84), 3000)
    rows = [{"item_id": i, "model": "2pl", "a1": a[j, 0], "a2": a[j, 1], "d": d[j]} for j, i in enumerate(ids)]
    every = MultidimBank.from_rows(rows, ("F1", "F2"))
    fit = adaptive.calibrate(x, item_ids=ids, model="2pl", factors={"F1": ids[:1], "F2": ids[12:13]}, fixed=every)
    assert fit.n_parameters == 5                        # two means, two variances, one covariance
    np.testing.assert_allclose(fit.latent_mean, MEAN, atol=0.08)
    np.testing.assert_allclose(np.sqrt(np.diag(fit.latent_cov)), SD, atol=0.08)
    flat = MultidimBank.from_rows([{**r, "a2": 0.0, "a1": 1.0} for r in rows], ("F1", "F2"))
    with pytest.raises(CalibrationError, match=r"factors \['F2'\] have no item loading on them"):
        adaptive.calibrate(x, item_ids=ids, model="2pl", factors={"F1": ids[:1], "F2": ids[12:13]}, fixed=flat)


def test_a_fixed_item_may_have_categories_the_data_do_not_show():
    x, ids, _, factors, *_ = _data(np.random.default_rng(85), 400)
    graded = MultidimBank.from_rows([{"item_id": "I00", "model": "graded", "a1": 1.0, "a2": 0.0, "d1": 2.0,
                                      "d2": 1.0}], ("F1", "F2"))
    fit = adaptive.calibrate(x, item_ids=ids, model="2pl", factors={"F1": ids[1:12], "F2": ids[12:]}, fixed=graded)
    assert fit.converged and fit.models[0] == "graded" and fit.n_cat[0] == 3
