"""Exact maximum-information selection (cat/mfi.py): the bound index gives the argmax over all items."""

from __future__ import annotations

import numpy as np
import pytest

from adaptive import ItemBank
from adaptive.cat import CatEngine, ExamDesign, Session, simulate_cat
from tests.cat.helpers import cmcs_bank as _cmcs_bank


@pytest.mark.parametrize("content, k", [("none", 1), ("heuristic", 1), ("heuristic", 3), ("none", 4)])
def test_exact_mfi_index_equals_scoring_every_item(content, k):
    bank = _cmcs_bank()
    design = ExamDesign(min_length=25, max_length=25, content={"method": content}, exposure={"randomesque": k})
    fast = CatEngine(design, bank)
    slow = CatEngine(design, bank)
    slow.mfi_index = None  # every item scored exactly at every step
    assert fast.mfi_index is not None
    theta = np.random.default_rng(3).normal(size=300)
    a = simulate_cat(design, bank, thetas=theta, seed=5, engine=fast)
    b = simulate_cat(design, bank, thetas=theta, seed=5, engine=slow)
    np.testing.assert_array_equal(a.sequence, b.sequence)
    np.testing.assert_array_equal(a.theta, b.theta)


def test_mfi_picks_the_argmax_with_ties_to_lower_index():
    items = [{"id": f"T{k}", "model": "2pl", "a": 1.0, "b": 0.0} for k in range(3)]
    items += [{"id": "W", "model": "2pl", "a": 0.5, "b": 0.0}]
    bank = ItemBank(items=items)
    s = Session.start(ExamDesign(min_length=2, max_length=2, content={"method": "none"}), bank, seed=1)
    assert s.next_item() == "T0"  # identical items: the first in bank order
