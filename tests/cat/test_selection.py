"""Selection criteria against their definitions, evaluated item by item with plain loops
(van der Linden 1998 for MPWI and MEPV; Chang & Ying 1996 for KL and KLP; Chang, Qian & Ying 2001)."""

from __future__ import annotations

import numpy as np
import pytest

from adaptive import ItemBank
from adaptive.cat import CatEngine, ExamDesign
from adaptive.cat.selection import RULES, a_strata
from adaptive.irt import dichotomous
from adaptive.irt.dichotomous import information_3pl as info_3pl


def _setup(rule, responses=((3, 1), (7, 0), (12, 1)), **selection):
    rng = np.random.default_rng(0)
    items = [{"id": f"I{k}", "model": "3pl", "a": float(rng.uniform(0.6, 2.0)), "b": float(rng.normal()),
              "c": float(rng.uniform(0, 0.25))} for k in range(20)]
    bank = ItemBank(items=items)
    estimator = {"grid": (-4, 4, 41)}
    if selection.pop("catr", False):  # catR's grid and integration: 33 points on [-4, 4], trapezoid rule
        estimator = {"grid": (-4, 4, 33), "quadrature": "trapezoid"}
    design = ExamDesign(min_length=5, max_length=10, selection={"rule": rule, **selection}, content={"method": "none"},
                        estimator=estimator, scale={"theta_cut": 0.3})
    eng = CatEngine(design, bank)
    st = eng.start(np.array([1], dtype=np.uint64))
    for item, r in responses:
        eng.record(st, np.array([0]), np.array([item]), np.array([float(r)]))
    return eng, st


def _posterior(eng, st):
    w = np.exp(st.log_post[0] - st.log_post[0].max())
    return w / w.sum()


def _p(eng, i, t):
    a = eng.arrays
    return dichotomous.prob(np.array([t]), a.a[i : i + 1], a.thresholds[i : i + 1, 0], a.c[i : i + 1])[0, 0, 1]


def test_mpwi_definition():
    eng, st = _setup("mpwi")
    post = _posterior(eng, st)
    crit = RULES["mpwi"](eng.ctx).criterion(eng.ctx, st, np.array([0]))[0]
    a = eng.arrays
    for i in range(20):
        ref = sum(post[q] * info_3pl(t, a.a[i], a.thresholds[i, 0], a.c[i]) for q, t in enumerate(eng.grid))
        assert crit[i] == pytest.approx(ref, rel=1e-10)


def _kl(eng, i, t0, t):
    p0, p = _p(eng, i, t0), _p(eng, i, t)
    return p0 * np.log(p0 / p) + (1 - p0) * np.log((1 - p0) / (1 - p))


def test_klp_definition():
    eng, st = _setup("klp")
    post = _posterior(eng, st)
    crit = RULES["klp"](eng.ctx).criterion(eng.ctx, st, np.array([0]))[0]
    th = st.theta[0]
    for i in range(20):
        ref = sum(post[q] * _kl(eng, i, th, t) for q, t in enumerate(eng.grid))
        assert crit[i] == pytest.approx(ref, rel=1e-8, abs=1e-12)


def test_kl_interval_definition():
    eng, st = _setup("kl")
    crit = RULES["kl"](eng.ctx).criterion(eng.ctx, st, np.array([0]))[0]
    th, n = st.theta[0], st.n_scored[0]
    delta = 3.0 / np.sqrt(n)
    pts = [t for t in eng.grid if abs(t - th) <= delta]
    for i in range(20):
        assert crit[i] == pytest.approx(sum(_kl(eng, i, th, t) for t in pts), rel=1e-8, abs=1e-12)


def test_mepv_definition():
    eng, st = _setup("mepv")
    post = _posterior(eng, st)
    crit = RULES["mepv"](eng.ctx).criterion(eng.ctx, st, np.array([0]))[0]
    g = eng.grid
    for i in range(20):
        p1 = np.array([_p(eng, i, t) for t in g])
        epv = 0.0
        for like in (1 - p1, p1):
            pred = np.sum(post * like)
            new = post * like / pred
            mean = np.sum(new * g)
            epv += pred * np.sum(new * (g - mean) ** 2)
        assert -crit[i] == pytest.approx(epv, rel=1e-9)


def test_mfi_cut_and_b_matching():
    eng, st = _setup("mfi_cut")
    a = eng.arrays
    crit = RULES["mfi_cut"](eng.ctx).criterion(eng.ctx, st, np.array([0]))[0]
    np.testing.assert_allclose(crit, info_3pl(0.3, a.a, a.thresholds[:, 0], a.c))
    crit = RULES["b_matching"](eng.ctx).criterion(eng.ctx, st, np.array([0]))[0]
    np.testing.assert_allclose(crit, -np.abs(a.thresholds[:, 0] - st.theta[0]))


