"""Contract of the rule registries and the shadow test's behaviour at its time limit.

Every registered start and run-out-of-time rule runs through the batch engine and through live
sessions with identical results (the selection, exposure and stopping rules are covered by
``test_engine.py::test_batch_and_live_sessions_agree``); a rule registered by a user can be named
in a design; a shadow test stopped by its time limit uses its incumbent or, without one, falls
back to the blueprint heuristic and says so in the audit.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.optimize

from adaptive import DesignError, DesignWarning, ItemBank
from adaptive.cat import CatEngine, ExamDesign, Session, simulate_cat
from adaptive.cat import constraints as constraints_module
from adaptive.cat.constraints import BlueprintBounds, Feasibility, feasible_test
from adaptive.cat.registry import SELECTION_RULES, START_RULES, TIMEOUT_RULES
from adaptive.cat.selection import SelectionRule
from adaptive.synthetic import simulate_responses, synthetic_bank


def _bank(n=120, seed=21):
    return synthetic_bank(n, model="3pl", rng=seed)


def _batch_vs_live(design, bank, theta, seeds, seconds=None):
    x = simulate_responses(bank.compile(), theta, rng=4)
    batch = simulate_cat(design, bank, responses=x, seed=seeds, item_seconds=seconds)
    for k, seed in enumerate(seeds):
        s = Session.start(design, bank, seed=int(seed))
        while (item := s.next_item()) is not None:
            s.answer(item, int(x[k, bank.index[item]]), seconds=seconds)
        r = s.result()
        assert r.items == [bank.ids[i] for i in batch.items_of(k, scored_only=False)]
        assert r.theta == pytest.approx(batch.theta[k], abs=1e-12)
        assert (r.stopped_by, r.decision) == (batch.rule[k], batch.decision[k])
    return batch


START = {"fixed_theta": {"theta": 0.5}, "random_theta": {"low": -1.5, "high": 1.5},
         "items": {"n_items": 2, "window": 8, "theta": -0.5}}


@pytest.mark.parametrize("kind", sorted(START_RULES))
def test_every_start_rule_gives_the_same_tests_in_batch_and_live(kind):
    bank = _bank()
    design = ExamDesign(min_length=8, max_length=8, start={"kind": kind, **START[kind]}, scale={"theta_cut": 0.0})
    batch = _batch_vs_live(design, bank, np.array([-1.0, 0.0, 1.2, 0.4]), [11, 12, 13, 14])
    if kind != "fixed_theta":  # the draws differ between sessions
        assert len({tuple(batch.items_of(k)[:2]) for k in range(4)}) > 1


@pytest.mark.parametrize("on_timeout", sorted(TIMEOUT_RULES))
def test_every_run_out_of_time_rule_gives_the_same_results_in_batch_and_live(on_timeout):
    bank = _bank()
    design = ExamDesign(min_length=6, max_length=20, scale={"theta_cut": 0.0},
                        stopping={"time_limit": 400.0, "on_timeout": on_timeout})
    batch = _batch_vs_live(design, bank, np.array([-1.0, 0.3, 1.5]), [1, 2, 3], seconds=50.0)
    assert set(batch.rule) == {"time_limit"}


class _HighestSlope(SelectionRule):
    """A user's rule: the most discriminating eligible item (ties to the lower index)."""

    def criterion(self, ctx, state, rows):
        return np.broadcast_to(ctx.arrays.a, (np.size(rows), ctx.arrays.n_items))


@pytest.fixture
def highest_slope_rule():
    SELECTION_RULES.register("highest_slope")(_HighestSlope)
    yield "highest_slope"
    SELECTION_RULES._rules.pop("highest_slope")


def test_a_registered_rule_can_be_named_in_a_design(highest_slope_rule, tmp_path):
    bank = _bank()
    path = tmp_path / "design.json"
    path.write_text(json.dumps({"min_length": 5, "max_length": 5, "content": {"method": "none"},
                                "selection": {"rule": highest_slope_rule}}))
    design = ExamDesign.load(path)
    batch = _batch_vs_live(design, bank, np.array([0.0, 1.0]), [1, 2])
    a = bank.compile().a
    np.testing.assert_array_equal(batch.items_of(0), np.argsort(-a, kind="stable")[:5])


