"""Response models against closed forms, mpmath and numerical differentiation.

Sources named per test:
* 2PL information a^2 P Q and Birnbaum's 3PL information a^2 (Q/P) ((P-c)/(1-c))^2:
  Lord (1980), Applications of IRT to Practical Testing Problems, eqs. 5.9 and 5.19.
* GRM information sum_k (P*_k' - P*_{k+1}')^2 / P_k: Samejima (1969); Baker & Kim (2004) eq. 8.27.
* GPCM information a^2 Var[X | theta]: Muraki (1993), "Information functions of the GPCM".
* Category probabilities: evaluated directly from the model definitions in mpmath at 50 digits.
"""

from __future__ import annotations

import mpmath as mp
import numpy as np
import pytest

from adaptive.irt import dichotomous, graded, mixed, partial_credit
from adaptive.irt.registry import Family

mp.mp.dps = 50
THETA = np.linspace(-4.0, 4.0, 17)


def _mp_4pl(theta, a, b, c, d):
    return c + (d - c) / (1 + mp.e ** (-a * (theta - b)))


def _mp_grm(theta, a, bs):
    star = [mp.mpf(1)] + [1 / (1 + mp.e ** (-a * (theta - bk))) for bk in bs] + [mp.mpf(0)]
    return [star[k] - star[k + 1] for k in range(len(bs) + 1)]


def _mp_gpcm(theta, a, steps):
    eta = [mp.mpf(0)]
    for s in steps:
        eta.append(eta[-1] + a * (theta - s))
    den = mp.fsum(mp.e**e for e in eta)
    return [mp.e**e / den for e in eta]


@pytest.mark.parametrize("theta", [-7.5, -2.0, 0.3, 1.7, 9.0])
def test_4pl_probabilities_match_mpmath(theta):
    a, b, c, d = [1.3, 0.8, 2.1], [-0.5, 1.2, 3.0], [0.2, 0.0, 0.25], [0.97, 1.0, 0.9]
    lp = dichotomous.log_prob(np.array([theta]), a, b, c, d)[0]
    for i in range(3):
        p1 = _mp_4pl(mp.mpf(theta), mp.mpf(a[i]), mp.mpf(b[i]), mp.mpf(c[i]), mp.mpf(d[i]))
        assert lp[i, 1] == pytest.approx(float(mp.log(p1)), rel=1e-12, abs=1e-13)
        assert lp[i, 0] == pytest.approx(float(mp.log(1 - p1)), rel=1e-12, abs=1e-13)


@pytest.mark.parametrize("theta", [-9.0, -1.1, 0.0, 2.4, 9.5])
def test_graded_probabilities_match_mpmath(theta):
    a, bs = 1.7, [-1.5, -0.2, 0.4, 2.0]
    lp = graded.log_prob(np.array([theta]), [a], [bs])[0, 0]
    ref = _mp_grm(mp.mpf(theta), mp.mpf(a), [mp.mpf(x) for x in bs])
    np.testing.assert_allclose(lp, [float(mp.log(p)) for p in ref], rtol=1e-11)


@pytest.mark.parametrize("theta", [-9.0, -1.1, 0.0, 2.4, 9.5])
def test_gpcm_probabilities_match_mpmath(theta):
    a, steps = 0.9, [0.5, -0.7, 1.8]  # unordered steps are allowed in the GPCM
    lp = partial_credit.log_prob(np.array([theta]), [a], [steps])[0, 0]
    ref = _mp_gpcm(mp.mpf(theta), mp.mpf(a), [mp.mpf(x) for x in steps])
    np.testing.assert_allclose(lp, [float(mp.log(p)) for p in ref], rtol=1e-11)


def test_2pl_information_closed_form():
    """Lord (1980) eq. 5.9: I = a^2 P Q."""
    a, b = np.array([0.5, 1.0, 2.5]), np.array([-1.0, 0.0, 1.5])
    p = 1 / (1 + np.exp(-a * (THETA[:, None] - b)))
    np.testing.assert_allclose(dichotomous.information(THETA, a, b), a**2 * p * (1 - p), rtol=1e-12)


def test_3pl_information_birnbaum():
    """Lord (1980) eq. 5.19: I = a^2 (Q/P) ((P - c)/(1 - c))^2."""
    a, b, c = np.array([0.8, 1.6]), np.array([0.0, 1.0]), np.array([0.2, 0.25])
    p = c + (1 - c) / (1 + np.exp(-a * (THETA[:, None] - b)))
    ref = a**2 * (1 - p) / p * ((p - c) / (1 - c)) ** 2
    np.testing.assert_allclose(dichotomous.information(THETA, a, b, c), ref, rtol=1e-11)


