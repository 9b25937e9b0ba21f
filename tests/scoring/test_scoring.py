"""Ability scoring, sum scores, plausible values and score scales against closed forms and brute force."""

from __future__ import annotations

import itertools
from types import SimpleNamespace

import numpy as np
import pytest
from scipy.special import logit

from adaptive import ItemBank, ResponseValidationError, ScoreScale, ScoringError, estimate_ability, pass_probability
from adaptive.scoring import (
    eap_sum_score,
    expected_raw_score,
    percent_correct,
    plausible_values,
    sum_score_distribution,
    theta_for_raw_score,
)
from adaptive.synthetic import simulate_responses, synthetic_bank


def _bank(a, b, c=None):
    c = [0.0] * len(a) if c is None else c
    model = "3pl" if any(c) else "2pl"
    return ItemBank(items=[{"id": f"Q{i}", "model": model, "a": ai, "b": bi, **({"c": ci} if ci else {})}
                           for i, (ai, bi, ci) in enumerate(zip(a, b, c))])


# ------------------------------------------------------------------ Lord-Wingersky


def test_lord_wingersky_hand_worked_case():
    """Two dichotomous items (P = 0.5, 0.8) and a 3-category item (0.2, 0.3, 0.5), worked by hand:
    after the dichotomous items f = (0.1, 0.5, 0.4); adding the third item gives
    f = (0.02, 0.13, 0.28, 0.37, 0.20)."""
    prob = np.array([[[0.5, 0.5, 0.0]], [[0.2, 0.8, 0.0]], [[0.2, 0.3, 0.5]]])  # (I, Q=1, K)
    with np.errstate(divide="ignore"):
        tables = SimpleNamespace(log_prob=np.log(prob))
    np.testing.assert_allclose(sum_score_distribution(tables)[0], [0.02, 0.13, 0.28, 0.37, 0.20], atol=1e-15)


def test_eap_sum_score_matches_brute_force_enumeration():
    bank = ItemBank(items=[
        {"id": "A", "model": "3pl", "a": 1.2, "b": -0.5, "c": 0.2},
        {"id": "B", "model": "2pl", "a": 0.7, "b": 0.3},
        {"id": "C", "model": "graded", "a": 1.4, "thresholds": [-1.0, 0.8]},
        {"id": "D", "model": "gpcm", "a": 0.9, "thresholds": [0.2, -0.4, 1.1]},
    ])
    arr = bank.compile()
    grid = np.linspace(-6, 6, 121)
    table = eap_sum_score(arr, grid=(-6, 6, 121), prior_mean=0.3, prior_sd=1.2)
    # enumerate all 2*2*3*4 patterns, add likelihoods by summed score
    prob = arr.prob(grid)  # (Q, I, K)
    w = np.exp(-0.5 * ((grid - 0.3) / 1.2) ** 2)
    like_by_score = np.zeros((grid.size, arr.max_score + 1))
    for pattern in itertools.product(*(range(k) for k in arr.n_cat)):
        like = np.prod([prob[:, i, k] for i, k in enumerate(pattern)], axis=0)
        like_by_score[:, sum(pattern)] += like
    post = like_by_score * w[:, None]
    post /= post.sum(axis=0)
    mean = grid @ post
    sd = np.sqrt(grid**2 @ post - mean**2)
    np.testing.assert_allclose(table.theta, mean, rtol=1e-10)
    np.testing.assert_allclose(table.se, sd, rtol=1e-9)
    assert table.probability.sum() == pytest.approx(1.0)
    assert np.all(np.diff(table.theta) > 0)
    t, s = table.lookup([0, arr.max_score])
    assert t[0] == table.theta[0] and s[1] == table.se[-1]
    with pytest.raises(ValueError, match="within 0"):
        table.lookup([arr.max_score + 1])


# ------------------------------------------------------------------ estimators


def test_eap_with_user_prior_equals_normal_prior():
    bank = _bank([1.0, 1.5, 0.8], [-1.0, 0.0, 1.2])
    grid = np.linspace(-6, 6, 121)
    prior = np.exp(-0.5 * ((grid - 0.5) / 0.8) ** 2)
    x = [[1, 0, np.nan], [1, 1, 1]]
    a = estimate_ability(bank, x, "eap", prior_mean=0.5, prior_sd=0.8, grid=(-6, 6, 121))
    b = estimate_ability(bank, x, "eap", prior=prior, grid=(-6, 6, 121))
    np.testing.assert_allclose(a.theta, b.theta, rtol=1e-12)
    np.testing.assert_allclose(a.se, b.se, rtol=1e-12)