def test_a_strata_span_b_and_increase_in_a():
    rng = np.random.default_rng(1)
    a, b = rng.uniform(0.5, 2.5, 400), rng.normal(size=400)
    s = a_strata(a, b, 4)
    assert np.all(np.bincount(s) == 100)
    means = [a[s == k].mean() for k in range(4)]
    assert means == sorted(means)  # stratum 0 holds the least discriminating items
    bmeans = [b[s == k].mean() for k in range(4)]
    assert max(bmeans) - min(bmeans) < 0.05  # b-blocking: every stratum spans the b range


def test_random_rule_is_uniform_and_reproducible():
    eng, st = _setup("random")
    c1 = RULES["random"](eng.ctx).criterion(eng.ctx, st, np.array([0]))
    c2 = RULES["random"](eng.ctx).criterion(eng.ctx, st, np.array([0]))
    np.testing.assert_array_equal(c1, c2)
    assert np.all((c1 >= 0) & (c1 < 1))


# ----------------------------------------------------------------------------- catR's conventions
# Written from catR 3.17's documented formulas (KL.R, EPV.R, eapEst/eapSem, integrate.catR), independently
# of the engine: X = 33 points on [-4, 4], trapezoid integration, N(0, 1) prior.

_X = np.linspace(-4, 4, 33)


def _trapezoid(y):
    h = _X[1] - _X[0]
    return h * (y.sum() - 0.5 * (y[0] + y[-1]))


def _likelihood(eng, responses):
    lik = np.ones_like(_X)
    for item, r in responses:
        p = np.array([_p(eng, item, t) for t in _X])
        lik *= p if r == 1 else 1 - p
    return lik


@pytest.mark.reference
def test_kl_with_likelihood_weighting_is_catrs_kl():
    responses = ((3, 1), (7, 0), (12, 1))
    eng, st = _setup("kl", responses, kl_weighting="likelihood", catr=True)
    crit = RULES["kl"](eng.ctx).criterion(eng.ctx, st, np.array([0]))[0]
    th = st.theta[0]
    lik = _likelihood(eng, responses)
    h = _X[1] - _X[0]
    for i in range(20):
        klf = np.array([_kl(eng, i, th, t) for t in _X])
        ref = _trapezoid(lik * klf)  # catR: integrate.catR(X, lik * KLF)
        assert crit[i] * h * lik.max() == pytest.approx(ref, rel=1e-9)  # ours is scaled by 1 / (h max L)
    assert int(np.argmax(crit)) == int(np.argmax([_trapezoid(lik * np.array([_kl(eng, i, th, t) for t in _X]))
                                                 for i in range(20)]))


def _eap_var(lik_post):
    w = lik_post
    m = _trapezoid(_X * w) / _trapezoid(w)
    return _trapezoid((_X - m) ** 2 * w) / _trapezoid(w)


@pytest.mark.reference
def test_mepv_with_point_weighting_is_catrs_epv():
    responses = ((3, 1), (7, 0), (12, 1))
    eng, st = _setup("mepv", responses, mepv_weighting="point", catr=True)
    crit = RULES["mepv"](eng.ctx).criterion(eng.ctx, st, np.array([0]))[0]
    th = st.theta[0]
    prior = np.exp(-0.5 * _X**2) / np.sqrt(2 * np.pi)
    lik = _likelihood(eng, responses)
    for i in range(20):
        p1_grid = np.array([_p(eng, i, t) for t in _X])
        p1 = _p(eng, i, th)
        # catR's EPV: sum over answers k of P_k(θ̂) times eapSem² after answering k
        epv = (1 - p1) * _eap_var(lik * (1 - p1_grid) * prior) + p1 * _eap_var(lik * p1_grid * prior)
        assert -crit[i] == pytest.approx(epv, rel=1e-9)


@pytest.mark.reference
def test_trapezoid_eap_is_catrs_eap():
    responses = ((3, 1), (7, 0), (12, 1))
    eng, st = _setup("mfi", responses, catr=True)
    prior = np.exp(-0.5 * _X**2)
    w = _likelihood(eng, responses) * prior
    mean = _trapezoid(_X * w) / _trapezoid(w)  # catR eapEst
    assert st.theta[0] == pytest.approx(mean, rel=1e-12)
    assert st.se[0] == pytest.approx(np.sqrt(_eap_var(w)), rel=1e-10)  # catR eapSem