def test_4pl_information_closed_form():
    """4PL: I = P'^2 / (P Q) with P' = a (P - c)(d - P)/(d - c) (Magis 2013, eq. 6)."""
    a, b, c, d = 1.4, 0.3, 0.15, 0.92
    p = c + (d - c) / (1 + np.exp(-a * (THETA - b)))
    dp = a * (p - c) * (d - p) / (d - c)
    ref = dp**2 / (p * (1 - p))
    np.testing.assert_allclose(dichotomous.information(THETA, [a], [b], [c], [d])[:, 0], ref, rtol=1e-11)


def test_graded_information_closed_form():
    """Samejima (1969): I = sum_k (P*_k' - P*_{k+1}')^2 / P_k, with P*' = a P* Q*."""
    a, bs = 1.3, np.array([-1.0, 0.2, 1.4])
    star = 1 / (1 + np.exp(-a * (THETA[:, None] - bs)))
    star = np.hstack([np.ones((THETA.size, 1)), star, np.zeros((THETA.size, 1))])
    dstar = a * star * (1 - star)
    p = star[:, :-1] - star[:, 1:]
    ref = ((dstar[:, :-1] - dstar[:, 1:]) ** 2 / p).sum(axis=1)
    np.testing.assert_allclose(graded.information(THETA, [a], [bs])[:, 0], ref, rtol=1e-10)


def test_gpcm_information_is_a2_var():
    """Muraki (1993): I = a^2 Var[X | theta]."""
    a, steps = 1.2, np.array([-0.5, 0.7, 0.1])
    p = partial_credit.prob(THETA, [a], [steps])[:, 0]
    k = np.arange(4)
    var = p @ k**2 - (p @ k) ** 2
    np.testing.assert_allclose(partial_credit.information(THETA, [a], [steps])[:, 0], a**2 * var, rtol=1e-10)


def test_rasch_information_at_b_is_one_quarter():
    assert dichotomous.information(np.array([0.7]), [1.0], [0.7])[0, 0] == pytest.approx(0.25, abs=1e-15)


# ---------------------------------------------------------------- derivatives

def _numeric_theta(log_prob_fun, theta, h=1e-5):
    f1 = (log_prob_fun(theta + h) - log_prob_fun(theta - h)) / (2 * h)
    f2 = (log_prob_fun(theta + h) - 2 * log_prob_fun(theta) + log_prob_fun(theta - h)) / h**2
    return f1, f2


THETA_FD = np.array([-3.1, -0.4, 0.0, 1.3, 3.7])
GRM_A, GRM_B = np.array([1.1, 2.0]), np.array([[-1.2, 0.1, 1.5], [-0.5, 0.6, np.nan]])
GRM_N = np.array([4, 3])
PC_A, PC_S = np.array([0.7, 1.5]), np.array([[0.4, -0.9, 1.1], [-0.2, 0.8, np.nan]])
PC_N = np.array([4, 3])
D4 = (np.array([1.2, 0.6, 2.2]), np.array([-0.3, 1.0, 0.4]), np.array([0.2, 0.05, 0.1]), np.array([0.95, 0.99, 0.9]))


