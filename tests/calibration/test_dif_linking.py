"""DIF statistics and linking constants against independent sources."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import brute
from sklearn.linear_model import LogisticRegression

from adaptive import ItemBank
from adaptive.calibration import dif_logistic, dif_mantel_haenszel, link
from adaptive.calibration.linking import transform_bank
from adaptive.exceptions import CalibrationError

# three score strata; per stratum (reference right, reference wrong, focal right, focal wrong)
TABLES = [(20, 30, 10, 40), (35, 15, 25, 25), (45, 5, 38, 12)]


def _mh_data():
    rows, groups, strata = [], [], []
    for s, (a, b, c, d) in enumerate(TABLES):
        for n, grp, x in ((a, "ref", 1), (b, "ref", 0), (c, "foc", 1), (d, "foc", 0)):
            rows += [[x]] * n
            groups += [grp] * n
            strata += [s] * n
    return np.array(rows, float), np.array(groups), np.array(strata, float)


def test_mantel_haenszel_matches_statsmodels():
    """Reference: statsmodels 0.15.0 StratifiedTable on the same three 2x2 tables:
    oddsratio_pooled 2.5606936416184967, logodds_pooled_se (Robins-Breslow-Greenland) 0.271699517287106,
    test_null_odds(correction=True) statistic 11.321942141769583, p 0.0007659655813393451."""
    x, g, s = _mh_data()
    (row,) = dif_mantel_haenszel(x, g, focal="foc", reference="ref", matching=s)
    assert row["alpha_mh"] == pytest.approx(2.5606936416184967, rel=1e-12)
    assert row["se_delta"] == pytest.approx(2.35 * 0.271699517287106, rel=1e-10)
    assert row["chi2"] == pytest.approx(11.321942141769583, rel=1e-10)
    assert row["p"] == pytest.approx(0.0007659655813393451, rel=1e-8)
    delta = -2.35 * np.log(2.5606936416184967)
    assert row["delta_mh"] == pytest.approx(delta)
    # |D| = 2.21 >= 1.5 and (|D| - 1) / SE = 1.89 > 1.645: ETS class C, favouring the reference group
    assert row["ets"] == "C" and row["delta_mh"] < 0


def test_ets_classes_a_and_b():
    rng = np.random.default_rng(11)
    n = 4000
    theta = rng.standard_normal(n)
    g = np.where(np.arange(n) < n // 2, "R", "F")
    b = np.linspace(-1.5, 1.5, 20)
    shift = np.zeros(20)
    shift[3] = 0.8  # DIF against the focal group (about -1.9 on the delta scale)
    p = 1 / (1 + np.exp(-(theta[:, None] - b[None, :] - shift[None, :] * (g == "F")[:, None])))
    x = (rng.random((n, 20)) < p).astype(float)
    rows = dif_mantel_haenszel(x, g, focal="F", reference="R")
    classes = [r["ets"] for r in rows]
    assert classes[3] in ("B", "C") and rows.delta_mh[3] < -1.0
    assert sum(c == "A" for k, c in enumerate(classes) if k != 3) >= 17
    lr = dif_logistic(x, g, focal="F", reference="R")
    assert lr.p_uniform[3] < 1e-6
    assert np.median([p for k, p in enumerate(lr.p_total) if k != 3]) > 0.1


def test_logistic_dif_matches_scikit_learn():
    """Reference: scikit-learn's LogisticRegression(penalty=None) log-likelihoods of the three nested models."""
    rng = np.random.default_rng(3)
    n = 1500
    theta = rng.standard_normal(n)
    g = np.where(rng.random(n) < 0.5, "R", "F")
    b = np.linspace(-1, 1, 8)
    a = np.ones(8)
    a[2] = 1.8 * 1.0
    p = 1 / (1 + np.exp(-(a * (theta[:, None] - b))))
    p[:, 2] = 1 / (1 + np.exp(-(np.where(g == "F", 0.6, 1.8) * (theta - b[2]))))  # non-uniform DIF
    x = (rng.random((n, 8)) < p).astype(float)
    rows = dif_logistic(x, g, focal="F", reference="R")
    s = x.sum(axis=1)
    s = (s - s.mean()) / s.std()
    gf = (g == "F").astype(float)

    def ll(design, y):
        m = LogisticRegression(C=np.inf, tol=1e-12, max_iter=10000).fit(design, y)
        pr = np.clip(m.predict_proba(design)[:, 1], 1e-300, 1 - 1e-16)
        return float(np.sum(y * np.log(pr) + (1 - y) * np.log1p(-pr)))

    for i in (0, 2, 5):
        y = x[:, i]
        l0 = ll(s[:, None], y)
        l1 = ll(np.column_stack([s, gf]), y)
        l2 = ll(np.column_stack([s, gf, s * gf]), y)
        assert rows.chi2_uniform[i] == pytest.approx(2 * (l1 - l0), abs=2e-4)
        assert rows.chi2_nonuniform[i] == pytest.approx(2 * (l2 - l1), abs=2e-4)
        assert rows.chi2_total[i] == pytest.approx(2 * (l2 - l0), abs=2e-4)
    assert rows.p_nonuniform[2] < 0.01