def test_eap_single_rasch_item_matches_quadrature_closed_form():
    """One Rasch item at b = 0 answered correctly, N(0, 1) prior: the posterior mean is
    integral(t phi(t) sigma(t)) / integral(phi(t) sigma(t)); sigma(t) - 1/2 is odd, so the denominator is 1/2.
    The numerator is evaluated with scipy.integrate.quad on the real line."""
    from scipy.integrate import quad
    from scipy.special import expit
    from scipy.stats import norm

    num = quad(lambda t: t * norm.pdf(t) * expit(t), -np.inf, np.inf)[0]
    bank = ItemBank(items=[{"id": "R", "model": "rasch", "b": 0.0}])
    est = estimate_ability(bank, [[1]], "eap", grid=(-8, 8, 401))
    assert est.theta[0] == pytest.approx(num / 0.5, abs=1e-8)


def test_ml_single_2pl_item_pair_closed_form():
    """Two Rasch items with b = -1 and b = +1, one right one wrong: the likelihood is symmetric
    about 0, so ML = 0 and its expected-information SE is 1/sqrt(2 * sigma(1) sigma(-1))."""
    from scipy.special import expit

    bank = ItemBank(items=[{"id": "L", "model": "rasch", "b": -1.0}, {"id": "H", "model": "rasch", "b": 1.0}])
    est = estimate_ability(bank, [[1, 0]], "ml")
    assert est.theta[0] == pytest.approx(0.0, abs=1e-9)
    assert est.se[0] == pytest.approx(1 / np.sqrt(2 * expit(1) * expit(-1)), rel=1e-9)


@pytest.mark.parametrize("method", ["ml", "wle", "map", "eap"])
def test_perfect_and_zero_patterns_are_finite_and_flagged(method):
    bank = _bank([1.0, 1.5, 0.8, 2.0], [-1.0, 0.0, 1.2, 0.4], [0.2, 0.0, 0.25, 0.1])
    x = np.array([[1, 1, 1, 1], [0, 0, 0, 0], [1, np.nan, 1, np.nan], [np.nan] * 4])
    est = estimate_ability(bank, x, method)
    assert np.all(np.isfinite(est.theta))
    if method == "ml":
        assert est.theta[0] == 4.0 and est.at_bound[0] == 1
        assert est.theta[1] == -4.0 and est.at_bound[1] == -1
        assert est.at_bound[2] == 1
    if method in ("eap", "map"):
        assert np.all(np.isfinite(est.se))
        assert est.theta[3] == pytest.approx(0.0, abs=1e-6)  # no responses: the prior
    assert list(est.n_answered) == [4, 4, 2, 0]
    assert "estimates for 4 examinee(s)" in est.summary()


def test_ml_se_is_inverse_root_test_information():
    bank = synthetic_bank(40, model="2pl", rng=3)
    arr = bank.compile()
    x = simulate_responses(arr, np.array([-1.0, 0.0, 1.5]), rng=4)
    est = estimate_ability(bank, x, "ml")
    np.testing.assert_allclose(est.se, 1 / np.sqrt(arr.test_information(est.theta[:, None]).ravel()), rtol=1e-9)


def test_seeded_recovery_and_se_calibration():
    """2,000 simulees, 60 3PL items: EAP and WLE recover θ, and mean reported SE^2 matches the MSE."""
    rng = np.random.default_rng(20261124)
    bank = synthetic_bank(60, model="3pl", rng=rng)
    theta = rng.standard_normal(2000)
    x = simulate_responses(bank.compile(), theta, rng=rng)
    for method in ("eap", "wle", "map"):
        est = estimate_ability(bank, x, method)
        err = est.theta - theta
        assert np.corrcoef(est.theta, theta)[0, 1] > 0.9, method
        assert abs(np.mean(err**2) / np.mean(est.se**2) - 1) < 0.15, method
    wle = estimate_ability(bank, x, "wle")
    assert abs(np.mean(wle.theta - theta)) < 0.05


def test_missing_items_are_ignored():
    bank = _bank([1.0, 1.5, 0.8], [-1.0, 0.0, 1.2])
    full = estimate_ability(_bank([1.0, 0.8], [-1.0, 1.2]), [[1, 0]], "eap")
    masked = estimate_ability(bank, [[1, np.nan, 0]], "eap")
    np.testing.assert_allclose(masked.theta, full.theta, rtol=1e-12)


