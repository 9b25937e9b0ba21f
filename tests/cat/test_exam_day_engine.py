"""The engine's exam-day pieces: the domain report against numerical integration, per-session time limits,
extensions and expiry with each run-out-of-time rule, and replays of expired sessions."""

import numpy as np
import pytest
from scipy import integrate, stats

from adaptive.bank import ItemBank
from adaptive.cat import ExamDesign, Session
from adaptive.exceptions import ResponseValidationError, SessionStateError
from adaptive.resources import pool_path


@pytest.fixture(scope="module")
def cmcs():
    pool = pool_path("cmcs")
    return ItemBank.from_json(pool / "bank.json"), ExamDesign.load(pool / "design.json")


def _run(design, bank, seed, theta=0.3, seconds=60.0, limit=None):
    s = Session.start(design, bank, seed=seed, time_limit=limit)
    rng = np.random.default_rng(seed)
    while (item := s.next_item()) is not None:
        it = bank.items[bank.index[item]]
        p = it.c + (1 - it.c) / (1 + np.exp(-it.a * (theta - it.b)))
        s.answer(item, int(rng.random() < p), seconds)
    return s


def test_domain_estimates_equal_the_posterior_mean_by_quadrature(cmcs):
    """Reference: the posterior mean and SD of θ given one domain's scored answers, N(0, 1) prior and the bank's 3PL
    parameters, integrated with scipy.integrate.quad (independent of the engine's grid)."""
    bank, design = cmcs
    s = _run(design, bank, seed=11)
    res = s.result()
    report = {d.domain: d for d in s.domain_report()}
    scored = [(i, r) for i, r, pre in zip(res.items, res.responses, res.pretest, strict=True) if not pre]
    for domain, d in report.items():
        mine = [(bank.items[bank.index[i]], r) for i, r in scored if bank.items[bank.index[i]].domain == domain]
        assert d.n_items == len(mine)
        if len(mine) < design.report.min_domain_items:
            assert d.theta is None and d.level == "too few items"
            continue

        def lik(t, mine=mine):
            v = stats.norm.pdf(t)
            for it, r in mine:
                p = it.c + (1 - it.c) / (1 + np.exp(-it.a * (t - it.b)))
                v *= p if r else 1 - p
            return v

        z = integrate.quad(lik, -6, 6, limit=200)[0]
        mean = integrate.quad(lambda t: t * lik(t), -6, 6, limit=200)[0] / z
        var = integrate.quad(lambda t: (t - mean) ** 2 * lik(t), -6, 6, limit=200)[0] / z
        assert d.theta == pytest.approx(mean, abs=0.01)  # a 61-point rectangular grid against quadrature
        assert d.se == pytest.approx(np.sqrt(var), abs=0.01)
        cut = design.theta_cut
        expected = "above" if mean - np.sqrt(var) > cut else "below" if mean + np.sqrt(var) < cut else "near"
        assert d.level == expected


def test_an_accommodation_scales_the_limit_and_an_extension_lengthens_it(cmcs):
    bank, design = cmcs
    s = Session.start(design, bank, seed=3, time_limit=1.5 * 7200)
    assert s.time_limit == 10800
    assert s.extend(600) == 11400
    with pytest.raises(ResponseValidationError, match="seconds must be a number"):
        s.extend(float("nan"))
    with pytest.raises(ResponseValidationError, match="time_limit must be"):
        Session.start(design, bank, seed=3, time_limit=-1)


@pytest.mark.parametrize("rule, short, long", [("score", "fail", None), ("fail", "fail", "fail"),
                                               ("no_decision", "no decision", "no decision"),
                                               ("nclex", "fail", None)])
def test_expiry_applies_the_run_out_of_time_rule(cmcs, rule, short, long):
    bank, design = cmcs
    d = design.model_copy(update={"stopping": design.stopping.model_copy(update={"on_timeout": rule,
                                                                                 "recent_estimates": 5})})
    s = Session.start(d, bank, seed=5)
    for _ in range(3):
        s.answer(s.next_item(), 1, 10.0)
    s.next_item()
    r = s.expire()
    assert r.stopped_by == "time_limit" and r.decision == short and s.pending_item is None
    assert s.expired and s.next_item() is None
    with pytest.raises(SessionStateError, match="ended"):
        s.expire()
    # replayed from its stored JSON, the expired session ends the same way
    back = Session.from_json(s.to_json(), d, bank)
    assert back.finished and back.result().decision == short and back.result().scaled_score == r.scaled_score
    if long is not None:  # past min_length, the fixed rules still decide the same
        s2 = _run(d.model_copy(update={"max_length": 60, "stopping": d.stopping.model_copy(
            update={"classification": None})}), bank, seed=6, limit=35 * 60 + 30)
        assert s2.result().stopped_by == "time_limit" and s2.result().decision == long


def test_nclex_rule_passes_only_when_the_last_k_estimates_were_above_the_cut(cmcs):
    bank, design = cmcs
    d = design.model_copy(update={"min_length": 10, "stopping": design.stopping.model_copy(
        update={"on_timeout": "nclex", "recent_estimates": 5, "classification": None})})
    strong = Session.start(d, bank, seed=8)
    while strong.n_scored < 14:
        strong.answer(strong.next_item(), 1, 10.0)
    strong.next_item()
    r = strong.expire()
    path = np.array(r.theta_path)[~np.array(r.pretest)]
    assert (path[-5:] >= d.theta_cut).all() and r.decision == "pass"
    assert r.scaled_score >= d.scale.scaled_cut
