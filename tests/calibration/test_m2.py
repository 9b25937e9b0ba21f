"""M2 against R's mirt 1.45.1 on LSAT7 (../shared/reference/multidim/m2_lsat7_mirt.json, copied values; data in
tests/data/multidim/lsat7_1000x5.csv = mirt's expand.table(LSAT7)): at mirt's own estimates M2 = 11.93769, df 5,
p 0.03565, RMSEA 0.03727 [0.00895, 0.06497], SRMSR 0.03196, TLI 0.93693, CFI 0.96847; the published M2 for a
tighter fit is 11.93841 (mirt's test suite, tolerance 1e-2)."""

from pathlib import Path

import numpy as np
import pytest

import adaptive
from adaptive import ItemBank
from adaptive.calibration.m2 import m2_statistic
from adaptive.exceptions import CalibrationError

pytestmark = pytest.mark.reference
DATA = Path(__file__).resolve().parents[1] / "data" / "multidim" / "lsat7_1000x5.csv"
#: mirt's estimates (a1, d) at its default TOL 1e-4
MIRT = [(0.987925399745112, 1.85606045856675), (1.08088470444055, 0.807978642147462),
        (1.70580060870275, 1.80421874718711), (0.765185299281648, 0.485996602637005),
        (0.735797967264795, 1.8545127300244)]


@pytest.fixture(scope="module")
def lsat7():
    return np.loadtxt(DATA, delimiter=",", skiprows=1)


def test_m2_at_mirts_estimates_equals_mirt(lsat7):
    bank = ItemBank(items=[{"id": f"Item.{k + 1}", "model": "2pl", "a": a, "b": -d / a}
                           for k, (a, d) in enumerate(MIRT)])
    res = m2_statistic(bank, lsat7)
    assert res.statistic == pytest.approx(11.9376878886089, abs=1e-4) and res.df == 5
    assert res.p_value == pytest.approx(0.0356516482792208, abs=1e-5)
    assert res.rmsea == pytest.approx(0.0372683042842845, abs=1e-5)
    assert res.rmsea_ci[0] == pytest.approx(0.00895092159741809, abs=1e-5)
    assert res.rmsea_ci[1] == pytest.approx(0.0649657296608679, abs=1e-5)
    assert res.srmsr == pytest.approx(0.0319591890049595, abs=1e-5)
    assert res.tli == pytest.approx(0.936933222563739, abs=1e-4)
    assert res.cfi == pytest.approx(0.96846661128187, abs=1e-4)


def test_m2_of_our_own_fit_matches_the_published_value(lsat7):
    fit = adaptive.calibrate(lsat7, model="2pl", tol=1e-6)
    assert fit.m2().statistic == pytest.approx(11.93841, abs=1e-2)


def test_m2_refusals(lsat7):
    bank = ItemBank(items=[{"id": f"I{k}", "model": "2pl", "a": 1.0, "b": 0.0} for k in range(5)])
    missing = lsat7.copy()
    missing[0, 0] = np.nan
    with pytest.raises(CalibrationError, match="complete data"):
        m2_statistic(bank, missing)
    with pytest.raises(CalibrationError, match="shape"):
        m2_statistic(bank, lsat7[:, :4])
    two = ItemBank(items=[{"id": f"I{k}", "model": "2pl", "a": 1.0, "b": 0.0} for k in range(2)])
    with pytest.raises(CalibrationError, match="at least 3 items"):
        m2_statistic(two, lsat7[:, :2])


def test_m2_is_bounded_in_items():
    from adaptive.calibration.m2 import MAX_ITEMS

    many = ItemBank(items=[{"id": f"I{k}", "model": "2pl", "a": 1.0, "b": 0.0} for k in range(MAX_ITEMS + 1)])
    with pytest.raises(CalibrationError, match=f"at most {MAX_ITEMS} items"):
        m2_statistic(many, np.zeros((10, MAX_ITEMS + 1)))


def test_m2_of_a_one_factor_multidimensional_fit_equals_mirt(lsat7):
    """The multidimensional path (factors=, product grid of 61 points in one dimension) gives mirt's M2 too."""
    ids = [f"Item.{k + 1}" for k in range(5)]
    fit = adaptive.calibrate(lsat7, model="2pl", item_ids=ids, factors={"F1": ids}, tol=1e-6)
    res = fit.m2()
    assert res.df == 5
    assert res.statistic == pytest.approx(11.9377, abs=0.01)
    assert res.rmsea == pytest.approx(0.03727, abs=5e-4) and res.srmsr == pytest.approx(0.03196, abs=5e-4)


def test_m2_of_a_two_factor_fit_counts_the_correlation_as_a_parameter():
    rng = np.random.default_rng(4)
    theta = rng.multivariate_normal([0, 0], [[1, 0.5], [0.5, 1]], size=3000)
    a = np.zeros((8, 2))
    a[:4, 0], a[4:, 1] = rng.uniform(1, 2, 4), rng.uniform(1, 2, 4)
    d = rng.normal(size=8)
    x = (rng.random((3000, 8)) < 1 / (1 + np.exp(-(theta @ a.T + d)))).astype(float)
    ids = [f"I{j}" for j in range(8)]
    fit = adaptive.calibrate(x, model="2pl", item_ids=ids, factors={"F1": ids[:4], "F2": ids[4:]})
    res = fit.m2()
    assert res.df == 8 + 28 - (16 + 1)  # margins - (slopes + intercepts + 1 correlation)
    assert res.p_value > 0.001 and res.rmsea < 0.03  # the data follow the model
    with pytest.raises(CalibrationError, match="complete data"):
        x2 = x.copy()
        x2[0, 0] = np.nan
        adaptive.calibrate(x2, model="2pl", item_ids=ids, factors={"F1": ids[:4], "F2": ids[4:]}).m2()
