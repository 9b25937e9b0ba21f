"""Item-parameter priors with factors= (MAP calibration): the estimate is a stationary point of the log posterior,
checked by central differences of a brute-force log-likelihood on the same product grid (numpy only) plus the
priors' log densities from scipy.stats -- not by the project's gradients."""

import numpy as np
import pytest
from scipy.special import logsumexp
from scipy.stats import lognorm, norm

import adaptive
from adaptive.exceptions import CalibrationError, ConvergenceWarning

PRIORS = {"a": "lognormal(0, 0.5)", "intercept": "normal(0, 1.5)"}


@pytest.fixture(scope="module")
def small():
    """200 persons, 8 items on 2 correlated factors: few enough that the priors move the estimates."""
    rng = np.random.default_rng(61)
    theta = rng.multivariate_normal([0, 0], [[1, 0.5], [0.5, 1]], 200)
    a = np.zeros((8, 2))
    a[:4, 0], a[4:, 1] = rng.uniform(1.0, 2.5, 4), rng.uniform(1.0, 2.5, 4)
    d = rng.normal(0, 1.5, 8)
    x = (rng.random((200, 8)) < 1 / (1 + np.exp(-(theta @ a.T + d)))).astype(float)
    ids = [f"I{j}" for j in range(8)]
    return x, ids, {"F1": ids[:4], "F2": ids[4:]}


def _log_posterior(x, slopes, d, r, pattern, axis):
    nodes = np.stack([m.ravel() for m in np.meshgrid(axis, axis, indexing="ij")], axis=1)
    lw = -0.5 * np.einsum("qk,kl,ql->q", nodes, np.linalg.inv([[1, r], [r, 1]]), nodes)
    lw -= logsumexp(lw)
    z = nodes @ slopes.T + d
    table = x @ (-np.logaddexp(0, -z)).T + (1 - x) @ (-np.logaddexp(0, z)).T + lw
    loglik = logsumexp(table, axis=1).sum()
    return loglik + lognorm.logpdf(slopes[pattern], 0.5).sum() + norm.logpdf(d, 0, 1.5).sum()


def test_map_estimate_is_a_stationary_point_of_the_brute_force_log_posterior(small):
    x, ids, factors = small
    fit = adaptive.calibrate(x, model="2pl", item_ids=ids, factors=factors, priors=PRIORS, tol=1e-7)
    pattern = fit.slopes != 0
    gamma = np.concatenate([fit.slopes[pattern], fit.intercepts[:, 0], [fit.latent_cov[0, 1]]])
    axis = np.linspace(-6, 6, 31)

    def f(g):
        slopes = np.zeros((8, 2))
        slopes[pattern] = g[:8]
        return _log_posterior(x, slopes, g[8:16], g[16], pattern, axis)

    h = 1e-5
    grad = np.array([(f(gamma + h * e) - f(gamma - h * e)) / (2 * h) for e in np.eye(gamma.size)])
    assert np.abs(grad).max() < 2e-3
    # and the priors matter here: without them a slope runs away (ML diverges on 200 persons)
    with pytest.warns(ConvergenceWarning, match="ran towards infinity"):
        ml = adaptive.calibrate(x, model="2pl", item_ids=ids, factors=factors, tol=1e-7)
    assert ml.loglik > fit.loglik
    assert np.abs(fit.slopes[pattern] - 1.0).mean() < np.abs(ml.slopes[pattern] - 1.0).mean()
    # Oakes SEs of a MAP fit come from the log posterior's curvature: finite and positive
    se = fit.standard_errors()
    assert np.all(np.isfinite(se.slopes[pattern])) and np.all(se.slopes[pattern] > 0)


@pytest.mark.parametrize("priors, message", [
    ({"b": "normal(0, 1)"}, "'b' has no multidimensional form"),
    ({"a": "beta(2, 2)"}, "the prior on 'a' must be normal or lognormal"),
    ({"intercept": "lognormal(0, 1)"}, "the prior on 'intercept' must be normal"),
    ({"c": "normal(0, 1)"}, "the prior on 'c' must be beta"),
    ("nonsense", "unknown prior set"),
    ([1, 2], "give a named set"),
])
def test_priors_with_factors_are_checked(small, priors, message):
    x, ids, factors = small
    with pytest.raises(CalibrationError, match=message):
        adaptive.calibrate(x, model="2pl", item_ids=ids, factors=factors, priors=priors)
