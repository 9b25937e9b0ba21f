"""Multiple-group calibration with factors=: the reference group N(0, R), the focal group's means, variances and
correlation estimated, items shared. Seeded recovery; the estimate as a stationary point of a brute-force
two-group grid log-likelihood (numpy only, central differences); scores under each group's own prior."""

import numpy as np
import pytest
from scipy.special import logsumexp

import adaptive
from adaptive.exceptions import CalibrationError
from adaptive.scoring.multidim import estimate_vector

FOCAL_MEAN = np.array([0.4, -0.2])
FOCAL_SD = np.array([1.3, 0.8])


def _data(rng, n_per, r_ref=0.5, r_focal=0.3):
    ref = rng.multivariate_normal([0, 0], [[1, r_ref], [r_ref, 1]], n_per)
    cov = np.outer(FOCAL_SD, FOCAL_SD) * np.array([[1, r_focal], [r_focal, 1]])
    focal = rng.multivariate_normal(FOCAL_MEAN, cov, n_per)
    theta = np.vstack([ref, focal])
    a = np.zeros((16, 2))
    a[:8, 0], a[8:, 1] = rng.uniform(1.0, 2.0, 8), rng.uniform(1.0, 2.0, 8)
    d = rng.normal(0, 1, 16)
    x = (rng.random((2 * n_per, 16)) < 1 / (1 + np.exp(-(theta @ a.T + d)))).astype(float)
    ids = [f"I{j:02d}" for j in range(16)]
    groups = np.array(["ref"] * n_per + ["focal"] * n_per)
    return x, ids, {"F1": ids[:8], "F2": ids[8:]}, groups, a, d


@pytest.mark.recovery
def test_the_focal_groups_latent_distribution_and_the_items_are_recovered():
    x, ids, factors, groups, a, d = _data(np.random.default_rng(91), 4000)
    fit = adaptive.calibrate(x, item_ids=ids, model="2pl", factors=factors, groups=groups, reference_group="ref")
    assert fit.converged and "2 groups, reference 'ref'" in fit.integration
    assert list(fit.groups) == ["ref", "focal"]
    ref, focal = fit.groups["ref"], fit.groups["focal"]
    np.testing.assert_array_equal(ref["mean"], 0.0)
    np.testing.assert_array_equal(np.diag(ref["cov"]), 1.0)
    assert ref["cov"][0, 1] == pytest.approx(0.5, abs=0.05)
    np.testing.assert_allclose(focal["mean"], FOCAL_MEAN, atol=0.06)
    np.testing.assert_allclose(np.sqrt(np.diag(focal["cov"])), FOCAL_SD, atol=0.07)
    r = focal["cov"][0, 1] / np.sqrt(focal["cov"][0, 0] * focal["cov"][1, 1])
    assert r == pytest.approx(0.3, abs=0.06)
    on = a != 0
    assert np.sqrt(np.mean((fit.slopes[on] - a[on]) ** 2)) < 0.1
    assert np.sqrt(np.mean((fit.intercepts[:, 0] - d) ** 2)) < 0.08
    assert "group 'focal' (n = 4000)" in fit.summary()


def _brute(x, groups, slopes, d, latents, axis):
    nodes = np.stack([m.ravel() for m in np.meshgrid(axis, axis, indexing="ij")], axis=1)
    z = nodes @ slopes.T + d
    table = x @ (-np.logaddexp(0, -z)).T + (1 - x) @ (-np.logaddexp(0, z)).T
    total = 0.0
    for label, (mean, cov) in latents.items():
        c = nodes - mean
        lw = -0.5 * np.einsum("qk,kl,ql->q", c, np.linalg.inv(cov), c)
        lw -= logsumexp(lw)
        total += logsumexp(table[groups == label] + lw, axis=1).sum()
    return total


def test_the_estimate_is_a_stationary_point_and_scores_use_each_groups_prior():
    x, ids, factors, groups, *_ = _data(np.random.default_rng(92), 500)
    fit = adaptive.calibrate(x, item_ids=ids, model="2pl", factors=factors, groups=groups, reference_group="ref",
                             tol=1e-7)
    on = fit.slopes != 0
    axis = np.linspace(-6, 6, 31)
    f_cov = fit.groups["focal"]["cov"]
    gamma = np.concatenate([fit.slopes[on], fit.intercepts[:, 0], [fit.groups["ref"]["cov"][0, 1]],
                            fit.groups["focal"]["mean"], [f_cov[0, 0], f_cov[1, 1], f_cov[0, 1]]])

    def f(g):
        slopes = np.zeros((16, 2))
        slopes[on] = g[:16]
        ref = np.array([[1, g[32]], [g[32], 1]])
        foc = np.array([[g[35], g[37]], [g[37], g[36]]])
        return _brute(x, groups, slopes, g[16:32], {"ref": (np.zeros(2), ref), "focal": (g[33:35], foc)}, axis)

    assert f(gamma) == pytest.approx(fit.loglik, abs=1e-6)
    h = 1e-5
    grad = np.array([(f(gamma + h * e) - f(gamma - h * e)) / (2 * h) for e in np.eye(gamma.size)])
    assert np.abs(grad).max() < 5e-3
    se = fit.standard_errors()
    assert set(se.groups) == {"ref", "focal"} and np.all(se.groups["focal"]["mean"] > 0)
    assert np.isnan(se.groups["ref"]["mean"]).all() and se.groups["ref"]["cov"][0, 1] > 0
    scores = fit.scores()
    focal_rows = np.flatnonzero(groups == "focal")[:5]
    alone = estimate_vector(fit.bank, x[focal_rows], prior_mean=fit.groups["focal"]["mean"],
                            prior_cov=fit.groups["focal"]["cov"])
    np.testing.assert_allclose(scores.theta[focal_rows], alone.theta, rtol=1e-12)


