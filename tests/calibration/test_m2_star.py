"""M2* (Cai & Hansen 2013; Maydeu-Olivares & Joe's 2006 first and second moments) for polytomous items, against
brute-force enumeration written here from the definitions: the probability of each of the C^n response patterns
on the same quadrature grid, the moment matrix T (item scores and their pairwise products per pattern), Ξ = T
(diag π - ππᵀ) Tᵀ, Δ = T ∂π/∂γ by central differences in the IRT parameters (a, b) or (a, d, r), and
M2* = N eᵀ (Ξ⁻¹ - Ξ⁻¹Δ(ΔᵀΞ⁻¹Δ)⁻¹ΔᵀΞ⁻¹) e. No project code is used for the reference value."""

from itertools import product

import numpy as np
import pytest
from scipy.special import expit, logsumexp
from scipy.stats import chi2

import adaptive
from adaptive.exceptions import CalibrationError

GRID = np.linspace(-6, 6, 61)


def _graded(a, b, theta_a):
    """Samejima: P(X >= k) = expit(a (θ - b_k)); ``theta_a`` (n, Q) = a θ per item (multidimensional: a'θ)."""
    star = expit(theta_a[:, :, None] - (a[:, None] * b)[:, None, :])
    ones, zeros = np.ones(star.shape[:2] + (1,)), np.zeros(star.shape[:2] + (1,))
    return np.concatenate([ones, star], axis=2) - np.concatenate([star, zeros], axis=2)


def _gpcm(a, b, theta):
    """Muraki: P(X = k) ∝ exp(Σ_{v <= k} a (θ - b_v))."""
    steps = a[:, None, None] * (theta[None, :, None] - b[:, None, :])
    z = np.concatenate([np.zeros(steps.shape[:2] + (1,)), np.cumsum(steps, axis=2)], axis=2)
    return np.exp(z - logsumexp(z, axis=2, keepdims=True))


def _brute_m2(x, model, gamma):
    """``model(gamma) -> (P (n, Q, C), weights (Q,))``; M2*, df and SRMSR by full enumeration."""
    n, n_cat = x.shape[1], int(model(gamma)[0].shape[2])
    patterns = np.array(list(product(range(n_cat), repeat=n)))
    pairs = [(i, j) for i in range(n) for j in range(i + 1, n)]
    t = np.vstack([patterns.T] + [patterns[:, i] * patterns[:, j] for i, j in pairs]).astype(float)

    def pi(g):
        p, w = model(g)
        logp = np.log(p)
        lik = np.exp(sum(logp[j][:, patterns[:, j]] for j in range(n)))   # (Q, patterns)
        return w @ lik

    pat = pi(gamma)
    xi = t @ (pat[:, None] * t.T) - np.outer(t @ pat, t @ pat)
    h = 1e-5
    delta = np.column_stack([(t @ pi(gamma + h * e) - t @ pi(gamma - h * e)) / (2 * h) for e in np.eye(gamma.size)])
    obs = np.concatenate([x.mean(axis=0), [np.mean(x[:, i] * x[:, j]) for i, j in pairs]])
    inv = np.linalg.inv(xi)
    c2 = inv - inv @ delta @ np.linalg.inv(delta.T @ inv @ delta) @ delta.T @ inv
    e = obs - t @ pat
    mean = t[:n] @ pat
    var = (t[:n] ** 2) @ pat - mean ** 2
    r_mod = [((t @ pat)[n + k] - mean[i] * mean[j]) / np.sqrt(var[i] * var[j]) for k, (i, j) in enumerate(pairs)]
    r_obs = [np.corrcoef(x[:, i], x[:, j])[0, 1] for i, j in pairs]
    srmsr = np.sqrt(np.mean((np.array(r_obs) - r_mod) ** 2))
    return x.shape[0] * e @ c2 @ e, t.shape[0] - gamma.size, srmsr


