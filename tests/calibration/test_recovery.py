"""Seeded parameter recovery for every model, fixed-parameter and multiple-group calibration, CAT-sparse data,
the scikit-learn estimator, input errors and properties of the internal parameterization."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import adaptive
from adaptive import ItemBank
from adaptive.exceptions import CalibrationError, ConvergenceWarning
from adaptive.irt.mixed import from_irt, internal_log_prob, internal_log_prob_and_grad, to_irt
from adaptive.irt.registry import Family
from adaptive.synthetic import simulate_responses

pytestmark = pytest.mark.recovery


def _bank(model, n, seed, k=4):
    rng = np.random.default_rng(seed)
    items = []
    for j in range(n):
        rec = {"id": f"Q{j:03d}", "model": model}
        if model in ("rasch", "pcm"):
            rec["a"] = 1.0
        elif model == "1pl":
            rec["a"] = 1.3
        else:
            rec["a"] = float(rng.uniform(0.8, 2.0))
        if model in ("graded", "gpcm", "pcm"):
            rec["thresholds"] = sorted(rng.uniform(-1.8, 1.8, k - 1).tolist())
        else:
            rec["b"] = float(rng.uniform(-1.8, 1.8))
        if model in ("3pl", "4pl"):
            rec["c"] = float(rng.uniform(0.1, 0.25))
        if model == "4pl":
            rec["d"] = float(rng.uniform(0.9, 0.97))
        items.append(rec)
    return ItemBank(items=items)


def _rmse(est, true):
    return float(np.sqrt(np.nanmean((np.asarray(est) - np.asarray(true)) ** 2)))


CASES = [  # model, items, persons, priors, max RMSE a, max RMSE b
    ("rasch", 20, 2000, None, 0.0, 0.08),
    ("1pl", 20, 2000, None, 0.03, 0.08),
    ("2pl", 20, 3000, None, 0.08, 0.10),
    ("3pl", 20, 5000, {"c": "beta(5, 17)"}, 0.20, 0.20),
    ("4pl", 15, 8000, {"a": "lognormal(0.3, 0.3)", "c": "beta(5, 17)", "d": "beta(17, 2)"}, 0.3, 0.25),
    ("graded", 15, 2000, None, 0.08, 0.10),
    ("gpcm", 15, 2000, None, 0.10, 0.15),
    ("pcm", 15, 2000, None, 0.0, 0.12),
]


@pytest.mark.parametrize("model,n_items,n,priors,tol_a,tol_b", CASES)
def test_recovery_every_model(model, n_items, n, priors, tol_a, tol_b):
    bank = _bank(model, n_items, seed=sum(map(ord, model)))  # fixed seed per model (str hash is salted)
    theta = np.random.default_rng(7).standard_normal(n)
    x = simulate_responses(bank.compile(), theta, rng=8)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        res = adaptive.calibrate(x, model=model, priors=priors, item_ids=bank.ids)
    arr = bank.compile()
    assert res.converged
    if tol_a:
        assert _rmse(res.a, arr.a) < tol_a
    k = arr.thresholds.shape[1]
    assert _rmse(res.thresholds[:, :k], arr.thresholds) < tol_b
    out = res.bank
    assert out.ids == bank.ids and all(it.model == model for it in out.items)
    assert all(it.provenance.method.startswith(f"MML-EM {model}") for it in out.items)
    if model in ("rasch", "pcm"):
        assert res.latent[0, 1] == pytest.approx(1.0, abs=0.08)  # the latent SD carries the scale


def test_mixed_bank_in_one_calibration():
    b1, b2 = _bank("2pl", 10, 1), _bank("graded", 6, 2)
    items = list(b1.items) + [it.model_copy(update={"id": f"P{k}"}) for k, it in enumerate(b2.items)]
    bank = ItemBank(items=items)
    x = simulate_responses(bank.compile(), np.random.default_rng(3).standard_normal(3000), rng=4)
    res = adaptive.calibrate(x, model={**{i: "2pl" for i in bank.ids[:10]}, **{i: "graded" for i in bank.ids[10:]}},
                             item_ids=bank.ids)
    assert _rmse(res.a, bank.compile().a) < 0.1
    assert res.bank.item("P0").model == "graded" and res.bank.item("Q000").model == "2pl"


def test_cat_like_design_with_80_percent_missing():
    bank = _bank("2pl", 60, 11)
    theta = np.random.default_rng(12).standard_normal(6000)
    x = simulate_responses(bank.compile(), theta, rng=13, missing=0.8)
    assert 0.78 < np.isnan(x).mean() < 0.82
    res = adaptive.calibrate(x, model="2pl", item_ids=bank.ids)
    arr = bank.compile()
    assert res.fitted.problem.layout.sparse  # the E-step takes the sparse layout here (one nonzero per answered cell)
    assert res.converged
    assert _rmse(res.a, arr.a) < 0.15 and _rmse(res.thresholds[:, 0], arr.thresholds[:, 0]) < 0.12


def test_fixed_parameter_calibration_recovers_the_new_scale():
    """FIPC: operational items fixed at their bank values; a shifted, wider population; pretest items land on
    the bank's scale and the latent mean and SD are estimated."""
    bank = _bank("2pl", 30, 21)
    theta = 0.5 + 1.2 * np.random.default_rng(22).standard_normal(5000)
    x = simulate_responses(bank.compile(), theta, rng=23)
    anchors = ItemBank(items=bank.items[:20])
    res = adaptive.calibrate(x, model="2pl", fixed=anchors, item_ids=bank.ids)
    assert res.latent[0, 0] == pytest.approx(0.5, abs=0.06)
    assert res.latent[0, 1] == pytest.approx(1.2, abs=0.06)
    assert np.allclose(res.a[:20], bank.compile().a[:20])  # held fixed
    assert res.bank.items[0] == bank.items[0]
    assert _rmse(res.thresholds[20:, 0], bank.compile().thresholds[20:, 0]) < 0.1
    assert "fixed" in res.summary(fit=False)