def test_response_errors_name_row_and_item():
    bank = _bank([1.0, 1.5], [-1.0, 0.0])
    with pytest.raises(ResponseValidationError, match=r"row 1, item 'Q0': response 2.0"):
        estimate_ability(bank, [[1, 0], [2, 1]])
    with pytest.raises(ResponseValidationError, match=r"bank has 2 items"):
        estimate_ability(bank, [[1, 0, 1]])
    with pytest.raises(ScoringError, match="unknown method"):
        estimate_ability(bank, [[1, 0]], "mle-ish")


# ------------------------------------------------------------------ plausible values


def test_plausible_values_match_posterior_moments():
    bank = synthetic_bank(20, model="2pl", rng=5)
    x = simulate_responses(bank.compile(), np.array([-1.0, 0.5]), rng=6)
    est = estimate_ability(bank, x, "eap")
    pv = plausible_values(est, n_draws=40_000, rng=7)
    h = est.grid[1] - est.grid[0]
    np.testing.assert_allclose(pv.mean(axis=1), est.theta, atol=0.01)
    np.testing.assert_allclose(pv.var(axis=1), est.se**2 + h**2 / 12, rtol=0.03)
    np.testing.assert_array_equal(plausible_values(est, 3, rng=1), plausible_values(est, 3, rng=1))


# ------------------------------------------------------------------ scales


def test_tcc_inversion_rasch_closed_form():
    """75 Rasch items at b = 0: the TCC is 75 sigma(θ), so 52 correct maps to θ = logit(52/75)."""
    bank = ItemBank(items=[{"id": f"R{i}", "model": "rasch", "b": 0.0} for i in range(75)])
    arr = bank.compile()
    cut = theta_for_raw_score(arr, 52)
    assert float(cut) == pytest.approx(logit(52 / 75), abs=1e-9)
    assert float(expected_raw_score(arr, cut)) == pytest.approx(52, abs=1e-8)
    assert float(percent_correct(arr, 0.0)) == pytest.approx(50.0)
    with pytest.raises(ScoringError, match="outside the expected-score range"):
        theta_for_raw_score(_bank([1.0] * 3, [0.0] * 3, [0.25] * 3).compile(), 0.5)


def test_score_scale_rounds_clamps_and_never_shows_a_failing_pass():
    s = ScoreScale(theta_cut=0.25, scaled_cut=300, slope=50, minimum=100, maximum=400)
    np.testing.assert_array_equal(s.to_scaled([0.25, 1.0, -9.0, 9.0, 0.2499]), [300, 338, 100, 400, 299])
    assert s.to_theta(300) == 0.25
    assert s.scaled_se(0.3) == pytest.approx(15.0)
    with pytest.raises(ValueError):
        ScoreScale(theta_cut=0.0, scaled_cut=500)


def test_pass_probability_posterior_and_normal_agree_for_long_tests():
    bank = synthetic_bank(150, model="2pl", rng=8)
    x = simulate_responses(bank.compile(), np.array([-0.5, 0.1, 0.3, 1.0]), rng=9)
    est = estimate_ability(bank, x, "eap", grid=(-6, 6, 241))
    post = pass_probability(est, 0.2)
    norm = pass_probability(theta=est.theta, se=est.se, theta_cut=0.2, method="normal")
    np.testing.assert_allclose(post, norm, atol=0.02)
    assert np.all((post >= 0) & (post <= 1))
    with pytest.raises(ScoringError, match="needs an EAP"):
        pass_probability(estimate_ability(bank, x, "wle"), 0.2)


def test_simulated_responses_are_draws_by_the_inverse_cdf_across_person_chunks():
    # 400 items: simulate_responses works in chunks of 5,000 persons; 12,000 persons span three of them. The
    # reference is the one-shot formula: category = number of cumulative probabilities below a uniform draw,
    # with the uniforms drawn first (persons x items) and the missing-cell draws after them
    bank = synthetic_bank(400, model="3pl", rng=4)
    arr = bank.compile()
    theta = np.random.default_rng(5).standard_normal(12_000)
    x = simulate_responses(arr, theta, rng=6, missing=0.3)
    rng = np.random.default_rng(6)
    u = rng.random((theta.size, 400))
    cdf = np.cumsum(arr.prob(theta), axis=-1)
    ref = (u[..., None] > cdf[..., :-1]).sum(axis=-1).astype(float)
    ref[rng.random(ref.shape) < 0.3] = np.nan
    np.testing.assert_array_equal(x, ref)