def test_unknown_rule_names_are_refused_with_a_suggestion(tmp_path):
    path = tmp_path / "design.json"
    path.write_text(json.dumps({"selection": {"rule": "mfl"}, "start": {"kind": "fixed"},
                                "stopping": {"on_timeout": "pass"}}))
    with pytest.raises(DesignError) as ei:
        ExamDesign.load(path)
    text = str(ei.value)
    assert "3 problem(s)" in text
    assert "field 'selection.rule': unknown selection rule 'mfl'; did you mean 'mfi'?" in text
    assert "field 'start.kind': unknown start rule 'fixed'; did you mean 'fixed_theta'?" in text
    assert "field 'stopping.on_timeout': unknown run-out-of-time rule 'pass'" in text


# ----------------------------------------------------------------------------- shadow test at its time limit


def _enemy_heavy_bank():
    """400 items, each with 6 random enemies: a program HiGHS cannot solve in a microsecond."""
    data = json.loads(synthetic_bank(400, model="3pl", rng=3).to_json())
    rng = np.random.default_rng(0)
    ids = [it["id"] for it in data["items"]]
    for it in data["items"]:
        it["enemies"] = [ids[j] for j in rng.choice(len(ids), 6, replace=False) if ids[j] != it["id"]]
    return ItemBank(**data)


def test_shadow_test_without_a_solution_in_time_falls_back_to_the_heuristic_and_says_so():
    bank = _enemy_heavy_bank()
    design = ExamDesign(min_length=40, max_length=40, content={"method": "shadow", "time_limit": 1e-9})
    s = Session.start(design, bank, seed=1)
    while (item := s.next_item()) is not None:
        s.answer(item, 1)
    notes = {e.selection_note for e in s.audit}
    assert any(n and "blueprint heuristic chose the item" in n for n in notes)
    r = s.result()
    assert r.stopped_by == "max_length" and r.n_scored == 40  # the test went on, not "pool_exhausted"
    eng = CatEngine(design, bank)
    lo, hi = eng.bp.bounds(40)
    counts = np.bincount(eng.bp.item_domain[[bank.index[i] for i in r.items]], minlength=eng.bp.n_domains)
    assert np.all((counts >= lo) & (counts <= hi))
    pairs = {tuple(p) for p in bank.compile().enemy_pairs.tolist()}
    given = sorted(bank.index[i] for i in r.items)
    assert not any((i, j) in pairs for i in given for j in given)


def test_shadow_test_stopped_at_its_time_limit_uses_its_incumbent(monkeypatch):
    bank = _bank(200, seed=5)
    design = ExamDesign(min_length=20, max_length=20, content={"method": "shadow"})
    theta = np.array([-0.5, 0.8])
    solved = simulate_cat(design, bank, thetas=theta, seed=3)
    real_milp = scipy.optimize.milp

    def limit_hit(*args, **kwargs):  # HiGHS's answer when the time limit stops it with a test in hand
        res = real_milp(*args, **kwargs)
        res.status = 1
        return res

    monkeypatch.setattr(constraints_module, "milp", limit_hit)
    s = Session.start(design, bank, seed=7)
    item = s.next_item()
    e = s.answer(item, 1)
    assert e.selection_note == "shadow test stopped at its time limit: best test found used"
    incumbent = simulate_cat(design, bank, thetas=theta, seed=3)
    np.testing.assert_array_equal(incumbent.sequence, solved.sequence)  # the incumbent is that same test here


def test_feasibility_distinguishes_infeasible_from_not_proven_in_time():
    bank = _enemy_heavy_bank()
    a = bank.compile()
    bp = BlueprintBounds.build(bank.blueprint, [it.domain for it in bank.items])
    pool = np.ones(a.n_items, bool)
    lo, hi = bp.bounds(40)
    assert feasible_test(pool, bp.item_domain, lo, hi, 40, a.enemy_pairs) is Feasibility.FEASIBLE
    assert feasible_test(pool, bp.item_domain, lo, hi, 40, a.enemy_pairs, time_limit=1e-9) is Feasibility.UNKNOWN
    lo2, hi2 = bp.bounds(399)
    assert feasible_test(pool, bp.item_domain, lo2, hi2, 399, a.enemy_pairs) is Feasibility.INFEASIBLE


def test_a_design_whose_feasibility_is_not_proven_in_time_is_accepted_with_a_warning(monkeypatch):
    bank = _enemy_heavy_bank()
    monkeypatch.setattr("adaptive.cat.context.feasible_test", lambda *a, **k: Feasibility.UNKNOWN)
    with pytest.warns(DesignWarning, match="could not show within its time limit"):
        CatEngine(ExamDesign(min_length=40, max_length=40, content={"method": "shadow"}), bank)