def test_multiple_groups_estimate_the_focal_distribution():
    bank = _bank("2pl", 25, 31)
    rng = np.random.default_rng(32)
    theta = np.concatenate([rng.standard_normal(3000), -0.6 + 0.8 * rng.standard_normal(3000)])
    groups = np.array(["ref"] * 3000 + ["focal"] * 3000)
    x = simulate_responses(bank.compile(), theta, rng=33)
    res = adaptive.calibrate(x, model="2pl", groups=groups, reference_group="ref", item_ids=bank.ids)
    assert res.group_labels == ("ref", "focal")
    assert tuple(res.latent[0]) == (0.0, 1.0)
    assert res.latent[1, 0] == pytest.approx(-0.6, abs=0.07) and res.latent[1, 1] == pytest.approx(0.8, abs=0.06)
    ses = res.standard_errors.latent
    assert set(ses) == {"focal mean", "focal sd"} and 0 < ses["focal mean"] < 0.05


def test_squarem_and_plain_em_reach_the_same_maximum():
    bank = _bank("3pl", 15, 41)
    x = simulate_responses(bank.compile(), np.random.default_rng(42).standard_normal(4000), rng=43)
    fast = adaptive.calibrate(x, model="3pl", priors="3pl", tol=1e-6)
    slow = adaptive.calibrate(x, model="3pl", priors="3pl", tol=1e-6, accelerate="none")
    assert fast.n_estep < slow.n_estep
    assert fast.loglik == pytest.approx(slow.loglik, abs=1e-3)
    assert np.max(np.abs(fast.a - slow.a)) < 2e-3
    assert all(np.diff(slow.trace) > -1e-6)  # plain EM (MAP) never goes down in the penalized sense here


def test_non_convergence_warns_with_what_to_try():
    bank = _bank("3pl", 10, 51)
    x = simulate_responses(bank.compile(), np.random.default_rng(52).standard_normal(500), rng=53)
    with pytest.warns(ConvergenceWarning, match=r"did not converge in \d+ cycles.*try"):
        res = adaptive.calibrate(x, model="3pl", max_iter=3)
    assert not res.converged and "NOT CONVERGED" in res.summary(se=False, fit=False)


def test_input_errors_name_the_item_and_what_to_do():
    x = np.array([[0, 1, 2], [1, 0, 1], [1, 1, 0], [0, 1, 1.0]])
    with pytest.raises(CalibrationError, match=r"'I0003' \(2pl\): response 2.*graded"):
        adaptive.calibrate(x, model="2pl")
    y = np.array([[1, 1, 0], [1, 0, 1], [1, 1, 0.0]])
    with pytest.raises(CalibrationError, match=r"'I0001': every response is 1"):
        adaptive.calibrate(y, model="2pl")
    # one row numbering for arrays everywhere: the 0-based index (x[1] is "row 1")
    with pytest.raises(adaptive.ResponseValidationError, match=r"row 1, item 'I0002': response 0.5"):
        adaptive.calibrate(np.array([[0, 1.0], [1, 0.5], [0, 1]]), model="2pl")
    with pytest.raises(CalibrationError, match="unknown model 'bogus'"):
        adaptive.calibrate(np.array([[0, 1.0], [1, 0], [0, 1]]), model="bogus")
    g = np.array([[0, 1, 3], [1, 0, 3], [1, 1, 0], [0, 1, 3.0]])
    with pytest.raises(CalibrationError, match=r"categories \[1, 2\] are never observed"):
        adaptive.calibrate(g, model="graded")
    with pytest.raises(ValueError, match="unknown prior set"):
        adaptive.calibrate(x[:, :2], model="3pl", priors="nonsense")