def _unidim_data(rng, model, n_items=6, n_persons=1500):
    a = rng.uniform(0.8, 2.0, n_items)
    b = np.sort(rng.normal(0, 1, (n_items, 2)), axis=1)
    theta = rng.standard_normal(n_persons)
    p = (_graded(a, b, a[:, None] * theta[None, :]) if model == "graded" else _gpcm(a, b, theta))  # (n, N, 3)
    u = rng.random((n_items, n_persons))
    x = (u[:, :, None] > np.cumsum(p, axis=2)[:, :, :2]).sum(axis=2).T.astype(float)
    return x


@pytest.mark.parametrize("model", ["graded", "gpcm"])
def test_m2_star_of_a_unidimensional_fit_equals_brute_force_enumeration(model):
    x = _unidim_data(np.random.default_rng(41 if model == "graded" else 42), model)
    fit = adaptive.calibrate(x, model=model, tol=1e-6)
    res = fit.m2()
    arrays = fit.bank.compile()
    a, b = arrays.a, arrays.thresholds
    w = np.exp(-0.5 * GRID ** 2)
    w /= w.sum()

    def brute_model(g):
        aa, bb = g[:6], g[6:].reshape(6, 2)
        p = _graded(aa, bb, aa[:, None] * GRID[None, :]) if model == "graded" else _gpcm(aa, bb, GRID)
        return p, w

    stat, df, srmsr = _brute_m2(x, brute_model, np.concatenate([a, b.ravel()]))
    assert res.type == "M2*" and res.df == df == 21 - 18
    assert res.statistic == pytest.approx(stat, rel=1e-5)
    assert res.p_value == pytest.approx(chi2.sf(stat, df), rel=1e-4)
    assert res.srmsr == pytest.approx(srmsr, rel=1e-3)
    assert res.p_value > 0.001  # the data follow the model


def test_m2_star_of_a_two_factor_graded_fit_equals_brute_force_with_the_correlation():
    rng = np.random.default_rng(43)
    n_items, n_persons = 7, 2000
    theta = rng.multivariate_normal([0, 0], [[1, 0.5], [0.5, 1]], n_persons)
    a = np.zeros((n_items, 2))
    a[:4, 0], a[4:, 1] = rng.uniform(1, 2, 4), rng.uniform(1, 2, 3)
    d = -np.sort(rng.normal(0, 1, (n_items, 2)), axis=1)              # d1 > d2
    star = expit((theta @ a.T)[:, :, None] + d[None, :, :])           # (N, I, 2)
    x = (rng.random((n_persons, n_items))[:, :, None] < star).sum(axis=2).astype(float)
    ids = [f"I{j}" for j in range(n_items)]
    fit = adaptive.calibrate(x, model="graded", item_ids=ids, factors={"F1": ids[:4], "F2": ids[4:]}, tol=1e-6)
    res = fit.m2()
    nodes = np.stack([m.ravel() for m in np.meshgrid(np.linspace(-6, 6, 31), np.linspace(-6, 6, 31),
                                                     indexing="ij")], axis=1)
    pattern = fit.slopes != 0

    def brute_model(g):
        slopes = np.zeros((n_items, 2))
        slopes[pattern] = g[:n_items]
        dd = g[n_items:3 * n_items].reshape(n_items, 2)
        r = g[-1]
        lw = -0.5 * np.einsum("qk,kl,ql->q", nodes, np.linalg.inv([[1, r], [r, 1]]), nodes)
        w = np.exp(lw - logsumexp(lw))
        z = (nodes @ slopes.T).T                                       # (I, Q)
        st = expit(z[:, :, None] + dd[:, None, :])
        ones, zeros = np.ones(st.shape[:2] + (1,)), np.zeros(st.shape[:2] + (1,))
        return np.concatenate([ones, st], axis=2) - np.concatenate([st, zeros], axis=2), w

    gamma = np.concatenate([fit.slopes[pattern], fit.intercepts.ravel(), [fit.latent_cov[0, 1]]])
    stat, df, srmsr = _brute_m2(x, brute_model, gamma)
    assert res.type == "M2*" and res.df == df == 28 - (7 + 14 + 1)
    assert res.statistic == pytest.approx(stat, rel=1e-5)
    assert res.srmsr == pytest.approx(srmsr, rel=1e-3)


