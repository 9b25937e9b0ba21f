"""lz and lz* against independent implementations of their published formulas, and their null on CAT data.

Sources: Drasgow, Levine & Williams (1985) for lz; Snijders (2001) and Magis, Raîche & Béland (2012, eqs. 4-12)
for lz* with the dichotomous models (w_i = logit P_i, r_i = P_i'/(P_i(1 - P_i)), r_0 by estimator); Sinharay
(2016) for polytomous items. The independent versions below are scalar loops written from those formulas, with
the 3PL derivatives in closed form and the polytomous ones by central differences of the category probabilities.
"""

import math

import numpy as np
import pytest
from scipy.stats import norm

from adaptive.exceptions import ResponseValidationError, ScoringError
from adaptive.scoring import estimate_ability
from adaptive.scoring.long_format import estimate_theta
from adaptive.security import Records, person_fit
from adaptive.security.person_fit import adaptive_null
from adaptive.synthetic import simulate_responses, synthetic_bank

pytestmark = pytest.mark.reference


def _three_pl(theta, a, b, c):
    psi = 1.0 / (1.0 + math.exp(-a * (theta - b)))
    p = c + (1 - c) * psi
    dp = a * (1 - c) * psi * (1 - psi)
    d2p = a * a * (1 - c) * psi * (1 - psi) * (1 - 2 * psi)
    return p, dp, d2p


def snijders(x, a, b, c, theta, estimator):
    """lz* of one pattern at theta, from Snijders (2001) / Magis et al. (2012), dichotomous items."""
    w_sum = num_c = den_c = info = jay = 0.0
    rows = []
    for xi, ai, bi, ci in zip(x, a, b, c):
        p, dp, d2p = _three_pl(theta, ai, bi, ci)
        w = math.log(p / (1 - p))
        r = dp / (p * (1 - p))
        w_sum += (xi - p) * w
        num_c += dp * w
        den_c += dp * r
        info += dp * dp / (p * (1 - p))
        jay += dp * d2p / (p * (1 - p))
        rows.append((p, w, r))
    cn = num_c / den_c
    r0 = {"ml": 0.0, "map": -theta, "wle": jay / (2 * info)}[estimator]
    tau2 = sum((w - cn * r) ** 2 * p * (1 - p) for p, w, r in rows)
    return (w_sum + cn * r0) / math.sqrt(tau2)


def drasgow(x, a, b, c, theta):
    l0 = e = v = 0.0
    for xi, ai, bi, ci in zip(x, a, b, c):
        p, _, _ = _three_pl(theta, ai, bi, ci)
        l0 += xi * math.log(p) + (1 - xi) * math.log(1 - p)
        e += p * math.log(p) + (1 - p) * math.log(1 - p)
        v += p * (1 - p) * math.log(p / (1 - p)) ** 2
    return (l0 - e) / math.sqrt(v)


@pytest.fixture(scope="module")
def bank3pl():
    return synthetic_bank(25, model="3pl", rng=11)


@pytest.mark.parametrize("estimator", ["ml", "wle", "map"])
def test_lz_star_matches_snijders_formula_dichotomous(bank3pl, estimator):
    arr = bank3pl.compile()
    a, b, c = arr.a, arr.thresholds[:, 0], arr.c
    x = simulate_responses(arr, np.array([-1.5, -0.2, 0.4, 1.3, 2.0]), rng=3)
    x[1, :5] = np.nan  # a missing block
    theta = np.array([-1.2, 0.1, 0.3, 1.1, 1.7])  # any ability: the formula is a function of theta
    got = person_fit(bank3pl, x, theta=theta, statistic="lz_star", estimator=estimator).values
    for j in range(x.shape[0]):
        keep = np.isfinite(x[j])
        want = snijders(x[j, keep], a[keep], b[keep], c[keep], theta[j], estimator)
        assert got[j] == pytest.approx(want, abs=1e-10)


def test_lz_matches_drasgow_formula(bank3pl):
    arr = bank3pl.compile()
    x = simulate_responses(arr, np.linspace(-2, 2, 6), rng=4)
    theta = np.linspace(-1.8, 2.2, 6)
    got = person_fit(bank3pl, x, theta=theta, statistic="lz")
    for j in range(6):
        assert got.values[j] == pytest.approx(drasgow(x[j], arr.a, arr.thresholds[:, 0], arr.c, theta[j]), abs=1e-10)
    assert np.allclose(got.p_values, norm.cdf(got.values))


