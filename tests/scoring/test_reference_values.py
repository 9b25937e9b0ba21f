"""Reference tests: our estimators against R's catR 3.17 and mirt 1.45.1 on fixed patterns.

Sources (copied into tests/data, see its README): catR ``thetaEst``/``semTheta`` for 2PL and 3PL
patterns; mirt ``fscores`` for graded and GPCM patterns. Tolerance 1e-3, as the IRT-core issue asks.
"""

import json

import numpy as np
import pytest

from adaptive import ItemBank, estimate_ability
from adaptive.scoring import grid_log_likelihood, prepare_responses
from tests.conftest import DATA

pytestmark = pytest.mark.reference

CATR = json.loads((DATA / "catR_dichotomous.json").read_text())
MIRT = json.loads((DATA / "mirt_polytomous.json").read_text())
FORMS = {
    "pool_300_2pl[1:20]": "pool_300_2pl_first20.csv",
    "pool_500_3pl[1:20]": "pool_500_3pl_first20.csv",
}
CATR_METHODS = {"eap": "EAP", "map": "BM", "ml": "ML", "wle": "WL"}


def _patterns(rows):
    return np.array([[np.nan if ch == "." else float(ch) for ch in r["pattern"]] for r in rows])


def _catr_case(form, method):
    bank = ItemBank.from_csv(DATA / FORMS[form])
    rows = [r for r in CATR["dichotomous"] if r["bank"] == form]
    key = CATR_METHODS[method]
    theta, se = np.array([r[key]["theta"] for r in rows]), np.array([r[key]["se"] for r in rows])
    return bank, rows, _patterns(rows), theta, se


@pytest.mark.parametrize("form", list(FORMS))
@pytest.mark.parametrize("method", ["eap", "map", "wle"])
def test_catr_dichotomous(form, method):
    bank, rows, x, theta, se = _catr_case(form, method)
    est = estimate_ability(bank, x, method=method, grid=(-6, 6, 121))  # catR's EAP ran on 121 points on [-6, 6]
    assert len(rows) == 46
    np.testing.assert_allclose(est.theta, theta, atol=1e-3)
    np.testing.assert_allclose(est.se, se, atol=1e-3)


def test_catr_ml_2pl_including_bounds():
    bank, rows, x, theta, se = _catr_case("pool_300_2pl[1:20]", "ml")
    est = estimate_ability(bank, x, method="ml", bounds=(-4, 4))
    np.testing.assert_allclose(est.theta, theta, atol=1e-3)
    np.testing.assert_allclose(est.se, se, atol=1e-3)
    # all-correct / all-wrong patterns return the bound, flagged, never inf
    allright = [k for k, r in enumerate(rows) if set(r["pattern"]) <= {"1", "."}]
    allwrong = [k for k, r in enumerate(rows) if set(r["pattern"]) <= {"0", "."}]
    assert allright and allwrong
    assert np.all(est.theta[allright] == 4.0) and np.all(est.at_bound[allright] == 1)
    assert np.all(est.theta[allwrong] == -4.0) and np.all(est.at_bound[allwrong] == -1)


def test_catr_ml_3pl():
    """3PL ML: equal to catR within 1e-3 except where catR's local search stops at a lower local maximum.

    catR maximizes with R's ``optimize`` (a local golden-section search); we return the global
    maximum on [-4, 4]. Where the two differ, our log-likelihood must be the higher one.
    """
    bank, rows, x, theta, se = _catr_case("pool_500_3pl[1:20]", "ml")
    est = estimate_ability(bank, x, method="ml", bounds=(-4, 4))
    differ = np.abs(est.theta - theta) > 1e-3
    assert differ.sum() <= 1
    np.testing.assert_allclose(est.theta[~differ], theta[~differ], atol=1e-3)
    np.testing.assert_allclose(est.se[~differ], se[~differ], atol=1e-3)
    arrays = bank.compile()
    resp = prepare_responses(arrays, x)
    for k in np.flatnonzero(differ):
        pts = np.array([est.theta[k], theta[k]])
        ll = grid_log_likelihood(arrays.tables(pts), resp.rows([k]))[0]
        assert ll[0] > ll[1] + 1e-3


def _mirt_case(model, method):
    block = MIRT[model]
    bank = ItemBank(items=[{"id": it["id"], "model": model, "a": it["a"],
                            "thresholds": [it["b1"], it["b2"], it["b3"]]} for it in block["items"]])
    rows = [e for e in block["estimates"] if e["method"] == method]
    def num(v):  # mirt writes "Inf"/"-Inf" for divergent ML and "NA" for their SEs
        return np.nan if v == "NA" else float(v)

    theta = np.array([num(r["theta"]) for r in rows])
    se = np.array([num(r["se"]) for r in rows])
    return bank, _patterns(rows), theta, se


@pytest.mark.parametrize("model", ["graded", "gpcm"])
@pytest.mark.parametrize("method", ["EAP", "MAP", "WLE", "ML"])
def test_mirt_polytomous(model, method):
    bank, x, theta, se = _mirt_case(model, method)
    est = estimate_ability(bank, x, method=method.lower(), bounds=(-6, 6), se_information="observed",
                           grid=(-6, 6, 121))  # mirt's fscores ran on 121 points on [-6, 6]
    finite = np.isfinite(theta) & (np.abs(theta) < 6)  # mirt reports ±Inf (or ±20) for extreme ML patterns
    assert finite.sum() >= 40
    np.testing.assert_allclose(est.theta[finite], theta[finite], atol=1e-3)
    np.testing.assert_allclose(est.se[finite], se[finite], atol=1e-3)
    if method == "ML":
        # where mirt diverges we return the bound, flagged, with a finite SE
        ext = ~finite
        assert np.all(np.abs(est.theta[ext]) == 6.0)
        assert np.all(est.at_bound[ext] == np.sign(theta[ext]))
        assert np.all(np.isfinite(est.se))