def test_m2_star_refuses_what_it_cannot_compute():
    x = _unidim_data(np.random.default_rng(44), "graded", n_items=4, n_persons=500)
    with pytest.raises(CalibrationError, match="leave no degrees of freedom"):   # 10 moments, 12 parameters
        adaptive.calibrate(x, model="graded").m2()
    nominal = adaptive.calibrate(_unidim_data(np.random.default_rng(45), "gpcm"), model="nominal")
    with pytest.raises(CalibrationError, match="no order"):
        nominal.m2()


@pytest.mark.parametrize("n_general", [1, 2])
def test_m2_of_bifactor_and_two_tier_fits_equals_the_full_grid_m2(n_general):
    """Dimension reduction against the whole product grid: the same parameters, the full (G + 2)-dimensional grid
    of the confirmatory problem (another code path), M2 equal to rounding."""
    from adaptive.calibration.m2 import _grid_engine, _m2_result
    from adaptive.calibration.multidim import LinearProblem, free_mask, log_mvn_weights
    from adaptive.irt.linear import KIND_OF_MODEL, log_prob, product_grid

    rng = np.random.default_rng(46 + n_general)
    n, n_items = 1500, 10
    spec = np.array([0, 0, 0, 0, 0, 1, 1, 1, 1, 1])
    gen = np.array([0, 0, 1, 1, 1, 0, 0, 1, 1, 1]) if n_general == 2 else np.zeros(n_items, dtype=int)
    cov = np.array([[1.0, 0.4], [0.4, 1.0]])[:n_general, :n_general]
    g = rng.multivariate_normal(np.zeros(n_general), cov, n)
    s = rng.standard_normal((n, 2))
    z = g[:, gen] * rng.uniform(1, 2, n_items) + s[:, spec] * rng.uniform(0.5, 1.2, n_items) + rng.normal(0, 1, n_items)
    x = (rng.random(z.shape) < expit(z)).astype(float)
    ids = [f"I{j}" for j in range(n_items)]
    general = None if n_general == 1 else {"G1": [i for i, q in zip(ids, gen) if q == 0],
                                           "G2": [i for i, q in zip(ids, gen) if q == 1]}
    fit = adaptive.calibrate(x, item_ids=ids, model="2pl", bifactor=[f"S{q}" for q in spec], factors=general,
                             quadrature=9)
    res = fit.m2()
    k = n_general + 2
    kinds, n_cat = np.array([KIND_OF_MODEL["2pl"]] * n_items), np.full(n_items, 2)
    corr_free = np.zeros((k, k), dtype=bool)
    corr_free[0, 1] = n_general == 2
    nodes = product_grid(k, 9)
    full = LinearProblem(x, kinds, n_cat, fit.phi, free_mask(kinds, n_cat, fit.slopes != 0), nodes, fit.latent_cov,
                         corr_free)

    def prob(v):
        phi, sigma = full.params.unpack(v)
        return np.exp(log_prob(kinds, n_cat, phi, nodes)), np.exp(log_mvn_weights(nodes, sigma))

    ref = _m2_result(x, _grid_engine(prob, None), full.params.pack(fit.phi, fit.latent_cov), n_cat)
    assert res.df == ref.df == 55 - 30 - (n_general == 2)  # moments - (3 per item + the general correlation)
    assert res.statistic == pytest.approx(ref.statistic, rel=1e-6)
    assert res.srmsr == pytest.approx(ref.srmsr, rel=1e-9)
