"""Standard errors and fit statistics against independent computations.

* Oakes standard errors: the inverse of a numerical Hessian (central differences) of the marginal
  log-likelihood written out below from its definition (log-sum-exp over the same 61 nodes).
* S-X2: the summed-score distributions and expected proportions by brute-force enumeration of all patterns.
* infit/outfit and lz: their textbook formulas at the reported EAP θ.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy.special import expit, logsumexp

import adaptive
from adaptive.calibration.fit import summed_score_distribution, sx2
from adaptive.synthetic import simulate_responses, synthetic_bank

NODES = np.linspace(-6, 6, 61)


def _log_w(mu=0.0, sd=1.0):
    lw = -0.5 * ((NODES - mu) / sd) ** 2
    return lw - logsumexp(lw)


def _num_hessian(f, x, h=1e-4):
    n = x.size
    hess = np.zeros((n, n))
    for i in range(n):
        for j in range(i, n):
            e_i = np.zeros(n); e_i[i] = h  # noqa: E702
            e_j = np.zeros(n); e_j[j] = h  # noqa: E702
            v = (f(x + e_i + e_j) - f(x + e_i - e_j) - f(x - e_i + e_j) + f(x - e_i - e_j)) / (4 * h * h)
            hess[i, j] = hess[j, i] = v
    return hess


def _dich_data(model, n_items, n, seed, missing=0.0):
    bank = synthetic_bank(n_items, model=model, rng=seed)
    theta = np.random.default_rng(seed + 1).standard_normal(n)
    return simulate_responses(bank.compile(), theta, rng=seed + 2, missing=missing)


def test_oakes_se_2pl_with_missing_equals_numerical_hessian():
    x = _dich_data("2pl", 6, 800, 21, missing=0.2)
    res = adaptive.calibrate(x, model="2pl", tol=1e-8)
    m = ~np.isnan(x)
    xv = np.where(m, x, 0.0)

    def ll(v):
        a, d = v[0::2], v[1::2]
        z = a[None, :] * NODES[:, None] + d[None, :]  # (Q, I)
        l1, l0 = -np.logaddexp(0, -z), -np.logaddexp(0, z)
        table = xv @ l1.T + (m * (1 - xv)) @ l0.T + _log_w()
        return logsumexp(table, axis=1).sum()

    v = np.column_stack([res.a, -res.a * res.thresholds[:, 0]]).ravel()
    cov = np.linalg.inv(-_num_hessian(ll, v))
    se = res.standard_errors
    assert se.names[:2] == (f"{res.item_ids[0]} a", f"{res.item_ids[0]} intercept")
    np.testing.assert_allclose(se.covariance, cov, rtol=2e-3, atol=1e-7)
    # delta method for b = -d / a
    for i, iid in enumerate(res.item_ids):
        a, d = v[2 * i], v[2 * i + 1]
        jac = np.array([d / a ** 2, -1 / a])
        assert se[iid]["b"] == pytest.approx(np.sqrt(jac @ cov[2 * i:2 * i + 2, 2 * i:2 * i + 2] @ jac), rel=2e-3)
        assert se[iid]["a"] == pytest.approx(np.sqrt(cov[2 * i, 2 * i]), rel=2e-3)


def test_oakes_se_3pl_with_beta_prior_includes_the_prior_curvature():
    x = _dich_data("3pl", 5, 1500, 31)
    res = adaptive.calibrate(x, model="3pl", priors={"c": "beta(5, 17)"}, tol=1e-7)

    def lpost(v):
        a, d, g = v[0::3], v[1::3], v[2::3]
        c = expit(g)
        z = a[None, :] * NODES[:, None] + d[None, :]
        p = c + (1 - c) * expit(z)
        table = x @ np.log(p).T + (1 - x) @ np.log1p(-p).T + _log_w()
        return logsumexp(table, axis=1).sum() + np.sum(4 * np.log(c) + 16 * np.log1p(-c))

    v = np.column_stack([res.a, -res.a * res.thresholds[:, 0], np.log(res.c / (1 - res.c))]).ravel()
    # h = 5e-4: at 2e-4 the rounding of log-likelihoods near -5,000 (~1e-12) moves the smallest covariances
    # (~4e-5, between items) by ~1%; the truncation error at 5e-4 is below 1e-6 relative
    cov = np.linalg.inv(-_num_hessian(lpost, v, h=5e-4))
    np.testing.assert_allclose(res.standard_errors.covariance, cov, rtol=5e-3, atol=1e-7)


def test_oakes_se_rasch_includes_latent_sd():
    bank = synthetic_bank(5, model="2pl", rng=41)
    items = [{"id": it.id, "model": "rasch", "b": it.b} for it in bank.items]
    rb = adaptive.ItemBank(items=items)
    theta = 1.4 * np.random.default_rng(42).standard_normal(1200)
    x = simulate_responses(rb.compile(), theta, rng=43)
    res = adaptive.calibrate(x, model="rasch", tol=1e-7)
    assert res.latent[0, 1] == pytest.approx(1.4, abs=0.15)

    def ll(v):
        d, log_sd = v[:-1], v[-1]
        z = NODES[:, None] + d[None, :]
        table = x @ (-np.logaddexp(0, -z)).T + (1 - x) @ (-np.logaddexp(0, z)).T + _log_w(0.0, np.exp(log_sd))
        return logsumexp(table, axis=1).sum()

    v = np.concatenate([-res.thresholds[:, 0], [np.log(res.latent[0, 1])]])
    cov = np.linalg.inv(-_num_hessian(ll, v))
    np.testing.assert_allclose(res.standard_errors.covariance, cov, rtol=3e-3, atol=1e-7)
    assert res.standard_errors.latent["all sd"] == pytest.approx(np.sqrt(cov[-1, -1]) * res.latent[0, 1], rel=3e-3)


def test_crossprod_and_sandwich_are_consistent_with_oakes():
    x = _dich_data("2pl", 8, 3000, 51)
    res = adaptive.calibrate(x, model="2pl", tol=1e-8)
    o, c, s = (res.se(m) for m in ("oakes", "crossprod", "sandwich"))
    # under a correct model the three estimate the same covariance (information-matrix equality)
    np.testing.assert_allclose(c.internal, o.internal, rtol=0.12)
    np.testing.assert_allclose(s.internal, o.internal, rtol=0.12)
    assert np.all(np.linalg.eigvalsh(o.covariance) > 0)


def test_not_positive_definite_information_is_explained():
    from adaptive.calibration.se import _inverse

    flat = np.diag([4.0, 1e-14, 2.0])
    with pytest.raises(adaptive.CalibrationError, match="not positive definite.*'Q2 logit\\(c\\)'.*prior"):
        _inverse(flat, ["Q1 a", "Q2 logit(c)", "Q3 a"], "observed information")


# ------------------------------------------------------------------ S-X2


def _brute_sx2(values, prob, weights):
    n_i = values.shape[1]
    pats = np.array(list(itertools.product([0, 1], repeat=n_i)))
    lik = np.prod(np.where(pats[:, None, :] == 1, prob[:, :, 1].T[None], prob[:, :, 0].T[None]), axis=2)  # (P, Q)
    s_of = pats.sum(axis=1)
    total = values.sum(axis=1)
    stats = []
    for i in range(n_i):
        stat = 0.0
        for s in range(1, n_i):
            den = weights @ lik[s_of == s].sum(axis=0)
            e1 = weights @ lik[(s_of == s) & (pats[:, i] == 1)].sum(axis=0) / den
            n_s = np.sum(total == s)
            o1 = np.sum((total == s) & (values[:, i] == 1))
            stat += (o1 - n_s * e1) ** 2 / (n_s * e1) + ((n_s - o1) - n_s * (1 - e1)) ** 2 / (n_s * (1 - e1))
        stats.append(stat)
    return np.array(stats), lik, s_of


def test_sx2_equals_brute_force_enumeration():
    rng = np.random.default_rng(71)
    a = np.array([1.0, 1.4, 0.7, 1.2, 0.9])
    b = np.array([-1.0, -0.3, 0.0, 0.5, 1.1])
    theta = rng.standard_normal(4000)
    x = (rng.random((4000, 5)) < expit(a * (theta[:, None] - b))).astype(int)
    p1 = expit(a[:, None] * (NODES[None, :] - b[:, None]))
    prob = np.stack([1 - p1, p1], axis=2)  # (I, Q, 2)
    w = np.exp(_log_w())
    stat, df, p = sx2(x, prob, np.full(5, 2), w, np.full(5, 2), min_expected=1e-9)
    ref, lik, s_of = _brute_sx2(x, prob, w)
    np.testing.assert_allclose(stat, ref, rtol=1e-10)
    assert np.all(df == 4 * 1 - 2)
    # the Lord-Wingersky distribution itself
    f = summed_score_distribution(prob)
    for s in range(6):
        np.testing.assert_allclose(f[:, s], lik[s_of == s].sum(axis=0), rtol=1e-12, atol=1e-300)
    # data generated by the model: p-values not extreme
    assert np.all(p > 0.001)


def test_sx2_flags_a_misfitting_item_and_handles_missing_data_by_imputation():
    rng = np.random.default_rng(81)
    n = 3000
    theta = rng.standard_normal(n)
    b = np.linspace(-1.5, 1.5, 12)
    p = expit(1.2 * (theta[:, None] - b))
    p[:, 5] = np.where(np.abs(theta) < 0.7, 0.9, 0.3)  # not monotone: no 2PL curve follows it
    x = (rng.random((n, 12)) < p).astype(float)
    res = adaptive.calibrate(x, model="2pl")
    fit = res.item_fit()
    assert fit.p_sx2[5] < 1e-4
    assert sum(p < 0.01 for k, p in enumerate(fit.p_sx2) if k != 5) <= 2  # the misfit leaks into the scores
    xm = x.copy()
    xm[rng.random(x.shape) < 0.3] = np.nan
    fit_m = adaptive.calibrate(xm, model="2pl").item_fit(imputations=3, seed=1)
    assert fit_m.p_sx2[5] < 1e-3
    assert fit_m.to_records() == adaptive.calibrate(xm, model="2pl").item_fit(imputations=3, seed=1).to_records()


def test_infit_outfit_and_lz_follow_their_formulas():
    x = _dich_data("2pl", 10, 600, 91, missing=0.1)
    res = adaptive.calibrate(x, model="2pl")
    theta, _ = res.theta()
    p = expit(res.a[None, :] * (theta[:, None] - res.thresholds[None, :, 0]))
    m = ~np.isnan(x)
    xv = np.where(m, x, 0)
    var = p * (1 - p)
    z2 = (xv - p) ** 2 / var
    infit = np.where(m, (xv - p) ** 2, 0).sum(0) / np.where(m, var, 0).sum(0)
    outfit = np.where(m, z2, 0).sum(0) / m.sum(0)
    rows = res.item_fit()
    np.testing.assert_allclose(rows.infit, infit, rtol=1e-10)
    np.testing.assert_allclose(rows.outfit, outfit, rtol=1e-10)
    l0 = np.where(m, xv * np.log(p) + (1 - xv) * np.log1p(-p), 0).sum(1)
    el = np.where(m, p * np.log(p) + (1 - p) * np.log1p(-p), 0).sum(1)
    vl = np.where(m, p * (1 - p) * np.log(p / (1 - p)) ** 2, 0).sum(1)
    lz = (l0 - el) / np.sqrt(vl)
    np.testing.assert_allclose(res.person_fit().lz, lz, rtol=1e-8, atol=1e-10)