@pytest.mark.parametrize("model", ["grm", "gpcm"])
def test_lz_star_matches_sinharay_formula_polytomous(model):
    bank = synthetic_bank(12, model=model, rng=5)
    arr = bank.compile()
    x = simulate_responses(arr, np.array([-1.0, 0.0, 1.2]), rng=6)
    theta = np.array([-0.8, 0.2, 1.0])
    got = person_fit(bank, x, theta=theta, statistic="lz_star", estimator="wle").values
    h = 1e-5
    for j in range(3):
        p = arr.prob(np.array(theta[j]))  # (I, K), the model's θ side
        dp = (arr.prob(np.array(theta[j] + h)) - arr.prob(np.array(theta[j] - h))) / (2 * h)
        d2p = (arr.prob(np.array(theta[j] + h)) - 2 * p + arr.prob(np.array(theta[j] - h))) / (h * h)
        w_sum = num = info = jay = 0.0
        for i in range(arr.n_items):
            k = int(x[j, i])
            w = np.log(p[i])
            w_sum += w[k] - (p[i] * w).sum()
            num += (dp[i] * w).sum()
            info += (dp[i] ** 2 / p[i]).sum()
            jay += (dp[i] * d2p[i] / p[i]).sum()
        cn = num / info
        var = 0.0
        for i in range(arr.n_items):
            wt = np.log(p[i]) - cn * dp[i] / p[i]
            var += (p[i] * wt ** 2).sum() - (p[i] * wt).sum() ** 2
        want = (w_sum + cn * jay / (2 * info)) / math.sqrt(var)
        assert got[j] == pytest.approx(want, abs=2e-4)


@pytest.mark.parametrize("method", ["wle", "ml", "map"])
def test_long_format_estimates_equal_the_scoring_module(bank3pl, method):
    """The security estimators on long records give the dense estimators' values (those are checked against
    catR in tests/scoring)."""
    arr = bank3pl.compile()
    x = simulate_responses(arr, np.linspace(-2, 2, 40), rng=8, missing=0.3)
    x[0] = np.where(np.isfinite(x[0]), 1.0, np.nan)  # all right: ML ends at a bound
    got = estimate_theta(arr, Records.from_matrix(bank3pl, x), method)
    want = estimate_ability(bank3pl, x, method=method, bounds=(-6, 6))
    rows = slice(1, None) if method == "ml" else slice(None)
    assert np.allclose(got.theta[rows], want.theta[rows], atol=1e-5)
    if method == "ml":
        assert got.theta[0] == 6.0


def test_fixed_form_null_is_close_to_standard_normal():
    bank = synthetic_bank(60, model="2pl", rng=2)
    x = simulate_responses(bank.compile(), np.random.default_rng(3).normal(size=4000), rng=4)
    fit = person_fit(bank, x)
    v = fit.values
    # Snijders' asymptotics with 60 items: mean and SD near 0 and 1 (Monte Carlo SE about 0.016)
    assert abs(np.mean(v)) < 0.15 and 0.93 < np.std(v) < 1.07
    assert 0.035 < np.mean(fit.p_values < 0.05) < 0.065


@pytest.mark.slow
def test_adaptive_null_is_shifted_and_the_simulated_reference_fixes_it(honest, cmcs_design, cat_bank):
    """On CAT data lz* of honest candidates is not N(0, 1) (items depend on answers): normal p-values are
    conservative. The simulated reference restores the stated rate on an independent honest sample."""
    rec = honest.records
    normal = person_fit(cat_bank, rec)
    # measured on these 1,500 candidates: mean +0.38, SD 0.90, 0.2% below p = .01 and 1.5% below p = .05
    assert np.nanmean(normal.values) > 0.2 and 0.8 < np.nanstd(normal.values) < 0.97
    assert np.mean(normal.p_values < 0.01) < 0.006 and np.mean(normal.p_values < 0.05) < 0.03
    null = adaptive_null(cmcs_design, cat_bank, 3000, rng=99)
    calibrated = person_fit(cat_bank, rec, null=null)
    assert calibrated.reference.startswith("adaptive simulation")
    rate = np.mean(calibrated.p_values < 0.05)
    assert 0.035 < rate < 0.068  # 1,500 candidates: binomial SE 0.0056 around 0.05
    assert np.array_equal(np.isnan(calibrated.values), np.isnan(normal.values))


def test_bad_requests_say_what_to_do(bank3pl):
    x = np.full((2, 25), np.nan)
    x[:, :3] = 1
    with pytest.raises(ScoringError, match="statistic 'lzz' is not known"):
        person_fit(bank3pl, x, statistic="lzz")
    with pytest.raises(ScoringError, match="estimator 'mle' is not known"):
        person_fit(bank3pl, x, estimator="mle")
    with pytest.raises(ScoringError, match="theta has 3 values for 2 persons"):
        person_fit(bank3pl, x, theta=[0, 0, 0])
    with pytest.raises(ResponseValidationError, match="row 1, item 2: 2.0 is not a category|category 2"):
        bad = x.copy()
        bad[0, 1] = 2
        person_fit(bank3pl, bad)
    one = person_fit(bank3pl, np.where(np.arange(25) < 1, 1.0, np.nan)[None, :])
    assert np.isnan(one.values[0])  # one answer: no statistic
