"""The lognormal response-time model (van der Linden 2006) and its person-fit statistic l_t.

Independent checks: on complete data the time intensities are the items' mean log times (the closed form of
the ML fixed point with the speed mean fixed at 0), and the whole fit is the maximum of the multivariate-normal
marginal likelihood found by a general optimizer (scipy's L-BFGS on scipy.stats.multivariate_normal); the
marginal log-likelihood the EM reports equals that density; l_t is χ² with n - 1 degrees of freedom under the
model (van der Linden & Guo 2008), checked by simulation; a seeded recovery study on sparse CAT-like data.
"""

import numpy as np
import pytest
from scipy.optimize import minimize
from scipy.stats import kstest, multivariate_normal

from adaptive.exceptions import ResponseValidationError
from adaptive.security import Records, fit_response_times, speed_fit


def _simulate(n, n_items, rng, missing=0.0):
    beta = rng.normal(4.0, 0.3, n_items)
    alpha = rng.uniform(1.5, 2.5, n_items)
    tau = rng.normal(0.0, 0.3, n)
    log_t = beta - tau[:, None] + rng.normal(size=(n, n_items)) / alpha
    t = np.exp(log_t)
    if missing:
        t[rng.random(t.shape) < missing] = np.nan
    return t, beta, alpha, tau


def _marginal_loglik(log_t, beta, alpha, sd):
    cov = np.diag(1.0 / alpha ** 2) + sd ** 2
    return multivariate_normal(mean=beta, cov=cov).logpdf(log_t).sum()


@pytest.mark.reference
def test_complete_data_matches_closed_form_and_a_general_optimizer():
    rng = np.random.default_rng(1)
    t, *_ = _simulate(60, 4, rng)
    fit = fit_response_times(t, tol=1e-12, max_iter=5000)
    log_t = np.log(t)
    # closed form: with complete data and mean speed 0, beta_i is the item's mean log time
    assert np.allclose(fit.intensity, log_t.mean(axis=0), atol=1e-9)
    # the EM's log-likelihood is the multivariate-normal marginal density
    assert fit.loglik == pytest.approx(_marginal_loglik(log_t, fit.intensity, fit.discrimination, fit.speed_sd),
                                       abs=1e-6)

    def negll(v):
        return -_marginal_loglik(log_t, v[:4], np.exp(v[4:8]), np.exp(v[8]))

    start = np.concatenate([log_t.mean(axis=0), np.zeros(4), [np.log(0.2)]])
    opt = minimize(negll, start, method="L-BFGS-B", options={"ftol": 1e-14, "gtol": 1e-9, "maxiter": 5000})
    assert -opt.fun == pytest.approx(fit.loglik, abs=1e-4)
    assert np.allclose(np.exp(opt.x[4:8]), fit.discrimination, atol=2e-3)
    assert np.exp(opt.x[8]) == pytest.approx(fit.speed_sd, abs=1e-3)


def test_em_never_decreases_the_likelihood():
    t, *_ = _simulate(300, 20, np.random.default_rng(2), missing=0.6)
    fit = fit_response_times(t)
    assert fit.converged and np.all(np.diff(fit.loglik_trace) > -1e-8)


@pytest.mark.recovery
def test_recovery_on_sparse_cat_like_data():
    rng = np.random.default_rng(3)
    t, beta, alpha, tau = _simulate(8000, 150, rng, missing=0.85)  # about 22 times per person
    fit = fit_response_times(t)
    assert fit.converged
    assert np.abs(fit.intensity - beta).max() < 0.06
    assert np.corrcoef(fit.discrimination, alpha)[0, 1] > 0.95
    assert fit.speed_sd == pytest.approx(0.3, abs=0.01)
    assert np.corrcoef(fit.speed, tau)[0, 1] > 0.9
    # the stated SEs are the spread of the errors (z-scores with SD near 1)
    assert 0.85 < np.std((fit.intensity - beta) / fit.intensity_se) < 1.2
    assert 0.85 < np.std((fit.discrimination - alpha) / fit.discrimination_se) < 1.2


