"""Rasch CML against exact enumeration: the ESFs, the conditional log-likelihood and its maximum.

Source: the definition (Andersen 1970; Fischer & Molenaar 1995, ch. 3): γ_r is the sum over all response
patterns with score r of Π ε_i^{x_i}; P(x | r) = Π ε_i^{x_i} / γ_r. The test enumerates all 2^I patterns of a
small test, so nothing of the recursion is reused; the maximum is found by scipy's BFGS on that enumerated
likelihood.
"""

import itertools
import math

import numpy as np
import pytest
from scipy.optimize import minimize
from scipy.stats import chi2

import adaptive
from adaptive.calibration.cml import elementary_symmetric, fit_cml
from adaptive.exceptions import CalibrationError

pytestmark = pytest.mark.reference


def _enumerated_gamma(eps):
    g = np.zeros(len(eps) + 1)
    for bits in itertools.product((0, 1), repeat=len(eps)):
        g[sum(bits)] += math.prod(e for e, x in zip(eps, bits) if x)
    return g


def _conditional_loglik(b, x, mask):
    b = np.asarray(b)
    eps = np.exp(-b)
    total = 0.0
    gammas = {}  # one enumeration per answered-item set
    for row, m in zip(x, mask):
        items = np.flatnonzero(m)
        r = int(row[items].sum())
        if 0 < r < items.size:
            key = tuple(items)
            if key not in gammas:
                gammas[key] = _enumerated_gamma(eps[items])
            total += -float(row[items] @ b[items]) - math.log(gammas[key][r])
    return total