def test_dif_input_errors():
    x, g, s = _mh_data()
    with pytest.raises(CalibrationError, match="focal group 'nobody'"):
        dif_mantel_haenszel(x, g, focal="nobody", reference="ref", matching=s)
    x2 = x.copy()
    x2[0, 0] = np.nan
    with pytest.raises(CalibrationError, match="pass matching="):
        dif_mantel_haenszel(x2, g)
    with pytest.raises(CalibrationError, match="dichotomous"):
        dif_logistic(x + 1, g)


# ------------------------------------------------------------------ linking


def _bank(rng, n=12, model="3pl"):
    items = []
    for k in range(n):
        rec = {"id": f"Q{k}", "model": model, "a": float(rng.uniform(0.6, 2.0))}
        if model == "graded":
            rec["thresholds"] = sorted(rng.normal(0, 1, 3).tolist())
        else:
            rec["b"] = float(rng.normal(0, 1))
            if model == "3pl":
                rec["c"] = float(rng.uniform(0.05, 0.25))
        items.append(rec)
    return ItemBank(items=items)


@pytest.mark.parametrize("method", ["mean-mean", "mean-sigma", "haebara", "stocking-lord"])
@pytest.mark.parametrize("model", ["3pl", "graded"])
def test_linking_recovers_exact_transformation(method, model):
    """Closed form: when the target parameters are an exact transformation of the source ones, every method
    must return that transformation (Kolen & Brennan 2014, ch. 6)."""
    src = _bank(np.random.default_rng(5), model=model)
    A, B = 1.3, -0.45
    tgt = transform_bank(src, A, B)
    res = link(src, tgt, method=method)
    assert res.A == pytest.approx(A, abs=1e-6) and res.B == pytest.approx(B, abs=1e-6)
    for s_it, t_it in zip(res.transformed.items, tgt.items):
        assert s_it.a == pytest.approx(t_it.a, abs=1e-5)


def test_characteristic_curve_methods_reach_the_brute_force_minimum():
    """Independent check: scipy.optimize.brute over a fine (A, B) grid of the criterion written out here."""
    rng = np.random.default_rng(9)
    src = _bank(rng)
    tgt = transform_bank(src, 1.1, 0.3)
    noisy = ItemBank(items=[it.model_copy(update={"a": it.a * float(rng.uniform(0.9, 1.1)),
                                                  "b": it.b + float(rng.normal(0, 0.1))}) for it in tgt.items])
    pts = np.linspace(-4, 4, 61)
    w = np.exp(-0.5 * pts ** 2)
    w /= w.sum()

    def p3(theta, a, b, c):
        return c + (1 - c) / (1 + np.exp(-a * (theta[:, None] - b)))

    a_s, b_s, c_s = (np.array([getattr(i, p) for i in src.items]) for p in "abc")
    a_t, b_t, c_t = (np.array([getattr(i, p) for i in noisy.items]) for p in "abc")
    pt = p3(pts, a_t, b_t, c_t)

    def sl(v):
        A, B = v
        ps = p3(pts, a_s / A, A * b_s + B, c_s)
        return float(w @ (pt.sum(1) - ps.sum(1)) ** 2)

    def hb(v):
        A, B = v
        ps = p3(pts, a_s / A, A * b_s + B, c_s)
        return float(w @ ((pt - ps) ** 2 + ((1 - pt) - (1 - ps)) ** 2).sum(1))

    for method, fun in (("stocking-lord", sl), ("haebara", hb)):
        ref = brute(fun, ((0.8, 1.4), (0.0, 0.6)), Ns=121, finish=None)
        from scipy.optimize import minimize
        ref = minimize(fun, ref, method="Nelder-Mead", options={"xatol": 1e-9, "fatol": 1e-15}).x
        res = link(src, noisy, method=method)
        assert res.A == pytest.approx(ref[0], abs=1e-4) and res.B == pytest.approx(ref[1], abs=1e-4)


def test_mean_sigma_by_hand():
    src = ItemBank(items=[{"id": f"Q{k}", "model": "2pl", "a": 1.0, "b": b} for k, b in enumerate([-1.0, 0.0, 1.0])])
    tgt = ItemBank(items=[{"id": f"Q{k}", "model": "2pl", "a": 0.5, "b": b} for k, b in enumerate([-1.5, 0.5, 2.5])])
    res = link(src, tgt, method="mean-sigma")
    # sd(target b) / sd(source b) = 2; B = mean(target) - A mean(source) = 0.5
    assert (res.A, res.B) == (pytest.approx(2.0), pytest.approx(0.5))
    mm = link(src, tgt, method="mean-mean")
    assert mm.A == pytest.approx(2.0) and mm.B == pytest.approx(0.5)
    with pytest.raises(CalibrationError, match="at least 2 common items"):
        link(src, tgt, common=["Q0"])