def test_scikit_learn_estimator_protocol_and_model_choice():
    from sklearn.base import clone
    from sklearn.model_selection import GridSearchCV, cross_val_score

    from adaptive.calibration import IRTModel

    bank = _bank("2pl", 12, 61)
    x = simulate_responses(bank.compile(), np.random.default_rng(62).standard_normal(2400), rng=63)
    est = IRTModel(model="rasch")
    assert clone(est).get_params()["model"] == "rasch"
    est.set_params(model="2pl")
    theta = est.fit(x).transform(x)
    assert theta.shape == (2400, 1)
    assert est.score(x) == pytest.approx(est.result_.loglik / 2400)
    scores = cross_val_score(IRTModel(), x, cv=3)
    assert scores.shape == (3,) and np.all(scores < 0)
    search = GridSearchCV(IRTModel(), {"model": ["rasch", "2pl"]}, cv=3).fit(x)
    assert search.best_params_ == {"model": "2pl"}  # slopes vary in the data


@given(st.sampled_from(list(Family)), st.integers(2, 5), st.floats(-4, 4), st.integers(0, 10_000))
def test_internal_parameterization_properties(family, k, theta, seed):
    rng = np.random.default_rng(seed)
    k = 2 if family == Family.DICHOTOMOUS else k
    p = 4 if family == Family.DICHOTOMOUS else k
    phi = np.zeros((1, p))
    phi[0, 0] = rng.uniform(0.3, 2.5)
    if family == Family.DICHOTOMOUS:
        phi[0, 1] = rng.normal()
        phi[0, 2] = rng.uniform(-4, -1)
        phi[0, 3] = rng.uniform(2, 6)
    else:
        d = np.sort(rng.normal(0, 1.5, k - 1))[::-1] if family == Family.GRADED else rng.normal(0, 1, k - 1)
        if family == Family.GRADED:
            d = d - np.arange(k - 1) * 0.05
        phi[0, 1:k] = d
    fam, nc = np.array([family]), np.array([k])
    th = np.array([theta])
    lp, g = internal_log_prob_and_grad(fam, nc, phi, th)
    prob = np.exp(lp[0, 0, :k])
    assert np.all((prob >= 0) & (prob <= 1)) and prob.sum() == pytest.approx(1.0, abs=1e-12)
    # analytic gradient against central differences
    h = 1e-6
    for j in range(p):
        e = np.zeros_like(phi)
        e[0, j] = h
        num = (internal_log_prob(fam, nc, phi + e, th) - internal_log_prob(fam, nc, phi - e, th))[0, 0, :k] / (2 * h)
        np.testing.assert_allclose(g[0, 0, :k, j], num, rtol=1e-5, atol=1e-7)
    # IRT form round trip
    a, thr, c, dd = to_irt(fam, nc, phi)
    back = from_irt(fam, nc, a, thr, c, dd, p)
    np.testing.assert_allclose(back, phi, rtol=1e-10, atol=1e-10)


def test_a_slope_running_to_infinity_stops_em_at_once_with_what_to_do():
    """Issue 17: 3PL on 25 persons ran 2,000 cycles (about a minute) without converging. A slope past 50 means the
    data cannot identify the item; EM stops there and says why; a lognormal prior on a fits the same data."""
    bank = _bank("3pl", 20, 2)
    x = simulate_responses(bank.compile(), np.random.default_rng(4).standard_normal(25), rng=6)
    with pytest.warns(ConvergenceWarning, match=r"EM stopped after \d+ cycles: I\d+ a ran past 50.*25 persons"):
        res = adaptive.calibrate(x, model="3pl")
    assert not res.converged and res.n_iter < 100
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        assert adaptive.calibrate(x, model="3pl", priors="bilog").converged


@pytest.mark.parametrize("model", ["graded", "gpcm"])
def test_synthetic_polytomous_banks_are_recovered_by_our_calibration(model):
    """Issue 21: synthetic_bank(model='graded') used to draw near-equal thresholds (-1.0253, -1.0247) whose data
    could not be calibrated. Ordered, spread thresholds: 2,000 simulees' data calibrate back (seeded)."""
    from adaptive.synthetic import synthetic_bank

    bank = synthetic_bank(20, model=model, rng=1)
    th = np.array([it.thresholds for it in bank.items])
    assert (np.diff(th, axis=1) >= 0.6 - 1e-9).all()
    x = simulate_responses(bank.compile(), np.random.default_rng(2).standard_normal(2000), rng=3)
    fit = adaptive.calibrate(x, model=model)
    assert fit.converged
    a = np.array([it.a for it in bank.items])
    assert np.corrcoef(fit.a, a)[0, 1] > 0.9 and np.sqrt(np.mean((fit.a - a) ** 2)) < 0.15
    got = np.array([it.thresholds for it in fit.bank.items])
    assert np.sqrt(np.mean((got - th) ** 2)) < 0.2


def test_a_linking_result_prints_in_one_line():
    """Issue 21: LinkingResult's repr printed the whole transformed bank."""
    from adaptive.calibration.linking import link, transform_bank
    from adaptive.synthetic import synthetic_bank

    bank = synthetic_bank(30, rng=1)
    text = repr(link(transform_bank(bank, 1.1, 0.2), bank))
    assert "\n" not in text and len(text) < 200
    assert text.startswith("LinkingResult(method='stocking-lord', A=0.909091, B=-0.181818, common=30 items")
