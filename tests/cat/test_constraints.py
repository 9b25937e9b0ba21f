"""Content constraints (cat/constraints.py): blueprint bounds and enemies in every test, the shadow test,
designs a bank cannot meet."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest

from adaptive import DesignError, ItemBank
from adaptive.cat import CatEngine, ExamDesign, simulate_cat
from tests.cat.helpers import cmcs_bank as _cmcs_bank


def _bank_with_enemies():
    bank = _cmcs_bank(260, seed=5)
    data = json.loads(bank.to_json())
    for k in range(0, 60, 3):  # enemy groups of three
        for j in range(3):
            data["items"][k + j]["enemy_groups"] = [f"G{k}"]
    data["items"][100]["enemies"] = [data["items"][101]["id"]]
    return ItemBank(**data)


@pytest.mark.parametrize("method", ["heuristic", "shadow"])
def test_blueprint_and_enemies_hold_in_every_test(method):
    bank = _bank_with_enemies()
    design = ExamDesign(min_length=30, max_length=30, content={"method": method})
    eng = CatEngine(design, bank)
    n = 60 if method == "heuristic" else 12
    res = simulate_cat(design, bank, thetas=np.random.default_rng(2).normal(size=n), seed=3, engine=eng)
    lo, hi = eng.bp.bounds(30)
    pairs = {tuple(p) for p in bank.compile().enemy_pairs}
    for k in range(n):
        items = res.items_of(k)
        assert len(items) == 30 and len(set(items)) == 30
        counts = np.bincount(eng.bp.item_domain[items], minlength=eng.bp.n_domains)
        assert np.all(counts >= lo) and np.all(counts <= hi), counts
        assert not any((min(i, j), max(i, j)) in pairs for i, j in itertools.combinations(items, 2))


def test_variable_length_tests_meet_the_blueprint_when_they_stop():
    bank = _cmcs_bank(300, seed=6)
    design = ExamDesign(min_length=12, max_length=40, stopping={"se_target": 0.35})
    eng = CatEngine(design, bank)
    res = simulate_cat(design, bank, thetas=np.random.default_rng(1).normal(size=100), seed=2, engine=eng)
    for k in range(100):
        items = res.items_of(k)
        lo, hi = eng.bp.bounds(len(items))
        counts = np.bincount(eng.bp.item_domain[items], minlength=eng.bp.n_domains)
        assert np.all(counts >= lo) and np.all(counts <= hi)


def test_impossible_designs_are_refused_with_the_reason():
    bank = _cmcs_bank(60, seed=1)
    with pytest.raises(DesignError, match="needs that many operational items"):
        CatEngine(ExamDesign(min_length=70, max_length=70), bank)
    bp = {"domains": [{"name": d, "min_items": 20 if d == "Modifiers" else 0} for d in bank.blueprint.names]}
    with pytest.raises(DesignError, match="'Modifiers' needs at least 20 items"):
        CatEngine(ExamDesign(min_length=30, max_length=30, content={"blueprint": bp}), bank)
    data = json.loads(bank.to_json())
    for it in data["items"]:
        it["enemy_groups"] = ["ALL"] if int(it["id"][-3:]) % 2 else []
    enemies = ItemBank(**data)
    with pytest.raises(DesignError, match="enemy pairs"):
        CatEngine(ExamDesign(min_length=40, max_length=40, content={"method": "none"}), enemies)
    with pytest.raises(DesignError, match="pretest items"):
        CatEngine(ExamDesign(min_length=10, max_length=10, pretest_items=2), bank)


def test_shadow_candidate_reduction_keeps_the_optimum():
    bank = _bank_with_enemies()
    design = ExamDesign(min_length=20, max_length=20, content={"method": "shadow"})
    reduced = CatEngine(design, bank)
    full = CatEngine(design, bank)
    full.shadow_candidates = lambda value, free, *rest: free  # the whole pool in every program
    theta = np.random.default_rng(6).normal(size=4)
    a = simulate_cat(design, bank, thetas=theta, seed=2, engine=reduced)
    b = simulate_cat(design, bank, thetas=theta, seed=2, engine=full)
    np.testing.assert_array_equal(a.sequence, b.sequence)
