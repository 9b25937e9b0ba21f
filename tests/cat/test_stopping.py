"""Stopping rules against their definitions, step by step.

References: Wald (1947) for the SPRT bounds log((1-β)/α) and log(β/(1-α)) and the log-likelihood
ratio at θcut ± δ (Reckase 1983 for its use in CAT); the confidence-interval rule θ̂ ± z·SE vs θcut
(Kingsbury & Weiss 1983); each run-out-of-time rule as documented in StoppingSpec. The reference
values below are computed in the test with plain Python from the 2PL formula, not with the engine.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adaptive import ItemBank
from adaptive.cat import ExamDesign, Session, simulate_cat
from adaptive.cat.registry import TIMEOUT_RULES
from adaptive.cat.stopping import STOPPING_RULES
from adaptive.synthetic import simulate_responses
from tests.cat.helpers import cmcs_bank as _cmcs_bank

pytestmark = pytest.mark.reference


def _bank(n=60, seed=3):
    rng = np.random.default_rng(seed)
    return ItemBank(items=[{"id": f"S{k:03d}", "model": "2pl", "a": float(rng.uniform(0.8, 2.0)),
                            "b": float(rng.normal(0, 1.2))} for k in range(n)])


def _p(a, b, theta):
    return 1.0 / (1.0 + math.exp(-a * (theta - b)))


def _run(design, bank, answer, seed=5, seconds=None):
    s = Session.start(design, bank, seed=seed)
    steps = []
    while (item := s.next_item()) is not None:
        x = answer(len(steps), item)
        e = s.answer(item, x, seconds=seconds)
        steps.append((item, x, e))
    return s, steps


@pytest.mark.parametrize("alpha, beta, delta", [(0.05, 0.05, 0.3), (0.01, 0.10, 0.2), (0.10, 0.02, 0.5)])
@pytest.mark.parametrize("pattern", ["mostly_right", "mostly_wrong", "mixed"])
def test_sprt_stops_at_the_first_crossing_of_walds_bounds(alpha, beta, delta, pattern):
    bank = _bank()
    cut, min_len = 0.2, 4
    design = ExamDesign(min_length=min_len, max_length=40, content={"method": "none"}, scale={"theta_cut": cut},
                        stopping={"sprt": {"delta": delta, "alpha": alpha, "beta": beta}})
    rng = np.random.default_rng(len(pattern))
    p_right = {"mostly_right": 0.85, "mostly_wrong": 0.15, "mixed": 0.55}[pattern]
    s, steps = _run(design, bank, lambda k, item: int(rng.uniform() < p_right))
    upper, lower = math.log((1 - beta) / alpha), math.log(beta / (1 - alpha))
    llr = 0.0
    expected_stop = None
    for k, (item, x, entry) in enumerate(steps, start=1):
        it = bank.item(item)
        p_hi, p_lo = _p(it.a, it.b, cut + delta), _p(it.a, it.b, cut - delta)
        llr += math.log(p_hi / p_lo) if x == 1 else math.log((1 - p_hi) / (1 - p_lo))
        assert entry.sprt_llr == pytest.approx(llr, rel=1e-10, abs=1e-12)
        if expected_stop is None and k >= min_len and (llr >= upper or llr <= lower):
            expected_stop = (k, "pass" if llr >= upper else "fail")
    r = s.result()
    if expected_stop is None:
        assert r.stopped_by == "max_length" and len(steps) == 40
    else:
        assert (len(steps), r.decision) == expected_stop
        assert r.stopped_by == "sprt"


def test_classification_rule_stops_once_the_interval_excludes_the_cut():
    bank = _bank()
    cut, z = 0.2, 1.645
    design = ExamDesign(min_length=5, max_length=40, content={"method": "none"}, scale={"theta_cut": cut},
                        stopping={"classification": {"z": z}})
    for p_right in (0.9, 0.1):
        rng = np.random.default_rng(1)
        s, steps = _run(design, bank, lambda k, item: int(rng.uniform() < p_right))
        first = None
        for k, (_, _, e) in enumerate(steps, start=1):
            if k >= 5 and (e.theta_after - z * e.se_after > cut or e.theta_after + z * e.se_after < cut):
                first = k
                break
        assert first == len(steps)
        r = s.result()
        assert r.stopped_by == "classification"
        assert r.decision == ("pass" if r.theta > cut else "fail")


def test_se_target_and_max_length():
    bank = _bank()
    design = ExamDesign(min_length=3, max_length=12, content={"method": "none"}, stopping={"se_target": 0.5})
    s, steps = _run(design, bank, lambda k, item: k % 2)
    ses = [e.se_after for _, _, e in steps]
    k = next((i + 1 for i, v in enumerate(ses) if i + 1 >= 3 and v <= 0.5), None)
    assert len(steps) == (k if k is not None else 12)
    assert s.result().stopped_by == ("se_target" if k is not None else "max_length")
    fixed = ExamDesign(min_length=7, max_length=7, content={"method": "none"})
    s, steps = _run(fixed, bank, lambda k, item: 1)
    assert len(steps) == 7 and s.result().stopped_by == "max_length"


@pytest.mark.parametrize("on_timeout, n_before_limit, right, expected", [
    ("score", 3, 1, "fail"),          # min_length (5) not reached: fail
    ("score", 8, 1, "pass"),          # reached: decided by θ̂ (all right -> above the cut)
    ("score", 8, 0, "fail"),          # reached: decided by θ̂ (all wrong -> below)
    ("fail", 8, 1, "fail"),
    ("no_decision", 8, 1, "no decision"),
    ("no_decision", 3, 1, "no decision"),
])
def test_each_run_out_of_time_rule(on_timeout, n_before_limit, right, expected):
    bank = _bank()
    seconds = 30.0
    design = ExamDesign(min_length=5, max_length=30, content={"method": "none"}, scale={"theta_cut": 0.0},
                        stopping={"time_limit": seconds * n_before_limit, "on_timeout": on_timeout})
    s, steps = _run(design, bank, lambda k, item: right, seconds=seconds)
    r = s.result()
    assert len(steps) == n_before_limit and r.stopped_by == "time_limit"
    assert r.decision == expected
    # the batch engine decides the same
    x = np.full((1, len(bank.items)), float(right))
    b = simulate_cat(design, bank, responses=x, seed=[5], item_seconds=seconds)
    assert (b.rule[0], b.decision[0], int(b.n_items[0])) == ("time_limit", expected, n_before_limit)


def test_every_registered_run_out_of_time_rule_is_tested_above():
    assert set(TIMEOUT_RULES) == {"score", "fail", "no_decision", "nclex"}


def test_pool_exhaustion_before_min_length_gives_no_decision():
    bank = _bank(12)
    design = ExamDesign(min_length=10, max_length=10, content={"method": "none"}, scale={"theta_cut": 0.0})
    x = np.ones((1, 12))
    x[0, :5] = np.nan  # post-hoc: five items were never answered, so only 7 can be given
    r = simulate_cat(design, bank, responses=x, seed=[1])
    assert (r.rule[0], r.decision[0], int(r.n_items[0])) == ("pool_exhausted", "no decision", 7)


def test_rules_fire_in_precedence_order():
    names = [cls.code.label for cls in STOPPING_RULES[:5]]
    assert names == ["classification", "sprt", "se_target", "max_length", "time_limit"]
    bank = _bank()
    # both the classification rule and the SE target are met at the same step: classification names the stop
    design = ExamDesign(min_length=5, max_length=5, content={"method": "none"}, scale={"theta_cut": -3.0},
                        stopping={"classification": {"z": 0.5}, "se_target": 5.0})
    s, _ = _run(design, bank, lambda k, item: 1)
    assert s.result().stopped_by == "classification"


# ----------------------------------------------------------------------------- moved from test_engine.py



def test_stopping_rules_fire_as_stated():
    bank = _cmcs_bank(300, seed=12)
    theta = np.random.default_rng(2).normal(size=200)
    d_se = ExamDesign(min_length=5, max_length=50, stopping={"se_target": 0.3})
    r = simulate_cat(d_se, bank, thetas=theta, seed=1)
    by_se = r.rule == "se_target"
    assert by_se.any() and np.all(r.se[by_se] <= 0.3) and np.all(r.n_items[~by_se] == 50)
    d_ci = ExamDesign(min_length=5, max_length=50, scale={"theta_cut": 0.0}, stopping={"classification": {"z": 1.96}})
    r = simulate_cat(d_ci, bank, thetas=theta, seed=1)
    ci = r.rule == "classification"
    assert ci.any()
    lower = r.theta - 1.96 * r.se
    upper = r.theta + 1.96 * r.se
    assert np.all(np.where(r.decision[ci] == "pass", lower[ci] > 0, upper[ci] < 0))
    at_max = r.rule == "max_length"
    assert np.all((r.decision[at_max] == "pass") == (r.theta[at_max] >= 0))
    d_t = ExamDesign(min_length=10, max_length=50, scale={"theta_cut": 0.0},
                     stopping={"time_limit": 900, "seconds_per_item": 60, "on_timeout": "fail"})
    r = simulate_cat(d_t, bank, thetas=theta[:5], seed=1)
    assert np.all(r.n_items == 15) and np.all(r.rule == "time_limit") and np.all(r.decision == "fail")


def test_pool_exhaustion_stops_with_the_rule():
    bank = _cmcs_bank(40, seed=3)
    design = ExamDesign(min_length=5, max_length=40, content={"method": "none"}, scale={"theta_cut": 0.0})
    x = simulate_responses(bank.compile(), np.zeros(2), rng=1)
    x[:, 10:] = np.nan  # post-hoc: only 10 items answered
    r = simulate_cat(design, bank, responses=x, seed=1)
    assert np.all(r.rule == "pool_exhausted") and np.all(r.n_items == 10)


@pytest.mark.parametrize("right, k", [(1, 5), (0, 5), (1, 60)])
def test_nclex_run_out_of_time_rule(right, k):
    """NCSBN's rule: below min_length fail; otherwise pass only if each of the last k interim estimates (of scored
    items) was above the cut -- checked here against the estimates the audit trail records."""
    bank = _bank()
    design = ExamDesign(min_length=5, max_length=40, content={"method": "none"}, scale={"theta_cut": -0.5},
                        stopping={"time_limit": 30.0 * 12, "on_timeout": "nclex", "recent_estimates": k})
    rng = np.random.default_rng(k + right)
    s, steps = _run(design, bank, lambda n, item: int(rng.uniform() < (0.8 if right else 0.3)), seconds=30.0)
    path = [e.theta_after for _, _, e in steps]
    expected = "pass" if all(t >= -0.5 for t in path[-k:]) else "fail"
    r = s.result()
    assert (r.stopped_by, r.decision, len(steps)) == ("time_limit", expected, 12)
    short = ExamDesign(min_length=20, max_length=40, content={"method": "none"}, scale={"theta_cut": -0.5},
                       stopping={"time_limit": 30.0 * 12, "on_timeout": "nclex"})
    s, _ = _run(short, bank, lambda n, item: 1, seconds=30.0)
    assert s.result().decision == "fail"  # 12 < min_length 20: fail, however well it went


@given(min_len=st.integers(2, 8), extra=st.integers(0, 10), limit_items=st.integers(1, 20),
       on_timeout=st.sampled_from(["score", "fail", "no_decision", "nclex"]), cut=st.floats(-1.5, 1.5),
       p_right=st.floats(0.05, 0.95), seed=st.integers(0, 10_000), classify=st.booleans())
@settings(max_examples=60)
def test_the_reported_score_never_contradicts_the_decision(min_len, extra, limit_items, on_timeout, cut, p_right,
                                                          seed, classify):
    """Issue 15: whatever stops the test (time before or after the minimum, a classification, the maximum), a
    pass is reported at or above the passing scaled score, a fail below it, and no decision with no score."""
    bank = _bank()
    stopping = {"time_limit": 30.0 * limit_items, "on_timeout": on_timeout, "recent_estimates": 3}
    if classify:
        stopping["classification"] = {"z": 1.0}
    design = ExamDesign(min_length=min_len, max_length=min_len + extra, content={"method": "none"},
                        scale={"theta_cut": cut}, stopping=stopping)
    rng = np.random.default_rng(seed)
    s, _ = _run(design, bank, lambda n, item: int(rng.uniform() < p_right), seconds=30.0)
    r = s.result()
    cut_score = design.scale.scaled_cut
    if r.decision == "pass":
        assert r.scaled_score is not None and r.scaled_score >= cut_score
    elif r.decision == "fail":
        assert r.scaled_score is not None and r.scaled_score < cut_score
    else:
        assert r.scaled_score is None