def test_groups_with_factors_are_checked():
    x, ids, factors, groups, *_ = _data(np.random.default_rng(93), 100)
    cases = [
        ({"factors": factors, "groups": groups[:10]}, "labels for 200 response rows"),
        ({"factors": factors, "groups": groups, "reference_group": "other"}, "is not one of the groups"),
        ({"factors": factors, "groups": groups, "integration": "qmc"}, "on a product grid"),
        ({"bifactor": ["S"] * 16, "groups": groups}, "not available with bifactor="),
        ({"factors": factors, "groups": np.array(["ref"] * 199 + ["x"])}, "fewer than 2 persons"),
    ]
    for kwargs, message in cases:
        with pytest.raises(CalibrationError, match=message):
            adaptive.calibrate(x, item_ids=ids, model="2pl", **kwargs)


def test_m2_of_a_two_group_fit_equals_brute_force_enumeration():
    """The groups' moments stacked with shared parameters, against full enumeration of the 2^6 response patterns
    per group written here: Ξ = blockdiag(T (diag π_g - π_g π_gᵀ) Tᵀ), Δ = [√N_g T ∂π_g/∂γ], the statistic
    r' (Ξ⁻¹ - Ξ⁻¹Δ(Δ'Ξ⁻¹Δ)⁻¹Δ'Ξ⁻¹) r with r = [√N_g (p_g - T π_g)]."""
    from itertools import product

    rng = np.random.default_rng(94)
    n_per = 800
    ref = rng.multivariate_normal([0, 0], [[1, 0.5], [0.5, 1]], n_per)
    focal = rng.multivariate_normal([0.3, -0.2], [[1.2, 0.3], [0.3, 0.8]], n_per)
    a = np.zeros((6, 2))
    a[:3, 0], a[3:, 1] = rng.uniform(1, 2, 3), rng.uniform(1, 2, 3)
    d = rng.normal(0, 1, 6)
    theta = np.vstack([ref, focal])
    x = (rng.random((2 * n_per, 6)) < 1 / (1 + np.exp(-(theta @ a.T + d)))).astype(float)
    ids = [f"I{j}" for j in range(6)]
    groups = np.array(["ref"] * n_per + ["focal"] * n_per)
    fit = adaptive.calibrate(x, item_ids=ids, model="2pl", factors={"A": ids[:3], "B": ids[3:]}, groups=groups,
                             reference_group="ref", tol=1e-6)
    res = fit.m2()
    on = fit.slopes != 0
    f_cov = fit.groups["focal"]["cov"]
    gamma = np.concatenate([fit.slopes[on], fit.intercepts[:, 0], [fit.groups["ref"]["cov"][0, 1]],
                            fit.groups["focal"]["mean"], [f_cov[0, 0], f_cov[1, 1], f_cov[0, 1]]])
    axis = np.linspace(-6, 6, 31)
    nodes = np.stack([m.ravel() for m in np.meshgrid(axis, axis, indexing="ij")], axis=1)
    patterns = np.array(list(product([0, 1], repeat=6)))
    pairs = [(i, j) for i in range(6) for j in range(i + 1, 6)]
    t = np.vstack([patterns.T] + [patterns[:, i] * patterns[:, j] for i, j in pairs]).astype(float)

    def pattern_probs(g, label):
        slopes = np.zeros((6, 2))
        slopes[on] = g[:6]
        p1 = 1 / (1 + np.exp(-(nodes @ slopes.T + g[6:12])))                      # (Q, 6)
        if label == "ref":
            mean, cov = np.zeros(2), np.array([[1, g[12]], [g[12], 1]])
        else:
            mean, cov = g[13:15], np.array([[g[15], g[17]], [g[17], g[16]]])
        c = nodes - mean
        lw = -0.5 * np.einsum("qk,kl,ql->q", c, np.linalg.inv(cov), c)
        w = np.exp(lw - logsumexp(lw))
        lik = np.prod(np.where(patterns[:, None, :] == 1, p1[None], 1 - p1[None]), axis=2)   # (patterns, Q)
        return lik @ w

    resid, xis, deltas = [], [], []
    h = 1e-5
    for label in ("ref", "focal"):
        xg = x[groups == label]
        obs = np.concatenate([xg.mean(axis=0), [np.mean(xg[:, i] * xg[:, j]) for i, j in pairs]])
        pi = pattern_probs(gamma, label)
        resid.append(np.sqrt(len(xg)) * (obs - t @ pi))
        xis.append(t @ (pi[:, None] * t.T) - np.outer(t @ pi, t @ pi))
        jac = np.column_stack([t @ (pattern_probs(gamma + h * e, label) - pattern_probs(gamma - h * e, label))
                               / (2 * h) for e in np.eye(gamma.size)])
        deltas.append(np.sqrt(len(xg)) * jac)
    r, dl = np.concatenate(resid), np.vstack(deltas)
    inv = np.zeros((42, 42))
    inv[:21, :21], inv[21:, 21:] = np.linalg.inv(xis[0]), np.linalg.inv(xis[1])
    c2 = inv - inv @ dl @ np.linalg.inv(dl.T @ inv @ dl) @ dl.T @ inv
    assert res.df == 42 - 18
    assert res.statistic == pytest.approx(r @ c2 @ r, rel=1e-5)
