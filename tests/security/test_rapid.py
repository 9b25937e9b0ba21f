"""Rapid guessing: normative (Wise & Ma 2012) and mixture thresholds, response-time effort (Wise & Kong 2005)."""

import numpy as np
import pytest

from adaptive.exceptions import ScoringError
from adaptive.security import Records, mixture_thresholds, normative_thresholds, rapid_guessing
from adaptive.synthetic import simulate_responses, synthetic_bank


def test_normative_threshold_is_a_share_of_the_mean_time_capped():
    t = np.array([[30.0, 200.0, np.nan], [50.0, 300.0, 4.0]])
    assert normative_thresholds(t).tolist()[:2] == [4.0, 10.0]  # 10% of 40 s; 10% of 250 s capped at 10 s
    assert normative_thresholds(t, share=0.2, cap=100).tolist()[:2] == [8.0, 50.0]
    assert normative_thresholds(t)[2] == pytest.approx(0.4)
    with pytest.raises(ScoringError, match="share 1.5"):
        normative_thresholds(t, share=1.5)


def test_mixture_threshold_separates_a_planted_fast_mode():
    rng = np.random.default_rng(1)
    n = 4000
    slow = rng.lognormal(np.log(60), 0.35, size=(n, 3))
    fast = rng.lognormal(np.log(3), 0.3, size=(n, 3))
    is_fast = rng.random((n, 3)) < np.array([0.15, 0.05, 0.0])
    t = np.where(is_fast, fast, slow)
    thr = mixture_thresholds(t)
    # the two modes cross between 3 s and 60 s; with these spreads near 10-16 s (the densities' crossing)
    assert 8.0 < thr[0] < 20.0 and 8.0 < thr[1] < 22.0
    assert np.isnan(thr[2])  # no fast mode: no mixture threshold
    flagged = t[:, 0] < thr[0]
    assert np.mean(flagged == is_fast[:, 0]) > 0.995


def test_effort_and_the_effect_on_theta():
    bank = synthetic_bank(40, model="3pl", rng=2)
    arr = bank.compile()
    rng = np.random.default_rng(3)
    theta = rng.normal(size=300)
    x = simulate_responses(arr, theta, rng=4)
    t = rng.lognormal(np.log(50), 0.3, size=x.shape)
    # candidate 0 guesses fast on the last 20 items (a quarter right), everyone else works
    x[0, 20:] = (rng.random(20) < 0.25).astype(float)
    t[0, 20:] = 2.0
    rec = Records.from_matrix(bank, x, seconds=t)
    rg = rapid_guessing(bank, rec)
    assert rg.n_rapid[0] == 20 and rg.effort[0] == pytest.approx(0.5)
    assert rg.n_rapid[1:].sum() == 0 and np.all(rg.effort[1:] == 1.0)
    assert rg.not_engaged().tolist() == [True] + [False] * 299
    assert np.array_equal(rg.theta_without_rapid[1:], rg.theta[1:])
    # re-estimated on the first 20 answers only: the same as estimating from those answers directly
    alone = rapid_guessing(bank, Records.from_matrix(bank, np.where(np.arange(40) < 20, x[0], np.nan)[None, :],
                                                     seconds=t[:1]), thresholds=np.zeros(40))
    assert rg.theta_without_rapid[0] == pytest.approx(alone.theta[0], abs=1e-8)
    assert rg.method == "normative" and rapid_guessing(bank, rec, method="mixture").method == "mixture"
    with pytest.raises(ScoringError, match="method 'fast' is not known"):
        rapid_guessing(bank, rec, method="fast")
    with pytest.raises(ScoringError, match="one value per bank item"):
        rapid_guessing(bank, rec, thresholds=[1.0])
