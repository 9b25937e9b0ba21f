"""Classification accuracy and consistency: Rudner's and Lee's indices against direct numerical integrals and
exact enumeration (sources: Rudner 2001/2005; Lee 2010 -- the definitions, computed independently here)."""

import itertools
import math

import numpy as np
import pytest
from scipy.integrate import quad
from scipy.stats import norm

from adaptive.exceptions import ScoringError
from adaptive.scoring.classification import lee, rudner, rudner_from_estimates
from adaptive.synthetic import synthetic_bank

pytestmark = pytest.mark.reference


@pytest.fixture(scope="module")
def form():
    return synthetic_bank(8, model="3pl", rng=2).compile()


def _p_right(arr, theta):
    a, b, c = arr.a, arr.thresholds[:, 0], arr.c
    return c + (1 - c) / (1 + np.exp(-a * (theta - b)))


def test_rudner_equals_a_direct_integral(form):
    cut = 0.4

    def p_pass(t):
        p = _p_right(form, t)
        a, c = form.a, form.c
        psi = (p - c) / (1 - c)
        info = np.sum(a ** 2 * (1 - c) ** 2 * psi ** 2 * (1 - psi) ** 2 / (p * (1 - p)))  # 3PL information
        return norm.cdf((t - cut) * math.sqrt(info))

    acc = quad(lambda t: (p_pass(t) if t >= cut else 1 - p_pass(t)) * norm.pdf(t), -8, 8, points=[cut], limit=200)[0]
    con = quad(lambda t: (p_pass(t) ** 2 + (1 - p_pass(t)) ** 2) * norm.pdf(t), -8, 8, limit=200)[0]
    got = rudner(form, cut, grid=(-8, 8, 1001))
    assert got.accuracy == pytest.approx(acc, abs=2e-4)
    assert got.consistency == pytest.approx(con, abs=2e-4)
    assert got.accuracy == pytest.approx(1 - got.false_pass - got.false_fail)


def test_lee_equals_enumeration(form):
    """P(X >= c | θ) by summing all 2^8 patterns; the indices by quadrature of those."""
    raw_cut, cut = 5, 0.3

    def p_pass(t):
        p = _p_right(form, t)
        total = 0.0
        for bits in itertools.product((0, 1), repeat=8):
            if sum(bits) >= raw_cut:
                total += float(np.prod(np.where(np.array(bits) == 1, p, 1 - p)))
        return total

    acc = quad(lambda t: (p_pass(t) if t >= cut else 1 - p_pass(t)) * norm.pdf(t), -7, 7, points=[cut], limit=100)[0]
    con = quad(lambda t: (p_pass(t) ** 2 + (1 - p_pass(t)) ** 2) * norm.pdf(t), -7, 7, limit=100)[0]
    got = lee(form, raw_cut, cut, grid=(-7, 7, 1001))
    assert got.accuracy == pytest.approx(acc, abs=3e-4)
    assert got.consistency == pytest.approx(con, abs=3e-4)
    # default true status: the inverse-TCC θ of the raw cut
    from adaptive.scoring import theta_for_raw_score

    assert lee(form, raw_cut).accuracy == pytest.approx(
        lee(form, raw_cut, float(theta_for_raw_score(form, raw_cut))).accuracy)
    with pytest.raises(ScoringError, match="raw_cut 9"):
        lee(form, 9)


def test_rudner_from_estimates_by_hand():
    """Two candidates: θ̂ = 1.0 (SE 0.5) passes, θ̂ = -0.2 (SE 0.4) fails at cut 0: accuracy is the mean of
    Φ(2) and Φ(0.5); consistency the mean of Φ(1/(0.5√2)) and Φ(0.2/(0.4√2))."""
    got = rudner_from_estimates([1.0, -0.2], [0.5, 0.4], 0.0)
    assert got.accuracy == pytest.approx((norm.cdf(2.0) + norm.cdf(0.5)) / 2)
    assert got.consistency == pytest.approx((norm.cdf(1 / (0.5 * math.sqrt(2))) + norm.cdf(0.2 / (0.4 * math.sqrt(2))))
                                            / 2)
    assert got.pass_rate == 0.5


def test_more_items_classify_better():
    short = synthetic_bank(10, model="2pl", rng=3).compile()
    long = synthetic_bank(60, model="2pl", rng=3).compile()
    assert rudner(long, 0.3).accuracy > rudner(short, 0.3).accuracy > 0.5
    assert rudner(long, 0.3).kappa > rudner(short, 0.3).kappa


@pytest.mark.slow
def test_cat_design_by_simulation():
    from adaptive import ExamDesign, ItemBank
    from adaptive.resources import pool_path
    from adaptive.simulation.classification import cat_classification

    bank = ItemBank.from_json(pool_path("cmcs") / "bank.json")
    design = ExamDesign.load(pool_path("cmcs") / "design.json")
    res = cat_classification(design, bank, 2000, seed=3)
    assert res.accuracy == pytest.approx(1 - res.false_pass - res.false_fail - res.no_decision)
    assert res.accuracy_ci[0] < res.accuracy < res.accuracy_ci[1]
    assert 0.85 < res.accuracy < 0.99 and 0.8 < res.consistency < 0.99
    assert cat_classification(design, bank, 2000, seed=3) == res  # seeded: the same numbers
