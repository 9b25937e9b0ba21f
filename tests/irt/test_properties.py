"""Property tests (hypothesis) of the response models and the estimators.

Invariants: probabilities in [c, d] and summing to 1; monotone in θ where the
model says so; information >= 0; test information = sum of item information;
no NaN or inf for θ in [-10, 10], a in [0.2, 5] and any valid pattern.
"""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from adaptive import ItemBank, estimate_ability
from adaptive.irt import dichotomous, graded, partial_credit

thetas = hnp.arrays(float, st.integers(1, 30), elements=st.floats(-10, 10))
slope = st.floats(0.2, 5.0)
loc = st.floats(-4.0, 4.0)


@given(thetas, slope, loc, st.floats(0.0, 0.35), st.floats(0.65, 1.0))
def test_dichotomous_bounds_sum_monotone_information(theta, a, b, c, d):
    tm = dichotomous.terms(theta, [a], [b], [c], [d])
    p = tm.prob[:, 0]
    assert np.all(np.isfinite(tm.log_prob)) and np.all(np.isfinite(tm.dlog_prob)) and np.all(np.isfinite(tm.d2log_prob))
    assert np.all(p[:, 1] >= c - 1e-15) and np.all(p[:, 1] <= d + 1e-15)
    np.testing.assert_allclose(p.sum(-1), 1.0, rtol=1e-12)
    order = np.argsort(theta)
    assert np.all(np.diff(p[order, 1]) >= -1e-15)  # P(correct) never falls as θ rises
    info = tm.information
    assert np.all(info >= 0) and np.all(np.isfinite(info))


@st.composite
def graded_items(draw):
    k = draw(st.integers(1, 5))
    thr = sorted(draw(st.lists(loc, min_size=k, max_size=k, unique=True)))
    return draw(slope), np.array(thr)


@given(thetas, graded_items())
def test_graded_properties(theta, item):
    a, thr = item
    tm = graded.terms(theta, [a], [thr])
    p = tm.prob[:, 0]
    for arr in (tm.log_prob, tm.dlog_prob, tm.d2log_prob):
        assert np.all(np.isfinite(arr))
    assert np.all(p >= 0) and np.all(p <= 1)
    np.testing.assert_allclose(p.sum(-1), 1.0, rtol=1e-10)
    order = np.argsort(theta)
    exp_score = tm.expected_score[order, 0]
    assert np.all(np.diff(exp_score) >= -1e-12)  # expected score is increasing in θ
    # P(X >= k) increasing for every k
    cum = np.flip(np.cumsum(np.flip(p[order], -1), -1), -1)
    assert np.all(np.diff(cum, axis=0) >= -1e-12)
    assert np.all(tm.information >= 0)


@given(thetas, slope, st.lists(loc, min_size=1, max_size=5))
def test_gpcm_properties(theta, a, steps):
    tm = partial_credit.terms(theta, [a], [steps])
    p = tm.prob[:, 0]
    for arr in (tm.log_prob, tm.dlog_prob, tm.d2log_prob):
        assert np.all(np.isfinite(arr))
    np.testing.assert_allclose(p.sum(-1), 1.0, rtol=1e-10)
    order = np.argsort(theta)
    assert np.all(np.diff(tm.expected_score[order, 0]) >= -1e-12)
    assert np.all(tm.information >= 0)


@st.composite
def mixed_banks(draw):
    n = draw(st.integers(1, 12))
    items = []
    for i in range(n):
        kind = draw(st.sampled_from(["3pl", "4pl", "2pl", "graded", "gpcm"]))
        rec = {"id": f"i{i}", "model": kind, "a": draw(slope)}
        if kind == "graded":
            k = draw(st.integers(1, 4))
            rec["thresholds"] = sorted(draw(st.lists(loc, min_size=k, max_size=k, unique=True)))
        elif kind == "gpcm":
            rec["thresholds"] = draw(st.lists(loc, min_size=1, max_size=4))
        else:
            rec["b"] = draw(loc)
            if kind != "2pl":
                rec["c"] = draw(st.floats(0.0, 0.3))
            if kind == "4pl":
                rec["d"] = draw(st.floats(0.7, 1.0))
        items.append(rec)
    return ItemBank(items=items)


@given(mixed_banks(), thetas)
def test_test_information_is_sum_of_item_information(bank, theta):
    arr = bank.compile()
    item_info = arr.information(theta)
    assert item_info.shape == theta.shape + (len(bank),)
    assert np.all(item_info >= 0) and np.all(np.isfinite(item_info))
    np.testing.assert_allclose(arr.test_information(theta), item_info.sum(-1), rtol=1e-12)
    np.testing.assert_allclose(arr.prob(theta).sum(-1), 1.0, rtol=1e-10)


@st.composite
def banks_and_patterns(draw):
    bank = draw(mixed_banks())
    n_cat = bank.compile().n_cat
    n_people = draw(st.integers(1, 6))
    kind = draw(st.sampled_from(["random", "all_top", "all_zero", "sparse"]))
    if kind == "all_top":
        x = np.tile(n_cat - 1.0, (n_people, 1))
    elif kind == "all_zero":
        x = np.zeros((n_people, n_cat.size))
    else:
        x = np.array([[draw(st.integers(0, int(k) - 1)) for k in n_cat] for _ in range(n_people)], dtype=float)
        if kind == "sparse":
            drop = np.array([[draw(st.booleans()) for _ in n_cat] for _ in range(n_people)])
            x[drop] = np.nan
    return bank, x


@given(banks_and_patterns(), st.sampled_from(["eap", "map", "ml", "wle"]))
def test_estimators_never_return_nan_or_inf(bank_x, method):
    bank, x = bank_x
    est = estimate_ability(bank, x, method)
    assert np.all(np.isfinite(est.theta))
    assert np.all(est.theta >= -6.0) and np.all(est.theta <= 6.0)
    answered = est.n_answered > 0
    assert np.all(np.isfinite(est.se[answered]))
    assert np.all(est.se[answered] > 0)
