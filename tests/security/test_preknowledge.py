"""Pre-knowledge: Sinharay's (2017) signed likelihood-ratio statistic and the item scan after a date."""

import math

import numpy as np
import pytest
from scipy.optimize import minimize_scalar

from adaptive.exceptions import ScoringError
from adaptive.security import Records, fit_response_times, item_scan, preknowledge, suspected_items
from adaptive.synthetic import simulate_responses, synthetic_bank


@pytest.fixture(scope="module")
def bank():
    return synthetic_bank(40, model="2pl", rng=12)


def _loglik(theta, x, a, b):
    p = 1.0 / (1.0 + np.exp(-a * (theta - b)))
    return float(np.sum(x * np.log(p) + (1 - x) * np.log(1 - p)))


def _ml(x, a, b):
    return minimize_scalar(lambda t: -_loglik(t, x, a, b), bounds=(-6, 6), method="bounded",
                           options={"xatol": 1e-10}).x


@pytest.mark.reference
def test_signed_lr_matches_an_independent_computation(bank):
    arr = bank.compile()
    a, b = arr.a, arr.thresholds[:, 0]
    x = simulate_responses(arr, np.array([-0.5, 0.3, 1.0]), rng=1)
    comp = np.zeros(40, bool)
    comp[::4] = True
    got = preknowledge(bank, Records.from_matrix(bank, x), comp)
    for j in range(3):
        tc, ts, ta = _ml(x[j, comp], a[comp], b[comp]), _ml(x[j, ~comp], a[~comp], b[~comp]), _ml(x[j], a, b)
        lr = 2 * (_loglik(tc, x[j, comp], a[comp], b[comp]) + _loglik(ts, x[j, ~comp], a[~comp], b[~comp])
                  - _loglik(ta, x[j], a, b))
        want = math.copysign(math.sqrt(max(lr, 0.0)), tc - ts)
        assert got.z_response[j] == pytest.approx(want, abs=1e-5)
        assert got.theta_compromised[j] == pytest.approx(tc, abs=1e-5)


def test_null_and_power_on_cat_data(honest, planted, cat_bank):
    rt = fit_response_times(honest.records)
    null = preknowledge(cat_bank, honest.records, honest.leaked, rt_fit=rt)
    for z in (null.z_response, null.z_time, null.z_combined):
        z = z[np.isfinite(z)]
        assert abs(z.mean()) < 0.12 and 0.9 < z.std() < 1.1
    # the speed contrast is exactly N(0, 1) under the model: its 5% rate is close to 5%
    assert 0.035 < np.mean(null.p_time < 0.05) < 0.065
    rt_p = fit_response_times(planted.records)
    res = preknowledge(cat_bank, planted.records, planted.leaked, rt_fit=rt_p)
    cheat = planted.label == "preknowledge"
    assert np.mean(res.p_combined[cheat] < 0.01) > 0.6  # fast right answers on leaked items stand out
    assert np.mean(res.p_combined[planted.label == "honest"] < 0.01) < 0.03


def test_item_scan_finds_items_that_got_easier_and_faster(bank):
    arr = bank.compile()
    rng = np.random.default_rng(7)
    n = 3000
    theta = rng.normal(size=n)
    x = simulate_responses(arr, theta, rng=8)
    t = rng.lognormal(np.log(60), 0.4, size=x.shape)
    when = np.repeat(np.linspace(0, 100, n)[:, None], 40, axis=1)  # candidates in time order
    late = when >= 50
    know = late & (rng.random((n, 1)) < 0.4) & (np.arange(40) < 4)  # items 0-3 leak at time 50
    x = np.where(know, 1.0, x)
    t = np.where(know, t * 0.3, t)
    rec = Records.from_matrix(bank, x, seconds=t, answered_at=when)
    scan = item_scan(bank, rec, after=50.0, rt_fit=fit_response_times(rec))
    flagged = suspected_items(scan)
    assert flagged[:4].all() and flagged[4:].sum() <= 2
    assert (scan.z_residual[:4] > 4).all() and (scan.z_time[:4] > 4).all()
    assert scan.n_before.sum() + scan.n_after.sum() == rec.n_records
    with pytest.raises(ScoringError, match="no answer times"):
        item_scan(bank, Records.from_matrix(bank, x), after=50.0)


def test_suspected_set_is_checked(bank):
    rec = Records.from_matrix(bank, simulate_responses(bank.compile(), np.zeros(5), rng=1))
    with pytest.raises(ScoringError, match="not in the bank"):
        preknowledge(bank, rec, ["NOPE-1"])
    with pytest.raises(ScoringError, match="outside the bank"):
        preknowledge(bank, rec, [99])
    ids = preknowledge(bank, rec, [bank.items[0].id, bank.items[1].id])
    idx = preknowledge(bank, rec, [0, 1])
    assert np.allclose(ids.z_response, idx.z_response)