@pytest.mark.parametrize(
    "name, fn",
    [
        ("4pl", lambda t: dichotomous.terms(t, *D4)),
        ("graded", lambda t: graded.terms(t, GRM_A, GRM_B, GRM_N)),
        ("gpcm", lambda t: partial_credit.terms(t, PC_A, PC_S, PC_N)),
    ],
)
def test_theta_derivatives_match_finite_differences(name, fn):
    tm = fn(THETA_FD)
    valid = tm.log_prob > -500  # padded categories carry LOG_ZERO and zero derivatives
    f1, f2 = _numeric_theta(lambda t: fn(t).log_prob, THETA_FD, h=1e-4)
    np.testing.assert_allclose(tm.dlog_prob[valid], f1[valid], rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(tm.d2log_prob[valid], f2[valid], rtol=1e-4, atol=1e-5)
    # and the probability derivatives built from them
    h = 1e-5
    dp_num = (fn(THETA_FD + h).prob - fn(THETA_FD - h).prob) / (2 * h)
    np.testing.assert_allclose(tm.dprob, dp_num, rtol=1e-6, atol=1e-9)


def _internal_fd(log_prob_of, phi, n_valid, h=1e-6):
    """Central differences of ``log_prob_of(phi)`` ``(I, Q, K)`` in every valid entry of ``phi (I, p)``."""
    base = log_prob_of(phi)
    out = np.zeros(base.shape + (phi.shape[1],))
    for i in range(phi.shape[0]):
        for j in range(n_valid[i]):
            plus, minus = phi.copy(), phi.copy()
            plus[i, j] += h
            minus[i, j] -= h
            out[i, :, :, j] = (log_prob_of(plus)[i] - log_prob_of(minus)[i]) / (2 * h)
    return out


def test_dichotomous_internal_gradient_matches_finite_differences():
    """The one parameter gradient there is: in the internal vector [a, delta, gamma, omega] calibration uses."""
    phi = dichotomous.from_irt(*D4)
    grad = dichotomous.internal_log_prob(phi, THETA_FD)[1]
    num = _internal_fd(lambda ph: dichotomous.internal_log_prob(ph, THETA_FD, need_grad=False)[0], phi,
                       np.full(phi.shape[0], 4))
    np.testing.assert_allclose(grad, num, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(np.stack(dichotomous.to_irt(phi)), np.stack(D4), rtol=1e-12)  # round trip


@pytest.mark.parametrize("module, a, thr, n_cat", [(graded, GRM_A, GRM_B, GRM_N), (partial_credit, PC_A, PC_S, PC_N)])
def test_polytomous_internal_gradient_matches_finite_differences(module, a, thr, n_cat):
    k_max = int(n_cat.max())
    phi = np.zeros((a.size, k_max))
    phi[:, 0] = a
    phi[:, 1:] = module.from_irt(a, thr, n_cat)
    grad = module.internal_log_prob(phi, n_cat, THETA_FD, k_max)[1]
    num = _internal_fd(lambda ph: module.internal_log_prob(ph, n_cat, THETA_FD, k_max, need_grad=False)[0], phi,
                       n_cat)
    valid = np.arange(k_max)[None, :] < n_cat[:, None]
    num[np.broadcast_to(~valid[:, None, :], num.shape[:3])] = 0.0
    np.testing.assert_allclose(grad, num, rtol=1e-6, atol=1e-8)
    # the internal form gives the same probabilities as the IRT form, and converts back
    lp_irt = module.log_prob(THETA_FD, a, thr, n_cat)  # (Q, I, K)
    lp_int = module.internal_log_prob(phi, n_cat, THETA_FD, k_max, need_grad=False)[0]  # (I, Q, K)
    np.testing.assert_allclose(np.where(valid[:, None, :], lp_int, 0.0),
                               np.where(valid[None, :, :], lp_irt, 0.0).transpose(1, 0, 2), atol=1e-10)
    back = module.to_irt(phi, n_cat, k_max)
    np.testing.assert_allclose(np.where(valid[:, 1:], back, 0.0), np.where(valid[:, 1:], thr, 0.0), atol=1e-12)


def test_mixed_bank_is_one_call_and_matches_each_family():
    family = np.array([Family.DICHOTOMOUS, Family.GRADED, Family.PARTIAL_CREDIT, Family.DICHOTOMOUS])
    a = np.array([1.2, 1.1, 0.7, 0.8])
    thr = np.array([[0.3, np.nan, np.nan], [-1.2, 0.1, 1.5], [0.4, -0.9, 1.1], [-1.0, np.nan, np.nan]])
    c = np.array([0.2, 0.0, 0.0, 0.0])
    d = np.ones(4)
    n_cat = np.array([2, 4, 4, 2])
    theta = np.linspace(-3, 3, 7).reshape(7, 1)  # any shape broadcasts
    tm = mixed.terms(theta, family, a, thr, c, d, n_cat)
    assert tm.log_prob.shape == (7, 1, 4, 4)
    np.testing.assert_allclose(tm.prob[..., 0, :2], dichotomous.prob(theta, [1.2], [0.3], [0.2], [1.0])[..., 0, :])
    np.testing.assert_allclose(tm.prob[..., 1, :], graded.prob(theta, [1.1], thr[1:2])[..., 0, :])
    np.testing.assert_allclose(tm.prob[..., 2, :], partial_credit.prob(theta, [0.7], thr[2:3])[..., 0, :])
    assert np.all(tm.prob[..., [0, 3], 2:] == 0.0)
    np.testing.assert_allclose(tm.prob.sum(-1), 1.0, rtol=1e-12)
    # the estimation side: one call, each family's rows equal to that family's own
    phi = mixed.from_irt(family, n_cat, a, thr, c, d, 4)
    nodes = theta.ravel()
    lp, g = mixed.internal_log_prob_and_grad(family, n_cat, phi, nodes)
    lp_g, g_g = graded.internal_log_prob(phi[1:2], n_cat[1:2], nodes, 4)
    np.testing.assert_allclose(lp[1], lp_g[0])
    np.testing.assert_allclose(g[1], g_g[0])
    np.testing.assert_allclose(np.exp(lp).transpose(1, 0, 2), tm.prob[:, 0], atol=1e-12)
    back = mixed.to_irt(family, n_cat, phi)
    np.testing.assert_allclose(back[1][:, :3], thr, atol=1e-12)


def test_pcm_is_gpcm_with_unit_slope():
    steps = np.array([[-0.4, 0.9]])
    np.testing.assert_allclose(partial_credit.prob(THETA, [1.0], steps), partial_credit.prob(THETA, 1.0, steps))