def test_lt_is_chi_square_under_the_model():
    rng = np.random.default_rng(4)
    t, *_ = _simulate(5000, 30, rng, missing=0.3)
    rec = Records.from_matrix(_Bank(30), np.where(np.isfinite(t), 1.0, np.nan), seconds=t)
    fit = fit_response_times(rec)
    sf = speed_fit(fit, rec)
    assert kstest(sf.p_values[np.isfinite(sf.p_values)], "uniform").pvalue > 0.001
    assert 0.04 < np.mean(sf.p_values < 0.05) < 0.06
    # a candidate who works at another speed on half the items misfits
    t2 = t.copy()
    t2[0, :15] *= 4.0
    rec2 = Records.from_matrix(_Bank(30), np.where(np.isfinite(t2), 1.0, np.nan), seconds=t2)
    assert speed_fit(fit, rec2).p_values[0] < 1e-3 < speed_fit(fit, rec).p_values[0]


def test_residuals_are_standardized():
    rng = np.random.default_rng(5)
    t, *_ = _simulate(3000, 25, rng)
    rec = Records.from_matrix(_Bank(25), np.ones_like(t), seconds=t)
    fit = fit_response_times(rec)
    z = fit.residuals(rec.person, rec.item, rec.log_seconds)
    assert abs(z.mean()) < 0.02 and 0.95 < z.std() < 1.02


def test_bad_times_are_named():
    t = np.full((3, 4), 30.0)
    t[1, 2] = -1.0
    with pytest.raises(ResponseValidationError, match="row 2, item 3: time -1.0 is not positive"):
        fit_response_times(t)
    with pytest.raises(ResponseValidationError, match="mask has shape"):
        fit_response_times(np.full((3, 4), 30.0), mask=np.ones((2, 4), bool))
    with pytest.raises(ResponseValidationError, match="fewer than 2 response times"):
        fit_response_times(np.full((3, 4), np.nan))


class _Bank:
    """A stand-in for a dichotomous bank of ``n`` items (times need no IRT parameters)."""

    def __init__(self, n):
        from adaptive.synthetic import synthetic_bank

        self._bank = synthetic_bank(n, model="2pl", rng=0)
        self.n_items = n

    def compile(self):
        return self._bank.compile()


@pytest.mark.recovery
def test_ability_speed_correlation_is_recovered():
    """Seeded hierarchical data (θ, τ) ~ N(0, [[1, ρ σ], [ρ σ, σ²]]): the error-corrected correlation of the
    WLE and ML speed estimates recovers ρ, where the raw correlation of the estimates is attenuated."""
    from adaptive.scoring.long_format import estimate_theta
    from adaptive.security import ability_speed_correlation
    from adaptive.synthetic import simulate_responses, synthetic_bank

    rng = np.random.default_rng(9)
    n, n_items, rho, sd = 6000, 30, -0.5, 0.3
    cov = [[1.0, rho * sd], [rho * sd, sd * sd]]
    theta, tau = rng.multivariate_normal([0.0, 0.0], cov, size=n).T
    bank = synthetic_bank(n_items, model="2pl", rng=10)
    x = simulate_responses(bank.compile(), theta, rng=11)
    beta, alpha = rng.normal(4.0, 0.3, n_items), rng.uniform(1.5, 2.5, n_items)
    t = np.exp(beta - tau[:, None] + rng.normal(size=(n, n_items)) / alpha)
    rec = Records.from_matrix(bank, x, seconds=t)
    est = estimate_theta(bank.compile(), rec, "wle")
    fit = fit_response_times(rec)
    got = ability_speed_correlation(est.theta, est.se, fit)
    assert got == pytest.approx(rho, abs=0.05)
    assert abs(np.corrcoef(est.theta, fit.speed_ml)[0, 1]) < abs(got)  # the raw one is attenuated
    with pytest.raises(ResponseValidationError, match="fewer than 3 persons"):
        ability_speed_correlation(np.full(n, np.nan), est.se, fit)
