"""The linear-predictor models (M2PL, MGRM, MGPCM, nominal): against the unidimensional families at K = 1,
against closed forms, and their derivatives against central differences."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adaptive.irt import dichotomous, graded, partial_credit
from adaptive.irt.linear import (
    LinearKind,
    information,
    log_prob,
    n_internal,
    nominal_from_mirt,
    nominal_to_mirt,
    prob_jacobian,
    score,
)


def _mixed(seed, n_dims):
    """Five items of every kind (nominal only when K = 1), graded intercepts decreasing."""
    rng = np.random.default_rng(seed)
    kinds = [LinearKind.LOGISTIC, LinearKind.GRADED, LinearKind.GPCM, LinearKind.GRADED, LinearKind.LOGISTIC,
             LinearKind.LOGISTIC3]
    n_cat = [2, 4, 3, 3, 2, 2]
    if n_dims == 1:
        kinds.append(LinearKind.NOMINAL)
        n_cat.append(4)
    p = n_internal(n_dims, 4)
    phi = rng.normal(scale=0.7, size=(len(kinds), p))
    phi[:, :n_dims] = np.abs(phi[:, :n_dims]) + 0.3
    for j, (k, c) in enumerate(zip(kinds, n_cat)):
        if k == LinearKind.GRADED:
            phi[j, n_dims:n_dims + c - 1] = np.sort(rng.normal(size=c - 1))[::-1] - np.arange(c - 1) * 0.2
    return np.array(kinds), np.array(n_cat), phi


def test_one_dimension_equals_the_unidimensional_families():
    theta = np.linspace(-3, 3, 13)
    a, b = 1.3, np.array([-0.8, 0.1, 0.9])
    # 2PL: d = -a b
    lp = log_prob([LinearKind.LOGISTIC], [2], [[a, -a * b[0], 0.0, 0.0][:n_internal(1, 2)]], theta)[0]
    np.testing.assert_allclose(lp, dichotomous.log_prob(theta, [a], [b[0]])[:, 0], atol=1e-12)
    # graded: d_k = -a b_k
    phi = np.r_[a, -a * b, 0.0, 0.0][:n_internal(1, 4)]
    np.testing.assert_allclose(log_prob([LinearKind.GRADED], [4], [phi], theta)[0],
                               graded.log_prob(theta, [a], [b])[:, 0], atol=1e-12)
    # GPCM: d_k = -a (b_1 + .. + b_k)
    phi = np.r_[a, -a * np.cumsum(b), 0.0, 0.0][:n_internal(1, 4)]
    np.testing.assert_allclose(log_prob([LinearKind.GPCM], [4], [phi], theta)[0],
                               partial_credit.log_prob(theta, [a], [b])[:, 0], atol=1e-12)
    # M3PL: d = -a b, the last slot logit c
    c = 0.2
    phi = np.array([[a, -a * b[0], np.log(c / (1 - c))]])
    np.testing.assert_allclose(log_prob([LinearKind.LOGISTIC3], [2], phi, theta)[0],
                               dichotomous.log_prob(theta, [a], [b[0]], [c])[:, 0], atol=1e-12)
    np.testing.assert_allclose(information([LinearKind.LOGISTIC3], [2], phi, theta)[0, :, 0, 0],
                               dichotomous.information(theta, [a], [b[0]], [c])[:, 0], rtol=1e-10)


def test_m2pl_information_is_the_closed_form():
    kinds, n_cat, phi = np.array([0, 0]), np.array([2, 2]), np.array([[1.2, 0.4, -0.3], [0.0, 1.7, 0.8]])
    theta = np.array([[0.3, -1.0], [-2.0, 1.5]])
    p = 1 / (1 + np.exp(-(theta @ phi[:, :2].T + phi[:, 2])))  # (Q, I)
    want = (p * (1 - p)).T[:, :, None, None] * phi[:, None, :2, None] * phi[:, None, None, :2]
    np.testing.assert_allclose(information(kinds, n_cat, phi, theta), want, rtol=1e-12)


@pytest.mark.property
@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), n_dims=st.integers(1, 3))
def test_derivatives_match_central_differences(seed, n_dims):
    kinds, n_cat, phi = _mixed(seed, n_dims)
    theta = np.random.default_rng(seed + 1).normal(size=(4, n_dims))
    prob, jac = prob_jacobian(kinds, n_cat, phi, theta)
    lp = log_prob(kinds, n_cat, phi, theta)
    np.testing.assert_allclose(np.where(lp > -999, np.exp(lp), 0.0), prob, atol=1e-13)
    np.testing.assert_allclose(prob.sum(axis=2), 1.0, atol=1e-12)
    h = 1e-6
    for j in range(phi.shape[1]):
        e = np.zeros(phi.shape[1])
        e[j] = h
        up, down = np.exp(log_prob(kinds, n_cat, phi + e, theta)), np.exp(log_prob(kinds, n_cat, phi - e, theta))
        num = np.where(lp > -999, (up - down) / (2 * h), 0.0)
        np.testing.assert_allclose(jac[..., j], num, atol=1e-7)
    # θ side: the score of each category, and the information = -E[∂² log P]
    info = information(kinds, n_cat, phi, theta)
    minus_hess = np.zeros_like(info)
    for c in range(4):
        cat = np.minimum(c, n_cat - 1)
        has = (c < n_cat)[:, None]
        s = score(kinds, n_cat, phi, theta, cat)
        for k in range(n_dims):
            e = np.zeros(n_dims)
            e[k] = h
            f_up = np.take_along_axis(log_prob(kinds, n_cat, phi, theta + e), cat[:, None, None], 2)[:, :, 0]
            f_dn = np.take_along_axis(log_prob(kinds, n_cat, phi, theta - e), cat[:, None, None], 2)[:, :, 0]
            np.testing.assert_allclose(np.where(has, s[:, :, k], 0), np.where(has, (f_up - f_dn) / (2 * h), 0),
                                       atol=1e-6)
            ds = (score(kinds, n_cat, phi, theta + e, cat) - score(kinds, n_cat, phi, theta - e, cat)) / (2 * h)
            minus_hess[:, :, :, k] -= np.where(has, np.take_along_axis(prob, cat[:, None, None], 2)[:, :, 0],
                                               0)[..., None] * ds
    np.testing.assert_allclose(info, minus_hess, atol=1e-6)


def test_paired_evaluation_equals_the_grid_diagonal():
    kinds, n_cat, phi = _mixed(3, 2)
    n_items = len(kinds)
    theta = np.random.default_rng(4).normal(size=(n_items, 2))
    full = log_prob(kinds, n_cat, phi, theta)              # (I, Q, C): every item at every node
    paired = log_prob(kinds, n_cat, phi, theta[:, None, :])  # item j at node j only
    np.testing.assert_allclose(paired[:, 0], full[np.arange(n_items), np.arange(n_items)], atol=1e-14)


def test_nominal_parameterizations_round_trip_and_match_bock_form():
    """mirt's nominal: P(k) ∝ exp(a1 ak_k θ + d_k), ak0 = 0, ak{C-1} = C-1, d0 = 0 (mirt's documentation)."""
    a1, ak, d = np.array([0.6]), np.array([[0.0, 0.4, -1.1, 3.0]]), np.array([[0.0, 0.5, -0.2, 0.9]])
    phi = nominal_from_mirt(a1, ak, d)
    theta = np.linspace(-3, 3, 7)
    z = a1[:, None, None] * ak[:, None, :] * theta[None, :, None] + d[:, None, :]
    want = z - np.log(np.exp(z).sum(axis=2, keepdims=True))
    np.testing.assert_allclose(log_prob([LinearKind.NOMINAL], [4], phi, theta), want, atol=1e-12)
    back = nominal_to_mirt(phi, [4])
    np.testing.assert_allclose(back[0], a1)
    np.testing.assert_allclose(back[1], ak, atol=1e-12)
    np.testing.assert_allclose(back[2], d, atol=1e-12)
