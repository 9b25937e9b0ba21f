"""Selection criteria against their definitions, evaluated item by item with plain loops
(van der Linden 1998 for MPWI and MEPV; Chang & Ying 1996 for KL and KLP; Chang, Qian & Ying 2001)."""

from __future__ import annotations

import numpy as np
import pytest

from adaptive import ItemBank
from adaptive.cat import CatEngine, ExamDesign
from adaptive.cat.selection import RULES, a_strata, info_3pl
from adaptive.irt import dichotomous


def _setup(rule, responses=((3, 1), (7, 0), (12, 1))):
    rng = np.random.default_rng(0)
    items = [{"id": f"I{k}", "model": "3pl", "a": float(rng.uniform(0.6, 2.0)), "b": float(rng.normal()),
              "c": float(rng.uniform(0, 0.25))} for k in range(20)]
    bank = ItemBank(items=items)
    design = ExamDesign(min_length=5, max_length=10, selection={"rule": rule}, content={"method": "none"},
                        estimator={"grid": (-4, 4, 41)}, scale={"theta_cut": 0.3})
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
    crit = RULES["mpwi"](eng, st, np.array([0]))[0]
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
    crit = RULES["klp"](eng, st, np.array([0]))[0]
    th = st.theta[0]
    for i in range(20):
        ref = sum(post[q] * _kl(eng, i, th, t) for q, t in enumerate(eng.grid))
        assert crit[i] == pytest.approx(ref, rel=1e-8, abs=1e-12)


def test_kl_interval_definition():
    eng, st = _setup("kl")
    crit = RULES["kl"](eng, st, np.array([0]))[0]
    th, n = st.theta[0], st.n_scored[0]
    delta = 3.0 / np.sqrt(n)
    pts = [t for t in eng.grid if abs(t - th) <= delta]
    for i in range(20):
        assert crit[i] == pytest.approx(sum(_kl(eng, i, th, t) for t in pts), rel=1e-8, abs=1e-12)


def test_mepv_definition():
    eng, st = _setup("mepv")
    post = _posterior(eng, st)
    crit = RULES["mepv"](eng, st, np.array([0]))[0]
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
    crit = RULES["mfi_cut"](eng, st, np.array([0]))[0]
    np.testing.assert_allclose(crit, info_3pl(0.3, a.a, a.thresholds[:, 0], a.c))
    crit = RULES["b_matching"](eng, st, np.array([0]))[0]
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
    c1 = RULES["random"](eng, st, np.array([0]))
    c2 = RULES["random"](eng, st, np.array([0]))
    np.testing.assert_array_equal(c1, c2)
    assert np.all((c1 >= 0) & (c1 < 1))