def _data(seed, n=400, n_items=6, missing=False):
    rng = np.random.default_rng(seed)
    b = np.linspace(-1.2, 1.2, n_items)
    theta = rng.normal(size=n)
    x = (rng.random((n, n_items)) < 1 / (1 + np.exp(-(theta[:, None] - b)))).astype(float)
    if missing:  # two forms sharing items 2-3
        x[: n // 2, 4:] = np.nan
        x[n // 2:, :2] = np.nan
    return x


def test_esf_equals_enumeration():
    eps = np.array([0.3, 1.7, 0.9, 2.5, 0.05])
    assert np.allclose(elementary_symmetric(eps[None, :])[0], _enumerated_gamma(eps), rtol=1e-13)


@pytest.mark.parametrize("missing", [False, True])
def test_estimates_maximize_the_enumerated_conditional_likelihood(missing):
    x = _data(3, missing=missing)
    mask = np.isfinite(x)
    vals = np.where(mask, x, 0.0)
    fit = fit_cml(x)
    assert fit.converged and abs(fit.difficulty.sum()) < 1e-10
    assert fit.loglik == pytest.approx(_conditional_loglik(fit.difficulty, vals, mask), abs=1e-8)

    def neg(free):
        b = np.concatenate([[-free.sum()], free])
        return -_conditional_loglik(b, vals, mask)

    opt = minimize(neg, np.zeros(x.shape[1] - 1), method="BFGS", options={"gtol": 1e-8})
    want = np.concatenate([[-opt.x.sum()], opt.x])
    assert np.allclose(fit.difficulty, want, atol=1e-4)
    assert -opt.fun == pytest.approx(fit.loglik, abs=1e-6)
    # SEs: the inverse Hessian of the enumerated likelihood by finite differences
    h = 1e-4
    k = x.shape[1] - 1
    hess = np.zeros((k, k))
    for i in range(k):
        for j in range(k):
            e_i, e_j = np.eye(k)[i] * h, np.eye(k)[j] * h
            hess[i, j] = (neg(opt.x + e_i + e_j) - neg(opt.x + e_i - e_j) - neg(opt.x - e_i + e_j)
                          + neg(opt.x - e_i - e_j)) / (4 * h * h)
    cov = np.linalg.inv(hess)
    assert np.allclose(fit.se[1:], np.sqrt(np.diag(cov)), rtol=2e-3)
    first = fit_cml(x, normalization="first")
    assert first.difficulty[0] == 0 and np.allclose(first.difficulty, fit.difficulty - fit.difficulty[0])
    assert first.loglik == pytest.approx(fit.loglik, abs=1e-8)


@pytest.mark.recovery
def test_recovery_and_andersen_under_the_model():
    rng = np.random.default_rng(8)
    b = rng.normal(size=25)
    theta = rng.normal(size=5000)
    x = (rng.random((5000, 25)) < 1 / (1 + np.exp(-(theta[:, None] - b)))).astype(float)
    fit = adaptive.calibrate(x, model="rasch", method="cml")
    z = (fit.difficulty - (b - b.mean())) / fit.se
    assert np.abs(z).max() < 3.5 and 0.7 < z.std() < 1.3
    test = fit.andersen_test()
    assert test.df == 24 and test.p_value > 0.01
    # a 2PL item breaks the model: Andersen's test sees it
    a = np.ones(25)
    a[:5] = 2.5
    x2 = (rng.random((5000, 25)) < 1 / (1 + np.exp(-a * (theta[:, None] - b)))).astype(float)
    bad = fit_cml(x2).andersen_test()
    assert bad.p_value < 1e-6 and bad.statistic > chi2.ppf(0.999, bad.df)


def test_refusals():
    x = _data(1)
    x[:, 2] = 1.0
    with pytest.raises(CalibrationError, match="category nobody"):
        fit_cml(x)
    with pytest.raises(CalibrationError, match="normalization"):
        fit_cml(_data(1), normalization="mean")
    with pytest.raises(CalibrationError, match="not 0 or 1"):
        fit_cml(np.array([[0, 2], [1, 0.0]]), model="rasch")
    with pytest.raises(CalibrationError, match="method='cml' fits"):
        adaptive.calibrate(_data(1), model="2pl", method="cml")


def _pcm_pattern_prob(steps, pattern):
    """Π_i ε_{i,x_i} with ε_ik = exp(-Σ_{v<=k} δ_iv), for the enumeration."""
    return math.prod(math.exp(-sum(steps[i][:x])) for i, x in enumerate(pattern))


def _pcm_data(seed, n=600):
    rng = np.random.default_rng(seed)
    steps = [[-0.8, 0.4], [-0.2, 0.9], [-1.0, -0.1], [0.3, 1.2]]
    theta = rng.normal(size=n)
    x = np.zeros((n, 4))
    for i, st in enumerate(steps):  # category probabilities of the PCM, one item at a time
        logits = np.stack([np.zeros(n)] + [k * theta - sum(st[:k]) for k in (1, 2)], axis=1)
        p = np.exp(logits - logits.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        x[:, i] = (rng.random(n)[:, None] > np.cumsum(p, axis=1)[:, :-1]).sum(axis=1)
    return x, steps


def test_pcm_esf_and_estimates_equal_enumeration():
    """Partial credit: γ_r by summing all 3^4 patterns; the CML maximum by BFGS on the enumerated conditional
    likelihood (steps summing to zero)."""
    from adaptive.calibration.cml import esf_polytomous

    x, steps = _pcm_data(5)
    eps = np.array([[1.0] + [math.exp(-sum(st[:k])) for k in (1, 2)] for st in steps])
    gamma = np.zeros(9)
    for pat in itertools.product(range(3), repeat=4):
        gamma[sum(pat)] += _pcm_pattern_prob(steps, pat)
    assert np.allclose(esf_polytomous(eps[None])[0], gamma, rtol=1e-13)
    fit = fit_cml(x, model="pcm")

    def neg(free):
        d = np.concatenate([[-free.sum()], free]).reshape(4, 2)
        g = np.zeros(9)
        probs = {pat: _pcm_pattern_prob(d, pat) for pat in itertools.product(range(3), repeat=4)}
        for pat, pr in probs.items():
            g[sum(pat)] += pr
        total = 0.0
        for row in x.astype(int):
            r = int(row.sum())
            if 0 < r < 8:
                total += math.log(probs[tuple(row)]) - math.log(g[r])
        return -total

    opt = minimize(neg, np.zeros(7), method="BFGS", options={"gtol": 1e-7})
    want = np.concatenate([[-opt.x.sum()], opt.x]).reshape(4, 2)
    assert fit.converged and np.allclose(fit.steps, want, atol=2e-4)
    assert fit.loglik == pytest.approx(-opt.fun, abs=1e-6)
    assert fit.model == "pcm" and np.isfinite(fit.steps_se).all()
    bank = fit.bank()
    assert bank.items[0].model == "pcm" and bank.items[0].thresholds == pytest.approx(list(fit.steps[0]))


@pytest.mark.recovery
def test_pcm_recovery_and_andersen():
    x, steps = _pcm_data(7, n=6000)
    fit = adaptive.calibrate(x, model="pcm", method="cml")
    true = np.array(steps) - np.mean(steps)
    z = (fit.steps - true) / fit.steps_se
    assert np.abs(z).max() < 3.5
    test = fit.andersen_test()
    assert test.df == 7 and test.p_value > 0.01

